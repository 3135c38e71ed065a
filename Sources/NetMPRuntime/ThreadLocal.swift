import Glibc

/// One object per OS thread, made on first use and released when the thread exits (a
/// pthread key). Reaching it costs a `pthread_getspecific`, much less than a lock.
package final class ThreadLocal<Value: AnyObject>: @unchecked Sendable {
    /// A constant after `init`, so reading it needs no exclusivity check in the callers this
    /// is inlined into.
    private let key: pthread_key_t
    private let make: @Sendable () -> Value

    package init(_ make: @escaping @Sendable () -> Value) {
        self.make = make
        var key = pthread_key_t()
        let created = pthread_key_create(&key) { pointer in
            guard let pointer else { return }
            Unmanaged<AnyObject>.fromOpaque(pointer).release()
        }
        precondition(created == 0, "pthread_key_create failed")
        self.key = key
    }

    /// The key goes; other threads' objects are not released (make these for the process's
    /// lifetime, as statics do).
    deinit { pthread_key_delete(key) }

    /// Runs `body` with the calling thread's object, not retained (the thread's key holds it).
    @inline(__always) package func withValue<Result>(_ body: (Value) -> Result) -> Result {
        if let pointer = pthread_getspecific(key) {
            return Unmanaged<Value>.fromOpaque(pointer)._withUnsafeGuaranteedRef(body)
        }
        return body(value)
    }

    /// The calling thread's object.
    @inline(__always) package var value: Value {
        if let pointer = pthread_getspecific(key) {
            return Unmanaged<Value>.fromOpaque(pointer).takeUnretainedValue()
        }
        let made = make()
        pthread_setspecific(key, Unmanaged.passRetained(made).toOpaque())
        return made
    }
}
