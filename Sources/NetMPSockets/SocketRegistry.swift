import NetMPRuntime
import Synchronization

/// The sockets of one stack: how many are alive, whether the stack has shut down, and a list of
/// them so that a shutdown can end every call still blocked on one.
///
/// The list holds sockets unretained, not weakly: a weak reference gives its object a side
/// table for life, and every retain and release of a socket then takes the runtime's slow path
/// (about a fifth of a local datagram's send and receive). A socket removes itself in its
/// `deinit`, under the table's lock, so every entry found under that lock is still a valid
/// object (its stored properties live until its `deinit` returns).
package final class SocketRegistry: Sendable {
    package let liveSockets = Atomic<Int>(0)
    package let liveBuffers = Atomic<Int>(0)
    /// Set once by the stack's shutdown; every socket call then fails with `.shutdown`.
    package let isShutDown = Atomic<Bool>(false)
    /// Set (for good) just before any socket of the stack first gets readiness observers (a
    /// poller registered it). Until then no poller needs telling of a change, so a local
    /// datagram reader skips the walk of its senders' observer lists under their lock. A poller
    /// looks at readiness itself after it registers, so a reader that found this unset (its
    /// change made before) is seen then.
    package let observersMade = Atomic<Bool>(false)
    private let entries = LockedValue<[ObjectIdentifier: UnretainedSocket]>([:])

    package init() {}

    /// A table entry that never keeps its socket alive.
    struct UnretainedSocket: @unchecked Sendable {
        let socket: Unmanaged<Socket>
    }

    func register(_ socket: Socket) {
        let entry = UnretainedSocket(socket: .passUnretained(socket))
        entries.withLock { $0[ObjectIdentifier(socket)] = entry }
    }

    func unregister(_ id: ObjectIdentifier) {
        entries.withLock { _ = $0.removeValue(forKey: id) }
    }

    /// Marks the stack shut down; false if it already was.
    package func markShutDown() -> Bool {
        !isShutDown.exchange(true, ordering: .sequentiallyConsistent)
    }

    /// Ends every wait on every socket (after `isShutDown` is set): the calls see `.shutdown`.
    package func wakeEverySocket() {
        // The buffers are taken (retained) under the lock, without retaining a socket that may
        // be in its `deinit`; waking a buffer whose socket has gone since is harmless.
        let buffers: [SocketBuffer] = entries.withLock { table in
            var buffers: [SocketBuffer] = []
            buffers.reserveCapacity(table.count * 2)
            for entry in table.values {
                entry.socket._withUnsafeGuaranteedRef { socket in
                    buffers.append(socket.receiveBuffer)
                    buffers.append(socket.sendBuffer)
                }
            }
            return buffers
        }
        for buffer in buffers { buffer.wakeAll() }
    }
}
