import NetMPWire
import XCTest

final class EthernetTests: XCTestCase {
    /// A broadcast ARP frame header from 02:00:00:00:00:01.
    let arpFrameHeader = hex("ff ff ff ff ff ff 02 00 00 00 00 01 08 06")

    func testParseExactFields() throws {
        let frame = arpFrameHeader + [UInt8](repeating: 0, count: 46)
        let parsed = try EthernetHeader.parse(frame).get()
        XCTAssertEqual(parsed.header.destination, .broadcast)
        XCTAssertEqual(parsed.header.source, MACAddress("02:00:00:00:00:01"))
        XCTAssertEqual(parsed.header.etherType, .arp)
        XCTAssertEqual(parsed.headerLength, 14)
        XCTAssertEqual(parsed.payloadRange, 14..<60)
    }

    func testRoundTrip() throws {
        let parsed = try EthernetHeader.parse(arpFrameHeader).get()
        XCTAssertEqual(parsed.header.bytes(), arpFrameHeader)
        XCTAssertEqual(parsed.payloadRange, 14..<14)
    }

    func testRejectsShortAnd8023() {
        XCTAssertEqual(EthernetHeader.parse(Array(arpFrameHeader.prefix(13))).failure, .truncated)
        XCTAssertEqual(EthernetHeader.parse(hex("ff ff ff ff ff ff 02 00 00 00 00 01 00 2e")).failure, .unsupported)
    }

    func testEmitIntoTooSmallBuffer() {
        let header = EthernetHeader(destination: .broadcast, source: .zero, etherType: .ipv4)
        var small = [UInt8](repeating: 0, count: 13)
        let outcome = small.withUnsafeMutableBytes { buffer in
            Result { () throws(WireError) -> Int in try header.emit(into: buffer) }
        }
        XCTAssertEqual(outcome.failure, .bufferTooSmall)
    }

    func testRobustness() {
        let frame = arpFrameHeader + [UInt8](repeating: 0, count: 46)
        let counts = robustness(of: frame, fieldOffsets: [12, 13], seed: 1, mutations: 20_000, randomInputs: 5_000) {
            EthernetHeader.parse($0)
        } check: { input, parsed in
            assertRangesInside(parsed, input)
            XCTAssertEqual(parsed.payloadRange, 14..<input.count)
        }
        XCTAssertGreaterThan(counts.accepted, 0)
        XCTAssertGreaterThan(counts.rejected, 0)
    }
}
