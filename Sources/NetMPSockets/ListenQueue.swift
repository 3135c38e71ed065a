import NetMPRuntime
import Synchronization

/// A listen socket's queues of connections (DragonFly's `so_incomp` and `so_comp`): the
/// incomplete ones still handshaking and the complete ones waiting for `accept`, their lengths
/// and each child's queue state, all under one short lock.
package final class ListenQueue: @unchecked Sendable {
    /// The largest backlog a listen may ask for (SOMAXCONN).
    package static let maximumBacklog = 4096

    let lock = NetLock(compact: true)
    // Under `lock`: no access outlives the lock, so the runtime exclusivity check is skipped.
    @exclusivity(unchecked) private(set) var incomplete = RingQueue<Socket>()
    @exclusivity(unchecked) private(set) var complete = RingQueue<Socket>()
    @exclusivity(unchecked) private var backlog = 0
    @exclusivity(unchecked) private var isClosed = false
    /// Complete connections waiting (read without the lock by the accept condition).
    package let completeCount = Atomic<Int>(0)

    /// The queue of every socket that closed without having listened: closed, so nothing is
    /// ever queued on it.
    static let closed: ListenQueue = {
        let queue = ListenQueue()
        _ = queue.close()
        return queue
    }()

    var limit: Int { lock.withLock { backlog } }

    /// Sets the backlog (a listen). A queue closed by its socket's close stays closed: a listen
    /// racing that close must not reopen it for children nobody would accept or abort.
    func setBacklog(_ value: Int) {
        lock.withLock { backlog = Swift.min(Swift.max(value, 1), ListenQueue.maximumBacklog) }
    }

    /// Adds a handshaking child. When the incomplete queue is full the oldest incomplete child
    /// is dropped and returned for the caller to abort.
    func addIncomplete(_ child: Socket) -> (accepted: Bool, dropped: Socket?) {
        lock.withLock {
            guard !isClosed else { return (false, nil) }
            var dropped: Socket?
            if incomplete.count >= backlog, let oldest = incomplete.popFirst() {
                oldest.state.clear(.inIncompleteQueue)
                dropped = oldest
            }
            child.state.set(.inIncompleteQueue)
            incomplete.append(child)
            return (true, dropped)
        }
    }

    /// Adds a finished child for `accept`. False when the queue is closed or full.
    package func addComplete(_ child: Socket) -> Bool {
        lock.withLock {
            guard !isClosed, complete.count < backlog else { return false }
            child.state.set(.inCompleteQueue)
            complete.append(child)
            completeCount.store(complete.count, ordering: .sequentiallyConsistent)
            return true
        }
    }

    /// Moves a child from the incomplete to the complete queue once its handshake is done.
    func promote(_ child: Socket) -> Bool {
        lock.withLock {
            guard !isClosed, child.state.contains(.inIncompleteQueue) else { return false }
            incomplete.removeAll { $0 === child }
            child.state.clear(.inIncompleteQueue)
            child.state.set(.inCompleteQueue)
            complete.append(child)
            completeCount.store(complete.count, ordering: .sequentiallyConsistent)
            return true
        }
    }

    /// Removes a child that went away before it was accepted.
    func remove(_ child: Socket) {
        lock.withLock {
            incomplete.removeAll { $0 === child }
            complete.removeAll { $0 === child }
            child.state.clear([.inIncompleteQueue, .inCompleteQueue])
            completeCount.store(complete.count, ordering: .sequentiallyConsistent)
        }
    }

    /// Takes the oldest complete connection.
    func takeComplete() -> Socket? {
        lock.withLock {
            guard let child = complete.popFirst() else { return nil }
            child.state.clear(.inCompleteQueue)
            completeCount.store(complete.count, ordering: .sequentiallyConsistent)
            return child
        }
    }

    package var counts: (incomplete: Int, complete: Int) { lock.withLock { (incomplete.count, complete.count) } }

    /// Closes the queues and hands back every child, for the caller to abort.
    func close() -> [Socket] {
        lock.withLock {
            isClosed = true
            var children: [Socket] = []
            while let child = incomplete.popFirst() { children.append(child) }
            while let child = complete.popFirst() { children.append(child) }
            for child in children { child.state.clear([.inIncompleteQueue, .inCompleteQueue]) }
            completeCount.store(0, ordering: .sequentiallyConsistent)
            return children
        }
    }
}
