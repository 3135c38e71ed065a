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
