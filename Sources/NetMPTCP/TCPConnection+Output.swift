import NetMPWire

/// Segment output: what may be sent now (window, congestion window, Nagle, silly-window avoidance),
/// SYNs, retransmissions, ACKs and RSTs.
extension TCPConnection {
    /// Sends what the windows and Nagle allow, then a bare ACK if one is owed, then arms the persist
    /// timer if unsent data is stuck behind a zero (or silly) window.
    mutating func output(now: Int64, _ actions: inout TCPActions<Payload>) {
        switch state {
        case .established, .closeWait, .finWait1, .closing, .lastAck:
            if sackPermitted {
                // With nothing to send and nothing to repair its loop would not start.
                if hasSomethingToSend || inFastRecovery || scoreboard.lostBytes > 0 {
                    sendWithScoreboard(now: now, &actions)
                }
            } else {
                while hasSomethingToSend, sendOne(now: now, force: false, &actions) {}
            }
            noteCongestionWindowUse()
            armPersistIfStuck(now: now)
        case .synReceived, .finWait2, .timeWait:
            break
        case .closed, .listen, .synSent:
            return
        }
        if ackNow {
            emit(sequence: acknowledgmentSequence, flags: .ack, now: now, &actions)
        }
    }

    /// Sends one segment from SND.NXT if allowed (or, when `force`, one probe even into a closed
    /// window); false when nothing was sent. A `budget` (bytes `cwnd − pipe` leaves during SACK
    /// recovery) replaces the congestion window; a `tailProbe` is not held back by Nagle.
    mutating func sendOne(
        now: Int64, force: Bool, budget: Int? = nil, tailProbe: Bool = false, _ actions: inout TCPActions<Payload>
    ) -> Bool {
        guard hasSomethingToSend else { return false }
        let unsent = Swift.max(0, sendQueueEnd - sendNext)
        // Limited transmit (RFC 3042, SACK connections): each of the first two duplicate ACKs lets one
        // more segment out.
        let limitedTransmit =
            sackPermitted && !inFastRecovery && (1...2).contains(duplicateACKs) && scoreboard.lostBytes == 0
            ? duplicateACKs * maximumSegmentSize : 0
        let peerUsable = (sendUnacknowledged + sendWindow) - sendNext
        let usable: Int
        if let budget {
            usable = Swift.max(0, Swift.min(budget, peerUsable))
        } else {
            let window = Swift.min(sendWindow, congestionWindow + limitedTransmit)
            usable = Swift.max(0, (sendUnacknowledged + window) - sendNext)
        }
        let retransmitting = sendNext < sendMax
        var length = Swift.min(unsent, maximumSegmentSize, usable)
        if length == maximumSegmentSize && !retransmitting && !force && !tailProbe && budget == nil {
            // More than one MSS may go at once where the interface cuts segments (offload).
            length = Swift.min(unsent, sendSegmentLimit, usable)
        }
        if length > maximumSegmentSize && length % maximumSegmentSize != 0
            && !(length == unsent && configuration.noDelay)
        {
            // A large segment carries whole MSS: the tail is a segment of its own, which Nagle and
            // silly-window avoidance judge on the next pass, as they would after MSS-sized ones.
            length -= length % maximumSegmentSize
        }
        if force, length == 0, unsent > 0 {
            length = 1
        }
        let fin = finQueued && sendNext + length == sendQueueEnd && (length == unsent)
        if length == 0 && !fin {
            return false
        }
        if length > 0 && !fin && !force && !tailProbe && !retransmitting && length < maximumSegmentSize {
            // Nagle (RFC 896) and sender silly-window avoidance (RFC 9293 3.8.6.2.1).
            let idle = sendMax == sendUnacknowledged
            let allQueued = length == unsent
            let halfWindow = maximumSendWindow > 0 && length >= maximumSendWindow / 2
            guard halfWindow || (allQueued && (idle || configuration.noDelay)) else { return false }
        }
        if length > 0, !force, !tailProbe, !pacingAllowsDeparture(now: now) {
            // Paced: the pacing timer sends it.
            return false
        }
        var flags: TCPFlags = .ack
        if length > 0 && length == unsent {
            flags.insert(.psh)
        }
        if fin {
            flags.insert(.fin)
        }
        let probe = force && length > 0 && usable == 0
        if sendMax == sendUnacknowledged {
            // Sending from idle: the user timeout counts from here.
            progressTime = now
        }
        emit(
            sequence: sendNext, flags: flags, now: now, sendQueueOffset: sendNext - sendQueueStart,
            payloadLength: length, &actions)
        if length > maximumSegmentSize {
            actions.segments[actions.segments.count - 1].segmentSize = UInt16(clamping: maximumSegmentSize)
        }
        let consumed = length + (fin ? 1 : 0)
        if retransmitting {
            retransmittedSegments += 1
        } else if timedSequence == nil && !probe {
            timedSequence = sendNext
            timedSince = now
        }
        if probe {
            // A zero-window probe: SND.NXT stays, so the byte is sent again if the peer drops it.
            sendMax = SequenceNumber.max(sendMax, sendNext + consumed)
            return false
        }
        sendNext += consumed
        sendMax = SequenceNumber.max(sendMax, sendNext)
        if limitedTransmit > 0, budget == nil {
            limitedTransmitBytes = Swift.max(limitedTransmitBytes, (sendMax - sendUnacknowledged) - congestionWindow)
        }
        if !isArmed(.retransmission) {
            arm(.retransmission, at: now &+ retransmissionTimeout.timeout)
            cancel(.persist)
        }
        return true
    }

    /// Bytes queued past SND.NXT, or the FIN still to send: without either `sendOne` sends nothing,
    /// whatever the windows say. Checked first (and by the send loops before they call it), as it is
    /// the usual answer after the last segment went.
    @inline(__always) var hasSomethingToSend: Bool {
        sendQueueEnd - sendNext > 0 || (finQueued && sendNext == sendQueueEnd)
    }

    /// Payload bytes one segment of new data may carry: one MSS, or, when the route's interface
    /// has segmentation offload, as many whole MSS as fit its longest datagram beside the largest
    /// IPv4 and TCP headers.
    var sendSegmentLimit: Int {
        let limit = configuration.largeSegmentLimit
        guard limit > 0 else { return maximumSegmentSize }
        let room = limit - 20 - TCPHeader.minimumLength - TCPOptions.maximumLength
        return Swift.max(maximumSegmentSize, room / maximumSegmentSize * maximumSegmentSize)
    }

    /// Resends the first unacknowledged segment (fast retransmit, partial ACK) without moving SND.NXT.
    mutating func retransmitFirstUnacknowledged(now: Int64, _ actions: inout TCPActions<Payload>) {
        let offset = sendUnacknowledged - sendQueueStart
        let length = Swift.max(0, Swift.min(maximumSegmentSize, sendQueueCount - offset))
        let fin = finQueued && sendUnacknowledged + length == sendQueueEnd
        guard length > 0 || fin else { return }
        var flags: TCPFlags = .ack
        if fin {
            flags.insert(.fin)
        }
        emit(
            sequence: sendUnacknowledged, flags: flags, now: now, sendQueueOffset: offset, payloadLength: length,
            &actions)
        retransmittedSegments += 1
        timedSequence = nil
    }

    @inline(__always)
    mutating func armPersistIfStuck(now: Int64) {
        let unsent = sendQueueEnd - sendNext > 0
        guard unsent, !isArmed(.retransmission), !isArmed(.persist),
            sendWindow == 0 || sendMax == sendUnacknowledged
        else { return }
        arm(.persist, at: now &+ persistInterval)
    }

    var persistInterval: Int64 {
        var interval = Swift.max(retransmissionTimeout.timeout, configuration.minimumPersistInterval)
        for _ in 0..<Swift.min(persistBackoff, 30) where interval < configuration.maximumPersistInterval {
            interval *= 2
        }
        return Swift.min(interval, configuration.maximumPersistInterval)
    }

    /// Sends our SYN (SYN_SENT) or SYN-ACK (SYN_RECEIVED) with the options this end may offer.
    mutating func emitSYN(now: Int64, _ actions: inout TCPActions<Payload>) {
        let active = state == .synSent
        var options = TCPOptions(maximumSegmentSize: UInt16(clamping: localMaximumSegmentSize))
        if configuration.windowScaling && (active || peerOfferedWindowScale) {
            options.windowScale = receiveScale
        }
        if active ? configuration.timestamps : timestampsEnabled {
            options.timestamps = TCPTimestamps(value: timestampTick(now), echoReply: active ? 0 : recentTimestamp)
        }
        options.sackPermitted = active ? configuration.sackPermitted : sackPermitted
        let window = Swift.min(configuration.receiveBufferSize, 65535)
        let header = TCPHeader(
            sourcePort: localPort, destinationPort: remotePort, sequenceNumber: initialSendSequence.rawValue,
            acknowledgmentNumber: active ? 0 : receiveNext.rawValue, flags: synFlags(active: active),
            window: UInt16(clamping: window), options: options)
        actions.segments.append(TCPOutboundSegment(header: header))
        if !active {
            receiveAdvertised = SequenceNumber.max(receiveAdvertised, receiveNext + window)
            noteACKSent()
        }
    }

    /// Emits a segment with the ACK bit at `sequence`, carrying the current window and timestamps.
    mutating func emit(
        sequence: SequenceNumber, flags: TCPFlags, now: Int64, sendQueueOffset: Int = 0, payloadLength: Int = 0,
        _ actions: inout TCPActions<Payload>
    ) {
        var options = TCPOptions()
        if timestampsEnabled {
            options.timestamps = TCPTimestamps(value: timestampTick(now), echoReply: recentTimestamp)
        }
        let window = advertiseWindow()
        var flags = flags
        let ecnCapable = markECN(&flags, sequence: sequence, payloadLength: payloadLength)
        if sackPermitted, sackReporter.hasBlocks(for: outOfOrder) {
            // As many blocks as fit beside the timestamps (RFC 2018 3): three with them, four without.
            options.sackBlocks = sackReporter.blocks(
                for: outOfOrder, receiveNext: receiveNext, limit: timestampsEnabled ? 3 : 4)
        }
        if recordsTransmissions, payloadLength > 0 || flags.contains(.fin) {
            let rate = deliveryRateSnapshot(now: now)
            scoreboard.sent(sequence, sequence + payloadLength + (flags.contains(.fin) ? 1 : 0), now: now, rate: rate)
        }
        let header = TCPHeader(
            sourcePort: localPort, destinationPort: remotePort, sequenceNumber: sequence.rawValue,
            acknowledgmentNumber: receiveNext.rawValue, flags: flags,
            window: UInt16(clamping: window >> Int(receiveScale)), options: options)
        actions.segments.append(
            TCPOutboundSegment(
                header: header, sendQueueOffset: sendQueueOffset, payloadLength: payloadLength, ecnCapable: ecnCapable))
        if payloadLength > 0, rateBasedSending != nil {
            pacedDeparture(bytes: payloadLength, now: now)
        }
        noteACKSent()
    }

    /// A RST for this connection (`<SEQ=seq><CTL=RST>`, with ACK when `acknowledge`).
    func resetSegment(sequence: SequenceNumber, acknowledge: Bool) -> TCPOutboundSegment {
        TCPOutboundSegment(
            header: TCPHeader(
                sourcePort: localPort, destinationPort: remotePort, sequenceNumber: sequence.rawValue,
                acknowledgmentNumber: acknowledge ? receiveNext.rawValue : 0, flags: acknowledge ? [.rst, .ack] : .rst,
                window: 0))
    }

    mutating func noteACKSent() {
        sackReporter.acknowledgmentSent()
        ackNow = false
        bytesSinceACK = 0
        lastACKSent = receiveNext
        cancel(.delayedACK)
    }

    /// The window to advertise now, in bytes, recording its right edge. The edge never moves left, and
    /// moves right only by at least min(half the buffer, one MSS) (receiver silly-window avoidance).
    mutating func advertiseWindow() -> Int {
        let capacity = configuration.receiveBufferSize
        let available = Swift.max(0, capacity - unreadCount)
        let current = Swift.max(0, receiveAdvertised - receiveNext)
        var window = available
        if window <= current || window - current < Swift.min(capacity / 2, localMaximumSegmentSize) {
            window = current
        }
        window = Swift.min(window, 65535 << Int(receiveScale))
        receiveAdvertised = SequenceNumber.max(receiveAdvertised, receiveNext + window)
        return Swift.max(0, receiveAdvertised - receiveNext)
    }

    /// The window the application opening its buffer would offer beyond what is advertised.
    var windowIncrease: Int {
        let available = Swift.max(0, configuration.receiveBufferSize - unreadCount)
        return available - Swift.max(0, receiveAdvertised - receiveNext)
    }
}
