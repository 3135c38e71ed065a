import NetMPWire
import XCTest

final class ICMPTests: XCTestCase {
    private var pingMessage: [UInt8] { Array(KnownPackets.ping[20...]) }

    func testParseEchoRequest() throws {
        let packet = try ICMPHeader.parse(pingMessage).get()
        XCTAssertEqual(packet.header.message, .echoRequest(identifier: 0x1C2B, sequenceNumber: 1))
        XCTAssertEqual(packet.header.checksum, 0x547A)
        XCTAssertEqual(packet.payloadRange, 8..<56)
        XCTAssertEqual(packet.header.bytes(payload: Array(pingMessage[8...])), pingMessage)
        XCTAssertEqual(ICMPHeader.parse(pingMessage).success?.quotedDatagram(in: pingMessage).failure, .unsupported)
    }

    func testEchoReplyBuiltFromRequest() throws {
        let request = try ICMPHeader.parse(pingMessage).get()
        guard case .echoRequest(let identifier, let sequenceNumber) = request.header.message else {
            return XCTFail("not an echo request")
        }
        let reply = ICMPHeader(message: .echoReply(identifier: identifier, sequenceNumber: sequenceNumber))
        let bytes = reply.bytes(payload: Array(pingMessage[request.payloadRange]))
        // Only the type changes (8 -> 0), so the checksum rises by 0x0800.
        XCTAssertEqual(Array(bytes.prefix(4)), [0x00, 0x00, 0x5C, 0x7A])
        XCTAssertEqual(ICMPHeader.parse(bytes).success?.header.message, reply.message)
    }

    func testPortUnreachableQuotesOriginalDatagram() throws {
        let datagram = KnownPackets.portUnreachable
        let ip = try IPv4Header.parse(datagram).get()
        let message = Array(datagram[ip.payloadRange])
        let icmp = try ICMPHeader.parse(message).get()
        XCTAssertEqual(icmp.header.message, .destinationUnreachable(code: .portUnreachable, nextHopMTU: 0))
        let quote = try icmp.quotedDatagram(in: message).get()
        XCTAssertEqual(quote.header.source, KnownPackets.client)
        XCTAssertEqual(quote.header.destination, KnownPackets.server)
        XCTAssertEqual(quote.header.protocol, .udp)
        XCTAssertEqual(quote.sourcePort, 53124)
        XCTAssertEqual(quote.destinationPort, 53)
        XCTAssertEqual(quote.transportRange, 28..<65)
        XCTAssertEqual(icmp.header.bytes(payload: Array(message[8...])), message)
    }

    func testFragmentationNeededCarriesMTU() throws {
        let message = KnownPackets.fragmentationNeeded
        let icmp = try ICMPHeader.parse(message).get()
        XCTAssertEqual(icmp.header.message, .destinationUnreachable(code: .fragmentationNeeded, nextHopMTU: 1400))
        let quote = try icmp.quotedDatagram(in: message).get()
        XCTAssertEqual(quote.header.totalLength, 57)  // The original length, longer than the quote.
        XCTAssertEqual(quote.transportRange, 28..<36)
        XCTAssertEqual(quote.destinationPort, 53)
        XCTAssertEqual(icmp.header.bytes(payload: Array(message[8...])), message)
        // Fewer than 8 quoted transport bytes cannot identify the socket.
        let short = ICMPHeader(message: icmp.header.message).bytes(payload: Array(message[8..<35]))
        XCTAssertEqual(ICMPHeader.parse(short).success?.quotedDatagram(in: short).failure, .truncated)
    }

    func testTimeExceededAndOtherTypes() throws {
        let timeExceeded = ICMPHeader(message: .timeExceeded(code: .timeToLiveExceeded))
            .bytes(payload: Array(KnownPackets.dnsQuery.prefix(28)))
        let parsed = try ICMPHeader.parse(timeExceeded).get()
        XCTAssertEqual(parsed.header.message, .timeExceeded(code: .timeToLiveExceeded))
        XCTAssertEqual(try parsed.quotedDatagram(in: timeExceeded).get().sourcePort, 53124)
        let redirect = ICMPHeader(message: .other(type: 5, code: 1, restOfHeader: 0xC612_00FE)).bytes()
        XCTAssertEqual(
            ICMPHeader.parse(redirect).success?.header.message, .other(type: 5, code: 1, restOfHeader: 0xC612_00FE))
    }

    func testValidationErrors() {
        var message = pingMessage
        XCTAssertEqual(ICMPHeader.parse(Array(message.prefix(7))).failure, .truncated)
        message[30] ^= 1
        XCTAssertEqual(ICMPHeader.parse(message).failure, .badChecksum)
        XCTAssertNotNil(ICMPHeader.parse(message, verifyChecksum: false).success)
    }

    func testRobustness() {
        let samples = [pingMessage, KnownPackets.fragmentationNeeded, Array(KnownPackets.portUnreachable[20...])]
        for (index, message) in samples.enumerated() {
            for verify in [true, false] {
                robustness(
                    of: message, fieldOffsets: [0, 1, 4, 5, 6, 7, 8, 10, 11], seed: 20 + UInt64(index),
                    mutations: 8_000, randomInputs: 2_000
                ) {
                    ICMPHeader.parse($0, verifyChecksum: verify)
                } check: { input, packet in
                    assertRangesInside(packet, input)
                    if case .success(let quote) = packet.quotedDatagram(in: input) {
                        XCTAssertGreaterThanOrEqual(quote.transportRange.count, 8)
                        XCTAssertLessThanOrEqual(quote.transportRange.upperBound, input.count)
                    }
                }
            }
        }
    }
}
