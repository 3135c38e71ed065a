/// The connection states of RFC 9293 3.3.2. LISTEN belongs to listen sockets (see `TCPListener`);
/// a connection value starts CLOSED (active open) or SYN_RECEIVED (a listen socket's child).
public enum TCPState: Hashable, Sendable, CustomStringConvertible {
    case closed
    case listen
    case synSent
    case synReceived
    case established
    case finWait1
    case finWait2
    case closeWait
    case closing
    case lastAck
    case timeWait

    /// Past the handshake: both sequence spaces are known.
    public var isSynchronized: Bool {
        switch self {
        case .closed, .listen, .synSent: return false
        default: return true
        }
    }

    /// The peer may still send data (no FIN received yet).
    var acceptsData: Bool {
        switch self {
        case .synReceived, .established, .finWait1, .finWait2: return true
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .closed: return "CLOSED"
        case .listen: return "LISTEN"
        case .synSent: return "SYN_SENT"
        case .synReceived: return "SYN_RECEIVED"
        case .established: return "ESTABLISHED"
        case .finWait1: return "FIN_WAIT_1"
        case .finWait2: return "FIN_WAIT_2"
        case .closeWait: return "CLOSE_WAIT"
        case .closing: return "CLOSING"
        case .lastAck: return "LAST_ACK"
        case .timeWait: return "TIME_WAIT"
        }
    }
}
