/// Proportional Rate Reduction (RFC 6937) with the slow-start reduction bound (PRR-SSRB): how much a
/// SACK connection may send on each ACK of a fast recovery. While `pipe` is above ssthresh the
/// sender sends ssthresh/RecoverFS of what each ACK reports delivered, so the flight comes down to
/// ssthresh smoothly over the recovery's round trip instead of in a silence and a burst; once pipe
/// is at or below ssthresh (heavy losses) it climbs back to ssthresh, by at most one segment more
/// than each ACK delivered.
///
/// Counts are bytes, kept in 32 bits (one recovery covers less than the 2 GiB a sequence space
/// allows in flight); every step clamps, so no ACK can make the arithmetic trap.
struct ProportionalRateReduction: Hashable, Sendable {
    /// RecoverFS: the flight the reduction is proportional to.
    private var recoverFlight: UInt32 = 1
    /// prr_delivered: bytes the peer reported delivered (cumulatively or by SACK) in this recovery.
    private var deliveredBytes: UInt32 = 0
    /// prr_out: bytes sent (new data and retransmissions) in this recovery.
    private var sentBytes: UInt32 = 0
    /// sndcnt of the last ACK less what was sent since: what may still go before the next ACK.
    private var allowance: UInt32 = 0

    var delivered: Int { Int(deliveredBytes) }
    var sent: Int { Int(sentBytes) }
    /// Bytes that may be sent now.
    var sendQuota: Int { Int(allowance) }

    /// A recovery begins with `flightSize` in flight (the flight ssthresh was computed from).
    mutating func start(flightSize: Int) {
        self = ProportionalRateReduction()
        recoverFlight = UInt32(clamping: Swift.max(1, flightSize))
    }

    /// An ACK in recovery reported `delivered` bytes delivered (the advance of SND.UNA plus the
    /// change in SACKed bytes); `pipe` is RFC 6675's after it. Sets the quota sndcnt allows.
    mutating func acknowledged(delivered: Int, pipe: Int, slowStartThreshold: Int, maximumSegmentSize: Int) {
        let deliveredNow = UInt32(clamping: Swift.max(0, delivered))
        deliveredBytes = Self.adding(deliveredBytes, deliveredNow)
        let threshold = UInt32(clamping: Swift.max(0, slowStartThreshold))
        let count: Int
        if pipe > Int(threshold) {
            // The proportional part: CEIL(prr_delivered · ssthresh / RecoverFS) − prr_out. Both
            // factors are below 2^32, so their product fits 64 bits.
            let product = UInt64(deliveredBytes) &* UInt64(threshold)
            let (quotient, remainder) = product.quotientAndRemainder(dividingBy: UInt64(recoverFlight))
            let owed = Int(clamping: quotient &+ (remainder == 0 ? 0 : 1)) - sent
            // Any part of a segment owed lets a whole one go (the CEIL counted in segments, as
            // Linux counts it): sending one MSS for every two delivered on a halving.
            let segment = Swift.max(1, maximumSegmentSize)
            count = owed > 0 ? (owed + segment - 1) / segment * segment : 0
        } else {
            // PRR-SSRB: catch up to ssthresh, at most one segment more than this ACK delivered (or
            // than delivered and not yet answered, if that is more).
            let limit = Swift.max(self.delivered - sent, Int(deliveredNow)) + Swift.max(0, maximumSegmentSize)
            count = Swift.min(Int(threshold) - Swift.max(0, pipe), limit)
        }
        allowance = UInt32(clamping: Swift.max(0, count))
    }

    /// `bytes` more may be sent before the next ACK (segments found lost between ACKs left pipe).
    mutating func allow(_ bytes: Int) {
        allowance = Self.adding(allowance, UInt32(clamping: Swift.max(0, bytes)))
    }

    /// `bytes` were sent (a retransmission or new data) during the recovery.
    mutating func sent(_ bytes: Int) {
        let counted = UInt32(clamping: Swift.max(0, bytes))
        sentBytes = Self.adding(sentBytes, counted)
        allowance = allowance > counted ? allowance &- counted : 0
    }

    private static func adding(_ a: UInt32, _ b: UInt32) -> UInt32 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : sum
    }
}
