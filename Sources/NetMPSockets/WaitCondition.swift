import NetMPRuntime

/// What a blocked call waits for. Evaluated under the lock of the buffer it is registered on.
package enum WaitCondition: Sendable {
    /// At least `minimum` bytes (or one datagram) to read, or end-of-file, an error, a close.
    case readable(minimum: Int)
    /// A condition only the protocol can state (the local domain's room in the peer's buffer).
    case protocolDefined(any WaitPredicate)
    /// `bytes` of room in the socket's own send buffer.
    case sendRoom(bytes: Int)
    /// A connection on the listen queue, or the listen socket gone.
    case acceptable
    /// The connect finished, one way or the other.
    case connected
}

/// How a wait ended.
package enum WaitOutcome: Sendable {
    case satisfied, timedOut, cancelled

    /// Returns for a satisfied wait; throws what the caller sees otherwise (a timeout is
    /// `.wouldBlock`, as SO_RCVTIMEO gives EAGAIN).
    func check() throws(NetError) {
        switch self {
        case .satisfied: return
        case .timedOut: throw .wouldBlock
        case .cancelled: throw .cancelled
        }
    }
}

/// A wait condition a protocol defines, evaluated like the others under the lock of the buffer
/// the waiter is registered on. Keep conforming types small (two words or fewer): the condition
/// is then stored inline and a wait allocates nothing for it.
package protocol WaitPredicate: Sendable {
    /// Whether the waiting call on `socket` may go on; `state` is the socket's state bits now.
    func isSatisfied(for socket: Socket, state: SocketState) -> Bool
}
