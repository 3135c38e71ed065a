import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// Reassembly limits an attacker cannot use against others: fair per-source shares of datagrams
/// and bytes, memory counted as the chunks held, and a reassembled datagram dispatched by its
/// 4-tuple.
final class InetFragmentLimitTests: SingleHostTestCase {
    func udpDatagram(_ payload: [UInt8], from source: IPv4Address) -> [UInt8] {
        UDPHeader(sourcePort: 4000, destinationPort: 9000).bytes(payload: payload, source: source, destination: local)
    }

    func fragment(_ datagram: [UInt8], _ range: Range<Int>, id: UInt16, from source: IPv4Address) -> [UInt8] {
        let body = Array(datagram[range])
        let header = IPv4Header(
            totalLength: UInt16(20 + body.count), identification: id, dontFragment: false,
            moreFragments: range.upperBound != datagram.count, fragmentOffset: UInt16(range.lowerBound / 8),
            protocol: .udp, source: source, destination: local)
        return EthernetHeader(destination: interface.hardwareAddress, source: peerMAC, etherType: .ipv4).bytes()
            + header.bytes() + body
    }

    func received() -> [[UInt8]] {
        var all: [[UInt8]] = []
        while let datagram = try? receiver.receive(maxBytes: 70000, flags: .dontWait) { all.append(datagram.bytes) }
        return all
    }

    func spoofed(_ index: Int) -> IPv4Address { IPv4Address(rawValue: address("198.19.0.0").rawValue + UInt32(index)) }

    /// 64 spoofed sources used to flush a partial datagram (the table's oldest went first).
    func testSpoofedSourcesCannotFlushPartialDatagrams() throws {
        try makeStack()
        let data = [UInt8](repeating: 7, count: 1992)
        let datagram = udpDatagram(data, from: peer)
        interface.inject([fragment(datagram, 0..<1000, id: 1, from: peer)])
        stack.runUntilIdle()
        let junk = udpDatagram([UInt8](repeating: 0, count: 1992), from: spoofed(0))
        for batch in 0..<4 {
            interface.inject((0..<50).map { fragment(junk, 0..<8, id: 2, from: spoofed(batch * 50 + $0)) })
            clock.advance(by: .milliseconds(10))
            stack.runUntilIdle()
        }
        let state = stack.inet.perThread[0]
        XCTAssertEqual(state.reassembly.count, stack.inetSettings.reassemblyMaxDatagrams)
        XCTAssertEqual(stack.inetStatistics()[.reassemblyRefused], 200 - 63)
        interface.inject([fragment(datagram, 1000..<2000, id: 1, from: peer)])
        stack.runUntilIdle()
        XCTAssertEqual(received(), [data])
    }

    /// One source flooding datagrams makes room only at its own expense.
    func testOneSourceOnlyEvictsItsOwnDatagrams() throws {
        try makeStack()
        let data = [UInt8](repeating: 9, count: 1992)
        let datagram = udpDatagram(data, from: peer)
        interface.inject([fragment(datagram, 0..<1000, id: 1, from: peer)])
        let attacker = spoofed(5)
        let junk = udpDatagram([UInt8](repeating: 0, count: 1992), from: attacker)
        interface.inject((0..<100).map { fragment(junk, 0..<8, id: UInt16(100 + $0), from: attacker) })
        stack.runUntilIdle()
        let state = stack.inet.perThread[0]
        XCTAssertEqual(state.reassemblySources[attacker]?.datagrams, stack.inetSettings.reassemblyMaxDatagramsPerSource)
        XCTAssertEqual(state.reassemblySources[peer]?.datagrams, 1)
        interface.inject([fragment(datagram, 1000..<2000, id: 1, from: peer)])
        stack.runUntilIdle()
        XCTAssertEqual(received(), [data])
    }

    /// Past the byte limit the richest source pays, not the one that came first.
    func testByteLimitTakesFromTheRichestSource() throws {
        var settings = InetSettings()
        let chunk = ChunkPool.sizeClasses[0]
        settings.reassemblyMaxBytes = 8 * chunk
        settings.reassemblyMaxBytesPerSource = 8 * chunk
        try makeStack(settings)
        let data = [UInt8](repeating: 3, count: 2992)
        let datagram = udpDatagram(data, from: peer)
        interface.inject([fragment(datagram, 0..<1000, id: 1, from: peer)])
        let attacker = spoofed(9)
        let junk = udpDatagram([UInt8](repeating: 0, count: 20000), from: attacker)
        for index in 0..<12 {
            interface.inject([fragment(junk, (index * 16)..<(index * 16 + 8), id: 4, from: attacker)])
            stack.runUntilIdle()
            XCTAssertLessThanOrEqual(stack.inet.perThread[0].reassemblyBytes, 8 * chunk)
        }
        XCTAssertEqual(stack.inet.perThread[0].reassemblySources[peer]?.bytes, chunk)
        interface.inject([
            fragment(datagram, 1000..<2000, id: 1, from: peer), fragment(datagram, 2000..<3000, id: 1, from: peer),
        ])
        stack.runUntilIdle()
        XCTAssertEqual(received(), [data])
    }

    /// Fragments hash by addresses; the whole datagram goes to the thread its ports pick.
    func testReassembledDatagramGoesToItsFlowsThread() throws {
        clock = ManualClock(startingAt: 1_000_000_000)
        stack = NetworkStack(.init(threadCount: 4, clock: clock, mode: .driven, seed: 1))
        interface = TestInterface()
        try stack.addAddress(local, prefixLength: 24, to: interface)
        receiver = try stack.socket(.inet, .datagram)
        try receiver.bind(to: .ipv4(.unspecified, port: 9000))
        stack.runUntilIdle()
        let inet = stack.inet
        // A source port whose flow hashes to a thread other than the fragments' thread.
        let fragmentThread = inet.threadIndex(source: peer, destination: local, sourcePort: 0, destinationPort: 0)
        guard
            let port = (UInt16(1000)..<2000).first(where: {
                inet.threadIndex(source: peer, destination: local, sourcePort: $0, destinationPort: 9000)
                    != fragmentThread
            })
        else { return XCTFail("no port hashes elsewhere") }
        let flowThread = inet.threadIndex(source: peer, destination: local, sourcePort: port, destinationPort: 9000)
        let data = [UInt8](repeating: 5, count: 1992)
        let datagram = UDPHeader(sourcePort: port, destinationPort: 9000).bytes(
            payload: data, source: peer, destination: local)
        interface.inject([
            fragment(datagram, 0..<1000, id: 3, from: peer), fragment(datagram, 1000..<2000, id: 3, from: peer),
        ])
        // Twice: the stack steps its threads in order, and the hand-over may go to an earlier one.
        stack.runUntilIdle()
        stack.runUntilIdle()
        XCTAssertEqual(received(), [data])
        let udpIn = inet.perThread.map { $0.counters[InetCounter.udpIn.rawValue] }
        XCTAssertEqual(udpIn[flowThread], 1, "\(udpIn)")
        XCTAssertEqual(udpIn.reduce(0, +), 1)
        XCTAssertEqual(inet.perThread[fragmentThread].counters[InetCounter.reassembled.rawValue], 1)
    }
}
