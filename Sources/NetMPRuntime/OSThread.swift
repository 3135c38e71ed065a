import CNetMP
import Glibc

/// A dedicated OS thread (pthread), for protocol threads, benchmarks and tests that must block.
public final class OSThread: @unchecked Sendable {
    private let handle: UInt64

    private final class Start {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }

    private init(handle: UInt64) { self.handle = handle }

    /// Starts a thread running `body` (pthread_create).
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) -> OSThread {
        let start = Unmanaged.passRetained(Start(name: name, body: body)).toOpaque()
        var handle: UInt64 = 0
        let result = netmp_thread_start(
            { context in
                guard let context else { return }
                let start = Unmanaged<Start>.fromOpaque(context).takeRetainedValue()
                netmp_thread_set_name(start.name)
                start.body()
            }, start, &handle)
        precondition(result == 0, "pthread_create failed: \(result)")
        return OSThread(handle: handle)
    }

    /// Waits for the thread to end (pthread_join). Call once, and not after `detach`.
    public func join() { _ = netmp_thread_join(handle) }

    /// Lets the thread end on its own without being joined (pthread_detach).
    public func detach() { _ = netmp_thread_detach(handle) }

    /// Lets another thread run (sched_yield).
    public static func yieldNow() { _ = sched_yield() }

    /// The number of CPUs this process may run on.
    public static var cpuCount: Int { Int(netmp_cpu_count()) }
}
