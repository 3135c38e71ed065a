import CNetMP

/// What waiting costs on this machine, measured once at start-up: one round of the CPU's pause
/// hint, and a wake-up of a thread asleep in the kernel.
///
/// Spin budgets are kept in nanoseconds (a pause costs 10× more on some CPUs than on others) and
/// turned into pause rounds with `pauseNanoseconds`. `wakeNanoseconds` bounds a waiter's spin
/// from below: a waiter that spins at least as long as a wake-up takes still catches a partner
/// that had gone to sleep, so one sleep does not make the partner sleep too.
public struct SpinCalibration: Sendable, Equatable {
    /// One `netmp_cpu_relax`, in nanoseconds.
    public var pauseNanoseconds: Double
    /// From an unpark to the sleeper running again, in nanoseconds.
    public var wakeNanoseconds: Int64

    /// Measured values outside these are taken as these: a wake-up measured in a storm must not
    /// make every waiter spin for milliseconds.
    public static let pauseRange = 0.25...1000.0
    public static let wakeRange: ClosedRange<Int64> = 1000...100_000

    public init(pauseNanoseconds: Double, wakeNanoseconds: Int64) {
        self.pauseNanoseconds = pauseNanoseconds.isFinite ? pauseNanoseconds.clamped(to: Self.pauseRange) : 40
        self.wakeNanoseconds = wakeNanoseconds.clamped(to: Self.wakeRange)
    }

    /// This machine's figures, measured on first use (about a millisecond).
    public static let measured = SpinCalibration(
        pauseNanoseconds: netmp_measure_pause_ns(2000, 5), wakeNanoseconds: Self.measureWake())

    private static func measureWake() -> Int64 {
        let measured = netmp_measure_wake_ns(15)
        return measured > 0 ? measured : 20_000
    }

    /// Pause rounds that take about `nanoseconds` (at least 0, at most `Int32.max`).
    public func rounds(for nanoseconds: Int64) -> Int32 {
        guard nanoseconds > 0 else { return 0 }
        let rounds = (Double(nanoseconds) / pauseNanoseconds).rounded()
        return rounds >= Double(Int32.max) ? Int32.max : Int32(rounds)
    }

    /// The time `rounds` pause rounds take.
    public func nanoseconds(forRounds rounds: Int32) -> Int64 {
        guard rounds > 0 else { return 0 }
        return Int64((Double(rounds) * pauseNanoseconds).rounded())
    }

    /// How long a blocked user thread spins: at least the configured minimum and half again a
    /// wake-up (so the partner's reply still comes in while this side spins after the partner
    /// was woken), at most the configured maximum (never below that floor).
    public var waiterBounds: ClosedRange<Int64> {
        bounds(SpinPolicy.waiterMinimumSpinNanoseconds, SpinPolicy.waiterMaximumSpinNanoseconds)
    }

    /// How long an idle protocol thread spins on its empty port, bounded the same way.
    public var protocolThreadBounds: ClosedRange<Int64> {
        bounds(SpinPolicy.protocolThreadMinimumSpinNanoseconds, SpinPolicy.protocolThreadSpinNanoseconds)
    }

    private func bounds(_ minimum: Int64, _ maximum: Int64) -> ClosedRange<Int64> {
        let floor = Swift.max(minimum, wakeNanoseconds &+ wakeNanoseconds / 2)
        return floor...Swift.max(maximum, floor)
    }

    /// The next spin budget after a spin of `budget` nanoseconds that either caught the wake-up
    /// after `caughtAfter` nanoseconds, or (nil) ended in a yield or a sleep.
    ///
    /// Caught: twice what it took plus a microsecond, so the next wait still catches a partner a
    /// little slower. Missed: half the budget, so a partner that does not answer soon costs less
    /// CPU each time. Never below the floor (a wake-up's cost), so a few long gaps do not make
    /// later waits sleep where a spin would have caught the partner; never above the ceiling.
    public static func adaptedBudget(
        _ budget: Int64, caughtAfter spent: Int64?, within bounds: ClosedRange<Int64>
    ) -> Int64 {
        let next: Int64
        if let spent {
            let spent = Swift.max(0, spent)
            next = spent >= (Int64.max - 1000) / 2 ? Int64.max : spent * 2 + 1000
        } else {
            next = budget / 2
        }
        return next.clamped(to: bounds)
    }

    /// A waiter's next budget after a park that spun `budget` nanoseconds and ended with
    /// `result` (see `netmp_parker_park_reporting`: pause rounds used, or a negative code).
    func adaptedWaiterBudget(_ budget: Int64, afterPark result: Int32) -> Int64 {
        Self.adaptedBudget(
            budget, caughtAfter: result >= 0 ? nanoseconds(forRounds: result) : nil, within: waiterBounds)
    }
}

extension Comparable {
    @inline(__always) fileprivate func clamped(to range: ClosedRange<Self>) -> Self {
        Swift.min(range.upperBound, Swift.max(range.lowerBound, self))
    }
}
