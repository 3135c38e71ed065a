import NetMPRuntime

/// What a send could do at once.
package enum SendProgress: Sendable {
    /// This many bytes (or one whole datagram) were taken.
    case sent(Int)
    /// Nothing fits now: wait for `condition` on `buffer`, then try again.
    case mustWait(SocketBuffer, WaitCondition)
}

/// The protocol-request interface every protocol implements (DragonFly's `pr_usrreqs`).
///
/// The socket layer runs each control request as a message on the socket's owner (inline for a
/// synchronous port). `send` and `received` are the data path: they run in the calling thread
/// and do their own locking, posting to the owner when protocol work must follow.
package protocol SocketProtocol: AnyObject, Sendable {
    func attach(_ socket: Socket) throws(NetError)
    /// The user closed the socket; release the control block. Runs once.
    func detach(_ socket: Socket)
    func bind(_ socket: Socket, to address: SocketAddress) throws(NetError)
    func listen(_ socket: Socket, backlog: Int) throws(NetError)
    /// Starts (and for a synchronous protocol finishes) a connection.
    func connect(_ socket: Socket, to address: SocketAddress) throws(NetError)
    /// Joins two fresh sockets to each other (socketpair).
    func connectPair(_ first: Socket, _ second: Socket) throws(NetError)
    /// A child was taken off the complete queue by accept.
    func accept(_ child: Socket) throws(NetError)
    func disconnect(_ socket: Socket) throws(NetError)
    /// The send side was shut down (cantSendMore is set already).
    func shutdownSend(_ socket: Socket)
    /// The receive side was shut down (cantReceiveMore is set and the buffer flushed).
    func shutdownReceive(_ socket: Socket)
    func send(_ socket: Socket, _ bytes: UnsafeRawBufferPointer, to address: SocketAddress?) throws(NetError)
        -> SendProgress
    /// The user removed `count` bytes from the receive buffer (window update, writer wake-up).
    func received(_ socket: Socket, count: Int)
    /// Ends a connection at once (a queued child of a closing listen socket).
    func abort(_ socket: Socket)
    func localAddress(_ socket: Socket) -> SocketAddress
    func peerAddress(_ socket: Socket) throws(NetError) -> SocketAddress
    /// The user side changed state bits; reconcile (the *checkstate* message).
    func checkState(_ socket: Socket)
    /// Whether a write could make progress now (for readiness).
    func isWritable(_ socket: Socket) -> Bool
    /// True when the protocol keeps its control blocks under its own locks (a synchronous
    /// port), so a request may still run on the caller once the owner thread has stopped.
    var runsUnderItsOwnLocks: Bool { get }
    /// False when `accept` has nothing to do (the child is complete once queued): accept then
    /// takes it without a round trip to its owner.
    var acceptRunsOnOwner: Bool { get }
    /// The devices a thread waiting on one of this protocol's sockets polls while it spins
    /// (nil: none, the waiter only watches its socket).
    var busyPolling: (any BusyPolling)? { get }
    /// Whether `busyPolling` has devices: read by every socket wait before it spins, without
    /// the retain of the shared poller that fetching it costs.
    var mayBusyPoll: Bool { get }
}

extension SocketProtocol {
    /// Thread-owned protocols: their control blocks are touched only on the owner.
    package var runsUnderItsOwnLocks: Bool { false }
    package var acceptRunsOnOwner: Bool { true }
    package var busyPolling: (any BusyPolling)? { nil }
    package var mayBusyPoll: Bool { false }
}
