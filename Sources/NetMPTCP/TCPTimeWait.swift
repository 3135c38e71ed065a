import NetMPWire

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

    /// What one TIME_WAIT connection keeps in its thread's table: the record and its 4-tuple key
    /// (the stack's tuple set holds the key once more). No control block, socket or buffer.
    public static var recordBytes: Int { MemoryLayout<TCPTimeWait>.stride + MemoryLayout<TCPConnectionKey>.stride }

    public init(
        receiveNext: SequenceNumber, sendNext: SequenceNumber, recentTimestamp: UInt32?, deadline: Int64
    ) {
        self.receiveNext = receiveNext
        self.sendNext = sendNext
        self.recentTimestamp = recentTimestamp
        self.deadline = deadline
    }

    /// Whether a new SYN (no ACK) may end this TIME_WAIT early and open a new connection, as BSD and
    /// Linux allow: when both used timestamps, an older timestamp is refused (PAWS) and a newer one
    /// admitted; otherwise (no timestamps, or the same millisecond) its sequence number must lie
    /// beyond the old connection's.
    public func admits(_ syn: TCPHeader) -> Bool {
        guard syn.flags.contains(.syn), !syn.flags.contains(.ack), !syn.flags.contains(.rst) else { return false }
        if let recentTimestamp, let timestamps = syn.options.timestamps {
            let age = Int32(bitPattern: timestamps.value &- recentTimestamp)
            if age < 0 { return false }
            if age > 0 { return true }
        }
        return receiveNext < SequenceNumber(syn.sequenceNumber)
    }

    /// The ISN for the connection that replaces this one: `proposed` when it lies beyond everything
    /// the old connection sent, otherwise well past it (as BSD does), so old duplicates of the previous
    /// incarnation cannot fall into the new one's window.
    public func initialSequenceNumber(replacing proposed: SequenceNumber) -> SequenceNumber {
        sendNext < proposed ? proposed : sendNext + 128_000
    }
}
