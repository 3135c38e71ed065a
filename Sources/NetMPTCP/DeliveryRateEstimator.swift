/// Delivery-rate estimation (draft-cheng-iccrg-delivery-rate-estimation): each transmission
/// records how much had been delivered, and when, at the moment it left; when the peer reports it
/// delivered, the bytes delivered since then over the longer of the send and ACK intervals is one
/// rate sample. Per ACK, the most recently sent delivered segment makes the sample. The connection
/// keeps one of these; the snapshots live in the SACK scoreboard's entries.
struct DeliveryRateEstimator: Sendable {
    /// C.delivered: bytes delivered (cumulatively ACKed or SACKed) over the connection's life.
    private(set) var delivered = 0
    /// C.delivered_time: when `delivered` last grew.
    private(set) var deliveredTime: Int64 = 0
    /// C.first_sent_time: the send time of the segment whose delivery last made a sample.
    private(set) var firstSentTime: Int64 = 0
    /// C.app_limited: the `delivered` count past which samples are no longer application-limited
    /// (0: not application-limited).
    private(set) var applicationLimitedUntil = 0
    /// The segment (its snapshot and send time) making this ACK's sample, if any was delivered.
    private var newest: (snapshot: DeliveryRateSnapshot, sentAt: Int64, retransmitted: Bool)?
    /// Bytes delivered by the ACK being processed.
    private var deliveredNow = 0

    /// The snapshot a transmission sent at `now` carries, with `flight` bytes outstanding before it.
    mutating func snapshot(now: Int64, flight: Int) -> DeliveryRateSnapshot {
        if flight == 0 {
            // Nothing in flight: the intervals start here, not at an old delivery (idle restart).
            firstSentTime = now
            deliveredTime = now
        }
        return DeliveryRateSnapshot(
            delivered: delivered, deliveredTime: deliveredTime, firstSentTime: firstSentTime,
            applicationLimited: applicationLimitedUntil != 0)
    }

    /// The sender has nothing more to send while `flight` bytes are outstanding and the window has
    /// room: samples until that flight is delivered measure the application, not the network.
    mutating func applicationLimited(flight: Int) {
        applicationLimitedUntil = Swift.max(1, delivered &+ flight)
    }

    /// One newly delivered segment (or part of one) of `length` bytes, sent at `sentAt` with
    /// `snapshot`.
    mutating func delivered(
        length: Int, sentAt: Int64, snapshot: DeliveryRateSnapshot, retransmitted: Bool, now: Int64
    ) {
        delivered &+= Swift.max(0, length)
        deliveredNow &+= Swift.max(0, length)
        deliveredTime = now
        // The most recently sent segment is the one that left with the most delivered before it,
        // the later send breaking ties.
        if let current = newest,
            snapshot.delivered < current.snapshot.delivered
                || (snapshot.delivered == current.snapshot.delivered && sentAt < current.sentAt)
        {
            return
        }
        newest = (snapshot, sentAt, retransmitted)
        firstSentTime = sentAt
    }

    /// Ends the ACK's processing: the rate sample it makes. `minimumRTT` screens out intervals too
    /// short to be a round trip (ACK compression).
    mutating func sample(
        now: Int64, maximumSegmentSize: Int, minimumRTT: Int64?, lost: Int, priorInFlight: Int, inFlight: Int
    ) -> TCPRateSample {
        defer {
            newest = nil
            deliveredNow = 0
        }
        if applicationLimitedUntil != 0, delivered > applicationLimitedUntil {
            applicationLimitedUntil = 0
        }
        var sample = TCPRateSample(
            now: now, maximumSegmentSize: maximumSegmentSize, totalDelivered: delivered, acknowledged: deliveredNow,
            lost: lost, priorInFlight: priorInFlight,
            inFlight: inFlight)
        guard let newest else { return sample }
        let snapshot = newest.snapshot
        sample.priorDelivered = snapshot.delivered
        sample.delivered = delivered &- snapshot.delivered
        sample.isApplicationLimited = snapshot.applicationLimited
        if !newest.retransmitted {
            sample.rtt = Swift.max(0, now &- newest.sentAt)
        }
        let sendElapsed = newest.sentAt &- snapshot.firstSentTime
        let ackElapsed = now &- snapshot.deliveredTime
        let interval = Swift.max(sendElapsed, ackElapsed)
        if interval > 0, interval >= (minimumRTT ?? 0) {
            sample.interval = interval
        }
        return sample
    }

    /// The connection closed or started afresh.
    mutating func reset() {
        self = DeliveryRateEstimator()
    }
}

/// What a transmission records of the connection's delivery state when it leaves (P.delivered,
/// P.delivered_time, P.first_sent_time, P.is_app_limited).
struct DeliveryRateSnapshot: Sendable, Equatable {
    var delivered = 0
    var deliveredTime: Int64 = 0
    var firstSentTime: Int64 = 0
    var applicationLimited = false
}

/// One ACK as a rate-based congestion controller sees it: what it delivered, the rate sample its
/// most recently sent delivered segment makes, and the flight around it.
public struct TCPRateSample: Hashable, Sendable {
    /// When the ACK arrived, in nanoseconds of the connection's clock.
    public var now: Int64
    /// Bytes delivered over the connection's life, this ACK included (C.delivered).
    public var totalDelivered: Int
    /// Bytes this ACK newly acknowledged or SACKed.
    public var acknowledged: Int
    /// Bytes this ACK's processing newly declared lost.
    public var lost: Int
    /// Bytes in flight before the ACK and after it (RFC 6675's pipe with SACK).
    public var priorInFlight: Int
    public var inFlight: Int
    /// `totalDelivered` when the sampled segment was sent (nil: nothing was delivered).
    public var priorDelivered: Int?
    /// Bytes delivered between the sampled segment's send and this ACK.
    public var delivered = 0
    /// The interval those bytes took, in nanoseconds (0: no valid rate in this sample).
    public var interval: Int64 = 0
    /// The sampled segment was sent while the application, not the network, limited the sender.
    public var isApplicationLimited = false
    /// The sampled segment's round trip (nil when it was retransmitted: ambiguous).
    public var rtt: Int64?
    public var maximumSegmentSize: Int

    public init(
        now: Int64, maximumSegmentSize: Int, totalDelivered: Int, acknowledged: Int, lost: Int = 0, priorInFlight: Int,
        inFlight: Int,
        priorDelivered: Int? = nil, delivered: Int = 0, interval: Int64 = 0, isApplicationLimited: Bool = false,
        rtt: Int64? = nil
    ) {
        self.now = now
        self.maximumSegmentSize = maximumSegmentSize
        self.totalDelivered = totalDelivered
        self.acknowledged = acknowledged
        self.lost = lost
        self.priorInFlight = priorInFlight
        self.inFlight = inFlight
        self.priorDelivered = priorDelivered
        self.delivered = delivered
        self.interval = interval
        self.isApplicationLimited = isApplicationLimited
        self.rtt = rtt
    }

    /// Bytes per second, when the sample has a valid interval.
    public var deliveryRate: Int? {
        guard interval > 0, delivered >= 0 else { return nil }
        return TCPRateSample.bytesPerSecond(delivered, over: interval)
    }

    /// `bytes` · 10⁹ / `nanoseconds`, clamped, never trapping.
    static func bytesPerSecond(_ bytes: Int, over nanoseconds: Int64) -> Int {
        guard nanoseconds > 0, bytes > 0 else { return 0 }
        let product = UInt64(bytes).multipliedFullWidth(by: 1_000_000_000)
        guard product.high < UInt64(nanoseconds) else { return Int.max }
        let (quotient, _) = UInt64(nanoseconds).dividingFullWidth(product)
        return Int(clamping: quotient)
    }
}

extension DeliveryRateEstimator {
    /// A scoreboard entry (or the newly acknowledged part of one) was delivered.
    mutating func delivered(_ segment: SACKScoreboard.Segment, now: Int64) {
        delivered(
            length: segment.length, sentAt: segment.sentAt, snapshot: segment.rate,
            retransmitted: segment.everRetransmitted, now: now)
    }
}

/// A rate-based controller's sending state out of line: its delivery-rate estimator and pacer.
/// Only connections with such a controller have one, so the others carry one word for it
/// (copy-on-write, like CUBIC's state).
final class RateBasedSendingStorage: @unchecked Sendable {
    var rates: DeliveryRateEstimator
    var pacer: Pacer
    init(rates: DeliveryRateEstimator = DeliveryRateEstimator(), pacer: Pacer = Pacer()) {
        self.rates = rates
        self.pacer = pacer
    }
}
