import NetMPRuntime

/// What a blocked call waits for. Evaluated under the lock of the buffer it is registered on.
package enum WaitCondition: Sendable {
    /// At least `minimum` bytes (or one datagram) to read, or end-of-file, an error, a close.
    case readable(minimum: Int)
    /// A condition only the protocol can state (the local domain's room in the peer's buffer).
    case protocolDefined(ProtocolCondition)
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
/// the waiter is registered on: a type's static check over an object and a number.
///
/// Not an existential value: a condition holding one is a type the compiler copies and destroys
/// through value witnesses, and so is every `Socket.Blocked?` a read or write returns (about 140
/// instructions per call, even when nothing waited). These fields are two references and a
/// number, stored inline: a wait allocates nothing for them.
package protocol WaitPredicate: Sendable {
    /// Whether the waiting call on `socket` may go on; `state` is the socket's state bits now.
    static func isSatisfied(subject: AnyObject, amount: Int, for socket: Socket, state: SocketState) -> Bool
}

/// A protocol's wait condition: `predicate` checks `subject` and `amount`.
package struct ProtocolCondition: Sendable {
    let subject: any AnyObject & Sendable
    let amount: Int
    let predicate: any WaitPredicate.Type

    package init(_ predicate: any WaitPredicate.Type, subject: any AnyObject & Sendable, amount: Int = 0) {
        self.subject = subject
        self.amount = amount
        self.predicate = predicate
    }

    func isSatisfied(for socket: Socket, state: SocketState) -> Bool {
        predicate.isSatisfied(subject: subject, amount: amount, for: socket, state: state)
    }
}
