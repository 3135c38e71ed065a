import NetMPWire
import XCTest

final class ARPTests: XCTestCase {
    /// "Who has 198.18.0.2? Tell 198.18.0.1" as Linux sends it, with the Ethernet padding to 60 bytes.
    let requestFrame = hex(
        """
        ff ff ff ff ff ff 02 00 00 00 00 01 08 06
        00 01 08 00 06 04 00 01 02 00 00 00 00 01 c6 12 00 01 00 00 00 00 00 00 c6 12 00 02
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
        """)

    func testParseRealRequest() throws {
        let frame = try EthernetHeader.parse(requestFrame).get()
        XCTAssertEqual(frame.header.etherType, .arp)
        let arp = try ARPPacket.parse(Array(requestFrame[frame.payloadRange])).get()
        XCTAssertEqual(arp.operation, .request)
        XCTAssertEqual(arp.senderHardwareAddress, MACAddress("02:00:00:00:00:01"))
        XCTAssertEqual(arp.senderProtocolAddress, IPv4Address("198.18.0.1"))
        XCTAssertEqual(arp.targetHardwareAddress, .zero)
        XCTAssertEqual(arp.targetProtocolAddress, IPv4Address("198.18.0.2"))
        XCTAssertEqual(arp.bytes(), Array(requestFrame[14..<42]))
    }

    func testReply() throws {
        let request = try ARPPacket.parse(Array(requestFrame[14...])).get()
        let ours = try XCTUnwrap(MACAddress("02:00:00:00:00:02"))
        let reply = request.reply(from: ours)
        XCTAssertEqual(
            reply.bytes(),
            hex("00 01 08 00 06 04 00 02 02 00 00 00 00 02 c6 12 00 02 02 00 00 00 00 01 c6 12 00 01"))
        XCTAssertEqual(ARPPacket.parse(reply.bytes()).success, reply)
    }

    func testRejectsOtherHardwareAndShortPackets() {
        var packet = Array(requestFrame[14..<42])
        XCTAssertEqual(ARPPacket.parse(Array(packet.prefix(27))).failure, .truncated)
        packet[1] = 6  // IEEE 802 hardware type.
        XCTAssertEqual(ARPPacket.parse(packet).failure, .unsupported)
        packet[1] = 1
        packet[5] = 16  // IPv6-sized protocol addresses.
        XCTAssertEqual(ARPPacket.parse(packet).failure, .unsupported)
    }

    func testRobustness() {
        let packet = Array(requestFrame[14...])
        let counts = robustness(
            of: packet, fieldOffsets: [0, 1, 2, 3, 4, 5, 6, 7], seed: 2, mutations: 20_000, randomInputs: 5_000
        ) {
            ARPPacket.parse($0)
        } check: { input, arp in
            XCTAssertGreaterThanOrEqual(input.count, ARPPacket.length)
            XCTAssertEqual(arp.bytes(), Array(input.prefix(ARPPacket.length)))
        }
        XCTAssertGreaterThan(counts.accepted, 0)
        XCTAssertGreaterThan(counts.rejected, 0)
    }
}
