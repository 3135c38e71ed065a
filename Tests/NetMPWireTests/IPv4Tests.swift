import NetMPWire
import XCTest

/// Packets shared by the IPv4, ICMP, UDP and TCP tests, laid out as Linux sends them between
/// 198.18.0.1 and 198.18.0.2 (checksums computed by an independent script).
enum KnownPackets {
    /// `ping -c1 198.18.0.2` with 48 bytes of data: IPv4 (id 0xa6f2, DF, TTL 64) + ICMP echo request
    /// id 0x1c2b seq 1, data = 8-byte timestamp then 0x10...0x37.
    static let ping = hex(
        """
        45 00 00 4c a6 f2 40 00 40 01 07 97 c6 12 00 01 c6 12 00 02
        08 00 54 7a 1c 2b 00 01 5e 1f 6a 67 00 00 00 00 10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f
        20 21 22 23 24 25 26 27 28 29 2a 2b 2c 2d 2e 2f 30 31 32 33 34 35 36 37
        """)

    /// A Linux SYN 198.18.0.1:45678 -> 198.18.0.2:80: MSS 1460, SACK-permitted, timestamps, NOP, WS 7.
    static let syn = hex(
        """
        45 00 00 3c 3b 8e 40 00 40 06 73 06 c6 12 00 01 c6 12 00 02
        b2 6e 00 50 5a 1b 2c 3d 00 00 00 00 a0 02 fa f0 71 b8 00 00
        02 04 05 b4 04 02 08 0a 0a 0b 0c 0d 00 00 00 00 01 03 03 07
        """)

    /// A DNS query for example.com A from 198.18.0.1:53124 to 198.18.0.2:53.
    static let dnsQuery = hex(
        """
        45 00 00 39 77 aa 40 00 40 11 36 e2 c6 12 00 01 c6 12 00 02
        cf 84 00 35 00 25 28 87 ab cd 01 00 00 01 00 00 00 00 00 00 07 65 78 61 6d 70 6c 65 03 63 6f 6d 00
        00 01 00 01
        """)

    /// 198.18.0.2's ICMP port unreachable for `dnsQuery` (TOS 0xc0, no DF, quoting the whole datagram).
    static let portUnreachable =
        hex(
            """
            45 c0 00 55 0c 01 00 00 40 01 e1 bf c6 12 00 02 c6 12 00 01
            03 03 89 5b 00 00 00 00
            """) + dnsQuery

    /// An ICMP "fragmentation needed, next-hop MTU 1400" quoting the header and 8 bytes of `dnsQuery`.
    static let fragmentationNeeded = hex("03 04 ff 1d 00 00 05 78") + Array(dnsQuery.prefix(28))

    static let client = IPv4Address(198, 18, 0, 1)
    static let server = IPv4Address(198, 18, 0, 2)
}

final class IPv4Tests: XCTestCase {
    func testParsePingExactFields() throws {
        let packet = try IPv4Header.parse(KnownPackets.ping).get()
        let header = packet.header
        XCTAssertEqual(header.dscp, 0)
        XCTAssertEqual(header.ecn, 0)
        XCTAssertEqual(header.totalLength, 76)
        XCTAssertEqual(header.identification, 0xA6F2)
        XCTAssertTrue(header.dontFragment)
        XCTAssertFalse(header.moreFragments)
        XCTAssertEqual(header.fragmentOffset, 0)
        XCTAssertFalse(header.isFragment)
        XCTAssertEqual(header.timeToLive, 64)
        XCTAssertEqual(header.protocol, .icmp)
        XCTAssertEqual(header.checksum, 0x0797)
        XCTAssertEqual(header.source, KnownPackets.client)
        XCTAssertEqual(header.destination, KnownPackets.server)
        XCTAssertEqual(packet.headerLength, 20)
        XCTAssertEqual(packet.payloadRange, 20..<76)
    }

    func testRoundTripKnownHeaders() throws {
        for datagram in [KnownPackets.ping, KnownPackets.syn, KnownPackets.dnsQuery, KnownPackets.portUnreachable] {
            let packet = try IPv4Header.parse(datagram).get()
            XCTAssertEqual(packet.header.bytes(), Array(datagram.prefix(20)))
        }
        let unreachable = try IPv4Header.parse(KnownPackets.portUnreachable).get().header
        XCTAssertEqual(unreachable.dscp, 0x30)
        XCTAssertFalse(unreachable.dontFragment)
    }

    func testEthernetPaddingIsExcludedFromPayload() throws {
        let padded = KnownPackets.syn + [UInt8](repeating: 0, count: 6)
        XCTAssertEqual(try IPv4Header.parse(padded).get().payloadRange, 20..<60)
    }

    func testOptionsAreSkipped() throws {
        // IHL 6 with a router-alert option, total length 24, no payload.
        var datagram = hex("46 00 00 18 00 01 00 00 01 02 00 00 c6 12 00 01 e0 00 00 16 94 04 00 00")
        let checksum = datagram.withUnsafeBytes { InternetChecksum.checksum($0) }
        datagram[10] = UInt8(checksum >> 8)
        datagram[11] = UInt8(checksum & 0xFF)
        let packet = try IPv4Header.parse(datagram).get()
        XCTAssertEqual(packet.headerLength, 24)
        XCTAssertEqual(packet.payloadRange, 24..<24)
        XCTAssertTrue(packet.header.destination.isMulticast)
    }

    func testFragmentFields() throws {
        let header = IPv4Header(
            totalLength: 1500, identification: 9, dontFragment: false, moreFragments: true, fragmentOffset: 185,
            protocol: .udp, source: KnownPackets.client, destination: KnownPackets.server)
        var datagram = header.bytes()
        datagram += [UInt8](repeating: 0, count: 1480)
        let parsed = try IPv4Header.parse(datagram).get().header
        XCTAssertTrue(parsed.moreFragments)
        XCTAssertEqual(parsed.fragmentOffset, 185)
        XCTAssertEqual(parsed.fragmentByteOffset, 1480)
        XCTAssertTrue(parsed.isFragment)
    }

    func testValidationErrors() {
        var datagram = KnownPackets.ping
        XCTAssertEqual(IPv4Header.parse(Array(datagram.prefix(19))).failure, .truncated)
        XCTAssertEqual(IPv4Header.parse(Array(datagram.prefix(75))).failure, .truncated)
        datagram[0] = 0x65
        XCTAssertEqual(IPv4Header.parse(datagram).failure, .badVersion)
        datagram[0] = 0x44
        XCTAssertEqual(IPv4Header.parse(datagram).failure, .badHeaderLength)
        datagram[0] = 0x4F
        XCTAssertEqual(IPv4Header.parse(Array(datagram.prefix(40))).failure, .truncated)
        datagram = KnownPackets.ping
        datagram[3] = 19  // Total length below the header length.
        XCTAssertEqual(IPv4Header.parse(datagram, verifyChecksum: false).failure, .badLength)
        datagram = KnownPackets.ping
        datagram[8] = 63  // TTL changed without fixing the checksum.
        XCTAssertEqual(IPv4Header.parse(datagram).failure, .badChecksum)
        XCTAssertNotNil(IPv4Header.parse(datagram, verifyChecksum: false).success)
    }

    func testEmitRefusesImpossibleFields() {
        var header = IPv4Header(
            totalLength: 19, protocol: .tcp, source: KnownPackets.client, destination: KnownPackets.server)
        XCTAssertEqual(header.bytes(), [])
        header.totalLength = 20
        header.dscp = 64
        XCTAssertEqual(header.bytes(), [])
    }

    func testRobustness() {
        for (index, datagram) in [KnownPackets.ping, KnownPackets.syn, KnownPackets.portUnreachable].enumerated() {
            for verify in [true, false] {
                robustness(
                    of: datagram, fieldOffsets: [0, 2, 3, 6, 7], seed: 10 + UInt64(index), mutations: 10_000,
                    randomInputs: 2_000
                ) {
                    IPv4Header.parse($0, verifyChecksum: verify)
                } check: { input, packet in
                    assertRangesInside(packet, input)
                    XCTAssertGreaterThanOrEqual(packet.headerLength, 20)
                    XCTAssertEqual(packet.payloadRange.upperBound, Int(packet.header.totalLength))
                }
            }
        }
    }
}
