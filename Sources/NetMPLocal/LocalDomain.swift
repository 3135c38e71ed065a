import NetMPRuntime
import NetMPSockets
import Synchronization

/// The local domain (DragonFly's `uipc_usrreq`): in-process stream and datagram sockets named
/// in the stack's own namespace.
///
/// Its owner is a synchronous port: requests run inline in the caller's thread under the
/// domain's lock (the namespace and who is connected to whom) and each control block's lock.
/// A sender appends straight into its peer's receive buffer, so a round trip needs no
/// protocol-thread hop; waits are the same predicate messages, resolved under the buffer lock.
/// With `threads`, protocol threads own the sockets instead, and sends and window updates go
/// to them as well (LocalOwnerPath.swift).
package final class LocalDomain: SocketProtocol, @unchecked Sendable {
    /// Receive buffer of a local stream socket; it also bounds what a writer has in flight. A
    /// megabyte lets a fast writer run ahead a few of its 64 KiB writes, so the two sides meet
    /// (and wake each other) a quarter-megabyte at a time.
    static let defaultStreamBufferSize = 1 << 20
    /// Receive buffer of a local datagram socket; also the largest datagram.
    static let defaultDatagramBufferSize = 208 << 10
    /// Writes up to this size copy into the receiver's tail chunk under its lock when it has
    /// room; larger ones are copied into fresh chunks before the lock is taken.
    static let tailCopyLimit = 512
    /// The largest chunk a write fills at once.
    static let largestChunk = ChunkPool.sizeClasses[ChunkPool.sizeClasses.count - 1]

    /// The domain lock: the namespace, and who is connected to whom.
    let lock = NetLock()
    var namespace = LocalNamespace()  // under lock
    /// Owners for new sockets: the caller's thread (a synchronous port), or protocol threads in
    /// turn when the stack runs local sockets there.
    private let synchronousPort = SynchronousPort()
    private let threads: [ProtocolThread]
    private let nextThread = Atomic<Int>(0)
    /// Whether sockets belong to protocol threads, so that sends and window updates go to them.
    let routesThroughOwners: Bool
    /// Sends run on an owner thread (only counted when `routesThroughOwners`; tests read it).
    package let sendsRunOnOwners = Atomic<Int>(0)

    /// A domain whose sockets run inline (`threads` empty) or on `threads` in turn.
    package init(threads: [ProtocolThread] = []) {
        self.threads = threads
        routesThroughOwners = !threads.isEmpty
    }

    /// The owner for a new local socket.
    func nextOwner() -> any MessagePort {
        guard !threads.isEmpty else { return synchronousPort }
        let index = nextThread.add(1, ordering: .relaxed).oldValue
        return threads[index % threads.count]
    }

    @inline(__always) func block(_ socket: Socket) -> LocalControlBlock {
        guard let block = socket.controlBlock else { preconditionFailure("local socket without control block") }
        return unsafeDowncast(block, to: LocalControlBlock.self)
    }

    package func makeSocket(type: SocketType, registry: SocketRegistry) throws(NetError) -> Socket {
        let size = type == .stream ? LocalDomain.defaultStreamBufferSize : LocalDomain.defaultDatagramBufferSize
        let socket = Socket(
            domain: .local, type: type, registry: registry, proto: self, owner: nextOwner(),
            receiveSize: size, sendSize: size, keepsTailRoom: type == .stream)
        try attach(socket)
        return socket
    }
}
