/// The window half of congestion control. The connection detects losses (duplicate ACKs, partial
/// ACKs, timeouts) and tells the algorithm; the algorithm owns cwnd and ssthresh. Part 2 adds CUBIC.
public protocol TCPCongestionControl: Sendable {
    /// Bytes the sender may have in flight.
    var congestionWindow: Int { get }
    var slowStartThreshold: Int { get }
    /// The handshake settled the MSS: set the initial window from it.
    mutating func start(maximumSegmentSize: Int)
    /// New data acknowledged outside recovery.
    mutating func acknowledged(bytes: Int, maximumSegmentSize: Int, now: Int64)
    /// Three duplicate ACKs: a loss; the first lost segment is being retransmitted.
    mutating func enterRecovery(flightSize: Int, maximumSegmentSize: Int, now: Int64)
    /// A further duplicate ACK during recovery: one more segment has left the network.
    mutating func duplicateACKInRecovery(maximumSegmentSize: Int)
    /// An ACK inside recovery that does not reach the recovery point (RFC 6582 partial ACK).
    mutating func partialACK(bytes: Int, maximumSegmentSize: Int)
    /// The recovery point was acknowledged.
    mutating func exitRecovery(flightSize: Int, maximumSegmentSize: Int)
    /// The retransmission timer fired.
    mutating func retransmissionTimeout(flightSize: Int, maximumSegmentSize: Int, now: Int64)
}

/// RFC 5681 slow start and congestion avoidance with NewReno fast recovery (RFC 6582) and the
/// initial window of RFC 6928.
public struct NewReno: TCPCongestionControl, Hashable {
    public private(set) var congestionWindow: Int
    public private(set) var slowStartThreshold = Int.max
    /// Bytes acknowledged toward the next one-MSS increase in congestion avoidance.
    private var avoidanceCredit = 0

    /// IW = min(10 MSS, max(2 MSS, 14600)) (RFC 6928).
    public init(maximumSegmentSize: Int) {
        congestionWindow = NewReno.initialWindow(maximumSegmentSize: maximumSegmentSize)
    }

    public static func initialWindow(maximumSegmentSize mss: Int) -> Int {
        Swift.min(10 * mss, Swift.max(2 * mss, 14_600))
    }

    public mutating func start(maximumSegmentSize mss: Int) {
        congestionWindow = NewReno.initialWindow(maximumSegmentSize: mss)
        slowStartThreshold = Int.max
        avoidanceCredit = 0
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
    }
}
