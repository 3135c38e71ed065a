import CNetMP
import Synchronization

/// The time source a stack is given. Protocol threads read it for timers; tests substitute a
/// manual clock so that time only moves when the test says so.
public protocol NetClock: AnyObject, Sendable {
    /// Nanoseconds on a monotonic scale.
    var nanoseconds: Int64 { get }
    /// True when time moves only by `advance`: protocol threads then sleep without a deadline
    /// and are poked when the clock moves.
    var isManual: Bool { get }
    /// Registers a closure to run after each manual advance.
    func addAdvanceObserver(_ observer: @escaping @Sendable () -> Void)
}

/// Real monotonic time (CLOCK_MONOTONIC).
public final class SystemClock: NetClock {
    public init() {}
    public var nanoseconds: Int64 { netmp_monotonic_ns() }
    package static var monotonicNanoseconds: Int64 { netmp_monotonic_ns() }
    public var isManual: Bool { false }
    public func addAdvanceObserver(_ observer: @escaping @Sendable () -> Void) {}
}

/// A clock that moves only when told, for tests and deterministic runs.
public final class ManualClock: NetClock {
    private let now: Atomic<Int64>
    private let observers = LockedValue<[@Sendable () -> Void]>([])

    public init(startingAt nanoseconds: Int64 = 0) { now = Atomic(nanoseconds) }

    public var nanoseconds: Int64 { now.load(ordering: .acquiring) }
    public var isManual: Bool { true }

    public func addAdvanceObserver(_ observer: @escaping @Sendable () -> Void) {
        observers.withLock { $0.append(observer) }
    }

    /// Moves time forward and pokes every protocol thread on this clock to run its due timers.
    public func advance(by nanoseconds: Int64) {
        precondition(nanoseconds >= 0, "a clock does not go backwards")
        now.add(nanoseconds, ordering: .acquiringAndReleasing)
        for observer in observers.withLock({ $0 }) { observer() }
    }

    public func advance(by duration: Duration) { advance(by: duration.nanoseconds) }
}

extension Duration {
    /// Whole nanoseconds, saturating.
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? Int64.min : Int64.max }
        let (sum, overflow2) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflow2 ? (seconds < 0 ? Int64.min : Int64.max) : sum
    }
}
