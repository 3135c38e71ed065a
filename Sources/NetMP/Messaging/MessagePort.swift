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
/// microsecond: a short spin turns most wake-ups into the cheap kind. Budgets are time, turned
/// into pause rounds by `SpinCalibration.current`, and adapt (`SpinCalibration.adaptedBudget`)
/// between a floor of half again a measured wake-up and a ceiling.
public enum SpinPolicy {
    /// The most a blocked user thread spins before it yields and then parks.
    nonisolated(unsafe) public static var waiterMaximumSpinNanoseconds: Int64 = 50_000
    /// The least a waiter spins, whatever a wake-up costs.
    nonisolated(unsafe) public static var waiterMinimumSpinNanoseconds: Int64 = 5000
    /// Yields between spinning and sleeping: a waker on the same CPU runs at once.
    nonisolated(unsafe) public static var waiterYields: Int32 = 3
    /// Yields that took longer than this in all ran other threads (a `sched_yield` that switches
    /// to no one costs well under a microsecond).
    nonisolated(unsafe) public static var yieldRanOthersNanoseconds: Int64 = 2000
    /// A blocked call's spin checks its condition after every pause this long, then every
    /// `sparsePollPauses` pauses (see `SocketBuffer.spin`).
    nonisolated(unsafe) public static var densePollNanoseconds: Int64 = 2000
    nonisolated(unsafe) public static var sparsePollPauses: Int = 8

    /// The most an idle protocol thread spins on its empty port before parking; it yields the
    /// CPU every `protocolThreadYieldNanoseconds` so that a sender on the same CPU can run.
    nonisolated(unsafe) public static var protocolThreadSpinNanoseconds: Int64 = 10_000
    nonisolated(unsafe) public static var protocolThreadMinimumSpinNanoseconds: Int64 = 5000
    nonisolated(unsafe) public static var protocolThreadYieldNanoseconds: Int64 = 4000
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

    /// Waits for the reply, spinning as `budget` (nanoseconds) says first and adapting it.
    func wait(budget: borrowing Atomic<Int64>) -> Result<T, NetError> {
        let calibration = SpinCalibration.current
        var first = true
        while !ready.load(ordering: .acquiring) {
            let spin = budget.load(ordering: .relaxed)
            let start = first ? netmp_monotonic_ns() : 0
            var yielded: Int64 = 0
            var wake: Int64 = -1
            let outcome = netmp_parker_park_measuring(
                parker, first ? calibration.rounds(for: spin) : 0, first ? SpinPolicy.waiterYields : 0, -1, &yielded,
                &wake)
            SpinCalibration.recordWake(wake)
            if first {
                let waited = netmp_monotonic_ns() &- start
                budget.store(
                    calibration.adaptedWaiterBudget(spin, afterPark: outcome, waited: waited, yielded: yielded),
                    ordering: .relaxed)
            }
            first = false
        }
        return result ?? .failure(.shutdown)
    }
}
