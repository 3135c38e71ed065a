import CNetMP
import Synchronization

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
    /// was woken), at most the configured maximum. When half again a wake-up is more than that
    /// maximum (a machine so busy that a woken thread waits for a CPU), no affordable spin
    /// catches a woken partner, and spinning would take the CPU from the very thread waited
    /// for: the floor is then the configured minimum.
    public var waiterBounds: ClosedRange<Int64> {
        let minimum = SpinPolicy.waiterMinimumSpinNanoseconds
        let maximum = Swift.max(SpinPolicy.waiterMaximumSpinNanoseconds, minimum)
        let catchesAWakeUp = wakeNanoseconds &+ wakeNanoseconds / 2
        return (catchesAWakeUp <= maximum ? Swift.max(minimum, catchesAWakeUp) : minimum)...maximum
    }

    /// How long an idle protocol thread spins on its empty port: between the configured minimum
    /// and maximum. No wake-up floor here: an idle thread that spun a wake-up's worth after every
    /// batch would burn a good part of a core under sparse traffic, and a sender that wakes it
    /// does not wait for the wake-up to finish.
    public var protocolThreadBounds: ClosedRange<Int64> {
        let minimum = SpinPolicy.protocolThreadMinimumSpinNanoseconds
        return minimum...Swift.max(SpinPolicy.protocolThreadSpinNanoseconds, minimum)
    }

    /// The next spin budget after a wait that spun `budget` nanoseconds and ended as `outcome`.
    ///
    /// Caught (while spinning, or just after in a yield that ran no one else): twice what it took
    /// plus a microsecond, so the next wait still catches a partner a little slower. Slept: half
    /// the budget, so a partner that does not answer soon costs less CPU each time, but never
    /// below the floor (a wake-up's cost), so a few long gaps do not make later waits sleep where
    /// a spin would have caught the partner. Caught in a yield that ran other threads: the
    /// partner shares this CPU, where spinning only delays it, so no spin next time (the waiter
    /// yields at once) until a sleep or a catch says otherwise. Never above the ceiling.
    public static func adaptedBudget(_ budget: Int64, after outcome: SpinOutcome, within bounds: ClosedRange<Int64>)
        -> Int64
    {
        switch outcome {
        case .caught(let spent):
            let spent = Swift.max(0, spent)
            return (spent >= (Int64.max - 1000) / 2 ? Int64.max : spent * 2 + 1000).clamped(to: bounds)
        case .yieldedToOthers:
            return 0
        case .slept:
            return (budget / 2).clamped(to: bounds)
        }
    }

    /// How a park ended: its result (`netmp_parker_park_measuring`), `waited` nanoseconds after
    /// the wait began, its yields having taken `yielded` nanoseconds. Nil for a timeout, which
    /// says nothing about the partner.
    public func outcome(ofPark result: Int32, waited: Int64, yielded: Int64) -> SpinOutcome? {
        if result >= 0 { return .caught(afterNanoseconds: nanoseconds(forRounds: result)) }
        if result == NETMP_PARK_YIELDED {
            return yielded > SpinPolicy.yieldRanOthersNanoseconds ? .yieldedToOthers : .caught(afterNanoseconds: waited)
        }
        if result == NETMP_PARK_SLEPT { return .slept }
        return nil
    }

    /// A waiter's next budget after a park that spun `budget` nanoseconds (see `outcome`).
    package func adaptedWaiterBudget(_ budget: Int64, afterPark result: Int32, waited: Int64, yielded: Int64) -> Int64 {
        guard let outcome = outcome(ofPark: result, waited: waited, yielded: yielded) else { return budget }
        return Self.adaptedBudget(budget, after: outcome, within: waiterBounds)
    }
}

/// How a spinning wait ended.
public enum SpinOutcome: Sendable, Equatable {
    /// The partner answered after this long, while this side spun or yielded to no one.
    case caught(afterNanoseconds: Int64)
    /// The partner answered while this side's yields ran other threads on its CPU.
    case yieldedToOthers
    /// This side slept in the kernel and was woken.
    case slept
}

extension Comparable {
    @inline(__always) fileprivate func clamped(to range: ClosedRange<Self>) -> Self {
        Swift.min(range.upperBound, Swift.max(range.lowerBound, self))
    }
}

extension SpinCalibration {
    /// Wake-ups measured by sleepers as they happen (`netmp_parker_park_measuring`), averaged;
    /// 0 until the first. The start-up figure alone would go stale: a wake-up costs a few
    /// microseconds while every CPU is busy and several times that once the machine is quiet.
    private static let observedWake = Atomic<Int64>(0)

    /// The figures to use now: the start-up ones, with the wake-up cost that recent sleeps
    /// measured once there are any.
    public static var current: SpinCalibration {
        var calibration = measured
        let observed = observedWake.load(ordering: .relaxed)
        if observed > 0 { calibration.wakeNanoseconds = observed.clamped(to: wakeRange) }
        return calibration
    }

    /// Records a wake-up a sleeper measured; a negative one (not known) is ignored.
    package static func recordWake(_ nanoseconds: Int64) {
        guard nanoseconds >= 0 else { return }
        // Load and store, not read-modify-write: a lost sample among concurrent sleepers is
        // harmless, and a sleep is the slow path anyway.
        let average = observedWake.load(ordering: .relaxed)
        observedWake.store(blendedWake(average, sample: nanoseconds), ordering: .relaxed)
    }

    /// The running average of wake-ups after one more `sample`: the first sample as it is (within
    /// `wakeRange`), then an eighth of the way to each new one, a sample counting at most twice
    /// the average, so that a few long preemptions move it little.
    public static func blendedWake(_ average: Int64, sample: Int64) -> Int64 {
        let sample = sample.clamped(to: wakeRange)
        guard average > 0 else { return sample }
        let counted = Swift.min(sample, average.multipliedReportingOverflow(by: 2).partialValue)
        return (average + (counted - average) / 8).clamped(to: wakeRange)
    }
}
