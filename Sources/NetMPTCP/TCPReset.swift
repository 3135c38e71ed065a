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
