import NetMPWire

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
