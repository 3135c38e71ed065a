import CNetMP
import NetMPRuntime

extension SocketBuffer {
    /// Spins up to `budget` nanoseconds for `condition`, before a blocked call posts its predicate
    /// message: a partner that answers within the budget then costs neither a waiter nor a
    /// wake-up. Returns the nanoseconds spent when the condition held, nil when the budget ran
    /// out. The condition is read without the lock, so it is a hint: the caller retries its
    /// operation.
    ///
    /// The condition is checked after every pause for the first `SpinPolicy.densePollNanoseconds`
    /// (a round trip's answer is seen at once), then every `SpinPolicy.sparsePollPauses` pauses:
    /// each check pulls the lines the partner is writing (its byte count, the lock) to this CPU,
    /// and a writer or reader that is busy for long gets on faster when it is polled less.
    package func spin(upTo budget: Int64, until condition: () -> Bool) -> Int64? {
        spin(upTo: budget, from: netmp_monotonic_ns(), until: condition)
    }

    /// `spin(upTo:until:)` from `start`, the caller's own reading of the clock. What it returns
    /// is the time at the last reading before the condition held, not after: a reading there
    /// (some 30 ns in a VM) was on the path of every answer a spin catches, and the budget it
    /// feeds (`SpinCalibration.adaptedBudget`) needs no better than the few pauses between
    /// readings.
    package func spin(upTo budget: Int64, from start: Int64, until condition: () -> Bool) -> Int64? {
        var pausesPerCheck = 1
        var checks = 0
        var spent: Int64 = 0
        while true {
            if condition() { return spent }
            checks &+= 1
            // The clock is read after the first check, then every few while they are dense (a read
            // costs about a pause).
            if pausesPerCheck > 1 || checks & 7 == 1 {
                spent = netmp_monotonic_ns() &- start
                if spent >= budget { return nil }
                if spent >= SpinPolicy.densePollNanoseconds { pausesPerCheck = SpinPolicy.sparsePollPauses }
            }
            for _ in 0..<pausesPerCheck { netmp_cpu_relax() }
        }
    }

    /// Waits for `condition` without posting a waiter: spins up to `spinning` nanoseconds, then
    /// yields the CPU a few times (`SpinPolicy.waiterYields`), checking after each. Returns how
    /// the wait ended, or nil if the condition still does not hold (the caller then sleeps).
    /// `start` is the caller's reading of the clock as the wait began (read here when not given).
    package func waitBriefly(
        spinning budget: Int64, from start: Int64 = netmp_monotonic_ns(), until condition: () -> Bool
    ) -> SpinOutcome? {
        if let spent = spin(upTo: budget, from: start, until: condition) { return .caught(afterNanoseconds: spent) }
        var yielded: Int64 = 0
        for _ in 0..<SpinPolicy.waiterYields {
            let before = netmp_monotonic_ns()
            OSThread.yieldNow()
            let after = netmp_monotonic_ns()
            yielded &+= after &- before
            if condition() {
                // Yields that ran other threads: the partner shares this CPU.
                return yielded > SpinPolicy.yieldRanOthersNanoseconds
                    ? .yieldedToOthers : .caught(afterNanoseconds: after &- start)
            }
        }
        return nil
    }
}
