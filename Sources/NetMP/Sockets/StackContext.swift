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

    init(clock: any NetClock, threads: [ProtocolThread]) {
        self.clock = clock
        self.threads = threads
        self.localDomain = LocalDomain()
    }
}
