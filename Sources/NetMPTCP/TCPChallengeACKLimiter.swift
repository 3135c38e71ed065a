import Synchronization

/// The stack-wide budget of RFC 5961 challenge ACKs (section 7), shared by the protocol threads
/// through atomics. Each second allows half the limit plus a random amount below the limit, as
/// Linux does since 2016: with a fixed count, an off-path attacker could spend the budget with
/// forged RSTs and count the challenge ACKs left to learn whether a guessed connection exists
/// (CVE-2016-5696).
package final class TCPChallengeACKLimiter: Sendable {
    /// The nominal challenge ACKs per second (0: none are sent).
    package let limit: Atomic<Int>
    private let second = Atomic<Int64>(Int64.min)
    private let budget = Atomic<Int>(0)
    private let randomState: Atomic<UInt64>

    package init(limit: Int, seed: UInt64) {
        self.limit = Atomic(Swift.max(0, limit))
        randomState = Atomic(seed ^ 0xC4A1_1E46_E5EE_D5)
    }

    /// Takes one challenge ACK from the budget of the second `now` (nanoseconds) falls in; false
    /// when that budget is spent.
    package func allow(now: Int64) -> Bool {
        let current = now / 1_000_000_000
        let stamp = second.load(ordering: .relaxed)
        if stamp != current, second.compareExchange(expected: stamp, desired: current, ordering: .relaxed).exchanged {
            budget.store(allowance(), ordering: .relaxed)
        }
        var left = budget.load(ordering: .relaxed)
        while left > 0 {
            let (exchanged, original) = budget.compareExchange(
                expected: left, desired: left - 1, ordering: .relaxed)
            if exchanged { return true }
            left = original
        }
        return false
    }

    /// A new second's budget: limit/2 plus a random amount below the limit.
    private func allowance() -> Int {
        // Clamped so that the sum below cannot overflow whatever was configured.
        let nominal = Swift.min(limit.load(ordering: .relaxed), 1 << 40)
        guard nominal > 0 else { return 0 }
        // SplitMix64 over a shared counter: each refill draws a fresh value.
        var z = randomState.wrappingAdd(0x9E37_79B9_7F4A_7C15, ordering: .relaxed).newValue
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return nominal / 2 + nominal % 2 + Int(z % UInt64(nominal))
    }
}
