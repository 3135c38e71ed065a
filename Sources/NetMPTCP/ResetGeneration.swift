import NetMPWire

/// RSTs that need no connection: the answer to a segment for which no connection (or only a closed
/// one) exists, RFC 9293 3.10.7.1.
public enum TCPReset {
    /// The reply to `segment` (with `payloadLength` data bytes) arriving at a port with no connection:
    /// nothing for a RST; `<SEQ=SEG.ACK><CTL=RST>` when it carries an ACK; otherwise
    /// `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`. Ports are swapped so the header answers it.
    public static func forClosedPort(_ segment: TCPHeader, payloadLength: Int) -> TCPHeader? {
        guard !segment.flags.contains(.rst) else { return nil }
        if segment.flags.contains(.ack) {
            return TCPHeader(
                sourcePort: segment.destinationPort, destinationPort: segment.sourcePort,
                sequenceNumber: segment.acknowledgmentNumber, flags: .rst, window: 0)
        }
        let length = payloadLength + (segment.flags.contains(.syn) ? 1 : 0) + (segment.flags.contains(.fin) ? 1 : 0)
        return TCPHeader(
            sourcePort: segment.destinationPort, destinationPort: segment.sourcePort, sequenceNumber: 0,
            acknowledgmentNumber: (SequenceNumber(segment.sequenceNumber) + length).rawValue, flags: [.rst, .ack],
            window: 0)
    }
}

/// What a listen socket does with a segment (RFC 9293 3.10.7.2); a `.accept` makes a child with
/// `TCPConnection(acceptingSYN:...)` on the thread the tuple hashes to.
public enum TCPListenDecision: Hashable, Sendable {
    case ignore
    case reset(TCPHeader)
    case accept
}

public enum TCPListener {
    public static func decide(_ segment: TCPHeader, payloadLength: Int) -> TCPListenDecision {
        if segment.flags.contains(.rst) {
            return .ignore
        }
        if segment.flags.contains(.ack) {
            return TCPReset.forClosedPort(segment, payloadLength: payloadLength).map { .reset($0) } ?? .ignore
        }
        if segment.flags.contains(.syn) {
            return .accept
        }
        return .ignore
    }
}

/// What is left of a connection in TIME_WAIT: enough to answer a retransmitted FIN and to decide
/// whether a new SYN may reuse the tuple.
public struct TCPTimeWait: Hashable, Sendable {
    /// The next sequence number expected from the peer (after its FIN).
    public var receiveNext: SequenceNumber
    /// Our next sequence number (after our FIN).
    public var sendNext: SequenceNumber
    /// The last timestamp value the peer sent, when timestamps were in use.
    public var recentTimestamp: UInt32?
    /// When TIME_WAIT ends.
    public var deadline: Int64

    public init(
        receiveNext: SequenceNumber, sendNext: SequenceNumber, recentTimestamp: UInt32?, deadline: Int64
    ) {
        self.receiveNext = receiveNext
        self.sendNext = sendNext
        self.recentTimestamp = recentTimestamp
        self.deadline = deadline
    }

    /// Whether a new SYN (no ACK) may end this TIME_WAIT early and open a new connection, as BSD and
    /// Linux allow: its timestamp is newer than the last one seen when both used timestamps,
    /// otherwise its sequence number lies beyond the old connection's.
    public func admits(_ syn: TCPHeader) -> Bool {
        guard syn.flags.contains(.syn), !syn.flags.contains(.ack), !syn.flags.contains(.rst) else { return false }
        if let recentTimestamp, let timestamps = syn.options.timestamps {
            return Int32(bitPattern: timestamps.value &- recentTimestamp) > 0
        }
        return receiveNext < SequenceNumber(syn.sequenceNumber)
    }
}
