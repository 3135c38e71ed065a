/// CUBIC (RFC 9438): after a loss the window follows W_cubic(t) = C·(t − K)³ + W_max, concave up to
/// the window where the loss happened and convex past it, but never below W_est, the window Reno
/// would have reached (the Reno-friendly region). Fast recovery itself is RFC 6582's, driven by the
/// connection; HyStart++ (RFC 9406) may end the initial slow start.
///
/// Windows are kept in bytes as `Double` (the RFC's segments times the MSS), so increases of less
/// than a byte per ACK add up; every conversion back to an integer is clamped, and no input (times,
/// byte counts, RTTs) can make the arithmetic trap.
public struct Cubic: TCPCongestionControl, Hashable {
    /// C: how fast the window grows away from W_max, in segments per second cubed.
    public static let c = 0.4
    /// β: the window kept at a loss.
    public static let beta = 0.7
    /// α for W_est, 3(1 − β)/(1 + β): Reno's average rate at the same loss rate (section 4.3).
    public static let alpha = 3 * (1 - beta) / (1 + beta)
    /// The largest window (1 TiB), far beyond any sequence space; keeps conversions in range.
    public static let largestWindow = 1 << 40
    /// Slow start's per-ACK limit L without HyStart++ (RFC 3465: 2 segments).
    static let slowStartSegmentLimit = 2

    /// cwnd in bytes, outside recovery.
    public private(set) var window: Double
    public private(set) var slowStartThreshold = Int.max
    /// W_max in bytes: the window at the last reduction, lowered by fast convergence; 0 before the
    /// first loss and after a timeout (then the window where congestion avoidance starts).
    public private(set) var maximumWindow: Double = 0
    /// cwnd_prior: the window just before the last reduction; W_est grows at α until it gets there.
    public private(set) var priorWindow: Double = 0
    /// t_epoch: when the current congestion avoidance stage began (nil until its first ACK).
    public private(set) var epochStart: Int64?
    /// cwnd_epoch: the window when it began.
    public private(set) var epochWindow: Double = 0
    /// K in seconds: when W_cubic returns to W_max.
    public private(set) var k: Double = 0
    /// W_est in bytes.
    public private(set) var renoEstimate: Double = 0
    /// The connection's smoothed RTT in nanoseconds (0 before the first sample).
    public private(set) var smoothedRTT: Int64 = 0
    public private(set) var hyStart: HyStartPlusPlus?
    /// The inflated window of fast recovery (RFC 6582), nil outside recovery.
    private var recoveryWindow: Int?
    private var lastAcknowledgmentTime: Int64?
    private let usesHyStart: Bool

    public var congestionWindow: Int { recoveryWindow ?? Cubic.bytes(window) }

    public init(maximumSegmentSize: Int, hyStart: Bool = true) {
        usesHyStart = hyStart
        window = Double(NewReno.initialWindow(maximumSegmentSize: Cubic.segmentSize(maximumSegmentSize)))
        self.hyStart = hyStart ? HyStartPlusPlus() : nil
    }

    public mutating func start(maximumSegmentSize mss: Int) {
        self = Cubic(maximumSegmentSize: mss, hyStart: usesHyStart)
    }

    /// Continues another algorithm's connection: its window, its threshold, and (as after a timeout)
    /// a curve that starts where congestion avoidance next begins, with K = 0.
    public mutating func resume(congestionWindow: Int, slowStartThreshold: Int, maximumSegmentSize mss: Int) {
        let segment = Cubic.segmentSize(mss)
        hyStart?.finish()
        recoveryWindow = nil
        window = Cubic.clamp(Double(Swift.min(Swift.max(0, congestionWindow), Cubic.largestWindow)), segment)
        self.slowStartThreshold = Swift.max(slowStartThreshold, 2 * segment)
        maximumWindow = 0
        priorWindow = 0
        epochStart = nil
    }

    // MARK: Growth

    public mutating func acknowledged(bytes: Int, maximumSegmentSize: Int, now: Int64) {
        acknowledged(
            TCPAcknowledgmentSample(
                bytes: bytes, maximumSegmentSize: maximumSegmentSize, now: now, acknowledgment: SequenceNumber(0),
                sendMax: SequenceNumber(0)))
    }

    public mutating func acknowledged(_ sample: TCPAcknowledgmentSample) {
        let now = sample.now
        defer { lastAcknowledgmentTime = now }
        if let smoothed = sample.smoothedRTT {
            smoothedRTT = Swift.max(0, smoothed)
        }
        guard sample.windowValidated else {
            // Application-limited (RFC 7661, RFC 9438 section 5.8): the window stays, and the time
            // does not count toward t, so the curve resumes where it stopped.
            if let start = epochStart, let last = lastAcknowledgmentTime, start <= last {
                epochStart = start &+ Swift.max(0, now &- last)
            }
            return
        }
        let mss = Cubic.segmentSize(sample.maximumSegmentSize)
        let acknowledged = Double(Swift.max(0, sample.bytes))
        if window < Double(slowStartThreshold) {
            if var hyStart, hyStart.phase != .finished {
                let step = hyStart.acknowledged(sample)
                self.hyStart = hyStart
                if step.enterCongestionAvoidance {
                    slowStartThreshold = Cubic.bytes(window)
                } else {
                    window += Double(step.increase)
                }
            } else {
                window += Swift.min(acknowledged, Double(Cubic.slowStartSegmentLimit) * Double(mss))
            }
            window = Cubic.clamp(window, mss)
            return
        }
        let segment = Double(mss)
        if epochStart == nil {
            beginEpoch(now: now, segment: segment)
        }
        let elapsed = Cubic.seconds(now &- (epochStart ?? now))
        // W_est grows by α segments per window of ACKs; α is 1 once it passes cwnd_prior.
        let alpha = renoEstimate >= priorWindow ? 1.0 : Cubic.alpha
        renoEstimate = Cubic.clamp(renoEstimate + alpha * acknowledged * segment / window, mss)
        if cubicWindow(elapsed, segment: segment) < renoEstimate {
            // Reno-friendly region: at least what Reno would have.
            window = Swift.max(window, renoEstimate)
        } else {
            // Concave or convex region: close (target − cwnd)/cwnd per segment acknowledged, aiming
            // one RTT ahead, at least the current window and at most half again.
            let ahead = cubicWindow(elapsed + Cubic.seconds(smoothedRTT), segment: segment)
            let target = Swift.min(Swift.max(ahead, window), 1.5 * window)
            window += (target - window) * acknowledged / window
        }
        window = Cubic.clamp(window, mss)
    }

    /// W_cubic(t) in bytes for `t` seconds into the epoch.
    func cubicWindow(_ t: Double, segment: Double) -> Double {
        let offset = t - k
        return Cubic.c * segment * offset * offset * offset + maximumWindow
    }

    /// The first ACK of a congestion avoidance stage: t, K and W_est start here. With no W_max above
    /// the window (no loss yet, or after a timeout, section 4.8) W_max is the window and K is 0.
    private mutating func beginEpoch(now: Int64, segment: Double) {
        epochStart = now
        epochWindow = window
        if maximumWindow < window {
            maximumWindow = window
        }
        k = Cubic.cubeRoot((maximumWindow - window) / (Cubic.c * segment))
        renoEstimate = window
    }

    // MARK: Reductions

    public mutating func enterRecovery(flightSize: Int, maximumSegmentSize mss: Int, now: Int64) {
        reduce(flightSize: flightSize, maximumSegmentSize: mss)
        recoveryWindow = slowStartThreshold &+ 3 &* Cubic.segmentSize(mss)
    }

    public mutating func duplicateACKInRecovery(maximumSegmentSize mss: Int) {
        if let inflated = recoveryWindow {
            recoveryWindow = Swift.min(inflated &+ Cubic.segmentSize(mss), Cubic.largestWindow)
        }
    }

    public mutating func partialACK(bytes: Int, maximumSegmentSize mss: Int) {
        guard let inflated = recoveryWindow else { return }
        let segment = Cubic.segmentSize(mss)
        var deflated = Swift.max(inflated - Swift.min(Swift.max(0, bytes), inflated), segment)
        if bytes >= segment {
            deflated += segment
        }
        recoveryWindow = deflated
    }

    public mutating func exitRecovery(flightSize: Int, maximumSegmentSize mss: Int) {
        let segment = Cubic.segmentSize(mss)
        recoveryWindow = nil
        let resumed = Swift.min(
            slowStartThreshold, Swift.max(Swift.min(flightSize, Cubic.largestWindow), segment) + segment)
        window = Cubic.clamp(Double(resumed), segment)
    }

    public mutating func retransmissionTimeout(flightSize: Int, maximumSegmentSize mss: Int, now: Int64) {
        let segment = Cubic.segmentSize(mss)
        hyStart?.finish()
        recoveryWindow = nil
        priorWindow = Swift.max(window, Double(Swift.max(0, flightSize)))
        slowStartThreshold = Swift.max(Cubic.bytes(Double(Swift.max(0, flightSize)) * Cubic.beta), 2 * segment)
        // Reno's loss window; the next congestion avoidance starts a curve with K = 0.
        window = Double(segment)
        maximumWindow = 0
        epochStart = nil
    }

    /// Section 4.6 with fast convergence (4.7): W_max is the window now, or less when the window did
    /// not get back to the previous W_max (another flow took a share); ssthresh keeps β of the flight.
    private mutating func reduce(flightSize: Int, maximumSegmentSize mss: Int) {
        let segment = Cubic.segmentSize(mss)
        hyStart?.finish()
        priorWindow = window
        maximumWindow = window < maximumWindow ? window * (1 + Cubic.beta) / 2 : window
        slowStartThreshold = Swift.max(Cubic.bytes(Double(Swift.max(0, flightSize)) * Cubic.beta), 2 * segment)
        window = Double(slowStartThreshold)
        epochStart = nil
    }

    // MARK: Arithmetic that cannot trap

    /// The MSS as the arithmetic uses it: at least 1 byte, at most 1 MiB.
    static func segmentSize(_ mss: Int) -> Int { Swift.min(Swift.max(1, mss), 1 << 20) }

    /// A byte count from a window: NaN and negatives are 0, the rest is at most `largestWindow`.
    static func bytes(_ value: Double) -> Int {
        guard value > 0 else { return 0 }
        return value < Double(largestWindow) ? Int(value) : largestWindow
    }

    /// A window kept between one segment and `largestWindow` (NaN becomes one segment).
    static func clamp(_ value: Double, _ segment: Int) -> Double {
        let lowest = Double(segmentSize(segment))
        guard value > lowest else { return lowest }
        return Swift.min(value, Double(largestWindow))
    }

    /// Nanoseconds as seconds, negatives as 0.
    static func seconds(_ nanoseconds: Int64) -> Double {
        Double(Swift.max(0, nanoseconds)) / 1e9
    }

    /// The real cube root of a non-negative `x` by Newton's method (NaN, infinities and negatives
    /// give 0: K is never negative).
    static func cubeRoot(_ x: Double) -> Double {
        guard x > 0, x.isFinite else { return 0 }
        var root = Double(sign: .plus, exponent: x.exponent / 3, significand: 1)
        for _ in 0..<64 {
            let next = (2 * root + x / (root * root)) / 3
            if next == root {
                break
            }
            root = next
        }
        return root
    }
}
