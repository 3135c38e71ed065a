import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// The stack's one neighbour table: bounded on both learning paths, resolving entries evictable,
/// a periodic sweep, re-probing without stalling a flow, and address defence (RFC 5227).
final class InetNeighbourTests: SingleHostTestCase {
    func arpFrame(
        _ operation: ARPOperation, from sender: IPv4Address, mac: MACAddress, target: IPv4Address,
        to destination: MACAddress = .broadcast
    ) -> [UInt8] {
        let packet = ARPPacket(
            operation: operation, senderHardwareAddress: mac, senderProtocolAddress: sender,
            targetHardwareAddress: operation == .request ? .zero : destination, targetProtocolAddress: target)
        return EthernetHeader(destination: destination, source: mac, etherType: .arp).bytes() + packet.bytes()
    }

    func sentARP() -> [(ethernet: EthernetHeader, arp: ARPPacket)] {
        interface.sent.withLock { $0 }.compactMap { bytes in
            guard case .success(let ethernet) = EthernetHeader.parse(bytes), ethernet.header.etherType == .arp,
                case .success(let arp) = ARPPacket.parse(Array(bytes[14...]))
            else { return nil }
            return (ethernet.header, arp)
        }
    }

    /// The request path: every request naming our address used to make an entry, without limit.
    func testRequestFloodStaysWithinTheLimit() throws {
        var settings = InetSettings()
        settings.arpCacheLimit = 64
        try makeStack(settings)
        var random = SeededRandom(seed: 99)
        for _ in 0..<50 {
            var batch: [[UInt8]] = []
            for _ in 0..<40 {
                let sender = IPv4Address(rawValue: 0xC612_0000 | UInt32(truncatingIfNeeded: random.next() & 0xFFFF))
                let mac = MACAddress(rawValue: 0x0200_0000_0000 | (random.next() & 0xFF_FFFF_FFFF))
                batch.append(arpFrame(.request, from: sender, mac: mac, target: local))
            }
            interface.inject(batch)
            stack.runUntilIdle()
            XCTAssertLessThanOrEqual(stack.inet.neighbours.count, 64)
        }
        let stats = stack.inetStatistics()
        XCTAssertEqual(stats[.arpIn], 2000)
        XCTAssertGreaterThanOrEqual(stats[.arpEvictions], 2000 - 64 - 16)
    }

    /// The output path: entries still resolving (holding packets) used to be unevictable.
    func testResolvingEntriesAreEvicted() throws {
        try makeStack()
        try stack.addAddress(address("198.18.16.1"), prefixLength: 20, to: interface)
        for index in 0..<1100 {
            let target = IPv4Address(rawValue: address("198.18.16.2").rawValue + UInt32(index))
            try receiver.send([1], to: .ipv4(target, port: 7))
            if index % 100 == 99 { stack.runUntilIdle() }
        }
        stack.runUntilIdle()
        XCTAssertLessThanOrEqual(stack.inet.neighbours.count, stack.inetSettings.arpCacheLimit)
        XCTAssertLessThanOrEqual(stack.inet.neighbours.pendingFrames, stack.inetSettings.arpCacheLimit)
        XCTAssertGreaterThanOrEqual(stack.inetStatistics()[.arpEvictions], 1100 - 1024)
    }

    /// Entries learned from requests used to stay forever: the sweep removes unused ones.
    func testSweepRemovesUnusedEntries() throws {
        try makeStack()
        interface.inject([arpFrame(.request, from: peer, mac: peerMAC, target: local)])
        stack.runUntilIdle()
        XCTAssertEqual(stack.inet.neighbours.lookup(ARPKey(interfaceIndex: 1, address: peer)), peerMAC)
        let lifetime = stack.inetSettings.arpLifetime
        for _ in 0..<Int(2 * lifetime.components.seconds + 2) {
            clock.advance(by: .seconds(1))
            stack.runUntilIdle()
        }
        XCTAssertNil(stack.inet.neighbours.lookup(ARPKey(interfaceIndex: 1, address: peer)))
        XCTAssertEqual(stack.inet.neighbours.count, 0)
    }

    /// An expired entry in use keeps its address while a unicast request re-probes it: the
    /// datagram leaves at once (it used to wait for a broadcast resolution).
    func testExpiredEntryIsProbedWithoutStallingTheFlow() throws {
        try makeStack()
        try receiver.send([1], to: .ipv4(peer, port: 7))
        stack.runUntilIdle()
        interface.inject([arpFrame(.reply, from: peer, mac: peerMAC, target: local, to: interface.hardwareAddress)])
        stack.runUntilIdle()
        XCTAssertEqual(stack.inetStatistics()[.udpOut], 1)
        clock.advance(by: stack.inetSettings.arpLifetime + .milliseconds(1))
        stack.runUntilIdle()
        let before = interface.sent.withLock { $0.count }
        try receiver.send([2], to: .ipv4(peer, port: 7))
        stack.runUntilIdle()
        let after = Array(interface.sent.withLock { $0 }[before...])
        XCTAssertEqual(after.count, 2)
        guard after.count == 2, case .success(let data) = EthernetHeader.parse(after[0]),
            case .success(let probe) = EthernetHeader.parse(after[1])
        else { return XCTFail("expected a datagram and a probe") }
        XCTAssertEqual(data.header.etherType, .ipv4)
        XCTAssertEqual(data.header.destination, peerMAC)
        XCTAssertEqual(probe.header.etherType, .arp)
        XCTAssertEqual(probe.header.destination, peerMAC)
        XCTAssertEqual(stack.inetStatistics()[.arpExpired], 1)
        // No answer: two more probes a second apart, then the entry goes.
        for _ in 0..<4 {
            clock.advance(by: .seconds(1))
            stack.runUntilIdle()
        }
        let probes = sentARP().filter { $0.ethernet.destination == peerMAC && $0.arp.operation == .request }
        XCTAssertEqual(probes.count, 3)
        XCTAssertNil(stack.inet.neighbours.lookup(ARPKey(interfaceIndex: 1, address: peer)))
    }

    /// Another host claiming our address: one defending announcement per 10 s (RFC 5227).
    func testConflictIsDefendedOncePerInterval() throws {
        try makeStack()
        let intruder = MACAddress(0x02, 0, 0, 0, 0, 0x66)
        let claim = arpFrame(.request, from: local, mac: intruder, target: local)
        let announcementsBefore = stack.inetStatistics()[.arpAnnouncementsSent]
        interface.inject([claim, claim])
        stack.runUntilIdle()
        XCTAssertEqual(stack.inetStatistics()[.arpConflicts], 2)
        XCTAssertEqual(stack.inetStatistics()[.arpDefences], 1)
        XCTAssertEqual(stack.inetStatistics()[.arpAnnouncementsSent], announcementsBefore + 1)
        clock.advance(by: .seconds(10))
        interface.inject([claim])
        stack.runUntilIdle()
        XCTAssertEqual(stack.inetStatistics()[.arpDefences], 2)
        XCTAssertNil(stack.inet.neighbours.lookup(ARPKey(interfaceIndex: 1, address: local)))
    }

    /// Sends to a reachable neighbour read the thread's cache without a lock (every send took
    /// the table's lock); a changed mapping invalidates the cache at once.
    func testSendPathReadsWithoutTheLock() throws {
        try makeStack()
        try receiver.send([0], to: .ipv4(peer, port: 7))
        stack.runUntilIdle()
        interface.inject([arpFrame(.reply, from: peer, mac: peerMAC, target: local, to: interface.hardwareAddress)])
        stack.runUntilIdle()
        for index in 1...50 { try receiver.send([UInt8(index)], to: .ipv4(peer, port: 7)) }
        stack.runUntilIdle()
        XCTAssertEqual(stack.inetStatistics()[.udpOut], 51)
        XCTAssertEqual(stack.inetStatistics()[.neighbourLockedLookups], 2)
        // The peer moves to another card: the next datagram goes to the new address.
        let moved = MACAddress(0x02, 0, 0, 0, 0, 0x22)
        interface.inject([arpFrame(.request, from: peer, mac: moved, target: local)])
        stack.runUntilIdle()
        try receiver.send([99], to: .ipv4(peer, port: 7))
        stack.runUntilIdle()
        guard let last = interface.sent.withLock({ $0.last }), case .success(let ethernet) = EthernetHeader.parse(last)
        else { return XCTFail("nothing sent") }
        XCTAssertEqual(ethernet.header.etherType, .ipv4)
        XCTAssertEqual(ethernet.header.destination, moved)
        XCTAssertEqual(stack.inetStatistics()[.neighbourLockedLookups], 3)
    }

    /// A queue limit of 0 holds nothing while resolving (the second datagram used to be held).
    func testZeroQueueLimitHoldsNothing() throws {
        var settings = InetSettings()
        settings.arpQueueLimit = 0
        try makeStack(settings)
        for index in 0..<3 { try receiver.send([UInt8(index)], to: .ipv4(peer, port: 7)) }
        stack.runUntilIdle()
        XCTAssertEqual(stack.inetStatistics()[.arpQueueDrops], 3)
        XCTAssertEqual(stack.inet.neighbours.pendingFrames, 0)
        XCTAssertEqual(stack.inetStatistics()[.arpRequestsSent], 1)
    }
}
