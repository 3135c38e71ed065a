import CNetMP
import NetMPRuntime
import Synchronization

/// A blocked read, write, accept or connect: the predicate message of the design.
///
/// The owner of the socket evaluates the condition under the buffer's lock (where the races the
/// seed describes are resolved) and either completes the waiter at once or keeps it on the
/// buffer until a change makes the condition true. One object serves a blocked thread (a
/// parker it spins on, then sleeps on) or a suspended task (a continuation).
///
/// Exactly one party completes it: the first to set `claimed` (the buffer's wake-up, a timeout
/// or a cancellation) decides the outcome; whoever then finds both `published` and `armed`
/// set resumes the continuation.
package final class SocketWaiter: EmbeddedMessage, @unchecked Sendable {
    private static let claimed: UInt8 = 1
    private static let published: UInt8 = 2
    private static let armed: UInt8 = 4

    /// What the waiter is for. Written only while nobody else holds the waiter (made, or
    /// taken back from its thread's spare slot); read by the owner under the buffer's lock.
    private var waitingSocket: Socket?
    private var waitingBuffer: SocketBuffer?
    private(set) var condition: WaitCondition
    private let phase = Atomic<UInt8>(0)
    /// Set by the owner when it is done with the predicate message (for reuse: the owner's
    /// last look at the waiter happens before the next wait rewrites it).
    private let handled = Atomic<Bool>(false)
    private var outcome: WaitOutcome = .satisfied
    private var parker: UnsafeMutablePointer<netmp_parker>?
    private var continuation: UnsafeContinuation<Void, Never>?

    init(socket: Socket, buffer: SocketBuffer, condition: WaitCondition) {
        waitingSocket = socket
        waitingBuffer = buffer
        self.condition = condition
    }

    deinit { parker?.deallocate() }

    var socket: Socket {
        guard let waitingSocket else { preconditionFailure("a spare waiter was used") }
        return waitingSocket
    }

    var buffer: SocketBuffer {
        guard let waitingBuffer else { preconditionFailure("a spare waiter was used") }
        return waitingBuffer
    }

    // MARK: Reuse by blocking threads

    /// A thread's spare waiters, kept between its blocking waits. A woken thread often waits
    /// again before its waker has returned from `publish` (the futex wake is a system call) and
    /// let go of the waiter just used; a waker holds at most one, so with two spares made up
    /// front the next wait finds one free. More are made (up to `capacity`) only when an owner
    /// has not yet handled a predicate message.
    private final class Spares {
        static let capacity = 4
        var waiters: [SocketWaiter?]
        /// The slot a new waiter replaces when none is empty (round robin).
        var nextSlot = 0
        /// Blocking waits this thread has started (tests check that waits happened).
        var waitsStarted = 0

        init() {
            waiters = [SocketWaiter.spare(), SocketWaiter.spare()]
            waiters += Array(repeating: nil, count: Spares.capacity - 2)
        }
    }

    private static let spares = ThreadLocal { Spares() }

    /// How many blocking waits the calling thread has posted a waiter for.
    package static var waitsStartedOnThisThread: Int { spares.value.waitsStarted }

    /// A prepared thread waiter that refers to nothing yet.
    private static func spare() -> SocketWaiter {
        let waiter = SocketWaiter(condition: .connected)
        waiter.prepareThreadWait()
        return waiter
    }

    private init(condition: WaitCondition) { self.condition = condition }

    /// A waiter for a blocking wait on the calling thread, prepared for `waitOnThread`. A spare
    /// that nobody else still holds is reused, so a blocking wait allocates nothing.
    static func forThreadWait(socket: Socket, buffer: SocketBuffer, condition: WaitCondition) -> SocketWaiter {
        let spares = spares.value
        spares.waitsStarted &+= 1
        for slot in 0..<Spares.capacity {
            guard var waiter = spares.waiters[slot].take() else { continue }
            let free = isKnownUniquelyReferenced(&waiter)
            // Kept in its slot while in use too: the next wait skips it unless it is free.
            spares.waiters[slot] = waiter
            if free {
                waiter.waitingSocket = socket
                waiter.waitingBuffer = buffer
                waiter.condition = condition
                waiter.outcome = .satisfied
                waiter.phase.store(0, ordering: .relaxed)
                waiter.handled.store(false, ordering: .relaxed)
                return waiter
            }
        }
        let waiter = SocketWaiter(socket: socket, buffer: buffer, condition: condition)
        waiter.prepareThreadWait()
        if let empty = spares.waiters.firstIndex(where: { $0 == nil }) {
            spares.waiters[empty] = waiter
        } else {
            spares.waiters[spares.nextSlot] = waiter
            spares.nextSlot = (spares.nextSlot + 1) % Spares.capacity
        }
        return waiter
    }

    /// Drops what a finished thread waiter referred to, so a spare does not keep a socket
    /// alive. Only once the owner has handled its predicate message (it reads the socket and
    /// buffer): a waker still in `publish` touches neither. A waiter the owner has not reached
    /// yet leaves its slot and is freed by whoever holds it last.
    static func returnToThread(_ waiter: inout SocketWaiter) {
        if waiter.handled.load(ordering: .acquiring) {
            waiter.waitingSocket = nil
            waiter.waitingBuffer = nil
            waiter.condition = .connected
            return
        }
        let spares = spares.value
        for slot in 0..<Spares.capacity where spares.waiters[slot] === waiter {
            spares.waiters[slot] = nil
        }
    }

    var isClaimed: Bool { phase.load(ordering: .acquiring) & SocketWaiter.claimed != 0 }

    /// Takes the right to complete this waiter. Only one caller ever gets true.
    func claim() -> Bool {
        var current = phase.load(ordering: .relaxed)
        while current & SocketWaiter.claimed == 0 {
            let (exchanged, original) = phase.compareExchange(
                expected: current, desired: current | SocketWaiter.claimed, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Completes a claimed waiter; call after dropping locks.
    func publish(_ result: WaitOutcome) {
        outcome = result
        let before = phase.bitwiseOr(SocketWaiter.published, ordering: .acquiringAndReleasing).oldValue
        if before & SocketWaiter.armed != 0, let continuation {
            self.continuation = nil
            continuation.resume()
        }
        if let parker { netmp_parker_unpark(parker) }
    }

    /// The predicate message arriving at the owner.
    package func handle() {
        evaluateAndRegister()
        handled.store(true, ordering: .releasing)
    }

    /// Runs on the owner (the predicate message): complete at once, or stay registered.
    func evaluateAndRegister() {
        var wakes = WakeList()
        buffer.lock.lock()
        if isClaimed {
            buffer.lock.unlock()
            return
        }
        buffer.registerLocked(self)
        if socket.isSatisfied(condition), claim() {
            buffer.unregisterLocked(self)
            wakes.add(self)
        }
        buffer.lock.unlock()
        wakes.publishAll()
    }

    /// Cancels a waiter that is still pending; true if this call ended it.
    func cancel(_ result: WaitOutcome) -> Bool {
        guard claim() else { return false }
        buffer.lock.withLock { buffer.unregisterLocked(self) }
        publish(result)
        return true
    }

    // MARK: Blocking threads

    /// Prepares a thread wait; call before the predicate message is sent.
    func prepareThreadWait() {
        let parker = UnsafeMutablePointer<netmp_parker>.allocate(capacity: 1)
        netmp_parker_init(parker)
        self.parker = parker
    }

    /// Blocks until the waiter completes or `deadline` (monotonic ns, 0 = none) passes. The
    /// caller has spun and yielded already (`Socket.wait`): this sleeps. `firstPark` tells how
    /// the first park ended (`netmp_parker_park_reporting`). Each wake-up's cost is recorded
    /// (`SpinCalibration.recordWake`).
    func waitOnThread(deadline: Int64) -> WaitOutcome {
        var firstPark: Int32 = 0
        return waitOnThread(deadline: deadline, firstPark: &firstPark)
    }

    func waitOnThread(deadline: Int64, firstPark: inout Int32) -> WaitOutcome {
        guard let parker else { preconditionFailure("prepareThreadWait not called") }
        var first = true
        while phase.load(ordering: .acquiring) & SocketWaiter.published == 0 {
            var timeout: Int64 = -1
            if deadline > 0 {
                timeout = deadline - netmp_monotonic_ns()
                if timeout <= 0 {
                    if cancel(.timedOut) { return .timedOut }
                    timeout = -1  // completed meanwhile: wait for its publish
                }
            }
            var wake: Int64 = -1
            let result = netmp_parker_park_measuring(parker, 0, 0, timeout, nil, &wake)
            SpinCalibration.recordWake(wake)
            if first { firstPark = result }
            first = false
        }
        return outcome
    }

    // MARK: Suspended tasks

    /// Suspends the task until the waiter completes; `deliver` sends the predicate message.
    /// Cancelling the task ends the wait with `.cancelled`.
    func waitAsync(deliver: @Sendable (SocketWaiter) -> Bool) async -> WaitOutcome {
        // The continuation resumes with no value and the outcome is read through `phase` (an
        // atomic ThreadSanitizer sees), not through the runtime's uninstrumented resume path.
        await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                self.continuation = continuation
                let before = phase.bitwiseOr(SocketWaiter.armed, ordering: .acquiringAndReleasing).oldValue
                if before & SocketWaiter.published != 0 {
                    self.continuation = nil
                    continuation.resume()
                    return
                }
                if !deliver(self) { _ = cancel(.cancelled) }
            }
        } onCancel: {
            _ = cancel(.cancelled)
        }
        _ = phase.load(ordering: .acquiring)
        return outcome
    }
}
