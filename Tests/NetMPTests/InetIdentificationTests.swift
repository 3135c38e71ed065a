import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// IPv4 identifications drawn from per-destination hashed counters (Linux's `ip_idents`).
final class InetIdentificationTests: SingleHostTestCase {
    /// The reference vector of the SipHash paper: key 00..0f, message 00..0f (16 bytes).
    func testSipHashMatchesTheReferenceVector() {
        XCTAssertEqual(
            SipHash24.hash(
                key0: 0x0706_0504_0302_0100, key1: 0x0F0E_0D0C_0B0A_0908, 0x0706_0504_0302_0100,
                0x0F0E_0D0C_0B0A_0908),
            0x3F2A_CC7F_57C2_9BDB)
    }

    /// Sends to one destination do not advance another's identifications (one global counter
    /// made them step by two when sends alternated, leaking the send rate to each peer).
    func testIdentificationsAreConsecutivePerDestination() throws {
        try makeStack()
        let other = address("198.18.0.3")
        let otherMAC = MACAddress(0x02, 0, 0, 0, 0, 3)
        for round in 0..<4 {
            try receiver.send([UInt8(round)], to: .ipv4(peer, port: 7))
            try receiver.send([UInt8(round)], to: .ipv4(other, port: 7))
        }
        stack.runUntilIdle()
        for (sender, mac) in [(peer, peerMAC), (other, otherMAC)] {
            let reply = ARPPacket(
                operation: .reply, senderHardwareAddress: mac, senderProtocolAddress: sender,
                targetHardwareAddress: interface.hardwareAddress, targetProtocolAddress: local)
            interface.inject([
                EthernetHeader(destination: interface.hardwareAddress, source: mac, etherType: .arp).bytes()
                    + reply.bytes()
            ])
        }
        stack.runUntilIdle()
        var identifications: [IPv4Address: [UInt16]] = [:]
        for frame in interface.sent.withLock({ $0 }) {
            guard case .success(let ethernet) = EthernetHeader.parse(frame), ethernet.header.etherType == .ipv4,
                case .success(let packet) = IPv4Header.parse(Array(frame[14...]), verifyChecksum: true)
            else { continue }
            identifications[packet.header.destination, default: []].append(packet.header.identification)
        }
        for destination in [peer, other] {
            let ids = identifications[destination] ?? []
            XCTAssertEqual(ids.count, 4)
            guard let first = ids.first else { continue }
            XCTAssertEqual(ids, (0..<4).map { first &+ UInt16($0) }, "\(destination)")
        }
        // The two sequences start at unrelated places (keyed hash), not next to each other.
        let firsts = [peer, other].compactMap { identifications[$0]?.first }
        XCTAssertEqual(firsts.count, 2)
        if firsts.count == 2 { XCTAssertGreaterThan(Swift.max(firsts[0] &- firsts[1], firsts[1] &- firsts[0]), 8) }
    }

    /// Another stack seeded otherwise starts elsewhere: the offsets are keyed.
    func testOffsetsDependOnTheKey() {
        let now: Int64 = 5_000_000_000
        let first = IPIdentifiers(seed: 1).next(source: local, destination: peer, protocol: 17, now: now)
        let second = IPIdentifiers(seed: 2).next(source: local, destination: peer, protocol: 17, now: now)
        let again = IPIdentifiers(seed: 1).next(source: local, destination: peer, protocol: 17, now: now)
        XCTAssertNotEqual(first, second)
        XCTAssertEqual(first, again)
    }

    /// Within a millisecond a destination's identifications are consecutive; after an idle gap
    /// the counter moves on by a keyed random amount below the gap in milliseconds (Linux).
    func testIdleCounterMovesOnByLessThanTheGap() {
        let identifiers = IPIdentifiers(seed: 9)
        var now: Int64 = 7_000_000_000
        var previous = identifiers.next(source: local, destination: peer, protocol: 17, now: now)
        var jumps: [UInt16] = []
        for _ in 0..<8 {
            let same = identifiers.next(source: local, destination: peer, protocol: 17, now: now)
            XCTAssertEqual(same, previous &+ 1)
            now += 1_000_000_000
            let later = identifiers.next(source: local, destination: peer, protocol: 17, now: now)
            let jump = later &- same
            XCTAssertGreaterThanOrEqual(jump, 1)
            XCTAssertLessThanOrEqual(jump, 1000)
            jumps.append(jump)
            previous = later
        }
        XCTAssertGreaterThan(Set(jumps).count, 4, "\(jumps)")
    }

    /// Long idle gaps make big steps; the per-bucket counter wraps instead of trapping (it once
    /// crashed a protocol thread under a long TCP run).
    func testCounterWrapsAfterLongIdleGaps() {
        let identifiers = IPIdentifiers(seed: 10)
        var ids = Set<UInt16>()
        for step in 0..<256 {
            ids.insert(
                identifiers.next(
                    source: local, destination: peer, protocol: 6, now: Int64(step) * 2_147_483_648_000_000))
        }
        XCTAssertGreaterThan(ids.count, 1)
    }
}
