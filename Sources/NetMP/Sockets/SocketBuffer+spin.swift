import CNetMP

extension SocketBuffer {
    /// Spins up to `budget` nanoseconds for `condition`, before a blocked call posts its predicate
    /// message: a partner that answers within the budget then costs neither a waiter nor a
    /// wake-up. Returns the nanoseconds spent when the condition held, nil when the budget ran
    /// out. The condition is read without the lock, so it is a hint: the caller retries its
    /// operation.
    func spin(upTo budget: Int64, until condition: () -> Bool) -> Int64? {
        let start = netmp_monotonic_ns()
        var rounds = 0
        while true {
            if condition() { return netmp_monotonic_ns() &- start }
            // The clock is read every few rounds (a read costs about as much as a pause).
            if rounds & 7 == 0 && netmp_monotonic_ns() &- start >= budget { return nil }
            netmp_cpu_relax()
            rounds &+= 1
        }
    }

    /// Waits for `condition` without posting a waiter: spins up to `spinning` nanoseconds, then
    /// yields the CPU a few times (`SpinPolicy.waiterYields`), checking after each. Returns how
    /// the wait ended, or nil if the condition still does not hold (the caller then sleeps).
    func waitBriefly(spinning budget: Int64, until condition: () -> Bool) -> SpinOutcome? {
        let start = netmp_monotonic_ns()
        if let spent = spin(upTo: budget, until: condition) { return .caught(afterNanoseconds: spent) }
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
