import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// Cases a user of a serious stack would trip on: limits at their extremes, shutdown with
/// calls blocked, data accepted just before a close.
final class EdgeCaseTests: StackTestCase {
    func testLowWaterMarksAboveTheBufferDoNotDeadlock() throws {
        try bounded {
            let (a, b) = try stack.socketPair(.stream)
            try b.setOption(.receiveLowWater, 1 << 20)
            try a.setOption(.sendLowWater, 1 << 20)
            var generator = SeededGenerator(seed: 5)
            let payload = generator.bytes(1 << 20)
            let writer = OSThread.start(name: "writer") {
                _ = try? a.write(payload)
                a.close()
            }
            var received: [UInt8] = []
            while true {
                let chunk = try b.read(maxBytes: 1 << 20)
                if chunk.isEmpty { break }
                received += chunk
            }
            writer.join()
            XCTAssertEqual(received, payload)
        }
    }

    func testHugeTimeoutsAndReadSizesAreAccepted() throws {
        try bounded {
            let (a, b) = try stack.socketPair(.stream)
            try b.setOption(.receiveTimeout, Int.max)
            b.receiveTimeout = .seconds(Int64.max)
            try a.write([1, 2, 3])
            XCTAssertEqual(try b.read(maxBytes: Int.max), [1, 2, 3])
            let poller = SocketPoller()
            try poller.register(b, interest: .readable, token: 1)
            try a.write([4])
            XCTAssertEqual(poller.wait(timeout: .seconds(Int64.max)).map(\.token), [1])
        }
    }

    func testNonBlockingWaitAllReturnsWhatItTook() throws {
        try bounded {
            let (a, b) = try stack.socketPair(.stream)
            try b.setOption(.receiveBufferSize, 1000)
            a.isNonBlocking = true
            XCTAssertEqual(try a.write([UInt8](repeating: 7, count: 5000)), 1000)
            b.isNonBlocking = true
            // More than the buffer can ever hold: the bytes taken come back, none are lost.
            XCTAssertEqual(try b.read(maxBytes: 5000, flags: .waitAll), [UInt8](repeating: 7, count: 1000))
        }
    }

    func testShutdownEndsBlockedCallsWithShutdown() throws {
        let stack = NetworkStack(.init(threadCount: 2, localSocketsOnProtocolThreads: true))
        let (a, b) = try stack.socketPair(.stream)
        let listener = try stack.socket(.local, .stream)
        try listener.bind(to: .local("/edge/shutdown"))
        try listener.listen()
        let results = LockedValue<[NetError]>([])
        let readers = [
            OSThread.start(name: "reader") {
                do throws(NetError) { _ = try b.read(maxBytes: 10) } catch { results.withLock { $0.append(error) } }
            },
            OSThread.start(name: "acceptor") {
                do throws(NetError) { _ = try listener.accept() } catch { results.withLock { $0.append(error) } }
            },
        ]
        while b.core.receiveBuffer.waiterCount.load(ordering: .sequentiallyConsistent) == 0
            || listener.core.receiveBuffer.waiterCount.load(ordering: .sequentiallyConsistent) == 0
        {
            OSThread.yieldNow()
        }
        bounded { stack.shutdown() }
        bounded { for reader in readers { reader.join() } }
        XCTAssertEqual(results.withLock { $0 }, [.shutdown, .shutdown])
        assertThrows(.shutdown) { () throws(NetError) in try a.write([1]) }
    }

    func testPollerForgetsClosedSockets() throws {
        try bounded {
            let poller = SocketPoller()
            let (a, b) = try stack.socketPair(.stream)
            try poller.register(a, interest: .readable, token: 1)
            try poller.register(b, interest: .readable, token: 2)
            a.close()
            let events = poller.wait(timeout: .seconds(5))
            XCTAssertTrue(events.contains(SocketPoller.Event(token: 1, events: .hangup)))
            XCTAssertEqual(poller.count, 1, "the closed socket is no longer held")
            XCTAssertFalse(poller.wait(timeout: .zero).contains { $0.token == 1 })
        }
    }

    func testDroppingAStackStopsItsThreads() throws {
        weak var weakThread: ProtocolThread?
        do {
            let stack = NetworkStack(.init(threadCount: 1))
            weakThread = stack.threads.first
            let (a, b) = try stack.socketPair(.stream)
            try a.write([1])
            XCTAssertEqual(try b.read(maxBytes: 1), [1])
        }
        XCTAssertNil(weakThread, "the protocol thread ended with its stack")
    }
}
