import NetMPRuntime
import Synchronization

/// The sockets of one stack: how many are alive, whether the stack has shut down, and an
/// unretained list of them so that a shutdown can end every call still blocked on one.
package final class SocketRegistry: Sendable {
    package let liveSockets = Atomic<Int>(0)
    package let liveBuffers = Atomic<Int>(0)
    /// Set once by the stack's shutdown; every socket call then fails with `.shutdown`.
    package let isShutDown = Atomic<Bool>(false)
    private let entries = LockedValue<[ObjectIdentifier: UnretainedSocket]>([:])

    package init() {}

    /// A table entry that never keeps its socket alive. Not a weak reference: that would give
    /// every socket a side table, and every retain and release of it the slow path. A socket
    /// leaves the table in its deinit, under the table's lock, so an entry read under that lock
    /// names a socket whose stored properties are still there.
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
        // Only the buffers are retained (a socket may already be in its deinit, waiting for
        // this lock), and woken after the lock is dropped.
        let buffers = entries.withLock { table in
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
