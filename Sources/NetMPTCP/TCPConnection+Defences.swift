import NetMPWire

/// The blind-attack defences of RFC 5961 and PAWS (RFC 7323 5). A segment that fails them is
/// dropped; where the RFCs answer with an ACK it is a "challenge ACK" in `actions.challengeACK`,
/// which the integration sends only while the stack's rate limit allows (RFC 5961 7).
extension TCPConnection {
    /// After 24 days without an update TS.Recent is no longer trusted (RFC 7323 5.5).
    public static var timestampValidity: Int64 { 24 * 86_400 * 1_000_000_000 }

    /// PAWS, then RFC 5961's RST (3.2) and SYN (4.2) rules for a segment in a synchronized state;
    /// false when the segment was dropped or ended the connection.
    @inline(__always) mutating func screen(
        _ header: TCPHeader, payloadLength: Int, now: Int64, _ actions: inout TCPActions<Payload>
    ) -> Bool {
        let flags = header.flags
        if !flags.contains(.rst), isOldDuplicate(header, now: now) {
            actions.dropped = .paws
            let length = payloadLength + (header.flags.contains(.fin) ? 1 : 0)
            if mayAnswerUnacceptable(length: length, syn: flags.contains(.syn), now: now) {
                ackNow = true
                output(now: now, &actions)
            }
            return false
        }
        if flags.contains(.rst) {
            let sequence = SequenceNumber(header.sequenceNumber)
            let window = Swift.max(0, receiveAdvertised - receiveNext)
            if sequence == receiveNext || (peerFINReceived && sequence == receiveNext - 1) {
                resetByPeer(&actions)
            } else if window > 0, sequence.isIn(receiveNext, receiveNext + window) {
                actions.dropped = .resetNotExact
                challenge(now: now, &actions)
            } else {
                actions.dropped = .resetOutOfWindow
            }
            return false
        }
        if flags.contains(.syn) {
            // Whatever its sequence number: a peer that really restarted answers the challenge
            // with a RST at exactly RCV.NXT.
            actions.dropped = .synInSynchronizedState
            challenge(now: now, &actions)
            return false
        }
        return true
    }

    /// The peer's FIN was received: a RST may then carry the FIN's sequence number (RCV.NXT − 1),
    /// as Linux accepts.
    private var peerFINReceived: Bool {
        switch state {
        case .closeWait, .closing, .lastAck: return true
        default: return false
        }
    }

    /// Whether an unacceptable segment (`length` its data, SYN and FIN octets) may be answered with
    /// an ACK now. Segments with data always are: the sender needs the duplicate ACK, and data is
    /// not what ACK loops are made of (Linux's rule); others at most once per
    /// `outOfWindowACKInterval`.
    mutating func mayAnswerUnacceptable(length: Int, syn: Bool, now: Int64) -> Bool {
        if length > 0 && !syn {
            return true
        }
        let last = lastOutOfWindowACKTime
        if last != Int64.min, now >= last, now &- last < configuration.outOfWindowACKInterval {
            return false
        }
        lastOutOfWindowACKTime = now
        return true
    }

    /// Whether a segment carries a TSval older than TS.Recent (RFC 7323 5.3 R1), TS.Recent being
    /// valid; comparison is modulo 2^32, so timestamps wrap.
    func isOldDuplicate(_ header: TCPHeader, now: Int64) -> Bool {
        guard timestampsEnabled, let timestamps = header.options.timestamps,
            now &- recentTimestampTime < TCPConnection.timestampValidity
        else { return false }
        return Int32(bitPattern: timestamps.value &- recentTimestamp) < 0
    }

    /// An acceptable RST: the connection ends (RFC 9293 3.10.7.4, second check).
    private mutating func resetByPeer(_ actions: inout TCPActions<Payload>) {
        switch state {
        case .synReceived:
            // An active opener (simultaneous open) was refused; a listen socket's child just goes.
            becomeClosed(&actions, error: passiveOpen ? .connectionReset : .connectionRefused)
        case .established, .finWait1, .finWait2, .closeWait:
            becomeClosed(&actions, error: .connectionReset)
        default:
            becomeClosed(&actions)
        }
    }

    /// RFC 5961 5.2: an ACK is acceptable in [SND.UNA − MAX.SND.WND, SND.NXT] (SND.NXT being the
    /// highest sent); outside it the segment is dropped and challenged.
    mutating func acknowledgmentAcceptable(
        _ ack: SequenceNumber, now: Int64, _ actions: inout TCPActions<Payload>
    ) -> Bool {
        if sendMax < ack {
            actions.dropped = .acknowledgmentOfUnsentData
        } else if ack < sendUnacknowledged - maximumSendWindow {
            actions.dropped = .acknowledgmentTooOld
        } else {
            return true
        }
        challenge(now: now, &actions)
        return false
    }

    /// The sequence number of a segment without data: the first never-sent octet, as BSD does, even
    /// while SND.NXT is wound back for a retransmission (a peer that has the retransmitted bytes
    /// would find SND.NXT left of its window and drop the ACK, and the two could then only trade
    /// unacceptable segments); SND.NXT while probing a zero window, whose probe byte SND.MAX counts.
    var acknowledgmentSequence: SequenceNumber { isArmed(.persist) ? sendNext : sendMax }

    /// Asks for a challenge ACK `<SEQ=SND.MAX><ACK=RCV.NXT>`. It changes no state, so a suppressed
    /// one leaves nothing owed (a delayed ACK stays armed).
    mutating func challenge(now: Int64, _ actions: inout TCPActions<Payload>) {
        var options = TCPOptions()
        if timestampsEnabled {
            options.timestamps = TCPTimestamps(value: timestampTick(now), echoReply: recentTimestamp)
        }
        let window = Swift.max(0, receiveAdvertised - receiveNext) >> Int(receiveScale)
        actions.challengeACK = TCPOutboundSegment(
            header: TCPHeader(
                sourcePort: localPort, destinationPort: remotePort, sequenceNumber: acknowledgmentSequence.rawValue,
                acknowledgmentNumber: receiveNext.rawValue, flags: .ack, window: UInt16(clamping: window),
                options: options))
    }
}
