import NetMPWire
import XCTest

/// IPv4 options: lengths validated on parse (they were skipped unchecked), the copied ones
/// chosen for later fragments, and headers emitted with options.
final class IPv4OptionsTests: XCTestCase {
    /// A 20-byte header for `options` (IHL and checksum fixed up), then 8 payload bytes.
    func datagram(options: [UInt8]) -> [UInt8] {
        let length = 20 + options.count
        var bytes =
            IPv4Header(
                totalLength: UInt16(length + 8), protocol: .udp, source: IPv4Address(198, 18, 0, 1),
                destination: IPv4Address(198, 18, 0, 2)
            ).bytes() + options + [UInt8](repeating: 0, count: 8)
        bytes[0] = UInt8(0x40 | length / 4)
        bytes[10] = 0
        bytes[11] = 0
        let sum = bytes[0..<length].withUnsafeBytes { InternetChecksum.checksum($0) }
        bytes[10] = UInt8(sum >> 8)
        bytes[11] = UInt8(sum & 0xFF)
        return bytes
    }

    func testWellFormedOptionsParse() throws {
        // Record route with one slot, a no-op, router alert.
        let options: [UInt8] = [7, 7, 4, 0, 0, 0, 0, 1, 0x94, 4, 0, 0]
        let packet = try IPv4Header.parse(datagram(options: options)).get()
        XCTAssertEqual(packet.headerLength, 32)
        XCTAssertEqual(packet.payloadRange, 32..<40)
        // End of list ends the walk: what follows is padding.
        XCTAssertNoThrow(try IPv4Header.parse(datagram(options: [0, 99, 99, 99])).get())
    }

    func testMalformedOptionLengthsAreRejected() {
        for options: [UInt8] in [
            [7, 1, 0, 0], [7, 0, 0, 0], [7, 9, 4, 0], [0x94, 4, 0, 0, 7, 5, 4, 0], [68, 1, 1, 1],
        ] {
            XCTAssertEqual(IPv4Header.parse(datagram(options: options)).failure, .badOption, "\(options)")
        }
        // The type byte alone at the end.
        XCTAssertEqual(IPv4Header.parse(datagram(options: [1, 1, 1, 7])).failure, .badOption)
    }

    func testCopiedOptionsForLaterFragments() {
        let options: [UInt8] = [7, 7, 4, 0, 0, 0, 0, 1, 0x94, 4, 0, 0, 0x83, 7, 4, 198, 18, 2, 1, 0]
        let copied = options.withUnsafeBytes { IPv4Options.copiedOnFragmentation($0) }
        XCTAssertEqual(copied, [0x94, 4, 0, 0, 0x83, 7, 4, 198, 18, 2, 1, 0])
        XCTAssertEqual([UInt8]([7, 1]).withUnsafeBytes { IPv4Options.copiedOnFragmentation($0) }, [])
    }

    func testHeaderEmitsWithOptions() throws {
        let options: [UInt8] = [0x94, 4, 0, 0]
        let header = IPv4Header(
            totalLength: 24 + 8, protocol: .udp, source: IPv4Address(198, 18, 0, 1),
            destination: IPv4Address(198, 18, 0, 2))
        var bytes = [UInt8](repeating: 0, count: 32)
        let written = try bytes.withUnsafeMutableBytes { buffer in
            try options.withUnsafeBytes { try header.emit(into: buffer, options: $0) }
        }
        XCTAssertEqual(written, 24)
        let parsed = try IPv4Header.parse(bytes).get()
        XCTAssertEqual(parsed.headerLength, 24)
        XCTAssertEqual(Array(bytes[20..<24]), options)
        XCTAssertEqual(parsed.header.source, header.source)
        XCTAssertThrowsError(
            try bytes.withUnsafeMutableBytes { buffer in
                try [UInt8]([1, 1, 1]).withUnsafeBytes { try header.emit(into: buffer, options: $0) }
            })
    }
}
