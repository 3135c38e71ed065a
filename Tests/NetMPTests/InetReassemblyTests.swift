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

    func testOverlappingFragmentsKeepTheFirstCopy() throws {
        try makeStack()
        let data = payload(2400, seed: 3)
        let datagram = udpDatagram(data)
        // [0, 1600) first; then [800, 2400) whose first half is garbage (it must not win);
        // then the tail, overlapping too.
        var second = Array(datagram[800..<2400])
        for index in 0..<800 { second[index] ^= 0xFF }
        interface.inject([
            fragment(datagram, 0..<1600), fragment(datagram, 800..<2400, data: second),
            fragment(datagram, 2000..<2408),
        ])
        stack.runUntilIdle()
        XCTAssertEqual(received(), [data])
        XCTAssertEqual(stack.inetStatistics()[.reassembled], 1)
    }

    func testFragmentsThatNeverCompleteTimeOut() throws {
        try makeStack()
        let datagram = udpDatagram(payload(3000, seed: 4))
        interface.inject([fragment(datagram, 0..<1000), fragment(datagram, 2000..<3008)])
        stack.runUntilIdle()
        XCTAssertEqual(received(), [])
        XCTAssertEqual(stack.inet.perThread[0].reassemblyBytes, 2008)
        clock.advance(by: .seconds(29))
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
        clock.advance(by: .seconds(31))
        stack.runUntilIdle()
        XCTAssertEqual(stack.inetStatistics()[.reassemblyTimeouts], 2)
        XCTAssertEqual(stack.inetStatistics()[.icmpErrorsSent], 1)
    }

    func testLimitsOnFragmentsAndMemory() throws {
        var settings = InetSettings()
        settings.reassemblyMaxBytes = 4000
        settings.reassemblyMaxFragments = 8
        try makeStack(settings)
        let datagram = udpDatagram(payload(3000, seed: 5))
        // Too many fragments: 16 8-byte pieces (every other one, so none merge).
        interface.inject((0..<16).map { fragment(datagram, ($0 * 16)..<($0 * 16 + 8), id: 1) })
        stack.runUntilIdle()
        XCTAssertEqual(stack.inetStatistics()[.reassemblyDropped], 1)
        // Memory: three partial datagrams of 1600 bytes; the oldest go (the leftover of the
        // first one, whose last seven pieces started a new datagram, then id 10).
        for id in UInt16(10)...12 {
            interface.inject([fragment(datagram, 0..<1600, id: id)])
            clock.advance(by: .milliseconds(1))
            stack.runUntilIdle()
        }
        XCTAssertEqual(stack.inetStatistics()[.reassemblyDropped], 3)
        XCTAssertLessThanOrEqual(stack.inet.perThread[0].reassemblyBytes, 4000)
        // The newest two can still complete.
        interface.inject([fragment(datagram, 1600..<3008, id: 12)])
        stack.runUntilIdle()
        XCTAssertEqual(received().count, 1)
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
