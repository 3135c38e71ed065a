import CNetMP
import Synchronization

/// A message a protocol thread handles that is embedded in a long-lived object (a socket's
/// coalesced *rcvd* or *output* message), so that posting it allocates nothing.
public protocol EmbeddedMessage: AnyObject, Sendable {
    /// Runs on the protocol thread.
    func handle()
}

package enum PortMessage {
    case closure(@Sendable () -> Void)
    case embedded(any EmbeddedMessage)

    @inline(__always) func run() {
        switch self {
        case .closure(let body): body()
        case .embedded(let message): message.handle()
        }
    }
}

/// A protocol thread: one OS thread with one FIFO multi-producer message port and its timers
/// (DragonFly's netisr thread with its LWKT port). It owns the protocol control blocks that
/// hash to it and is the only thread that touches them.
///
/// It drains its whole port on each wake-up in batches of at most `batchLimit` messages,
/// spins briefly when idle, then parks; a sender wakes it only if it is parked, so it is woken
/// at most once per batch.
///
/// Direct dispatch (FreeBSD netisr's hybrid policy): a user thread whose message finds the port
/// empty and no one running as the owner takes the run token, runs the message itself as the
/// owner, then everything that message queued here (a loopback segment, a timer's work), and
/// hands the token back. The owner takes the same token for each of its turns, so one thread
/// at a time acts as the owner and the port's order holds; a parked owner stays parked unless
/// work is left over or a timer now falls due before the deadline it parked for.
public final class ProtocolThread: MessagePort, @unchecked Sendable {
    public enum Mode: Sendable {
        /// Runs on its own OS thread.
        case dedicated
        /// Runs only when the caller steps it (`runUntilIdle`), on the caller's thread: the
        /// deterministic mode.
        case driven
    }

    private static let nothing: @Sendable () -> Void = {}

    /// Waits until every message queued before this call has been handled (a no-op message
    /// sent and waited for). From a protocol thread it only posts.
    public func flush() {
        if ProtocolThread.current != nil && !isCurrent {
            send {}
            return
        }
        _ = try? call { () throws(NetError) in }
    }

    /// Messages handled between two end-of-batch points (where deferred output is flushed).
    public static let batchLimit = 32

    public let index: Int
    public let clock: any NetClock
    /// `clock` is the system's: `now` reads CLOCK_MONOTONIC itself, without the existential
    /// call that retains the one clock object every thread shares.
    private let clockIsSystem: Bool

    /// The clock's time: what the per-packet paths read.
    @inline(__always) public var now: Int64 { clockIsSystem ? SystemClock.monotonicNanoseconds : clock.nanoseconds }
    public let mode: Mode

    public var isDriven: Bool { mode == .driven }

    /// The clock as this turn began (when its due timers ran), for per-packet times that can be
    /// a batch's length old: each read of the system clock cost more than the rest of a small
    /// event's bookkeeping. Exact (`now`) in the driven mode, whose tests step the clock between
    /// calls. Only for code running as this thread.
    package var turnTime: Int64 { mode == .driven ? now : turnStart }

    // The port: written by every sender.
    private let portLock = NetLock()
    @exclusivity(unchecked) private var incoming = ContiguousArray<PortMessage>()  // under portLock
    private var isParked = false  // under portLock
    private var isStopped = false  // under portLock
    /// The run token: some thread acts as the owner now (its own OS thread or a dispatcher).
    private var tokenHeld = false  // under portLock
    /// The token is held by a direct dispatcher, which drains what is queued before it leaves.
    private var isDispatching = false  // under portLock
    /// The deadline the parked owner sleeps until (its earliest timer then), or `Int64.max`.
    private var parkedUntil = Int64.max  // under portLock
    /// The earliest timer as the last holder of the run token left it, or `Int64.max`: the
    /// owner parks on it without taking the token (a dispatcher wakes it if it arms earlier).
    private var publishedDeadline = Int64.max  // under portLock
    /// Whether user threads may run this thread's messages themselves (dedicated mode only).
    public let allowsDirectDispatch: Bool
    private let hasWork = Atomic<Bool>(false)
    private let parker: UnsafeMutablePointer<netmp_parker>
    private var osThread: OSThread?

    private let portPad = CacheLinePad()

    // Owner-thread state. Per-packet fields skip the runtime exclusivity check (as SocketBuffer's
    // do): one thread touches them and no access to one outlives the call that makes it.
    @exclusivity(unchecked) private var batch = ContiguousArray<PortMessage>()
    /// Messages posted to this thread by code already running as it (a loopback segment's
    /// frames, flushed at the end of a batch): they run once the current batch has
    /// (`runOwnPosts`), without the port's lock, a clock read or another round of the
    /// dispatcher's hand-back. Dedicated mode only: the driven mode keeps the one queue whose
    /// order its deterministic tests replay.
    @exclusivity(unchecked) private var ownPosts = ContiguousArray<PortMessage>()
    @exclusivity(unchecked) private var ownBatch = ContiguousArray<PortMessage>()
    @exclusivity(unchecked) package var timers = TimerHeap()
    @exclusivity(unchecked) private var timerSequence: UInt64 = 0
    /// The clock as the current turn's timers were run (each batch, each direct dispatch).
    @exclusivity(unchecked) private var turnStart: Int64 = 0
    /// The end-of-batch hooks as plain function and context pointers, in memory of their own: a
    /// closure called from an array cost a retain and a release of the array and of the
    /// closure's context, objects that every thread dispatching here shares. Replaced only by
    /// `addEndOfBatchHook` (at set-up, never from a hook).
    @exclusivity(unchecked) private var endOfBatchHooks = UnsafeMutableBufferPointer<EndOfBatchHook>(
        start: nil, count: 0)
    /// What keeps the closures given to `addEndOfBatchHook` alive.
    @exclusivity(unchecked) private var endOfBatchClosures: [EndOfBatchClosure] = []
    private var drivenDepth = 0

    /// How long this thread spins on its empty port before parking, in nanoseconds (adapted per
    /// idle period).
    private var idleSpinBudget = SpinPolicy.protocolThreadSpinNanoseconds

    /// Messages handled so far, and times the thread woke from a park (for statistics).
    /// Written only by the holder of the run token (`count`), read by anyone.
    public let messagesHandled = Atomic<Int>(0)
    public let parkWakeups = Atomic<Int>(0)
    /// Messages a user thread ran itself as the owner (direct dispatch).
    public let directDispatches = Atomic<Int>(0)

    /// Adds `n` to a counter only the run token's holder writes: a load and a store, not a
    /// locked add (the token's hand-over, under `portLock`, orders one holder's writes before
    /// the next holder's).
    @inline(__always) private static func count(_ n: Int, on counter: borrowing Atomic<Int>) {
        counter.store(counter.load(ordering: .relaxed) &+ n, ordering: .relaxed)
    }

    private let ownerPad = CacheLinePad()
    /// How long a thread waiting for this thread's reply spins first (adapted per wait by the
    /// callers, so on a line of its own).
    let callerSpinBudget = Atomic<Int64>(SpinPolicy.waiterMaximumSpinNanoseconds)
    private let callerPad = CacheLinePad()

    /// Whether the thread is parked (or about to park) now: lets a test make sure the next
    /// message must wake it.
    package var isParked_forTesting: Bool { portLock.withLock { isParked } }

    /// Creates a protocol thread; a dedicated one starts its OS thread now. `directDispatch`
    /// lets user threads run its messages themselves when it is idle (ignored when driven).
    public init(
        index: Int, clock: any NetClock, mode: Mode = .dedicated, pinToCPU cpu: Int? = nil,
        directDispatch: Bool = true
    ) {
        self.index = index
        self.clock = clock
        clockIsSystem = clock is SystemClock
        self.mode = mode
        allowsDirectDispatch = directDispatch && mode == .dedicated
        parker = .allocate(capacity: 1)
        netmp_parker_init(parker)
        incoming.reserveCapacity(256)
        batch.reserveCapacity(256)
        if clock.isManual {
            clock.addAdvanceObserver { [weak self] in self?.send {} }
        }
        if mode == .dedicated {
            osThread = OSThread.start(name: "netmp-proto-\(index)") { [self] in
                if let cpu { _ = netmp_pin_current_thread(Int32(cpu)) }
                self.runLoop()
            }
        }
    }

    deinit {
        parker.deallocate()
        endOfBatchHooks.deallocate()
    }

    private var contextPointer: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    /// True when the calling code runs on this protocol thread.
    public var isCurrent: Bool { netmp_current_context() == contextPointer }

    /// This thread's identity as an integer, for an owner kept in an atomic (compared with
    /// `currentIdentity`, no reference counting and no lock).
    package var identity: UInt { UInt(bitPattern: contextPointer) }

    /// The identity of the protocol thread the caller runs as (its own or a dispatcher's), 0 if none.
    package static var currentIdentity: UInt { UInt(bitPattern: netmp_current_context()) }

    /// The protocol thread the caller runs on, if any.
    package static var current: ProtocolThread? {
        guard let context = netmp_current_context() else { return nil }
        return Unmanaged<ProtocolThread>.fromOpaque(context).takeUnretainedValue()
    }

    func assertOnThread() {
        precondition(isCurrent, "protocol state touched off its owner thread")
    }

    func nextTimerSequence() -> UInt64 {
        timerSequence &+= 1
        return timerSequence
    }

    /// Registers work to run after each batch of messages (on this thread).
    public func addEndOfBatchHook(_ hook: @escaping () -> Void) {
        let closure = EndOfBatchClosure(hook)
        endOfBatchClosures.append(closure)
        addEndOfBatchHook(context: Unmanaged.passUnretained(closure).toOpaque()) { context in
            guard let context else { return }
            Unmanaged<EndOfBatchClosure>.fromOpaque(context)._withUnsafeGuaranteedRef { $0.run() }
        }
    }

    /// Registers `function`, called with `context` after each batch (on this thread), for a
    /// caller that keeps `context` alive as long as this thread runs.
    package func addEndOfBatchHook(
        context: UnsafeMutableRawPointer, _ function: @escaping @convention(c) (UnsafeMutableRawPointer?) -> Void
    ) {
        assertOnThread()
        let grown = UnsafeMutableBufferPointer<EndOfBatchHook>.allocate(capacity: endOfBatchHooks.count + 1)
        let count = grown.initialize(fromContentsOf: endOfBatchHooks)
        grown.initializeElement(at: count, to: EndOfBatchHook(function: function, context: context))
        endOfBatchHooks.deallocate()
        endOfBatchHooks = grown
    }

    // MARK: Sending

    @discardableResult
    private func enqueue(_ message: consuming PortMessage) -> Bool {
        portLock.lock()
        if isStopped {
            portLock.unlock()
            return false
        }
        incoming.append(message)
        // A dispatcher drains the port before it gives the token back: no wake, no signal.
        let mustWake = isParked && !isDispatching
        if mustWake { isParked = false }
        if !isDispatching { hasWork.store(true, ordering: .relaxed) }
        portLock.unlock()
        if mustWake { netmp_parker_unpark(parker) }
        return true
    }

    /// An asynchronous post runs on the caller only when the caller is not streaming: a thread
    /// that waited on or read from a socket since its last post, or a TAP reader back from its
    /// poll (a request and its answer, as a ping-pong's write) saves the hand-off, while one posting back to back (a bulk writer, a datagram
    /// sender) would only do the owner's work in series with its own: its posts are queued, so
    /// the owner runs them beside it (the pipeline that gives NetMP's UDP three times the
    /// kernel's rate; dispatched, it fell to 1.2 times). Synchronous calls always may dispatch:
    /// their caller waits for the answer anyway.
    @inline(__always) package func mayDispatchPost() -> Bool {
        guard allowsDirectDispatch else { return false }
        if netmp_streaming_posts() != 0 { return false }
        netmp_set_streaming_posts(1)
        return true
    }

    /// Tells the calling thread's posts that it waited or read (a socket wait or read, a device
    /// poll): its next post may run as the owner again.
    public static func callerWaited() { netmp_set_streaming_posts(0) }

    @discardableResult
    public func send(_ message: @escaping @Sendable () -> Void) -> Bool {
        if mayDispatchPost() && beginDirectDispatch() {
            message()
            endDirectDispatch()
            return true
        }
        return enqueue(.closure(message))
    }

    /// Posts an embedded message (no allocation).
    @discardableResult
    public func post(_ message: any EmbeddedMessage) -> Bool { post(consuming: message) }

    /// `post`, taking the caller's reference: queued, the message moves into the queue (a
    /// borrowed one was retained there and released by the caller).
    @discardableResult
    package func post(consuming message: consuming any EmbeddedMessage) -> Bool {
        if mode == .dedicated && isCurrent {
            ownPosts.append(.embedded(consume message))
            return true
        }
        if mayDispatchPost() && beginDirectDispatch() {
            message.handle()
            endDirectDispatch()
            return true
        }
        return enqueue(.embedded(consume message))
    }

    /// Queues `message` without running it on the caller's thread (for a caller that holds a
    /// lock the message may take).
    @discardableResult
    package func sendQueued(_ message: @escaping @Sendable () -> Void) -> Bool {
        enqueue(.closure(message))
    }

    /// Queues `message` without running it on the caller's thread.
    @discardableResult
    package func postQueued(_ message: any EmbeddedMessage) -> Bool {
        enqueue(.embedded(message))
    }

    // MARK: Direct dispatch

    /// Takes the run token for the calling user thread if the owner is idle and its port empty;
    /// the caller then runs as the owner and must call `endDirectDispatch()`. False (nothing
    /// taken) from a protocol thread, in the driven mode, or when the token is busy.
    package func beginDirectDispatch() -> Bool {
        guard allowsDirectDispatch, netmp_current_context() == nil else { return false }
        portLock.lock()
        guard !tokenHeld, !isStopped, incoming.isEmpty else {
            portLock.unlock()
            return false
        }
        tokenHeld = true
        isDispatching = true
        portLock.unlock()
        netmp_set_current_context(contextPointer)
        ProtocolThread.count(1, on: directDispatches)
        ProtocolThread.count(1, on: messagesHandled)
        // The timers due by now run first, as at the start of the owner's own turn.
        runDueTimers()
        return true
    }

    /// Runs what the dispatched work queued here (bounded), then hands the token back; wakes
    /// the parked owner only if work is left or a timer is now due before its park deadline.
    package func endDirectDispatch() {
        runEndOfBatch()
        _ = runOwnPosts()
        var rounds = 0
        var mustWake = false
        while true {
            // Still the owner here: the timers may be read.
            let earliest = timers.nextDeadline() ?? Int64.max
            portLock.lock()
            if incoming.isEmpty || rounds == ProtocolThread.dispatchRoundLimit {
                let leftOver = !incoming.isEmpty
                if leftOver { hasWork.store(true, ordering: .relaxed) }
                tokenHeld = false
                isDispatching = false
                publishedDeadline = earliest
                mustWake = isParked && (leftOver || isStopped || earliest < parkedUntil)
                if mustWake { isParked = false }
                portLock.unlock()
                break
            }
            swap(&incoming, &batch)
            portLock.unlock()
            // A round of a message or two is this request's own echo (a loopback segment, a
            // handshake step): go on. A bigger one is other senders' work queued meanwhile:
            // after it, leave the rest to the owner, which runs beside this thread.
            let ran = runBatch()
            rounds = ran > ProtocolThread.dispatchOwnWork ? ProtocolThread.dispatchRoundLimit : rounds + 1
        }
        netmp_set_current_context(nil)
        if mustWake { netmp_parker_unpark(parker) }
    }

    /// Batches a dispatcher runs at most before it leaves the rest to the owner.
    static let dispatchRoundLimit = 8
    /// The largest batch a dispatcher takes as its own request's follow-up.
    static let dispatchOwnWork = 2

    public func call<T: Sendable>(_ body: @escaping @Sendable () throws(NetError) -> T) throws(NetError) -> T {
        if isCurrent { return try body() }
        if allowsDirectDispatch && beginDirectDispatch() {
            // No Result here: in this unspecialised generic its metadata is a runtime look-up.
            do {
                let value = try body()
                endDirectDispatch()
                return value
            } catch {
                endDirectDispatch()
                throw error
            }
        }
        if mode == .driven {
            // The answer is written into this frame through a raw pointer, not kept as an
            // optional Result in a box: each of those generic types' metadata was a run-time
            // look-up here (several per call: a twentieth of a driven connection's set-up).
            return try withUnsafeTemporaryAllocation(of: T.self, capacity: 1) { slot throws(NetError) -> T in
                guard let address = slot.baseAddress else { throw .shutdown }
                let outcome = DrivenCallOutcome(UnsafeMutableRawPointer(address))
                guard
                    enqueue(
                        .closure({
                            do throws(NetError) {
                                let value = try body()
                                guard let destination = outcome.destination else { return }
                                destination.assumingMemoryBound(to: T.self).initialize(to: value)
                                outcome.finished = true
                            } catch {
                                outcome.failure = error
                            }
                        }))
                else { throw .shutdown }
                runUntilIdle()
                // A message still queued (none should be) must not write here once this returns.
                outcome.destination = nil
                if outcome.finished { return address.move() }
                throw outcome.failure ?? .shutdown
            }
        }
        precondition(
            ProtocolThread.current == nil,
            "a protocol thread must not wait synchronously on another protocol thread")
        guard let result = CallSlot.perThread.value.call(on: self, budget: callerSpinBudget, body) else {
            throw .shutdown
        }
        return try result.get()
    }

    public func callAsync<T: Sendable>(_ body: @escaping @Sendable () throws(NetError) -> T) async throws(NetError) -> T
    {
        if mode == .driven { return try call(body) }
        // The reply travels in a locked slot and the continuation resumes with no value, so the
        // hand-over is ordered by a lock ThreadSanitizer understands (the runtime's resume
        // fast path is not instrumented).
        let slot = LockedValue<Result<T, NetError>>(.failure(.shutdown))
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            let queued = enqueue(
                .closure({
                    let result = Result(catching: body)
                    slot.withLock { $0 = result }
                    continuation.resume()
                }))
            if !queued { continuation.resume() }
        }
        return try slot.withLock { $0 }.get()
    }

    // MARK: Running

    private func runDueTimers() {
        let now = self.now
        turnStart = now
        while let entry = timers.popDue(now: now) {
            entry.callout.fireIfCurrent(entry)
        }
    }

    /// Handles everything queued now; returns how many messages ran.
    private func drainPort() -> Int {
        portLock.lock()
        swap(&incoming, &batch)
        hasWork.store(false, ordering: .relaxed)
        portLock.unlock()
        return runBatch()
    }

    /// One turn of the dedicated owner holding the run token: due timers, then the port. Nil
    /// when a dispatcher holds the token (it drains the port itself).
    private func ownerTurn() -> Int? {
        portLock.lock()
        if tokenHeld {
            portLock.unlock()
            return nil
        }
        tokenHeld = true
        swap(&incoming, &batch)
        hasWork.store(false, ordering: .relaxed)
        portLock.unlock()
        runDueTimers()
        // What the timers posted to this thread, when no batch ran to take it.
        let count = runBatch() + runOwnPosts()
        let earliest = timers.nextDeadline() ?? Int64.max
        portLock.lock()
        tokenHeld = false
        publishedDeadline = earliest
        portLock.unlock()
        return count
    }

    /// Runs the messages in `batch` (taken from the port); returns how many ran.
    private func runBatch() -> Int {
        let count = batch.count
        if count == 0 { return 0 }
        // The clock is read after the batch was taken: a message queued after its sender moved
        // the clock finds the timers due by then already run (one read per batch).
        runDueTimers()
        var sinceBatchEnd = 0
        for index in batch.indices {
            // Take the message out of the batch so that what it holds (a socket reference, a
            // continuation) is released as soon as it has run.
            // Swapped out, not copied: a copy retained what it holds, and the store released it.
            var message = PortMessage.closure(ProtocolThread.nothing)
            swap(&message, &batch[index])
            message.run()
            sinceBatchEnd += 1
            if sinceBatchEnd == ProtocolThread.batchLimit {
                sinceBatchEnd = 0
                runEndOfBatch()
            }
        }
        batch.clearKeepingCapacity()
        runEndOfBatch()
        ProtocolThread.count(count, on: messagesHandled)
        return count + runOwnPosts()
    }

    /// Runs the messages this thread posted to itself (`ownPosts`), and what those post in turn,
    /// each round followed by the end-of-batch hooks. After `ownPostRounds` rounds the rest goes
    /// to the port, behind other senders' messages. Returns how many ran.
    private func runOwnPosts() -> Int {
        var ran = 0
        var rounds = 0
        while !ownPosts.isEmpty {
            if rounds == ProtocolThread.ownPostRounds {
                portLock.lock()
                incoming.append(contentsOf: ownPosts)
                ownPosts.removeAll(keepingCapacity: true)
                if !isDispatching { hasWork.store(true, ordering: .relaxed) }
                portLock.unlock()
                break
            }
            swap(&ownPosts, &ownBatch)
            for index in ownBatch.indices {
                var message = PortMessage.closure(ProtocolThread.nothing)
                swap(&message, &ownBatch[index])
                message.run()
            }
            ran += ownBatch.count
            ownBatch.clearKeepingCapacity()
            runEndOfBatch()
            rounds += 1
        }
        if ran > 0 { ProtocolThread.count(ran, on: messagesHandled) }
        return ran
    }

    /// Rounds of a thread's posts to itself run at once (a loopback segment and its answer take
    /// one each).
    static let ownPostRounds = 8

    private func runEndOfBatch() {
        for index in endOfBatchHooks.indices { endOfBatchHooks[index].function(endOfBatchHooks[index].context) }
    }

    private func runLoop() {
        netmp_set_current_context(contextPointer)
        defer { netmp_set_current_context(nil) }
        while true {
            // Nil: a user thread runs as the owner now and drains the port before it leaves (or
            // wakes this thread for what is left): park at once rather than spin beside it.
            guard let count = ownerTurn() else {
                if parkWhileDispatching() { return }
                continue
            }
            if count > 0 { continue }
            let calibration = SpinCalibration.measured
            let rounds = calibration.rounds(for: idleSpinBudget)
            let yieldEvery = Swift.max(1, calibration.rounds(for: SpinPolicy.protocolThreadYieldNanoseconds))
            var spins: Int32 = 0
            var yielded: Int64 = 0
            while spins < rounds && !hasWork.load(ordering: .relaxed) {
                netmp_cpu_relax()
                spins += 1
                if spins % yieldEvery == 0 { yielded &+= ProtocolThread.timedYield() }
            }
            // Then the yields a blocked call makes before it sleeps: a sender on this CPU runs.
            for _ in 0..<SpinPolicy.waiterYields where !hasWork.load(ordering: .relaxed) {
                yielded &+= ProtocolThread.timedYield()
            }
            // Work came while spinning: spin about twice as long as that took, next time; after
            // yields that ran other threads, the sender shares this CPU: yield at once next time.
            let caught = hasWork.load(ordering: .relaxed)
            let outcome: SpinOutcome =
                !caught
                ? .slept
                : yielded > SpinPolicy.yieldRanOthersNanoseconds
                    ? .yieldedToOthers : .caught(afterNanoseconds: calibration.nanoseconds(forRounds: spins))
            idleSpinBudget = SpinCalibration.adaptedBudget(
                idleSpinBudget, after: outcome, within: calibration.protocolThreadBounds)
            if caught { continue }
            portLock.lock()
            let deadline = clock.isManual ? Int64.max : publishedDeadline
            let timeout = deadline == Int64.max ? -1 : deadline &- clock.nanoseconds
            let stop = isStopped && incoming.isEmpty && !tokenHeld
            // A deadline already passed: take a turn (its timers) instead.
            let park = !stop && incoming.isEmpty && (deadline == Int64.max || timeout > 0)
            if park {
                isParked = true
                parkedUntil = deadline
            }
            portLock.unlock()
            if stop { return }
            if park {
                _ = netmp_parker_park(parker, 0, timeout)
                parkWakeups.add(1, ordering: .relaxed)
                portLock.withLock { isParked = false }
            }
        }
    }

    /// Parks while a dispatcher holds the token (it wakes this thread for left-over work, a
    /// stop or an earlier timer); true when the thread has stopped.
    private func parkWhileDispatching() -> Bool {
        portLock.lock()
        guard isDispatching else {
            let stop = isStopped && incoming.isEmpty && !tokenHeld
            portLock.unlock()
            return stop
        }
        let deadline = clock.isManual ? Int64.max : publishedDeadline
        let timeout = deadline == Int64.max ? -1 : deadline &- clock.nanoseconds
        let park = deadline == Int64.max || timeout > 0
        if park {
            isParked = true
            parkedUntil = deadline
        }
        portLock.unlock()
        if park {
            _ = netmp_parker_park(parker, 0, timeout)
            parkWakeups.add(1, ordering: .relaxed)
            portLock.withLock { isParked = false }
        } else {
            OSThread.yieldNow()
        }
        return false
    }

    /// Yields the CPU; returns how long that took (more than a system call: others ran).
    private static func timedYield() -> Int64 {
        let before = netmp_monotonic_ns()
        OSThread.yieldNow()
        return netmp_monotonic_ns() &- before
    }

    /// Driven mode: runs queued messages and due timers on the caller's thread until nothing is
    /// left to do now.
    public func runUntilIdle() {
        precondition(mode == .driven, "only a driven protocol thread is stepped by its caller")
        let previous = netmp_current_context()
        netmp_set_current_context(contextPointer)
        defer { netmp_set_current_context(previous) }
        drivenDepth += 1
        defer { drivenDepth -= 1 }
        repeat {
            runDueTimers()
        } while drainPort() > 0
    }

    /// Stops after the messages already queued have run; later sends are refused.
    public func stop() {
        portLock.lock()
        let alreadyStopped = isStopped
        isStopped = true
        let mustWake = isParked
        isParked = false
        portLock.unlock()
        if mustWake { netmp_parker_unpark(parker) }
        if !alreadyStopped, let thread = osThread {
            // A protocol thread never waits for another (nor for itself): from one, the stopped
            // thread ends on its own.
            if ProtocolThread.current == nil { thread.join() } else { thread.detach() }
        }
        if mode == .driven && !alreadyStopped { runUntilIdle() }
    }
}

/// Where a driven call's message leaves its answer (the caller's frame) and how it went: touched
/// only on the caller's thread, which runs the message itself.
private final class DrivenCallOutcome: @unchecked Sendable {
    var destination: UnsafeMutableRawPointer?
    var finished = false
    var failure: NetError?

    init(_ destination: UnsafeMutableRawPointer) { self.destination = destination }
}

/// An end-of-batch hook: a C function and its context, called without reference counting.
private struct EndOfBatchHook {
    let function: @convention(c) (UnsafeMutableRawPointer?) -> Void
    let context: UnsafeMutableRawPointer
}

/// A closure given to `addEndOfBatchHook`, kept by its thread.
private final class EndOfBatchClosure {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}
