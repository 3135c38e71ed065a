import Foundation
import NetMPTCP
import NetMPWire
import XCTest

/// CUBIC (RFC 9438) driven ACK by ACK against the manual clock. Expected windows are computed here
/// from the RFC's formulas with Foundation's `cbrt` and `pow`, independently of `Cubic`'s own
/// arithmetic: W_cubic(t) = C·(t − K)³ + W_max, K = ∛((W_max − cwnd_epoch)/C), the target
/// W_cubic(t + RTT) clamped to [cwnd, 1.5·cwnd] closed by (target − cwnd)/cwnd per segment, and
/// W_est growing by α·acked/cwnd segments. Windows here are in bytes (segments × MSS).
final class CubicTests: XCTestCase {
    let mss = 1000
    let c = 0.4
    let beta = 0.7
    /// α_cubic = 3(1 − β)/(1 + β).
    var alpha: Double { 3 * (1 - beta) / (1 + beta) }
    let rtt = 100 * milliseconds

    func ack(
        _ cubic: inout Cubic, bytes: Int, at now: Int64, rtt: Int64? = nil, validated: Bool = true
    ) {
        cubic.acknowledged(
            TCPAcknowledgmentSample(
                bytes: bytes, maximumSegmentSize: mss, now: now, acknowledgment: SequenceNumber(0),
                sendMax: SequenceNumber(0), rtt: rtt, smoothedRTT: self.rtt, windowValidated: validated))
    }

    /// W_cubic(t) in bytes.
    func wCubic(_ t: Double, k: Double, wMax: Double) -> Double {
        c * Double(mss) * pow(t - k, 3) + wMax
    }

    /// A CUBIC sender (no HyStart++) grown in slow start to 100 segments, then through one fast
    /// recovery that leaves it at β·100 = 70 segments.
    func afterOneLoss() -> Cubic {
        var cubic = Cubic(maximumSegmentSize: mss, hyStart: false)
        cubic.start(maximumSegmentSize: mss)
        XCTAssertEqual(cubic.congestionWindow, 10_000, "IW = 10 segments")
        // Slow start: L = 2 segments per ACK (RFC 3465), so 45 ACKs of 2 segments add 90.
        for _ in 0..<45 {
            ack(&cubic, bytes: 2000, at: 0)
        }
        XCTAssertEqual(cubic.congestionWindow, 100_000)
        cubic.enterRecovery(flightSize: 100_000, maximumSegmentSize: mss, now: seconds)
        XCTAssertEqual(cubic.slowStartThreshold, 70_000, "ssthresh = β · flight")
        XCTAssertEqual(cubic.congestionWindow, 73_000, "fast recovery starts at ssthresh + 3 MSS")
        cubic.duplicateACKInRecovery(maximumSegmentSize: mss)
        XCTAssertEqual(cubic.congestionWindow, 74_000)
        cubic.exitRecovery(flightSize: 100_000, maximumSegmentSize: mss)
        XCTAssertEqual(cubic.congestionWindow, 70_000, "min(ssthresh, flight + MSS)")
        XCTAssertEqual(cubic.maximumWindow, 100_000)
        return cubic
    }

    func testKIsTheCubeRootOfTheReductionOverC() {
        var cubic = afterOneLoss()
        let start = 10 * seconds
        ack(&cubic, bytes: mss, at: start)
        // K = ∛(W_max (1 − β) / C) in segments: ∛(100 × 0.3 / 0.4) = ∛75 ≈ 4.2172 s.
        XCTAssertEqual(cubic.k, cbrt(100 * (1 - beta) / c), accuracy: 1e-12)
        XCTAssertEqual(cubic.k, 4.2172, accuracy: 1e-4)
        XCTAssertEqual(cubic.epochStart, start)
        XCTAssertEqual(cubic.epochWindow, 70_000)
        // At t = 0 the curve is at cwnd_epoch, so W_est (one ACK ahead) is the larger: Reno-friendly.
        XCTAssertEqual(wCubic(0, k: cubic.k, wMax: 100_000), 70_000, accuracy: 1e-9)
        let west = 70_000 + alpha * Double(mss) * Double(mss) / 70_000
        XCTAssertEqual(cubic.renoEstimate, west, accuracy: 1e-9)
        XCTAssertEqual(cubic.window, west, accuracy: 1e-9)
    }

    /// One ACK at each of several times after the loss: the window moves toward W_cubic(t + RTT) by
    /// (target − cwnd)/cwnd of a segment, concave below W_max and convex past it.
    func testWindowFollowsTheCubicAtGivenTimesAfterALoss() {
        var cubic = afterOneLoss()
        let start = 10 * seconds
        ack(&cubic, bytes: mss, at: start)
        let k = cbrt(75.0)
        var west = cubic.renoEstimate
        for t in [0.5, 1.0, 2.0, 3.0, 4.0, 4.2172, 5.0, 6.0, 8.0] {
            let before = cubic.window
            ack(&cubic, bytes: mss, at: start + Int64(t * 1e9))
            west += (west >= 100_000 ? 1 : alpha) * Double(mss) * Double(mss) / before
            let now = wCubic(t, k: k, wMax: 100_000)
            let expected: Double
            if now < west {
                expected = Swift.max(before, west)
            } else {
                let target = Swift.min(Swift.max(wCubic(t + 0.1, k: k, wMax: 100_000), before), 1.5 * before)
                expected = before + (target - before) * Double(mss) / before
            }
            XCTAssertEqual(cubic.window, expected, accuracy: 1e-6, "t = \(t) s")
            XCTAssertEqual(cubic.congestionWindow, Int(expected), accuracy: 1, "t = \(t) s")
            XCTAssertEqual(cubic.renoEstimate, west, accuracy: 1e-6, "t = \(t) s")
            XCTAssertGreaterThanOrEqual(now, west, "t = \(t) s: this path is never Reno-friendly")
        }
    }

    /// A full window of ACKs every RTT: at t = K, where the curve is flat, the window is within one
    /// segment of W_max; past K it grows convexly, staying within the curve's growth over one RTT
    /// either side (the sender aims one RTT ahead and closes the gap over one window of ACKs).
    func testAWindowOfACKsPerRTTTracksTheCurve() {
        var cubic = afterOneLoss()
        let start = 10 * seconds
        let k = cbrt(75.0)
        var now = start
        var checkedAtK = false
        while now < start + 7 * seconds {
            let acks = cubic.congestionWindow / mss
            for _ in 0..<acks {
                ack(&cubic, bytes: mss, at: now)
            }
            now += rtt
            let t = Double(now - start) / 1e9
            if !checkedAtK, t >= k {
                checkedAtK = true
                XCTAssertEqual(Double(cubic.congestionWindow), 100_000, accuracy: Double(mss), "t = \(t), K = \(k)")
            }
            if t > k + 0.5 {
                // Past K: the curve, or W_est once Reno's one segment per RTT outruns it.
                let low = wCubic(t - 0.1, k: k, wMax: 100_000)
                let high = Swift.max(wCubic(t + 0.1, k: k, wMax: 100_000), cubic.renoEstimate)
                XCTAssertGreaterThanOrEqual(cubic.window, low - Double(mss), "t = \(t)")
                XCTAssertLessThanOrEqual(cubic.window, high + Double(mss), "t = \(t)")
            }
        }
        XCTAssertTrue(checkedAtK)
        XCTAssertGreaterThan(cubic.window, wCubic(6.9, k: k, wMax: 100_000), "convex growth past W_max")
        // By t = 7 s (2.8 s past K, where the curve adds 0.4 × 3 × 2.8² ≈ 9.4 segments a second) W_est,
        // at one segment per 100 ms RTT since it passed cwnd_prior, is ahead: the Reno-friendly region.
        XCTAssertEqual(cubic.window, cubic.renoEstimate, accuracy: 1e-6)
        XCTAssertGreaterThan(cubic.renoEstimate, wCubic(7, k: k, wMax: 100_000))
    }

    /// A short RTT and a small W_max: Reno's α-per-RTT growth outruns the curve, so cwnd is W_est.
    func testRenoFriendlyRegion() {
        var cubic = Cubic(maximumSegmentSize: mss, hyStart: false)
        cubic.start(maximumSegmentSize: mss)
        for _ in 0..<5 {
            ack(&cubic, bytes: 2000, at: 0)
        }
        XCTAssertEqual(cubic.congestionWindow, 20_000)
        cubic.enterRecovery(flightSize: 20_000, maximumSegmentSize: mss, now: 0)
        cubic.exitRecovery(flightSize: 20_000, maximumSegmentSize: mss)
        XCTAssertEqual(cubic.congestionWindow, 14_000)
        let start = seconds
        let k = cbrt(20 * (1 - beta) / c)
        var west = 14_000.0
        var epochStarted = false
        var now = start
        var switchedToAlphaOne = false
        // A window of ACKs every millisecond for half a second.
        while now < start + 500 * milliseconds {
            for _ in 0..<(cubic.congestionWindow / mss) {
                let before = cubic.window
                ack(&cubic, bytes: mss, at: now)
                if !epochStarted {
                    epochStarted = true
                    XCTAssertEqual(cubic.k, k, accuracy: 1e-12)
                }
                let a = west >= 20_000 ? 1 : alpha
                switchedToAlphaOne = switchedToAlphaOne || a == 1
                west += a * Double(mss) * Double(mss) / before
                let t = Double(now - start) / 1e9
                XCTAssertLessThan(wCubic(t, k: k, wMax: 20_000), west, "t = \(t)")
                XCTAssertEqual(cubic.window, west, accuracy: 1e-6, "t = \(t)")
            }
            now += milliseconds
        }
        XCTAssertTrue(switchedToAlphaOne, "α becomes 1 once W_est passes cwnd_prior")
        XCTAssertGreaterThan(cubic.congestionWindow, 40_000)
    }

    func testFastConvergenceLowersWMaxWhenTheWindowFellShort() {
        var cubic = afterOneLoss()
        let start = 10 * seconds
        ack(&cubic, bytes: mss, at: start)
        // Near K the target is about W_max: grow to 90 segments, short of W_max = 100.
        while cubic.window < 90_000 {
            ack(&cubic, bytes: mss, at: start + 4 * seconds)
        }
        let reached = cubic.window
        cubic.enterRecovery(flightSize: Int(reached), maximumSegmentSize: mss, now: start + 5 * seconds)
        XCTAssertEqual(cubic.maximumWindow, reached * (1 + beta) / 2, accuracy: 1e-9, "W_max = cwnd (1 + β)/2")
        XCTAssertEqual(cubic.priorWindow, reached)
        XCTAssertEqual(cubic.slowStartThreshold, Int(Double(Int(reached)) * beta))
        XCTAssertNil(cubic.epochStart, "a new epoch starts after recovery")
        // A loss above W_max: no fast convergence, W_max is the window.
        cubic.exitRecovery(flightSize: Int(reached), maximumSegmentSize: mss)
        let resumed = cubic.window
        XCTAssertLessThan(cubic.maximumWindow, reached)
        XCTAssertGreaterThan(resumed, 0)
        var grown = cubic
        while grown.window <= grown.maximumWindow {
            ack(&grown, bytes: mss, at: start + 30 * seconds)
        }
        let above = grown.window
        grown.enterRecovery(flightSize: Int(above), maximumSegmentSize: mss, now: start + 31 * seconds)
        XCTAssertEqual(grown.maximumWindow, above, accuracy: 1e-9)
    }

    /// RFC 9438 4.8: a timeout drops to one segment with ssthresh = β·flight; the next congestion
    /// avoidance starts a curve with K = 0 and W_max = the window where it starts.
    func testRetransmissionTimeout() {
        var cubic = afterOneLoss()
        let start = 10 * seconds
        ack(&cubic, bytes: mss, at: start)
        cubic.retransmissionTimeout(flightSize: 60_000, maximumSegmentSize: mss, now: start + seconds)
        XCTAssertEqual(cubic.congestionWindow, 1000)
        XCTAssertEqual(cubic.slowStartThreshold, 42_000, "β × 60 segments")
        XCTAssertNil(cubic.epochStart)
        // Slow start back: 2 segments per ACK; 21 ACKs reach 43 segments, past ssthresh.
        for _ in 0..<21 {
            ack(&cubic, bytes: 2000, at: start + 2 * seconds)
        }
        XCTAssertEqual(cubic.congestionWindow, 43_000)
        let epoch = start + 3 * seconds
        ack(&cubic, bytes: mss, at: epoch)
        XCTAssertEqual(cubic.k, 0)
        XCTAssertEqual(cubic.maximumWindow, 43_000)
        XCTAssertEqual(cubic.epochWindow, 43_000)
        // One second later: W_cubic(1) = 43 + 0.4 segments is above W_est, so the cubic target rules.
        let before = cubic.window
        let west = cubic.renoEstimate + alpha * Double(mss) * Double(mss) / before
        ack(&cubic, bytes: mss, at: epoch + seconds)
        XCTAssertGreaterThan(wCubic(1, k: 0, wMax: 43_000), west)
        let target = wCubic(1.1, k: 0, wMax: 43_000)
        XCTAssertEqual(cubic.window, before + (target - before) * Double(mss) / before, accuracy: 1e-6)
    }

    /// RFC 7661 and RFC 9438 5.8: an ACK of a window the sender did not use grows nothing, and the
    /// application-limited time does not count toward t.
    func testApplicationLimitedACKsDoNotGrowTheWindowOrAdvanceTheCurve() {
        var cubic = afterOneLoss()
        let start = 10 * seconds
        ack(&cubic, bytes: mss, at: start)
        let window = cubic.window
        let estimate = cubic.renoEstimate
        ack(&cubic, bytes: mss, at: start + 2 * seconds, validated: false)
        XCTAssertEqual(cubic.window, window)
        XCTAssertEqual(cubic.renoEstimate, estimate)
        XCTAssertEqual(cubic.epochStart, start + 2 * seconds, "two limited seconds moved t_epoch")
        var slow = Cubic(maximumSegmentSize: mss, hyStart: false)
        slow.start(maximumSegmentSize: mss)
        ack(&slow, bytes: 2000, at: 0, validated: false)
        XCTAssertEqual(slow.congestionWindow, 10_000, "no slow-start growth either")
    }

    /// CUBIC sits inline in the connection's existential (three words) and makes its state box only
    /// when its window is first in use or congestion first met: an idle connection has none. A copy
    /// (a recovery's undo) shares the box, and a change to one leaves the other as it was.
    func testStateIsMadeOnlyWhenFirstNeededAndCopiedOnWrite() {
        XCTAssertLessThanOrEqual(MemoryLayout<Cubic>.size, 3 * MemoryLayout<Int>.size)
        var cubic = Cubic(maximumSegmentSize: mss)
        cubic.start(maximumSegmentSize: mss)
        ack(&cubic, bytes: 100, at: 0, validated: false)
        XCTAssertFalse(cubic.ownsState, "an unused window needs no state")
        XCTAssertEqual(cubic.hyStart?.phase, .slowStart)
        var plain = Cubic(maximumSegmentSize: mss, hyStart: false)
        ack(&plain, bytes: 2000, at: 0)
        XCTAssertEqual(plain.congestionWindow, 12_000)
        XCTAssertFalse(plain.ownsState, "plain slow start moves the window alone")
        ack(&cubic, bytes: 2000, at: 0)
        XCTAssertTrue(cubic.ownsState, "HyStart++ counts the round from the first ACK in use")
        XCTAssertEqual(cubic.hyStart?.windowEnd, SequenceNumber(0))
        let saved = cubic
        XCTAssertTrue(saved.ownedStateObject === cubic.ownedStateObject)
        cubic.enterRecovery(flightSize: 20_000, maximumSegmentSize: mss, now: seconds)
        XCTAssertFalse(saved.ownedStateObject === cubic.ownedStateObject)
        XCTAssertEqual(saved.hyStart?.phase, .slowStart)
        XCTAssertEqual(saved.maximumWindow, 0)
        XCTAssertEqual(cubic.hyStart?.phase, .finished)
        XCTAssertEqual(cubic.maximumWindow, 12_000)
        XCTAssertNotEqual(saved, cubic)
        XCTAssertEqual(saved, saved)
    }

    func testHostileInputsNeverTrap() {
        for mss in [Int.min, -1, 0, 1, 1460, Int.max] {
            var cubic = Cubic(maximumSegmentSize: mss)
            cubic.start(maximumSegmentSize: mss)
            for now in [Int64.min, -1, 0, 1, Int64.max / 2, Int64.max] {
                for bytes in [Int.min, -1, 0, 1, Int(Int32.max), Int.max] {
                    cubic.acknowledged(
                        TCPAcknowledgmentSample(
                            bytes: bytes, maximumSegmentSize: mss, now: now, acknowledgment: SequenceNumber(0),
                            sendMax: SequenceNumber(UInt32.max), rtt: now, smoothedRTT: now))
                    XCTAssertGreaterThan(cubic.congestionWindow, 0)
                    XCTAssertLessThanOrEqual(cubic.congestionWindow, Cubic.largestWindow)
                }
                cubic.enterRecovery(flightSize: Int.max, maximumSegmentSize: mss, now: now)
                cubic.duplicateACKInRecovery(maximumSegmentSize: mss)
                cubic.partialACK(bytes: Int.min, maximumSegmentSize: mss)
                cubic.partialACK(bytes: Int.max, maximumSegmentSize: mss)
                cubic.exitRecovery(flightSize: Int.min, maximumSegmentSize: mss)
                cubic.retransmissionTimeout(flightSize: Int.max, maximumSegmentSize: mss, now: now)
                XCTAssertGreaterThan(cubic.congestionWindow, 0)
                XCTAssertGreaterThan(cubic.slowStartThreshold, 0)
            }
        }
    }

    /// The controller lives in the connection's existential box: its state is part of every
    /// connection's cost (the 2 KiB idle budget), so it stays small.
    func testStateStaysSmall() {
        print(
            "Cubic \(MemoryLayout<Cubic>.size) B, NewReno \(MemoryLayout<NewReno>.size) B, "
                + "HyStart++ \(MemoryLayout<HyStartPlusPlus>.size) B")
        XCTAssertLessThanOrEqual(MemoryLayout<Cubic>.size, 256)
        XCTAssertLessThanOrEqual(MemoryLayout<NewReno>.size, 128)
    }
}
