import NetMPWire
import XCTest

/// ICMP errors with RFC 4884 extensions, and quotes whose header checksum a router changed.
final class ICMPExtensionTests: XCTestCase {
    /// The quoted datagram: KnownPackets' DNS query (UDP 53124 -> 53), cut to `count` bytes.
    func quote(_ count: Int) -> [UInt8] { Array(KnownPackets.dnsQuery.prefix(count)) }

    /// An error message whose byte 5 says the quote is `words` 32-bit words, followed by an
    /// extension structure (version 2, a checksum, one object).
    func extended(type: UInt8, code: UInt8, words: UInt8, quote: [UInt8]) -> [UInt8] {
        var message: [UInt8] = [type, code, 0, 0, 0, words, 0, 0] + quote
        message += [UInt8](repeating: 0, count: Int(words) * 4 - quote.count)
        message += [0x20, 0, 0, 0, 0, 8, 1, 1, 0, 0, 0, 7]
        var sum: UInt32 = 0
        for index in stride(from: 0, to: message.count, by: 2) {
            sum += UInt32(message[index]) << 8 | UInt32(index + 1 < message.count ? message[index + 1] : 0)
        }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        let checksum = ~UInt16(sum)
        message[2] = UInt8(checksum >> 8)
        message[3] = UInt8(checksum & 0xFF)
        return message
    }

    /// Byte 5 set used to turn these into `.other`, whose quote was never read.
    func testExtendedErrorsAreUnderstood() throws {
        let unreachable = extended(type: 3, code: 3, words: 32, quote: quote(45))
        let icmp = try ICMPHeader.parse(unreachable).get()
        XCTAssertEqual(icmp.header.message, .destinationUnreachable(code: .portUnreachable, nextHopMTU: 0))
        let quoted = try icmp.quotedDatagram(in: unreachable).get()
        XCTAssertEqual(quoted.sourcePort, 53124)
        XCTAssertEqual(quoted.destinationPort, 53)
        // The quoted datagram's own length (57) ends it, inside the 128 quoted bytes.
        XCTAssertEqual(quoted.transportRange, 28..<(8 + 57))
        let exceeded = extended(type: 11, code: 0, words: 32, quote: quote(45))
        let time = try ICMPHeader.parse(exceeded).get()
        XCTAssertEqual(time.header.message, .timeExceeded(code: .timeToLiveExceeded))
        XCTAssertEqual(try time.quotedDatagram(in: exceeded).get().destinationPort, 53)
    }

    /// A quote longer than the original datagram's header claims is cut at RFC 4884's length.
    func testExtensionBytesAreNotTakenForTheQuote() throws {
        var long = quote(45)
        // Claim a total length past the 128-byte quote: the transport range must stop at 128.
        long[2] = 0x01
        long[3] = 0x00
        let message = extended(type: 3, code: 3, words: 32, quote: long)
        let quoted = try ICMPHeader.parse(message).get().quotedDatagram(in: message).get()
        XCTAssertEqual(quoted.transportRange, 28..<(8 + 128))
    }

    /// The quoted header's checksum is not required (it used to fail with .badChecksum).
    func testQuotedHeaderChecksumIsNotRequired() throws {
        var changed = quote(28)
        changed[8] = 1  // TTL rewritten by a router without fixing the checksum.
        let message = ICMPHeader(message: .destinationUnreachable(code: .portUnreachable, nextHopMTU: 0)).bytes(
            payload: changed)
        let quoted = try ICMPHeader.parse(message).get().quotedDatagram(in: message).get()
        XCTAssertEqual(quoted.destinationPort, 53)
        XCTAssertEqual(quoted.header.timeToLive, 1)
    }
}
