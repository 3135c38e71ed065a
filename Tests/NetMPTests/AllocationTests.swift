import CAllocationCounter
import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// Paths that must not touch the heap once warm: a synchronous request to a protocol thread,
/// and a blocking read that waits for a writer.
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
        before = netmp_allocations_total()
        for index in 0..<1000 { _ = try? thread.call { () throws(NetError) in shared.value += index } }
        let madeWithCaptures = netmp_allocations_total() - before
        XCTAssertEqual(shared.value, 499_500)
        XCTAssertEqual(madeWithCaptures, 1000, "calls allocated beyond their closure")
    }

    func testBlockingPingPongReusesItsWaiters() throws {
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
        let rounds = 2000
        let warmUp = 100
        let done = DispatchSemaphore(value: 0)
        let echoAllocations = LockedValue<Int>(-1)
        // The echo side reads a byte (waiting for it) and writes it back.
        let echo = Thread {
            var byte: UInt8 = 0
            var start = 0
            var echoed = 0
            withUnsafeMutableBytes(of: &byte) { buffer in
                for round in 0..<rounds {
                    if round == warmUp { start = netmp_allocations_this_thread() }
                    guard (try? right.read(into: buffer)) == 1,
                        (try? right.write(UnsafeRawBufferPointer(buffer))) == 1
                    else { break }
                    echoed += 1
                }
            }
            let made = netmp_allocations_this_thread() - start
            echoAllocations.withLock { $0 = echoed == rounds ? made : -1 }
            done.signal()
        }
        echo.start()
        var byte: UInt8 = 7
        var start = 0
        var returned = 0
        try withUnsafeMutableBytes(of: &byte) { buffer in
            for round in 0..<rounds {
                if round == warmUp {
                    start = netmp_allocations_this_thread()
                    if getenv("NETMP_TRACE_ALLOCATIONS") != nil { netmp_allocations_trace_next(20) }
                }
                XCTAssertEqual(try left.write(UnsafeRawBufferPointer(buffer)), 1)
                returned += try left.read(into: buffer)
            }
        }
        let made = netmp_allocations_this_thread() - start
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success, "the echo thread did not finish")
        XCTAssertEqual(returned, rounds)
        // A new waiter costs two allocations (the object and its parker): one per wait without
        // reuse. The spare is not reused when the waker is still inside its wake-up as the next
        // wait starts (about 1 wait in 100 here); at most 1 in 10 is allowed.
        let waits = rounds - warmUp
        XCTAssertLessThanOrEqual(made, 2 * waits / 10, "the pinging thread's waits allocated \(made) times")
        let echoMade = echoAllocations.withLock { $0 }
        XCTAssertGreaterThanOrEqual(echoMade, 0, "the echo thread did not finish its rounds")
        XCTAssertLessThanOrEqual(echoMade, 2 * waits / 10, "the echo thread's waits allocated \(echoMade) times")
    }
}
