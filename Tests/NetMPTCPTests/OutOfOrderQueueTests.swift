import XCTest

@testable import NetMPTCP

/// The out-of-order queue against a model: random pieces of a stream, inserted in random order
/// (overlapping, duplicated, across the sequence-number wrap), leave ordered, disjoint entries
/// holding exactly the bytes of the pieces, each byte its stream offset; pruning drops the
/// highest entries first.
final class OutOfOrderQueueTests: XCTestCase {
    func testRandomInsertionsMatchAModelOfTheBytesHeld() {
        var seed: UInt64 = 0x0_5EED
        func next(_ bound: Int) -> Int {
            // A fixed sequence (splitmix64), so a failure repeats.
            seed &+= 0x9E37_79B9_7F4A_7C15
            var z = seed
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(bound))
        }
        for round in 0..<200 {
            let base = SequenceNumber(rawValue: UInt32.max &- UInt32(next(5000)))  // near the wrap
            var queue = OutOfOrderQueue<[UInt8]>()
            var held = Set<Int>()
            for _ in 0..<(1 + next(60)) {
                let offset = next(4000)
                let length = 1 + next(300)
                let payload = (offset..<(offset + length)).map { UInt8(truncatingIfNeeded: $0) }
                queue.insert(payload, at: base + offset, maximumSegments: 10_000, maximumBytes: 1 << 30)
                held.formUnion(offset..<(offset + length))
            }
            var seen = Set<Int>()
            var previousEnd: SequenceNumber?
            for entry in queue.entries {
                if let previousEnd { XCTAssertFalse(entry.start < previousEnd, "round \(round): ordered, disjoint") }
                previousEnd = entry.end
                let offset = entry.start - base
                for (index, byte) in entry.payload.enumerated() {
                    XCTAssertEqual(byte, UInt8(truncatingIfNeeded: offset + index), "round \(round): byte in place")
                    seen.insert(offset + index)
                }
            }
            XCTAssertEqual(seen, held, "round \(round): exactly the bytes inserted")
            XCTAssertEqual(queue.byteCount, held.count, "round \(round): the count")

            // Pruning to half keeps the lowest entries.
            let entries = queue.entries
            let target = queue.byteCount / 2
            let dropped = queue.prune(toAtMost: target)
            XCTAssertLessThanOrEqual(queue.byteCount, target)
            XCTAssertEqual(queue.byteCount + dropped, held.count)
            XCTAssertEqual(queue.entries.map(\.start), entries.prefix(queue.entries.count).map(\.start))
        }
    }

    func testPruningForgetsAnOutOfOrderFIN() {
        var queue = OutOfOrderQueue<[UInt8]>()
        queue.insert([1, 2, 3], at: SequenceNumber(rawValue: 100), maximumSegments: 8, maximumBytes: 1024)
        queue.finSequence = SequenceNumber(rawValue: 103)
        XCTAssertEqual(queue.prune(toAtMost: 3), 0, "nothing over the bound: nothing dropped")
        XCTAssertEqual(queue.finSequence, SequenceNumber(rawValue: 103))
        XCTAssertEqual(queue.prune(toAtMost: 0), 3)
        XCTAssertNil(queue.finSequence, "the FIN is sent again with the data before it")
        XCTAssertTrue(queue.isEmpty)
    }
}
