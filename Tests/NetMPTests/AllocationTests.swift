import CAllocationCounter
import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// A path that must not touch the heap once warm: a synchronous request to a protocol thread.
/// (Blocking waits are not there yet: a sleeping wait reuses its thread's spare waiter only
/// when its last waker has let go of it, which often it has not.)
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
        // Counted on the calling thread, which makes the closure; warmed up first (the first
        // call of a new result type instantiates its metadata).
        for _ in 0..<100 { _ = try? thread.call { () throws(NetError) in shared.value += 0 } }
        before = netmp_allocations_this_thread()
        for index in 0..<1000 { _ = try? thread.call { () throws(NetError) in shared.value += index } }
        let madeWithCaptures = netmp_allocations_this_thread() - before
        XCTAssertEqual(shared.value, 499_500)
        XCTAssertEqual(madeWithCaptures, 1000, "calls allocated beyond their closure")
    }
}
