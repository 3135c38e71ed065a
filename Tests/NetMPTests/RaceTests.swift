import Synchronization
import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// The races the seed names, each run many times: half the rounds wait until the blocked call
/// is really registered as a waiter (so the wake-up path runs), half let the two sides race.
final class RaceTests: StackTestCase {
    private var rounds: Int { scaled(300) }

    /// Spins (yielding) until `buffer` has a registered waiter: the call is blocked.
    private func awaitBlocked(_ buffer: SocketBuffer) {
        while buffer.waiterCount.load(ordering: .sequentiallyConsistent) == 0 { OSThread.yieldNow() }
    }

    private func inBackground<T: Sendable>(_ body: @escaping @Sendable () -> T) -> () -> T {
        let box = LockedValue<T?>(nil)
        let thread = OSThread.start(name: "race") { box.withLock { $0 = body() } }
        return {
            thread.join()
            guard let value = box.withLock({ $0 }) else { preconditionFailure("no result") }
            return value
        }
    }

    func testRemoteCloseWhileReaderBlockedGivesEndOfFile() throws {
        try bounded(60) {
            for round in 0..<rounds {
                let (a, b) = try stack.socketPair(.stream)
                let result = inBackground { Result { () throws(NetError) in try b.read(maxBytes: 10) } }
                if round % 2 == 0 { awaitBlocked(b.core.receiveBuffer) }
                a.close()
                XCTAssertEqual(try result().get(), [], "round \(round)")
            }
        }
    }

    func testShutdownReadWhileReaderBlockedGivesEndOfFile() throws {
        try bounded(60) {
            for round in 0..<rounds {
                let (a, b) = try stack.socketPair(.stream)
                let result = inBackground { Result { () throws(NetError) in try b.read(maxBytes: 10) } }
                if round % 2 == 0 { awaitBlocked(b.core.receiveBuffer) }
                try b.shutdown(.read)
                XCTAssertEqual(try result().get(), [], "round \(round)")
                withExtendedLifetime(a) {}
            }
        }
    }

    func testPeerCloseWhileWriterWaitsForSpaceGivesBrokenPipe() throws {
        try bounded(60) {
            for round in 0..<rounds {
                let (a, b) = try stack.socketPair(.stream)
                try b.setOption(.receiveBufferSize, 1000)
                let result = inBackground {
                    Result { () throws(NetError) in try a.write([UInt8](repeating: 1, count: 5000)) }
                }
                if round % 2 == 0 { awaitBlocked(b.core.receiveBuffer) }
                b.close()
                // A write cut short reports what it sent (as Linux does); the next one fails:
                // first with the reset the unread bytes caused, then with brokenPipe.
                switch result() {
                case .success(let sent):
                    XCTAssertTrue((1...1000).contains(sent), "round \(round): sent \(sent)")
                    assertThrows(.connectionReset) { () throws(NetError) in try a.write([1]) }
                    assertThrows(.brokenPipe) { () throws(NetError) in try a.write([1]) }
                case .failure(let error):
                    XCTAssertEqual(error, .brokenPipe, "round \(round)")
                }
            }
        }
    }

    func testListenSocketClosedWhileAcceptWaits() throws {
        try bounded(60) {
            for round in 0..<rounds {
                let listener = try stack.socket(.local, .stream)
                try listener.bind(to: .local("/race/\(round)"))
                try listener.listen()
                let result = inBackground { Result { () throws(NetError) in try listener.accept() } }
                if round % 2 == 0 { awaitBlocked(listener.core.receiveBuffer) }
                listener.close()
                switch result() {
                case .success: XCTFail("accept succeeded on a closed listener, round \(round)")
                case .failure(let error): XCTAssertEqual(error, .badDescriptor, "round \(round)")
                }
            }
        }
    }

    func testCloseWithQueuedConnectionsFreesThemAndTellsClients() throws {
        try bounded(60) {
            for round in 0..<scaled(100) {
                let listener = try stack.socket(.local, .stream)
                try listener.bind(to: .local("/queued"))
                try listener.listen(backlog: 8)
                var clients: [NetSocket] = []
                for _ in 0..<5 {
                    let client = try stack.socket(.local, .stream)
                    try client.connect(to: .local("/queued"))
                    try client.write([1, 2, 3])
                    clients.append(client)
                }
                XCTAssertEqual(listener.core.listenQueue?.counts.complete, 5)
                stack.quiesce()
                // 1 listener + 5 clients + 5 queued children.
                XCTAssertEqual(stack.liveSocketCount, 11, "round \(round)")
                listener.close()
                stack.quiesce()
                XCTAssertEqual(
                    stack.liveSocketCount, 6,
                    "queued children freed (the closed listener and 5 clients remain), round \(round)")
                // As on Linux and BSD: an aborted embryonic connection is a reset, then the end.
                for client in clients {
                    assertThrows(.connectionReset) { () throws(NetError) in try client.read(maxBytes: 10) }
                    XCTAssertEqual(try client.read(maxBytes: 10), [])
                    assertThrows(.brokenPipe) { () throws(NetError) in try client.write([1]) }
                }
            }
        }
    }

    func testOwnCloseWhileReaderBlockedEndsTheRead() throws {
        try bounded(60) {
            for round in 0..<rounds {
                let (a, b) = try stack.socketPair(.stream)
                let result = inBackground { Result { () throws(NetError) in try b.read(maxBytes: 10) } }
                if round % 2 == 0 { awaitBlocked(b.core.receiveBuffer) }
                b.close()
                switch result() {
                case .success(let bytes): XCTFail("read returned \(bytes) after close, round \(round)")
                case .failure(let error): XCTAssertEqual(error, .badDescriptor, "round \(round)")
                }
                withExtendedLifetime(a) {}
            }
        }
    }

    func testWakeUpRacingTheWaitIsNeverLost() throws {
        try bounded(120) {
            let (a, b) = try stack.socketPair(.stream)
            let count = scaled(localSocketsOnProtocolThreads ? 5_000 : 30_000)
            let echo = OSThread.start(name: "echo") {
                for _ in 0..<count {
                    guard let byte = try? b.read(maxBytes: 1), byte.count == 1, (try? b.write(byte)) == 1 else {
                        return
                    }
                }
            }
            var sum = 0
            for index in 0..<count {
                try a.write([UInt8(truncatingIfNeeded: index)])
                let reply = try a.read(maxBytes: 1)
                XCTAssertEqual(reply.count, 1)
                sum += Int(reply.first ?? 0)
            }
            echo.join()
            XCTAssertEqual(sum, (0..<count).reduce(0) { $0 + $1 % 256 })
        }
    }

    func testTimeoutRacingTheWakeUpNeverLosesData() throws {
        try bounded(60) {
            let (a, b) = try stack.socketPair(.stream)
            b.receiveTimeout = .microseconds(50)
            let count = scaled(20_000)
            let writer = OSThread.start(name: "writer") {
                for index in 0..<count { _ = try? a.write([UInt8(truncatingIfNeeded: index)]) }
                a.close()
            }
            var received: [UInt8] = []
            while true {
                let attempt = Result { () throws(NetError) in try b.read(maxBytes: 64) }
                if case .failure(let error) = attempt {
                    XCTAssertEqual(error, .wouldBlock)
                    continue
                }
                let chunk = try attempt.get()
                if chunk.isEmpty { break }
                received += chunk
            }
            writer.join()
            XCTAssertEqual(received, (0..<count).map { UInt8(truncatingIfNeeded: $0) })
            XCTAssertEqual(b.core.receiveBuffer.waiterCount.load(ordering: .relaxed), 0)
        }
    }

    /// A datagram sender reads its peer's link without a lock while another thread reconnects
    /// it back and forth: every datagram lands, once, in one of the two receivers (and the
    /// links replaced under the sender are freed only after it lets go; run under
    /// ThreadSanitizer too).
    func testDatagramSendsRacingReconnectsLandOnceEach() throws {
        try bounded(60) {
            let count = scaled(4_000)
            let receivers = try ["/race/dg-a", "/race/dg-b"].map { name throws(NetError) -> NetSocket in
                let receiver = try stack.socket(.local, .datagram)
                try receiver.bind(to: .local(name))
                try receiver.setOption(.receiveBufferSize, count * DatagramRecord.charge(forPayload: 2))
                receiver.isNonBlocking = true
                return receiver
            }
            let sender = try stack.socket(.local, .datagram)
            try sender.connect(to: .local("/race/dg-a"))
            let reconnects = scaled(2_000)
            let reconnector = inBackground { () -> NetError? in
                for index in 0..<reconnects {
                    do throws(NetError) {
                        try sender.connect(to: .local(index % 2 == 0 ? "/race/dg-b" : "/race/dg-a"))
                    } catch {
                        return error
                    }
                }
                return nil
            }
            for index in 0..<count {
                try sender.write([UInt8(truncatingIfNeeded: index), UInt8(truncatingIfNeeded: index >> 8)])
            }
            XCTAssertNil(reconnector())
            var seen = [Int](repeating: 0, count: count)
            for receiver in receivers {
                while let datagram = try? receiver.receive(maxBytes: 8) {
                    XCTAssertEqual(datagram.bytes.count, 2)
                    let index = Int(datagram.bytes[0]) | Int(datagram.bytes[1]) << 8
                    if index < count { seen[index] += 1 }
                }
            }
            XCTAssertEqual(seen.filter { $0 != 1 }.count, 0, "every datagram arrives exactly once")
        }
    }

    // MARK: A close that lands between a request's user-side checks and its run on the owner

    func testConnectRacingItsOwnCloseFailsAndLinksNothing() throws {
        try bounded {
            let listener = try stack.socket(.local, .stream)
            try listener.bind(to: .local("/race/connect-close"))
            try listener.listen()
            let client = try stack.socket(.local, .stream)
            client.core.beforeNextRequest = { client.close() }
            assertThrows(.badDescriptor) { () throws(NetError) in
                try client.connect(to: .local("/race/connect-close"))
            }
            XCTAssertEqual(listener.core.listenQueue?.counts.complete, 0, "no child for a closed client")
            XCTAssertFalse(client.state.contains(.connected))
            listener.isNonBlocking = true
            assertThrows(.wouldBlock) { () throws(NetError) in try listener.accept() }
        }
    }

    func testBindRacingCloseLeavesTheNameFree() throws {
        try bounded {
            let socket = try stack.socket(.local, .stream)
            socket.core.beforeNextRequest = { socket.close() }
            assertThrows(.badDescriptor) { () throws(NetError) in try socket.bind(to: .local("/race/bind-close")) }
            let second = try stack.socket(.local, .stream)
            try second.bind(to: .local("/race/bind-close"))
            XCTAssertEqual(second.localAddress, .local("/race/bind-close"))
        }
    }

    func testListenRacingCloseDoesNotReopenTheQueue() throws {
        try bounded {
            let listener = try stack.socket(.local, .stream)
            try listener.bind(to: .local("/race/listen-close"))
            listener.core.beforeNextRequest = { listener.close() }
            assertThrows(.badDescriptor) { () throws(NetError) in try listener.listen() }
            XCTAssertFalse(listener.state.contains(.listening))
            let client = try stack.socket(.local, .stream)
            assertThrows(.connectionRefused) { () throws(NetError) in
                try client.connect(to: .local("/race/listen-close"))
            }
        }
    }

    // MARK: close() ends every blocked call

    func testCloseEndsADatagramSendBlockedOnAFullReceiver() throws {
        try bounded(60) {
            for round in 0..<scaled(100) {
                let receiver = try stack.socket(.local, .datagram)
                try receiver.bind(to: .local("/race/full"))
                try receiver.setOption(.receiveBufferSize, 2048)
                let sender = try stack.socket(.local, .datagram)
                try sender.connect(to: .local("/race/full"))
                sender.isNonBlocking = true
                while (try? sender.write([UInt8](repeating: 1, count: 500))) != nil {}
                sender.isNonBlocking = false
                let result = inBackground {
                    Result { () throws(NetError) in try sender.write([UInt8](repeating: 2, count: 500)) }
                }
                if round % 2 == 0 { awaitBlocked(receiver.core.receiveBuffer) }
                sender.close()
                switch result() {
                case .success(let sent): XCTFail("a send on a closed socket sent \(sent), round \(round)")
                case .failure(let error): XCTAssertEqual(error, .badDescriptor, "round \(round)")
                }
                XCTAssertEqual(receiver.core.receiveBuffer.waiterCount.load(ordering: .sequentiallyConsistent), 0)
                receiver.close()
            }
        }
    }

    // MARK: Readiness observers and pollers across threads

    /// Registrations come and go while another thread makes the socket ready over and over:
    /// the observer list is never handed to the notifying thread (ThreadSanitizer checks it).
    func testPollerRegistrationsRacingNotifications() throws {
        try bounded(60) {
            let (a, b) = try stack.socketPair(.stream)
            let poller = SocketPoller()
            let rounds = scaled(2000)
            let writer = OSThread.start(name: "notify") {
                for index in 0..<rounds {
                    _ = try? a.write([UInt8(truncatingIfNeeded: index)])
                    _ = try? b.read(maxBytes: 1)
                }
            }
            for token in 0..<rounds {
                try poller.register(b, interest: .readable, token: token)
                poller.unregister(b)
            }
            writer.join()
            XCTAssertEqual(poller.count, 0)
            XCTAssertEqual(poller.wait(timeout: .zero), [])
        }
    }
}
