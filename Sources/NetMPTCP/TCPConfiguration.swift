/// Per-connection settings, all times in nanoseconds of the caller's clock.
public struct TCPConfiguration: Sendable, Equatable {
    /// Receive buffer capacity in bytes: the most the window can offer.
    public var receiveBufferSize = 256 * 1024
    /// Grow the receive buffer with the bandwidth-delay product the transfer shows, and the send
    /// buffer with the congestion window (`TCPBufferAutoTuning`), up to the limits below, unless
    /// the user set the buffer's size. Stacks turn it on; a bare connection value starts off.
    public var bufferAutoTuning = false
    /// The receive buffer auto-tuning may grow to (Linux tcp_rmem[2]: 6 MiB); with auto-tuning the
    /// window scale is chosen for it.
    public var maximumReceiveBufferSize = 6 << 20
    /// The send buffer auto-sizing may grow to (Linux tcp_wmem[2]: 4 MiB).
    public var maximumSendBufferSize = 4 << 20
    /// Disable Nagle (TCP_NODELAY).
    public var noDelay = false
    /// The longest IPv4 datagram one segment of new data may be when the route's interface has
    /// TCP segmentation offload (the stack sets it from the interface): segments then carry as
    /// many whole MSS as fit, cut to MSS-sized ones by the interface or its peer. 0: one MSS each.
    public var largeSegmentLimit = 0
    /// Offer window scaling (RFC 7323).
    public var windowScaling = true
    /// Offer timestamps (RFC 7323).
    public var timestamps = true
    /// Offer SACK-permitted (RFC 2018); with it, the loss detector below repairs losses.
    public var sackPermitted = true
    /// How losses are found when SACK was negotiated (without it NewReno's duplicate ACKs are used).
    public var lossDetection = TCPLossDetection.rack
    /// The longest the peer may delay an ACK, added to a tail loss probe's timeout when one segment
    /// is in flight (RFC 8985 7.2).
    public var maximumPeerACKDelay: Int64 = 200_000_000
    /// The congestion control of new connections (TCP_CONGESTION): CUBIC unless a socket asks.
    public var congestionControl = TCPCongestionAlgorithm.cubic
    /// HyStart++ (RFC 9406) ends the initial slow start on a rising RTT, for either algorithm.
    public var hyStart = true
    /// Ask for ECN (RFC 3168) on an active open, and agree to it when a peer asks.
    public var explicitCongestionNotification = false
    /// Lower bound of the retransmission timeout (Linux: 200 ms; RFC 6298 says 1 s).
    public var minimumRTO: Int64 = 200_000_000
    /// Upper bound of the retransmission timeout (RFC 6298: at least 60 s; Linux 120 s).
    public var maximumRTO: Int64 = 120_000_000_000
    /// RTO before any measurement (RFC 6298 2.1).
    public var initialRTO: Int64 = 1_000_000_000
    /// Retransmissions of one segment before the connection times out (Linux tcp_retries2 is 15).
    public var maximumRetransmissions = 12
    /// Retransmissions of a SYN or SYN-ACK before giving up (Linux tcp_syn_retries is 6).
    public var maximumSYNRetransmissions = 6
    /// Maximum segment lifetime; TIME_WAIT lasts twice this.
    public var maximumSegmentLifetime: Int64 = 30_000_000_000
    /// How long an orphaned FIN_WAIT_2 waits for the peer's FIN (Linux tcp_fin_timeout: 60 s).
    public var finWait2Timeout: Int64 = 60_000_000_000
    /// Longest an ACK is delayed (Linux: 40 ms minimum delayed ACK).
    public var delayedACKTimeout: Int64 = 40_000_000
    /// Segments ACKed at once at the start of a connection before delayed ACKs begin.
    public var quickACKSegments = 8
    /// Bounds of the zero-window probe interval as it backs off.
    public var minimumPersistInterval: Int64 = 200_000_000
    public var maximumPersistInterval: Int64 = 60_000_000_000
    /// Out-of-order data kept per connection, in segments: enough for the window of a long fat
    /// path (1 Gbit/s at 10 ms is 860 full segments; FreeBSD's 100 would hold a tenth of it and
    /// have the rest sent again after every loss). Entries are found by binary search.
    public var maximumOutOfOrderSegments = 1024
    /// Out-of-order data kept per connection, in bytes (the window bounds it too).
    public var maximumOutOfOrderBytes = 4 << 20
    /// Out-of-order data all of a stack's connections keep together, shared evenly among its
    /// protocol threads: a connection whose data takes its thread over the share has its queue
    /// pruned, never another's. Read from the stack's configuration.
    public var maximumOutOfOrderBytesPerStack = 64 << 20
    /// SO_KEEPALIVE: probe an idle connection and drop it when the peer stops answering.
    public var keepAlive = false
    /// TCP_KEEPIDLE: idle time (since the last segment received) before the first probe (Linux: 7200 s).
    public var keepAliveIdle: Int64 = 7200 * 1_000_000_000
    /// TCP_KEEPINTVL: time between unanswered probes (Linux: 75 s).
    public var keepAliveInterval: Int64 = 75 * 1_000_000_000
    /// TCP_KEEPCNT: unanswered probes before the connection is dropped (Linux: 9).
    public var keepAliveCount = 9
    /// TCP_USER_TIMEOUT (RFC 5482): the longest sent data may stay unacknowledged before the
    /// connection is dropped with `timedOut`; 0 leaves it to the retransmission count.
    public var userTimeout: Int64 = 0
    /// Challenge ACKs per second for the whole stack (RFC 5961 10; Linux tcp_challenge_ack_limit):
    /// each second allows half this plus a random amount below it.
    public var challengeACKLimit = 1000
    /// Least time between the ACKs a connection sends in answer to unacceptable segments without
    /// data (out of window, PAWS), so forged ones cannot make it reflect a flood or two ends loop
    /// (Linux tcp_invalid_ratelimit: 500 ms).
    public var outOfWindowACKInterval: Int64 = 500_000_000
    /// Answer SYNs with cookies when a listen socket's incomplete queue is full (Linux
    /// tcp_syncookies = 1), instead of dropping the oldest handshake.
    public var synCookies = true

    public init() {}
}

/// The loss detector a SACK connection uses.
public enum TCPLossDetection: Sendable, Hashable {
    /// RACK-TLP (RFC 8985): time-based detection and tail loss probes, as Linux and FreeBSD default to.
    case rack
    /// RFC 6675's IsLost: DupThresh SACKed segments above a hole.
    case rfc6675
}
