import CAllocationCounter
import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// Paths that must not touch the heap once warm: a synchronous request to a protocol thread,
/// and a blocking read that sleeps until a writer wakes it.
final class AllocationTests: XCTestCase {
    override func setUpWithError() throws {
        #if DEBUG
            throw XCTSkip(
                "allocations are counted in an optimised build (scripts/test.sh runs this suite with -c release): "
                    + "a debug build allocates where -O does not, e.g. for option-set literals")
        #else
            try XCTSkipUnless(
                netmp_allocation_counting_available(),
                "allocations are not counted under a sanitizer (it owns malloc)")
        #endif
    }

    func testSynchronousRequestToAProtocolThreadAllocatesOnlyItsClosure() {
        let thread = ProtocolThread(index: 0, clock: SystemClock(), mode: .dedicated)
        defer { thread.stop() }
        let shared = OwnedBox(0)
        // A call runs on the caller when the owner is idle (direct dispatch) and is queued when
        // it is not, which timing decides; the queued path's first use on a thread makes its reply
        // slot and instantiates its generic types (11 allocations, once). Both paths are warmed
        // up first, the queued one on a thread that never dispatches.
        let queuedOnly = ProtocolThread(index: 1, clock: SystemClock(), mode: .dedicated, directDispatch: false)
        for _ in 0..<100 {
            _ = try? queuedOnly.call { () throws(NetError) in 1 }
            _ = try? queuedOnly.call { () throws(NetError) in shared.value += 0 }
        }
        queuedOnly.stop()
        for _ in 0..<100 { _ = try? thread.call { () throws(NetError) in 1 } }
        // A request that captures nothing: reply slot, parker and message are all reused.
        var before = netmp_allocations_total()
        if getenv("NETMP_TRACE_ALLOCATIONS") != nil { netmp_allocations_trace_next(2) }
        var sum = 0
        for _ in 0..<1000 { sum &+= (try? thread.call { () throws(NetError) in 1 }) ?? 0 }
        let madeWithoutCaptures = netmp_allocations_total() - before
        XCTAssertEqual(sum, 1000)
        XCTAssertEqual(madeWithoutCaptures, 0, "calls without captures allocated")
        // A request that captures: one allocation, its closure's context, and nothing else.
        // Counted on the calling thread, which makes the closure; warmed up first (the first
        // call of a new result type instantiates its metadata).
        for _ in 0..<100 { _ = try? thread.call { () throws(NetError) in shared.value += 0 } }
        before = netmp_allocations_this_thread()
        for index in 0..<1000 { _ = try? thread.call { () throws(NetError) in shared.value += index } }
        let madeWithCaptures = netmp_allocations_this_thread() - before
        XCTAssertEqual(shared.value, 499_500)
        XCTAssertEqual(madeWithCaptures, 1000, "calls allocated beyond their closure")
    }

    /// The local datagram benchmark's calls: a connected sender reaches its peer through the
    /// published link, the record and its chunk come from the pool and go back to it.
    func testLocalDatagramsAllocateNothingOnceWarm() throws {
        let stack = NetworkStack(.init(threadCount: 1))
        defer { stack.shutdown() }
        let (sender, receiver) = try stack.socketPair(.datagram)
        let payload = [UInt8](repeating: 7, count: 1024)
        var destination = [UInt8](repeating: 0, count: 2048)
        var received = 0
        var made = 0
        try payload.withUnsafeBytes { message in
            try destination.withUnsafeMutableBytes { buffer in
                // Warm: the thread's chunk cache, the receive queue's storage.
                for _ in 0..<100 {
                    try sender.write(message)
                    received += try receiver.read(into: buffer)
                }
                let before = netmp_allocations_this_thread()
                for _ in 0..<1000 {
                    try sender.write(message)
                    received += try receiver.read(into: buffer)
                }
                made = netmp_allocations_this_thread() - before
            }
        }
        XCTAssertEqual(received, 1100 * payload.count)
        XCTAssertEqual(destination[..<payload.count].filter { $0 != 7 }.count, 0)
        XCTAssertEqual(made, 0, "local datagrams allocated once warm")
    }

    /// The TCP round trip's calls over loopback (the benchmark's), in the driven mode: the
    /// segments' chunks, the queued bytes' chunks and the messages are all reused, and a read
    /// gives the chunk it emptied back to the pool.
    func testTCPRoundTripsAllocateNothingOnceWarm() throws {
        let clock = ManualClock(startingAt: 1)
        let stack = NetworkStack(.init(threadCount: 1, clock: clock, mode: .driven))
        defer { stack.shutdown() }
        let (client, server) = try connectedPair(stack)
        try client.setOption(.noDelay, 1)
        try server.setOption(.noDelay, 1)
        var byte: [UInt8] = [7]
        var received = 0
        // Warm: the thread's chunk cache, the queues' and the actions' storage.
        received += try tcpRoundTrips(100, client, server, stack, &byte)
        let before = netmp_allocations_total()
        received += try tcpRoundTrips(1000, client, server, stack, &byte)
        let made = netmp_allocations_total() - before
        XCTAssertEqual(received, 2200)
        XCTAssertEqual(byte, [7])
        XCTAssertEqual(made, 0, "TCP round trips allocated once warm")
    }

    /// A connected client and the server's end, non-blocking, over loopback (the driven mode).
    private func connectedPair(_ stack: NetworkStack) throws(NetError) -> (NetSocket, NetSocket) {
        let listener = try stack.socket(.inet, .stream)
        try listener.bind(to: .ipv4(IPv4Address(127, 0, 0, 1), port: 7000))
        try listener.listen(backlog: 4)
        let client = try stack.socket(.inet, .stream)
        client.isNonBlocking = true
        do {
            try client.connect(to: .ipv4(IPv4Address(127, 0, 0, 1), port: 7000))
        } catch .inProgress {}
        stack.runUntilIdle()
        let server = try listener.accept()
        listener.close()
        server.isNonBlocking = true
        return (client, server)
    }

    /// `count` one-byte round trips, the benchmark's calls: a write from the caller's byte and a
    /// read into it. Returns the bytes read.
    private func tcpRoundTrips(
        _ count: Int, _ client: NetSocket, _ server: NetSocket, _ stack: NetworkStack, _ byte: inout [UInt8]
    ) throws -> Int {
        try byte.withUnsafeMutableBytes { raw in
            var received = 0
            for _ in 0..<count {
                _ = try client.write(UnsafeRawBufferPointer(raw))
                stack.runUntilIdle()
                received += try server.read(into: raw)
                _ = try server.write(UnsafeRawBufferPointer(raw))
                stack.runUntilIdle()
                received += try client.read(into: raw)
            }
            return received
        }
    }

    func testSleepingBlockingWaitsReuseTheirWaiters() throws {
        // No spinning and no yields: every read that finds nothing posts its waiter and sleeps,
        // so the waits themselves (not a spin that catches the partner) are what is counted.
        let saved = (
            SpinPolicy.waiterMaximumSpinNanoseconds, SpinPolicy.waiterMinimumSpinNanoseconds, SpinPolicy.waiterYields
        )
        SpinPolicy.waiterMaximumSpinNanoseconds = 0
        SpinPolicy.waiterMinimumSpinNanoseconds = 0
        SpinPolicy.waiterYields = 0
        defer {
            (
                SpinPolicy.waiterMaximumSpinNanoseconds, SpinPolicy.waiterMinimumSpinNanoseconds,
                SpinPolicy.waiterYields
            ) = saved
        }
        let stack = NetworkStack(.init(threadCount: 1))
        defer { stack.shutdown() }
        let (left, right) = try stack.socketPair(.stream)
        for socket in [left, right] { socket.core.receiveBuffer.spinBudget.store(0, ordering: .relaxed) }
        let rounds = 3000
        let done = DispatchSemaphore(value: 0)
        let echoMeasure = LockedValue<WaitAllocationMeter.Result?>(nil)
        // The echo side reads a byte (sleeping until it comes) and writes it back.
        let echo = Thread {
            var byte: UInt8 = 0
            var meter = WaitAllocationMeter()
            var echoed = 0
            withUnsafeMutableBytes(of: &byte) { buffer in
                for round in 0..<rounds {
                    meter.startRound(round)
                    guard (try? right.read(into: buffer)) == 1,
                        (try? right.write(UnsafeRawBufferPointer(buffer))) == 1
                    else { break }
                    echoed += 1
                }
            }
            let result = meter.result()
            echoMeasure.withLock { $0 = echoed == rounds ? result : nil }
            done.signal()
        }
        echo.start()
        var byte: UInt8 = 7
        var meter = WaitAllocationMeter()
        var returned = 0
        try withUnsafeMutableBytes(of: &byte) { buffer in
            for round in 0..<rounds {
                meter.startRound(round)
                XCTAssertEqual(try left.write(UnsafeRawBufferPointer(buffer)), 1)
                returned += try left.read(into: buffer)
            }
        }
        let ping = meter.result()
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success, "the echo thread did not finish")
        XCTAssertEqual(returned, rounds)
        let echoed = try XCTUnwrap(echoMeasure.withLock { $0 }, "the echo thread did not finish its rounds")
        // Both threads did sleep in waits while measured (often one of them almost never waits
        // at first: its partner answers while it is still inside the wake-up's system call).
        XCTAssertGreaterThan(ping.waits, rounds / 10, "the pinging thread hardly waited")
        XCTAssertGreaterThan(echoed.waits, rounds / 10, "the echo thread hardly waited")
        // A woken thread may wait again while its waker is still inside the wake-up (the futex
        // wake), holding the waiter just used; a waker holds at most one, so a second spare is
        // always free and no wait allocates.
        XCTAssertEqual(ping.allocations, 0, "the pinging thread's \(ping.waits) waits allocated")
        XCTAssertEqual(echoed.allocations, 0, "the echo thread's \(echoed.waits) waits allocated")
    }
}

/// A thread's allocations and sleeping waits, counted from its first round past the warm-up
/// that begins after it has waited once (the first wait makes the thread's spare waiters and
/// the buffer's waiter list, which are kept).
private struct WaitAllocationMeter {
    struct Result: Sendable {
        var allocations: Int
        var waits: Int
    }

    static let warmUpRounds = 100
    private var startAllocations: Int?
    private var startWaits = 0

    mutating func startRound(_ round: Int) {
        guard startAllocations == nil, round >= WaitAllocationMeter.warmUpRounds,
            SocketWaiter.waitsStartedOnThisThread > 0
        else { return }
        startAllocations = netmp_allocations_this_thread()
        startWaits = SocketWaiter.waitsStartedOnThisThread
        if getenv("NETMP_TRACE_ALLOCATIONS") != nil { netmp_allocations_trace_next(10) }
    }

    func result() -> Result {
        guard let startAllocations else { return Result(allocations: 0, waits: 0) }
        return Result(
            allocations: netmp_allocations_this_thread() - startAllocations,
            waits: SocketWaiter.waitsStartedOnThisThread - startWaits)
    }
}
