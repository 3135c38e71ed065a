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
