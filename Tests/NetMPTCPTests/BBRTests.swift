import NetMPTCP
import XCTest

/// BBR v1's state machine as a value, driven by rate samples on a manual clock. The path the
/// driver models delivers `bandwidth / 100` bytes per 10 ms round: every sample's rate is exactly
/// its bandwidth, and by default every sample starts a round.
final class BBRTests: XCTestCase {
    static let mss = 1000
    static let millisecond: Int64 = 1_000_000

    struct Driver {
        var bbr = BBR(maximumSegmentSize: BBRTests.mss, seed: 7)
        var now: Int64 = 0
        var total = 0

        /// One ACK `advance` after the last, delivering `bandwidth / 100` bytes over 10 ms. With
        /// `newRound` it acknowledges what was sent after the last round began, so a round ends.
        mutating func sample(
            bandwidth: Int = 4_500_000, rtt: Int64? = 10 * BBRTests.millisecond,
            advance: Int64 = 10 * BBRTests.millisecond, inFlight: Int = 1_000_000, lost: Int = 0,
            applicationLimited: Bool = false, newRound: Bool = true
        ) {
            now += advance
            let delivered = bandwidth / 100
            let prior = newRound ? total : Swift.max(0, total - 1)
            total += delivered
            bbr.rateSampled(
                TCPRateSample(
                    now: now, maximumSegmentSize: BBRTests.mss, totalDelivered: total, acknowledged: delivered,
                    lost: lost, priorInFlight: inFlight, inFlight: inFlight, priorDelivered: prior,
                    delivered: delivered, interval: 10 * BBRTests.millisecond, isApplicationLimited: applicationLimited,
                    rtt: rtt))
        }

        /// Startup to Drain: rounds at 1, 2 and 4 MB/s, then three at 4.5 (less than 25 % more).
        mutating func leaveStartup() {
            for bandwidth in [1_000_000, 2_000_000, 4_000_000, 4_500_000, 4_500_000, 4_500_000] {
                sample(bandwidth: bandwidth)
            }
        }

        /// Startup, Drain, then ProbeBW once the flight is down to the BDP.
        mutating func reachProbeBandwidth() {
            leaveStartup()
            sample(inFlight: 48_000)
        }
    }

    func testStartupExitsAfterThreeRoundsWithoutQuarterGrowth() {
        var driver = Driver()
        XCTAssertEqual(driver.bbr.mode, .startup)
        XCTAssertEqual(driver.bbr.congestionWindow, 10_000)
        XCTAssertEqual(driver.bbr.pacingGain, BBR.highGain)
        XCTAssertEqual(driver.bbr.windowGain, BBR.highGain)
        for bandwidth in [1_000_000, 2_000_000, 4_000_000] {
            driver.sample(bandwidth: bandwidth)
            XCTAssertEqual(driver.bbr.fullBandwidth, bandwidth, "each round grew 25 % or more")
            XCTAssertEqual(driver.bbr.fullBandwidthCount, 0)
        }
        // 4.5 MB/s is less than 5 (4 × 5/4): the first and second such rounds keep Startup.
        driver.sample(bandwidth: 4_500_000)
        XCTAssertEqual(driver.bbr.fullBandwidthCount, 1)
        // An application-limited round is no evidence either way.
        driver.sample(bandwidth: 4_500_000, applicationLimited: true)
        XCTAssertEqual(driver.bbr.fullBandwidthCount, 1)
        driver.sample(bandwidth: 4_500_000)
        XCTAssertEqual(driver.bbr.fullBandwidthCount, 2)
        XCTAssertEqual(driver.bbr.mode, .startup)
        XCTAssertEqual(driver.bbr.slowStartThreshold, Int.max)
        driver.sample(bandwidth: 4_500_000)
        XCTAssertTrue(driver.bbr.fullBandwidthReached)
        XCTAssertEqual(driver.bbr.mode, .drain)
        XCTAssertEqual(driver.bbr.roundCount, 7)
        XCTAssertEqual(driver.bbr.bottleneckBandwidth, 4_500_000)
        XCTAssertEqual(driver.bbr.minimumRTT, 10 * Self.millisecond)
        // BDP 4.5 MB/s × 10 ms = 45 000 bytes, plus three segments.
        XCTAssertEqual(driver.bbr.slowStartThreshold, 48_000)
        XCTAssertEqual(driver.bbr.pacingGain, BBR.drainGain)
        XCTAssertEqual(driver.bbr.windowGain, BBR.highGain)
        // Drain paces at 88/256 of BtlBw, less the 1 % margin.
        XCTAssertEqual(driver.bbr.pacingRateBytesPerSecond, 4_500_000 * 88 / 256 / 100 * 99)
    }

    func testDrainLastsUntilTheFlightIsDownToTheBDP() {
        var driver = Driver()
        driver.leaveStartup()
        driver.sample(inFlight: 48_001)
        XCTAssertEqual(driver.bbr.mode, .drain)
        driver.sample(inFlight: 48_000)
        XCTAssertEqual(driver.bbr.mode, .probeBandwidth)
        XCTAssertEqual(driver.bbr.windowGain, BBR.probeBandwidthWindowGain)
        // ProbeBW never starts in its draining phase (3/4).
        XCTAssertNotEqual(driver.bbr.cycleIndex, 1)
        XCTAssertEqual(driver.bbr.pacingGain, BBR.pacingGainCycle[driver.bbr.cycleIndex])
    }

    func testProbeBandwidthCyclesItsGainsInOrder() {
        var driver = Driver()
        driver.reachProbeBandwidth()
        let start = driver.bbr.cycleIndex
        var gains: [Int] = []
        for _ in 0..<16 {
            // A phase lasts one minimum RTT; the probing phase also needs its queue (1.25 BDP).
            driver.sample(advance: 10 * Self.millisecond + 1, inFlight: 59_250)
            gains.append(driver.bbr.pacingGain)
        }
        let expected = (1...16).map { BBR.pacingGainCycle[(start + $0) % 8] }
        XCTAssertEqual(gains, expected)
        XCTAssertEqual(Array(BBR.pacingGainCycle.prefix(3)), [320, 192, 256])
    }

    func testProbingAndDrainingPhasesEndOnTheFlightNotOnlyTheClock() {
        var driver = Driver()
        driver.reachProbeBandwidth()
        while driver.bbr.cycleIndex != 0 {
            driver.sample(advance: 11 * Self.millisecond)
        }
        // Probing (5/4): a minimum RTT is not enough while the flight is below 1.25 BDP + 3 MSS.
        for _ in 0..<3 {
            driver.sample(advance: 11 * Self.millisecond, inFlight: 59_249)
            XCTAssertEqual(driver.bbr.cycleIndex, 0)
        }
        // The cwnd target in the probing phase: 2 BDP + 3 MSS + 2 MSS.
        XCTAssertEqual(driver.bbr.congestionWindow, 95_000)
        // A loss ends it as well.
        driver.sample(advance: 11 * Self.millisecond, inFlight: 10_000, lost: 1000)
        XCTAssertEqual(driver.bbr.cycleIndex, 1)
        // Draining (3/4): ends before a minimum RTT once the flight is down to the BDP.
        driver.sample(advance: Self.millisecond, inFlight: 48_001)
        XCTAssertEqual(driver.bbr.cycleIndex, 1)
        driver.sample(advance: Self.millisecond, inFlight: 48_000)
        XCTAssertEqual(driver.bbr.cycleIndex, 2)
        // Cruising (1): exactly a minimum RTT is not more than one.
        driver.sample(advance: 10 * Self.millisecond, inFlight: 0)
        XCTAssertEqual(driver.bbr.cycleIndex, 2)
        driver.sample(advance: 1, inFlight: 0)
        XCTAssertEqual(driver.bbr.cycleIndex, 3)
        XCTAssertEqual(driver.bbr.congestionWindow, 93_000, "2 BDP + 3 MSS outside the probing phase")
    }

    func testProbeRTTAfterTenSecondsWithoutANewMinimum() {
        var driver = Driver()
        driver.reachProbeBandwidth()
        let stamp = driver.bbr.minimumRTTStamp
        XCTAssertEqual(stamp, 10 * Self.millisecond, "the first sample's")
        let window = driver.bbr.congestionWindow
        // Larger RTTs do not replace the minimum while it is fresh.
        while driver.now + 100 * Self.millisecond < stamp + BBR.minimumRTTWindow {
            driver.sample(rtt: 11 * Self.millisecond, advance: 100 * Self.millisecond)
        }
        driver.sample(rtt: 11 * Self.millisecond, advance: stamp + BBR.minimumRTTWindow - driver.now)
        XCTAssertEqual(driver.bbr.mode, .probeBandwidth, "exactly ten seconds is not expired")
        XCTAssertEqual(driver.bbr.minimumRTT, 10 * Self.millisecond)
        let before = driver.bbr.congestionWindow
        driver.sample(rtt: 11 * Self.millisecond, advance: 1)
        XCTAssertEqual(driver.bbr.mode, .probeRTT)
        XCTAssertEqual(driver.bbr.minimumRTT, 11 * Self.millisecond, "an expired minimum takes the next sample")
        XCTAssertEqual(driver.bbr.congestionWindow, 4 * Self.mss)
        XCTAssertEqual(driver.bbr.pacingGain, BBR.unit)
        XCTAssertEqual(driver.bbr.priorWindow, before)
        XCTAssertGreaterThanOrEqual(window, 93_000)
        // The flight must come down to four segments before the 200 ms start.
        driver.sample(rtt: 11 * Self.millisecond, inFlight: 4001)
        XCTAssertEqual(driver.bbr.mode, .probeRTT)
        driver.sample(rtt: 11 * Self.millisecond, inFlight: 4000)
        let done = driver.now + BBR.probeRTTDuration
        driver.sample(rtt: 11 * Self.millisecond, advance: done - driver.now, inFlight: 4000)
        XCTAssertEqual(driver.bbr.mode, .probeRTT, "200 ms is not past")
        XCTAssertEqual(driver.bbr.congestionWindow, 4 * Self.mss)
        driver.sample(rtt: 11 * Self.millisecond, advance: 1, inFlight: 4000)
        XCTAssertEqual(driver.bbr.mode, .probeBandwidth)
        XCTAssertEqual(driver.bbr.minimumRTTStamp, driver.now)
        // The window comes back (to the target of the phase it resumes in).
        XCTAssertEqual(driver.bbr.congestionWindow, driver.bbr.targetWindow(gain: BBR.probeBandwidthWindowGain))
        XCTAssertGreaterThanOrEqual(driver.bbr.congestionWindow, 93_000)
    }

    /// ProbeRTT's samples measure four segments a round trip, not the path: they lower neither the
    /// estimate nor, once over, what ProbeBW paces at, however many rounds it lasts.
    func testProbeRTTSamplesDoNotLowerTheEstimate() {
        var driver = Driver()
        driver.reachProbeBandwidth()
        driver.sample(bandwidth: 400_000, rtt: 11 * Self.millisecond, advance: BBR.minimumRTTWindow + 1)
        XCTAssertEqual(driver.bbr.mode, .probeRTT)
        // Twenty-two rounds of 10 ms: more than the filter's ten.
        for _ in 0..<22 {
            XCTAssertEqual(driver.bbr.mode, .probeRTT)
            driver.sample(bandwidth: 400_000, rtt: 11 * Self.millisecond, inFlight: 4000)
        }
        XCTAssertEqual(driver.bbr.mode, .probeBandwidth)
        // The next ACK still covers a segment sent during ProbeRTT, and the one after it a segment
        // sent while ProbeRTT's last flight (4000 bytes) was out.
        driver.sample(bandwidth: 400_000, newRound: false)
        driver.sample(bandwidth: 400_000)
        XCTAssertEqual(driver.bbr.bottleneckBandwidth, 4_500_000)
        XCTAssertEqual(driver.bbr.pacingRateBytesPerSecond, 4_500_000 * driver.bbr.pacingGain / 256 / 100 * 99)
        // Past that, a slow sample is the path's: the filter, which saw none for 22 rounds, takes it.
        driver.sample(bandwidth: 400_000)
        XCTAssertEqual(driver.bbr.bottleneckBandwidth, 400_000)
    }

    func testProbeRTTWaitsForARoundAsWellAsTheTime() {
        var driver = Driver()
        driver.reachProbeBandwidth()
        driver.sample(rtt: 11 * Self.millisecond, advance: BBR.minimumRTTWindow + 1)
        XCTAssertEqual(driver.bbr.mode, .probeRTT)
        driver.sample(rtt: 11 * Self.millisecond, inFlight: 0)
        // 300 ms later, but the ACK does not end a round: still probing.
        driver.sample(rtt: 11 * Self.millisecond, advance: 300 * Self.millisecond, inFlight: 0, newRound: false)
        XCTAssertEqual(driver.bbr.mode, .probeRTT)
        driver.sample(rtt: 11 * Self.millisecond, inFlight: 0)
        XCTAssertEqual(driver.bbr.mode, .probeBandwidth)
    }

    func testProbeRTTReturnsToStartupBeforeTheBandwidthWasFound() {
        var driver = Driver()
        driver.sample(bandwidth: 1_000_000)
        var bandwidth = 1_000_000
        while driver.now <= 10 * Self.millisecond + BBR.minimumRTTWindow {
            bandwidth += bandwidth / 2
            driver.sample(bandwidth: bandwidth, rtt: 12 * Self.millisecond, advance: 1000 * Self.millisecond)
        }
        XCTAssertEqual(driver.bbr.mode, .probeRTT)
        driver.sample(bandwidth: bandwidth, inFlight: 0)
        driver.sample(bandwidth: bandwidth, advance: BBR.probeRTTDuration + 1, inFlight: 0)
        XCTAssertEqual(driver.bbr.mode, .startup)
    }

    func testWindowIsGainTimesBDP() {
        var driver = Driver()
        // Startup: the window grows by what each ACK delivered.
        driver.sample(bandwidth: 1_000_000)
        XCTAssertEqual(driver.bbr.congestionWindow, 20_000)
        driver.reachProbeBandwidth()
        while driver.bbr.cycleIndex == 0 {
            driver.sample(advance: 11 * Self.millisecond)
        }
        XCTAssertEqual(driver.bbr.congestionWindow, 2 * 45_000 + 3 * Self.mss)
        XCTAssertEqual(driver.bbr.bandwidthDelayProduct(gain: BBR.unit), 45_000)
        XCTAssertEqual(driver.bbr.bandwidthDelayProduct(gain: BBR.highGain), (45_000 * 739 + 255) / 256)
    }

    func testRecoveryConservesPacketsForARoundThenRestoresTheWindow() {
        var driver = Driver()
        driver.reachProbeBandwidth()
        // A cruising phase, which the ACKs below (1 ms apart) do not end.
        while driver.bbr.cycleIndex != 3 {
            driver.sample(advance: 11 * Self.millisecond)
        }
        XCTAssertEqual(driver.bbr.congestionWindow, 93_000)
        driver.bbr.enterRecovery(flightSize: 80_000, maximumSegmentSize: Self.mss, now: driver.now)
        // The first ACK of the recovery: what is in flight plus what it delivered.
        let millisecond = Self.millisecond
        driver.sample(bandwidth: 100_000, advance: millisecond, inFlight: 20_000, newRound: false)
        XCTAssertTrue(driver.bbr.packetConservation)
        XCTAssertEqual(driver.bbr.congestionWindow, 21_000)
        driver.sample(bandwidth: 100_000, advance: millisecond, inFlight: 30_000, newRound: false)
        XCTAssertEqual(driver.bbr.congestionWindow, 31_000)
        // A round later conservation is over: the window grows toward its target again.
        driver.sample(bandwidth: 100_000, advance: millisecond, inFlight: 30_000)
        XCTAssertFalse(driver.bbr.packetConservation)
        XCTAssertEqual(driver.bbr.congestionWindow, 32_000)
        driver.bbr.exitRecovery(flightSize: 30_000, maximumSegmentSize: Self.mss)
        driver.sample(bandwidth: 100_000, advance: millisecond, inFlight: 30_000, newRound: false)
        XCTAssertEqual(driver.bbr.cycleIndex, 3)
        XCTAssertEqual(driver.bbr.congestionWindow, 93_000, "the window before the recovery, within the target")
        // The model was not touched by the loss.
        XCTAssertEqual(driver.bbr.bottleneckBandwidth, 4_500_000)
    }

    func testATimeoutRestartsFromOneSegmentAndRestoresOnceTheFlightIsDelivered() {
        var driver = Driver()
        driver.reachProbeBandwidth()
        let window = driver.bbr.congestionWindow
        driver.bbr.retransmissionTimeout(flightSize: 90_000, maximumSegmentSize: Self.mss, now: driver.now)
        XCTAssertEqual(driver.bbr.congestionWindow, Self.mss)
        // 45 000 delivered of the 90 000 outstanding: still the timeout's window, grown by the ACK.
        driver.sample(inFlight: 0)
        XCTAssertEqual(driver.bbr.congestionWindow, Self.mss + 45_000)
        driver.sample(inFlight: 0)
        XCTAssertGreaterThanOrEqual(window, 93_000)
        XCTAssertEqual(driver.bbr.congestionWindow, driver.bbr.targetWindow(gain: BBR.probeBandwidthWindowGain))
        XCTAssertEqual(driver.bbr.priorWindow, window)
    }

    func testLossesNeverReduceTheModel() {
        var driver = Driver()
        driver.reachProbeBandwidth()
        for _ in 0..<20 {
            driver.sample(advance: 11 * Self.millisecond, lost: 5000)
        }
        XCTAssertEqual(driver.bbr.bottleneckBandwidth, 4_500_000)
        XCTAssertEqual(driver.bbr.mode, .probeBandwidth)
    }

    func testBandwidthFilterKeepsTenRounds() {
        var filter = WindowedMaxFilter()
        filter.update(100, round: 1)
        filter.update(70, round: 1)
        XCTAssertEqual(filter.maximum, 100)
        for round in 2...10 {
            filter.update(50, round: round)
            XCTAssertEqual(filter.maximum, 100, "round \(round)")
        }
        filter.update(40, round: 11)
        XCTAssertEqual(filter.maximum, 50, "round 1's sample is ten rounds old")
        filter.update(60, round: 25)
        XCTAssertEqual(filter.maximum, 60, "every older sample is out of the window")
        // A sample of an older round counts as the latest.
        filter.update(80, round: 3)
        XCTAssertEqual(filter.maximum, 80)
        XCTAssertEqual(filter.round, 25)
    }

    func testBandwidthEstimateFallsTenRoundsAfterThePathSlows() {
        var driver = Driver()
        driver.reachProbeBandwidth()
        for round in 1...10 {
            driver.sample(bandwidth: 1_000_000)
            XCTAssertEqual(driver.bbr.bottleneckBandwidth, round < 10 ? 4_500_000 : 1_000_000, "round \(round)")
        }
    }

    func testApplicationLimitedSamplesOnlyRaiseTheEstimate() {
        var driver = Driver()
        driver.reachProbeBandwidth()
        for _ in 0..<10 {
            driver.sample(bandwidth: 1_000_000, applicationLimited: true)
        }
        XCTAssertEqual(driver.bbr.bottleneckBandwidth, 4_500_000, "old samples stay until a real one replaces them")
        driver.sample(bandwidth: 6_000_000, applicationLimited: true)
        XCTAssertEqual(driver.bbr.bottleneckBandwidth, 6_000_000)
    }

    func testSelectableAndRateBased() {
        let controller = TCPCongestionAlgorithm.bbr.make(maximumSegmentSize: 1448, hyStart: true)
        XCTAssertTrue(controller is BBR)
        XCTAssertTrue(controller.isRateBased)
        XCTAssertNil(controller.pacingRate, "no estimate, no pacing yet")
        XCTAssertEqual(controller.congestionWindow, 14_480)
        XCTAssertEqual(TCPCongestionAlgorithm.bbr.description, "bbr")
        XCTAssertFalse(TCPCongestionAlgorithm.cubic.make(maximumSegmentSize: 1448, hyStart: true).isRateBased)
        XCTAssertEqual(TCPConfiguration().congestionControl, .cubic, "CUBIC stays the default")
    }
}
