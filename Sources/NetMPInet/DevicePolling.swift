import NetMPInterfaces
import NetMPRuntime
import NetMPSockets
import Synchronization

/// The interfaces of one stack that threads waiting on its sockets busy-poll (TAP queues).
///
/// Interfaces are only ever added (they stay after the stack detaches them; a closed device
/// delivers nothing), so a wait that began on the first n of them ends on the same n.
package final class DevicePolling: BusyPolling, @unchecked Sendable {
    private let lock = NetLock()
    private var interfaces: [NetworkInterface] = []  // under lock; append-only
    private let count = Atomic<Int>(0)

    /// Whether there is anything to poll.
    package var isEmpty: Bool { count.load(ordering: .relaxed) == 0 }

    func add(_ interface: NetworkInterface) {
        lock.withLock {
            guard !interfaces.contains(where: { $0 === interface }) else { return }
            interfaces.append(interface)
            count.store(interfaces.count, ordering: .releasing)
        }
    }

    private var current: [NetworkInterface] { lock.withLock { interfaces } }

    package func beginBusyPoll() -> Int {
        let interfaces = current
        for interface in interfaces { interface.beginBusyPoll() }
        return interfaces.count
    }

    package func busyPoll() -> Bool {
        var delivered = false
        for interface in current where interface.busyPoll() { delivered = true }
        return delivered
    }

    package func endBusyPoll(blocking: Bool, begun: Int) {
        for interface in current.prefix(begun) { interface.endBusyPoll(blocking: blocking) }
    }
}
