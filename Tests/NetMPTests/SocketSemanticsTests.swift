import Foundation
import Synchronization
import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// What a socket call reports where BSD and Linux agree: saved peer addresses, resets for lost
/// data, timeouts over whole calls, counts of bytes that went before a failure.
final class SocketSemanticsTests: StackTestCase {
    func testPeerAddressIsSavedAtConnectAndKeptAfterTheClientHasGone() throws {
        try bounded {
            let listener = try stack.socket(.local, .stream)
            try listener.bind(to: .local("/sem/server"))
            try listener.listen()
            let client = try stack.socket(.local, .stream)
            try client.bind(to: .local("/sem/client"))
            try client.connect(to: .local("/sem/server"))
            try client.write([9])
            client.close()
            let server = try listener.accept()
            XCTAssertEqual(try server.peerAddress(), .local("/sem/client"))
            XCTAssertEqual(try server.read(maxBytes: 10), [9])
            XCTAssertEqual(try server.read(maxBytes: 10), [])
            XCTAssertEqual(try server.peerAddress(), .local("/sem/client"), "still known after the end of file")
        }
    }

    func testCloseWithUnreadDataResetsThePeer() throws {
        try bounded {
            let (a, b) = try stack.socketPair(.stream)
            try a.write([1, 2, 3])
            b.close()
            assertThrows(.connectionReset) { () throws(NetError) in try a.read(maxBytes: 10) }
            assertThrows(.brokenPipe) { () throws(NetError) in try a.write([4]) }
            // With nothing unread, a close is a clean end of file.
            let (c, d) = try stack.socketPair(.stream)
            try c.write([1])
            XCTAssertEqual(try d.read(maxBytes: 10), [1])
            d.close()
            XCTAssertEqual(try c.read(maxBytes: 10), [])
        }
    }

    /// SO_SNDTIMEO bounds the whole write, not each wait: a reader that drains a little
    /// whenever the writer blocks makes the write wait many times, always for the one deadline
    /// taken when the call began.
    func testSendTimeoutBoundsTheWholeCallNotEachWait() throws {
        try bounded(60) {
            let (a, b) = try stack.socketPair(.stream)
            try b.setOption(.receiveBufferSize, 1000)
            a.sendTimeout = .seconds(600)
            let deadlines = LockedValue<[Int64]>([])
            a.core.observeWaitDeadline = { deadline in deadlines.withLock { $0.append(deadline) } }
            var generator = SeededGenerator(seed: 3)
            let payload = generator.bytes(256 << 10)
            let writeReturned = Atomic<Bool>(false)
            let reader = OSThread.start(name: "trickle") {
                var drained = StreamHash()
                while drained.count < payload.count {
                    let refill =
                        b.core.receiveBuffer.waiterCount.load(ordering: .sequentiallyConsistent) > 0
                        || writeReturned.load(ordering: .acquiring)
                    guard refill, let bytes = try? b.read(maxBytes: 1000, flags: .dontWait)
                    else {
                        OSThread.yieldNow()
                        continue
                    }
                    drained.add(bytes)
                }
                var expected = StreamHash()
                expected.add(payload)
                XCTAssertEqual(drained, expected)
            }
            let before = MonotonicTime.now
            XCTAssertEqual(try a.write(payload), payload.count)
            writeReturned.store(true, ordering: .releasing)
            reader.join()
            let seen = deadlines.withLock { $0 }
            XCTAssertGreaterThanOrEqual(seen.count, payload.count / 1000 - 1, "one wait per refill")
            XCTAssertEqual(Set(seen).count, 1, "every wait of the call has the call's deadline")
            XCTAssertGreaterThan(seen.first ?? 0, before)
        }
    }

    /// SO_RCVTIMEO bounds a whole wait-all read the same way; when it passes, the read returns
    /// every byte that came.
    func testReceiveTimeoutBoundsTheWholeWaitAllRead() throws {
        try bounded(60) {
            let (a, b) = try stack.socketPair(.stream)
            try b.setOption(.receiveBufferSize, 4096)
            b.receiveTimeout = .seconds(600)
            let deadlines = LockedValue<[Int64]>([])
            b.core.observeWaitDeadline = { deadline in deadlines.withLock { $0.append(deadline) } }
            var generator = SeededGenerator(seed: 4)
            let payload = generator.bytes(256 << 10)
            let writer = OSThread.start(name: "refill") {
                var offset = 0
                while offset < payload.count {
                    guard b.core.receiveBuffer.waiterCount.load(ordering: .sequentiallyConsistent) > 0 else {
                        OSThread.yieldNow()
                        continue
                    }
                    let end = Swift.min(payload.count, offset + 1000)
                    if let n = try? a.write(Array(payload[offset..<end]), flags: .dontWait) { offset += n }
                }
            }
            let bytes = try b.read(maxBytes: payload.count, flags: .waitAll)
            writer.join()
            XCTAssertEqual(bytes, payload)
            let seen = deadlines.withLock { $0 }
            XCTAssertGreaterThan(seen.count, 1)
            XCTAssertEqual(Set(seen).count, 1, "every wait of the call has the call's deadline")

            // A deadline that passes ends the read with what came.
            b.receiveTimeout = .milliseconds(20)
            b.core.observeWaitDeadline = nil
            try a.write([1, 2, 3])
            XCTAssertEqual(try b.read(maxBytes: 1 << 20, flags: .waitAll), [1, 2, 3])
        }
    }

    func testBlockingWriteCutShortByItsOwnCloseReturnsTheCount() throws {
        try bounded {
            let (a, b) = try stack.socketPair(.stream)
            try b.setOption(.receiveBufferSize, 1000)
            let result = LockedValue<Result<Int, NetError>?>(nil)
            let writer = OSThread.start(name: "writer") {
                let outcome = Result { () throws(NetError) in try a.write([UInt8](repeating: 1, count: 5000)) }
                result.withLock { $0 = outcome }
            }
            while b.core.receiveBuffer.waiterCount.load(ordering: .sequentiallyConsistent) == 0 { OSThread.yieldNow() }
            a.close()
            writer.join()
            XCTAssertEqual(try result.withLock { $0 }?.get(), 1000, "the bytes that went are reported")
            XCTAssertEqual(try b.read(maxBytes: 5000).count, 1000)
        }
    }

    func testAsyncWriteReportsTheCountWhenThePeerClosesOrTheTaskIsCancelled() async throws {
        let watchdog = Watchdog(seconds: 30, name: #function)
        defer { watchdog.finish() }
        let (a, b) = try stack.socketPair(.stream)
        try b.setOption(.receiveBufferSize, 1024)
        let writer = Task { () async throws(NetError) -> Int in try await a.write([UInt8](repeating: 7, count: 100_000))
        }
        while b.core.receiveBuffer.waiterCount.load(ordering: .sequentiallyConsistent) == 0 { await Task.yield() }
        b.close()
        let sent = try await writer.value
        XCTAssertEqual(sent, 1024)
        do {
            _ = try await a.write([1])
            XCTFail("a write after the peer went succeeded")
        } catch {
            XCTAssertTrue([NetError.connectionReset, .brokenPipe].contains(error), "\(error)")
        }

        let (c, d) = try stack.socketPair(.stream)
        try d.setOption(.receiveBufferSize, 1024)
        let cancelled = Task { () async throws(NetError) -> Int in
            try await c.write([UInt8](repeating: 8, count: 100_000))
        }
        while d.core.receiveBuffer.waiterCount.load(ordering: .sequentiallyConsistent) == 0 { await Task.yield() }
        cancelled.cancel()
        let count = try await cancelled.value
        XCTAssertEqual(count, 1024, "the bytes that went before the cancellation")
        let tail = try d.read(maxBytes: 4096, flags: [])
        XCTAssertEqual(tail, [UInt8](repeating: 8, count: 1024))
    }

    func testBlockingWaitsAreRefusedOnProtocolThreads() throws {
        XCTAssertTrue(Socket.mayBlockCallingThread)
        let onThread = try stack.threads[0].call { () throws(NetError) in Socket.mayBlockCallingThread }
        XCTAssertFalse(onThread, "a socket wait on a protocol thread trips the precondition")
    }

    /// The precondition itself: this test runs itself again in a child process, where a
    /// protocol thread makes a blocking read; the child must die with the precondition's
    /// message.
    func testABlockingReadOnAProtocolThreadStopsTheProcess() throws {
        if getenv("NETMP_EXPECT_PRECONDITION") != nil {
            let (a, b) = try stack.socketPair(.stream)
            stack.threads[0].send { _ = try? b.read(maxBytes: 1) }
            stack.quiesce()
            withExtendedLifetime(a) {}
            return  // not reached: the read traps
        }
        let child = Process()
        child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        child.arguments = ["NetMPTests.SocketSemanticsTests/testABlockingReadOnAProtocolThreadStopsTheProcess"]
        var environment = ProcessInfo.processInfo.environment
        environment["NETMP_EXPECT_PRECONDITION"] = "1"
        environment["SWIFT_BACKTRACE"] = "enable=no"
        child.environment = environment
        let errors = Pipe()
        child.standardError = errors
        child.standardOutput = FileHandle.nullDevice
        let exited = DispatchSemaphore(value: 0)
        child.terminationHandler = { _ in exited.signal() }
        let text = LockedValue("")
        let collector = OSThread.start(name: "stderr") {
            let data = errors.fileHandleForReading.readDataToEndOfFile()
            text.withLock { $0 = String(decoding: data, as: UTF8.self) }
        }
        try child.run()
        if exited.wait(timeout: .now() + 60) == .timedOut {
            // The child we started hangs instead of stopping: end it, then fail.
            child.terminate()
            exited.wait()
            XCTFail("a blocking read on a protocol thread hung instead of stopping the process")
        }
        collector.join()
        let message = text.withLock { $0 }
        XCTAssertEqual(child.terminationReason, .uncaughtSignal, message)
        XCTAssertTrue(message.contains("a protocol thread must not block in a socket call"), message)
    }

    func testCloseAfterShutdownStillFreesNamesAndLinks() throws {
        let stack = NetworkStack(.init(threadCount: 2, localSocketsOnProtocolThreads: true))
        do {
            let listener = try stack.socket(.local, .stream)
            try listener.bind(to: .local("/sem/after"))
            try listener.listen()
            let client = try stack.socket(.local, .stream)
            try client.connect(to: .local("/sem/after"))
            let (a, b) = try stack.socketPair(.stream)
            stack.shutdown()
            a.close()
            client.close()
            listener.close()
            XCTAssertNil(stack.localDomain.lock.withLock { stack.localDomain.namespace.socket(named: "/sem/after") })
            XCTAssertNil(stack.localDomain.block(b.core).peer, "the pair's link is dropped")
            b.close()
        }
        XCTAssertEqual(stack.liveSocketCount, 0, "nothing kept alive by a link")
    }

    func testBacklogOverflowIsRefusedAtOnce() throws {
        try bounded {
            let listener = try stack.socket(.local, .stream)
            try listener.bind(to: .local("/sem/backlog"))
            try listener.listen(backlog: 1)
            let first = try stack.socket(.local, .stream)
            try first.connect(to: .local("/sem/backlog"))
            let second = try stack.socket(.local, .stream)
            assertThrows(.connectionRefused) { () throws(NetError) in try second.connect(to: .local("/sem/backlog")) }
            XCTAssertEqual(listener.core.listenQueue?.counts.complete, 1)
        }
    }

    /// With local sockets on protocol threads, a send runs on the sender's owner and a read's
    /// window update reaches the writer's poller by a message to the reader's owner.
    func testOnProtocolThreadsSendsAndWindowUpdatesGoThroughTheOwners() throws {
        let stack = NetworkStack(.init(threadCount: 2, localSocketsOnProtocolThreads: true))
        defer { stack.shutdown() }
        try bounded {
            let (a, b) = try stack.socketPair(.stream)
            XCTAssertTrue(a.core.owner is ProtocolThread)
            try b.setOption(.receiveBufferSize, 4096)
            a.isNonBlocking = true
            let before = stack.localDomain.sendsRunOnOwners.load(ordering: .relaxed)
            var writes = 0
            while (try? a.write([UInt8](repeating: 1, count: 1024))) != nil { writes += 1 }
            // Every attempt ran on the owner, the one that found no room too.
            XCTAssertEqual(stack.localDomain.sendsRunOnOwners.load(ordering: .relaxed) - before, writes + 1)
            let poller = SocketPoller()
            try poller.register(a, interest: .writable, token: 1)
            XCTAssertEqual(poller.wait(timeout: .zero), [])
            XCTAssertEqual(try b.read(maxBytes: 4096).count, 4096)
            XCTAssertEqual(poller.wait(timeout: .seconds(10)), [SocketPoller.Event(token: 1, events: .writable)])
        }
    }
}
