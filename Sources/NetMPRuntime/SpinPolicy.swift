/// How long a waiting thread spins before it sleeps in the kernel. A futex wake costs about a
/// kernel round trip, while a hand-off between two running threads takes well under a
/// microsecond: a short spin turns most wake-ups into the cheap kind. Budgets are time, turned
/// into pause rounds by `SpinCalibration.current`, and adapt (`SpinCalibration.adaptedBudget`)
/// between a floor of half again a measured wake-up and a ceiling.
public enum SpinPolicy {
    /// The most a blocked user thread spins before it yields and then parks.
    nonisolated(unsafe) public static var waiterMaximumSpinNanoseconds: Int64 = 50_000
    /// The least a waiter spins, whatever a wake-up costs.
    nonisolated(unsafe) public static var waiterMinimumSpinNanoseconds: Int64 = 5000
    /// Yields between spinning and sleeping: a waker on the same CPU runs at once.
    nonisolated(unsafe) public static var waiterYields: Int32 = 3
    /// Yields that took longer than this in all ran other threads (a `sched_yield` that switches
    /// to no one costs well under a microsecond).
    nonisolated(unsafe) public static var yieldRanOthersNanoseconds: Int64 = 2000
    /// A blocked call's spin checks its condition after every pause this long, then every
    /// `sparsePollPauses` pauses (see `SocketBuffer.spin`).
    nonisolated(unsafe) public static var densePollNanoseconds: Int64 = 2000
    nonisolated(unsafe) public static var sparsePollPauses: Int = 8

    /// The most an idle protocol thread spins on its empty port before parking; it yields the
    /// CPU every `protocolThreadYieldNanoseconds` so that a sender on the same CPU can run.
    nonisolated(unsafe) public static var protocolThreadSpinNanoseconds: Int64 = 10_000
    nonisolated(unsafe) public static var protocolThreadMinimumSpinNanoseconds: Int64 = 5000
    nonisolated(unsafe) public static var protocolThreadYieldNanoseconds: Int64 = 4000
}
