import Synchronization

/// What every socket of one stack shares: its protocol threads, its domains and its counters.
final class StackContext: Sendable {
    let clock: any NetClock
    let threads: [ProtocolThread]
    let synchronousPort = SynchronousPort()
    let localDomain: LocalDomain
    let liveSockets = Atomic<Int>(0)
    let liveBuffers = Atomic<Int>(0)
    let isShutDown = Atomic<Bool>(false)
    let localSocketsOnProtocolThreads: Bool
    /// Every live socket, so that shutting the stack down can end the calls blocked on them.
    private let registry = LockedValue<[ObjectIdentifier: WeakSocket]>([:])

    final class WeakSocket: @unchecked Sendable {
        weak var socket: Socket?
        init(_ socket: Socket) { self.socket = socket }
    }

    func register(_ socket: Socket) {
        let entry = WeakSocket(socket)
        registry.withLock { $0[ObjectIdentifier(socket)] = entry }
    }

    func unregister(_ id: ObjectIdentifier) {
        registry.withLock { _ = $0.removeValue(forKey: id) }
    }

    /// Ends every wait on every socket (after `isShutDown` is set): the calls see `.shutdown`.
    func wakeEverySocket() {
        let sockets = registry.withLock { $0.values.compactMap(\.socket) }
        for socket in sockets {
            socket.receiveBuffer.wakeAll()
            socket.sendBuffer.wakeAll()
        }
    }
    private let nextOwner = Atomic<Int>(0)

    init(clock: any NetClock, threads: [ProtocolThread], localSocketsOnProtocolThreads: Bool) {
        self.clock = clock
        self.threads = threads
        self.localDomain = LocalDomain()
        self.localSocketsOnProtocolThreads = localSocketsOnProtocolThreads
    }

    /// The owner for a new local socket.
    func localOwner() -> any MessagePort {
        guard localSocketsOnProtocolThreads, !threads.isEmpty else { return synchronousPort }
        let index = nextOwner.add(1, ordering: .relaxed).oldValue
        return threads[index % threads.count]
    }
}
