import Synchronization
import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPRuntime
@testable import NetMPSockets
@testable import NetMPTCP

/// The seed's races on TCP sockets, each run many times on real threads: every call returns
/// with the result BSD gives, nothing hangs, and every socket is freed (StackTestCase).
final class TCPRaceTests: StackTestCase {
    override var threadCount: Int { 2 }

    func waitForConnectionsToEnd(file: StaticString = #filePath, line: UInt = #line) {
        let deadline = MonotonicTime.deadline(after: 20_000_000_000)
        while stack.tcpStatistics().liveConnections > 0 {
            if MonotonicTime.now > deadline {
                return XCTFail("connections left: \(stack.tcpStatistics().liveConnections)", file: file, line: line)
            }
            stack.quiesce()
        }
    }

    func testAcceptRacingClientReset() throws {
        try bounded(120) {
            let (listener, address) = try makeListener()
            let failures = FailureLog()
            for round in 0..<scaled(200) {
                let client = try stack.socket(.inet, .stream)
                try client.connect(to: address)
                client.linger = .zero
                onThreads(2) { index in
                    if index == 1 {
                        client.close()
                        return
                    }
                    do {
                        let child = try listener.accept()
                        // The handshake finished before the RST: accept returns the child, and
                        // its first read reports the reset (as Linux does).
                        do {
                            let bytes = try child.read(maxBytes: 1)
                            failures.record("round \(round): read \(bytes) instead of a reset")
                        } catch {
                            if error as? NetError != .connectionReset {
                                failures.record("round \(round): read threw \(error)")
                            }
                        }
                        child.close()
                    } catch {
                        failures.record("round \(round): accept threw \(error)")
                    }
                }
            }
            failures.check()
            listener.close()
            waitForConnectionsToEnd()
        }
    }

    func testCloseWithQueuedChildrenResetsThem() throws {
        try bounded {
            let (listener, address) = try makeListener()
            var clients: [NetSocket] = []
            for _ in 0..<8 {
                let client = try stack.socket(.inet, .stream)
                try client.connect(to: address)
                clients.append(client)
            }
            // All eight finished their handshakes and wait on the complete queue.
            while listener.core.listenQueue?.counts.complete != 8 { stack.quiesce() }
            listener.close()
            for client in clients {
                assertThrows(.connectionReset) { () throws(NetError) in try client.read(maxBytes: 1) }
                client.close()
            }
            waitForConnectionsToEnd()
        }
    }

    func testConnectRacingClose() throws {
        try bounded(120) {
            let (listener, address) = try makeListener(backlog: 4096)
            listener.isNonBlocking = true
            let failures = FailureLog()
            for round in 0..<scaled(300) {
                let client = try stack.socket(.inet, .stream)
                onThreads(2) { index in
                    if index == 1 {
                        client.close()
                        return
                    }
                    do {
                        try client.connect(to: address)
                    } catch {
                        if let error = error as? NetError, error != .badDescriptor && error != .connectionReset {
                            failures.record("round \(round): connect threw \(error)")
                        }
                    }
                }
                while let child = try? listener.accept() { child.close() }
            }
            failures.check()
            waitForConnectionsToEnd()
            while let child = try? listener.accept() { child.close() }
            listener.close()
            waitForConnectionsToEnd()
        }
    }

    /// The losing order of connect vs close, made certain: the connect request reaches the owner
    /// after the detach. It must fail and leave no connection behind (it once lived on, unclosable).
    func testConnectOrListenRequestRunningAfterCloseLeavesNothing() throws {
        try bounded {
            let (listener, address) = try makeListener()
            let client = try stack.socket(.inet, .stream)
            let core = client.core
            client.close()
            assertThrows(.badDescriptor) { () throws(NetError) in
                try core.request { () throws(NetError) in try core.proto.connect(core, to: address) }
            }
            assertThrows(.badDescriptor) { () throws(NetError) in
                try core.request { () throws(NetError) in try core.proto.listen(core, backlog: 1) }
            }
            stack.quiesce()
            XCTAssertEqual(stack.tcpStatistics().liveConnections, 0)
            XCTAssertEqual(stack.tcpStatistics().reservedTuples, 0)
            listener.close()
        }
    }

    func testRemoteResetWakesBlockedReaderAndWriter() throws {
        try bounded(60) {
            let (listener, address) = try makeListener()
            for _ in 0..<scaled(20) {
                let client = try stack.socket(.inet, .stream)
                try client.connect(to: address)
                let server = try listener.accept()
                let outcomes = LockedValue<[String: NetError]>([:])
                let threads = [
                    OSThread.start(name: "tcp-blocked-reader") {
                        do {
                            _ = try client.read(maxBytes: 10)
                        } catch {
                            outcomes.withLock { $0["reader"] = error as? NetError }
                        }
                    },
                    OSThread.start(name: "tcp-blocked-writer") {
                        // More than both buffers and the window hold: the writer blocks.
                        let big = [UInt8](repeating: 9, count: 4 << 20)
                        do {
                            _ = try client.write(big)
                        } catch {
                            outcomes.withLock { $0["writer"] = error as? NetError }
                        }
                    },
                ]
                // Both are blocked: each has its waiter registered on its buffer.
                while client.core.sendBuffer.waiterCount.load(ordering: .sequentiallyConsistent) == 0
                    || client.core.receiveBuffer.waiterCount.load(ordering: .sequentiallyConsistent) == 0
                {
                    stack.quiesce()
                }
                server.linger = .zero
                server.close()
                for thread in threads { thread.join() }
                let results = outcomes.withLock { $0 }
                let reader = results["reader"]
                let writer = results["writer"]
                // One of them takes the reset; the other sees the connection gone.
                XCTAssertTrue(
                    (reader == .connectionReset && (writer == .brokenPipe || writer == nil))
                        || (writer == .connectionReset && reader == nil),
                    "reader \(String(describing: reader)), writer \(String(describing: writer))")
                client.close()
            }
            listener.close()
            waitForConnectionsToEnd()
        }
    }

    /// A connect waiter spins on the socket's state without the lock: were `connecting` cleared
    /// before `connected` is set, it could see neither, end its wait and report a refusal (the
    /// ten-thousand-connects test failed so about once in a hundred runs).
    func testConnectingBecomesConnectedInOneStep() {
        let state = AtomicSocketState()
        state.set(.connecting)
        let stop = Atomic<Bool>(false)
        let seenNeither = Atomic<Int>(0)
        let samples = Atomic<Int>(0)
        let observer = OSThread.start(name: "state-observer") {
            while !stop.load(ordering: .relaxed) {
                if state.value.isDisjoint(with: [.connecting, .connected]) { seenNeither.add(1, ordering: .relaxed) }
                samples.add(1, ordering: .relaxed)
            }
        }
        // The observer samples throughout: it is running before the first transition, and the
        // transitions go on until it has looked a million times (or a bound of rounds passes).
        while samples.load(ordering: .relaxed) == 0 {}
        var rounds = 0
        while samples.load(ordering: .relaxed) < scaled(1_000_000) && rounds < 50_000_000 {
            TCPThread.markEstablished(state)
            state.replace(clearing: .connected, setting: .connecting)
            rounds += 1
        }
        stop.store(true, ordering: .relaxed)
        observer.join()
        XCTAssertGreaterThan(samples.load(ordering: .relaxed), 0)
        XCTAssertEqual(seenNeither.load(ordering: .relaxed), 0, "a reader saw neither connecting nor connected")
    }
}
