import CNetMP
import NetMPRuntime
import Synchronization

/// A socket (DragonFly's `struct socket`): the object user threads and protocol threads share.
///
/// User threads may touch only the state bits (atomically), the error slot (atomically) and the
/// two buffers (under each buffer's lock). The protocol control block belongs to the owner:
/// every protocol request is a message to `owner`.
package final class Socket: @unchecked Sendable {
    package let domain: SocketDomain
    package let type: SocketType
    package let registry: SocketRegistry
    package let proto: any SocketProtocol
    package let owner: any MessagePort
    package let state = AtomicSocketState()
    /// The pending error (so_error), 0 when none.
    let errorSlot = Atomic<Int32>(0)
    package let receiveBuffer: SocketBuffer
    package let sendBuffer: SocketBuffer
    /// A stream socket's listen queues, made by its first listen (most stream sockets never
    /// listen); close installs the shared closed queue when there is none, so a listen that races
    /// the close finds its queue closed.
    private let listenQueueReference = OnceReference<ListenQueue>()
    package let nonBlocking = Atomic<Bool>(false)
    /// The protocol's control block: touched only by the owner (or, for a synchronous port,
    /// under the protocol's own locks).
    package var controlBlock: AnyObject? {
        get { storedControlBlock }
        set { storedControlBlock = newValue }
    }
    /// The control block without a retain, for a caller that holds the socket: a block is set
    /// before the socket is shared and never replaced, so the socket keeps it alive (a retain
    /// here was an atomic on the block's header, which its owner thread writes).
    package var unretainedControlBlock: Unmanaged<AnyObject>? {
        guard let block = storedControlBlock else { return nil }
        return Unmanaged.passUnretained(block)
    }
    /// Reached only through `controlBlock`, whose accessors are compiled here: another module
    /// touching a class's stored property checks exclusivity at run time (the attribute does not
    /// reach it), which cost more than the rest of a protocol's lookup of its block.
    @exclusivity(unchecked) private nonisolated(unsafe) var storedControlBlock: AnyObject?
    private let closeStarted = Atomic<Bool>(false)
    /// Calls of this socket blocked on another socket's buffer (a local sender waiting for room
    /// in its peer's receive buffer), so that close() can end them too.
    /// Made by the first such wait (only local sockets have them); close installs the shared
    /// ended list when there is none, so a wait that races the close ends at once.
    private let foreignWaitsReference = OnceReference<ForeignWaits>()
    /// A test hook: runs once, on the caller, just before the next protocol request is sent to
    /// the owner (after the user-side checks), so a test can put a close exactly there.
    @exclusivity(unchecked) package nonisolated(unsafe) var beforeNextRequest: (@Sendable () -> Void)?
    /// A test hook: told the deadline of every blocking wait, before it starts.
    @exclusivity(unchecked) package nonisolated(unsafe) var observeWaitDeadline: (@Sendable (Int64) -> Void)?

    package init(
        domain: SocketDomain, type: SocketType, registry: SocketRegistry, proto: any SocketProtocol,
        owner: any MessagePort, receiveSize: Int, sendSize: Int, keepsTailRoom: Bool = false
    ) {
        self.domain = domain
        self.type = type
        self.registry = registry
        self.proto = proto
        self.owner = owner
        let datagrams = type == .datagram
        receiveBuffer = SocketBuffer(
            registry: registry, highWater: receiveSize, holdsDatagrams: datagrams, keepsTailRoom: keepsTailRoom)
        sendBuffer = SocketBuffer(
            registry: registry, highWater: sendSize, holdsDatagrams: datagrams)
        registry.liveSockets.add(1, ordering: .relaxed)
        registry.register(self)
    }

    deinit {
        registry.unregister(ObjectIdentifier(self))
        registry.liveSockets.subtract(1, ordering: .relaxed)
    }

    /// The listen queues, once the socket has listened (or closed).
    package var listenQueue: ListenQueue? { listenQueueReference.load() }

    private func madeListenQueue() -> ListenQueue {
        listenQueueReference.load() ?? listenQueueReference.storeIfNil(ListenQueue())
    }

    /// The readiness observers (poller registrations), nil until the first registration.
    package var observers: ReadinessObservers? { receiveBuffer.observers }

    /// The readiness observers, made by the first call and installed in both buffers (the same
    /// list in each, whichever of two racing callers installs it first).
    package func madeObservers() -> ReadinessObservers {
        if let observers = sendBuffer.observers { return observers }
        if !registry.observersMade.load(ordering: .sequentiallyConsistent) {
            registry.observersMade.store(true, ordering: .sequentiallyConsistent)
        }
        let installed = receiveBuffer.installObservers(ReadinessObservers())
        return sendBuffer.installObservers(installed)
    }

    /// This socket's waits on other sockets' buffers (see `foreignWaitsReference`).
    var foreignWaits: ForeignWaits? { foreignWaitsReference.load() }

    private func madeForeignWaits() -> ForeignWaits {
        foreignWaitsReference.load() ?? foreignWaitsReference.storeIfNil(ForeignWaits())
    }

    // MARK: Error slot

    package func setError(_ error: NetError) { errorSlot.store(error.rawValue, ordering: .sequentiallyConsistent) }

    package var hasError: Bool { errorSlot.load(ordering: .sequentiallyConsistent) != 0 }

    /// Takes the pending error, clearing it (as reading SO_ERROR does).
    package func takeError() -> NetError? {
        let raw = errorSlot.exchange(0, ordering: .sequentiallyConsistent)
        return raw == 0 ? nil : NetError(rawValue: raw)
    }

    @inline(__always) package func checkOpen() throws(NetError) {
        if state.contains(.noFileReference) { throw .badDescriptor }
        if registry.isShutDown.load(ordering: .relaxed) { throw .shutdown }
    }

    @inline(__always) package func mayWait(_ flags: MessageFlags) -> Bool {
        !flags.contains(.dontWait) && !nonBlocking.load(ordering: .relaxed)
    }

    // MARK: Conditions

    /// Whether a wait condition holds now. Called under the lock of the buffer the waiter is
    /// registered on, so a change made under that lock (or before its wake-up) is never missed.
    func isSatisfied(_ condition: WaitCondition) -> Bool {
        let now = state.value
        if now.contains(.noFileReference) || hasError { return true }
        if registry.isShutDown.load(ordering: .sequentiallyConsistent) { return true }
        switch condition {
        case .readable(let minimum):
            if now.contains(.cantReceiveMore) { return true }
            if type == .datagram { return receiveBuffer.recordCount.load(ordering: .sequentiallyConsistent) > 0 }
            let limit = Swift.max(1, receiveBuffer.highWater.load(ordering: .relaxed))
            return receiveBuffer.byteCount.load(ordering: .sequentiallyConsistent) >= Swift.min(minimum, limit)
        case .protocolDefined(let predicate):
            return predicate.isSatisfied(for: self, state: now)
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

    /// Whether the calling thread may block in a socket wait: not a protocol thread, which
    /// would stall every socket it owns (and could wait on itself).
    package static var mayBlockCallingThread: Bool { ProtocolThread.current == nil }

    /// `callDeadline(sendBuffer)` and `callDeadline(receiveBuffer)`, for callers in other
    /// modules, which retained the buffer to pass it.
    package var sendCallDeadline: Int64 { callDeadline(sendBuffer) }
    package var receiveCallDeadline: Int64 { callDeadline(receiveBuffer) }

    /// The deadline of a call that waits on `buffer`: its SO_RCVTIMEO / SO_SNDTIMEO from now,
    /// or 0 (none). Taken once per call, so the timeout bounds the whole call, not each wait.
    package func callDeadline(_ buffer: SocketBuffer) -> Int64 {
        let timeout = buffer.timeout.load(ordering: .relaxed)
        return timeout > 0 ? MonotonicTime.deadline(after: timeout) : 0
    }

    /// Blocks the calling thread until `condition` holds on `buffer` or `deadline` (monotonic
    /// ns, 0 = none; see `callDeadline`) passes (then `.wouldBlock`, as SO_RCVTIMEO does).
    package func wait(for condition: WaitCondition, on buffer: SocketBuffer, deadline: Int64) throws(NetError) {
        precondition(Socket.mayBlockCallingThread, "a protocol thread must not block in a socket call")
        if registry.isShutDown.load(ordering: .sequentiallyConsistent) { throw .shutdown }
        observeWaitDeadline?(deadline)
        let start = netmp_monotonic_ns()
        if deadline > 0 && start >= deadline { throw .wouldBlock }
        ProtocolThread.callerWaited()
        let driven = owner.isDriven
        // Spin, then yield, before posting a waiter (not in the driven mode, where nothing else
        // runs meanwhile); the budget adapts to how this wait ends (`SpinCalibration.adaptedBudget`).
        let calibration = SpinCalibration.current
        let budget = buffer.spinBudget.load(ordering: .relaxed)
        if !driven {
            // Never spin past the call's deadline (SO_RCVTIMEO / SO_SNDTIMEO).
            let spin = deadline > 0 ? Swift.min(budget, deadline &- start) : budget
            let ended: SpinOutcome?
            if proto.mayBusyPoll, let devices = proto.busyPolling {
                // Each check that finds nothing reads the devices once; what they deliver may be
                // this wait's answer, so the condition is checked again after a delivery.
                let begun = devices.beginBusyPoll()
                ended = buffer.waitBriefly(spinning: spin, from: start) {
                    isSatisfied(condition) || (devices.busyPoll() && isSatisfied(condition))
                }
                devices.endBusyPoll(blocking: ended == nil, begun: begun)
            } else {
                ended = buffer.waitBriefly(spinning: spin, from: start) { isSatisfied(condition) }
            }
            if let ended {
                let next = SpinCalibration.adaptedBudget(budget, after: ended, within: calibration.waiterBounds)
                if next != budget { buffer.spinBudget.store(next, ordering: .relaxed) }
                return
            }
        }
        var waiter = SocketWaiter.forThreadWait(socket: self, buffer: buffer, condition: condition)
        // On every way out, thrown ones too: a spare must not keep this socket alive.
        defer { SocketWaiter.returnToThread(&waiter) }
        // A wait on another socket's buffer is also listed here, so that close() can end it
        // (such a waiter is then still held when the wait ends, and is not kept for reuse).
        let foreignWaits = isForeign(buffer) ? madeForeignWaits() : nil
        foreignWaits?.add(waiter, closed: state.contains(.noFileReference))
        defer { foreignWaits?.remove(waiter) }
        guard owner.post(waiter) else { throw .shutdown }
        if driven {
            // The deterministic mode runs only when stepped: a wait cannot block, it can only
            // find the condition true now.
            owner.runUntilIdle()
            if waiter.cancel(.timedOut) { throw .wouldBlock }
        }
        var firstPark = NETMP_PARK_TIMED_OUT
        let outcome = waiter.waitOnThread(deadline: deadline, firstPark: &firstPark)
        if !driven {
            // Satisfied before it slept: the partner came just after the spin and yields.
            let ended: SpinOutcome? =
                firstPark >= 0
                ? .caught(afterNanoseconds: netmp_monotonic_ns() &- start)
                : firstPark == NETMP_PARK_SLEPT ? .slept : nil
            if let ended {
                buffer.spinBudget.store(
                    SpinCalibration.adaptedBudget(budget, after: ended, within: calibration.waiterBounds),
                    ordering: .relaxed)
            }
        }
        try outcome.check()
    }

    /// Whether `buffer` belongs to another socket (close() must then end the wait itself).
    @inline(__always) private func isForeign(_ buffer: SocketBuffer) -> Bool {
        buffer !== receiveBuffer && buffer !== sendBuffer
    }

    /// Suspends the calling task until `condition` holds; task cancellation ends it.
    package func waitAsync(for condition: WaitCondition, on buffer: SocketBuffer) async throws(NetError) {
        if registry.isShutDown.load(ordering: .sequentiallyConsistent) { throw .shutdown }
        let waiter = SocketWaiter(socket: self, buffer: buffer, condition: condition)
        let owner = self.owner
        let foreignWaits = isForeign(buffer) ? madeForeignWaits() : nil
        foreignWaits?.add(waiter, closed: state.contains(.noFileReference))
        defer { foreignWaits?.remove(waiter) }
        try await waiter.waitAsync { waiter in owner.post(waiter) }.check()
    }

    // MARK: Control requests

    /// Runs a protocol request on the owner and waits for it.
    @inline(__always) package func request<T: Sendable>(_ body: @escaping @Sendable () throws(NetError) -> T)
        throws(NetError)
        -> T
    {
        if let hook = beforeNextRequest {
            beforeNextRequest = nil
            hook()
        }
        return try owner.call(body)
    }

    package func bind(to address: SocketAddress) throws(NetError) {
        try checkOpen()
        try request { [self] () throws(NetError) in try proto.bind(self, to: address) }
    }

    /// listen(2). The protocol re-checks, where it decides, that the socket is neither closed
    /// nor connected; a closed queue stays closed.
    package func listen(backlog: Int) throws(NetError) {
        try checkOpen()
        guard type == .stream else { throw .notSupported }
        if state.containsAny([.connected, .connecting]) { throw .invalidArgument }
        madeListenQueue().setBacklog(backlog)
        try request { [self] () throws(NetError) in try proto.listen(self, backlog: backlog) }
    }

    /// shutdown(2).
    package func shutdown(_ how: ShutdownHow) throws(NetError) {
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
    package func close() {
        guard !closeStarted.exchange(true, ordering: .sequentiallyConsistent) else { return }
        state.set(.noFileReference)
        receiveBuffer.wakeAll()
        sendBuffer.wakeAll()
        let waits = foreignWaitsReference.storeIfNil(ForeignWaits.ended)
        if waits !== ForeignWaits.ended { waits.endAll() }
        if type == .stream, case let queue = listenQueueReference.storeIfNil(ListenQueue.closed),
            queue !== ListenQueue.closed
        {
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
        observers?.removeAll()
    }

    /// Runs a request that returns nothing: waits for it from a user thread, posts it from a
    /// protocol thread (which must never wait on another). When the owner no longer runs (the
    /// stack shut down), a protocol that keeps its state under its own locks runs it here, so
    /// that a close still frees names and links.
    func requestWithoutResult(_ body: @escaping @Sendable () -> Void) {
        if let current = ProtocolThread.current, current !== owner {
            if !owner.send(body) && proto.runsUnderItsOwnLocks { body() }
            return
        }
        do {
            try owner.call { () throws(NetError) in body() }
        } catch {
            // `call` fails only when the message could not be queued: the body did not run.
            if proto.runsUnderItsOwnLocks { body() }
        }
    }

    package var localAddress: SocketAddress { proto.localAddress(self) }

    package func peerAddress() throws(NetError) -> SocketAddress { try proto.peerAddress(self) }
}

/// The monotonic clock user-side timeouts use.
package enum MonotonicTime {
    @inline(__always) package static var now: Int64 { SystemClock.monotonicNanoseconds }

    /// `now + nanoseconds`, or 0 (no deadline: wait forever) when that does not fit.
    package static func deadline(after nanoseconds: Int64) -> Int64 {
        let (sum, overflow) = now.addingReportingOverflow(Swift.max(0, nanoseconds))
        return overflow ? 0 : sum
    }
}
