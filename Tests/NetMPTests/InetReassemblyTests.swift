import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// IPv4 reassembly: out-of-order, duplicate and overlapping fragments, limits, timeout.
final class InetReassemblyTests: SingleHostTestCase {

    /// A UDP datagram from the peer to port 9000 as IP payload (UDP header included).
    func udpDatagram(_ payload: [UInt8]) -> [UInt8] {
        UDPHeader(sourcePort: 4000, destinationPort: 9000).bytes(payload: payload, source: peer, destination: local)
    }

    /// One fragment frame of `datagram` covering `range`.
    func fragment(_ datagram: [UInt8], _ range: Range<Int>, id: UInt16 = 77, last: Bool? = nil, data: [UInt8]? = nil)
        -> [UInt8]
    {
        let body = data ?? Array(datagram[range])
        let header = IPv4Header(
            totalLength: UInt16(20 + body.count), identification: id, dontFragment: false,
            moreFragments: !(last ?? (range.upperBound == datagram.count)),
            fragmentOffset: UInt16(range.lowerBound / 8),
            protocol: .udp, source: peer, destination: local)
        let ethernet = EthernetHeader(destination: interface.hardwareAddress, source: peerMAC, etherType: .ipv4)
        return ethernet.bytes() + header.bytes() + body
    }

    func received() -> [[UInt8]] {
        var all: [[UInt8]] = []
        while let datagram = try? receiver.receive(maxBytes: 70000, flags: .dontWait) { all.append(datagram.bytes) }
        return all
    }

    func payload(_ count: Int, seed: UInt64) -> [UInt8] {
        var generator = SeededGenerator(seed: seed)
        return generator.bytes(count)
    }

    func testOutOfOrderFragments() throws {
        try makeStack()
        let data = payload(3000, seed: 1)
        let datagram = udpDatagram(data)
        XCTAssertEqual(datagram.count, 3008)
        interface.inject([
            fragment(datagram, 2000..<3000), fragment(datagram, 0..<1000), fragment(datagram, 3000..<3008),
            fragment(datagram, 1000..<2000),
        ])
        stack.runUntilIdle()
        XCTAssertEqual(received(), [data])
        let stats = stack.inetStatistics()
        XCTAssertEqual(stats[.fragmentsIn], 4)
        XCTAssertEqual(stats[.reassembled], 1)
        XCTAssertEqual(stack.inet.perThread[0].reassemblyBytes, 0)
    }

    func testDuplicateFragments() throws {
        try makeStack()
        let data = payload(2000, seed: 2)
        let datagram = udpDatagram(data)
        let pieces = [fragment(datagram, 0..<1000), fragment(datagram, 1000..<2008)]
        interface.inject([pieces[0], pieces[0], pieces[0]])
        interface.inject([pieces[1]])
        // A late duplicate of a finished datagram starts a new one that never completes.
        interface.inject([pieces[1]])
        stack.runUntilIdle()
        XCTAssertEqual(received(), [data])
        let stats = stack.inetStatistics()
        XCTAssertEqual(stats[.fragmentsDuplicate], 2)
        XCTAssertEqual(stats[.reassembled], 1)
    }

    /// RFC 5722: an overlap that is not an exact duplicate drops the whole datagram (the first
    /// copy used to win and the datagram was delivered).
    func testOverlappingFragmentsDropTheWholeDatagram() throws {
        try makeStack()
        let data = payload(2400, seed: 3)
        let datagram = udpDatagram(data)
        // [0, 1600), then [800, 2400) carrying the same bytes: an overlap all the same.
        interface.inject([fragment(datagram, 0..<1600), fragment(datagram, 800..<2400, last: false)])
        stack.runUntilIdle()
        XCTAssertEqual(stack.inetStatistics()[.fragmentsOverlapping], 1)
        XCTAssertEqual(stack.inet.perThread[0].reassembly.count, 0)
        XCTAssertEqual(stack.inet.perThread[0].reassemblyBytes, 0)
        // What follows starts afresh and, lacking the head, never completes.
        interface.inject([fragment(datagram, 1600..<2408)])
        stack.runUntilIdle()
        XCTAssertEqual(received(), [])
        XCTAssertEqual(stack.inetStatistics()[.reassembled], 0)
        // An overlap with the tail, from the other side.
        interface.inject([fragment(datagram, 0..<1600, id: 90), fragment(datagram, 1592..<2408, id: 90)])
        stack.runUntilIdle()
        XCTAssertEqual(stack.inetStatistics()[.fragmentsOverlapping], 2)
        XCTAssertEqual(received(), [])
    }

    func testFragmentsThatNeverCompleteTimeOut() throws {
        try makeStack()
        let datagram = udpDatagram(payload(3000, seed: 4))
        interface.inject([fragment(datagram, 0..<1000), fragment(datagram, 2000..<3008)])
        stack.runUntilIdle()
        XCTAssertEqual(received(), [])
        // What is held is counted as the receive chunks kept alive, not the 2008 payload bytes.
        XCTAssertEqual(stack.inet.perThread[0].reassemblyBytes, 2 * ChunkPool.sizeClasses[0])
        // RFC 1122's range: 60 s by default (it was 30 s).
        clock.advance(by: .seconds(59))
        stack.runUntilIdle()
        XCTAssertEqual(stack.inetStatistics()[.reassemblyTimeouts], 0)
        clock.advance(by: .seconds(2))
        stack.runUntilIdle()
        let stats = stack.inetStatistics()
        XCTAssertEqual(stats[.reassemblyTimeouts], 1)
        // The first fragment was seen: ICMP time exceeded (reassembly) goes back (after ARP).
        XCTAssertEqual(stats[.icmpErrorsSent], 1)
        XCTAssertEqual(stack.inet.perThread[0].reassemblyBytes, 0)
        XCTAssertEqual(received(), [])
        // Without the first fragment: no ICMP.
        interface.inject([fragment(datagram, 1000..<2000, id: 78)])
        stack.runUntilIdle()
        clock.advance(by: .seconds(61))
        stack.runUntilIdle()
        XCTAssertEqual(stack.inetStatistics()[.reassemblyTimeouts], 2)
        XCTAssertEqual(stack.inetStatistics()[.icmpErrorsSent], 1)
    }

    func testLimitsOnFragmentsAndMemory() throws {
        var settings = InetSettings()
        settings.reassemblyMaxBytes = 5000
        settings.reassemblyMaxBytesPerSource = 5000
        settings.reassemblyMaxFragments = 8
        try makeStack(settings)
        let datagram = udpDatagram(payload(3000, seed: 5))
        // Too many fragments: 9 8-byte pieces (every other one, so none merge).
        settings.reassemblyMaxBytes = 1 << 20
        settings.reassemblyMaxBytesPerSource = 1 << 20
        stack.updateInetSettings { $0 = settings }
        interface.inject((0..<9).map { fragment(datagram, ($0 * 16)..<($0 * 16 + 8), id: 1) })
        stack.runUntilIdle()
        XCTAssertEqual(stack.inetStatistics()[.reassemblyDropped], 1)
        settings.reassemblyMaxBytes = 5000
        settings.reassemblyMaxBytesPerSource = 5000
        stack.updateInetSettings { $0 = settings }
        // Memory: a 1600-byte fragment holds a whole 2 KiB chunk; past the limit the source's
        // oldest datagrams go.
        for id in UInt16(10)...12 {
            interface.inject([fragment(datagram, 0..<1600, id: id)])
            clock.advance(by: .milliseconds(1))
            stack.runUntilIdle()
            XCTAssertLessThanOrEqual(stack.inet.perThread[0].reassemblyBytes, 5000)
        }
        XCTAssertEqual(stack.inetStatistics()[.reassemblyDropped], 2)
        // The newest can still complete (the older one goes to make room).
        interface.inject([fragment(datagram, 1600..<3008, id: 12)])
        stack.runUntilIdle()
        XCTAssertEqual(received().count, 1)
        XCTAssertEqual(stack.inetStatistics()[.reassemblyDropped], 3)
        XCTAssertEqual(stack.inet.perThread[0].reassemblyBytes, 0)
        // Nonsense is dropped, not trapped on: a middle fragment not a multiple of 8, and one
        // past 64 KiB.
        interface.inject([fragment(datagram, 0..<1001, id: 20, last: false)])
        interface.inject([fragment(datagram, 0..<1000, id: 21, last: true, data: [UInt8](repeating: 0, count: 1000))])
        stack.runUntilIdle()
    }

    func testFragmentationOnOutputRoundTrips() throws {
        // Two stacks on a switch with a 600-byte MTU: 5000-byte datagrams go as fragments.
        let network = SimulatedNetwork(seed: 9)
        defer { network.shutdown() }
        let lan = network.makeSwitch()
        let a = network.makeStack()
        let b = network.makeStack(threadCount: 2)
        try network.attach(a, to: lan, address: "198.18.0.1/24", mtu: 600)
        try network.attach(b, to: lan, address: "198.18.0.2/24", mtu: 600)
        let server = try b.socket(.inet, .datagram)
        try server.bind(to: .ipv4(.unspecified, port: 53))
        let client = try a.socket(.inet, .datagram)
        let data = payload(5000, seed: 6)
        try client.send(data, to: .ipv4(address("198.18.0.2"), port: 53))
        network.runUntilIdle()
        XCTAssertEqual(try server.receive(maxBytes: 10000, flags: .dontWait).bytes, data)
        XCTAssertEqual(a.inetStatistics()[.ipFragmentsOut], 9)
        XCTAssertEqual(b.inetStatistics()[.reassembled], 1)
    }
}
