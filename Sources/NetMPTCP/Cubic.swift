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
    /// Everything else (the curve, HyStart++, the recovery window) in a box shared copy-on-write.
    /// Until the window is first in use or congestion first met, every connection shares one of
    /// two pristine boxes and makes none of its own: with `window` and `slowStartThreshold` that is
    /// three words, which an existential holds inline, so an idle connection keeps no box at all.
    private var state: CubicStateStorage

    /// W_max in bytes: the window at the last reduction, lowered by fast convergence; 0 before the
    /// first loss and after a timeout (then the window where congestion avoidance starts).
    public var maximumWindow: Double { state.value.maximumWindow }
    /// cwnd_prior: the window just before the last reduction; W_est grows at α until it gets there.
    public var priorWindow: Double { state.value.priorWindow }
    /// t_epoch: when the current congestion avoidance stage began (nil until its first ACK).
    public var epochStart: Int64? { state.value.epochStart }
    /// cwnd_epoch: the window when it began.
    public var epochWindow: Double { state.value.epochWindow }
    /// K in seconds: when W_cubic returns to W_max.
    public var k: Double { state.value.k }
    /// W_est in bytes.
    public var renoEstimate: Double { state.value.renoEstimate }
    /// The connection's smoothed RTT in nanoseconds, as of the last ACK since this connection's
    /// state was made (0 before: no curve needed it).
    public var smoothedRTT: Int64 { state.value.smoothedRTT }
    public var hyStart: HyStartPlusPlus? { state.value.hyStart }

    @inline(__always) public var congestionWindow: Int { state.value.recoveryWindow ?? Cubic.bytes(window) }

    /// Whether this connection has made state of its own (a box on the heap), for memory reports.
    package var ownsState: Bool { !state.isShared }
    /// The box this connection's state takes, when it has one of its own.
    package var ownedStateObject: AnyObject? { state.isShared ? nil : state }

    public init(maximumSegmentSize: Int, hyStart: Bool = true) {
        window = Double(NewReno.initialWindow(maximumSegmentSize: Cubic.segmentSize(maximumSegmentSize)))
        state = hyStart ? CubicStateStorage.pristineWithHyStart : CubicStateStorage.pristineWithoutHyStart
    }

    public mutating func start(maximumSegmentSize mss: Int) {
        self = Cubic(maximumSegmentSize: mss, hyStart: state.value.usesHyStart)
    }

    /// This connection's own state, made by copying the shared one the first time (and again
    /// after a copy of the whole controller was taken, as for a recovery's undo).
    private mutating func ownState() -> CubicStateStorage {
        if !isKnownUniquelyReferenced(&state) {
            state = CubicStateStorage(state.value)
        }
        return state
    }

    /// Continues another algorithm's connection: its window, its threshold, and (as after a timeout)
    /// a curve that starts where congestion avoidance next begins, with K = 0.
    public mutating func resume(congestionWindow: Int, slowStartThreshold: Int, maximumSegmentSize mss: Int) {
        let segment = Cubic.segmentSize(mss)
        let state = ownState()
        state.value.hyStart?.finish()
        state.value.recoveryWindow = nil
        window = Cubic.clamp(Double(Swift.min(Swift.max(0, congestionWindow), Cubic.largestWindow)), segment)
        self.slowStartThreshold = Swift.max(slowStartThreshold, 2 * segment)
        state.value.maximumWindow = 0
        state.value.priorWindow = 0
        state.value.epochStart = nil
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
        let mss = Cubic.segmentSize(sample.maximumSegmentSize)
        let acknowledged = Double(Swift.max(0, sample.bytes))
        let inSlowStart = window < Double(slowStartThreshold)
        let usesHyStart = state.value.hyStart.map { $0.phase != .finished } ?? false
        if state.isShared, !sample.windowValidated || (inSlowStart && !usesHyStart) {
            // Nothing of the shared state changes: no curve runs whose clock or RTT an ACK would
            // feed, and plain slow start moves the window alone.
            if sample.windowValidated {
                window = Cubic.clamp(
                    window + Swift.min(acknowledged, Double(Cubic.slowStartSegmentLimit) * Double(mss)), mss)
            }
            return
        }
        let state = ownState()
        defer { state.value.lastAcknowledgmentTime = now }
        if let smoothed = sample.smoothedRTT {
            state.value.smoothedRTT = Swift.max(0, smoothed)
        }
        guard sample.windowValidated else {
            // Application-limited (RFC 7661, RFC 9438 section 5.8): the window stays, and the time
            // does not count toward t, so the curve resumes where it stopped.
            if let start = state.value.epochStart, let last = state.value.lastAcknowledgmentTime, start <= last {
                state.value.epochStart = start &+ Swift.max(0, now &- last)
            }
            return
        }
        if inSlowStart {
            if var hyStart = state.value.hyStart, hyStart.phase != .finished {
                let step = hyStart.acknowledged(sample)
                state.value.hyStart = hyStart
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
        if state.value.epochStart == nil {
            beginEpoch(state, now: now, segment: segment)
        }
        let elapsed = Cubic.seconds(now &- (state.value.epochStart ?? now))
        // W_est grows by α segments per window of ACKs; α is 1 once it passes cwnd_prior.
        let alpha = state.value.renoEstimate >= state.value.priorWindow ? 1.0 : Cubic.alpha
        state.value.renoEstimate = Cubic.clamp(state.value.renoEstimate + alpha * acknowledged * segment / window, mss)
        if cubicWindow(elapsed, segment: segment) < state.value.renoEstimate {
            // Reno-friendly region: at least what Reno would have.
            window = Swift.max(window, state.value.renoEstimate)
        } else {
            // Concave or convex region: close (target − cwnd)/cwnd per segment acknowledged, aiming
            // one RTT ahead, at least the current window and at most half again.
            let ahead = cubicWindow(elapsed + Cubic.seconds(state.value.smoothedRTT), segment: segment)
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
    private func beginEpoch(_ state: CubicStateStorage, now: Int64, segment: Double) {
        state.value.epochStart = now
        state.value.epochWindow = window
        if state.value.maximumWindow < window {
            state.value.maximumWindow = window
        }
        state.value.k = Cubic.cubeRoot((state.value.maximumWindow - window) / (Cubic.c * segment))
        state.value.renoEstimate = window
    }

    // MARK: Reductions

    public mutating func enterRecovery(flightSize: Int, maximumSegmentSize mss: Int, now: Int64) {
        reduce(flightSize: flightSize, maximumSegmentSize: mss)
        ownState().value.recoveryWindow = slowStartThreshold &+ 3 &* Cubic.segmentSize(mss)
    }

    public mutating func duplicateACKInRecovery(maximumSegmentSize mss: Int) {
        guard let inflated = state.value.recoveryWindow else { return }
        ownState().value.recoveryWindow = Swift.min(inflated &+ Cubic.segmentSize(mss), Cubic.largestWindow)
    }

    public mutating func partialACK(bytes: Int, maximumSegmentSize mss: Int) {
        guard let inflated = state.value.recoveryWindow else { return }
        let segment = Cubic.segmentSize(mss)
        var deflated = Swift.max(inflated - Swift.min(Swift.max(0, bytes), inflated), segment)
        if bytes >= segment {
            deflated += segment
        }
        ownState().value.recoveryWindow = deflated
    }

    public mutating func exitRecovery(flightSize: Int, maximumSegmentSize mss: Int) {
        let segment = Cubic.segmentSize(mss)
        if state.value.recoveryWindow != nil {
            ownState().value.recoveryWindow = nil
        }
        let resumed = Swift.min(
            slowStartThreshold, Swift.max(Swift.min(flightSize, Cubic.largestWindow), segment) + segment)
        window = Cubic.clamp(Double(resumed), segment)
    }

    public mutating func retransmissionTimeout(flightSize: Int, maximumSegmentSize mss: Int, now: Int64) {
        let segment = Cubic.segmentSize(mss)
        let state = ownState()
        state.value.hyStart?.finish()
        state.value.recoveryWindow = nil
        state.value.priorWindow = Swift.max(window, Double(Swift.max(0, flightSize)))
        slowStartThreshold = Swift.max(Cubic.bytes(Double(Swift.max(0, flightSize)) * Cubic.beta), 2 * segment)
        // Reno's loss window; the next congestion avoidance starts a curve with K = 0.
        window = Double(segment)
        state.value.maximumWindow = 0
        state.value.epochStart = nil
    }

    /// Section 4.6 with fast convergence (4.7): W_max is the window now, or less when the window did
    /// not get back to the previous W_max (another flow took a share); ssthresh keeps β of the flight.
    private mutating func reduce(flightSize: Int, maximumSegmentSize mss: Int) {
        let segment = Cubic.segmentSize(mss)
        let state = ownState()
        state.value.hyStart?.finish()
        state.value.priorWindow = window
        state.value.maximumWindow =
            window < state.value.maximumWindow ? window * (1 + Cubic.beta) / 2 : window
        slowStartThreshold = Swift.max(Cubic.bytes(Double(Swift.max(0, flightSize)) * Cubic.beta), 2 * segment)
        window = Double(slowStartThreshold)
        state.value.epochStart = nil
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

extension Cubic {
    public static func == (lhs: Cubic, rhs: Cubic) -> Bool {
        lhs.window == rhs.window && lhs.slowStartThreshold == rhs.slowStartThreshold
            && (lhs.state === rhs.state || lhs.state.value == rhs.state.value)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(window)
        hasher.combine(slowStartThreshold)
        hasher.combine(state.value)
    }
}

/// CUBIC's state beyond the window and threshold.
struct CubicState: Hashable, Sendable {
    var maximumWindow: Double = 0
    var priorWindow: Double = 0
    var epochStart: Int64?
    var epochWindow: Double = 0
    var k: Double = 0
    var renoEstimate: Double = 0
    var smoothedRTT: Int64 = 0
    var hyStart: HyStartPlusPlus?
    /// The inflated window of fast recovery (RFC 6582), nil outside recovery.
    var recoveryWindow: Int?
    var lastAcknowledgmentTime: Int64?
    var usesHyStart: Bool
}

/// The box of a `CubicState`, copied on write: a value is changed in place only through a
/// reference no other `Cubic` holds (the pristine boxes are never changed), so the box is as
/// safe to share between threads as the value it holds.
final class CubicStateStorage: @unchecked Sendable {
    var value: CubicState
    /// One of the two pristine boxes every new connection shares.
    let isShared: Bool

    init(_ value: CubicState, isShared: Bool = false) {
        self.value = value
        self.isShared = isShared
    }

    static let pristineWithHyStart = CubicStateStorage(
        CubicState(hyStart: HyStartPlusPlus(), usesHyStart: true), isShared: true)
    static let pristineWithoutHyStart = CubicStateStorage(CubicState(usesHyStart: false), isShared: true)
}
