import CNetMP
import Synchronization

/// A one-shot reply slot that a blocked thread waits on.
package final class ThreadReply<T>: @unchecked Sendable {
    private let parker: UnsafeMutablePointer<netmp_parker>
    private let ready = Atomic<Bool>(false)
    private var result: Result<T, NetError>?

    package init() {
        parker = .allocate(capacity: 1)
        netmp_parker_init(parker)
    }

    deinit { parker.deallocate() }

    package func complete(_ result: Result<T, NetError>) {
        self.result = result
        ready.store(true, ordering: .releasing)
        netmp_parker_unpark(parker)
    }

    /// Waits for a reply that is not expected soon (no spinning).
    package func wait() -> Result<T, NetError> {
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
