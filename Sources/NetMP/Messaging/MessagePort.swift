import CNetMP
import Synchronization

/// Where a socket's protocol requests run (DragonFly's `so_port`).
///
/// A protocol thread queues messages to its own OS thread; the local domain's port is
/// synchronous and runs each request inline in the caller's thread, as DragonFly's local domain
/// does. Either way the caller sees the same three ways of sending.
public protocol MessagePort: AnyObject, Sendable {
    /// Sends and forgets (`lwkt_sendmsg`). Returns false when the port no longer runs.
    @discardableResult
    func send(_ message: @escaping @Sendable () -> Void) -> Bool

    /// Sends a message embedded in a long-lived object (no allocation).
    @discardableResult
    func post(_ message: any EmbeddedMessage) -> Bool

    /// Sends and waits for the reply, blocking the calling thread (`lwkt_domsg`). Runs inline
    /// when called from the port's own thread.
    func call<T: Sendable>(_ body: @escaping @Sendable () throws(NetError) -> T) throws(NetError) -> T

    /// Sends and suspends the calling task until the reply; no thread is blocked.
    func callAsync<T: Sendable>(_ body: @escaping @Sendable () throws(NetError) -> T) async throws(NetError) -> T
}

/// A port whose requests run inline in the caller's thread.
public final class SynchronousPort: MessagePort {
    public init() {}

    @discardableResult
    public func send(_ message: @escaping @Sendable () -> Void) -> Bool {
        message()
        return true
    }

    @discardableResult
    public func post(_ message: any EmbeddedMessage) -> Bool {
        message.handle()
        return true
    }

    public func call<T: Sendable>(_ body: @escaping @Sendable () throws(NetError) -> T) throws(NetError) -> T {
        try body()
    }

    public func callAsync<T: Sendable>(_ body: @escaping @Sendable () throws(NetError) -> T) async throws(NetError) -> T
    {
        try body()
    }
}

/// How long a waiting thread spins before it sleeps in the kernel. A futex wake costs about a
/// kernel round trip, while a hand-off between two running threads takes well under a
/// microsecond: a short spin turns most wake-ups into the cheap kind.
public enum SpinPolicy {
    /// The most rounds of the CPU's pause hint (about 40 ns each here) a blocked user thread
    /// spins before it yields and then parks. The spin adapts per buffer below this: it grows
    /// toward twice what caught the last wake-up and halves when spinning did not help (the
    /// waker shares this CPU or is slow), so a busy machine does not burn its cores spinning.
    nonisolated(unsafe) public static var waiterSpins: Int32 = 2000
    /// The least a waiter spins (about 10 µs), so that a partner that answers within a few
    /// microseconds is still caught and the spin can grow again.
    nonisolated(unsafe) public static var waiterMinimumSpins: Int32 = 250
    /// Yields between spinning and sleeping: a waker on the same CPU runs at once.
    nonisolated(unsafe) public static var waiterYields: Int32 = 3

    /// The next spin budget after a wait that ended with `result` (see
    /// `netmp_parker_park_reporting`).
    static func adaptedSpins(_ budget: Int32, after result: Int32) -> Int32 {
        let next = result >= 0 ? result &* 2 &+ 32 : budget / 2
        return Swift.min(waiterSpins, Swift.max(waiterMinimumSpins, next))
    }

    /// Rounds a protocol thread spins on its empty port before parking; it yields the CPU every
    /// `protocolThreadYieldEvery` rounds so that a sender on the same CPU can run.
    nonisolated(unsafe) public static var protocolThreadSpins: Int = 500
    nonisolated(unsafe) public static var protocolThreadYieldEvery: Int = 100
    /// The least an idle protocol thread spins (about 10 µs): a caller's next request usually
    /// comes sooner, and a futex wake here costs several times that.
    nonisolated(unsafe) public static var protocolThreadMinimumSpins: Int = 250
}

/// A one-shot reply slot that a blocked thread waits on.
final class ThreadReply<T>: @unchecked Sendable {
    private let parker: UnsafeMutablePointer<netmp_parker>
    private let ready = Atomic<Bool>(false)
    private var result: Result<T, NetError>?

    init() {
        parker = .allocate(capacity: 1)
        netmp_parker_init(parker)
    }

    deinit { parker.deallocate() }

    func complete(_ result: Result<T, NetError>) {
        self.result = result
        ready.store(true, ordering: .releasing)
        netmp_parker_unpark(parker)
    }

    /// Waits for a reply that is not expected soon (no spinning).
    func wait() -> Result<T, NetError> {
        while !ready.load(ordering: .acquiring) { _ = netmp_parker_park(parker, 0, -1) }
        return result ?? .failure(.shutdown)
    }

    /// Waits for the reply, spinning as `budget` says first and adapting it.
    func wait(budget: borrowing Atomic<Int32>) -> Result<T, NetError> {
        var first = true
        while !ready.load(ordering: .acquiring) {
            let spins = budget.load(ordering: .relaxed)
            let outcome = netmp_parker_park_reporting(
                parker, first ? spins : 0, first ? SpinPolicy.waiterYields : 0, -1)
            if first { budget.store(SpinPolicy.adaptedSpins(spins, after: outcome), ordering: .relaxed) }
            first = false
        }
        return result ?? .failure(.shutdown)
    }
}
