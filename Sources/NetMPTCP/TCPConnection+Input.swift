import NetMPWire

/// Segment arrival, RFC 9293 3.10.7: SYN_SENT processing, then for synchronized states the sequence
/// check, RST, SYN, ACK, data and FIN steps in the RFC's order.
extension TCPConnection {
    /// A segment for this connection arrived: `header` as parsed, `payload` its data.
    public mutating func receive(
        _ header: TCPHeader, payload: Payload, now: Int64, into actions: inout TCPActions<Payload>
    ) {
        switch state {
        case .closed, .listen:
            if let reset = TCPReset.forClosedPort(header, payloadLength: payload.count) {
                actions.segments.append(TCPOutboundSegment(header: reset))
            }
        case .synSent:
            receiveInSYNSent(header, now: now, &actions)
        default:
            receiveSynchronized(header, payload: payload, now: now, &actions)
        }
    }

    private mutating func receiveInSYNSent(_ header: TCPHeader, now: Int64, _ actions: inout TCPActions<Payload>) {
        let flags = header.flags
        let ack = SequenceNumber(header.acknowledgmentNumber)
        if flags.contains(.ack), !(initialSendSequence < ack) || sendMax < ack {
            if !flags.contains(.rst) {
                actions.segments.append(resetSegment(sequence: ack, acknowledge: false))
            }
            return
        }
        if flags.contains(.rst) {
            if flags.contains(.ack) {
                becomeClosed(&actions, error: .connectionRefused)
            }
            return
        }
        guard flags.contains(.syn) else { return }
        let sequence = SequenceNumber(header.sequenceNumber)
        initialReceiveSequence = sequence
        receiveNext = sequence + 1
        receiveAdvertised = receiveNext + Swift.min(configuration.receiveBufferSize, 65535)
        negotiate(header.options, now: now)
        ecn.negotiated = configuration.explicitCongestionNotification && TCPExplicitCongestion.isSetupSYNACK(flags)
        if flags.contains(.ack) {
            sendUnacknowledged = ack
            sendWindow = Int(header.window)
            maximumSendWindow = sendWindow
            windowUpdateSequence = sequence
            windowUpdateAcknowledgment = ack
            synAcknowledged(header, now: now)
            state = .established
            actions.established = true
            noteSegmentAccepted(now: now)
            if finQueued {
                state = .finWait1
            }
            ackNow = true
            output(now: now, &actions)
        } else {
            // Simultaneous open: answer with a SYN-ACK for our original SYN.
            state = .synReceived
            sendWindow = Int(header.window)
            maximumSendWindow = sendWindow
            windowUpdateSequence = sequence
            emitSYN(now: now, &actions)
        }
    }

    /// Records what the peer's SYN offered and what this end will use.
    mutating func negotiate(_ options: TCPOptions, now: Int64) {
        peerOfferedWindowScale = options.windowScale != nil
        if configuration.windowScaling, let scale = options.windowScale {
            sendScale = Swift.min(scale, 14)
        } else {
            sendScale = 0
            receiveScale = 0
        }
        if configuration.timestamps, let timestamps = options.timestamps {
            timestampsEnabled = true
            recentTimestamp = timestamps.value
            recentTimestampTime = now
        }
        sackPermitted = configuration.sackPermitted && options.sackPermitted
        let peerMSS = options.maximumSegmentSize.map(Int.init) ?? TCPConnection.defaultPeerMSS
        maximumSegmentSize = Swift.max(
            TCPConnection.minimumMSS, Swift.min(peerMSS, localMaximumSegmentSize) - (timestampsEnabled ? 12 : 0))
        congestionControl.start(maximumSegmentSize: maximumSegmentSize)
    }

    /// Our SYN was acknowledged: take the RTT sample (unless it was retransmitted) and stop its timer.
    private mutating func synAcknowledged(_ header: TCPHeader, now: Int64) {
        if consecutiveRetransmissions == 0 {
            retransmissionTimeout.sample(now &- timedSince)
        } else if retransmissionTimeout.smoothedRTT == nil {
            // No sample after a lost SYN: data starts with the 3 s fallback (RFC 6298 5.7).
            retransmissionTimeout.restart(at: RetransmissionTimeout.fallback)
        }
        timedSequence = nil
        consecutiveRetransmissions = 0
        cancel(.retransmission)
    }

    private mutating func receiveSynchronized(
        _ header: TCPHeader, payload: Payload, now: Int64, _ actions: inout TCPActions<Payload>
    ) {
        let flags = header.flags
        var sequence = SequenceNumber(header.sequenceNumber)
        if state == .synReceived, flags.contains(.syn), !flags.contains(.ack), !flags.contains(.rst),
            sequence == initialReceiveSequence
        {
            // The peer did not get our SYN-ACK and sent its SYN again.
            emitSYN(now: now, &actions)
            return
        }
        if state == .synReceived, flags.contains(.syn), flags.contains(.ack), !flags.contains(.rst),
            sequence == initialReceiveSequence
        {
            // Simultaneous open: the peer's SYN-ACK repeats its SYN and acknowledges ours.
            if processACK(header, sequence: sequence, carriesData: false, now: now, &actions) {
                ackNow = true
                output(now: now, &actions)
            }
            return
        }
        // PAWS, then RST and SYN as RFC 5961 3 and 4 have them (before the window check).
        guard screen(header, payloadLength: payload.count, now: now, &actions) else { return }

        // 1. Sequence number check.
        let arrivedWithData = payload.count > 0
        var syn = flags.contains(.syn)
        var fin = flags.contains(.fin)
        let length = payload.count + (syn ? 1 : 0) + (fin ? 1 : 0)
        let window = Swift.max(0, receiveAdvertised - receiveNext)
        let windowEnd = receiveNext + window
        let acceptable: Bool
        if window == 0 {
            acceptable = sequence == receiveNext
        } else if length == 0 {
            acceptable = sequence.isIn(receiveNext, windowEnd)
        } else {
            acceptable = sequence.isIn(receiveNext, windowEnd) || (sequence + (length - 1)).isIn(receiveNext, windowEnd)
        }
        guard acceptable else {
            actions.dropped = .outOfWindow
            if sackPermitted, payload.count > 0, !(receiveNext < sequence + payload.count) {
                // Wholly old data: the peer retransmitted what we have; report it (RFC 2883).
                sackReporter.duplicateReceived(sequence, sequence + payload.count)
            }
            if !flags.contains(.rst), mayAnswerUnacceptable(length: length, syn: syn, now: now) {
                if state == .timeWait && fin {
                    enterTimeWait(now: now, &actions)
                    actions.enteredTimeWait = false
                }
                ackNow = true
                output(now: now, &actions)
            }
            return
        }
        if let timestamps = header.options.timestamps, timestampsEnabled, !(lastACKSent < sequence) {
            recentTimestamp = timestamps.value
            recentTimestampTime = now
        }
        // Trim to the window: bytes before RCV.NXT were delivered already, bytes past its end not
        // offered. Counted first and cut once at the end, so an untrimmed payload (nearly all) is
        // passed on as it came, without a copy of its own.
        var dropped = 0
        if sequence < receiveNext {
            var duplicate = receiveNext - sequence
            if syn {
                syn = false
                duplicate -= 1
            }
            if duplicate > 0 {
                // Data we already have: the peer retransmitted, so our ACK was lost or is late.
                ackNow = true
                if sackPermitted {
                    let start = receiveNext - duplicate
                    sackReporter.duplicateReceived(start, start + Swift.min(duplicate, payload.count))
                }
            }
            dropped = Swift.max(0, duplicate)
            sequence = receiveNext
        }
        let room = windowEnd - sequence
        var kept: Int?
        if payload.count - Swift.min(dropped, payload.count) > room {
            kept = Swift.max(0, room)
            fin = false
            ackNow = true
        }
        if dropped > 0 || kept != nil {
            var trimmed = payload.droppingFirst(dropped)
            if let kept {
                trimmed = trimmed.keepingFirst(kept)
            }
            accept(
                header, payload: trimmed, at: sequence, fin: fin, arrivedWithData: arrivedWithData, now: now, &actions)
        } else {
            accept(
                header, payload: payload, at: sequence, fin: fin, arrivedWithData: arrivedWithData, now: now, &actions)
        }
    }

    /// The steps after the sequence check, for a segment trimmed to the window: ACK, data, FIN.
    private mutating func accept(
        _ header: TCPHeader, payload: Payload, at sequence: SequenceNumber, fin: Bool, arrivedWithData: Bool,
        now: Int64, _ actions: inout TCPActions<Payload>
    ) {
        // 2. RST and 4. SYN were screened above. 5. ACK.
        let flags = header.flags
        guard flags.contains(.ack) else { return }
        guard
            processACK(
                header, sequence: SequenceNumber(header.sequenceNumber),
                carriesData: arrivedWithData || flags.contains(.fin),
                now: now, &actions)
        else { return }
        noteSegmentAccepted(now: now)

        // 7. Data, then 8. FIN.
        if state.acceptsData, payload.count > 0 || fin {
            receiveData(payload, at: sequence, fin: fin, now: now, &actions)
        } else if payload.count > 0 || fin {
            ackNow = true
        }
        if state != .closed {
            output(now: now, &actions)
        }
    }

    /// The ACK step; false when the segment must be dropped (or the connection ended).
    private mutating func processACK(
        _ header: TCPHeader, sequence: SequenceNumber, carriesData: Bool, now: Int64,
        _ actions: inout TCPActions<Payload>
    ) -> Bool {
        let ack = SequenceNumber(header.acknowledgmentNumber)
        if state == .synReceived {
            guard sendUnacknowledged < ack, !(sendMax < ack) else {
                actions.segments.append(resetSegment(sequence: ack, acknowledge: false))
                return false
            }
            synAcknowledged(header, now: now)
            state = finQueued ? .finWait1 : .established
            actions.established = true
            windowUpdateSequence = sequence
            windowUpdateAcknowledgment = ack
            sendWindow = Int(header.window) << Int(sendScale)
            maximumSendWindow = Swift.max(maximumSendWindow, sendWindow)
        }
        guard acknowledgmentAcceptable(ack, now: now, &actions) else { return false }
        let peerWindow = Int(header.window) << Int(sendScale)
        let duplicate =
            ack == sendUnacknowledged && !carriesData && sendMax != sendUnacknowledged
            && peerWindow == sendWindow && sendWindow > 0
        if sackPermitted {
            sackAcknowledgment(ack, header: header, duplicate: duplicate, now: now, &actions)
        } else if sendUnacknowledged < ack {
            newlyAcknowledged(ack, header: header, now: now, &actions)
        } else if duplicate {
            duplicateACK(now: now, &actions)
        }
        if header.flags.contains(.ece) {
            congestionEchoed(acknowledgment: ack, now: now)
        }
        if windowUpdateSequence < sequence
            || (windowUpdateSequence == sequence && !(ack < windowUpdateAcknowledgment))
        {
            let opened = sendWindow == 0 && peerWindow > 0
            sendWindow = peerWindow
            maximumSendWindow = Swift.max(maximumSendWindow, sendWindow)
            windowUpdateSequence = sequence
            windowUpdateAcknowledgment = ack
            if opened {
                cancel(.persist)
                persistBackoff = 0
            }
            if sendWindow == 0 {
                // The peer can take no probe now; the persist timer takes over.
                cancel(.lossProbe)
            }
        }
        if finAcknowledged {
            switch state {
            case .finWait1:
                state = .finWait2
                if closeRequested {
                    arm(.finWait2, at: now &+ configuration.finWait2Timeout)
                }
            case .closing:
                enterTimeWait(now: now, &actions)
            case .lastAck:
                becomeClosed(&actions)
                return false
            default:
                break
            }
        }
        return true
    }

    private mutating func newlyAcknowledged(
        _ ack: SequenceNumber, header: TCPHeader, now: Int64, _ actions: inout TCPActions<Payload>
    ) {
        let priorInFlight = flightSize
        if rateBasedSending != nil {
            // Without SACK the scoreboard holds only what the rate samples need.
            var rates = rateBasedSending?.rates
            scoreboard.acknowledge(through: ack) { rates?.delivered($0, now: now) }
            if let rates {
                updateRateBasedSending { $0.rates = rates }
            }
        }
        let (acknowledged, rtt) = takeAcknowledgment(ack, header: header, now: now, &actions)
        defer {
            if rateBasedSending != nil {
                sendRateSample(now: now, lost: 0, priorInFlight: priorInFlight, inFlight: flightSize)
            }
        }
        if inFastRecovery {
            if !(ack < recoveryPoint) {
                inFastRecovery = false
                duplicateACKs = 0
                congestionControl.exitRecovery(flightSize: flightSize, maximumSegmentSize: maximumSegmentSize)
            } else {
                // NewReno partial ACK: the next hole is lost too; resend it at once.
                retransmitFirstUnacknowledged(now: now, &actions)
                congestionControl.partialACK(bytes: acknowledged, maximumSegmentSize: maximumSegmentSize)
                arm(.retransmission, at: now &+ retransmissionTimeout.timeout)
            }
        } else {
            duplicateACKs = 0
            if recoveryPoint < ack {
                // Keep "recover" just behind SND.UNA so the comparison never wraps.
                recoveryPoint = ack - 1
            }
            congestionControl.acknowledged(acknowledgmentSample(bytes: acknowledged, rtt: rtt, now: now))
        }
        if sendUnacknowledged == sendMax {
            cancel(.retransmission)
        } else if !inFastRecovery {
            arm(.retransmission, at: now &+ retransmissionTimeout.timeout)
        }
    }

    /// SND.UNA moves to `ack`: the RTT sample, the send queue's front, the timeout's backoff. Returns
    /// the bytes (SYN and FIN included) newly acknowledged and the RTT sample, if any.
    @inline(__always) mutating func takeAcknowledgment(
        _ ack: SequenceNumber, header: TCPHeader, now: Int64, _ actions: inout TCPActions<Payload>
    ) -> (bytes: Int, rtt: Int64?) {
        let acknowledged = ack - sendUnacknowledged
        var rtt: Int64?
        if timestampsEnabled, let echo = header.options.timestamps?.echoReply, echo != 0 {
            let ticks = Int32(bitPattern: timestampTick(now) &- echo)
            if ticks >= 0 {
                rtt = Int64(ticks) * 1_000_000
            }
            timedSequence = nil
        } else if let timed = timedSequence, timed < ack {
            rtt = now &- timedSince
            timedSequence = nil
        }
        if let rtt {
            retransmissionTimeout.sample(rtt)
        }
        consecutiveRetransmissions = 0
        let dataAcknowledged = Swift.min(Swift.max(0, ack - sendQueueStart), sendQueueCount)
        sendQueueStart += dataAcknowledged
        sendQueueCount -= dataAcknowledged
        actions.acknowledgedBytes += dataAcknowledged
        sendUnacknowledged = ack
        progressTime = now
        if sendNext < ack {
            sendNext = ack
        }
        persistBackoff = 0
        windowValidation.acknowledged(ack, sendMax: sendMax, flight: flightSize)
        measureDeliveryRate(acknowledged: ack, now: now)
        return (acknowledged, rtt)
    }

    /// Closes a delivery-rate interval once it has lasted a smoothed RTT (RFC 6298's SRTT; 1 ms
    /// before there is one) and starts the next at `acknowledged`.
    mutating func measureDeliveryRate(acknowledged: SequenceNumber, now: Int64) {
        guard let start = deliveryIntervalStart else {
            deliveryIntervalStart = (now, acknowledged)
            return
        }
        let elapsed = now &- start.time
        guard elapsed > 0, elapsed >= (retransmissionTimeout.smoothedRTT ?? 1_000_000) else { return }
        let bytes = Swift.max(0, acknowledged - start.acknowledged)
        deliveryRate = Int(Double(bytes) * 1e9 / Double(elapsed))
        deliveryIntervalStart = (now, acknowledged)
    }

    private mutating func duplicateACK(now: Int64, _ actions: inout TCPActions<Payload>) {
        duplicateACKs += 1
        if inFastRecovery {
            congestionControl.duplicateACKInRecovery(maximumSegmentSize: maximumSegmentSize)
        } else if duplicateACKs == 3, recoveryPoint < sendUnacknowledged {
            // Fast retransmit (RFC 5681 3.2) and NewReno recovery (RFC 6582 3.2).
            inFastRecovery = true
            recoveryPoint = sendMax
            fastRetransmitCount += 1
            congestionControl.enterRecovery(
                flightSize: flightSize, maximumSegmentSize: maximumSegmentSize, now: now)
            retransmitFirstUnacknowledged(now: now, &actions)
        }
    }

    @inline(__always) private mutating func receiveData(
        _ payload: Payload, at sequence: SequenceNumber, fin: Bool, now: Int64, _ actions: inout TCPActions<Payload>
    ) {
        guard sequence == receiveNext else {
            // Ahead of a hole: keep it and send a duplicate ACK at once.
            let duplicate = outOfOrder.insert(
                payload, at: sequence, maximumSegments: configuration.maximumOutOfOrderSegments,
                maximumBytes: configuration.maximumOutOfOrderBytes)
            if sackPermitted, payload.count > 0 {
                if let duplicate {
                    sackReporter.duplicateReceived(duplicate.left, duplicate.right)
                }
                sackReporter.received(at: sequence)
            }
            if fin {
                outOfOrder.finSequence = sequence + payload.count
            }
            ackNow = true
            return
        }
        let fillsHole = !outOfOrder.isEmpty
        if payload.count > 0 {
            actions.delivered.append(payload)
            unreadCount += payload.count
            receiveNext += payload.count
        }
        var finArrived = fin
        // The stream ends at a FIN: bytes queued beyond it are not delivered (Linux drops them too).
        if fillsHole, !fin {
            let before = receiveNext
            receiveNext = outOfOrder.drain(from: receiveNext, upTo: outOfOrder.finSequence) {
                actions.delivered.append($0)
            }
            unreadCount += receiveNext - before
            if let finSequence = outOfOrder.finSequence, finSequence == receiveNext {
                finArrived = true
            }
        }
        if finArrived {
            receiveNext += 1
            outOfOrder.removeAll()
            actions.endOfStream = true
            ackNow = true
            switch state {
            case .synReceived, .established:
                state = .closeWait
            case .finWait1:
                if finAcknowledged {
                    enterTimeWait(now: now, &actions)
                } else {
                    state = .closing
                }
            case .finWait2:
                enterTimeWait(now: now, &actions)
            default:
                break
            }
            return
        }
        scheduleACK(forBytes: payload.count, quick: fillsHole, now: now)
    }

    /// Delayed ACK (RFC 9293 3.8.6.3, RFC 5681 4.2): at once during quick-ACK start-up or when a hole
    /// was filled, after every second full segment, otherwise within the delayed-ACK bound.
    @inline(__always) private mutating func scheduleACK(forBytes count: Int, quick: Bool, now: Int64) {
        bytesSinceACK += count
        if quick || quickACKsLeft > 0 {
            quickACKsLeft = Swift.max(0, quickACKsLeft - 1)
            ackNow = true
        } else if bytesSinceACK >= 2 * maximumSegmentSize {
            ackNow = true
        } else if !isArmed(.delayedACK) {
            arm(.delayedACK, at: now &+ configuration.delayedACKTimeout)
        }
    }
}
