/// HyStart++ (RFC 9406): ends the initial slow start when the minimum RTT of a round rises by a
/// threshold over the previous round's, before a loss has to end it, then grows at a quarter of
/// slow start's rate (Conservative Slow Start, CSS) for `cssRounds` rounds before congestion
/// avoidance. An RTT that falls back below the baseline during CSS resumes slow start.
///
/// A round starts with the first ACK at or past the previous round's end and ends when SND.MAX as
/// it was then is acknowledged. Only ACKs that carry an RTT sample count toward `sampleCount`, so
/// without timestamps (one sample per round trip) the delay test never runs, as the RFC intends.
/// Used only for the initial slow start (section 4.3); a loss or timeout finishes it.
public struct HyStartPlusPlus: Hashable, Sendable {
    public enum Phase: Hashable, Sendable {
        case slowStart
        case conservativeSlowStart
        /// Slow start ended (by HyStart++ itself, a loss or a timeout): plain slow start from now on.
        case finished
    }

    // RFC 9406 section 4.3 constants.
    public static let minimumRTTThreshold: Int64 = 4_000_000
    public static let maximumRTTThreshold: Int64 = 16_000_000
    public static let minimumRTTDivisor: Int64 = 8
    public static let samplesPerRound = 8
    public static let cssGrowthDivisor = 4
    public static let cssRounds = 5

    public private(set) var phase = Phase.slowStart
    /// SND.MAX when the current round began; nil before the first ACK.
    public private(set) var windowEnd: SequenceNumber?
    public private(set) var lastRoundMinimumRTT = Int64.max
    public private(set) var currentRoundMinimumRTT = Int64.max
    public private(set) var sampleCount = 0
    public private(set) var cssBaselineMinimumRTT = Int64.max
    /// Whole rounds completed in CSS (the round in which CSS began does not count).
    public private(set) var completedCSSRounds = 0
    private var roundIsConservative = false
    /// Slow start's per-ACK limit L in segments (RFC 9406: 8 for an unpaced sender).
    let segmentLimit: Int

    public init(segmentLimit: Int = 8) {
        self.segmentLimit = Swift.max(1, segmentLimit)
    }

    /// What one ACK in slow start does to the window.
    public struct Step: Hashable, Sendable {
        /// Bytes to add to cwnd.
        public var increase: Int
        /// CSS is over: set ssthresh to cwnd and continue in congestion avoidance.
        public var enterCongestionAvoidance: Bool

        public init(increase: Int, enterCongestionAvoidance: Bool) {
            self.increase = increase
            self.enterCongestionAvoidance = enterCongestionAvoidance
        }
    }

    /// An ACK in slow start (cwnd below ssthresh) while `phase` is not `.finished`.
    public mutating func acknowledged(_ sample: TCPAcknowledgmentSample) -> Step {
        let mss = Swift.max(1, sample.maximumSegmentSize)
        if windowEnd.map({ !(sample.acknowledgment < $0) }) ?? true {
            // A round ended (or this is the first ACK): the next one runs to what is sent now.
            if roundIsConservative, phase == .conservativeSlowStart {
                completedCSSRounds += 1
                if completedCSSRounds >= HyStartPlusPlus.cssRounds {
                    phase = .finished
                    return Step(increase: 0, enterCongestionAvoidance: true)
                }
            }
            lastRoundMinimumRTT = currentRoundMinimumRTT
            currentRoundMinimumRTT = .max
            sampleCount = 0
            windowEnd = sample.sendMax
            roundIsConservative = phase == .conservativeSlowStart
        }
        if let rtt = sample.rtt {
            currentRoundMinimumRTT = Swift.min(currentRoundMinimumRTT, Swift.max(0, rtt))
            sampleCount += 1
        }
        let limit = segmentLimit.multipliedReportingOverflow(by: mss)
        let full = Swift.min(Swift.max(0, sample.bytes), limit.overflow ? Int.max : limit.partialValue)
        let increase = phase == .conservativeSlowStart ? full / HyStartPlusPlus.cssGrowthDivisor : full
        if sampleCount >= HyStartPlusPlus.samplesPerRound, currentRoundMinimumRTT != .max {
            switch phase {
            case .slowStart where lastRoundMinimumRTT != .max:
                let threshold = Swift.max(
                    HyStartPlusPlus.minimumRTTThreshold,
                    Swift.min(
                        lastRoundMinimumRTT / HyStartPlusPlus.minimumRTTDivisor, HyStartPlusPlus.maximumRTTThreshold))
                if currentRoundMinimumRTT >= lastRoundMinimumRTT &+ threshold {
                    cssBaselineMinimumRTT = currentRoundMinimumRTT
                    phase = .conservativeSlowStart
                    completedCSSRounds = 0
                }
            case .conservativeSlowStart where currentRoundMinimumRTT < cssBaselineMinimumRTT:
                // The delay increase was spurious: back to slow start.
                cssBaselineMinimumRTT = .max
                phase = .slowStart
            default:
                break
            }
        }
        return Step(increase: increase, enterCongestionAvoidance: false)
    }

    /// A loss or timeout: the initial slow start is over.
    public mutating func finish() {
        phase = .finished
    }
}
