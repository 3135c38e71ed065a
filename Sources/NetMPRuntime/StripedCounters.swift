import CNetMP

/// Counters that several threads add to and few read. Each OS thread adds to its own stripe,
/// a cache line of its own, so an add never takes a line from another CPU; a read sums the
/// stripes. (One shared atomic counter moved its line between the CPUs at every add.)
package final class StripedCounters: @unchecked Sendable {
    /// Threads past this many share stripes: still exact, as every add is atomic.
    @inlinable package static var stripeCount: Int { 8 }
    /// 128 bytes a stripe: a cache line, and the neighbour the adjacent-line prefetcher pulls.
    @inlinable static var wordsPerStripe: Int { 16 }

    @usableFromInline let storage: UnsafeMutablePointer<Int64>

    /// Counters 0 ..< `width` in each stripe.
    package init(width: Int) {
        precondition(width > 0 && width <= StripedCounters.wordsPerStripe, "1 to 16 counters")
        let words = StripedCounters.stripeCount * StripedCounters.wordsPerStripe
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: words * MemoryLayout<Int64>.stride,
            alignment: StripedCounters.wordsPerStripe * MemoryLayout<Int64>.stride)
        storage = raw.initializeMemory(as: Int64.self, repeating: 0, count: words)
    }

    deinit { storage.deallocate() }

    /// The calling thread's stripe, for a few adds in a row.
    @inlinable package static var currentStripe: Int {
        Int(netmp_thread_stripe() % UInt32(stripeCount))
    }

    @inlinable func cell(_ counter: Int, _ stripe: Int) -> UnsafeMutablePointer<Int64> {
        storage + stripe * StripedCounters.wordsPerStripe + counter
    }

    /// Adds `value` to `counter` in `stripe` (the caller's `currentStripe`).
    @inlinable package func add(_ value: Int, to counter: Int, stripe: Int) {
        netmp_counter_add(cell(counter, stripe), Int64(value))
    }

    /// `add`, sequentially consistent: for a count of readers in a section (see `waitForZero`).
    @inlinable package func addOrdered(_ value: Int, to counter: Int, stripe: Int) {
        netmp_counter_add_ordered(cell(counter, stripe), Int64(value))
    }

    /// Waits until each stripe's `counter` has been seen at zero (once each, not all at once):
    /// with readers that `addOrdered` 1 before a section and -1 after it, every section that
    /// began before this call has ended when it returns.
    package func waitForZero(_ counter: Int) {
        for stripe in 0..<StripedCounters.stripeCount {
            while netmp_counter_load_ordered(cell(counter, stripe)) != 0 { netmp_cpu_relax() }
        }
    }

    /// The sum of `counter` over every stripe (the adds made before this call, and maybe some
    /// made while it runs).
    package func sum(_ counter: Int) -> Int {
        var total: Int64 = 0
        for stripe in 0..<StripedCounters.stripeCount {
            total &+= netmp_counter_load(cell(counter, stripe))
        }
        return Int(total)
    }
}
