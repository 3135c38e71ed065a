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
