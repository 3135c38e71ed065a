import NetMPWire

/// SACK-based loss recovery: the scoreboard fed by each ACK, loss detection by RACK (RFC 8985) or
/// IsLost (RFC 6675), retransmission of lost segments within `cwnd − pipe`, tail loss probes, and the
/// D-SACK undo of a spurious recovery. Connections without SACK keep NewReno (TCPConnection+Input).
extension TCPConnection {
    // MARK: ACK processing

    /// The ACK step of a SACK connection: cumulative ACK, SACK blocks, loss detection, recovery.
    mutating func sackAcknowledgment(
        _ ack: SequenceNumber, header: TCPHeader, duplicate: Bool, now: Int64, _ actions: inout TCPActions<Payload>
    ) {
        if takesInOrderAcknowledgment(ack, header: header) {
            inOrderAcknowledgment(ack, header: header, now: now, &actions)
        } else {
            generalSACKAcknowledgment(ack, header: header, duplicate: duplicate, now: now, &actions)
        }
    }

    /// Whether `inOrderAcknowledgment` handles this ACK: it advances, carries no SACK blocks, no
    /// recovery is under way, no rate-based sender samples it, and the scoreboard holds original
    /// transmissions only (nothing SACKed, lost or resent).
    func takesInOrderAcknowledgment(_ ack: SequenceNumber, header: TCPHeader) -> Bool {
        sendUnacknowledged < ack && header.options.sackBlocks.isEmpty && !inFastRecovery
            && rateBasedSending == nil && scoreboard.isInOrder
    }

    /// Any ACK of a SACK connection (`sackAcknowledgment` passes the usual one to
    /// `inOrderAcknowledgment`, which comes to the same for it).
    mutating func generalSACKAcknowledgment(
        _ ack: SequenceNumber, header: TCPHeader, duplicate: Bool, now: Int64, _ actions: inout TCPActions<Payload>
    ) {
        let advanced = sendUnacknowledged < ack
        let blocks = header.options.sackBlocks
        // RFC 6937's DeliveredData: the advance of SND.UNA plus the change in SACKed bytes.
        let unacknowledgedBefore = sendUnacknowledged
        let sackedBefore = scoreboard.sackedBytes
        let duplicateSACK = isDuplicateSACK(blocks, ack: ack)
        // A rate-based controller's sample: the estimator sees every delivery, the flight around it.
        var rates = rateBasedSending?.rates
        let priorInFlight = scoreboard.pipe
        let lostBefore = scoreboard.markedLostBytes
        if advanced {
            var rack = self.rack
            scoreboard.acknowledge(through: ack) { segment in
                rack.delivered(segment, now: now)
                rates?.delivered(segment, now: now)
            }
            self.rack = rack
        }
        var newlySACKed = 0
        for (index, block) in blocks.enumerated() where !(duplicateSACK && index == 0) {
            let left = SequenceNumber(block.left)
            let right = SequenceNumber(block.right)
            // Only blocks inside what is outstanding count; anything else is stale or hostile.
            guard ack < left, left < right, !(sendMax < right) else { continue }
            var rack = self.rack
            newlySACKed += scoreboard.sack(left, right) { segment in
                rack.delivered(segment, now: now)
                rates?.delivered(segment, now: now)
            }
            self.rack = rack
        }
        if let rates {
            updateRateBasedSending { $0.rates = rates }
        }
        if duplicateSACK, let first = blocks.first {
            duplicateSACKReceived(first, ack: ack)
        }
        var acknowledged = 0
        var rtt: Int64?
        if advanced {
            (acknowledged, rtt) = takeAcknowledgment(ack, header: header, now: now, &actions)
            limitedTransmitBytes = 0
            if !inFastRecovery {
                duplicateACKs = 0
            }
        } else if newlySACKed > 0 || (duplicate && blocks.isEmpty) {
            duplicateACKs += 1
        }
        let delivered = Swift.max(
            0, (sendUnacknowledged - unacknowledgedBefore) + (scoreboard.sackedBytes - sackedBefore))
        tailLossProbeAcknowledged(ack, duplicateSACK: duplicateSACK, now: now)
        detectLosses(now: now)
        if inFastRecovery {
            if !(ack < recoveryPoint) {
                inFastRecovery = false
                duplicateACKs = 0
                rack.recoveryEnded()
                congestionControl.exitRecovery(flightSize: flightSize, maximumSegmentSize: maximumSegmentSize)
            } else {
                proportionalRateReduction.acknowledged(
                    delivered: delivered, pipe: scoreboard.pipe,
                    slowStartThreshold: congestionControl.slowStartThreshold, maximumSegmentSize: maximumSegmentSize)
            }
        } else {
            if recoveryPoint < ack {
                // Keep "recover" just behind SND.UNA so the comparison never wraps.
                recoveryPoint = ack - 1
            }
            if advanced {
                congestionControl.acknowledged(acknowledgmentSample(bytes: acknowledged, rtt: rtt, now: now))
            }
            enterRecoveryIfLost(now: now, delivered: delivered, &actions)
        }
        if rateBasedSending != nil {
            sendRateSample(
                now: now, lost: scoreboard.markedLostBytes &- lostBefore, priorInFlight: priorInFlight,
                inFlight: scoreboard.pipe)
        }
        if sendUnacknowledged == sendMax {
            cancel(.retransmission)
            cancel(.lossProbe)
            cancel(.reorderTimeout)
        } else if advanced {
            arm(.retransmission, at: now &+ retransmissionTimeout.timeout)
            armTailLossProbe(now: now, restart: true)
        }
    }

    /// The usual ACK of a transfer without loss (`takesInOrderAcknowledgment`): what
    /// `generalSACKAcknowledgment` does with it, without the steps that cannot change anything
    /// there: no D-SACK, no block to apply, no loss for the detector to find on a board in order
    /// (it only cancels the reordering timer), no recovery to enter (nothing lost, no duplicate
    /// ACKs), no rate sample.
    mutating func inOrderAcknowledgment(
        _ ack: SequenceNumber, header: TCPHeader, now: Int64, _ actions: inout TCPActions<Payload>
    ) {
        // Distinct stored properties: RACK is changed in place, without a copy in and out.
        scoreboard.acknowledge(through: ack, delivering: &rack, now: now)
        let (acknowledged, rtt) = takeAcknowledgment(ack, header: header, now: now, &actions)
        limitedTransmitBytes = 0
        duplicateACKs = 0
        if tailLossProbeEnd != nil {
            tailLossProbeAcknowledged(ack, duplicateSACK: false, now: now)
        }
        // What `detectLosses` does with a board in order.
        cancel(.reorderTimeout)
        if recoveryPoint < ack {
            // Keep "recover" just behind SND.UNA so the comparison never wraps.
            recoveryPoint = ack - 1
        }
        congestionControl.acknowledged(acknowledgmentSample(bytes: acknowledged, rtt: rtt, now: now))
        if sendUnacknowledged == sendMax {
            cancel(.retransmission)
            cancel(.lossProbe)
            cancel(.reorderTimeout)
        } else {
            arm(.retransmission, at: now &+ retransmissionTimeout.timeout)
            armTailLossProbe(now: now, restart: true)
        }
    }

    /// RFC 2883 4: the first block is a D-SACK when it lies below the cumulative ACK or inside the
    /// second block.
    private func isDuplicateSACK(_ blocks: SACKBlocks, ack: SequenceNumber) -> Bool {
        guard let first = blocks.first else { return false }
        let left = SequenceNumber(first.left)
        let right = SequenceNumber(first.right)
        guard left < right else { return false }
        if !(ack < right) {
            return true
        }
        guard blocks.count > 1 else { return false }
        let second = blocks[1]
        return !(left < SequenceNumber(second.left)) && !(SequenceNumber(second.right) < right)
    }

    /// A D-SACK: RACK widens its reordering window, and a recovery whose every retransmission
    /// turns out to have been a duplicate is undone.
    private mutating func duplicateSACKReceived(_ block: SACKBlock, ack: SequenceNumber) {
        rack.duplicateSACKed(sendUnacknowledged: ack, sendNext: sendMax)
        guard var undo else { return }
        let left = SequenceNumber(block.left)
        let right = SequenceNumber(block.right)
        guard !(left < undo.start), !(undo.end < right) else { return }
        undo.duplicated &+= 1
        if undo.retransmissions > 0, undo.duplicated >= undo.retransmissions {
            if undo.congestionControl.congestionWindow > congestionControl.congestionWindow {
                congestionControl = undo.congestionControl
            }
            inFastRecovery = false
            duplicateACKs = 0
            spuriousRecoveryCount += 1
            self.undo = nil
        } else {
            self.undo = undo
        }
    }

    // MARK: Loss detection

    /// Runs the configured detector over the scoreboard and arms RACK's timer for segments whose
    /// reordering window has not run out yet.
    mutating func detectLosses(now: Int64) {
        guard !scoreboard.isEmpty, !scoreboard.isInOrder else {
            cancel(.reorderTimeout)
            return
        }
        switch configuration.lossDetection {
        case .rfc6675:
            scoreboard.markLostBySACKCount(maximumSegmentSize: maximumSegmentSize)
        case .rack:
            let sackedSegments = (scoreboard.sackedBytes + maximumSegmentSize - 1) / maximumSegmentSize
            let window = rack.reorderingWindow(
                inRecovery: inFastRecovery, sackedSegments: sackedSegments,
                smoothedRTT: retransmissionTimeout.smoothedRTT)
            let (wait, marked) = rack.detectLosses(in: &scoreboard, window: window, now: now)
            rackLostSegments += marked
            if wait > 0 {
                arm(.reorderTimeout, at: now &+ wait)
            } else {
                cancel(.reorderTimeout)
            }
        }
    }

    /// Starts fast recovery when a segment is lost (RACK, IsLost) or, for RFC 6675, after DupThresh
    /// duplicate ACKs, unless the last recovery or timeout has not been left behind yet. `delivered`
    /// is what the ACK that found the loss reported delivered (nothing when a timer found it).
    mutating func enterRecoveryIfLost(now: Int64, delivered: Int = 0, _ actions: inout TCPActions<Payload>) {
        guard !inFastRecovery, recoveryPoint < sendUnacknowledged, !scoreboard.isEmpty else { return }
        let byCount = configuration.lossDetection == .rfc6675 && duplicateACKs >= 3
        guard scoreboard.lostBytes > 0 || byCount else { return }
        if byCount, scoreboard.lostBytes == 0 {
            // The fast retransmit of RFC 6675 5 step 4: the first segment is presumed lost.
            scoreboard.markLost(at: 0)
        }
        inFastRecovery = true
        rescueRetransmitted = false
        recoveryPoint = sendMax
        fastRetransmitCount += 1
        sackRecoveryCount += 1
        undo = RecoveryUndo(congestionControl: congestionControl, start: sendUnacknowledged, end: sendMax)
        congestionControl.enterRecovery(
            flightSize: flightSizeBeforeLimitedTransmit, maximumSegmentSize: maximumSegmentSize, now: now)
        // PRR's RecoverFS is the flight ssthresh was taken from (limited transmit's segments apart,
        // as Linux's prior_cwnd), so that a halving sends one segment for every two delivered.
        proportionalRateReduction.start(flightSize: flightSizeBeforeLimitedTransmit)
        proportionalRateReduction.acknowledged(
            delivered: delivered, pipe: scoreboard.pipe, slowStartThreshold: congestionControl.slowStartThreshold,
            maximumSegmentSize: maximumSegmentSize)
        cancel(.lossProbe)
        // This recovery's reduction answers whatever loss an outstanding probe revealed.
        tailLossProbeEnd = nil
        // The first lost segment goes at once, whatever pipe says (RFC 6675 5 step 4.2); PRR counts it.
        if let index = scoreboard.firstNeedingRetransmission {
            let segmentsBefore = actions.segments.count
            retransmitSegment(at: index, now: now, &actions)
            countRecoverySend(since: segmentsBefore, actions)
        }
    }

    /// RACK's reordering timer expired: the segments it waited for are lost now.
    mutating func reorderTimerFired(now: Int64, _ actions: inout TCPActions<Payload>) {
        let pipeBefore = scoreboard.pipe
        detectLosses(now: now)
        if inFastRecovery {
            // What the timer found lost has left the network: as much may go again (the window PRR
            // set at the last ACK stays, its pipe is smaller).
            proportionalRateReduction.allow(pipeBefore - scoreboard.pipe)
            return
        }
        enterRecoveryIfLost(now: now, &actions)
        if inFastRecovery {
            // A recovery the timer starts has no ACK to be proportional to, and often little left in
            // flight to clock one: pipe may be filled up to ssthresh at once, as RFC 6675 fills its
            // window (PRR alone would send the one retransmission, and a loss of it would leave
            // nothing but the retransmission timer).
            proportionalRateReduction.allow(congestionControl.slowStartThreshold - scoreboard.pipe)
        }
    }

    // MARK: Sending

    /// Output of a SACK connection: while something is lost, retransmissions then new data (RFC 6675
    /// 5 step 6 with NextSeg rules 1 to 4) as far as PRR's quota allows in fast recovery, or
    /// `cwnd − pipe` after a timeout; otherwise the usual window-based sending.
    mutating func sendWithScoreboard(now: Int64, _ actions: inout TCPActions<Payload>) {
        let before = sendMax
        while true {
            guard inFastRecovery || scoreboard.lostBytes > 0 else {
                if !hasSomethingToSend || !sendOne(now: now, force: false, &actions) {
                    break
                }
                continue
            }
            // In fast recovery what PRR lets go on this ACK; after a timeout, cwnd − pipe.
            // (A rate-based controller's window governs recovery too: it keeps its own conservation.)
            let budget =
                inFastRecovery && !congestionControl.isRateBased
                ? proportionalRateReduction.sendQuota : congestionControl.congestionWindow - scoreboard.pipe
            // Nothing goes into a closed window: the peer would drop it (zero-window probes persist).
            guard budget >= maximumSegmentSize, sendWindow > 0 else { break }
            // A paced connection's repairs wait for the pacer too.
            guard pacingAllowsDeparture(now: now) else { break }
            let segmentsBefore = actions.segments.count
            if let index = scoreboard.firstNeedingRetransmission {
                retransmitSegment(at: index, now: now, &actions)
            } else if sendOne(now: now, force: false, budget: budget, &actions) {
                // New data (NextSeg rule 2).
            } else if inFastRecovery, configuration.lossDetection == .rfc6675,
                let index = scoreboard.firstUnSACKedBelowHighestSACKed
            {
                // NextSeg rule 3: no loss is certain and no new data may go, so resend a hole anyway.
                scoreboard.markLost(at: index)
                retransmitSegment(at: index, now: now, &actions)
            } else if inFastRecovery, configuration.lossDetection == .rfc6675, !rescueRetransmitted,
                let index = scoreboard.unSACKedTail
            {
                // NextSeg rule 4: once per recovery, the last MSS of what is outstanding and not
                // SACKed, so that a lost tail (nothing SACKed above it) is repaired without waiting
                // for the retransmission timer. It is not marked lost (HighRxt stays). Only a tail
                // above the highest SACK is rescued: a hole below it is rule 3's, and a resend in
                // flight is not sent again.
                rescueRetransmitted = true
                retransmitSegment(
                    at: scoreboard.limitEntryToItsEnd(at: index, length: maximumSegmentSize), now: now, &actions)
            } else {
                break
            }
            countRecoverySend(since: segmentsBefore, actions)
        }
        if before < sendMax {
            armTailLossProbe(now: now, restart: true)
        }
    }

    /// Counts toward PRR's prr_out the bytes of the segments queued from `index` on, in fast recovery.
    private mutating func countRecoverySend(since index: Int, _ actions: borrowing TCPActions<Payload>) {
        guard inFastRecovery, index < actions.segments.count else { return }
        var bytes = 0
        for position in index..<actions.segments.count {
            bytes += actions.segments[position].payloadLength
        }
        proportionalRateReduction.sent(bytes)
    }

    /// Resends the scoreboard entry at `index` (at most one MSS of it).
    mutating func retransmitSegment(at index: Int, now: Int64, _ actions: inout TCPActions<Payload>) {
        scoreboard.limitEntry(at: index, to: maximumSegmentSize)
        let segment = scoreboard[index]
        let end = SequenceNumber.min(segment.end, segment.start + maximumSegmentSize)
        let length = Swift.max(0, SequenceNumber.min(end, sendQueueEnd) - segment.start)
        var flags: TCPFlags = .ack
        if length > 0 && !(segment.start + length < sendQueueEnd) {
            flags.insert(.psh)
        }
        if finQueued && end == sendQueueEnd + 1 {
            flags.insert(.fin)
        }
        guard length > 0 || flags.contains(.fin) else {
            // Nothing of the send queue left in it: count it resent so the sending loop moves on.
            scoreboard.sent(segment.start, end, now: now, rate: deliveryRateSnapshot(now: now))
            return
        }
        emit(
            sequence: segment.start, flags: flags, now: now, sendQueueOffset: segment.start - sendQueueStart,
            payloadLength: length, &actions)
        retransmittedSegments += 1
        undo?.retransmissions &+= 1
        timedSequence = nil
        if !isArmed(.retransmission) {
            arm(.retransmission, at: now &+ retransmissionTimeout.timeout)
        }
    }

    /// Flight size for ssthresh, without what limited transmit added (RFC 3042 2).
    var flightSizeBeforeLimitedTransmit: Int { Swift.max(0, flightSize - limitedTransmitBytes) }

    // MARK: Tail loss probe

    /// Arms (or with `restart`, re-arms) the PTO of RFC 8985 7.2 when RACK-TLP is in use, data is
    /// outstanding and no recovery or probe is under way.
    mutating func armTailLossProbe(now: Int64, restart: Bool) {
        guard sackPermitted, configuration.lossDetection == .rack, !inFastRecovery, scoreboard.lostBytes == 0,
            tailLossProbeEnd == nil, consecutiveRetransmissions == 0, sendUnacknowledged != sendMax, sendWindow > 0
        else {
            cancel(.lossProbe)
            return
        }
        guard restart || !isArmed(.lossProbe) else { return }
        var timeout: Int64 = 1_000_000_000
        if let smoothed = retransmissionTimeout.smoothedRTT {
            timeout = 2 * smoothed
            if flightSize <= maximumSegmentSize {
                timeout += configuration.maximumPeerACKDelay
            }
        }
        var deadline = now &+ Swift.max(timeout, TCPConnection.minimumProbeTimeout)
        if let retransmission = self.deadline(of: .retransmission), retransmission < deadline {
            deadline = retransmission
        }
        arm(.lossProbe, at: deadline)
    }

    /// The shortest PTO: on a sub-millisecond path 2 · SRTT is shorter than a peer's scheduling
    /// delay, and probes would be sent for segments that are merely waiting (Linux uses 10 ms too).
    static var minimumProbeTimeout: Int64 { 10_000_000 }

    /// The PTO expired: send one new segment if the windows allow, else the last one again, so the
    /// ACK it draws lets RACK find the tail losses without waiting for the RTO.
    mutating func lossProbeFired(now: Int64, _ actions: inout TCPActions<Payload>) {
        // A closed window is the persist timer's: the peer could not take a probe.
        guard sackPermitted, !inFastRecovery, tailLossProbeEnd == nil, sendUnacknowledged != sendMax,
            consecutiveRetransmissions == 0, scoreboard.lostBytes == 0, sendWindow > 0
        else { return }
        if sendOne(now: now, force: false, budget: maximumSegmentSize, tailProbe: true, &actions) {
            tailLossProbeRetransmitted = false
        } else if let index = scoreboard.lastUnSACKed {
            retransmitSegment(at: index, now: now, &actions)
            tailLossProbeRetransmitted = true
        } else {
            return
        }
        tailLossProbeCount += 1
        tailLossProbeEnd = sendMax
        arm(.retransmission, at: now &+ retransmissionTimeout.timeout)
    }

    /// RFC 8985 7.4: the ACK of a probe ends its episode; a retransmitted probe acknowledged
    /// without a D-SACK repaired a real loss, which the congestion controller must hear of.
    private mutating func tailLossProbeAcknowledged(_ ack: SequenceNumber, duplicateSACK: Bool, now: Int64) {
        guard let end = tailLossProbeEnd, !(ack < end) else { return }
        guard tailLossProbeRetransmitted, !duplicateSACK else {
            // A probe of new data, or a D-SACK showing the resent probe was a duplicate: no loss.
            tailLossProbeEnd = nil
            return
        }
        // An ACK of exactly the probe may be the original's; a D-SACK of the probe would follow. Only
        // an ACK beyond it shows the probe repaired a loss (as Linux decides).
        guard end < ack else { return }
        tailLossProbeEnd = nil
        if !inFastRecovery {
            // A one-segment recovery: the window is reduced as a fast recovery would reduce it.
            congestionControl.enterRecovery(
                flightSize: congestionControl.congestionWindow, maximumSegmentSize: maximumSegmentSize, now: now)
            congestionControl.exitRecovery(flightSize: flightSize, maximumSegmentSize: maximumSegmentSize)
        }
    }

    // MARK: Timeout

    /// A retransmission timeout on a SACK connection: every segment not SACKed is lost and resent in
    /// order as the collapsed window allows (RFC 6675 5.1); a reneging receiver's SACKs are forgotten.
    mutating func scoreboardTimedOut() {
        if scoreboard.headIsSACKed {
            scoreboard.forgetSACKs()
        }
        scoreboard.markAllLost()
        tailLossProbeEnd = nil
        undo = nil
        cancel(.lossProbe)
        cancel(.reorderTimeout)
    }
}

/// What undoing a spurious recovery needs: the congestion state before it, the span it covered,
/// and how many of its retransmissions were sent and later reported as duplicates.
struct RecoveryUndo: Sendable {
    /// Boxed: an existential takes five words inline, and this sits in every connection.
    private let saved: SavedCongestionControl
    var congestionControl: any TCPCongestionControl { saved.value }
    var start: SequenceNumber
    var end: SequenceNumber
    var retransmissions: Int32 = 0
    var duplicated: Int32 = 0
}

extension RecoveryUndo {
    init(congestionControl: any TCPCongestionControl, start: SequenceNumber, end: SequenceNumber) {
        saved = SavedCongestionControl(congestionControl)
        self.start = start
        self.end = end
    }
}

/// The congestion state before a recovery, made once per recovery and never changed.
final class SavedCongestionControl: Sendable {
    let value: any TCPCongestionControl
    init(_ value: any TCPCongestionControl) { self.value = value }
}
