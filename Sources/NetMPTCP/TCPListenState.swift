import NetMPRuntime
import NetMPSockets
import NetMPWire
import Synchronization

/// A listen socket as every protocol thread sees it: its address, and its incomplete queue of
/// children still handshaking, bounded by the backlog with the oldest dropped when full. The
/// children themselves live on the threads their tuples hash to; this only names them.
final class TCPListenState: @unchecked Sendable {
    let socket: Socket
    let block: TCPControlBlock
    let address: IPv4Address
    let port: UInt16
    private let lock = NetLock()
    @exclusivity(unchecked) private var incomplete = RingQueue<TCPControlBlock>(capacity: 4)  // under lock
    @exclusivity(unchecked) private var isClosed = false  // under lock

    init(socket: Socket, block: TCPControlBlock, address: IPv4Address, port: UInt16) {
        self.socket = socket
        self.block = block
        self.address = address
        self.port = port
    }

    @exclusivity(unchecked) private var backlogValue = 1  // under lock

    /// The backlog, as listen(2) set it on the socket's queue (clamped the same way).
    var backlog: Int {
        get { lock.withLock { backlogValue } }
        set { lock.withLock { backlogValue = Swift.min(Swift.max(newValue, 1), ListenQueue.maximumBacklog) } }
    }

    /// Whether the complete queue has room for another connection.
    var acceptsMore: Bool {
        guard let queue = socket.listenQueue, !socket.state.contains(.noFileReference) else { return false }
        return queue.counts.complete < backlog
    }

    /// Adds a handshaking child; returns the oldest one dropped to make room (for its owner to
    /// abort), or `child` itself when the listener is closed.
    func addIncomplete(_ child: TCPControlBlock) -> TCPControlBlock? {
        lock.withLock {
            if isClosed { return child }
            var dropped: TCPControlBlock?
            if incomplete.count >= backlogValue { dropped = incomplete.popFirst() }
            incomplete.append(child)
            return dropped
        }
    }

    /// The child finished its handshake or went away.
    func removeIncomplete(_ child: TCPControlBlock) {
        lock.withLock { incomplete.removeAll { $0 === child } }
    }

    var incompleteCount: Int { lock.withLock { incomplete.count } }

    /// The incomplete queue holds the backlog: a new SYN gets a cookie instead of a child.
    var incompleteIsFull: Bool { lock.withLock { incomplete.count >= backlogValue } }

    /// When this listener last answered with a SYN cookie (`Int64.min`: never); ACKs are checked
    /// for cookies only for a while after, as Linux does.
    let lastCookieTime = Atomic<Int64>(Int64.min)

    /// Whether an ACK arriving at `now` may carry one of our cookies (sent in the last 3 minutes).
    func mayHoldCookie(now: Int64) -> Bool {
        let sent = lastCookieTime.load(ordering: .relaxed)
        return sent != Int64.min && now &- sent <= 180_000_000_000
    }

    /// Closes the listener and hands back the handshaking children, for their owners to abort.
    func close() -> [TCPControlBlock] {
        lock.withLock {
            isClosed = true
            var children: [TCPControlBlock] = []
            while let child = incomplete.popFirst() { children.append(child) }
            return children
        }
    }
}
