import NetMPRuntime

/// The calls of one socket blocked on another socket's buffer: a local sender waits for room
/// in its peer's receive buffer, which its own close() does not otherwise touch. close() ends
/// them here, so every blocked call on a closed socket returns.
final class ForeignWaits: @unchecked Sendable {
    let lock = NetLock(compact: true)
    private var waiters: [SocketWaiter] = []  // under lock
    private var isEnded = false  // under lock

    /// The list of every socket that closed without having waited on another's buffer: ended,
    /// so a wait added to it ends at once.
    static let ended: ForeignWaits = {
        let waits = ForeignWaits()
        waits.endAll()
        return waits
    }()

    /// Records a wait before it is posted. `closed` is the socket's close bit as the caller
    /// read it; a wait that starts after the close (or races it) is ended at once.
    func add(_ waiter: SocketWaiter, closed: Bool) {
        let endNow: Bool = lock.withLock {
            if isEnded || closed { return true }
            waiters.append(waiter)
            return false
        }
        if endNow { _ = waiter.cancel(.satisfied) }
    }

    func remove(_ waiter: SocketWaiter) {
        lock.withLock {
            if let index = waiters.firstIndex(where: { $0 === waiter }) { waiters.remove(at: index) }
        }
    }

    /// Ends every recorded wait (its caller then finds the socket closed) and every later one.
    func endAll() {
        lock.withLock {
            isEnded = true
            // Cancelling under this lock: it takes only the waited-on buffer's lock after it,
            // and nothing takes them the other way round.
            for waiter in waiters { _ = waiter.cancel(.satisfied) }
            waiters.removeAll()
        }
    }
}
