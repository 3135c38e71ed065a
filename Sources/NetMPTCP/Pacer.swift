/// Paces a rate-based controller's transmissions: a token bucket that refills at the pacing rate and
/// holds at most `burstDuration` of it, so segments leave at the rate in small bursts (Linux paces
/// in bursts of about a millisecond of data too) instead of as fast as ACKs free the window. When
/// the bucket is empty output stops, and the connection's pacing timer resumes it.
struct Pacer: Hashable, Sendable {
    /// The longest burst, as time at the pacing rate.
    static let burstDuration: Int64 = 1_000_000
    /// Bursts of at least this many segments, however slow the rate.
    static let minimumBurstSegments = 2

    /// When the bucket is empty; it is full at `earliestSend + burst`.
    private(set) var earliestSend = Int64.min
    /// The pacing timer's deadline, while output waits for it.
    private(set) var deadline: Int64?

    /// Whether a segment may go at `now`; if not, the deadline when one may.
    mutating func mayDepart(now: Int64) -> Bool {
        if earliestSend <= now {
            deadline = nil
            return true
        }
        deadline = earliestSend
        return false
    }

    /// `bytes` left at `now`, paced at `rate` bytes per second with `maximumSegmentSize`.
    mutating func sent(bytes: Int, now: Int64, rate: Int, maximumSegmentSize: Int) {
        guard rate > 0, bytes > 0 else { return }
        let duration = Pacer.nanoseconds(bytes, at: rate)
        let burst = Swift.max(
            Pacer.burstDuration, Pacer.nanoseconds(Pacer.minimumBurstSegments * maximumSegmentSize, at: rate))
        // Time not used since the bucket was last empty refills it, up to one burst.
        let start = Swift.max(earliestSend, now &- burst)
        earliestSend = start &+ duration
    }

    /// The timer fired or was cancelled.
    mutating func timerDone() {
        deadline = nil
    }

    /// `bytes` at `rate` bytes per second, in nanoseconds (clamped, never trapping).
    static func nanoseconds(_ bytes: Int, at rate: Int) -> Int64 {
        guard rate > 0, bytes > 0 else { return 0 }
        return Int64(clamping: BBR.multiplyDivide(bytes, 1_000_000_000, rate))
    }
}
