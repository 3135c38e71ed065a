import Glibc

/// One object per OS thread, made on first use and released when the thread exits (a
/// pthread key). Reaching it costs a `pthread_getspecific`, much less than a lock.
package final class ThreadLocal<Value: AnyObject>: @unchecked Sendable {
    private var key = pthread_key_t()
    private let make: @Sendable () -> Value

    package init(_ make: @escaping @Sendable () -> Value) {
        self.make = make
        let created = pthread_key_create(&key) { pointer in
            guard let pointer else { return }
            Unmanaged<AnyObject>.fromOpaque(pointer).release()
        }
        precondition(created == 0, "pthread_key_create failed")
    }

    /// The key goes; other threads' objects are not released (make these for the process's
    /// lifetime, as statics do).
    deinit { pthread_key_delete(key) }

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
