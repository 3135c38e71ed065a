import NetMPTCP
import NetMPWire
import XCTest

/// Sequence-number arithmetic, SipHash-2-4, RFC 6528 ISNs and RFC 6056 port choice.
final class SequenceAndHashTests: XCTestCase {
    func testSequenceNumbersCompareModulo2To32() {
        let nearTop = SequenceNumber(0xFFFF_FFF0)
        let wrapped = nearTop + 0x20
        XCTAssertEqual(wrapped.rawValue, 0x10)
        XCTAssertTrue(nearTop < wrapped)
        XCTAssertFalse(wrapped < nearTop)
        XCTAssertEqual(wrapped - nearTop, 0x20)
        XCTAssertEqual(nearTop - wrapped, -0x20)
        XCTAssertEqual((wrapped - 0x20), nearTop)
        XCTAssertTrue(SequenceNumber(5).isIn(nearTop, wrapped))
        XCTAssertTrue(nearTop.isIn(nearTop, wrapped))
        XCTAssertFalse(wrapped.isIn(nearTop, wrapped))
        XCTAssertFalse(SequenceNumber(0x7000_0000).isIn(nearTop, wrapped))
        XCTAssertEqual(SequenceNumber.max(nearTop, wrapped), wrapped)
        XCTAssertEqual(SequenceNumber.min(nearTop, wrapped), nearTop)
        XCTAssertTrue(SequenceNumber(0) < SequenceNumber(0x7FFF_FFFF))
        XCTAssertTrue(SequenceNumber(0x8000_0001) < SequenceNumber(0))
    }

    func testSipHashReferenceVectors() {
        // The reference implementation's vectors: key 00 01 … 0f, messages 00 01 … (n-1).
        let key = TCPSecretKey(bytes: 0..<16)
        let empty = SipHasher(key: key)
        XCTAssertEqual(empty.finalize(), 0x726f_db47_dd0e_0e31)
        var fifteen = SipHasher(key: key)
        fifteen.append(contentsOf: 0..<15)
        XCTAssertEqual(fifteen.finalize(), 0xa129_ca61_49be_45e5)
        var eight = SipHasher(key: key)
        eight.append(contentsOf: 0..<8)
        XCTAssertEqual(eight.finalize(), 0x93f5_f579_9a93_2462)
    }

    func testSipHashWordAppendsMatchTheirBytesAtEveryAlignment() {
        // A 16- or 32-bit append absorbs its bytes (most significant first) in one step: the
        // digest must be the byte-by-byte one wherever in an 8-byte block the value lands.
        let key = TCPSecretKey(bytes: 0..<16)
        for lead in 0..<8 {
            var words = SipHasher(key: key)
            var bytes = SipHasher(key: key)
            words.append(contentsOf: (0..<lead).map { UInt8($0) })
            bytes.append(contentsOf: (0..<lead).map { UInt8($0) })
            words.append(UInt32(0xC612_0001))
            bytes.append(contentsOf: [0xC6, 0x12, 0x00, 0x01])
            words.append(UInt16(0x9C40))
            bytes.append(contentsOf: [0x9C, 0x40])
            words.append(UInt32(0x0A0B_0C0D))
            bytes.append(contentsOf: [0x0A, 0x0B, 0x0C, 0x0D])
            words.append(UInt16(0x0050))
            bytes.append(contentsOf: [0x00, 0x50])
            XCTAssertEqual(words.finalize(), bytes.finalize(), "after \(lead) leading bytes")
        }
    }

    func testInitialSequenceNumbersPerRFC6528() {
        let generator = InitialSequenceNumbers(key: TCPSecretKey(bytes: Array(repeating: 7, count: 16)))
        let key = TCPConnectionKey(
            localAddress: .ipv4(IPv4Address(198, 18, 0, 1)), localPort: 40000,
            remoteAddress: .ipv4(IPv4Address(198, 18, 0, 2)), remotePort: 80)
        let first = generator.initialSequenceNumber(for: key, now: 0)
        // The clock part advances one per 4 µs.
        XCTAssertEqual(generator.initialSequenceNumber(for: key, now: 4_000_000) - first, 1000)
        XCTAssertEqual(generator.initialSequenceNumber(for: key, now: 3_999) - first, 0)
        // Another tuple or another key gives an unrelated offset.
        var other = key
        other.localPort = 40001
        XCTAssertNotEqual(generator.initialSequenceNumber(for: other, now: 0), first)
        let otherKey = InitialSequenceNumbers(key: TCPSecretKey(bytes: Array(repeating: 8, count: 16)))
        XCTAssertNotEqual(otherKey.initialSequenceNumber(for: key, now: 0), first)
        XCTAssertEqual(generator.initialSequenceNumber(for: key, now: 0), first, "deterministic for a key")
    }

    func testEphemeralPortsPerRFC6056() {
        let secret = TCPSecretKey(bytes: 1...16)
        let local = TCPAddress.ipv4(IPv4Address(198, 18, 0, 1))
        let remote = TCPAddress.ipv4(IPv4Address(198, 18, 0, 2))
        var selector = EphemeralPortSelector(key: secret, range: 50000...50009)
        var taken: Set<UInt16> = []
        for _ in 0..<10 {
            let port = selector.choose(localAddress: local, remoteAddress: remote, remotePort: 80) {
                taken.contains($0)
            }
            guard let port else { return XCTFail("a free port was not found") }
            XCTAssertTrue((50000...50009).contains(port))
            XCTAssertTrue(taken.insert(port).inserted)
        }
        XCTAssertNil(selector.choose(localAddress: local, remoteAddress: remote, remotePort: 80) { taken.contains($0) })

        // Consecutive connections to one destination get consecutive ports from a keyed offset;
        // another destination starts somewhere else.
        var fresh = EphemeralPortSelector(key: secret)
        let a = fresh.choose(localAddress: local, remoteAddress: remote, remotePort: 80) { _ in false }
        let b = fresh.choose(localAddress: local, remoteAddress: remote, remotePort: 80) { _ in false }
        XCTAssertEqual(b.map { Int($0) }, a.map { $0 == 65535 ? 49152 : Int($0) + 1 })
        var spread: Set<UInt16> = []
        for port: UInt16 in 1...20 {
            var selector = EphemeralPortSelector(key: secret)
            if let chosen = selector.choose(
                localAddress: local, remoteAddress: remote, remotePort: port, inUse: { _ in false })
            {
                spread.insert(chosen)
            }
        }
        XCTAssertGreaterThan(spread.count, 15, "destinations start at keyed, scattered offsets")
    }

    /// Connect's preference (a tuple that hashes to the socket's thread) picks the first free
    /// port it accepts among the next few free ones, else the first free port.
    func testEphemeralPortPreferenceTakesTheFirstAcceptedFreePort() {
        let secret = TCPSecretKey(bytes: 1...16)
        let local = TCPAddress.ipv4(IPv4Address(198, 18, 0, 1))
        let remote = TCPAddress.ipv4(IPv4Address(198, 18, 0, 2))
        var plain = EphemeralPortSelector(key: secret)
        guard
            let first = plain.choose(localAddress: local, remoteAddress: remote, remotePort: 80, inUse: { _ in false })
        else { return XCTFail("no port") }
        // The same search from the start, accepting only ports three past the first free one.
        var picky = EphemeralPortSelector(key: secret)
        let wanted = first == 65535 ? 49154 : (first == 65534 ? 49153 : first + 3)
        let chosen = picky.choose(
            localAddress: local, remoteAddress: remote, remotePort: 80, inUse: { $0 == first },
            preferred: { $0 == wanted })
        XCTAssertEqual(chosen, wanted)
        // Nothing accepted within reach: the first free port, as without a preference.
        var hopeless = EphemeralPortSelector(key: secret)
        let fallback = hopeless.choose(
            localAddress: local, remoteAddress: remote, remotePort: 80, inUse: { $0 == first },
            preferred: { _ in false })
        XCTAssertEqual(fallback, first == 65535 ? 49152 : first + 1)
        // A preference accepted only past the search's reach is not found.
        var far = EphemeralPortSelector(key: secret, range: 50000...50099)
        let base = far.choose(localAddress: local, remoteAddress: remote, remotePort: 80, inUse: { _ in false })
        var reach = EphemeralPortSelector(key: secret, range: 50000...50099)
        let beyond = reach.choose(
            localAddress: local, remoteAddress: remote, remotePort: 80, inUse: { _ in false },
            preferred: { port in base.map { Int(port) == 50000 + (Int($0) - 50000 + 40) % 100 } ?? false })
        XCTAssertEqual(beyond, base, "the 41st free port is past the 32 tried")
    }
}
