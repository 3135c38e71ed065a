import NetMPWire
import XCTest

@testable import NetMPTCP

/// The scoreboard's byte counts against a recount after every operation, and its bounds under
/// hostile SACK blocks.
final class SACKScoreboardTests: XCTestCase {
    /// Recounts what the scoreboard keeps incrementally and checks the entries tile the sequence space.
    func check(_ board: SACKScoreboard, _ context: String, line: UInt = #line) {
        var sacked = 0
        var lost = 0
        var pipe = 0
        var retransmitted = 0
        let segments = Array(board.segments)
        XCTAssertEqual(segments.count, board.count, context, line: line)
        for (index, segment) in segments.enumerated() {
            XCTAssertTrue(segment.start < segment.end, context, line: line)
            if index > 0 {
                XCTAssertEqual(segments[index - 1].end, segment.start, context, line: line)
            }
            sacked += segment.sacked ? segment.length : 0
            lost += segment.needsRetransmission ? segment.length : 0
            pipe += segment.inFlight ? segment.length : 0
            retransmitted += segment.lost && segment.retransmitted && !segment.sacked ? segment.length : 0
        }
        XCTAssertEqual(board.sackedBytes, sacked, context, line: line)
        XCTAssertEqual(board.lostBytes, lost, context, line: line)
        XCTAssertEqual(board.pipe, pipe, context, line: line)
        XCTAssertEqual(board.retransmittedBytes, retransmitted, context, line: line)
    }

    func testCountsStayExactThroughRandomOperations() {
        var random = SeededRandom(seed: 77)
        var board = SACKScoreboard()
        var una = SequenceNumber(UInt32.max - 50_000)  // wraps during the run
        var next = una
        var now: Int64 = 0
        for step in 0..<5_000 {
            now += 1
            switch random.below(7) {
            case 0, 1:
                let length = 1 + random.below(1460)
                board.sent(next, next + length, now: now)
                next += length
            case 2:
                let flight = next - una
                guard flight > 0 else { continue }
                let left = una + random.below(flight)
                board.sack(left, left + 1 + random.below(3000)) { _ in }
            case 3:
                let flight = next - una
                guard flight > 0 else { continue }
                una += random.below(Swift.min(flight, 2000) + 1)
                board.acknowledge(through: una) { _ in }
            case 4:
                board.markLostBySACKCount(maximumSegmentSize: 1460)
            case 5:
                if let index = board.firstNeedingRetransmission {
                    let segment = board[index]
                    board.sent(segment.start, segment.end, now: now)
                } else if !board.isEmpty {
                    board.markLost(at: board.indices.lowerBound + random.below(board.count))
                }
            default:
                if random.chance(20) {
                    board.markAllLost()
                } else if random.chance(20) {
                    board.forgetSACKs()
                }
            }
            check(board, "step \(step)")
            if let first = board.segments.first {
                XCTAssertFalse(first.start < una, "step \(step): an entry below SND.UNA")
            }
        }
        board.acknowledge(through: next) { _ in }
        XCTAssertTrue(board.isEmpty)
        check(board, "end")
    }

    func testCumulativeACKsMoveTheHeadAndCompactionKeepsEveryEntry() {
        var board = SACKScoreboard()
        let base = SequenceNumber(1)
        for index in 0..<1000 {
            board.sent(base + index * 100, base + (index + 1) * 100, now: Int64(index))
        }
        board.sack(base + 99_000, base + 99_100) { _ in }
        for index in 1...990 {
            board.acknowledge(through: base + index * 100) { _ in }
            check(board, "ACK \(index)")
            XCTAssertEqual(board.count, 1000 - index)
            XCTAssertEqual(board[board.indices.lowerBound].start, base + index * 100)
            XCTAssertEqual(board[board.indices.lowerBound].sentAt, Int64(index))
        }
        XCTAssertLessThan(board.indices.lowerBound, 990, "the dead front was compacted away")
        XCTAssertEqual(board.sackedBytes, 100)
        XCTAssertEqual(board.lastUnSACKed.map { board[$0].start }, base + 99_900)
    }

    func testHostileSACKBlocksAreBoundedAndNeverTrap() {
        // A peer SACKing single bytes splits entries; the splits stop at the bound.
        var board = SACKScoreboard()
        let base = SequenceNumber(1000)
        board.sent(base, base + 1_000_000, now: 0)
        for offset in stride(from: 1, to: 30_000, by: 2) {
            board.sack(base + offset, base + offset + 1) { _ in }
        }
        XCTAssertLessThanOrEqual(board.segments.count, 2 * SACKScoreboard.capacity)
        check(board, "after splits")
        // Reversed and empty blocks do nothing.
        let before = board.sackedBytes
        XCTAssertEqual(board.sack(base + 500_000, base + 400_000) { _ in }, 0)
        XCTAssertEqual(board.sack(base + 500_000, base + 500_000) { _ in }, 0)
        XCTAssertEqual(board.sackedBytes, before)
    }

    func testAConnectionIgnoresSACKBlocksOutsideWhatIsOutstanding() {
        var harness = RecoveryTests.sackSender(.rack, queued: 10)
        let sendMax = RecoveryTests.start(10)
        let blocks: [(UInt32, UInt32)] = [
            (sendMax, sendMax &+ 1460),  // beyond SND.MAX
            (900, 1001),  // below SND.UNA (not a D-SACK: not first)
            (RecoveryTests.start(3), RecoveryTests.start(2)),  // reversed
            (0, UInt32.max),  // everything
        ]
        harness.receive(
            peer(
                .ack, 5001, 1001,
                options: TCPOptions(sackBlocks: SACKBlocks(blocks.map { SACKBlock(left: $0.0, right: $0.1) }))))
        XCTAssertEqual(harness.connection.scoreboard.sackedBytes, 0)
        XCTAssertEqual(harness.connection.duplicateACKs, 0)
        XCTAssertEqual(harness.sent, [])
        check(harness.connection.scoreboard, "after hostile blocks")
    }
}
