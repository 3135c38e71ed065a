import NetMPRuntime
import NetMPWire

/// A segment the connection wants sent: the full header (options included) and, for data, the bytes
/// `sendQueueOffset ..< sendQueueOffset + payloadLength` of the send queue, counted from the first
/// unacknowledged byte after this event's `acknowledgedBytes` were dropped. The integration slices
/// its queued chunks for them (no copy); a retransmission names the same queued bytes again.
public struct TCPOutboundSegment: Hashable, Sendable {
    public var header: TCPHeader
    public var sendQueueOffset: Int
    public var payloadLength: Int
    /// Send with ECT(0) in the IP header: new data on an ECN connection (RFC 3168 6.1.5).
    public var ecnCapable: Bool
    /// Nonzero for a segment longer than one MSS (segmentation offload): the MSS it is cut into
    /// on the wire.
    /// (16 bits, beside `ecnCapable`: it takes no room of its own.)
    public var segmentSize: UInt16

    public init(
        header: TCPHeader, sendQueueOffset: Int = 0, payloadLength: Int = 0, ecnCapable: Bool = false,
        segmentSize: UInt16 = 0
    ) {
        self.header = header
        self.sendQueueOffset = sendQueueOffset
        self.payloadLength = payloadLength
        self.ecnCapable = ecnCapable
        self.segmentSize = segmentSize
    }
}

/// What one event asks of the integration, in the order to apply it: drop `acknowledgedBytes` from
/// the send buffer, deliver `delivered` to the receive buffer, then send `segments`, then report the
/// flags. The caller owns one collector per thread and `clear()`s it between events, so the arrays
/// keep their storage and steady-state events allocate nothing.
public struct TCPActions<Payload: TCPPayload> {
    public var segments: [TCPOutboundSegment] = []
    /// In-order received bytes for the receive buffer, oldest first.
    public var delivered: [Payload] = []
    /// Send-queue bytes the peer acknowledged: drop them from the front of the send buffer.
    public var acknowledgedBytes = 0
    /// The handshake completed (connect returns; a child goes onto the complete queue).
    public var established = false
    /// The peer's FIN arrived in order: end of file after `delivered`.
    public var endOfStream = false
    /// The connection failed; `closed` is also set.
    public var error: TCPError?
    /// The connection entered TIME_WAIT (it may be replaced by a compact `TCPTimeWait` record).
    public var enteredTimeWait = false
    /// The connection reached CLOSED: free the control block.
    public var closed = false
    /// An RFC 5961 challenge ACK the connection wants sent, last, if the stack's rate limit allows.
    public var challengeACK: TCPOutboundSegment? {
        didSet { hasChallengeACK = challengeACK != nil }
    }
    /// Whether `challengeACK` holds a segment. Every event asks (and every `clear` resets it);
    /// asking the optional itself called a value witness on a copy of the whole segment.
    public private(set) var hasChallengeACK = false
    /// Why the segment of this event was dropped, if it was.
    public var dropped: TCPDropReason?

    public init() {}

    /// Forgets the last event's actions, keeping array storage (inlined: it ends every event).
    @inline(__always)
    public mutating func clear() {
        // Most events send or deliver one segment or none: a pop or two, not a range removal.
        segments.clearKeepingCapacity()
        delivered.clearKeepingCapacity()
        acknowledgedBytes = 0
        established = false
        endOfStream = false
        error = nil
        enteredTimeWait = false
        closed = false
        if hasChallengeACK { challengeACK = nil }
        dropped = nil
    }

    /// Bytes in `delivered`.
    public var deliveredByteCount: Int { delivered.reduce(0) { $0 + $1.count } }
}

extension TCPActions: Sendable where Payload: Sendable {}
