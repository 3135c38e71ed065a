import CNetMP

/// A short lock for socket buffers, queues and control blocks.
///
/// A futex word in C (`netmp_mutex`: a compare-and-swap to lock and an exchange to unlock when
/// uncontended; a brief spin, then the kernel) rather than the standard library's `Mutex`,
/// because under ThreadSanitizer it is a pthread mutex, which TSan understands, where it
/// reports false races on data guarded by `Mutex` under contention.
///
/// Public only so that code in NetMP's other modules can inline and specialise it (Swift does
/// not inline members of `package` types across modules); its members are `package`, not API.
public final class NetLock: @unchecked Sendable {
    @usableFromInline let mutex: OpaquePointer

    /// A lock whose mutex has a cache line of its own (no false sharing with its neighbours), or,
    /// when `compact`, a block of its own size: for the many locks of a socket that are seldom
    /// contended.
    package init(compact: Bool = false) { mutex = compact ? netmp_mutex_create_compact() : netmp_mutex_create() }

    deinit { netmp_mutex_destroy(mutex) }

    @inlinable @inline(__always) package func lock() { netmp_mutex_lock(mutex) }

    @inlinable @inline(__always) package func unlock() { netmp_mutex_unlock(mutex) }

    @inlinable @inline(__always) package func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        netmp_mutex_lock(mutex)
        defer { netmp_mutex_unlock(mutex) }
        return try body()
    }
}

/// A value guarded by its own `NetLock`.
///
/// Public only so that code in NetMP's other modules can inline and specialise it (Swift does
/// not inline members of `package` types across modules); its members are `package`, not API.
public final class LockedValue<Value>: @unchecked Sendable {
    @usableFromInline let lock: NetLock
    @usableFromInline var value: Value

    package init(_ value: Value, compact: Bool = false) {
        self.value = value
        lock = NetLock(compact: compact)
    }

    @inlinable @inline(__always) package func withLock<T, E: Error>(_ body: (inout Value) throws(E) -> T) throws(E) -> T
    {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
