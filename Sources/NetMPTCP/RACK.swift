/// RACK's state (RFC 8985 6): a segment is lost when one sent sufficiently later was delivered,
/// "sufficiently" being one RTT plus a reordering window. Time-based, so it also finds a lost
/// retransmission and losses at the tail that duplicate-ACK counting cannot.
struct RACK: Sendable {
    /// The RTT of the most recently sent delivered segment's delivery. (Fields are ordered by
    /// size: this sits in every connection, and padding between them would cost it.)
    private(set) var roundTripTime: Int64 = 0
    /// Multiplier of the reordering window, grown by D-SACKs (RFC 8985 6.2 step 4).
    private(set) var windowMultiplier = 1
    private var multiplierRecoveriesLeft = 16
    /// The transmission number of the most recently sent segment that was delivered: it orders
    /// sends the clock cannot tell apart (RFC 8985 breaks ties by end sequence, which misorders a
    /// retransmission sent at the same instant as new data).
    private(set) var transmission: Int?
    /// The smallest RTT seen (RACK.min_RTT).
    private(set) var minimumRTT: Int64?
    /// The highest end of a delivered segment (RACK.fack).
    private(set) var forwardAcknowledged: SequenceNumber?
    private var dsackRound: SequenceNumber?
    /// A segment was delivered below one delivered earlier without being retransmitted.
    private(set) var reorderingSeen = false

    /// Steps 1–3 for one newly delivered (ACKed or SACKed) segment.
    mutating func delivered(_ segment: SACKScoreboard.Segment, now: Int64) {
        let rtt = now &- segment.sentAt
        if segment.everRetransmitted, let minimum = minimumRTT, rtt < minimum {
            // Possibly the ACK of the original transmission: no sample from it (step 2).
        } else if rtt >= 0 {
            minimumRTT = Swift.min(minimumRTT ?? rtt, rtt)
            // RACK.rtt is the RTT of the most recently sent delivered segment only (RFC 8985 6.2
            // step 2): an older segment delivered by the same ACK (or processed after it, in
            // sequence order) waited longer and would stretch the loss deadline of everything.
            if transmission.map({ segment.transmission >= $0 }) ?? true {
                transmission = segment.transmission
                roundTripTime = rtt
            }
        }
        if let fack = forwardAcknowledged, segment.end < fack {
            if !segment.everRetransmitted {
                reorderingSeen = true
            }
        } else {
            forwardAcknowledged = segment.end
        }
    }

    /// A D-SACK arrived: widen the reordering window, at most once per round trip (step 4).
    mutating func duplicateSACKed(sendUnacknowledged: SequenceNumber, sendNext: SequenceNumber) {
        if let round = dsackRound, sendUnacknowledged < round {
            return
        }
        dsackRound = sendNext
        windowMultiplier = Swift.min(windowMultiplier + 1, 64)
        multiplierRecoveriesLeft = 16
    }

    /// A recovery ended: after 16 without a D-SACK the window shrinks back.
    mutating func recoveryEnded() {
        multiplierRecoveriesLeft -= 1
        if multiplierRecoveriesLeft <= 0 {
            windowMultiplier = 1
            multiplierRecoveriesLeft = 16
        }
    }

    /// RACK.reo_wnd: zero while no reordering was seen and the loss is already plain (in recovery,
    /// or DupThresh segments SACKed); otherwise a quarter of the minimum RTT times the multiplier,
    /// at most SRTT.
    func reorderingWindow(inRecovery: Bool, sackedSegments: Int, smoothedRTT: Int64?) -> Int64 {
        if !reorderingSeen && (inRecovery || sackedSegments >= 3) {
            return 0
        }
        guard let minimum = minimumRTT else { return 0 }
        let window = Int64(windowMultiplier) * minimum / 4
        return Swift.min(window, smoothedRTT ?? window)
    }

    /// Step 5: marks lost every segment sent before the latest delivered one by more than
    /// RTT + `window`; returns the time left until the next could be marked (0 when none waits) and
    /// how many were marked.
    func detectLosses(in scoreboard: inout SACKScoreboard, window: Int64, now: Int64) -> (wait: Int64, marked: Int) {
        guard let latest = transmission else { return (0, 0) }
        var wait: Int64 = 0
        var marked = 0
        for index in scoreboard.indices {
            let segment = scoreboard[index]
            guard !segment.sacked, !segment.needsRetransmission, segment.transmission < latest else { continue }
            let remaining = segment.sentAt &+ roundTripTime &+ window &- now
            if remaining <= 0 {
                scoreboard.markLost(at: index)
                marked += 1
            } else {
                wait = Swift.max(wait, remaining)
            }
        }
        return (wait, marked)
    }
}
