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
}
