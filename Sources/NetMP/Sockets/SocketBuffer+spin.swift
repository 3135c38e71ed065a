import CNetMP

extension SocketBuffer {
    /// Spins for `condition` up to this buffer's spin budget, before a blocked call posts its
    /// predicate message: a partner that answers within the budget then costs neither a waiter
    /// nor a wake-up. The condition is read without the lock, so true is a hint and the caller
    /// retries its operation. The budget adapts to how the spin ended.
    func spinUntil(_ condition: () -> Bool) -> Bool {
        let budget = spinBudget.load(ordering: .relaxed)
        let bounds = SpinCalibration.measured.waiterBounds
        let start = netmp_monotonic_ns()
        var rounds = 0
        while true {
            if condition() {
                let spent = netmp_monotonic_ns() &- start
                spinBudget.store(
                    SpinCalibration.adaptedBudget(budget, caughtAfter: spent, within: bounds), ordering: .relaxed)
                return true
            }
            netmp_cpu_relax()
            rounds &+= 1
            // The clock is read every few rounds: a read costs about as much as a pause.
            if rounds & 7 == 0 && netmp_monotonic_ns() &- start >= budget { break }
        }
        spinBudget.store(SpinCalibration.adaptedBudget(budget, caughtAfter: nil, within: bounds), ordering: .relaxed)
        return false
    }
}
