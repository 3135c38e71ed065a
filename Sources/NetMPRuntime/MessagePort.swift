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

    /// True for a port of the deterministic mode, which runs only when stepped.
    var isDriven: Bool { get }

    /// Steps a driven port until it has no work now (nothing for other ports).
    func runUntilIdle()
}

extension MessagePort {
    /// Runs `body` on this port: waits for it from a user thread (or inline on the port's own
    /// thread), but only posts it from another protocol thread, which must never wait on one.
    package func perform(_ body: @escaping @Sendable () -> Void) {
        if let current = ProtocolThread.current, current !== self {
            send(body)
        } else {
            _ = try? call { () throws(NetError) in body() }
        }
    }
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

    public var isDriven: Bool { false }

    public func runUntilIdle() {}
}
