import NetMPInet
import NetMPRuntime
import NetMPSockets
import NetMPWire
import Synchronization

/// One TCP socket's control block. The connection value, addresses, tables and timer belong to
/// the owner thread (`home`); the atomics and `names` are what user threads may touch.
package final class TCPControlBlock: @unchecked Sendable {
    unowned(unsafe) let socket: Socket
    unowned let tcp: TCPProtocol
    let port: TCPOwnerPort
    /// The socket's buffers, reached without a retain through `withReceiveBuffer` and
    /// `withSendBuffer` on the per-segment paths: they live as long as `socket`. A retained
    /// reference cost an atomic on a header that the reader's CPU and the sender's both write.
    private let receiveBufferReference: Unmanaged<SocketBuffer>
    private let sendBufferReference: Unmanaged<SocketBuffer>

    // MARK: Owner-thread state
    // (Unchecked exclusivity: only the owner touches these, and `connection` is changed in place
    // by the state machine alone, so no access overlaps another.)

    /// The owner thread's TCP state (changed by connect's migration, before the move is queued).
    var home: TCPThread {
        get { homeReference.takeUnretainedValue() }
        set { homeReference = Unmanaged.passUnretained(newValue) }
    }
    /// `home` unretained: the protocol holds every thread for as long as its blocks exist, and a
    /// retain per message was an atomic on a header every CPU dispatching to that thread writes.
    @exclusivity(unchecked) private var homeReference: Unmanaged<TCPThread>

    @inline(__always) func withHome<Result>(_ body: (TCPThread) -> Result) -> Result {
        homeReference._withUnsafeGuaranteedRef(body)
    }
    @exclusivity(unchecked) var connection: TCPConnection<ByteSlice>?
    /// Whether a connection lives here, found by an in-place access: `connection != nil` (or a
    /// match on its case) copied the whole value first, several hundred instructions a close.
    var hasConnection: Bool { connection?.accessInPlace() != nil }
    @exclusivity(unchecked) var key: TCPConnectionKey?
    var localAddress = IPv4Address.unspecified
    var localPort: UInt16 = 0
    var remoteAddress = IPv4Address.unspecified
    var remotePort: UInt16 = 0
    @exclusivity(unchecked) var hop: NextHop?
    /// Holds a binding in the shared port table (bind, listen).
    var isBound = false
    var listener: TCPListenState?
    /// The listener this child is queued on until its handshake completes.
    var parent: TCPListenState?
    /// Keeps the socket alive while its connection lives, so a closed socket still finishes its
    /// close and a child waits on its listen queue (released when the connection ends).
    var hold: Socket?
    /// The user closed the socket: what is still to send lives in `detachedQueue` now.
    @exclusivity(unchecked) var detached = false
    @exclusivity(unchecked) var detachedQueue = BufferChain()
    @exclusivity(unchecked) var callout: Callout?
    /// `sendFinished` has been set (owner only: the event path checks this plain flag).
    @exclusivity(unchecked) var sendFinishedPublished = false
    /// Traffic of this connection for `TCPInfo`: segments in and out, data bytes acknowledged by the
    /// peer and delivered to the receive buffer.
    @exclusivity(unchecked) var segmentsIn = 0
    @exclusivity(unchecked) var segmentsOut = 0
    @exclusivity(unchecked) var bytesAcknowledged = 0
    @exclusivity(unchecked) var bytesReceived = 0
    /// Receive-buffer auto-tuning's measurement (see `TCPThread.autoTuneReceiveBuffer`).
    @exclusivity(unchecked) var autoTuning = TCPBufferAutoTuning()

    // MARK: Shared

    /// getsockname/getpeername from any thread: written by the owner (bind, connect, accept),
    /// read by anyone, under the receive buffer's lock (a moment's hold, and no lock of its own
    /// per socket).
    @exclusivity(unchecked) private var storedNames: (local: SocketAddress, peer: SocketAddress?) = (
        .ipv4(.unspecified, port: 0), nil
    )
    /// Bytes appended to the send buffer that the connection has not been told of.
    let unsentAppended = Atomic<Int>(0)
    /// Bytes the user read that the connection has not been told of.
    let unreportedReads = Atomic<Int>(0)
    /// Reads (beyond those reported) worth a *rcvd* message: set by the owner after each event to
    /// what would make a window update (`TCPConnection.readsBeforeWindowUpdate`); before the
    /// connection exists, 2 MSS or half the buffer.
    let windowUpdateThreshold = Atomic<Int>(2 * 1460)
    let outputPending = Atomic<Bool>(false)
    let receivedPending = Atomic<Bool>(false)
    /// The peer acknowledged our FIN (and so every byte before it), or the connection ended:
    /// what a lingering close waits for. The owner sets it, then wakes the send buffer.
    package let sendFinished = Atomic<Bool>(false)
    package let options = TCPSocketOptions()
    private(set) var outputMessage: TCPBlockMessage?
    private(set) var receivedMessage: TCPBlockMessage?
    /// The two messages as posted, unretained (the block holds them): loading one to post it
    /// cost a retain and a release per write and per window update.
    private(set) var output: Unmanaged<TCPBlockMessage>?
    private(set) var received: Unmanaged<TCPBlockMessage>?

    init(socket: Socket, tcp: TCPProtocol, port: TCPOwnerPort, home: TCPThread) {
        self.socket = socket
        self.tcp = tcp
        self.port = port
        homeReference = Unmanaged.passUnretained(home)
        receiveBufferReference = Unmanaged.passUnretained(socket.receiveBuffer)
        sendBufferReference = Unmanaged.passUnretained(socket.sendBuffer)
        let outputMessage = TCPBlockMessage(block: self, kind: .output)
        let receivedMessage = TCPBlockMessage(block: self, kind: .received)
        self.outputMessage = outputMessage
        self.receivedMessage = receivedMessage
        output = Unmanaged.passUnretained(outputMessage)
        received = Unmanaged.passUnretained(receivedMessage)
    }

    /// `socket` as a guaranteed reference: reading the unowned(unsafe) field into a strong one
    /// retains it.
    @inline(__always) func withSocket<Result>(_ body: (Socket) -> Result) -> Result {
        Unmanaged.passUnretained(socket)._withUnsafeGuaranteedRef(body)
    }

    @inline(__always) func withReceiveBuffer<Result>(_ body: (SocketBuffer) -> Result) -> Result {
        receiveBufferReference._withUnsafeGuaranteedRef(body)
    }

    @inline(__always) func withSendBuffer<Result>(_ body: (SocketBuffer) -> Result) -> Result {
        sendBufferReference._withUnsafeGuaranteedRef(body)
    }

    func publishNames() {
        let local = SocketAddress.ipv4(localAddress, port: localPort)
        let peer = remotePort == 0 ? nil : SocketAddress.ipv4(remoteAddress, port: remotePort)
        let lock = socket.receiveBuffer.lock
        lock.withLock { storedNames = (local, peer) }
    }

    /// The local and peer addresses last published.
    var names: (local: SocketAddress, peer: SocketAddress?) {
        socket.receiveBuffer.lock.withLock { storedNames }
    }

    /// Posts `message` to the owner unless `pending` says it is queued already (the coalesced
    /// embedded messages): run here as the owner when it is idle (not when `queued`), else
    /// queued holding one reference on the socket for it.
    func postOnce(_ message: Unmanaged<TCPBlockMessage>?, pending: borrowing Atomic<Bool>, queued: Bool = false) {
        guard let message, !pending.exchange(true, ordering: .sequentiallyConsistent) else { return }
        // Run here as the owner, the caller's own reference keeps the socket: no hold to take.
        if !queued && message._withUnsafeGuaranteedRef({ port.dispatch($0) }) { return }
        let held = Unmanaged.passUnretained(socket).retain()
        if !port.postQueued(message.takeUnretainedValue()) {
            pending.store(false, ordering: .sequentiallyConsistent)
            held.release()
        }
    }
}

/// The options a user sets on a TCP socket, read by the owner when it makes the connection.
package final class TCPSocketOptions: Sendable {
    package let noDelay = Atomic<Bool>(false)
    package let keepAlive = Atomic<Bool>(false)
    package let reuseAddress = Atomic<Bool>(false)
    /// SO_LINGER in nanoseconds; negative when off. Zero makes close send a RST.
    package let linger = Atomic<Int64>(-1)
    /// TCP_MAXSEG: the largest MSS announced and used; 0 follows the route's MTU.
    package let maximumSegment = Atomic<Int>(0)
    /// TCP_KEEPIDLE and TCP_KEEPINTVL in nanoseconds, TCP_KEEPCNT; 0 takes the stack's setting.
    package let keepAliveIdle = Atomic<Int64>(0)
    package let keepAliveInterval = Atomic<Int64>(0)
    package let keepAliveCount = Atomic<Int>(0)
    /// TCP_USER_TIMEOUT in nanoseconds; negative takes the stack's setting.
    package let userTimeout = Atomic<Int64>(-1)
    /// TCP_CONGESTION: a `TCPCongestionAlgorithm` raw value, the stack's default until set.
    package let congestionControl = Atomic<Int>(TCPCongestionAlgorithm.cubic.rawValue)
    /// Ask for (and accept) ECN on this socket's connections (RFC 3168).
    package let explicitCongestionNotification = Atomic<Bool>(false)
    /// How far auto-tuning may grow this socket's receive and send buffers; 0 takes the stack's
    /// limits (`maximumReceiveBufferSize`, `maximumSendBufferSize`).
    package let receiveBufferLimit = Atomic<Int>(0)
    package let sendBufferLimit = Atomic<Int>(0)

    init() {}

    /// `settings` with this socket's auto-tuning limits (after `receiveBufferSize` is set): a
    /// receive buffer the user sized stays that size, and the window scale is chosen for it.
    func applyBufferLimits(to settings: inout TCPConfiguration, socket: Socket) {
        let receive = receiveBufferLimit.load(ordering: .relaxed)
        if receive > 0 { settings.maximumReceiveBufferSize = receive }
        let send = sendBufferLimit.load(ordering: .relaxed)
        if send > 0 { settings.maximumSendBufferSize = send }
        if socket.receiveBuffer.sizeSetByUser.load(ordering: .relaxed) {
            settings.maximumReceiveBufferSize = settings.receiveBufferSize
        }
    }

    func inherit(from other: TCPSocketOptions) {
        noDelay.store(other.noDelay.load(ordering: .relaxed), ordering: .relaxed)
        keepAlive.store(other.keepAlive.load(ordering: .relaxed), ordering: .relaxed)
        reuseAddress.store(other.reuseAddress.load(ordering: .relaxed), ordering: .relaxed)
        linger.store(other.linger.load(ordering: .relaxed), ordering: .relaxed)
        maximumSegment.store(other.maximumSegment.load(ordering: .relaxed), ordering: .relaxed)
        keepAliveIdle.store(other.keepAliveIdle.load(ordering: .relaxed), ordering: .relaxed)
        keepAliveInterval.store(other.keepAliveInterval.load(ordering: .relaxed), ordering: .relaxed)
        keepAliveCount.store(other.keepAliveCount.load(ordering: .relaxed), ordering: .relaxed)
        userTimeout.store(other.userTimeout.load(ordering: .relaxed), ordering: .relaxed)
        congestionControl.store(other.congestionControl.load(ordering: .relaxed), ordering: .relaxed)
        explicitCongestionNotification.store(
            other.explicitCongestionNotification.load(ordering: .relaxed), ordering: .relaxed)
        receiveBufferLimit.store(other.receiveBufferLimit.load(ordering: .relaxed), ordering: .relaxed)
        sendBufferLimit.store(other.sendBufferLimit.load(ordering: .relaxed), ordering: .relaxed)
    }

    /// `settings` with this socket's keep-alive and user timeout choices applied.
    package func applyTimers(to settings: inout TCPConfiguration) {
        settings.keepAlive = keepAlive.load(ordering: .relaxed)
        let idle = keepAliveIdle.load(ordering: .relaxed)
        if idle > 0 { settings.keepAliveIdle = idle }
        let interval = keepAliveInterval.load(ordering: .relaxed)
        if interval > 0 { settings.keepAliveInterval = interval }
        let count = keepAliveCount.load(ordering: .relaxed)
        if count > 0 { settings.keepAliveCount = count }
        let timeout = userTimeout.load(ordering: .relaxed)
        if timeout >= 0 { settings.userTimeout = timeout }
    }
}

/// A control block's embedded *output* or *rcvd* message: posting it allocates nothing, and each
/// queued post holds one reference on the socket, dropped when it has run.
final class TCPBlockMessage: EmbeddedMessage, @unchecked Sendable {
    enum Kind {
        case output, received
    }

    /// Unretained: the block holds its messages (a retain per post was atomics on its header).
    private let blockReference: Unmanaged<TCPControlBlock>
    let kind: Kind

    init(block: TCPControlBlock, kind: Kind) {
        blockReference = Unmanaged.passUnretained(block)
        self.kind = kind
    }

    var block: TCPControlBlock { blockReference.takeUnretainedValue() }

    /// Run from the owner's queue: drops the hold `postOnce` took on the socket. The block is
    /// reached unretained, as in `run`: the hold keeps the socket and so the block (a strong
    /// reference was a retain and a release per message).
    func handle() {
        let (held, isOwner) = blockReference._withUnsafeGuaranteedRef { block in
            (Unmanaged.passUnretained(block.socket), block.port.isOwnerCurrent)
        }
        guard isOwner else {
            follow(held)
            return
        }
        run()
        held.release()
    }

    /// Queued before connect moved the block: the message follows it (after the migrating one).
    /// The block by a strong reference: once posted, the message may run and drop the hold.
    @inline(never) private func follow(_ held: Unmanaged<Socket>) {
        let block = self.block
        if !block.port.post(self) { held.release() }
    }

    /// Runs as the owner (queued, or dispatched by the caller, who keeps the socket alive).
    func run() {
        blockReference._withUnsafeGuaranteedRef { block in
            switch kind {
            case .output:
                block.outputPending.store(false, ordering: .sequentiallyConsistent)
            case .received:
                // Re-armed before it runs: a read after this point posts again.
                block.receivedPending.store(false, ordering: .sequentiallyConsistent)
            }
            block.withHome { $0.userDataChanged(block) }
        }
    }
}

extension TCPConnection {
    /// Does nothing, through a mutating (in-place) access: what `hasConnection` needs to learn
    /// whether the optional holds a value without copying it.
    fileprivate mutating func accessInPlace() {}
}
