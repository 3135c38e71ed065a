import NetMPWire
import XCTest

final class ByteOrderTests: XCTestCase {
    func testReadsAreBigEndianAndBoundsChecked() throws {
        let bytes: [UInt8] = [0x12, 0x34, 0x56, 0x78, 0x9A]
        try bytes.withUnsafeBytes { view in
            XCTAssertEqual(try view.networkUInt8(at: 4), 0x9A)
            XCTAssertEqual(try view.networkUInt16(at: 1), 0x3456)
            XCTAssertEqual(try view.networkUInt32(at: 1), 0x3456_789A)
            for offset in [-1, 5, Int.max, Int.min] {
                XCTAssertThrowsError(try view.networkUInt8(at: offset))
            }
            for offset in [-1, 4, Int.max, Int.min] {
                XCTAssertThrowsError(try view.networkUInt16(at: offset))
            }
            for offset in [-1, 2, Int.max, Int.min] {
                XCTAssertThrowsError(try view.networkUInt32(at: offset))
            }
            XCTAssertEqual(try view.networkSlice(1..<3).count, 2)
            XCTAssertThrowsError(try view.networkSlice(3..<6))
            XCTAssertThrowsError(try view.networkSlice(-1..<2))
        }
        try [UInt8]().withUnsafeBytes { empty in
            XCTAssertThrowsError(try empty.networkUInt8(at: 0))
            XCTAssertEqual(try empty.networkSlice(0..<0).count, 0)
        }
    }

    func testWritesAreBigEndianAndBoundsChecked() throws {
        var bytes = [UInt8](repeating: 0, count: 7)
        try bytes.withUnsafeMutableBytes { buffer in
            XCTAssertNoThrow(try buffer.storeNetwork(UInt8(0xAA), at: 0))
            XCTAssertNoThrow(try buffer.storeNetwork(UInt16(0x0102), at: 1))
            XCTAssertNoThrow(try buffer.storeNetwork(UInt32(0x0304_0506), at: 3))
            XCTAssertThrowsError(try buffer.storeNetwork(UInt8(0), at: 7))
            XCTAssertThrowsError(try buffer.storeNetwork(UInt16(0), at: 6))
            XCTAssertThrowsError(try buffer.storeNetwork(UInt32(0), at: 4))
            XCTAssertThrowsError(try buffer.storeNetwork(UInt32(0), at: -1))
        }
        XCTAssertEqual(bytes, [0xAA, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06])
    }
}
