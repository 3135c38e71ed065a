import NetMPWire
import XCTest

final class ChecksumTests: XCTestCase {
    /// The obvious byte-pair loop of RFC 1071, the reference the fast version must agree with.
    private func referenceSum(_ bytes: [UInt8]) -> UInt16 {
        var total: UInt32 = 0
        var index = 0
        while index < bytes.count {
            let high = UInt32(bytes[index]) << 8
            let low = index + 1 < bytes.count ? UInt32(bytes[index + 1]) : 0
            total += high | low
            total = (total & 0xFFFF) + (total >> 16)
            index += 2
        }
        return UInt16(total)
    }

    func testKnownIPv4HeaderChecksum() {
        // The header from RFC 1071's usual worked example (Wikipedia "IPv4 header checksum"): 0xB861.
        var header = hex("45 00 00 73 00 00 40 00 40 11 00 00 c0 a8 00 01 c0 a8 00 c7")
        header.withUnsafeBytes { XCTAssertEqual(InternetChecksum.checksum($0), 0xB861) }
        header[10] = 0xB8
        header[11] = 0x61
        header.withUnsafeBytes { XCTAssertTrue(InternetChecksum.verify($0)) }
    }

    func testEmptyAndSingleByte() {
        [UInt8]().withUnsafeBytes { XCTAssertEqual(InternetChecksum.sum($0), 0) }
        [UInt8](arrayLiteral: 0xAB).withUnsafeBytes { XCTAssertEqual(InternetChecksum.sum($0), 0xAB00) }
        [UInt8](arrayLiteral: 0xFF, 0xFF).withUnsafeBytes { XCTAssertEqual(InternetChecksum.sum($0), 0xFFFF) }
    }

    func testMatchesReferenceForAllLengthsAndAlignments() {
        var random = TestRandom(seed: 0xC0FFEE)
        // One extra large buffer to take unaligned views from.
        let storage = random.bytes(2000 + 8)
        storage.withUnsafeBytes { all in
            for length in 0...2000 {
                let alignment = length % 8
                let view = UnsafeRawBufferPointer(rebasing: all[alignment..<(alignment + length)])
                let expected = referenceSum(Array(view))
                XCTAssertEqual(InternetChecksum.sum(view), expected, "length \(length) offset \(alignment)")
            }
        }
        // All-ones data exercises the carry folding hardest.
        for length in [7, 8, 9, 31, 32, 33, 1999, 2000] {
            let ones = [UInt8](repeating: 0xFF, count: length)
            ones.withUnsafeBytes { XCTAssertEqual(InternetChecksum.sum($0), referenceSum(ones), "ones \(length)") }
        }
    }

    func testAccumulatorOverOddChunksMatchesWholeSum() {
        var random = TestRandom(seed: 7)
        for _ in 0..<300 {
            let data = random.bytes(random.below(600))
            var accumulator = ChecksumAccumulator(initial: 0x1234)
            var start = 0
            while start < data.count {
                let end = min(data.count, start + 1 + random.below(17))
                Array(data[start..<end]).withUnsafeBytes { accumulator.add($0) }
                start = end
            }
            let whole = data.withUnsafeBytes { InternetChecksum.checksum($0, initial: 0x1234) }
            XCTAssertEqual(accumulator.checksum, whole)
        }
    }

    func testIncrementalUpdateMatchesRecomputation() {
        var random = TestRandom(seed: 1624)
        for _ in 0..<2000 {
            var data = random.bytes(2 * (4 + random.below(40)))
            let before = data.withUnsafeBytes { InternetChecksum.checksum($0) }
            let word = random.below(data.count / 2 - 1)
            if random.below(2) == 0 {
                let old = UInt16(data[2 * word]) << 8 | UInt16(data[2 * word + 1])
                let new = UInt16(truncatingIfNeeded: random.next())
                data[2 * word] = UInt8(new >> 8)
                data[2 * word + 1] = UInt8(new & 0xFF)
                let after = data.withUnsafeBytes { InternetChecksum.checksum($0) }
                XCTAssertEqual(InternetChecksum.update(checksum: before, old16: old, new16: new), after)
            } else {
                let old = data[(2 * word)..<(2 * word + 4)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                let new = UInt32(truncatingIfNeeded: random.next())
                for index in 0..<4 {
                    data[2 * word + index] = UInt8(truncatingIfNeeded: new >> UInt32(24 - 8 * index))
                }
                let after = data.withUnsafeBytes { InternetChecksum.checksum($0) }
                XCTAssertEqual(InternetChecksum.update(checksum: before, old32: old, new32: new), after)
            }
        }
    }

    func testTTLDecrementUpdateKeepsHeaderValid() {
        var header = hex("45 00 00 73 00 00 40 00 40 11 b8 61 c0 a8 00 01 c0 a8 00 c7")
        let oldWord = UInt16(header[8]) << 8 | UInt16(header[9])
        header[8] -= 1
        let newWord = UInt16(header[8]) << 8 | UInt16(header[9])
        let updated = InternetChecksum.update(checksum: 0xB861, old16: oldWord, new16: newWord)
        header[10] = UInt8(updated >> 8)
        header[11] = UInt8(updated & 0xFF)
        header.withUnsafeBytes { XCTAssertTrue(InternetChecksum.verify($0)) }
        XCTAssertEqual(updated, 0xB961)
    }

    func testPseudoHeaderSum() {
        // 198.18.0.1 -> 198.18.0.2, TCP, 40 bytes: c612+0001+c612+0002+0006+0028 = 0x18C55 -> 0x8C56.
        let sum = InternetChecksum.pseudoHeaderSum(
            source: IPv4Address(198, 18, 0, 1), destination: IPv4Address(198, 18, 0, 2), protocol: .tcp, length: 40)
        XCTAssertEqual(sum, 0x8C56)
    }
}
