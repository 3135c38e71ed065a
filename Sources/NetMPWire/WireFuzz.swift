/// A self-contained fuzzer for every parser in this module, so the command-line tool can run
/// millions of iterations in release builds in CI without a test harness.
///
/// Each iteration takes a valid frame from a built-in corpus (or random bytes), mutates it, and runs
/// every parser over it at every layer, with and without checksum verification (so mutations reach
/// past the checksum). Each parse must either fail with a `WireError` or succeed with ranges inside
/// the buffer; a successful header must also re-emit and re-parse to the same fields. A broken
/// invariant is a bug in this module and stops the process with the seed and iteration to replay.
public enum WireFuzz {
    /// Runs `iterations` mutated inputs from `seed`; returns how many parse calls succeeded and failed.
    public static func run(iterations: Int, seed: UInt64) -> (accepted: Int, rejected: Int) {
        var random = SplitMix64(seed: seed)
        var driver = Driver(corpus: corpus(), seed: seed)
        defer { driver.release() }
        for iteration in 0..<Swift.max(0, iterations) {
            driver.iteration = iteration
            let input = driver.mutatedInput(using: &random)
            input.withUnsafeBytes { driver.exercise(frame: $0) }
        }
        return (driver.accepted, driver.rejected)
    }

    /// Valid frames the mutations start from: one of each protocol and shape the stack must handle.
    static func corpus() -> [[UInt8]] {
        let local = MACAddress(rawValue: 0x0200_0000_0001)
        let peer = MACAddress(rawValue: 0x0200_0000_0002)
        let client = IPv4Address(198, 18, 0, 1)
        let server = IPv4Address(198, 18, 0, 2)
        func frame(_ etherType: EtherType, _ payload: [UInt8]) -> [UInt8] {
            EthernetHeader(destination: peer, source: local, etherType: etherType).bytes() + payload
        }
        func datagram(_ ipProtocol: IPProtocol, _ payload: [UInt8]) -> [UInt8] {
            IPv4Header(
                totalLength: UInt16(20 + payload.count), identification: 0x1234, protocol: ipProtocol,
                source: client, destination: server
            ).bytes() + payload
        }
        let arp = ARPPacket(
            operation: .request, senderHardwareAddress: local, senderProtocolAddress: client,
            targetHardwareAddress: .zero, targetProtocolAddress: server)
        let echo = ICMPHeader(message: .echoRequest(identifier: 7, sequenceNumber: 1))
            .bytes(payload: Array(0..<32))
        let udpHeader = UDPHeader(sourcePort: 40000, destinationPort: 53)
        let udp = udpHeader.bytes(payload: Array("query".utf8), source: client, destination: server)
        let quoted = datagram(.udp, udp)
        let unreachable = ICMPHeader(message: .destinationUnreachable(code: .fragmentationNeeded, nextHopMTU: 1400))
            .bytes(payload: Array(quoted.prefix(28)))
        let timeExceeded = ICMPHeader(message: .timeExceeded(code: .timeToLiveExceeded))
            .bytes(payload: quoted)
        let syn = TCPHeader(
            sourcePort: 40000, destinationPort: 80, sequenceNumber: 0x0102_0304, flags: .syn, window: 64240,
            options: TCPOptions(
                maximumSegmentSize: 1460, windowScale: 7, sackPermitted: true,
                timestamps: TCPTimestamps(value: 1000, echoReply: 0))
        ).bytes(source: client, destination: server)
        let sack = TCPHeader(
            sourcePort: 80, destinationPort: 40000, sequenceNumber: 5000, acknowledgmentNumber: 0x0102_0305,
            flags: [.ack, .psh], window: 501,
            options: TCPOptions(
                sackBlocks: SACKBlocks([SACKBlock(left: 10, right: 20), SACKBlock(left: 30, right: 40)]),
                timestamps: TCPTimestamps(value: 2000, echoReply: 1000))
        ).bytes(payload: Array("hello".utf8), source: server, destination: client)
        // A datagram with a 4-byte IP option (router alert) so IHL > 5 paths are exercised.
        var withOption = IPv4Header(
            totalLength: UInt16(24 + udp.count), protocol: .udp, source: client, destination: server
        ).bytes()
        withOption[0] = 0x46
        withOption += [0x94, 0x04, 0x00, 0x00]
        withOption.withUnsafeMutableBytes { buffer in
            buffer[10] = 0
            buffer[11] = 0
            let checksum = InternetChecksum.checksum(UnsafeRawBufferPointer(rebasing: buffer[0..<24]))
            buffer[10] = UInt8(truncatingIfNeeded: checksum >> 8)
            buffer[11] = UInt8(truncatingIfNeeded: checksum)
        }
        return [
            frame(.arp, arp.bytes() + [UInt8](repeating: 0, count: 18)),
            frame(.ipv4, datagram(.icmp, echo)),
            frame(.ipv4, datagram(.icmp, unreachable)),
            frame(.ipv4, datagram(.icmp, timeExceeded)),
            frame(.ipv4, quoted),
            frame(.ipv4, datagram(.tcp, syn)),
            frame(.ipv4, datagram(.tcp, sack)),
            frame(.ipv4, withOption + udp),
        ]
    }

    /// Holds the corpus, counters and a scratch buffer for re-emitting.
    struct Driver {
        let corpus: [[UInt8]]
        var accepted = 0
        var rejected = 0
        let seed: UInt64
        var iteration = 0
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 8)

        init(corpus: [[UInt8]], seed: UInt64) {
            self.corpus = corpus
            self.seed = seed
        }

        func release() {
            scratch.deallocate()
        }

        /// A corpus frame with one to four mutations, or plain random bytes.
        func mutatedInput(using random: inout SplitMix64) -> [UInt8] {
            if random.below(8) == 0 {
                return (0..<random.below(120)).map { _ in random.byte() }
            }
            var bytes = corpus[random.below(corpus.count)]
            for _ in 0...random.below(4) {
                switch random.below(6) {
                case 0, 1:
                    guard !bytes.isEmpty else { break }
                    bytes[random.below(bytes.count)] ^= 1 << UInt8(random.below(8))
                case 2:
                    guard !bytes.isEmpty else { break }
                    bytes[random.below(bytes.count)] = random.byte()
                case 3:
                    bytes.removeLast(random.below(bytes.count + 1))
                case 4:
                    bytes += (0..<random.below(16)).map { _ in random.byte() }
                default:
                    // Header fields that carry lengths and offsets, where parsers are most at risk:
                    // IHL, total length, UDP length, TCP data offset, first option bytes.
                    let targets = [14, 16, 17, 38, 39, 46, 54, 55]
                    let target = targets[random.below(targets.count)]
                    if target < bytes.count {
                        bytes[target] = random.byte()
                    }
                }
            }
            return bytes
        }

        /// Runs every parser over the frame and over its inner layers.
        mutating func exercise(frame: UnsafeRawBufferPointer) {
            var network = frame
            if let ethernet = check(EthernetHeader.parse(frame), in: frame) {
                network = slice(frame, ethernet.payloadRange)
                if let arp = record(ARPPacket.parse(network)) {
                    roundTripARP(arp)
                }
            }
            for verify in [true, false] {
                guard let ip = check(IPv4Header.parse(network, verifyChecksum: verify), in: network) else {
                    continue
                }
                roundTripIPv4(ip.header)
                exerciseTransport(
                    slice(network, ip.payloadRange), source: ip.header.source,
                    destination: ip.header.destination, verifyChecksum: verify)
            }
            // Transport parsers straight on the raw bytes too, so random input reaches their depths.
            exerciseTransport(frame, source: .unspecified, destination: .broadcast, verifyChecksum: false)
            _ = record(TCPOptions.parse(slice(frame, 0..<Swift.min(frame.count, TCPOptions.maximumLength))))
        }

        mutating func exerciseTransport(
            _ bytes: UnsafeRawBufferPointer, source: IPv4Address, destination: IPv4Address, verifyChecksum: Bool
        ) {
            if let icmp = check(ICMPHeader.parse(bytes, verifyChecksum: verifyChecksum), in: bytes) {
                if let quote = record(icmp.quotedDatagram(in: bytes)) {
                    expect(
                        quote.transportRange.lowerBound >= icmp.payloadRange.lowerBound
                            && quote.transportRange.upperBound <= bytes.count && quote.transportRange.count >= 8,
                        "ICMP quote range \(quote.transportRange) outside \(bytes.count) bytes")
                }
                roundTripICMP(icmp.header)
            }
            let udpParse = UDPHeader.parse(
                bytes, source: source, destination: destination, verifyChecksum: verifyChecksum)
            if let udp = check(udpParse, in: bytes) {
                expect(udp.payloadRange.upperBound == Int(udp.header.length), "UDP payload ignores length field")
                roundTripUDP(udp.header, source: source, destination: destination)
            }
            let tcpParse = TCPHeader.parse(
                bytes, source: source, destination: destination, verifyChecksum: verifyChecksum)
            if let tcp = check(tcpParse, in: bytes) {
                roundTripTCP(tcp.header, source: source, destination: destination)
            }
        }

        /// Counts a result and checks the ranges of a success against the parsed buffer.
        mutating func check<Header>(
            _ result: Result<Parsed<Header>, WireError>, in bytes: UnsafeRawBufferPointer
        ) -> Parsed<Header>? {
            guard let parsed = record(result) else { return nil }
            expect(
                parsed.headerLength > 0 && parsed.headerLength <= parsed.payloadRange.lowerBound
                    && parsed.payloadRange.upperBound <= bytes.count,
                "\(Header.self) header \(parsed.headerLength) payload \(parsed.payloadRange) in \(bytes.count) bytes")
            return parsed
        }

        mutating func record<Value>(_ result: Result<Value, WireError>) -> Value? {
            switch result {
            case .success(let value):
                accepted += 1
                return value
            case .failure:
                rejected += 1
                return nil
            }
        }

        func roundTripARP(_ arp: ARPPacket) {
            let reparsed = (try? arp.emit(into: scratch)).flatMap { length in
                try? ARPPacket.parse(UnsafeRawBufferPointer(rebasing: scratch[0..<length])).get()
            }
            expect(reparsed == arp, "ARP \(arp) did not survive emit and parse")
        }

        func roundTripIPv4(_ header: IPv4Header) {
            // Options are not re-emitted, so the total length shrinks to the header alone.
            var expected = header
            expected.totalLength = UInt16(IPv4Header.minimumLength)
            guard (try? expected.emit(into: scratch)) != nil else {
                expect(false, "IPv4 \(header) parsed but does not emit")
                return
            }
            let reparsed = try? IPv4Header.parse(UnsafeRawBufferPointer(rebasing: scratch[0..<20])).get().header
            expected.checksum = reparsed?.checksum ?? 0
            expect(reparsed == expected, "IPv4 \(header) did not survive emit and parse")
        }

        func roundTripICMP(_ header: ICMPHeader) {
            guard let length = try? header.emit(into: scratch, payloadLength: 0) else {
                expect(false, "ICMP \(header) parsed but does not emit")
                return
            }
            let reparsed = try? ICMPHeader.parse(UnsafeRawBufferPointer(rebasing: scratch[0..<length])).get().header
            expect(reparsed?.message == header.message, "ICMP \(header) did not survive emit and parse")
        }

        func roundTripUDP(_ header: UDPHeader, source: IPv4Address, destination: IPv4Address) {
            guard
                let length = try? header.emit(into: scratch, payloadLength: 0, source: source, destination: destination)
            else {
                expect(false, "UDP \(header) parsed but does not emit")
                return
            }
            let reparsed = try? UDPHeader.parse(
                UnsafeRawBufferPointer(rebasing: scratch[0..<length]), source: source, destination: destination
            ).get().header
            expect(
                reparsed?.sourcePort == header.sourcePort && reparsed?.destinationPort == header.destinationPort,
                "UDP \(header) did not survive emit and parse")
        }

        func roundTripTCP(_ header: TCPHeader, source: IPv4Address, destination: IPv4Address) {
            // Emit writes the options' encodable form: clamped scale, SACK blocks that fit, no unknowns.
            expect(
                header.options.encodedLength <= TCPOptions.maximumLength,
                "TCP options \(header.options) encode to more than 40 bytes")
            guard
                let length = try? header.emit(into: scratch, payloadLength: 0, source: source, destination: destination)
            else {
                expect(false, "TCP \(header) parsed but does not emit")
                return
            }
            var reparsed = try? TCPHeader.parse(
                UnsafeRawBufferPointer(rebasing: scratch[0..<length]), source: source, destination: destination
            ).get().header
            reparsed?.checksum = header.checksum
            var expected = header
            expected.options = header.options.encodable
            expect(reparsed == expected, "TCP \(header) did not survive emit and parse")
        }

        func slice(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> UnsafeRawBufferPointer {
            (try? bytes.networkSlice(range)) ?? UnsafeRawBufferPointer(start: nil, count: 0)
        }

        func expect(_ condition: Bool, _ message: @autoclosure () -> String) {
            precondition(condition, "WireFuzz seed \(seed) iteration \(iteration): \(message())")
        }
    }
}

/// SplitMix64: a tiny, fast, well-mixed PRNG so a fuzz seed replays the same inputs everywhere.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }

    /// A value in `0..<bound` (0 when `bound` is not positive).
    mutating func below(_ bound: Int) -> Int {
        bound <= 0 ? 0 : Int(next() % UInt64(bound))
    }

    mutating func byte() -> UInt8 {
        UInt8(truncatingIfNeeded: next())
    }
}
