import CNetMP

/// A short lock for socket buffers, queues and control blocks.
///
/// It is a pthread mutex (adaptive: it spins briefly before sleeping) rather than the standard
/// library's `Mutex`, because ThreadSanitizer understands pthread mutexes and reports false races
/// on data guarded by `Mutex` under contention.
final class NetLock: @unchecked Sendable {
    private let mutex: OpaquePointer

    init() { mutex = netmp_mutex_create() }

    deinit { netmp_mutex_destroy(mutex) }

    @inline(__always) func lock() { netmp_mutex_lock(mutex) }

    @inline(__always) func unlock() { netmp_mutex_unlock(mutex) }

    @inline(__always) func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        netmp_mutex_lock(mutex)
        defer { netmp_mutex_unlock(mutex) }
        return try body()
    }
}

/// A value guarded by its own `NetLock`.
final class LockedValue<Value>: @unchecked Sendable {
    private let lock = NetLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    @inline(__always) func withLock<T, E: Error>(_ body: (inout Value) throws(E) -> T) throws(E) -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
