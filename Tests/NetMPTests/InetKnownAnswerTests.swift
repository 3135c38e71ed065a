import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// Known answers from the Linux kernel (`KernelCaptureFixtures.swift`): NetMP parses what the
/// kernel sends, and answers the kernel's packets with the bytes the kernel answered with,
/// except where the two may differ by design (IP identification; Ethernet padding, which a
/// veth capture shows before the NIC would add it).
final class InetKnownAnswerTests: XCTestCase {
    let kernelA = (address: address("198.18.7.1"), mac: MACAddress(0x02, 0, 0, 0, 0x07, 0x01))
    let kernelB = (address: address("198.18.7.2"), mac: MACAddress(0x02, 0, 0, 0, 0x07, 0x02))
    var stack: NetworkStack!
    var interface: TestInterface!

    /// A driven stack standing where one of the kernel's namespaces stood.
    func makeStack(as host: (address: IPv4Address, mac: MACAddress)) throws {
        stack = NetworkStack(
            .init(threadCount: 2, clock: ManualClock(startingAt: 1_000_000_000), mode: .driven, seed: 5))
        interface = TestInterface(mac: host.mac)
        try stack.addAddress(host.address, prefixLength: 24, to: interface)
        stack.runUntilIdle()
    }

    override func tearDown() {
        stack?.shutdown()
        super.tearDown()
    }

    /// Injects kernel frames; returns what the stack sent in answer.
    func answers(to frames: [[UInt8]]) -> [[UInt8]] {
        let before = interface.sent.withLock { $0.count }
        interface.inject(frames)
        stack.runUntilIdle()
        stack.runUntilIdle()
        return Array(interface.sent.withLock { $0 }[before...])
    }

    /// The IPv4 header bytes that must match: all but identification and checksum.
    func comparableHeader(_ frame: [UInt8]) -> [UInt8] {
        Array(frame[14..<18]) + Array(frame[20..<24]) + Array(frame[26..<34])
    }

    func testKernelFramesParse() throws {
        guard case .success(let request) = ARPPacket.parse(Array(KernelCapture.arpRequest[14...])),
            case .success(let reply) = ARPPacket.parse(Array(KernelCapture.arpReply[14...]))
        else { return XCTFail("ARP did not parse") }
        XCTAssertEqual(request.operation, .request)
        XCTAssertEqual(request.senderProtocolAddress, kernelA.address)
        XCTAssertEqual(request.targetProtocolAddress, kernelB.address)
        XCTAssertEqual(reply.operation, .reply)
        XCTAssertEqual(reply.senderHardwareAddress, kernelB.mac)
        let ipFrames = [
            KernelCapture.echoRequest, KernelCapture.echoReply, KernelCapture.fragmentedRequestFirst,
            KernelCapture.fragmentedRequestLast, KernelCapture.fragmentedReplyFirst,
            KernelCapture.fragmentedReplyLast, KernelCapture.udpDatagram, KernelCapture.portUnreachable,
        ]
        for frame in ipFrames {
            guard case .success(let packet) = IPv4Header.parse(Array(frame[14...]), verifyChecksum: true) else {
                return XCTFail("IPv4 did not parse: \(frame.count) bytes")
            }
            XCTAssertLessThanOrEqual(Int(packet.header.totalLength), frame.count - 14)
        }
        guard case .success(let first) = IPv4Header.parse(Array(KernelCapture.fragmentedRequestFirst[14...])),
            case .success(let last) = IPv4Header.parse(Array(KernelCapture.fragmentedRequestLast[14...]))
        else { return XCTFail() }
        XCTAssertTrue(first.header.moreFragments)
        XCTAssertEqual(first.header.fragmentByteOffset, 0)
        XCTAssertFalse(last.header.moreFragments)
        XCTAssertEqual(last.header.fragmentByteOffset, 1480)
        XCTAssertEqual(first.header.identification, last.header.identification)
        guard case .success(let udp) = IPv4Header.parse(Array(KernelCapture.udpDatagram[14...])) else {
            return XCTFail()
        }
        XCTAssertEqual(udp.header.totalLength, 46)
        XCTAssertTrue(udp.header.dontFragment)
        let segment = Array(KernelCapture.udpDatagram[(14 + 20)..<(14 + 46)])
        guard
            case .success(let datagram) = UDPHeader.parse(
                segment, source: kernelA.address, destination: kernelB.address)
        else { return XCTFail("UDP did not parse") }
        XCTAssertEqual(datagram.header.sourcePort, 40001)
        XCTAssertEqual(datagram.header.destinationPort, 9)
        XCTAssertEqual(Array(segment[datagram.payloadRange]), Array("NetMP known answer".utf8))
        let icmp = Array(KernelCapture.portUnreachable[34...])
        guard case .success(let error) = ICMPHeader.parse(icmp),
            case .success(let quote) = error.quotedDatagram(in: icmp)
        else { return XCTFail("port unreachable did not parse") }
        XCTAssertEqual(error.header.message, .destinationUnreachable(code: .portUnreachable, nextHopMTU: 0))
        XCTAssertEqual(quote.sourcePort, 40001)
        XCTAssertEqual(quote.destinationPort, 9)
    }

    /// NetMP as 198.18.7.2 answers the kernel's ARP request with the kernel's reply.
    func testARPReplyMatchesTheKernels() throws {
        try makeStack(as: kernelB)
        let sent = answers(to: [KernelCapture.arpRequest])
        XCTAssertEqual(sent.count, 1)
        guard let reply = sent.first else { return }
        XCTAssertEqual(reply.count, 60)
        XCTAssertEqual(Array(reply[0..<42]), KernelCapture.arpReply)
        XCTAssertEqual(Array(reply[42...]), [UInt8](repeating: 0, count: 18))
    }

    /// NetMP as 198.18.7.1 answers the kernel's unicast re-probe with the kernel's reply.
    func testARPProbeReplyMatchesTheKernels() throws {
        try makeStack(as: kernelA)
        let sent = answers(to: [KernelCapture.arpProbe])
        XCTAssertEqual(sent.count, 1)
        guard let reply = sent.first else { return }
        XCTAssertEqual(Array(reply[0..<42]), KernelCapture.arpProbeReply)
    }

    /// The echo reply: ICMP bytes identical, IPv4 header identical but for the identification.
    func testEchoReplyMatchesTheKernels() throws {
        try makeStack(as: kernelB)
        let sent = answers(to: [KernelCapture.arpRequest, KernelCapture.echoRequest])
        guard let reply = sent.last, reply.count == KernelCapture.echoReply.count else {
            return XCTFail("no echo reply of the kernel's length: \(sent.map(\.count))")
        }
        XCTAssertEqual(Array(reply[0..<14]), Array(KernelCapture.echoReply[0..<14]))
        XCTAssertEqual(comparableHeader(reply), comparableHeader(KernelCapture.echoReply))
        XCTAssertEqual(Array(reply[34...]), Array(KernelCapture.echoReply[34...]))
    }

    /// The kernel's fragmented echo request is reassembled; the reply is fragmented where the
    /// kernel fragmented its own, with the same bytes.
    func testFragmentedEchoMatchesTheKernels() throws {
        try makeStack(as: kernelB)
        let sent = answers(to: [
            KernelCapture.arpRequest, KernelCapture.fragmentedRequestFirst, KernelCapture.fragmentedRequestLast,
        ])
        let replies = sent.filter { $0.count > 34 && $0[12] == 0x08 && $0[13] == 0x00 }
        XCTAssertEqual(replies.map(\.count), [1514, 562])
        guard replies.count == 2 else { return }
        for (ours, theirs) in zip(replies, [KernelCapture.fragmentedReplyFirst, KernelCapture.fragmentedReplyLast]) {
            XCTAssertEqual(comparableHeader(ours), comparableHeader(theirs))
            XCTAssertEqual(Array(ours[34...]), Array(theirs[34...]))
        }
        XCTAssertEqual(replies[0][18...19], replies[1][18...19], "one identification for both fragments")
    }

    /// The kernel's UDP datagram is delivered; with no socket, NetMP's port unreachable is the
    /// kernel's but for the IP identification.
    func testUDPAndPortUnreachableMatchTheKernels() throws {
        try makeStack(as: kernelB)
        let server = try stack.socket(.inet, .datagram)
        try server.bind(to: .ipv4(.unspecified, port: 9))
        _ = answers(to: [KernelCapture.arpRequest, KernelCapture.udpDatagram])
        let datagram = try server.receive(maxBytes: 100, flags: .dontWait)
        XCTAssertEqual(datagram.bytes, Array("NetMP known answer".utf8))
        XCTAssertEqual(datagram.source, .ipv4(kernelA.address, port: 40001))
        server.close()
        stack.runUntilIdle()
        let sent = answers(to: [KernelCapture.udpDatagram])
        guard let error = sent.last, error.count == KernelCapture.portUnreachable.count else {
            return XCTFail("no port unreachable of the kernel's length: \(sent.map(\.count))")
        }
        XCTAssertEqual(Array(error[0..<14]), Array(KernelCapture.portUnreachable[0..<14]))
        // TOS 0xc0 (internetwork control) as the kernel sets it; all but the identification.
        XCTAssertEqual(comparableHeader(error), comparableHeader(KernelCapture.portUnreachable))
        XCTAssertEqual(Array(error[34...]), Array(KernelCapture.portUnreachable[34...]))
    }

    /// NetMP as 198.18.7.1 with the kernel's socket: the kernel's port unreachable refuses it.
    func testKernelPortUnreachableReachesTheSocket() throws {
        try makeStack(as: kernelA)
        let client = try stack.socket(.inet, .datagram)
        defer { client.close() }
        try client.bind(to: .ipv4(kernelA.address, port: 40001))
        try client.connect(to: .ipv4(kernelB.address, port: 9))
        _ = answers(to: [KernelCapture.arpReply, KernelCapture.portUnreachable])
        XCTAssertThrowsError(try client.read(maxBytes: 10, flags: .dontWait)) {
            XCTAssertEqual($0 as? NetError, .connectionRefused)
        }
    }
}
