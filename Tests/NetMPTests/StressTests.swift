import Synchronization
import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// Many threads and tasks writing, reading, shutting down and closing at once, on stacks whose
/// local sockets run inline and on stacks whose sockets belong to every protocol thread in
/// turn. Bounded in time; every socket and buffer freed at the end.
final class StressTests: XCTestCase {
    private func scaled(_ count: Int) -> Int {
        guard let text = getenv("NETMP_STRESS_SCALE"), let value = Double(String(cString: text)) else { return count }
        return Swift.max(1, Int(Double(count) * value))
    }

    /// Waits for OS threads without blocking a cooperative thread.
    private func join(_ threads: [OSThread]) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            OSThread.start(name: "joiner") {
                for thread in threads { thread.join() }
                continuation.resume()
            }.detach()
        }
    }

    private func makeStack(onProtocolThreads: Bool) -> NetworkStack {
        NetworkStack(.init(threadCount: 3, localSocketsOnProtocolThreads: onProtocolThreads))
    }

    private func checkFreed(_ stack: NetworkStack) {
        stack.quiesce()
        XCTAssertEqual(stack.liveSocketCount, 0, "sockets leaked")
        XCTAssertEqual(stack.liveBufferCount, 0, "buffers leaked")
        stack.shutdown()
    }

    /// Streams between threads (blocking API) and tasks (`async` API), some cut short by
    /// closes and shutdowns: complete streams arrive exact; a writer's early close delivers
    /// exactly what it wrote; a reader that stops has read past its stopping point. Blocking
    /// calls stay on OS threads, never on the cooperative pool.
    private func streamsWithChaos(onProtocolThreads: Bool) async throws {
        let stack = makeStack(onProtocolThreads: onProtocolThreads)
        let pairs = 24
        let size = scaled(1 << 20)
        let failures = FailureLog()
        var threads: [OSThread] = []
        var tasks: [Task<Void, Never>] = []
        for index in 0..<pairs {
            let (a, b) = try stack.socketPair(.stream)
            try b.setOption(.receiveBufferSize, 16384 + index * 1000)
            var generator = SeededGenerator(seed: UInt64(index))
            let payload = generator.bytes(size)
            // 0: none, 1: reader closes early, 2: writer closes early, 3: reader shuts down reading.
            let chaos = index % 4
            let writer = ChaosWriter(socket: a, payload: payload, index: index, chaos: chaos, failures: failures)
            let reader = ChaosReader(socket: b, payload: payload, index: index, chaos: chaos, failures: failures)
            if index % 2 == 0 {
                threads.append(OSThread.start(name: "stress-w\(index)") { writer.runBlocking() })
            } else {
                tasks.append(Task { await writer.runAsync() })
            }
            if index % 3 == 0 {
                tasks.append(Task { await reader.runAsync() })
            } else {
                threads.append(OSThread.start(name: "stress-r\(index)") { reader.runBlocking() })
            }
        }
        for task in tasks { await task.value }
        await join(threads)
        failures.check()
        checkFreed(stack)
    }

    func testStreamsWithChaosInline() async throws {
        let watchdog = Watchdog(seconds: 120, name: #function)
        defer { watchdog.finish() }
        try await streamsWithChaos(onProtocolThreads: false)
    }

    func testStreamsWithChaosOnProtocolThreads() async throws {
        let watchdog = Watchdog(seconds: 120, name: #function)
        defer { watchdog.finish() }
        try await streamsWithChaos(onProtocolThreads: true)
    }

    /// Connects, accepts and closes racing on several listeners (names reused as soon as the
    /// previous listener closed), with the listener closed while an accept waits; exact counts.
    private func connectAcceptClose(onProtocolThreads: Bool) throws {
        let stack = makeStack(onProtocolThreads: onProtocolThreads)
        let rounds = scaled(40)
        let failures = FailureLog()
        for round in 0..<rounds {
            let listener = try stack.socket(.local, .stream)
            try listener.bind(to: .local("/stress/\(round % 3)"))
            try listener.listen(backlog: 16)
            let accepted = Atomic<Int>(0)
            let connected = Atomic<Int>(0)
            let echoed = Atomic<Int>(0)
            let acceptor = OSThread.start(name: "acceptor") {
                while true {
                    do throws(NetError) {
                        let connection = try listener.accept()
                        accepted.add(1, ordering: .relaxed)
                        if let bytes = try? connection.read(maxBytes: 4), !bytes.isEmpty {
                            _ = try? connection.write(bytes)
                        }
                        if accepted.load(ordering: .relaxed) % 3 == 0 { connection.close() }
                    } catch {
                        if error != .badDescriptor { failures.record("accept: \(error)") }
                        return
                    }
                }
            }
            onThreads(4) { client in
                for attempt in 0..<10 {
                    guard let socket = try? stack.socket(.local, .stream) else { return }
                    do throws(NetError) {
                        try socket.connect(to: .local("/stress/\(round % 3)"))
                        connected.add(1, ordering: .relaxed)
                        try socket.write([UInt8(client), UInt8(attempt)])
                        let reply = try socket.read(maxBytes: 4)
                        if reply == [UInt8(client), UInt8(attempt)] {
                            echoed.add(1, ordering: .relaxed)
                        } else {
                            failures.record("client \(client) attempt \(attempt): echo \(reply)")
                        }
                    } catch {
                        failures.record("client \(client) attempt \(attempt): \(error)")
                    }
                    if attempt % 2 == 0 { socket.close() }
                }
            }
            listener.close()
            acceptor.join()
            // Each client waits for its echo before its next connect, so at most 4 are queued
            // (the backlog is 16): every connect is made, accepted and echoed exactly once.
            XCTAssertEqual(connected.load(ordering: .relaxed), 40, "round \(round)")
            XCTAssertEqual(accepted.load(ordering: .relaxed), 40, "round \(round)")
            XCTAssertEqual(echoed.load(ordering: .relaxed), 40, "round \(round)")
        }
        failures.check()
        checkFreed(stack)
    }

    func testConnectAcceptCloseInline() throws {
        try bounded(120) { try connectAcceptClose(onProtocolThreads: false) }
    }

    func testConnectAcceptCloseOnProtocolThreads() throws {
        try bounded(120) { try connectAcceptClose(onProtocolThreads: true) }
    }

    /// Datagram senders and receivers on every protocol thread, while the runtime's timers and
    /// messages run on the same threads.
    func testDatagramsAndTimersTogether() throws {
        try bounded(120) {
            let stack = makeStack(onProtocolThreads: true)
            var receivers = try (0..<3).map { index -> NetSocket in
                let socket = try stack.socket(.local, .datagram)
                try socket.bind(to: .local("/stress/dg/\(index)"))
                return socket
            }
            let perSender = scaled(3000)
            let fired = Atomic<Int>(0)
            let timersPerThread = 200
            for thread in stack.threads {
                thread.send {
                    for step in 0..<timersPerThread {
                        let timer = Callout(on: thread) { fired.add(1, ordering: .relaxed) }
                        timer.arm(after: Int64(step * 1000))
                        if step % 5 == 0 { timer.cancel() }
                    }
                }
            }
            let senders = (0..<3).map { index in
                OSThread.start(name: "dg-sender-\(index)") {
                    guard let socket = try? stack.socket(.local, .datagram) else { return }
                    for sequence in 0..<perSender {
                        _ = try? socket.send(
                            [UInt8(index), UInt8(sequence % 256)], to: .local("/stress/dg/\(sequence % 3)"))
                    }
                }
            }
            var counts = [0, 0, 0]
            for _ in 0..<(3 * perSender) / 3 {
                for (index, receiver) in receivers.enumerated() {
                    let message = try receiver.read(maxBytes: 4)
                    XCTAssertEqual(message.count, 2)
                    counts[index] += 1
                }
            }
            for sender in senders { sender.join() }
            XCTAssertEqual(counts, [perSender, perSender, perSender])
            // Let every timer that was not cancelled fire: 4 of every 5.
            while fired.load(ordering: .relaxed) < stack.threads.count * timersPerThread * 4 / 5 { OSThread.yieldNow() }
            stack.quiesce()
            XCTAssertEqual(fired.load(ordering: .relaxed), stack.threads.count * timersPerThread * 4 / 5)
            for receiver in receivers { receiver.close() }
            receivers.removeAll()
            checkFreed(stack)
        }
    }
}

/// The writing side of a chaos stream.
struct ChaosWriter: Sendable {
    let socket: NetSocket
    let payload: [UInt8]
    let index: Int
    let chaos: Int
    let failures: FailureLog

    /// Chunk boundaries, the same for both faces.
    private var chunks: [Range<Int>] { ChaosWriter.chunks(count: payload.count, index: index) }

    static func chunks(count: Int, index: Int) -> [Range<Int>] {
        var generator = SeededGenerator(seed: UInt64(index) &* 31)
        var ranges: [Range<Int>] = []
        var offset = 0
        while offset < count {
            let end = Swift.min(count, offset + 1 + Int(generator.next() % 40_000))
            ranges.append(offset..<end)
            offset = end
        }
        return ranges
    }

    /// Where a writer that closes early (chaos 2) stops: the end of its first chunk past a third.
    static func closePoint(count: Int, index: Int) -> Int {
        chunks(count: count, index: index).first { $0.upperBound > count / 3 }?.upperBound ?? count
    }

    /// After a chunk: true when the writer should stop now (it closed its end).
    private func closesAfter(_ range: Range<Int>) -> Bool {
        guard chaos == 2 && range.upperBound > payload.count / 3 else { return false }
        socket.close()
        return true
    }

    /// Only a reader that closed (with bytes unread: a reset) or shut down may stop a writer.
    private func failed(_ error: NetError) {
        if ![1, 3].contains(chaos) || ![.brokenPipe, .connectionReset].contains(error) {
            failures.record("pair \(index): writer \(error)")
        }
    }

    func runBlocking() {
        for range in chunks {
            do throws(NetError) {
                _ = try socket.write(Array(payload[range]))
            } catch {
                failed(error)
                return
            }
            if closesAfter(range) { return }
        }
        try? socket.shutdown(.write)
    }

    func runAsync() async {
        for range in chunks {
            do throws(NetError) {
                try await socket.write(Array(payload[range]))
            } catch {
                failed(error)
                return
            }
            if closesAfter(range) { return }
        }
        try? socket.shutdown(.write)
    }
}

/// The reading side of a chaos stream.
struct ChaosReader: Sendable {
    let socket: NetSocket
    let payload: [UInt8]
    let index: Int
    let chaos: Int
    let failures: FailureLog

    /// Before each read: true when the reader should stop now (closed or shut down).
    private func stopsAt(_ received: Int) -> Bool {
        if chaos == 1 && received > payload.count / 2 {
            socket.close()
            return true
        }
        if chaos == 3 && received > payload.count / 4 {
            do throws(NetError) {
                try socket.shutdown(.read)
                if try socket.read(maxBytes: 10, flags: []) != [] {
                    failures.record("pair \(index): data after shutdown")
                }
            } catch {
                failures.record("pair \(index): shutdown \(error)")
            }
            return true
        }
        return false
    }

    /// Exact: all of it (chaos 0), exactly what the writer sent before it closed (chaos 2), or
    /// a prefix that goes past the point where the reader stopped (chaos 1 and 3); by hash.
    private func check(_ received: [UInt8]) {
        let expectedCount: Int
        switch chaos {
        case 0: expectedCount = payload.count
        case 2: expectedCount = ChaosWriter.closePoint(count: payload.count, index: index)
        default:
            let stop = chaos == 1 ? payload.count / 2 : payload.count / 4
            guard received.count > stop, received.count <= payload.count else {
                failures.record("pair \(index): \(received.count) bytes, stopped at \(stop)")
                return
            }
            expectedCount = received.count
        }
        var got = StreamHash()
        got.add(received)
        var expected = StreamHash()
        expected.add(Array(payload[0..<expectedCount]))
        if got != expected {
            failures.record("pair \(index) (chaos \(chaos)): got \(got), expected \(expected)")
        }
    }

    func runBlocking() {
        var received: [UInt8] = []
        while !stopsAt(received.count) {
            do throws(NetError) {
                let chunk = try socket.read(maxBytes: 7000, flags: [])
                if chunk.isEmpty { break }
                received += chunk
            } catch {
                failures.record("pair \(index): reader \(error)")
                return
            }
        }
        check(received)
    }

    func runAsync() async {
        var received: [UInt8] = []
        while !stopsAt(received.count) {
            do throws(NetError) {
                let chunk = try await socket.read(maxBytes: 7000)
                if chunk.isEmpty { break }
                received += chunk
            } catch {
                failures.record("pair \(index): reader \(error)")
                return
            }
        }
        check(received)
    }
}
