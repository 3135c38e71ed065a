/// ICMP errors about a segment this connection sent (RFC 1122 4.2.3.9, RFC 5927), treated as
/// Linux treats them: while connecting, an unreachable destination ends the attempt; once
/// synchronized it is a soft error, remembered and reported only if the connection then times
/// out (a route may come back before that).
extension TCPConnection {
    /// `sequence` is the quoted segment's sequence number: a message about bytes not in flight
    /// (acknowledged already, or never sent) is stale or forged and ignored.
    public mutating func icmpError(
        _ error: TCPError, sequence: SequenceNumber, now: Int64, into actions: inout TCPActions<Payload>
    ) {
        guard state != .closed, state != .listen, state != .timeWait else { return }
        guard sequence == sendUnacknowledged || sequence.isIn(sendUnacknowledged, sendMax) else { return }
        switch state {
        case .synSent:
            becomeClosed(&actions, error: error)
        case .synReceived where passiveOpen:
            // A handshaking child just goes; its listener never saw it.
            becomeClosed(&actions)
        case .synReceived:
            becomeClosed(&actions, error: error)
        default:
            softError = error
        }
    }
}
