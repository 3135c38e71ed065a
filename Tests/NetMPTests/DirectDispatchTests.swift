import Glibc
import Synchronization
import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPRuntime
@testable import NetMPSockets
@testable import NetMPTCP

/// Direct dispatch (DESIGN.md, FreeBSD netisr's hybrid policy): a user thread whose message finds
/// the owner idle and its port empty runs it itself as the owner, with what it queued there.
final class DirectDispatchTests: XCTestCase {
    /// A thread that has parked (so idle, its port empty and its run token free).
    private func parkedThread(directDispatch: Bool = true) -> ProtocolThread {
        let thread = ProtocolThread(index: 0, clock: SystemClock(), directDispatch: directDispatch)
        while !thread.isParked_forTesting { sched_yield() }
        // As after a socket wait: this thread's next post may dispatch (a post earlier on this
        // test thread, with no wait since, would make it a streaming poster).
        ProtocolThread.callerWaited()
        return thread
    }

    /// What code running as the owner posts to its own thread (a loopback frame's batch) runs
    /// before the token goes back, on the same OS thread, ahead of what was queued on the port
    /// meanwhile (it never goes through the port): the frames a dispatcher's own segment made
    /// are its own request's follow-up.
    func testPostsToItselfRunBeforeTheTokenGoesBack() {
        bounded {
            let thread = parkedThread()
            defer { thread.stop() }
            let caller = pthread_self()
            let order = LockedValue<[Int]>([])
            let onCaller = LockedValue<[Bool]>([])
            func message(_ value: Int, queueing: RecordingMessage? = nil, then: RecordingMessage? = nil)
                -> RecordingMessage
            {
                RecordingMessage(
                    thread: thread, order: order, onCaller: onCaller, caller: caller, value: value, queueing: queueing,
                    then: then)
            }
            // The first queues 9 on the port, then posts 2 to its own thread: 2 runs first.
            let first = message(1, queueing: message(9), then: message(2))
            let wakeupsBefore = thread.parkWakeups.load(ordering: .relaxed)
            XCTAssertTrue(thread.post(first))
            XCTAssertEqual(order.withLock { $0 }, [1, 2, 9])
            XCTAssertEqual(onCaller.withLock { $0 }, [true, true, true])
            XCTAssertEqual(thread.directDispatches.load(ordering: .relaxed), 1)
            XCTAssertEqual(thread.messagesHandled.load(ordering: .relaxed), 3)
            XCTAssertEqual(thread.parkWakeups.load(ordering: .relaxed), wakeupsBefore, "the owner was woken")
            // On the owner's own thread too: queued from here, both run in its turn, in order.
            XCTAssertTrue(thread.postQueued(message(3, queueing: message(5), then: message(4))))
            while order.withLock({ $0.count }) < 6 { sched_yield() }
            XCTAssertEqual(order.withLock { $0 }, [1, 2, 9, 3, 4, 5])
            XCTAssertEqual(onCaller.withLock { $0 }, [true, true, true, false, false, false])
        }
    }

    /// A thread posting back to back is streaming: its first post runs on it, the next goes to
    /// the owner, which runs it beside the poster; once it has waited it may dispatch again.
    func testAStreamingPosterIsQueuedUntilItWaits() throws {
        try bounded {
            let thread = parkedThread()
            defer { thread.stop() }
            let caller = pthread_self()
            let onCaller = OwnedBox<[Bool]>([])
            let done = Atomic<Int>(0)
            func post() {
                thread.send {
                    onCaller.value.append(pthread_equal(pthread_self(), caller) != 0)
                    done.add(1, ordering: .sequentiallyConsistent)
                }
            }
            post()
            post()
            while done.load(ordering: .sequentiallyConsistent) < 2 { sched_yield() }
            // Idle again (its turn over, parked), so only the poster's streaming decides.
            while !thread.isParked_forTesting { sched_yield() }
            ProtocolThread.callerWaited()
            post()
            while done.load(ordering: .sequentiallyConsistent) < 3 { sched_yield() }
            XCTAssertEqual(onCaller.value, [true, false, true])
            XCTAssertEqual(thread.directDispatches.load(ordering: .relaxed), 2)
            // A read counts too (a reply may come before the read would wait): streaming again
            // after the third post, then a read attempt on a socket, then a post runs here.
            post()
            while done.load(ordering: .sequentiallyConsistent) < 4 { sched_yield() }
            while !thread.isParked_forTesting { sched_yield() }
            let stack = NetworkStack(.init(threadCount: 1))
            defer { stack.shutdown() }
            guard let (a, b) = try? stack.socketPair(.stream) else { return XCTFail("no socket pair") }
            defer {
                a.close()
                b.close()
            }
            b.isNonBlocking = true
            XCTAssertThrowsError(try b.read(maxBytes: 1), "nothing to read")
            post()
            while done.load(ordering: .sequentiallyConsistent) < 5 { sched_yield() }
            XCTAssertEqual(onCaller.value, [true, false, true, false, true])
        }
    }

    func testAMessageToAnIdleThreadRunsOnTheSendersThreadAsTheOwner() throws {
        try bounded {
            let thread = parkedThread()
            defer { thread.stop() }
            let ranOn = OwnedBox<(pthread_t, Bool)?>(nil)
            thread.send { ranOn.value = (pthread_self(), thread.isCurrent) }
            // It ran before send returned, on this thread, acting as the owner.
            XCTAssertEqual(ranOn.value.map { pthread_equal($0.0, pthread_self()) != 0 }, true)
            XCTAssertEqual(ranOn.value?.1, true)
            XCTAssertFalse(thread.isCurrent, "the caller is itself again afterwards")
            XCTAssertEqual(thread.directDispatches.load(ordering: .relaxed), 1)
            // A call runs the same way and still sees itself as the owner inside.
            XCTAssertEqual(try thread.call { () throws(NetError) in thread.isCurrent }, true)
            XCTAssertEqual(thread.directDispatches.load(ordering: .relaxed), 2)
            XCTAssertTrue(thread.isParked_forTesting, "the owner was never woken")
        }
    }

    func testWhatADispatchedMessageQueuesRunsBeforeTheSenderGoesOn() {
        bounded {
            let thread = parkedThread()
            defer { thread.stop() }
            let order = OwnedBox<[Int]>([])
            let wakes = thread.parkWakeups.load(ordering: .relaxed)
            thread.send {
                order.value.append(1)
                // As a loopback segment is queued back to the same thread.
                thread.send { order.value.append(3) }
                order.value.append(2)
            }
            XCTAssertEqual(order.value, [1, 2, 3])
            XCTAssertTrue(thread.isParked_forTesting)
            XCTAssertEqual(thread.parkWakeups.load(ordering: .relaxed), wakes, "no wake-up for it")
        }
    }

    func testWithoutDirectDispatchMessagesRunOnTheOwnerThread() {
        bounded {
            let thread = parkedThread(directDispatch: false)
            defer { thread.stop() }
            let caller = pthread_self()
            let ranOnCaller = try? thread.call { () throws(NetError) in pthread_equal(pthread_self(), caller) != 0 }
            XCTAssertEqual(ranOnCaller, false)
            XCTAssertEqual(thread.directDispatches.load(ordering: .relaxed), 0)
        }
    }

    func testTheDrivenModeNeverDispatches() {
        let thread = ProtocolThread(index: 0, clock: ManualClock(), mode: .driven)
        defer { thread.stop() }
        let ran = OwnedBox(false)
        thread.send { ran.value = true }
        XCTAssertFalse(ran.value, "a driven thread runs only when stepped")
        thread.runUntilIdle()
        XCTAssertTrue(ran.value)
        XCTAssertEqual(thread.directDispatches.load(ordering: .relaxed), 0)
    }

    /// The owner parked with no timer; a dispatcher arms one: the owner must wake to fire it
    /// (on its own thread), or it would sleep through the deadline.
    func testATimerArmedByADispatcherWakesTheParkedOwnerForIt() {
        bounded {
            let thread = parkedThread()
            defer { thread.stop() }
            let fired = Atomic<Bool>(false)
            let firedOnCaller = Atomic<Bool>(true)
            let caller = pthread_self()
            let callout = Callout(on: thread) {
                firedOnCaller.store(pthread_equal(pthread_self(), caller) != 0, ordering: .relaxed)
                fired.store(true, ordering: .releasing)
            }
            thread.send { callout.arm(after: 20_000_000) }
            XCTAssertEqual(thread.directDispatches.load(ordering: .relaxed), 1)
            let deadline = MonotonicTime.deadline(after: 10_000_000_000)
            while !fired.load(ordering: .acquiring) && MonotonicTime.now < deadline { sched_yield() }
            XCTAssertTrue(fired.load(ordering: .acquiring), "the timer fired")
            XCTAssertFalse(firedOnCaller.load(ordering: .relaxed), "on the owner thread")
        }
    }

    /// While one user thread runs as the owner, another's message is queued (the token is
    /// busy), and the dispatcher runs it before it gives the token back: one owner at a time.
    func testAMessageFindingTheTokenBusyIsQueuedAndRunByTheDispatcher() {
        bounded {
            let thread = parkedThread()
            defer { thread.stop() }
            let inside = Atomic<Bool>(false)
            let release = Atomic<Bool>(false)
            let owners = Atomic<Int>(0)
            let overlap = Atomic<Bool>(false)
            let order = OwnedBox<[String]>([])
            @Sendable func enter() {
                if owners.add(1, ordering: .sequentiallyConsistent).newValue > 1 {
                    overlap.store(true, ordering: .relaxed)
                }
            }
            @Sendable func leave() { owners.subtract(1, ordering: .sequentiallyConsistent) }
            let first = OSThread.start(name: "dispatcher") {
                thread.send {
                    enter()
                    order.value.append("first")
                    inside.store(true, ordering: .releasing)
                    while !release.load(ordering: .acquiring) { sched_yield() }
                    leave()
                }
            }
            while !inside.load(ordering: .acquiring) { sched_yield() }
            // The token is busy: queued, not run here.
            thread.send {
                enter()
                order.value.append("second")
                leave()
            }
            XCTAssertEqual(thread.directDispatches.load(ordering: .relaxed), 1)
            release.store(true, ordering: .releasing)
            first.join()
            let seen = try? thread.call { () throws(NetError) in order.value }
            XCTAssertEqual(seen, ["first", "second"])
            XCTAssertFalse(overlap.load(ordering: .relaxed), "never two owners at once")
        }
    }
}

/// Direct dispatch and connect's port choice on TCP over loopback.
final class TCPDirectDispatchTests: StackTestCase {
    override var threadCount: Int { 2 }

    func ownerThread(_ socket: NetSocket) -> ProtocolThread? { (socket.core.owner as? TCPOwnerPort)?.thread }

    /// Connect picks an ephemeral port whose tuple hashes to the socket's own thread, so the
    /// control block does not move and the handshake needs no other thread.
    func testConnectKeepsTheBlockOnTheThreadItWasMadeOn() throws {
        try bounded(60) {
            let (listener, address) = try makeListener()
            defer { listener.close() }
            var moved = 0
            var threadsUsed = Set<Int>()
            for _ in 0..<40 {
                let client = try stack.socket(.inet, .stream)
                let before = ownerThread(client)
                try client.connect(to: address)
                let server = try listener.accept()
                if ownerThread(client) !== before { moved += 1 }
                if let index = ownerThread(client)?.index { threadsUsed.insert(index) }
                XCTAssertTrue(ownerThread(server) === ownerThread(client), "both ends on one thread")
                client.close()
                server.close()
            }
            XCTAssertEqual(moved, 0, "no connection moved")
            XCTAssertEqual(threadsUsed, [0, 1], "connections still spread over the threads")
        }
    }

    /// A one-byte ping-pong between two user threads runs by direct dispatch, byte-exact.
    func testPingPongRunsByDirectDispatchAndKeepsTheStream() throws {
        try bounded(120) {
            let (listener, address) = try makeListener()
            let client = try stack.socket(.inet, .stream)
            try client.connect(to: address)
            let server = try listener.accept()
            listener.close()
            try client.setOption(.noDelay, 1)
            try server.setOption(.noDelay, 1)
            let rounds = scaled(2000)
            let before = stack.threads.reduce(0) { $0 + $1.directDispatches.load(ordering: .relaxed) }
            let echoed = Atomic<Int>(0)
            let echo = OSThread.start(name: "echo") {
                for _ in 0..<rounds {
                    guard let byte = try? server.read(maxBytes: 1), byte.count == 1, (try? server.write(byte)) == 1
                    else { return }
                    echoed.add(1, ordering: .relaxed)
                }
            }
            var sent = StreamHash()
            var received = StreamHash()
            for index in 0..<rounds {
                let out: [UInt8] = [UInt8(truncatingIfNeeded: index &* 31 &+ 7)]
                sent.add(out)
                XCTAssertEqual(try client.write(out), 1)
                let back = try client.read(maxBytes: 1)
                XCTAssertEqual(back.count, 1)
                received.add(back)
            }
            echo.join()
            XCTAssertEqual(echoed.load(ordering: .relaxed), rounds)
            XCTAssertEqual(received, sent, "every byte came back in order")
            let after = stack.threads.reduce(0) { $0 + $1.directDispatches.load(ordering: .relaxed) }
            XCTAssertGreaterThan(after - before, 0, "user threads ran requests as the owner")
            client.close()
            server.close()
        }
    }
}

/// Records that it ran (and where), queues `queueing` on its thread's port, then posts `then`
/// to the thread.
private final class RecordingMessage: EmbeddedMessage, @unchecked Sendable {
    let thread: ProtocolThread
    let order: LockedValue<[Int]>
    let onCaller: LockedValue<[Bool]>
    let caller: pthread_t
    let value: Int
    let queueing: RecordingMessage?
    let then: RecordingMessage?

    init(
        thread: ProtocolThread, order: LockedValue<[Int]>, onCaller: LockedValue<[Bool]>, caller: pthread_t,
        value: Int, queueing: RecordingMessage?, then: RecordingMessage?
    ) {
        self.thread = thread
        self.order = order
        self.onCaller = onCaller
        self.caller = caller
        self.value = value
        self.queueing = queueing
        self.then = then
    }

    func handle() {
        order.withLock { $0.append(value) }
        onCaller.withLock { $0.append(pthread_equal(pthread_self(), caller) != 0) }
        if let queueing { XCTAssertTrue(thread.postQueued(queueing)) }
        if let then { XCTAssertTrue(thread.post(then)) }
    }
}
