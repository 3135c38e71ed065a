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
    /// Rounds of the CPU's pause hint (about 40 ns each here) a blocked user thread spins
    /// before it yields a few times and then parks: about 10 µs, longer than a hand-off between
    /// running threads, short enough not to starve a partner that shares the CPU.
    nonisolated(unsafe) public static var waiterSpins: Int32 = 250
    /// Rounds a protocol thread spins on its empty port before parking; it yields the CPU every
    /// `protocolThreadYieldEvery` rounds so that a sender on the same CPU can run.
    nonisolated(unsafe) public static var protocolThreadSpins: Int = 500
    nonisolated(unsafe) public static var protocolThreadYieldEvery: Int = 100
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

    func wait() -> Result<T, NetError> {
        while !ready.load(ordering: .acquiring) {
            _ = netmp_parker_park(parker, SpinPolicy.waiterSpins, -1)
        }
        return result ?? .failure(.shutdown)
    }
}
