import NetMPTCP
import NetMPWire
import XCTest

/// HyStart++ (RFC 9406) round by round: a round runs from the ACK that starts it to the ACK of what
/// was sent by then; after at least 8 RTT samples in a round, a minimum RTT at least
/// max(4 ms, min(last round's minimum / 8, 16 ms)) above the last round's ends slow start.
final class HyStartTests: XCTestCase {
    let mss = 1000

    /// The driver: rounds of eight ACKs of one segment each, each round ending where the last began.
    struct Rounds {
        var hyStart = HyStartPlusPlus()
        var acknowledged = SequenceNumber(0)
        var sendMax = SequenceNumber(10_000)
        var steps: [HyStartPlusPlus.Step] = []

        /// One ACK of 1000 bytes measuring `rtt`; the sender has sent 2000 more bytes meanwhile.
        mutating func ack(rtt: Int64?) {
            acknowledged += 1000
            sendMax += 2000
            steps.append(
                hyStart.acknowledged(
                    TCPAcknowledgmentSample(
                        bytes: 1000, maximumSegmentSize: 1000, now: 0, acknowledgment: acknowledged,
                        sendMax: sendMax, rtt: rtt)))
        }

        /// Acknowledges everything up to the current round's end with `count` ACKs, the first of
        /// which ends the round and starts the next.
        mutating func round(rtt: Int64, count: Int = 8) {
            let end = hyStart.windowEnd ?? acknowledged
            acknowledged = end - 1000
            for _ in 0..<count {
                ack(rtt: rtt)
            }
        }
    }

    func testAnRTTIncreaseEndsSlowStartThroughFiveRoundsOfCSS() {
        var rounds = Rounds()
        rounds.round(rtt: 100 * milliseconds)
        XCTAssertEqual(rounds.hyStart.windowEnd, SequenceNumber(12_000), "the first ACK began round 1")
        XCTAssertEqual(rounds.hyStart.currentRoundMinimumRTT, 100 * milliseconds)
        XCTAssertEqual(rounds.hyStart.lastRoundMinimumRTT, .max, "no previous round: no check")
        rounds.round(rtt: 100 * milliseconds)
        XCTAssertEqual(rounds.hyStart.lastRoundMinimumRTT, 100 * milliseconds)
        XCTAssertEqual(rounds.hyStart.phase, .slowStart)
        XCTAssertEqual(rounds.steps.map(\.increase), Array(repeating: 1000, count: 16), "slow start: N per ACK")
        // Round 3: the threshold is max(4 ms, min(100 / 8, 16 ms)) = 12.5 ms. Seven samples of 113 ms
        // are not enough; the eighth ends slow start.
        rounds.round(rtt: 113 * milliseconds, count: 7)
        XCTAssertEqual(rounds.hyStart.sampleCount, 7)
        XCTAssertEqual(rounds.hyStart.phase, .slowStart)
        rounds.ack(rtt: 113 * milliseconds)
        XCTAssertEqual(rounds.hyStart.phase, .conservativeSlowStart)
        XCTAssertEqual(rounds.hyStart.cssBaselineMinimumRTT, 113 * milliseconds)
        XCTAssertEqual(rounds.steps.last?.increase, 1000, "the ACK that exits still grew at slow start's rate")
        rounds.ack(rtt: 113 * milliseconds)
        XCTAssertEqual(rounds.steps.last?.increase, 250, "CSS: a quarter of slow start's growth")
        // The round in which CSS began does not count; five whole CSS rounds (4 to 8) follow. Each
        // round's first ACK ends the one before.
        for round in 4...8 {
            rounds.round(rtt: 113 * milliseconds)
            XCTAssertEqual(rounds.hyStart.completedCSSRounds, round - 4)
            XCTAssertEqual(rounds.hyStart.phase, .conservativeSlowStart, "round \(round)")
            XCTAssertEqual(rounds.steps.last, HyStartPlusPlus.Step(increase: 250, enterCongestionAvoidance: false))
        }
        // The first ACK of round 9 ends the fifth CSS round: congestion avoidance.
        rounds.round(rtt: 113 * milliseconds, count: 1)
        XCTAssertEqual(rounds.hyStart.completedCSSRounds, 5)
        XCTAssertEqual(rounds.hyStart.phase, .finished)
        XCTAssertEqual(rounds.steps.last, HyStartPlusPlus.Step(increase: 0, enterCongestionAvoidance: true))
    }

    func testAnIncreaseBelowTheThresholdKeepsSlowStart() {
        var rounds = Rounds()
        rounds.round(rtt: 100 * milliseconds)
        rounds.round(rtt: 112 * milliseconds)
        XCTAssertEqual(rounds.hyStart.phase, .slowStart, "112 ms < 100 ms + 12.5 ms")
        // With a 20 ms base the threshold is the 4 ms floor; with 400 ms it is the 16 ms ceiling.
        var short = Rounds()
        short.round(rtt: 20 * milliseconds)
        short.round(rtt: 23_900_000)
        XCTAssertEqual(short.hyStart.phase, .slowStart)
        short.round(rtt: 28 * milliseconds)
        XCTAssertEqual(short.hyStart.phase, .conservativeSlowStart, "28 ≥ 23.9 + 4 ms")
        var long = Rounds()
        long.round(rtt: 400 * milliseconds)
        long.round(rtt: 415 * milliseconds)
        XCTAssertEqual(long.hyStart.phase, .slowStart)
        long.round(rtt: 431 * milliseconds)
        XCTAssertEqual(long.hyStart.phase, .conservativeSlowStart, "431 ≥ 415 + 16 ms")
    }

    func testAnRTTBackBelowTheBaselineResumesSlowStart() {
        var rounds = Rounds()
        rounds.round(rtt: 100 * milliseconds)
        rounds.round(rtt: 120 * milliseconds)
        XCTAssertEqual(rounds.hyStart.phase, .conservativeSlowStart)
        rounds.round(rtt: 119 * milliseconds, count: 7)
        XCTAssertEqual(rounds.hyStart.phase, .conservativeSlowStart, "fewer than 8 samples: no verdict")
        rounds.ack(rtt: 119 * milliseconds)
        XCTAssertEqual(rounds.hyStart.phase, .slowStart, "119 ms < the 120 ms baseline: the exit was spurious")
        XCTAssertEqual(rounds.hyStart.cssBaselineMinimumRTT, .max)
    }

    func testACKsWithoutSamplesNeverEndSlowStart() {
        var rounds = Rounds()
        for _ in 0..<10 {
            rounds.round(rtt: 0, count: 0)
            for _ in 0..<8 {
                rounds.ack(rtt: nil)
            }
        }
        XCTAssertEqual(rounds.hyStart.phase, .slowStart)
    }

    /// Through CUBIC: the end of CSS sets ssthresh to cwnd, and the next ACK is congestion avoidance.
    func testCubicLeavesSlowStartWithSSThreshAtTheWindow() {
        var cubic = Cubic(maximumSegmentSize: mss)
        cubic.start(maximumSegmentSize: mss)
        var acknowledged = SequenceNumber(0)
        var sendMax = SequenceNumber(10_000)
        var now: Int64 = 0
        func round(_ rtt: Int64, count: Int = 8) {
            acknowledged = (cubic.hyStart?.windowEnd ?? acknowledged) - 1000
            for _ in 0..<count {
                acknowledged += 1000
                sendMax += 2000
                cubic.acknowledged(
                    TCPAcknowledgmentSample(
                        bytes: 1000, maximumSegmentSize: mss, now: now, acknowledgment: acknowledged, sendMax: sendMax,
                        rtt: rtt, smoothedRTT: rtt))
            }
            now += rtt
        }
        round(50 * milliseconds)
        round(50 * milliseconds)
        XCTAssertEqual(cubic.congestionWindow, 26_000, "16 ACKs of one segment in slow start")
        round(60 * milliseconds)
        XCTAssertEqual(cubic.hyStart?.phase, .conservativeSlowStart)
        XCTAssertEqual(cubic.congestionWindow, 34_000, "the exiting ACK still added a whole segment")
        for _ in 4...8 {
            round(60 * milliseconds)
        }
        XCTAssertEqual(cubic.hyStart?.phase, .conservativeSlowStart)
        XCTAssertEqual(cubic.congestionWindow, 34_000 + 40 * 250, "five CSS rounds of 8 ACKs at a quarter segment")
        XCTAssertEqual(cubic.slowStartThreshold, Int.max)
        round(60 * milliseconds, count: 1)
        XCTAssertEqual(cubic.hyStart?.phase, .finished)
        XCTAssertEqual(cubic.slowStartThreshold, 44_000, "ssthresh = cwnd when CSS ends")
        XCTAssertEqual(cubic.congestionWindow, 44_000, "the ACK that ended CSS added nothing")
        XCTAssertNil(cubic.epochStart)
        round(60 * milliseconds, count: 1)
        XCTAssertEqual(cubic.epochStart, now - 60 * milliseconds, "the next ACK began congestion avoidance")
    }

    /// NewReno may use HyStart++ too (TCPConfiguration.hyStart applies to both).
    func testNewRenoWithHyStartLeavesSlowStartOnAnRTTIncrease() {
        var reno = NewReno(maximumSegmentSize: mss, hyStart: true)
        reno.start(maximumSegmentSize: mss)
        var acknowledged = SequenceNumber(0)
        var sendMax = SequenceNumber(10_000)
        for rtt in [50, 50, 60].map({ Int64($0) * milliseconds }) {
            acknowledged = (reno.hyStart?.windowEnd ?? acknowledged) - 1000
            for _ in 0..<8 {
                acknowledged += 1000
                sendMax += 2000
                reno.acknowledged(
                    TCPAcknowledgmentSample(
                        bytes: 1000, maximumSegmentSize: mss, now: 0, acknowledgment: acknowledged, sendMax: sendMax,
                        rtt: rtt))
            }
        }
        XCTAssertEqual(reno.hyStart?.phase, .conservativeSlowStart)
        XCTAssertEqual(reno.slowStartThreshold, Int.max)
    }

    /// Through a connection with timestamps (every ACK an RTT sample), each segment acknowledged on
    /// its own and every flight's ACKs at one instant: flights F1 (10 segments) and F2 (20) at 100 ms,
    /// then 120 ms; each ACK in slow start sends two segments. A HyStart++ round ends with the ACK of
    /// the last byte sent when it began: H1 is F1[0...8]; H2 is F1[9] and F2[0...16]; when F2[17]'s
    /// ACK begins H3, F2 and F3[0...33] are out, so H3 is F2[17...19] (still 100 ms) and F3[0...32];
    /// H4 begins with F3[33]; its 8th sample, F4[0], is 120 ms ≥ 100 + 12.5 ms: Conservative Slow
    /// Start. H5 to H9 are whole CSS rounds, each beginning one flight later; the first ACK of H10, in
    /// F9, ends slow start with ssthresh = cwnd, without a loss.
    func testAConnectionLeavesSlowStartOnTheRoundAfterTheRTTRises() throws {
        var configuration = plainConfiguration()
        configuration.timestamps = true
        configuration.windowScaling = true
        configuration.noDelay = true
        var harness = Harness.accepting(
            configuration,
            syn: incomingSYN(
                5000,
                options: TCPOptions(
                    maximumSegmentSize: 1460, windowScale: 7, timestamps: TCPTimestamps(value: 1, echoReply: 0))))
        let synACK = try XCTUnwrap(harness.actions.segments.first?.header.options.timestamps?.value)
        func ack(_ acknowledgment: UInt32, echo: UInt32) {
            let stamp = TCPTimestamps(
                value: UInt32(truncatingIfNeeded: harness.now / milliseconds) + 2, echoReply: echo)
            harness.receive(peer(.ack, 5001, acknowledgment, window: 65535, options: TCPOptions(timestamps: stamp)))
        }
        harness.now = 100 * milliseconds
        ack(1001, echo: synACK)
        XCTAssertEqual(harness.state, .established)
        XCTAssertEqual(harness.connection.maximumSegmentSize, 1448)
        harness.run { $0.send(count: 2000 * 1448, now: $1, into: &$2) }
        typealias Sent = (end: UInt32, echo: UInt32)
        func sent() -> [Sent] {
            harness.actions.segments.filter { $0.payloadLength > 0 }.map {
                ($0.header.sequenceNumber &+ UInt32($0.payloadLength), $0.header.options.timestamps?.value ?? 0)
            }
        }
        var flight = sent()
        XCTAssertEqual(flight.count, 10)
        var cssEntered: (flight: Int, index: Int)?
        var finished: (flight: Int, index: Int, window: Int, threshold: Int)?
        let rtts = [100, 100, 120, 120, 120, 120, 120, 120, 120, 120].map { Int64($0) * milliseconds }
        for (number, rtt) in rtts.enumerated() where finished == nil {
            harness.now += rtt
            var next: [Sent] = []
            for (index, segment) in flight.enumerated() {
                ack(segment.end, echo: segment.echo)
                next += sent()
                let phase = (harness.connection.congestionControl as? Cubic)?.hyStart?.phase
                if cssEntered == nil, phase == .conservativeSlowStart {
                    cssEntered = (number + 1, index)
                }
                if finished == nil, phase == .finished {
                    let control = harness.connection.congestionControl
                    finished = (number + 1, index, control.congestionWindow, control.slowStartThreshold)
                }
            }
            flight = next
        }
        XCTAssertEqual(cssEntered?.flight, 4)
        XCTAssertEqual(cssEntered?.index, 0)
        XCTAssertEqual(finished?.flight, 9)
        XCTAssertEqual(finished?.window, finished?.threshold, "ssthresh = cwnd when CSS ends")
        XCTAssertEqual(harness.connection.retransmittedSegments, 0)
        print(
            "HyStart++ through a connection: CSS at \(String(describing: cssEntered)), done at \(String(describing: finished))"
        )
    }
}
