/// Why a connection ended badly, as the socket layer reports it.
public enum TCPError: Error, Hashable, Sendable {
    /// A RST answered our SYN.
    case connectionRefused
    /// A RST arrived on a synchronized connection.
    case connectionReset
    /// Retransmissions (or SYN retransmissions) ran out, the user timeout passed, or keep-alive
    /// probes went unanswered.
    case timedOut
    /// ICMP said the host (or, below, the network) cannot be reached: ends a connect, or is
    /// what a timeout reports instead of `timedOut` once synchronized.
    case hostUnreachable
    case networkUnreachable
}
