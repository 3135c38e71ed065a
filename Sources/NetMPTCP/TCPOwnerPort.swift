import NetMPRuntime
import Synchronization

/// A TCP socket's owner: the protocol thread its control block lives on, which changes once when
/// `connect` moves the block to the thread its 4-tuple hashes to.
///
/// The switch happens under `lock` together with queueing the migrating message on the new
/// thread, and every send through this port reads the owner and queues under the same lock, so a
/// request can never reach the new owner before the block does. A request queued on the old
/// owner before the switch finds the port pointing elsewhere when it runs and is sent on (after
/// the migrating message); a synchronous call that lands there is retried by its caller.
/// `dispatch`, which only runs a request as the owner and never queues, reads the owner without
/// the lock and again once it holds that owner's run token (see there).
package final class TCPOwnerPort: MessagePort, @unchecked Sendable {
    let lock = NetLock()
    private var current: ProtocolThread  // under lock
    /// `current.identity` (its unretained address), written with it under `lock`: what
    /// `isOwnerCurrent` and `dispatch` read without it (the stack keeps every thread, so an old
    /// owner's address stays valid).
    private let currentIdentity: Atomic<UInt>
    /// A stack's threads share one mode, so a move never changes it (read per socket wait).
    package let isDriven: Bool

    init(_ thread: ProtocolThread) {
        current = thread
        currentIdentity = Atomic(thread.identity)
        isDriven = thread.isDriven
    }

    /// The owner now.
    package var thread: ProtocolThread { lock.withLock { current } }

    /// Whether the caller runs as the owner now (an embedded message's check, once per post).
    var isOwnerCurrent: Bool { currentIdentity.load(ordering: .acquiring) == ProtocolThread.currentIdentity }

    /// Moves ownership to `target`, queueing `message` there as the first thing it sees.
    /// Called on the old owner.
    func migrate(to target: ProtocolThread, _ message: @escaping @Sendable () -> Void) -> Bool {
        lock.lock()
        current = target
        currentIdentity.store(target.identity, ordering: .releasing)
        let queued = target.sendQueued(message)
        lock.unlock()
        return queued
    }

    /// A message runs on the caller's thread (direct dispatch) only outside `lock`, which it may
    /// take; holding the owner's run token, the owner cannot move (only the owner moves it).
    @discardableResult
    package func send(_ message: @escaping @Sendable () -> Void) -> Bool {
        lock.lock()
        let target = current
        if target.beginDirectDispatch() {
            lock.unlock()
            message()
            target.endDirectDispatch()
            return true
        }
        let queued = target.sendQueued { [self] in
            if thread === target { message() } else { send(message) }
        }
        lock.unlock()
        return queued
    }

    /// Queues `message` on the current owner without running it on the caller (the owner's own
    /// post of a window update a reader missed: a protocol thread never dispatches).
    @discardableResult
    package func postQueued(_ message: any EmbeddedMessage) -> Bool {
        lock.lock()
        let queued = current.postQueued(message)
        lock.unlock()
        return queued
    }

    @discardableResult
    package func post(_ message: any EmbeddedMessage) -> Bool {
        lock.lock()
        let target = current
        if target.mayDispatchPost() && target.beginDirectDispatch() {
            lock.unlock()
            message.handle()
            target.endDirectDispatch()
            return true
        }
        let queued = target.postQueued(message)
        lock.unlock()
        return queued
    }

    /// Runs `message` on the caller as the owner if the owner is idle (direct dispatch), else
    /// returns false having run nothing. The owner is read without `lock` and unretained (a
    /// retain was an atomic on a header every thread that sends to this owner shares, the lock
    /// two more): once the caller holds a thread's run token, the block cannot move off it (only
    /// its owner moves it), so the owner read again then is the owner for the whole run.
    func dispatch(_ message: TCPBlockMessage) -> Bool {
        let address = currentIdentity.load(ordering: .acquiring)
        guard let pointer = UnsafeRawPointer(bitPattern: address) else { return false }
        let target = Unmanaged<ProtocolThread>.fromOpaque(pointer)
        guard target._withUnsafeGuaranteedRef({ $0.mayDispatchPost() && $0.beginDirectDispatch() }) else {
            return false
        }
        // Moved before the token was taken: the request goes to the new owner's queue.
        guard currentIdentity.load(ordering: .acquiring) == address else {
            target._withUnsafeGuaranteedRef { $0.endDirectDispatch() }
            return false
        }
        message.run()
        target._withUnsafeGuaranteedRef { $0.endDirectDispatch() }
        return true
    }

    package func call<T: Sendable>(_ body: @escaping @Sendable () throws(NetError) -> T) throws(NetError) -> T {
        while true {
            let target = thread
            let result: T? = try target.call { [self] () throws(NetError) -> T? in
                guard thread === target else { return nil }
                return try body()
            }
            if let result { return result }
        }
    }

    package func callAsync<T: Sendable>(_ body: @escaping @Sendable () throws(NetError) -> T) async throws(NetError)
        -> T
    {
        while true {
            let target = thread
            let result: T? = try await target.callAsync { [self] () throws(NetError) -> T? in
                guard thread === target else { return nil }
                return try body()
            }
            if let result { return result }
        }
    }

    package func runUntilIdle() { thread.runUntilIdle() }
}
