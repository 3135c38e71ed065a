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
}
