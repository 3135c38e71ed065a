/// The window half of congestion control. The connection detects losses (duplicate ACKs, partial
/// ACKs, timeouts) and tells the algorithm; the algorithm owns cwnd and ssthresh.
public protocol TCPCongestionControl: Sendable {
    /// Bytes the sender may have in flight.
    var congestionWindow: Int { get }
    var slowStartThreshold: Int { get }
    /// The handshake settled the MSS: set the initial window from it.
    mutating func start(maximumSegmentSize: Int)
    /// New data acknowledged outside recovery.
    mutating func acknowledged(bytes: Int, maximumSegmentSize: Int, now: Int64)
    /// New data acknowledged outside recovery, with what the connection knows about the ACK: the
    /// RTT it measured, the round it closes, and whether the window was in use (RFC 7661). The
    /// connection calls this one; the default forwards to `acknowledged(bytes:maximumSegmentSize:now:)`
    /// when the window was in use, so an algorithm written against the older call never grows a
    /// window the sender did not fill.
    mutating func acknowledged(_ sample: TCPAcknowledgmentSample)
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
    /// The peer echoed a congestion mark (ECE, RFC 3168 6.1.2): reduce as for a loss, once per
    /// window, with nothing to retransmit.
    mutating func congestionExperienced(flightSize: Int, maximumSegmentSize: Int, now: Int64)
    /// Takes over a live connection from another algorithm (TCP_CONGESTION changed): continue from
    /// its window and threshold, in congestion avoidance at or above the threshold.
    mutating func resume(congestionWindow: Int, slowStartThreshold: Int, maximumSegmentSize: Int)
    /// A rate-based controller (BBR): it takes a `TCPRateSample` on every ACK that delivered
    /// something, in recovery too, and its window governs sending in fast recovery (no PRR).
    var isRateBased: Bool { get }
    /// Bytes per second to pace transmissions at, if the controller paces.
    var pacingRate: Int? { get }
    /// One ACK's delivery-rate sample (only a rate-based controller is given them).
    mutating func rateSampled(_ sample: TCPRateSample)
}

extension TCPCongestionControl {
    /// Loss-based by default: windows from ACKs and losses, PRR in recovery, no pacing.
    public var isRateBased: Bool { false }
    public var pacingRate: Int? { nil }
    public mutating func rateSampled(_ sample: TCPRateSample) {}

    /// Without a way to take the window over, an algorithm starts afresh from its initial window.
    public mutating func resume(congestionWindow: Int, slowStartThreshold: Int, maximumSegmentSize: Int) {}

    /// A loss's reduction without its recovery: entering and leaving fast recovery at once leaves
    /// cwnd at the new ssthresh (or the flight plus one segment, if less).
    public mutating func congestionExperienced(flightSize: Int, maximumSegmentSize: Int, now: Int64) {
        enterRecovery(flightSize: flightSize, maximumSegmentSize: maximumSegmentSize, now: now)
        exitRecovery(flightSize: flightSize, maximumSegmentSize: maximumSegmentSize)
    }

    public mutating func acknowledged(_ sample: TCPAcknowledgmentSample) {
        guard sample.windowValidated else { return }
        acknowledged(bytes: sample.bytes, maximumSegmentSize: sample.maximumSegmentSize, now: sample.now)
    }
}

/// One ACK that moved SND.UNA outside recovery, as the congestion controller sees it.
public struct TCPAcknowledgmentSample: Hashable, Sendable {
    /// Bytes newly acknowledged (SYN and FIN included).
    public var bytes: Int
    public var maximumSegmentSize: Int
    /// The time the ACK arrived, in nanoseconds of the connection's clock.
    public var now: Int64
    /// The new SND.UNA.
    public var acknowledgment: SequenceNumber
    /// One past the highest sequence number sent when the ACK arrived: where a round that starts
    /// now ends (RFC 9406's windowEnd).
    public var sendMax: SequenceNumber
    /// The round-trip time this ACK measured (a timestamp echo or the timed segment), if any.
    public var rtt: Int64?
    /// The smoothed RTT after this ACK's sample, if the connection has one.
    public var smoothedRTT: Int64?
    /// RFC 7661: the sender used at least half the congestion window over the last round trip, or
    /// was stopped by it. When false the window is not validated and must not grow.
    public var windowValidated: Bool

    public init(
        bytes: Int, maximumSegmentSize: Int, now: Int64, acknowledgment: SequenceNumber, sendMax: SequenceNumber,
        rtt: Int64? = nil, smoothedRTT: Int64? = nil, windowValidated: Bool = true
    ) {
        self.bytes = bytes
        self.maximumSegmentSize = maximumSegmentSize
        self.now = now
        self.acknowledgment = acknowledgment
        self.sendMax = sendMax
        self.rtt = rtt
        self.smoothedRTT = smoothedRTT
        self.windowValidated = windowValidated
    }
}
