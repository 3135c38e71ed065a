import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// Cases found by driving the public API as a user would.
final class PublicAPIFindingsTests: StackTestCase {
    private func checkWaitAllAgainstABlockedWriter(writes: [Int], firstRead: Int, bufferSize: Int) throws {
        let (a, b) = try stack.socketPair(.stream)
        try b.setOption(.receiveBufferSize, bufferSize)
        var generator = SeededGenerator(seed: UInt64(writes.count))
        let payload = generator.bytes(writes.reduce(0, +))
        let writer = OSThread.start(name: "writer") {
            var offset = 0
            for size in writes {
                _ = try? a.write(Array(payload[offset..<offset + size]))
                offset += size
            }
        }
        var received = StreamHash()
        if firstRead > 0 { received.add(try b.read(maxBytes: firstRead)) }
        received.add(try b.read(maxBytes: payload.count - received.count, flags: .waitAll))
        writer.join()
        var expected = StreamHash()
        expected.add(payload)
        XCTAssertEqual(received, expected)
    }

    /// A wait-all read and a writer blocked for room never wait for each other.
    func testWaitAllReadAndBlockedWriterDoNotDeadlock() throws {
        try bounded(60) {
            // 64 KiB buffer, a 1 MiB write blocked, a 100-byte read, then a 2 MiB wait-all read.
            try checkWaitAllAgainstABlockedWriter(
                writes: [1 << 20, (1 << 20) + 100], firstRead: 100, bufferSize: 64 << 10)
            // 127 writes of 513 bytes (the buffer nearly full), more behind them, one wait-all read.
            try checkWaitAllAgainstABlockedWriter(
                writes: [Int](repeating: 513, count: 300), firstRead: 0, bufferSize: 64 << 10)
        }
    }

    func testShutdownFailsPingsInFlight() async throws {
        let watchdog = Watchdog(seconds: 30, name: #function)
        defer { watchdog.finish() }
        let stack = NetworkStack(.init(threadCount: 2))
        // An interface nobody answers on: the echo requests wait for ARP, then for their
        // (minute-long) timeout.
        let interface = TestInterface()
        try stack.addAddress(address("198.18.0.1"), prefixLength: 24, to: interface)
        let started = stack.startPing(address("198.18.0.2"), timeout: .seconds(60))
        let blocking = OSThread.start(name: "ping") {
            let outcome = Result { () throws(NetError) in
                try stack.ping(address("198.18.0.3"), timeout: .seconds(60))
            }
            XCTAssertEqual(outcome.failure, .shutdown)
        }
        let asynchronous = Task { () async -> NetError? in
            do throws(NetError) {
                _ = try await stack.ping(address("198.18.0.4"), timeout: .seconds(60))
                return nil
            } catch {
                return error
            }
        }
        stack.quiesce()
        XCTAssertFalse(started.isComplete)
        stack.shutdown()
        XCTAssertEqual(started.result?.failure, .shutdown)
        blocking.join()
        let asyncError = await asynchronous.value
        XCTAssertEqual(asyncError, .shutdown)
    }

    func testHugeReadsAllocateWhatTheyTakeNotWhatTheyAskFor() throws {
        try bounded {
            let (a, b) = try stack.socketPair(.stream)
            try a.write([1, 2, 3])
            try a.shutdown(.write)
            let all = try b.read(maxBytes: Int.max, flags: .waitAll)
            XCTAssertEqual(all, [1, 2, 3])
            XCTAssertLessThan(all.capacity, 4096, "no gigabyte up front")

            // A local stream's buffer is a megabyte: a read that finds 100 bytes allocates ~100.
            let (c, d) = try stack.socketPair(.stream)
            try c.write([UInt8](repeating: 5, count: 100))
            let some = try d.read(maxBytes: 1 << 20)
            XCTAssertEqual(some, [UInt8](repeating: 5, count: 100))
            XCTAssertLessThan(some.capacity, 4096)

            let (e, f) = try stack.socketPair(.datagram)
            try e.write([7, 8])
            let datagram = try f.read(maxBytes: 1 << 20)
            XCTAssertEqual(datagram, [7, 8])
            XCTAssertLessThan(datagram.capacity, 4096)
        }
    }

    func testInboundChunksAreSizedByWhatArrived() async throws {
        let watchdog = Watchdog(seconds: 30, name: #function)
        defer { watchdog.finish() }
        let (a, b) = try stack.socketPair(.stream)
        try a.write([1, 2, 3], flags: [])
        try a.shutdown(.write)
        var chunks: [[UInt8]] = []
        for try await chunk in b.inbound() { chunks.append(chunk) }
        XCTAssertEqual(chunks, [[1, 2, 3]])
        XCTAssertLessThan(chunks[0].capacity, 4096, "not 64 KiB per chunk")
    }

    func testAddressTextIsParsedStrictly() throws {
        let interface = TestInterface()
        for text in [
            "1.2.3.4///8", "1.2.3.4/", "/8", "1.2.3.4/+8", "1.2.3.4/08", "1.2.3.4/33", "1.2.3.4/8/", "1.2.3.4/-1",
            " 1.2.3.4/8", "1.2.3.4/8 ", "1.2.3/8", "1.2.3.4",
        ] {
            assertThrows(.invalidArgument) { () throws(NetError) in try stack.addAddress(text, to: interface) }
        }
        try stack.addAddress("198.18.0.1/24", to: interface)
        XCTAssertTrue(stack.inet.configuration.addresses.contains { $0.address == address("198.18.0.1") })
    }

    func testUnregisterReleasesTheSocketAtOnce() throws {
        try bounded {
            let poller = SocketPoller()
            let (a, b) = try stack.socketPair(.stream)
            weak var core: Socket?
            do {
                let (c, d) = try stack.socketPair(.stream)
                core = d.core
                try poller.register(d, interest: .readable, token: 1)
                try c.write([1])
                poller.unregister(d)
                c.close()
                d.close()
            }
            XCTAssertNil(core, "the poller's ready queue no longer holds an unregistered socket")
            withExtendedLifetime((a, b)) {}
        }
    }

    func testEveryNamedErrorPrintsItsName() {
        let named: [(NetError, String)] = [
            (.permissionDenied, "permissionDenied"), (.networkUnreachable, "networkUnreachable"),
            (.hostUnreachable, "hostUnreachable"), (.addressFamilyNotSupported, "addressFamilyNotSupported"),
            (.protocolNotSupported, "protocolNotSupported"), (.noBufferSpace, "noBufferSpace"),
            (.nameTooLong, "nameTooLong"),
        ]
        for (error, name) in named {
            XCTAssertEqual(error.description, "\(name) (\(error.rawValue))")
        }
    }
}

extension Result {
    fileprivate var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
