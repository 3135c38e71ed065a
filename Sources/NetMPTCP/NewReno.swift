/// RFC 5681 slow start and congestion avoidance with NewReno fast recovery (RFC 6582) and the
/// initial window of RFC 6928; HyStart++ (RFC 9406) may end the initial slow start.
public struct NewReno: TCPCongestionControl, Hashable {
    public private(set) var congestionWindow: Int
    public private(set) var slowStartThreshold = Int.max
    /// Bytes acknowledged toward the next one-MSS increase in congestion avoidance.
    private var avoidanceCredit = 0
    /// HyStart++ for the initial slow start, when enabled; L = 2 segments (RFC 3465's limit).
    public private(set) var hyStart: HyStartPlusPlus?

    /// IW = min(10 MSS, max(2 MSS, 14600)) (RFC 6928).
    public init(maximumSegmentSize: Int, hyStart: Bool = false) {
        congestionWindow = NewReno.initialWindow(maximumSegmentSize: maximumSegmentSize)
        self.hyStart = hyStart ? HyStartPlusPlus(segmentLimit: 2) : nil
    }

    public static func initialWindow(maximumSegmentSize mss: Int) -> Int {
        Swift.min(10 * mss, Swift.max(2 * mss, 14_600))
    }

    public mutating func start(maximumSegmentSize mss: Int) {
        congestionWindow = NewReno.initialWindow(maximumSegmentSize: mss)
        slowStartThreshold = Int.max
        avoidanceCredit = 0
        if hyStart != nil {
            hyStart = HyStartPlusPlus(segmentLimit: 2)
        }
    }

    public mutating func resume(congestionWindow: Int, slowStartThreshold: Int, maximumSegmentSize mss: Int) {
        self.congestionWindow = Swift.max(congestionWindow, mss)
        self.slowStartThreshold = Swift.max(slowStartThreshold, 2 * mss)
        avoidanceCredit = 0
        hyStart?.finish()
    }

    public mutating func acknowledged(_ sample: TCPAcknowledgmentSample) {
        guard sample.windowValidated else { return }
        if congestionWindow < slowStartThreshold, var hyStart, hyStart.phase != .finished {
            let step = hyStart.acknowledged(sample)
            self.hyStart = hyStart
            if step.enterCongestionAvoidance {
                slowStartThreshold = congestionWindow
            } else {
                congestionWindow += step.increase
            }
            return
        }
        acknowledged(bytes: sample.bytes, maximumSegmentSize: sample.maximumSegmentSize, now: sample.now)
    }

    public mutating func acknowledged(bytes: Int, maximumSegmentSize mss: Int, now: Int64) {
        if congestionWindow < slowStartThreshold {
            // Appropriate byte counting with L = 2 MSS (RFC 3465), as RFC 5681 allows.
            congestionWindow += Swift.min(bytes, 2 * mss)
        } else {
            avoidanceCredit += bytes
            if avoidanceCredit >= congestionWindow {
                avoidanceCredit -= congestionWindow
                congestionWindow += mss
            }
        }
    }

    public mutating func enterRecovery(flightSize: Int, maximumSegmentSize mss: Int, now: Int64) {
        slowStartThreshold = Swift.max(flightSize / 2, 2 * mss)
        congestionWindow = slowStartThreshold + 3 * mss
        avoidanceCredit = 0
        hyStart?.finish()
    }

    public mutating func duplicateACKInRecovery(maximumSegmentSize mss: Int) {
        congestionWindow += mss
    }

    public mutating func partialACK(bytes: Int, maximumSegmentSize mss: Int) {
        // Deflate by the amount acknowledged, then add back one MSS if that was at least one MSS.
        congestionWindow = Swift.max(congestionWindow - bytes, mss)
        if bytes >= mss {
            congestionWindow += mss
        }
    }

    public mutating func exitRecovery(flightSize: Int, maximumSegmentSize mss: Int) {
        congestionWindow = Swift.min(slowStartThreshold, Swift.max(flightSize, mss) + mss)
    }

    public mutating func retransmissionTimeout(flightSize: Int, maximumSegmentSize mss: Int, now: Int64) {
        slowStartThreshold = Swift.max(flightSize / 2, 2 * mss)
        congestionWindow = mss
        avoidanceCredit = 0
        hyStart?.finish()
    }
}
