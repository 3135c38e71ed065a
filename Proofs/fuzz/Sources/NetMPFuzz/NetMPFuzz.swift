import Glibc
import NetMP

// libFuzzer targets: every wire parser, the whole receive path of a deterministic stack, and
// one TCP connection driven by segment sequences. NETMP_FUZZ_TARGET picks one: ethernet, arp,
// ipv4, icmp, udp, tcp, receive, tcp-connection. A parse must either fail with a WireError or
// succeed with every range inside the buffer; the receive path must not trap, leak or touch
// memory it does not own (AddressSanitizer); the connection must keep TCPFuzz's invariants.

enum FuzzTarget: String {
    case ethernet, arp, ipv4, icmp, udp, tcp, receive
    case tcpConnection = "tcp-connection"
}

nonisolated(unsafe) private var selected: FuzzTarget = .ethernet

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
)
    -> CInt
{
    guard let name = getenv("NETMP_FUZZ_TARGET"), let target = FuzzTarget(rawValue: String(cString: name)) else {
        printError("set NETMP_FUZZ_TARGET to ethernet, arp, ipv4, icmp, udp, tcp, receive or tcp-connection")
        exit(2)
    }
    selected = target
    return 0
}

/// libFuzzer's driver (SwiftPM gives an executable its own `main`, so libFuzzer's is not used).
@_silgen_name("LLVMFuzzerRunDriver")
func llvmFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@main
enum NetMPFuzzMain {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(llvmFuzzerRunDriver(&argc, &argv) { data, size in fuzzerTestOneInput(data, size) })
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    switch selected {
    case .ethernet: fuzzEthernet(bytes)
    case .arp: fuzzARP(bytes)
    case .ipv4: fuzzIPv4(bytes)
    case .icmp: fuzzICMP(bytes)
    case .udp: fuzzUDP(bytes)
    case .tcp: fuzzTCP(bytes)
    case .receive: ReceivePath.run(bytes)
    case .tcpConnection: fuzzTCPConnection(bytes)
    }
    return 0
}

/// Writes a line to standard error (file descriptor 2).
func printError(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { bytes in _ = write(2, bytes.baseAddress, bytes.count) }
}

/// Stops the run (libFuzzer saves the input) when a parser broke its contract.
func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition {
        printError("contract broken: \(message())")
        abort()
    }
}

/// A successful parse's ranges lie inside the buffer it parsed.
func checkRanges<Header>(_ result: Result<Parsed<Header>, WireError>, in bytes: UnsafeRawBufferPointer)
    -> Parsed<Header>?
{
    guard case .success(let parsed) = result else { return nil }
    require(
        parsed.headerLength > 0 && parsed.headerLength <= parsed.payloadRange.lowerBound
            && parsed.payloadRange.upperBound <= bytes.count,
        "\(Header.self): header \(parsed.headerLength), payload \(parsed.payloadRange), \(bytes.count) bytes")
    return parsed
}

func slice(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(rebasing: bytes[range])
}

func fuzzEthernet(_ bytes: UnsafeRawBufferPointer) {
    _ = checkRanges(EthernetHeader.parse(bytes), in: bytes)
}

func fuzzARP(_ bytes: UnsafeRawBufferPointer) {
    if case .success(let packet) = ARPPacket.parse(bytes) {
        // What parses re-emits and parses to the same packet.
        require(ARPPacket.parse(packet.bytes()) == .success(packet), "ARP round trip: \(packet)")
    }
}

func fuzzIPv4(_ bytes: UnsafeRawBufferPointer) {
    for verify in [true, false] {
        guard let packet = checkRanges(IPv4Header.parse(bytes, verifyChecksum: verify), in: bytes) else { continue }
        // The options (IHL > 5) validate again on their own.
        if packet.headerLength > IPv4Header.minimumLength {
            let options = slice(bytes, IPv4Header.minimumLength..<packet.headerLength)
            require((try? IPv4Options.validate(options)) != nil, "IPv4 options accepted once, refused alone")
        }
    }
}

func fuzzICMP(_ bytes: UnsafeRawBufferPointer) {
    for verify in [true, false] {
        guard let packet = checkRanges(ICMPHeader.parse(bytes, verifyChecksum: verify), in: bytes) else { continue }
        if case .success(let quote) = packet.quotedDatagram(in: bytes) {
            require(
                quote.transportRange.lowerBound >= packet.payloadRange.lowerBound
                    && quote.transportRange.upperBound <= bytes.count && quote.transportRange.count >= 8,
                "ICMP quote \(quote.transportRange) in \(bytes.count) bytes")
        }
    }
}

/// The pseudo-header's addresses: the first 8 bytes of the input when there are enough, so the
/// fuzzer can also reach the checksum-verified path.
func pseudoAddresses(_ bytes: UnsafeRawBufferPointer) -> (IPv4Address, IPv4Address, UnsafeRawBufferPointer) {
    guard bytes.count >= 8 else { return (IPv4Address(198, 18, 7, 1), IPv4Address(198, 18, 7, 2), bytes) }
    let source = IPv4Address(bytes[0], bytes[1], bytes[2], bytes[3])
    let destination = IPv4Address(bytes[4], bytes[5], bytes[6], bytes[7])
    return (source, destination, slice(bytes, 8..<bytes.count))
}

func fuzzUDP(_ bytes: UnsafeRawBufferPointer) {
    let (source, destination, datagram) = pseudoAddresses(bytes)
    for verify in [true, false] {
        let result = UDPHeader.parse(datagram, source: source, destination: destination, verifyChecksum: verify)
        guard let packet = checkRanges(result, in: datagram) else { continue }
        require(packet.payloadRange.upperBound == Int(packet.header.length), "UDP payload ignores its length")
    }
}

func fuzzTCP(_ bytes: UnsafeRawBufferPointer) {
    let (source, destination, segment) = pseudoAddresses(bytes)
    for verify in [true, false] {
        let result = TCPHeader.parse(segment, source: source, destination: destination, verifyChecksum: verify)
        guard let packet = checkRanges(result, in: segment) else { continue }
        require(packet.headerLength >= 20 && packet.headerLength <= 60, "TCP header length \(packet.headerLength)")
        // The options area parsed on its own gives the same options; unknown ones lie inside
        // the header, at the same place (counted from the segment's start in the header).
        let parsed = packet.header.options
        guard case .success(let alone) = TCPOptions.parse(slice(segment, 20..<packet.headerLength)) else {
            require(false, "TCP options refused alone")
            return
        }
        require(alone.encodable == parsed.encodable, "TCP options differ alone: \(alone) \(parsed)")
        require(alone.unknownOptions.count == parsed.unknownOptions.count, "TCP unknown options differ alone")
        for (inHeader, onItsOwn) in zip(parsed.unknownOptions, alone.unknownOptions) {
            require(
                inHeader.kind == onItsOwn.kind && inHeader.range.lowerBound == onItsOwn.range.lowerBound + 20
                    && inHeader.range.count == onItsOwn.range.count && inHeader.range.upperBound <= packet.headerLength,
                "TCP unknown option \(inHeader) in a \(packet.headerLength)-byte header, \(onItsOwn) alone")
        }
    }
    // And the options parser straight on the raw bytes.
    _ = TCPOptions.parse(slice(segment, 0..<Swift.min(segment.count, TCPOptions.maximumLength)))
}

/// The input chooses a TCP connection's events (`TCPFuzz`); a broken invariant stops the run.
func fuzzTCPConnection(_ bytes: UnsafeRawBufferPointer) {
    if case .failure(let violation) = TCPFuzz.run(bytes: bytes) {
        require(false, "TCP invariant: \(violation)")
    }
}
