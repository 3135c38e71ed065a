import NetMPRuntime
import Synchronization

/// Someone told when a socket's readiness may have changed (a poller registration).
package protocol ReadinessObserver: AnyObject, Sendable {
    func readinessChanged()
}

/// A socket's readiness observers; told from the same places that wake waiters, after the
/// buffer's lock is dropped.
package final class ReadinessObservers: @unchecked Sendable {
    let lock = NetLock(compact: true)
    @exclusivity(unchecked) private var observers: [any ReadinessObserver] = []  // under lock
    private let count = Atomic<Int>(0)

    package func add(_ observer: any ReadinessObserver) {
        lock.withLock {
            observers.append(observer)
            count.store(observers.count, ordering: .sequentiallyConsistent)
        }
    }

    package func remove(_ observer: any ReadinessObserver) {
        lock.withLock {
            observers.removeAll { $0 === observer }
            count.store(observers.count, ordering: .sequentiallyConsistent)
        }
    }

    func removeAll() {
        lock.withLock {
            observers.removeAll()
            count.store(0, ordering: .sequentiallyConsistent)
        }
    }

    /// Tells every observer, under this list's lock: no array is handed to another thread
    /// (ThreadSanitizer cannot see the reference counts that would order such a hand-over), and
    /// once `remove` returns the removed observer is told nothing more. An observer only queues
    /// itself under its own short lock, which never calls back here.
    @inline(__always) package func notify() {
        guard count.load(ordering: .sequentiallyConsistent) > 0 else { return }
        lock.lock()
        for observer in observers { observer.readinessChanged() }
        lock.unlock()
    }
}
