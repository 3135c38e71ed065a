import NetMPRuntime

/// Waiters to complete once the buffer's lock is dropped. Holds one without allocating.
package struct WakeList {
    private var first: SocketWaiter?
    private var rest: [SocketWaiter] = []

    package init() {}

    var isEmpty: Bool { first == nil }

    mutating func add(_ waiter: SocketWaiter) {
        if first == nil { first = waiter } else { rest.append(waiter) }
    }

    package func publishAll() {
        guard let first else { return }
        first.publish(.satisfied)
        for waiter in rest { waiter.publish(.satisfied) }
    }
}
