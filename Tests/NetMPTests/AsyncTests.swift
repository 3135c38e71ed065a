import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

final class AsyncTests: StackTestCase {
    func testAsyncPingPongBetweenTasks() async throws {
        let watchdog = Watchdog(seconds: 30, name: #function)
        defer { watchdog.finish() }
        let (a, b) = try stack.socketPair(.stream)
        let echo = Task {
            for _ in 0..<2000 {
                let byte = try await b.read(maxBytes: 1)
                try await b.write(byte)
            }
        }
        var sum = 0
        for index in 0..<2000 {
            try await a.write([UInt8(index % 256)])
            sum += Int(try await a.read(maxBytes: 1).first ?? 0)
        }
        try await echo.value
        XCTAssertEqual(sum, (0..<2000).reduce(0) { $0 + $1 % 256 })
    }

    func testInboundSequenceDeliversEverythingWithBackPressure() async throws {
        let watchdog = Watchdog(seconds: 30, name: #function)
        defer { watchdog.finish() }
        let (a, b) = try stack.socketPair(.stream)
        try b.setOption(.receiveBufferSize, 8192)
        var generator = SeededGenerator(seed: 11)
        let payload = generator.bytes(1 << 20)
        let writer = Task {
            try await a.write(payload)
            try a.shutdown(.write)
        }
        var received = StreamHash()
        var chunks = 0
        for try await chunk in b.inbound(chunkSize: 3000) {
            XCTAssertLessThanOrEqual(chunk.count, 3000)
            XCTAssertLessThanOrEqual(try b.option(.bytesToRead), 8192, "the sender never overfills the buffer")
            received.add(chunk)
            chunks += 1
        }
        try await writer.value
        var expected = StreamHash()
        expected.add(payload)
        XCTAssertEqual(received, expected)
        XCTAssertGreaterThanOrEqual(chunks, payload.count / 3000)
    }

    func testAsyncAcceptConnectAndScopedConnection() async throws {
        let watchdog = Watchdog(seconds: 30, name: #function)
        defer { watchdog.finish() }
        let listener = try stack.socket(.local, .stream)
        try listener.bind(to: .local("/async/server"))
        try listener.listen()
        let server = Task { () async throws(NetError) -> [UInt8] in
            let connection = try await listener.accept()
            let bytes = try await connection.read(maxBytes: 100)
            try await connection.write(bytes.reversed())
            return bytes
        }
        let reply = try await stack.withConnection(to: .local("/async/server")) { socket in
            try await socket.write([1, 2, 3])
            return try await socket.read(maxBytes: 100)
        }
        XCTAssertEqual(reply, [3, 2, 1])
        let received = try await server.value
        XCTAssertEqual(received, [1, 2, 3])
        listener.close()
    }

    func testCancellingAWaitingReadEndsItAndRemovesTheWaiter() async throws {
        let watchdog = Watchdog(seconds: 30, name: #function)
        defer { watchdog.finish() }
        let (a, b) = try stack.socketPair(.stream)
        let reader = Task { () async throws(NetError) -> [UInt8] in try await b.read(maxBytes: 10) }
        while b.core.receiveBuffer.waiterCount.load(ordering: .sequentiallyConsistent) == 0 { await Task.yield() }
        reader.cancel()
        do {
            _ = try await reader.value
            XCTFail("a cancelled read returned")
        } catch {
            XCTAssertEqual(error as? NetError, .cancelled)
        }
        XCTAssertEqual(b.core.receiveBuffer.waiterCount.load(ordering: .sequentiallyConsistent), 0)
        // The socket still works.
        try await a.write([5])
        let after = try await b.read(maxBytes: 10)
        XCTAssertEqual(after, [5])
    }

    func testCancelBeforeTheWaitStarts() async throws {
        let watchdog = Watchdog(seconds: 30, name: #function)
        defer { watchdog.finish() }
        let (a, b) = try stack.socketPair(.stream)
        let reader = Task { () async throws(NetError) -> [UInt8] in
            withUnsafeCurrentTask { $0?.cancel() }
            return try await b.read(maxBytes: 10)
        }
        defer { withExtendedLifetime(a) {} }
        do {
            _ = try await reader.value
            XCTFail("expected cancellation")
        } catch {
            XCTAssertEqual(error as? NetError, .cancelled)
        }
    }

    func testAsyncDatagramsAndErrors() async throws {
        let watchdog = Watchdog(seconds: 30, name: #function)
        defer { watchdog.finish() }
        let server = try stack.socket(.local, .datagram)
        try server.bind(to: .local("/async/dgram"))
        let client = try stack.socket(.local, .datagram)
        let receiver = Task { () async throws -> DatagramReceipt in
            let message = try await server.receive(maxBytes: 4)
            XCTAssertEqual(message.bytes, [1, 2, 3, 4])
            return DatagramReceipt(count: message.bytes.count, source: message.source, flags: message.flags)
        }
        try await client.send([1, 2, 3, 4, 5], to: .local("/async/dgram"))
        let message = try await receiver.value
        XCTAssertEqual(message.count, 4)
        XCTAssertEqual(message.flags, .truncated)
        XCTAssertEqual(message.source, .unnamed)
        do throws(NetError) {
            try await client.send([1], to: .local("/async/none"))
            XCTFail("expected refusal")
        } catch {
            XCTAssertEqual(error, .connectionRefused)
        }
    }

    func testPeerCloseEndsAnAsyncReadWithEndOfFile() async throws {
        let watchdog = Watchdog(seconds: 30, name: #function)
        defer { watchdog.finish() }
        let (a, b) = try stack.socketPair(.stream)
        let reader = Task { () async throws(NetError) -> [UInt8] in try await b.read(maxBytes: 10) }
        while b.core.receiveBuffer.waiterCount.load(ordering: .sequentiallyConsistent) == 0 { await Task.yield() }
        a.close()
        let end = try await reader.value
        XCTAssertEqual(end, [])
    }

    /// close() ends an `async` send blocked on another socket's full buffer too.
    func testCloseEndsAnAsyncDatagramSendBlockedOnAFullReceiver() async throws {
        let watchdog = Watchdog(seconds: 30, name: #function)
        defer { watchdog.finish() }
        let receiver = try stack.socket(.local, .datagram)
        try receiver.bind(to: .local("/async/full"))
        try receiver.setOption(.receiveBufferSize, 2048)
        let sender = try stack.socket(.local, .datagram)
        try await sender.connect(to: .local("/async/full"))
        while (try? sender.write([UInt8](repeating: 1, count: 500), flags: .dontWait)) != nil {}
        let blocked = Task { () async throws(NetError) -> Int in
            try await sender.write([UInt8](repeating: 2, count: 500))
        }
        while receiver.core.receiveBuffer.waiterCount.load(ordering: .sequentiallyConsistent) == 0 {
            await Task.yield()
        }
        sender.close()
        do {
            let sent = try await blocked.value
            XCTFail("a send on a closed socket sent \(sent)")
        } catch {
            XCTAssertEqual(error as? NetError, .badDescriptor)
        }
        XCTAssertEqual(receiver.core.receiveBuffer.waiterCount.load(ordering: .sequentiallyConsistent), 0)
    }
}
