import CNetMP
import Synchronization

/// The reply slot of one thread's synchronous calls (`lwkt_domsg`'s reply port), reused by
/// every call the thread makes. The request travels as an embedded message and its result is
/// written into the caller's stack, so the only allocation a call makes is the context of its
/// request closure (none when the closure captures nothing).
///
/// A thread waits on one call at a time. The owner may still be inside `handle()` (about to
/// unpark) when the caller sees `ready` and starts its next call with the same slot: that
/// stray unpark only makes a later park return early, and every park here loops on `ready`.
final class CallSlot: EmbeddedMessage, @unchecked Sendable {
    static let perThread = ThreadLocal { CallSlot() }

    private let parker: UnsafeMutablePointer<netmp_parker>
    private let ready = Atomic<Bool>(false)
    /// The caller's pending call (on its stack), set by the caller and cleared by the owner
    /// before `ready`.
    private var pending: UnsafeMutablePointer<any PendingCall>?

    private init() {
        parker = .allocate(capacity: 1)
        netmp_parker_init(parker)
    }

    deinit { parker.deallocate() }

    func handle() {
        if let pending {
            self.pending = nil
            pending.pointee.run()
        }
        ready.store(true, ordering: .releasing)
        netmp_parker_unpark(parker)
    }

    /// Runs `body` on `port` and waits for its result, spinning as `budget` says first and
    /// adapting it. Nil if the port no longer runs.
    func call<T>(
        on port: some MessagePort, budget: borrowing Atomic<Int64>, _ body: @escaping () throws(NetError) -> T
    ) -> Result<T, NetError>? {
        var result: Result<T, NetError>?
        return withUnsafeMutablePointer(to: &result) { resultSlot -> Result<T, NetError>? in
            // Three words (closure and pointer): the existential holds it inline, no box.
            var call: any PendingCall = TypedCall(body: body, result: resultSlot)
            return withUnsafeMutablePointer(to: &call) { callSlot -> Result<T, NetError>? in
                ready.store(false, ordering: .relaxed)
                pending = callSlot
                guard port.post(self) else {
                    pending = nil
                    return nil
                }
                let calibration = SpinCalibration.current
                var first = true
                while !ready.load(ordering: .acquiring) {
                    let spin = budget.load(ordering: .relaxed)
                    let start = first ? netmp_monotonic_ns() : 0
                    var yielded: Int64 = 0
                    var wake: Int64 = -1
                    let outcome = netmp_parker_park_measuring(
                        parker, first ? calibration.rounds(for: spin) : 0, first ? SpinPolicy.waiterYields : 0, -1,
                        &yielded, &wake)
                    SpinCalibration.recordWake(wake)
                    if first {
                        let waited = netmp_monotonic_ns() &- start
                        budget.store(
                            calibration.adaptedWaiterBudget(spin, afterPark: outcome, waited: waited, yielded: yielded),
                            ordering: .relaxed)
                    }
                    first = false
                }
                return resultSlot.pointee
            }
        }
    }
}

/// A call waiting in its caller's stack frame.
protocol PendingCall {
    func run()
}

private struct TypedCall<T>: PendingCall {
    let body: () throws(NetError) -> T
    let result: UnsafeMutablePointer<Result<T, NetError>?>

    func run() { result.pointee = Result(catching: body) }
}
