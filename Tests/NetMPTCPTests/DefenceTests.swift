import NetMPTCP
import NetMPWire
import XCTest

@testable import NetMPTCP

/// RFC 5961 (challenge ACKs for RST, SYN and unacceptable ACKs, and their stack-wide rate limit)
/// and PAWS (RFC 7323 5), against the manual clock with the exact segments. Our ISN is 1000, the
/// peer's 5000; the receive window is 60,000 bytes.
final class DefenceTests: XCTestCase {
    /// A listen socket's child, established at `time` (the peer's ACK arrives then).
    static func established(
        _ configuration: TCPConfiguration = plainConfiguration(), syn: TCPHeader = incomingSYN(5000),
        at time: Int64 = 0, options: TCPOptions = TCPOptions()
    ) -> Harness {
        var harness = Harness.accepting(configuration, syn: syn)
        harness.now = time
        harness.receive(peer(.ack, 5001, 1001, options: options))
        return harness
    }

    // MARK: RST (RFC 5961 3)

    func testInWindowResetThatIsNotExactIsChallenged() {
        var harness = DefenceTests.established()
        harness.receive(peer(.rst, 5001 + 100))
        XCTAssertEqual(harness.state, .established)
        XCTAssertEqual(harness.actions.segments, [], "nothing but the challenge")
        XCTAssertEqual(harness.actions.challengeACK.map(Wire.init), Wire(.ack, 1001, 5001))
        XCTAssertEqual(harness.actions.challengeACK?.header.window, 60_000)
        XCTAssertTrue(harness.actions.hasChallengeACK, "the integration sends what the flag says is there")
        XCTAssertEqual(harness.actions.dropped, .resetNotExact)
        XCTAssertNil(harness.actions.error)
        var cleared = harness.actions
        cleared.clear()
        XCTAssertNil(cleared.challengeACK)
        XCTAssertFalse(cleared.hasChallengeACK)
        // The last octet of the window is still in it.
        harness.receive(peer([.rst, .ack], 5001 + 59_999, 1001))
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 5001)])
        XCTAssertEqual(harness.state, .established)
    }

    func testExactResetCloses() {
        var harness = DefenceTests.established()
        harness.receive(peer(.rst, 5001))
        XCTAssertEqual(harness.state, .closed)
        XCTAssertEqual(harness.actions.error, .connectionReset)
        XCTAssertTrue(harness.actions.closed)
        XCTAssertEqual(harness.sent, [])
        XCTAssertNil(harness.actions.dropped)
    }

    func testResetOutsideTheWindowIsDroppedSilently() {
        for sequence: UInt32 in [5000, 5001 + 60_000, 5001 &+ 2_000_000_000] {
            var harness = DefenceTests.established()
            harness.receive(peer(.rst, sequence))
            XCTAssertEqual(harness.state, .established, "\(sequence)")
            XCTAssertEqual(harness.sent, [], "\(sequence)")
            XCTAssertEqual(harness.actions.dropped, .resetOutOfWindow, "\(sequence)")
        }
    }

    /// After the peer's FIN a RST may carry the FIN's own sequence number (Linux accepts it).
    func testResetAtTheFINSequenceClosesAfterThePeersFIN() {
        var harness = StateTableTests.harness(in: .closeWait)
        XCTAssertEqual(harness.connection.receiveNext, SequenceNumber(5002))
        harness.receive(peer(.rst, 5001))
        XCTAssertEqual(harness.state, .closed)
        XCTAssertEqual(harness.actions.error, .connectionReset)
        // In ESTABLISHED the octet before RCV.NXT is outside the window.
        var established = DefenceTests.established()
        established.receive(peer(.rst, 5000))
        XCTAssertEqual(established.state, .established)
    }

    // MARK: SYN (RFC 5961 4)

    func testSYNInASynchronizedStateIsChallenged() {
        for sequence: UInt32 in [5001, 5500, 9_000_000] {
            var harness = DefenceTests.established()
            harness.receive(peer(.syn, sequence))
            XCTAssertEqual(harness.state, .established, "\(sequence)")
            XCTAssertEqual(harness.actions.segments, [], "\(sequence)")
            XCTAssertEqual(harness.actions.challengeACK.map(Wire.init), Wire(.ack, 1001, 5001), "\(sequence)")
            XCTAssertEqual(harness.actions.dropped, .synInSynchronizedState, "\(sequence)")
        }
        // A SYN-ACK too, and in SYN_RECEIVED a SYN that is not the peer's first one again.
        var established = DefenceTests.established()
        established.receive(peer([.syn, .ack], 5001, 1001))
        XCTAssertEqual(established.sent, [Wire(.ack, 1001, 5001)])
        XCTAssertEqual(established.actions.dropped, .synInSynchronizedState)
        var receiving = Harness.accepting()
        receiving.receive(peer(.syn, 7777))
        XCTAssertEqual(receiving.actions.challengeACK.map(Wire.init), Wire(.ack, 1001, 5001))
        XCTAssertEqual(receiving.state, .synReceived)
    }

    /// A challenge changes nothing: a delayed ACK owed stays owed, so a suppressed challenge loses
    /// no acknowledgment.
    func testChallengeLeavesTheDelayedACKArmed() {
        var configuration = plainConfiguration()
        configuration.quickACKSegments = 0
        var harness = DefenceTests.established(configuration)
        harness.receive(peer([.ack, .psh], 5001, 1001), payload: Array(repeating: 1, count: 100))
        XCTAssertEqual(harness.sent, [])
        XCTAssertEqual(harness.connection.deadline(of: .delayedACK), 40 * milliseconds)
        harness.receive(peer(.rst, 5200))
        XCTAssertEqual(harness.actions.challengeACK.map(Wire.init), Wire(.ack, 1001, 5101))
        XCTAssertEqual(harness.connection.deadline(of: .delayedACK), 40 * milliseconds)
        harness.advance(to: 40 * milliseconds)
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 5101)])
    }

    // MARK: ACK (RFC 5961 5)

    func testAcknowledgmentOutsideTheAcceptableRangeIsDropped() {
        // The peer offers 1000 bytes at most, so MAX.SND.WND is 1000.
        var syn = incomingSYN(5000)
        syn.window = 1000
        var configuration = plainConfiguration()
        configuration.noDelay = true
        var harness = Harness.accepting(configuration, syn: syn)
        harness.receive(peer(.ack, 5001, 1001, window: 1000))
        harness.run { $0.send(count: 3000, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent, [Wire([.ack], 1001, 5001, length: 1000)])
        harness.receive(peer(.ack, 5001, 2001, window: 1000))
        harness.receive(peer(.ack, 5001, 3001, window: 1000))
        XCTAssertEqual(harness.connection.sendUnacknowledged, SequenceNumber(3001))
        XCTAssertEqual(harness.connection.sendMax, SequenceNumber(4001))

        // Beyond SND.MAX: data and all dropped, challenged.
        harness.receive(peer([.ack, .psh], 5001, 4002, window: 1000), payload: [1, 2, 3])
        XCTAssertEqual(harness.sent, [Wire(.ack, 4001, 5001)])
        XCTAssertEqual(harness.actions.challengeACK.map(Wire.init), Wire(.ack, 4001, 5001))
        XCTAssertEqual(harness.actions.dropped, .acknowledgmentOfUnsentData)
        XCTAssertEqual(harness.actions.deliveredByteCount, 0)
        // Older than SND.UNA − MAX.SND.WND = 2001: dropped, challenged.
        harness.receive(peer([.ack, .psh], 5001, 2000, window: 1000), payload: [1, 2, 3])
        XCTAssertEqual(harness.actions.challengeACK.map(Wire.init), Wire(.ack, 4001, 5001))
        XCTAssertEqual(harness.actions.dropped, .acknowledgmentTooOld)
        XCTAssertEqual(harness.actions.deliveredByteCount, 0)
        XCTAssertEqual(harness.connection.receiveNext, SequenceNumber(5001))
        // At the edge of the range the (old) ACK is acceptable and the data is taken.
        harness.receive(peer([.ack, .psh], 5001, 2001, window: 1000), payload: [1, 2, 3])
        XCTAssertNil(harness.actions.dropped)
        XCTAssertNil(harness.actions.challengeACK)
        XCTAssertEqual(harness.actions.deliveredByteCount, 3)
        XCTAssertEqual(harness.connection.sendUnacknowledged, SequenceNumber(3001))
    }

    // MARK: Rate limit (RFC 5961 7)

    /// Each second allows limit/2 plus a random amount below the limit; the amount changes from
    /// second to second, so an attacker cannot count what is left.
    func testChallengeACKLimiterBudgetIsBoundedAndRandomised() {
        let limiter = TCPChallengeACKLimiter(limit: 1000, seed: 42)
        var budgets: [Int] = []
        for second in 0..<8 {
            let start = Int64(second) * seconds
            var allowed = 0
            for attempt in 0..<10_000 where limiter.allow(now: start + Int64(attempt) * 50_000) {
                allowed += 1
            }
            XCTAssertGreaterThanOrEqual(allowed, 500, "second \(second)")
            XCTAssertLessThan(allowed, 1500, "second \(second)")
            budgets.append(allowed)
        }
        XCTAssertGreaterThan(Set(budgets).count, 4, "budgets \(budgets) should vary")
        let none = TCPChallengeACKLimiter(limit: 0, seed: 1)
        XCTAssertFalse(none.allow(now: 0))
        let huge = TCPChallengeACKLimiter(limit: Int.max, seed: 1)
        XCTAssertTrue(huge.allow(now: 0), "a huge limit neither traps nor blocks")
    }

    /// 10,000 forged in-window RSTs in one second: each is challenged by the connection, which
    /// stays up, and the stack's budget lets at most 1.5 × the limit of the challenges out.
    func testForgedResetFloodKeepsTheConnectionAndTheRateLimitHolds() {
        var harness = DefenceTests.established()
        let limiter = TCPChallengeACKLimiter(limit: 1000, seed: 7)
        var random = SeededRandom(seed: 99)
        var sent = 0
        var challenged = 0
        for index in 0..<10_000 {
            harness.now = Int64(index) * 90_000
            // Anywhere in the window except RCV.NXT itself.
            harness.receive(peer(.rst, 5001 &+ UInt32(1 + random.below(59_999))))
            XCTAssertEqual(harness.actions.segments, [])
            if let challenge = harness.actions.challengeACK {
                XCTAssertEqual(Wire(challenge), Wire(.ack, 1001, 5001))
                challenged += 1
                if limiter.allow(now: harness.now) { sent += 1 }
            }
        }
        XCTAssertEqual(harness.state, .established)
        XCTAssertEqual(challenged, 10_000)
        XCTAssertGreaterThanOrEqual(sent, 500)
        XCTAssertLessThan(sent, 1500)
        XCTAssertFalse(limiter.allow(now: harness.now), "the second's budget is spent")
        // The real peer's exact RST still works.
        harness.receive(peer(.rst, 5001))
        XCTAssertEqual(harness.state, .closed)
    }

    // MARK: PAWS (RFC 7323 5)

    static func timestamped(_ value: UInt32, echo: UInt32 = 0) -> TCPOptions {
        var options = TCPOptions()
        options.timestamps = TCPTimestamps(value: value, echoReply: echo)
        return options
    }

    static func timestampedConnection(peerClock: UInt32) -> Harness {
        var configuration = plainConfiguration()
        configuration.timestamps = true
        var synOptions = timestamped(peerClock)
        synOptions.maximumSegmentSize = 1460
        return established(
            configuration, syn: incomingSYN(5000, options: synOptions), options: timestamped(peerClock &+ 1))
    }

    func testPAWSDropsAnOldDuplicateWithAnACK() {
        var harness = DefenceTests.timestampedConnection(peerClock: 100)
        harness.now = 10 * milliseconds
        harness.receive(
            peer([.ack, .psh], 5001, 1001, options: DefenceTests.timestamped(102)), payload: [1, 2, 3, 4])
        XCTAssertEqual(harness.actions.deliveredByteCount, 4)
        // An old duplicate of later data (sequence in the window) with TSval 50: dropped, ACKed.
        harness.receive(
            peer([.ack, .psh], 5005, 1001, options: DefenceTests.timestamped(50)), payload: [5, 6, 7])
        XCTAssertEqual(harness.actions.dropped, .paws)
        XCTAssertEqual(harness.actions.deliveredByteCount, 0)
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 5005)])
        XCTAssertNil(harness.actions.challengeACK)
        XCTAssertEqual(harness.actions.segments.first?.header.options.timestamps?.echoReply, 102)
        XCTAssertEqual(harness.connection.receiveNext, SequenceNumber(5005))
        // The same bytes with a current TSval are taken.
        harness.receive(
            peer([.ack, .psh], 5005, 1001, options: DefenceTests.timestamped(103)), payload: [5, 6, 7])
        XCTAssertEqual(harness.actions.deliveredByteCount, 3)
        // A RST is not subject to PAWS: an exact one with an old TSval still resets.
        harness.receive(peer(.rst, 5008, options: DefenceTests.timestamped(1)))
        XCTAssertEqual(harness.state, .closed)
    }

    func testPAWSComparesTimestampsModulo2To32() {
        var harness = DefenceTests.timestampedConnection(peerClock: 0xFFFF_FFF0)
        // 0x10 is 0x20 ticks after 0xFFFF_FFF0: newer.
        harness.receive(peer([.ack, .psh], 5001, 1001, options: DefenceTests.timestamped(0x10)), payload: [1])
        XCTAssertEqual(harness.actions.deliveredByteCount, 1)
        XCTAssertNil(harness.actions.dropped)
        // 0xFFFF_FFF8 is now older than TS.Recent (0x10).
        harness.receive(peer([.ack, .psh], 5002, 1001, options: DefenceTests.timestamped(0xFFFF_FFF8)), payload: [2])
        XCTAssertEqual(harness.actions.dropped, .paws)
        XCTAssertEqual(harness.actions.deliveredByteCount, 0)
    }

    /// After 24 days without an update TS.Recent is not trusted: an older TSval is accepted then
    /// and becomes TS.Recent.
    func testPAWSIgnoresATimestampOlderThan24Days() {
        var harness = DefenceTests.timestampedConnection(peerClock: 1_000_000)
        harness.now = TCPConnection<ArraySlice<UInt8>>.timestampValidity - 1
        harness.receive(peer([.ack, .psh], 5001, 1001, options: DefenceTests.timestamped(5)), payload: [1])
        XCTAssertEqual(harness.actions.dropped, .paws, "still within 24 days")
        harness.now = TCPConnection<ArraySlice<UInt8>>.timestampValidity
        harness.receive(peer([.ack, .psh], 5001, 1001, options: DefenceTests.timestamped(5)), payload: [1])
        XCTAssertNil(harness.actions.dropped)
        XCTAssertEqual(harness.actions.deliveredByteCount, 1)
        XCTAssertEqual(harness.actions.segments.last?.header.options.timestamps?.echoReply, 5)
        harness.receive(peer([.ack, .psh], 5002, 1001, options: DefenceTests.timestamped(4)), payload: [2])
        XCTAssertEqual(harness.actions.dropped, .paws, "TS.Recent is 5 now")
    }

    // MARK: Answers to unacceptable segments

    /// Forged segments without data outside the window are answered at most once per 500 ms (as
    /// Linux's tcp_invalid_ratelimit), so they cannot be reflected as a flood; data always is.
    func testUnacceptableSegmentsWithoutDataAreAnsweredAtMostTwiceASecond() {
        var harness = DefenceTests.established()
        var answered: [Int64] = []
        for step: Int64 in 0..<20 {
            harness.now = step * 100 * milliseconds
            harness.receive(peer(.ack, 5001 &+ 100_000, 1001))
            XCTAssertEqual(harness.actions.dropped, .outOfWindow)
            if !harness.sent.isEmpty {
                XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 5001)])
                answered.append(harness.now)
            }
        }
        XCTAssertEqual(answered, [0, 500, 1000, 1500].map { $0 * milliseconds })
        // A retransmission of data we have is answered at once, whatever the time.
        harness.now = 1550 * milliseconds
        harness.receive(peer([.ack, .psh], 4991, 1001), payload: Array(repeating: 1, count: 10))
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 5001)])
        // PAWS answers count against the same budget.
        var stamped = DefenceTests.timestampedConnection(peerClock: 100)
        stamped.receive(peer(.ack, 5001, 1001, options: DefenceTests.timestamped(50)))
        XCTAssertEqual(stamped.actions.dropped, .paws)
        XCTAssertEqual(stamped.sent, [Wire(.ack, 1001, 5001)])
        stamped.now = 100 * milliseconds
        stamped.receive(peer(.ack, 5001, 1001, options: DefenceTests.timestamped(50)))
        XCTAssertEqual(stamped.actions.dropped, .paws)
        XCTAssertEqual(stamped.sent, [])
    }

    // MARK: Pure ACKs during go-back-N

    /// After a timeout SND.NXT is wound back; an ACK sent then carries SND.MAX (as BSD's does), so
    /// a peer that already has the retransmitted bytes finds it in its window. With SND.NXT two
    /// ends both retransmitting dropped each other's ACKs as out of window until they timed out.
    func testPureACKCarriesTheHighestSequenceSentDuringGoBackN() {
        var configuration = plainConfiguration()
        configuration.noDelay = true
        var harness = DefenceTests.established(configuration)
        harness.run { $0.send(count: 3000, now: $1, into: &$2) }
        XCTAssertEqual(harness.connection.sendMax, SequenceNumber(4001))
        harness.fireNext()
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 5001, length: 1460)], "go back N after the timeout")
        XCTAssertEqual(harness.connection.sendNext, SequenceNumber(2461))
        // A segment outside our window is answered with an ACK at SND.MAX.
        harness.receive(peer(.ack, 4000, 1001))
        XCTAssertEqual(harness.sent, [Wire(.ack, 4001, 5001)])
    }
}
