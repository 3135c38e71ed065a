import NetMPRuntime
import Synchronization

/// The sockets of one stack: how many are alive, whether the stack has shut down, and a weak
/// list of them so that a shutdown can end every call still blocked on one.
package final class SocketRegistry: Sendable {
    package let liveSockets = Atomic<Int>(0)
    package let liveBuffers = Atomic<Int>(0)
    /// Set once by the stack's shutdown; every socket call then fails with `.shutdown`.
    package let isShutDown = Atomic<Bool>(false)
    private let entries = LockedValue<[ObjectIdentifier: WeakSocket]>([:])

    package init() {}

    /// A table entry: weak, so the table never keeps a socket alive (a value, not an object
    /// of its own per socket).
    struct WeakSocket: @unchecked Sendable {
        weak var socket: Socket?
        init(_ socket: Socket) { self.socket = socket }
    }

    func register(_ socket: Socket) {
        let entry = WeakSocket(socket)
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
        let sockets = entries.withLock { $0.values.compactMap(\.socket) }
        for socket in sockets {
            socket.receiveBuffer.wakeAll()
            socket.sendBuffer.wakeAll()
        }
    }
}
