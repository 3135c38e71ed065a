/// How long a waiting thread spins before it sleeps in the kernel. A futex wake costs about a
/// kernel round trip, while a hand-off between two running threads takes well under a
/// microsecond: a short spin turns most wake-ups into the cheap kind.
public enum SpinPolicy {
    /// The most rounds of the CPU's pause hint (about 40 ns each here) a blocked user thread
    /// spins before it yields and then parks. The spin adapts per buffer below this: it grows
    /// toward twice what caught the last wake-up and halves when spinning did not help (the
    /// waker shares this CPU or is slow), so a busy machine does not burn its cores spinning.
    nonisolated(unsafe) public static var waiterSpins: Int32 = 2000
    /// The least a waiter spins (about 10 µs), so that a partner that answers within a few
    /// microseconds is still caught and the spin can grow again.
    nonisolated(unsafe) public static var waiterMinimumSpins: Int32 = 250
    /// Yields between spinning and sleeping: a waker on the same CPU runs at once.
    nonisolated(unsafe) public static var waiterYields: Int32 = 3

    /// The next spin budget after a wait that ended with `result` (see
    /// `netmp_parker_park_reporting`).
    package static func adaptedSpins(_ budget: Int32, after result: Int32) -> Int32 {
        let next = result >= 0 ? result &* 2 &+ 32 : budget / 2
        return Swift.min(waiterSpins, Swift.max(waiterMinimumSpins, next))
    }

    /// Rounds a protocol thread spins on its empty port before parking; it yields the CPU every
    /// `protocolThreadYieldEvery` rounds so that a sender on the same CPU can run.
    nonisolated(unsafe) public static var protocolThreadSpins: Int = 500
    nonisolated(unsafe) public static var protocolThreadYieldEvery: Int = 100
    /// The least an idle protocol thread spins (about 10 µs): a caller's next request usually
    /// comes sooner, and a futex wake here costs several times that.
    nonisolated(unsafe) public static var protocolThreadMinimumSpins: Int = 250
}
