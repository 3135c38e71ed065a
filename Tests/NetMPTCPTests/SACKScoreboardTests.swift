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

    /// Cumulative ACKs of part of the board and of all of it (the whole-board ACK takes its own
    /// path, which zeroes the counts instead of taking each entry out of them) deliver what a walk
    /// of the entries says they must, and leave the counts exact, whatever the entries' states.
    func testCumulativeACKsDeliverEveryUnSACKedByteBelowThemWholeBoardOrNot() {
        var random = SeededRandom(seed: 2026)
        var board = SACKScoreboard()
        var una = SequenceNumber(UInt32.max - 20_000)  // wraps during the run
        var next = una
        var now: Int64 = 0
        var wholeBoardACKs = 0
        for step in 0..<3_000 {
            now += 1
            for _ in 0..<(1 + random.below(4)) {
                let length = 1 + random.below(1460)
                board.sent(next, next + length, now: now)
                next += length
            }
            let flight = next - una
            if random.chance(500) {
                let left = una + random.below(flight)
                board.sack(left, left + 1 + random.below(3000)) { _ in }
            }
            if random.chance(300) {
                board.markLostBySACKCount(maximumSegmentSize: 1460)
                if let index = board.firstNeedingRetransmission {
                    board.sent(board[index].start, board[index].end, now: now)
                }
            }
            // Half the ACKs cover everything outstanding (one beyond the last entry, as when a FIN
            // is acknowledged, now and then).
            let whole = random.chance(500)
            let ack = whole ? next + (random.chance(100) ? 1 : 0) : una + random.below(flight + 1)
            var expected: [SACKScoreboard.Segment] = []
            for segment in board.segments where segment.start < ack && !segment.sacked {
                var part = segment
                part.end = SequenceNumber.min(segment.end, ack)
                expected.append(part)
            }
            var delivered: [SACKScoreboard.Segment] = []
            board.acknowledge(through: ack) { delivered.append($0) }
            XCTAssertEqual(delivered, expected, "step \(step)")
            check(board, "step \(step)")
            if whole {
                wholeBoardACKs += 1
                XCTAssertTrue(board.isEmpty, "step \(step)")
                XCTAssertEqual(board.indices, 0..<0, "step \(step)")
            }
            una = SequenceNumber.max(una, SequenceNumber.min(ack, next))
        }
        XCTAssertGreaterThan(wholeBoardACKs, 1_000)
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

    // MARK: The in-order ACK path

    /// The usual ACK of a transfer without loss takes `inOrderAcknowledgment`; run through
    /// `generalSACKAcknowledgment` instead, the same ACK must leave the connection exactly as it
    /// does there (every stored value: SND.UNA, the windows, the RTT estimates, RACK, the
    /// scoreboard, the timers), with the same actions. Covered: both loss detectors, NewReno and
    /// CUBIC, ACKs of one and of two segments, a final ACK of everything, the ACK that ends limited
    /// transmit, and the ACKs of two tail loss probes: one of new data, one resending the last
    /// segment (which keeps the board in order).
    func testTheInOrderACKPathLeavesTheConnectionAsTheGeneralPathDoes() {
        let total = 100
        for detection in [TCPLossDetection.rack, .rfc6675] {
            for algorithm in [TCPCongestionAlgorithm.newReno, .cubic] {
                let context = "\(detection) \(algorithm)"
                var harness = RecoveryTests.sackSender(detection, queued: total, congestionControl: algorithm)
                var acknowledged = 0
                var acks = 0
                var inOrderACKs = 0
                var probes: [Bool] = []
                while acknowledged < total {
                    harness.now += 2 * milliseconds
                    if acknowledged == 27 || acknowledged == 97, let probe = harness.connection.deadline(of: .lossProbe)
                    {
                        // The first probe finds data the windows held back, the second none left.
                        harness.advance(to: probe)
                        XCTAssertEqual(harness.sent.count, 1, context)
                        XCTAssertNotNil(harness.connection.tailLossProbeEnd, context)
                        probes.append(harness.connection.tailLossProbeRetransmitted)
                    }
                    acknowledged = Swift.min(total, acknowledged + 1 + acknowledged % 2)
                    let header = RecoveryTests.sack(RecoveryTests.start(acknowledged))
                    acks += 1
                    if assertBothPathsAgree(harness, header, "\(context) ACK \(acknowledged)") {
                        inOrderACKs += 1
                    }
                    harness.receive(header)
                    if acknowledged == 3 {
                        // Two duplicate ACKs without SACK blocks: limited transmit sends two segments
                        // beyond the window, and the next ACK (in order still) ends it.
                        harness.receive(header)
                        harness.receive(header)
                        XCTAssertEqual(harness.connection.duplicateACKs, 2, context)
                        XCTAssertEqual(harness.connection.limitedTransmitBytes, 2 * 1460, context)
                    }
                }
                XCTAssertEqual(
                    harness.connection.sendUnacknowledged, SequenceNumber(RecoveryTests.start(total)), context)
                XCTAssertEqual(inOrderACKs, acks, "\(context): every ACK took the in-order path")
                XCTAssertEqual(acks, 51, context)
                XCTAssertEqual(probes, detection == .rack ? [false, true] : [], context)
            }
        }
    }

    /// Runs `header`'s ACK on two copies of the connection, one through each path, and checks they
    /// agree; returns whether the in-order path takes it (it is run only then).
    private func assertBothPathsAgree(_ harness: Harness, _ header: TCPHeader, _ context: String) -> Bool {
        let ack = SequenceNumber(header.acknowledgmentNumber)
        guard harness.connection.takesInOrderAcknowledgment(ack, header: header) else { return false }
        var inOrder = harness.connection
        var general = harness.connection
        var inOrderActions = Actions()
        var generalActions = Actions()
        inOrder.inOrderAcknowledgment(ack, header: header, now: harness.now, &inOrderActions)
        general.generalSACKAcknowledgment(ack, header: header, duplicate: false, now: harness.now, &generalActions)
        XCTAssertEqual(everything(inOrder), everything(general), context)
        XCTAssertEqual(everything(inOrderActions), everything(generalActions), context)
        XCTAssertEqual(inOrder.sendUnacknowledged, ack, context)
        return true
    }

    /// Every stored value, recursively, as text.
    private func everything(_ value: Any) -> String {
        var text = ""
        dump(value, to: &text)
        return text
    }

}
