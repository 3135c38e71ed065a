import NetMPWire
import XCTest

final class UDPTests: XCTestCase {
    private var datagram: [UInt8] { Array(KnownPackets.dnsQuery[20...]) }

    private func parse(_ bytes: [UInt8], verify: Bool = true) -> Result<UDPPacket, WireError> {
        UDPHeader.parse(bytes, source: KnownPackets.client, destination: KnownPackets.server, verifyChecksum: verify)
    }

    func testParseDNSQuery() throws {
        let packet = try parse(datagram).get()
        XCTAssertEqual(packet.header.sourcePort, 53124)
        XCTAssertEqual(packet.header.destinationPort, 53)
        XCTAssertEqual(packet.header.length, 37)
        XCTAssertEqual(packet.header.checksum, 0x2887)
        XCTAssertTrue(packet.header.hasChecksum)
        XCTAssertEqual(packet.payloadRange, 8..<37)
        XCTAssertEqual(Array(datagram[packet.payloadRange].prefix(2)), [0xAB, 0xCD])
    }

    func testRoundTrip() throws {
        let packet = try parse(datagram).get()
        let emitted = packet.header.bytes(
            payload: Array(datagram[packet.payloadRange]), source: KnownPackets.client,
            destination: KnownPackets.server)
        XCTAssertEqual(emitted, datagram)
    }

    func testZeroChecksumMeansNone() throws {
        var bytes = datagram
        bytes[6] = 0
        bytes[7] = 0
        let packet = try parse(bytes).get()
        XCTAssertFalse(packet.header.hasChecksum)
        let header = UDPHeader(sourcePort: 53124, destinationPort: 53)
        XCTAssertEqual(
            header.bytes(
                payload: Array(bytes[8...]), source: KnownPackets.client, destination: KnownPackets.server,
                computeChecksum: false),
            bytes)
    }

    func testComputedZeroIsSentAsAllOnes() throws {
        // Choose the payload word so the one's-complement sum is 0xFFFF, i.e. the checksum computes to 0.
        let header = UDPHeader(sourcePort: 1, destinationPort: 2)
        let probe = header.bytes(payload: [0, 0], source: KnownPackets.client, destination: KnownPackets.server)
        let checksum = UInt16(probe[6]) << 8 | UInt16(probe[7])
        let bytes = header.bytes(
            payload: [UInt8(checksum >> 8), UInt8(checksum & 0xFF)], source: KnownPackets.client,
            destination: KnownPackets.server)
        XCTAssertEqual(Array(bytes[6..<8]), [0xFF, 0xFF])
        XCTAssertNotNil(parse(bytes).success)
    }

    func testValidationErrors() {
        var bytes = datagram
        XCTAssertEqual(parse(Array(bytes.prefix(7))).failure, .truncated)
        XCTAssertEqual(parse(Array(bytes.prefix(36))).failure, .truncated)
        bytes[5] = 7  // Length below the header.
        XCTAssertEqual(parse(bytes, verify: false).failure, .badLength)
        bytes = datagram
        bytes[20] ^= 0x20
        XCTAssertEqual(parse(bytes).failure, .badChecksum)
        XCTAssertEqual(
            UDPHeader.parse(datagram, source: KnownPackets.server, destination: KnownPackets.server).failure,
            .badChecksum)
        // Trailing bytes past the UDP length are not payload.
        XCTAssertEqual(parse(datagram + [1, 2, 3]).success?.payloadRange, 8..<37)
    }

    func testRobustness() {
        for verify in [true, false] {
            let counts = robustness(
                of: datagram, fieldOffsets: [4, 5], seed: 30, mutations: 15_000, randomInputs: 5_000
            ) {
                parse($0, verify: verify)
            } check: { input, packet in
                assertRangesInside(packet, input)
                XCTAssertEqual(packet.payloadRange.upperBound, Int(packet.header.length))
            }
            XCTAssertGreaterThan(counts.accepted, 0)
        }
    }
}
