/// BBR version 1 (draft-cardwell-iccrg-bbr-congestion-control, as Linux's tcp_bbr.c runs it): a
/// model of the path, not a reaction to loss. The bottleneck bandwidth is the largest delivery
/// rate of the last ten round trips, the propagation delay the smallest RTT of the last ten
/// seconds; the sender paces at a gain times that bandwidth and keeps at most a gain times their
/// product in flight. Startup doubles the rate each round until three rounds bring less than 25 %
/// more bandwidth, Drain empties the queue that built, ProbeBW cycles its pacing gain through
/// 5/4, 3/4 and six rounds of 1, and ProbeRTT drops to four segments for 200 ms when the minimum
/// RTT was not renewed for ten seconds.
///
/// A value driven by `rateSampled` once per ACK; losses only bound the window for a round
/// (packet conservation) and never reduce the model. Gains are in units of 1/256, as Linux's.
/// Not implemented: Linux's long-term (policer) bandwidth sampling and the idle-restart case.
public struct BBR: TCPCongestionControl, Hashable {
    public enum Mode: Hashable, Sendable {
        case startup
        case drain
        case probeBandwidth
        case probeRTT
    }

    /// Gains are fractions of this unit.
    public static let unit = 256
    /// 2/ln 2: the smallest gain that doubles the delivery rate each round in Startup.
    public static let highGain = 739
    /// Its inverse: Drain empties in one round the queue Startup built.
    public static let drainGain = 88
    /// ProbeBW's window gain: room for the probing phase and delayed, aggregated ACKs.
    public static let probeBandwidthWindowGain = 512
    /// ProbeBW's pacing gains, one phase per minimum RTT.
    public static let pacingGainCycle = [320, 192, 256, 256, 256, 256, 256, 256]
    /// Startup ends after this many rounds without `fullBandwidthGrowth` more bandwidth.
    public static let fullBandwidthRounds = 3
    /// 5/4: the growth that counts as "still growing".
    public static let fullBandwidthGrowth = 320
    /// How long a minimum RTT lasts without being seen again.
    public static let minimumRTTWindow: Int64 = 10_000_000_000
    /// How long ProbeRTT holds the flight at `minimumWindowSegments` (at least a round too).
    public static let probeRTTDuration: Int64 = 200_000_000
    /// The smallest window, and ProbeRTT's.
    public static let minimumWindowSegments = 4
    /// Pacing runs 1 % below the estimate so the bottleneck queue drains over time.
    public static let pacingMarginPercent = 1

    public private(set) var mode = Mode.startup
    public private(set) var congestionWindow: Int
    /// Int.max in Startup; the estimated BDP once Startup is over (what Linux reports).
    public private(set) var slowStartThreshold = Int.max
    /// Bytes per second to pace at (0 until the first estimate).
    public private(set) var pacingRateBytesPerSecond = 0
    public private(set) var pacingGain = BBR.highGain
    public private(set) var windowGain = BBR.highGain

    /// BtlBw's filter, by round trip.
    public private(set) var bandwidthFilter = WindowedMaxFilter()
    /// RTprop: the smallest RTT sample since `minimumRTTStamp` (nil before the first).
    public private(set) var minimumRTT: Int64?
    public private(set) var minimumRTTStamp: Int64 = 0
    /// Round trips counted so far, and the `totalDelivered` that ends the current one.
    public private(set) var roundCount = 0
    private var nextRoundDelivered = 0
    /// This ACK started a new round.
    public private(set) var roundStart = false

    public private(set) var fullBandwidthReached = false
    public private(set) var fullBandwidth = 0
    public private(set) var fullBandwidthCount = 0

    /// ProbeBW's place in `pacingGainCycle`, and when that phase began.
    public private(set) var cycleIndex = 0
    private var cycleStamp: Int64 = 0

    /// When ProbeRTT may end (nil: the flight has not come down yet) and whether a round passed.
    private var probeRTTDoneStamp: Int64?
    private var probeRTTRoundDone = false
    /// Samples of segments sent before `totalDelivered` passed this measure ProbeRTT's four
    /// segments, not the path: they count as application-limited, as Linux marks them. The mark is
    /// the delivered count plus the flight, so it also covers what leaves in the round after
    /// ProbeRTT, while its last segments are still in flight.
    private var probeRTTLimitedUntil: Int?

    /// Loss handling: the window before a recovery or timeout, restored when it ends.
    private enum LossState: Hashable {
        case open
        case recovery
        /// After a timeout, until `totalDelivered` reaches `until` (what was in flight got through).
        case timedOut(until: Int?)
    }
    private var lossState = LossState.open
    /// The state the last sample saw: entering and leaving are handled on the next sample.
    private var previousLossState = LossState.open
    public private(set) var priorWindow = 0
    /// Packet conservation: for the first round of a recovery the flight grows by at most what
    /// each ACK delivered.
    public private(set) var packetConservation = false
    /// The timeout's flight, to be delivered before it is over.
    private var timeoutFlight = 0
    private var lastTotalDelivered = 0
    private var maximumSegmentSize: Int
    /// Picks ProbeBW's first phase (Linux randomises it so that flows do not probe in step).
    private var random: UInt64

    /// `seed` picks ProbeBW's starting phases; equal seeds give equal runs.
    public init(maximumSegmentSize: Int, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) {
        let mss = Swift.max(1, maximumSegmentSize)
        self.maximumSegmentSize = mss
        congestionWindow = NewReno.initialWindow(maximumSegmentSize: mss)
        random = seed == 0 ? 1 : seed
    }

    /// The window to keep and pacing to use: BBR's own, in and out of recovery.
    public var isRateBased: Bool { true }
    public var pacingRate: Int? { pacingRateBytesPerSecond > 0 ? pacingRateBytesPerSecond : nil }

    /// BtlBw in bytes per second.
    public var bottleneckBandwidth: Int { bandwidthFilter.maximum }

    // MARK: The congestion-control interface

    public mutating func start(maximumSegmentSize mss: Int) {
        self = BBR(maximumSegmentSize: mss, seed: random)
    }

    public mutating func resume(congestionWindow: Int, slowStartThreshold: Int, maximumSegmentSize mss: Int) {
        // The model starts empty: Startup from the window the connection had.
        self.maximumSegmentSize = Swift.max(1, mss)
        self.congestionWindow = Swift.max(congestionWindow, minimumWindow)
    }

    /// Everything happens per rate sample.
    public mutating func acknowledged(bytes: Int, maximumSegmentSize: Int, now: Int64) {}
    public mutating func acknowledged(_ sample: TCPAcknowledgmentSample) {}
    public mutating func duplicateACKInRecovery(maximumSegmentSize: Int) {}
    public mutating func partialACK(bytes: Int, maximumSegmentSize: Int) {}
    /// BBR v1 does not react to ECN.
    public mutating func congestionExperienced(flightSize: Int, maximumSegmentSize: Int, now: Int64) {}

    public mutating func enterRecovery(flightSize: Int, maximumSegmentSize: Int, now: Int64) {
        saveWindow()
        lossState = .recovery
    }

    public mutating func exitRecovery(flightSize: Int, maximumSegmentSize: Int) {
        lossState = .open
    }

    public mutating func retransmissionTimeout(flightSize: Int, maximumSegmentSize mss: Int, now: Int64) {
        saveWindow()
        lossState = .timedOut(until: nil)
        timeoutFlight = Swift.max(0, flightSize)
        // As Linux's loss state: one segment out, then one more per segment delivered.
        congestionWindow = Swift.max(1, mss)
    }

    // MARK: Per-ACK processing

    public mutating func rateSampled(_ sample: TCPRateSample) {
        var sample = sample
        if mode == .probeRTT {
            probeRTTLimitedUntil = sample.totalDelivered &+ Swift.max(0, sample.inFlight)
        }
        if mode == .probeRTT {
            sample.isApplicationLimited = true
        } else if let prior = sample.priorDelivered, let until = probeRTTLimitedUntil, prior <= until {
            sample.isApplicationLimited = true
        }
        maximumSegmentSize = Swift.max(1, sample.maximumSegmentSize)
        lastTotalDelivered = sample.totalDelivered
        if case .timedOut(let until) = lossState {
            let end = until ?? (sample.totalDelivered &- sample.acknowledged &+ timeoutFlight)
            lossState = sample.totalDelivered >= end ? .open : .timedOut(until: end)
        }
        updateBandwidth(sample)
        updateCyclePhase(sample)
        checkFullBandwidthReached(sample)
        checkDrain(sample)
        updateMinimumRTT(sample)
        updateGains()
        setPacingRate(sample)
        setWindow(sample)
    }

    /// Rounds, and BtlBw from the sample's rate unless it measured the application.
    private mutating func updateBandwidth(_ sample: TCPRateSample) {
        roundStart = false
        guard let prior = sample.priorDelivered else { return }
        if prior >= nextRoundDelivered {
            nextRoundDelivered = sample.totalDelivered
            roundCount &+= 1
            roundStart = true
            packetConservation = false
        }
        guard let rate = sample.deliveryRate else { return }
        if !sample.isApplicationLimited || rate >= bottleneckBandwidth {
            bandwidthFilter.update(rate, round: roundCount)
        }
    }

    /// ProbeBW moves to its next phase after a minimum RTT, a probing phase only once it built its
    /// queue (or met a loss), a draining one early once the flight is down to the BDP.
    private mutating func updateCyclePhase(_ sample: TCPRateSample) {
        guard mode == .probeBandwidth else { return }
        let fullLength = minimumRTT.map { sample.now &- cycleStamp > $0 } ?? true
        let gain = BBR.pacingGainCycle[cycleIndex]
        let next: Bool
        if gain == BBR.unit {
            next = fullLength
        } else if gain > BBR.unit {
            next = fullLength && (sample.lost > 0 || sample.priorInFlight >= inflight(gain: gain))
        } else {
            next = fullLength || sample.priorInFlight <= inflight(gain: BBR.unit)
        }
        if next {
            advanceCyclePhase(now: sample.now)
        }
    }

    private mutating func advanceCyclePhase(now: Int64) {
        cycleIndex = (cycleIndex + 1) % BBR.pacingGainCycle.count
        cycleStamp = now
    }

    /// Startup is over when three rounds in a row, not limited by the application, did not bring
    /// 25 % more bandwidth.
    private mutating func checkFullBandwidthReached(_ sample: TCPRateSample) {
        guard !fullBandwidthReached, roundStart, !sample.isApplicationLimited else { return }
        let threshold = BBR.scale(fullBandwidth, by: BBR.fullBandwidthGrowth)
        if bottleneckBandwidth >= threshold {
            fullBandwidth = bottleneckBandwidth
            fullBandwidthCount = 0
            return
        }
        fullBandwidthCount += 1
        fullBandwidthReached = fullBandwidthCount >= BBR.fullBandwidthRounds
    }

    private mutating func checkDrain(_ sample: TCPRateSample) {
        if mode == .startup, fullBandwidthReached {
            mode = .drain
            slowStartThreshold = inflight(gain: BBR.unit)
        }
        if mode == .drain, sample.inFlight <= inflight(gain: BBR.unit) {
            enterProbeBandwidth(now: sample.now)
        }
    }

    /// ProbeBW starting at a random phase other than the draining one.
    private mutating func enterProbeBandwidth(now: Int64) {
        mode = .probeBandwidth
        let phases = UInt64(BBR.pacingGainCycle.count - 1)
        cycleIndex = BBR.pacingGainCycle.count - 1 - Int(nextRandom() % phases)
        advanceCyclePhase(now: now)
    }

    /// RTprop, and ProbeRTT when it expired: the flight comes down to four segments, stays there
    /// for 200 ms and a round, then the model resumes where it was.
    private mutating func updateMinimumRTT(_ sample: TCPRateSample) {
        // The first sample starts the window (an estimate that never existed cannot expire).
        let expired = minimumRTT != nil && sample.now &- minimumRTTStamp > BBR.minimumRTTWindow
        if let rtt = sample.rtt, rtt >= 0, minimumRTT.map({ rtt < $0 }) ?? true || expired {
            minimumRTT = rtt
            minimumRTTStamp = sample.now
        }
        if expired, mode != .probeRTT {
            saveWindow()
            mode = .probeRTT
            probeRTTDoneStamp = nil
        }
        guard mode == .probeRTT else { return }
        if let done = probeRTTDoneStamp {
            if roundStart {
                probeRTTRoundDone = true
            }
            if probeRTTRoundDone, sample.now > done {
                minimumRTTStamp = sample.now
                congestionWindow = Swift.max(congestionWindow, priorWindow)
                if fullBandwidthReached {
                    enterProbeBandwidth(now: sample.now)
                } else {
                    mode = .startup
                }
            }
        } else if sample.inFlight <= minimumWindow {
            probeRTTDoneStamp = sample.now &+ BBR.probeRTTDuration
            probeRTTRoundDone = false
            nextRoundDelivered = sample.totalDelivered
        }
    }

    private mutating func updateGains() {
        switch mode {
        case .startup:
            pacingGain = BBR.highGain
            windowGain = BBR.highGain
        case .drain:
            pacingGain = BBR.drainGain
            windowGain = BBR.highGain
        case .probeBandwidth:
            pacingGain = BBR.pacingGainCycle[cycleIndex]
            windowGain = BBR.probeBandwidthWindowGain
        case .probeRTT:
            pacingGain = BBR.unit
            windowGain = BBR.unit
        }
    }

    /// Pacing gain × BtlBw less the margin; before Startup is over never lowered (a slow first
    /// sample must not throttle it). Before any bandwidth estimate, high gain × IW / RTT.
    private mutating func setPacingRate(_ sample: TCPRateSample) {
        var rate: Int
        if bottleneckBandwidth > 0 {
            rate = BBR.scale(bottleneckBandwidth, by: pacingGain)
        } else if let rtt = minimumRTT, rtt > 0 {
            rate = BBR.scale(TCPRateSample.bytesPerSecond(congestionWindow, over: rtt), by: BBR.highGain)
        } else {
            return
        }
        rate = rate / 100 * (100 - BBR.pacingMarginPercent)
        if fullBandwidthReached || rate > pacingRateBytesPerSecond {
            pacingRateBytesPerSecond = rate
        }
    }

    /// cwnd = window gain × BDP (plus a little for quantization); grows toward it by what each ACK
    /// delivered; in the first round of a recovery, only what was delivered may go again; four
    /// segments in ProbeRTT.
    private mutating func setWindow(_ sample: TCPRateSample) {
        defer {
            if mode == .probeRTT {
                congestionWindow = Swift.min(congestionWindow, minimumWindow)
            }
            previousLossState = lossState
        }
        let acknowledged = sample.acknowledged
        guard acknowledged > 0 else { return }
        var window = congestionWindow
        if sample.lost > 0 {
            window = Swift.max(window - sample.lost, maximumSegmentSize)
        }
        if lossState == .recovery, previousLossState != .recovery {
            // The round that found the loss: only what the ACKs deliver goes again.
            packetConservation = true
            nextRoundDelivered = sample.totalDelivered
            window = sample.inFlight &+ acknowledged
        } else if lossState == .open, previousLossState != .open {
            window = Swift.max(window, priorWindow)
            packetConservation = false
        }
        if packetConservation {
            congestionWindow = Swift.max(window, sample.inFlight &+ acknowledged)
            return
        }
        let target = targetWindow(gain: windowGain)
        if fullBandwidthReached {
            window = Swift.min(window &+ acknowledged, target)
        } else if window < target
            || sample.totalDelivered < NewReno.initialWindow(maximumSegmentSize: maximumSegmentSize)
        {
            window = window &+ acknowledged
        }
        congestionWindow = Swift.max(window, minimumWindow)
    }

    /// What cwnd is before a recovery, timeout or ProbeRTT, to return to after it.
    private mutating func saveWindow() {
        if previousLossState == .open, lossState == .open, mode != .probeRTT {
            priorWindow = congestionWindow
        } else {
            priorWindow = Swift.max(priorWindow, congestionWindow)
        }
    }

    // MARK: The model's quantities

    private var minimumWindow: Int { BBR.minimumWindowSegments * maximumSegmentSize }

    /// gain × BtlBw × RTprop in bytes (the initial window before there is an RTprop).
    public func bandwidthDelayProduct(gain: Int) -> Int {
        guard let rtt = minimumRTT else { return NewReno.initialWindow(maximumSegmentSize: maximumSegmentSize) }
        let bdp = BBR.multiplyDivide(bottleneckBandwidth, Int(clamping: rtt), 1_000_000_000)
        return BBR.scaleUp(bdp, by: gain)
    }

    /// The flight the gain aims at: the BDP plus three segments for delayed and stretched ACKs.
    public func inflight(gain: Int) -> Int {
        bandwidthDelayProduct(gain: gain) &+ 3 * maximumSegmentSize
    }

    /// cwnd's target: `inflight`, two segments more in ProbeBW's probing phase.
    public func targetWindow(gain: Int) -> Int {
        var target = inflight(gain: gain)
        if mode == .probeBandwidth, cycleIndex == 0 {
            target &+= 2 * maximumSegmentSize
        }
        return target
    }

    private mutating func nextRandom() -> UInt64 {
        // xorshift64: deterministic for a seed, no global state.
        random ^= random << 13
        random ^= random >> 7
        random ^= random << 17
        return random
    }

    /// `value` × gain / unit, rounded down, clamped.
    static func scale(_ value: Int, by gain: Int) -> Int {
        multiplyDivide(value, gain, unit)
    }

    /// `value` × gain / unit, rounded up, clamped.
    static func scaleUp(_ value: Int, by gain: Int) -> Int {
        let down = multiplyDivide(value, gain, unit)
        let exact = UInt64(Swift.max(0, value)).multipliedFullWidth(by: UInt64(Swift.max(0, gain)))
        return exact.low % UInt64(unit) == 0 || down == Int.max ? down : down + 1
    }

    /// a × b / c for non-negative operands, in full width, clamped to Int.max.
    static func multiplyDivide(_ a: Int, _ b: Int, _ c: Int) -> Int {
        guard a > 0, b > 0, c > 0 else { return 0 }
        let product = UInt64(a).multipliedFullWidth(by: UInt64(b))
        guard product.high < UInt64(c) else { return Int.max }
        return Int(clamping: UInt64(c).dividingFullWidth(product).quotient)
    }
}
