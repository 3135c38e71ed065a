import NetMPInet
import NetMPInterfaces
import NetMPLocal
import NetMPRuntime
import NetMPSockets
import NetMPTCP
import NetMPWire

/// A NetMP stack: its protocol threads, its domains and its sockets.
///
/// ```swift
/// let stack = NetworkStack()
/// let (a, b) = try stack.socketPair(.stream)
/// try a.write(Array("hello".utf8))
/// let reply = try b.read(maxBytes: 5)
/// ```
public final class NetworkStack: Sendable {
    public struct Configuration: Sendable {
        /// Protocol threads; the default is one per CPU.
        public var threadCount: Int
        /// The time source for timers; a `ManualClock` in tests.
        public var clock: any NetClock
        /// `.driven` runs every protocol thread on the caller's thread, stepped by
        /// `runUntilIdle()`: the deterministic mode.
        public var mode: ProtocolThread.Mode
        /// Pins protocol thread i to CPU i.
        public var pinThreads: Bool
        /// Local sockets normally run their requests inline (a synchronous port, as in
        /// DragonFly). When true each local socket is owned by a protocol thread instead, in
        /// turn, and every request and wait goes there by message: the path thread-owned
        /// protocols take, exercised without a network.
        public var localSocketsOnProtocolThreads: Bool
        /// Seeds the stack's randomness (ephemeral ports, IP identification): the same seed
        /// replays a deterministic run.
        public var seed: UInt64
        /// The IPv4 layer's tunables (forwarding, ARP, reassembly, ICMP rate).
        public var inet: InetSettings
        /// Lets a user thread run a request itself as the owner when the owner thread is idle
        /// and its port empty (FreeBSD netisr's hybrid dispatch), saving the hand-off; the
        /// dedicated mode only.
        public var directDispatch: Bool

        public init(
            threadCount: Int = OSThread.cpuCount, clock: any NetClock = SystemClock(),
            mode: ProtocolThread.Mode = .dedicated, pinThreads: Bool = false,
            localSocketsOnProtocolThreads: Bool = false,
            seed: UInt64 = UInt64.random(in: 0...UInt64.max), inet: InetSettings = InetSettings(),
            directDispatch: Bool = true
        ) {
            self.directDispatch = directDispatch
            self.threadCount = threadCount
            self.clock = clock
            self.mode = mode
            self.pinThreads = pinThreads
            self.localSocketsOnProtocolThreads = localSocketsOnProtocolThreads
            self.seed = seed
            self.inet = inet
        }
    }

    /// The protocol threads, in index order.
    public let threads: [ProtocolThread]
    public let clock: any NetClock
    let sockets = SocketRegistry()
    let localDomain: LocalDomain
    let inet: InetStack
    let udp: UDPProtocol
    let tcp: TCPProtocol

    public init(_ configuration: Configuration = Configuration()) {
        let count = Swift.max(1, configuration.threadCount)
        let threads = (0..<count).map { index in
            ProtocolThread(
                index: index, clock: configuration.clock, mode: configuration.mode,
                pinToCPU: configuration.pinThreads ? index % OSThread.cpuCount : nil,
                directDispatch: configuration.directDispatch)
        }
        self.threads = threads
        clock = configuration.clock
        localDomain = LocalDomain(threads: configuration.localSocketsOnProtocolThreads ? threads : [])
        inet = InetStack(threads: threads, settings: configuration.inet, seed: configuration.seed)
        udp = UDPProtocol(inet: inet)
        tcp = TCPProtocol(inet: inet, seed: configuration.seed)
    }

    /// A stack nobody holds any more stops its threads.
    deinit { shutdown() }

    /// Stops the protocol threads after the messages already queued. Later calls on this
    /// stack's sockets fail with `.shutdown`, and every pending operation (a blocked call, a
    /// ping in flight) ends with it. Safe to call more than once.
    public func shutdown() {
        guard sockets.markShutDown() else { return }
        let mayWait = ProtocolThread.current == nil
        if mayWait && threads.allSatisfy({ $0.mode == .dedicated }) { tcp.abortEveryConnection() }
        for thread in threads { thread.stop() }
        // Calls still blocked on a socket end with `.shutdown`, and so do pings in flight.
        sockets.wakeEverySocket()
        if ProtocolThread.current == nil {
            // The threads have ended (stopped and joined): their ping tables are free to touch.
            for state in inet.perThread { state.failPendingPings() }
            tcp.releaseAfterStop()
        }
        inet.detachInterfaces()
    }

    /// Driven mode: runs every protocol thread until none has work now.
    public func runUntilIdle() {
        for thread in threads where thread.mode == .driven { thread.runUntilIdle() }
    }

    /// Waits until every protocol thread has handled the messages queued before this call, so
    /// that what those messages held (socket references among them) is released.
    public func quiesce() {
        guard !sockets.isShutDown.load(ordering: .relaxed) else { return }
        for thread in threads { thread.flush() }
    }

    /// Sockets alive in this stack, open or not yet freed (for leak checks).
    public var liveSocketCount: Int { sockets.liveSockets.load(ordering: .sequentiallyConsistent) }

    /// Socket buffers alive in this stack (two per socket).
    public var liveBufferCount: Int { sockets.liveBuffers.load(ordering: .sequentiallyConsistent) }

    /// Byte chunks alive in the whole process, pooled ones included. Counted in debug builds,
    /// or when the environment has NETMP_COUNT_LIVE_CHUNKS; 0 otherwise.
    public static var liveChunkCount: Int { ByteChunk.liveCount.load(ordering: .relaxed) }

    // MARK: Sockets

    /// socket(2).
    public func socket(_ domain: SocketDomain, _ type: SocketType) throws(NetError) -> NetSocket {
        if sockets.isShutDown.load(ordering: .relaxed) { throw .shutdown }
        switch domain {
        case .local: return NetSocket(try localDomain.makeSocket(type: type, registry: sockets))
        case .inet:
            if type == .stream { return NetSocket(try tcp.makeSocket(registry: sockets)) }
            return NetSocket(try udp.makeSocket(registry: sockets))
        }
    }

    /// socketpair(2): two local sockets connected to each other.
    public func socketPair(_ type: SocketType) throws(NetError) -> (NetSocket, NetSocket) {
        let first = try socket(.local, type)
        let second = try socket(.local, type)
        try first.core.request { () throws(NetError) in
            try first.core.proto.connectPair(first.core, second.core)
        }
        return (first, second)
    }
}
