import XCTest

@testable import NetMPTCP

/// draft-cheng-iccrg-delivery-rate-estimation: each sample is the bytes delivered since the sampled
/// segment left over the longer of its send and ACK intervals.
final class DeliveryRateEstimatorTests: XCTestCase {
    static let millisecond: Int64 = 1_000_000

    struct Sent {
        var sentAt: Int64
        var snapshot: DeliveryRateSnapshot
        var retransmitted = false
    }

    var estimator = DeliveryRateEstimator()
    var flight = 0

    func send(at time: Int64) -> Sent {
        let snapshot = estimator.snapshot(now: time, flight: flight)
        flight += 1000
        return Sent(sentAt: time, snapshot: snapshot)
    }

    func deliver(_ segments: [Sent], at time: Int64, minimumRTT: Int64? = nil) -> TCPRateSample {
        for segment in segments {
            estimator.delivered(
                length: 1000, sentAt: segment.sentAt, snapshot: segment.snapshot, retransmitted: segment.retransmitted,
                now: time)
            flight -= 1000
        }
        return estimator.sample(
            now: time, maximumSegmentSize: 1000, minimumRTT: minimumRTT, lost: 0, priorInFlight: flight + 1000,
            inFlight: flight)
    }

    func testSamplesTakeTheLongerOfTheSendAndACKIntervals() {
        let ms = Self.millisecond
        let first = send(at: 0)
        let second = send(at: 1 * ms)
        // 1000 bytes in the 10 ms since the first left (the flight was empty: the intervals start there).
        var sample = deliver([first], at: 10 * ms)
        XCTAssertEqual(sample.priorDelivered, 0)
        XCTAssertEqual(sample.delivered, 1000)
        XCTAssertEqual(sample.interval, 10 * ms)
        XCTAssertEqual(sample.deliveryRate, 100_000)
        XCTAssertEqual(sample.rtt, 10 * ms)
        XCTAssertEqual(sample.totalDelivered, 1000)
        XCTAssertEqual(sample.acknowledged, 1000)
        let third = send(at: 10 * ms)
        XCTAssertEqual(third.snapshot, DeliveryRateSnapshot(delivered: 1000, deliveredTime: 10 * ms, firstSentTime: 0))
        // 2000 bytes over 11 ms (the ACK interval is the longer).
        sample = deliver([second], at: 11 * ms)
        XCTAssertEqual(sample.delivered, 2000)
        XCTAssertEqual(sample.interval, 11 * ms)
        XCTAssertEqual(sample.deliveryRate, 181_818)
        // The third left 10 ms after the first one's send, and its ACK came 10 ms after the delivery
        // it saw: 2000 bytes in 10 ms.
        sample = deliver([third], at: 20 * ms)
        XCTAssertEqual(sample.priorDelivered, 1000)
        XCTAssertEqual(sample.delivered, 2000)
        XCTAssertEqual(sample.interval, 10 * ms)
        XCTAssertEqual(sample.deliveryRate, 200_000)
    }

    func testTheMostRecentlySentDeliveredSegmentMakesTheSample() {
        let ms = Self.millisecond
        let older = send(at: 1 * ms)
        let newer = send(at: 2 * ms)
        // One ACK delivers both, the newer handled first (a SACK block, then the cumulative ACK).
        let sample = deliver([newer, older], at: 12 * ms)
        XCTAssertEqual(sample.rtt, 10 * ms)
        XCTAssertEqual(sample.delivered, 2000)
        XCTAssertEqual(sample.interval, 11 * ms, "from the first send, when the flight was empty")
        XCTAssertEqual(sample.acknowledged, 2000)
    }

    func testARetransmissionGivesARateButNoRTT() {
        var segment = send(at: 0)
        segment.retransmitted = true
        let sample = deliver([segment], at: 10 * Self.millisecond)
        XCTAssertNil(sample.rtt)
        XCTAssertEqual(sample.deliveryRate, 100_000)
    }

    func testAnIntervalShorterThanTheMinimumRTTIsNoRate() {
        let sample = deliver([send(at: 0)], at: 4 * Self.millisecond, minimumRTT: 5 * Self.millisecond)
        XCTAssertEqual(sample.interval, 0)
        XCTAssertNil(sample.deliveryRate)
        XCTAssertEqual(sample.priorDelivered, 0, "the round still counts")
    }

    func testAnACKThatDeliversNothingMakesNoSample() {
        _ = send(at: 0)
        let sample = estimator.sample(
            now: 5, maximumSegmentSize: 1000, minimumRTT: nil, lost: 1000, priorInFlight: 1000, inFlight: 0)
        XCTAssertNil(sample.priorDelivered)
        XCTAssertEqual(sample.lost, 1000)
        XCTAssertNil(sample.deliveryRate)
    }

    func testApplicationLimitedUntilTheFlightThenIsDelivered() {
        let ms = Self.millisecond
        let first = send(at: 0)
        let second = send(at: 0)
        // The application had nothing more with 2000 bytes out: what leaves now is marked.
        estimator.applicationLimited(flight: flight)
        XCTAssertEqual(estimator.applicationLimitedUntil, 2000)
        let third = send(at: 1 * ms)
        XCTAssertTrue(third.snapshot.applicationLimited)
        XCTAssertFalse(deliver([first], at: 10 * ms).isApplicationLimited)
        XCTAssertFalse(deliver([second], at: 10 * ms).isApplicationLimited)
        XCTAssertEqual(estimator.applicationLimitedUntil, 2000, "2000 delivered is not past the mark")
        let fourth = send(at: 10 * ms)
        XCTAssertTrue(fourth.snapshot.applicationLimited)
        XCTAssertTrue(deliver([third], at: 11 * ms).isApplicationLimited)
        XCTAssertEqual(estimator.applicationLimitedUntil, 0, "3000 delivered: the mark is passed")
        XCTAssertFalse(send(at: 11 * ms).snapshot.applicationLimited)
    }

    func testRatesNeverTrap() {
        XCTAssertEqual(TCPRateSample.bytesPerSecond(Int.max, over: 1), Int.max)
        XCTAssertEqual(TCPRateSample.bytesPerSecond(-5, over: 10), 0)
        XCTAssertEqual(TCPRateSample.bytesPerSecond(5, over: 0), 0)
        XCTAssertEqual(BBR.multiplyDivide(Int.max, Int.max, 1), Int.max)
        XCTAssertEqual(BBR.scaleUp(Int.max, by: BBR.highGain), Int.max)
        XCTAssertEqual(Pacer.nanoseconds(Int.max, at: 1), Int64.max)
    }
}
