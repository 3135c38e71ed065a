import CNetMP
import Synchronization

/// A socket (DragonFly's `struct socket`): the object user threads and protocol threads share.
///
/// User threads may touch only the state bits (atomically), the error slot (atomically) and the
/// two buffers (under each buffer's lock). The protocol control block belongs to the owner:
/// every protocol request is a message to `owner`.
final class Socket: @unchecked Sendable {
    let domain: SocketDomain
    let type: SocketType
    let context: StackContext
    let proto: any SocketProtocol
    let owner: any MessagePort
    let state = AtomicSocketState()
    /// The pending error (so_error), 0 when none.
    let errorSlot = Atomic<Int32>(0)
    let observers = ReadinessObservers()
    let receiveBuffer: SocketBuffer
    let sendBuffer: SocketBuffer
    /// Present on stream sockets; used once the socket listens.
    let listenQueue: ListenQueue?
    let nonBlocking = Atomic<Bool>(false)
    /// The protocol's control block: touched only by the owner (or, for a synchronous port,
    /// under the protocol's own locks).
    nonisolated(unsafe) var controlBlock: AnyObject?
    private let closeStarted = Atomic<Bool>(false)

    init(
        domain: SocketDomain, type: SocketType, context: StackContext, proto: any SocketProtocol,
        owner: any MessagePort, receiveSize: Int, sendSize: Int
    ) {
        self.domain = domain
        self.type = type
        self.context = context
        self.proto = proto
        self.owner = owner
        receiveBuffer = SocketBuffer(context: context, observers: observers, highWater: receiveSize)
        sendBuffer = SocketBuffer(context: context, observers: observers, highWater: sendSize)
        listenQueue = type == .stream ? ListenQueue() : nil
        context.liveSockets.add(1, ordering: .relaxed)
        context.register(self)
    }

    deinit {
        context.unregister(ObjectIdentifier(self))
        context.liveSockets.subtract(1, ordering: .relaxed)
    }

    // MARK: Error slot

    func setError(_ error: NetError) { errorSlot.store(error.rawValue, ordering: .sequentiallyConsistent) }

    var hasError: Bool { errorSlot.load(ordering: .sequentiallyConsistent) != 0 }

    /// Takes the pending error, clearing it (as reading SO_ERROR does).
    func takeError() -> NetError? {
        let raw = errorSlot.exchange(0, ordering: .sequentiallyConsistent)
        return raw == 0 ? nil : NetError(rawValue: raw)
    }

    @inline(__always) func checkOpen() throws(NetError) {
        if state.contains(.noFileReference) { throw .badDescriptor }
        if context.isShutDown.load(ordering: .relaxed) { throw .shutdown }
    }

    @inline(__always) func mayWait(_ flags: MessageFlags) -> Bool {
        !flags.contains(.dontWait) && !nonBlocking.load(ordering: .relaxed)
    }

    // MARK: Conditions

    /// Whether a wait condition holds now. Called under the lock of the buffer the waiter is
    /// registered on, so a change made under that lock (or before its wake-up) is never missed.
    func isSatisfied(_ condition: WaitCondition) -> Bool {
        let now = state.value
        if now.contains(.noFileReference) || hasError { return true }
        if context.isShutDown.load(ordering: .sequentiallyConsistent) { return true }
        switch condition {
        case .readable(let minimum):
            if now.contains(.cantReceiveMore) { return true }
            if type == .datagram { return receiveBuffer.recordCount.load(ordering: .sequentiallyConsistent) > 0 }
            let limit = Swift.max(1, receiveBuffer.highWater.load(ordering: .relaxed))
            return receiveBuffer.byteCount.load(ordering: .sequentiallyConsistent) >= Swift.min(minimum, limit)
        case .room(let target, let bytes):
            if !now.isDisjoint(with: [.cantSendMore, .disconnected]) { return true }
            if target.state.containsAny([.cantReceiveMore, .noFileReference]) { return true }
            let limit = Swift.max(1, target.receiveBuffer.highWater.load(ordering: .relaxed))
            return target.receiveBuffer.room >= Swift.min(bytes, limit)
        case .sendRoom(let bytes):
            if !now.isDisjoint(with: [.cantSendMore, .disconnected]) { return true }
            let limit = Swift.max(1, sendBuffer.highWater.load(ordering: .relaxed))
            return sendBuffer.room >= Swift.min(bytes, limit)
        case .acceptable:
            guard let queue = listenQueue, now.contains(.listening) else { return true }
            return queue.completeCount.load(ordering: .sequentiallyConsistent) > 0
        case .connected:
            return !now.contains(.connecting)
        }
    }

    // MARK: Waiting

    /// Blocks the calling thread until `condition` holds on `buffer` or the buffer's timeout
    /// runs out (then `.wouldBlock`, as SO_RCVTIMEO does).
    func wait(for condition: WaitCondition, on buffer: SocketBuffer, timeout: Int64) throws(NetError) {
        if context.isShutDown.load(ordering: .sequentiallyConsistent) { throw .shutdown }
        let deadline = timeout > 0 ? MonotonicTime.deadline(after: timeout) : 0
        if let thread = owner as? ProtocolThread, thread.mode == .driven {
            // The deterministic mode runs only when stepped: a wait cannot block, it can only
            // find the condition true now.
            let waiter = SocketWaiter(socket: self, buffer: buffer, condition: condition)
            waiter.prepareThreadWait()
            guard owner.post(waiter) else { throw .shutdown }
            thread.runUntilIdle()
            if waiter.cancel(.timedOut) { throw .wouldBlock }
            try waiter.waitOnThread(deadline: deadline).check()
            return
        }
        // Spin, then yield, before posting a waiter; the budget adapts to how this wait ends
        // (`SpinCalibration.adaptedBudget`).
        let calibration = SpinCalibration.current
        let budget = buffer.spinBudget.load(ordering: .relaxed)
        let start = netmp_monotonic_ns()
        // Never spin past a timeout (SO_RCVTIMEO / SO_SNDTIMEO).
        let spin = timeout > 0 ? Swift.min(budget, timeout) : budget
        if let ended = buffer.waitBriefly(spinning: spin, until: { isSatisfied(condition) }) {
            let next = SpinCalibration.adaptedBudget(budget, after: ended, within: calibration.waiterBounds)
            // Stored only when changed: the line is shared with the writer's byte count.
            if next != budget { buffer.spinBudget.store(next, ordering: .relaxed) }
            return
        }
        let waiter = SocketWaiter(socket: self, buffer: buffer, condition: condition)
        waiter.prepareThreadWait()
        guard owner.post(waiter) else { throw .shutdown }
        var firstPark = NETMP_PARK_TIMED_OUT
        let outcome = waiter.waitOnThread(deadline: deadline, firstPark: &firstPark)
        // Satisfied before it slept: the partner came just after the spin and yields.
        let ended: SpinOutcome? =
            firstPark >= 0
            ? .caught(afterNanoseconds: netmp_monotonic_ns() &- start) : firstPark == NETMP_PARK_SLEPT ? .slept : nil
        if let ended {
            buffer.spinBudget.store(
                SpinCalibration.adaptedBudget(budget, after: ended, within: calibration.waiterBounds),
                ordering: .relaxed)
        }
        try outcome.check()
    }

    /// Suspends the calling task until `condition` holds; task cancellation ends it.
    func waitAsync(for condition: WaitCondition, on buffer: SocketBuffer) async throws(NetError) {
        if context.isShutDown.load(ordering: .sequentiallyConsistent) { throw .shutdown }
        let waiter = SocketWaiter(socket: self, buffer: buffer, condition: condition)
        let owner = self.owner
        try await waiter.waitAsync { waiter in owner.post(waiter) }.check()
    }

    // MARK: Control requests

    /// Runs a protocol request on the owner and waits for it.
    @inline(__always) func request<T: Sendable>(_ body: @escaping @Sendable () throws(NetError) -> T) throws(NetError)
        -> T
    {
        try owner.call(body)
    }

    func bind(to address: SocketAddress) throws(NetError) {
        try checkOpen()
        try request { [self] () throws(NetError) in try proto.bind(self, to: address) }
    }

    func listen(backlog: Int) throws(NetError) {
        try checkOpen()
        guard let queue = listenQueue else { throw .notSupported }
        if state.containsAny([.connected, .connecting]) { throw .invalidArgument }
        queue.setBacklog(backlog)
        try request { [self] () throws(NetError) in try proto.listen(self, backlog: backlog) }
    }

    /// shutdown(2).
    func shutdown(_ how: ShutdownHow) throws(NetError) {
        try checkOpen()
        if type == .stream && !state.containsAny([.connected, .disconnected, .connecting]) { throw .notConnected }
        if how != .write {
            state.set(.cantReceiveMore)
            receiveBuffer.flush()
            receiveBuffer.wake()
            // checkstate: the protocol reconciles with the bit the user side set.
            owner.send { [self] in proto.shutdownReceive(self) }
        }
        if how != .read {
            state.set(.cantSendMore)
            try request { [self] () throws(NetError) in proto.shutdownSend(self) }
            sendBuffer.wake()
        }
    }

    /// close(2): drops the file reference. The protocol detaches; a listen socket's queued,
    /// unaccepted children are aborted; every blocked call on the socket ends.
    func close() {
        guard !closeStarted.exchange(true, ordering: .sequentiallyConsistent) else { return }
        state.set(.noFileReference)
        receiveBuffer.wakeAll()
        sendBuffer.wakeAll()
        if let queue = listenQueue {
            for child in queue.close() {
                child.state.set(.noFileReference)
                child.requestWithoutResult { child.proto.abort(child) }
                child.receiveBuffer.wakeAll()
                child.sendBuffer.wakeAll()
            }
        }
        requestWithoutResult { [self] in proto.detach(self) }
        receiveBuffer.flush()
        sendBuffer.flush()
        observers.removeAll()
    }

    /// Runs a request that returns nothing: waits for it from a user thread, posts it from a
    /// protocol thread (which must never wait on another).
    func requestWithoutResult(_ body: @escaping @Sendable () -> Void) {
        if let current = ProtocolThread.current, current !== owner {
            owner.send(body)
        } else {
            _ = try? owner.call { () throws(NetError) in body() }
        }
    }

    var localAddress: SocketAddress { proto.localAddress(self) }

    func peerAddress() throws(NetError) -> SocketAddress { try proto.peerAddress(self) }
}

/// The monotonic clock user-side timeouts use.
enum MonotonicTime {
    @inline(__always) static var now: Int64 { SystemClock.monotonicNanoseconds }

    /// `now + nanoseconds`, or 0 (no deadline: wait forever) when that does not fit.
    static func deadline(after nanoseconds: Int64) -> Int64 {
        let (sum, overflow) = now.addingReportingOverflow(Swift.max(0, nanoseconds))
        return overflow ? 0 : sum
    }
}
