/// Timer expiry: retransmission (RFC 6298), SYN retransmission, persist (zero-window probes),
/// delayed ACK, FIN_WAIT_2 and TIME_WAIT.
extension TCPConnection {
    /// Handles every timer whose deadline is at or before `now`.
    public mutating func timerFired(now: Int64, into actions: inout TCPActions<Payload>) {
        if expired(.timeWait, now) || expired(.finWait2, now) {
            becomeClosed(&actions)
            return
        }
        if defenceTimersFired(now: now, &actions) {
            return
        }
        if expired(.retransmission, now) {
            cancel(.retransmission)
            retransmissionTimerFired(now: now, &actions)
            if state == .closed {
                return
            }
        }
        if expired(.reorderTimeout, now) {
            cancel(.reorderTimeout)
            reorderTimerFired(now: now, &actions)
        }
        if expired(.lossProbe, now) {
            cancel(.lossProbe)
            lossProbeFired(now: now, &actions)
        }
        if expired(.persist, now) {
            cancel(.persist)
            persistBackoff += 1
            _ = sendOne(now: now, force: true, &actions)
            armPersistIfStuck(now: now)
        }
        if expired(.pacing, now) {
            // The pacer lets the next segment go: output, below, sends it.
            cancel(.pacing)
        }
        if expired(.delayedACK, now) {
            cancel(.delayedACK)
            ackNow = true
        }
        output(now: now, &actions)
    }

    private func expired(_ timer: TCPTimer, _ now: Int64) -> Bool {
        deadline(of: timer).map { $0 <= now } ?? false
    }

    private mutating func retransmissionTimerFired(now: Int64, _ actions: inout TCPActions<Payload>) {
        consecutiveRetransmissions += 1
        timedSequence = nil
        switch state {
        case .synSent, .synReceived:
            guard consecutiveRetransmissions <= configuration.maximumSYNRetransmissions else {
                becomeClosed(&actions, error: .timedOut)
                return
            }
            retransmissionTimeout.backOff()
            timeoutCount += 1
            retransmittedSegments += 1
            emitSYN(now: now, &actions)
            arm(.retransmission, at: now &+ retransmissionTimeout.timeout)
        case .established, .finWait1, .closeWait, .closing, .lastAck:
            // With a user timeout, it alone decides when to give up (as on Linux).
            guard configuration.userTimeout > 0 || consecutiveRetransmissions <= configuration.maximumRetransmissions
            else {
                becomeClosed(&actions, error: softError ?? .timedOut)
                return
            }
            retransmissionTimeout.backOff()
            timeoutCount += 1
            congestionControl.retransmissionTimeout(
                flightSize: flightSize, maximumSegmentSize: maximumSegmentSize, now: now)
            inFastRecovery = false
            duplicateACKs = 0
            recoveryPoint = sendMax
            if sackPermitted && !scoreboard.isEmpty {
                // Resend what the peer has not SACKed, in order, as the window allows.
                scoreboardTimedOut()
            } else {
                // Go back N: resend from the first unacknowledged byte as the window allows.
                sendNext = sendUnacknowledged
            }
            output(now: now, &actions)
            if sendUnacknowledged != sendMax, !isArmed(.retransmission), !isArmed(.persist) {
                arm(.retransmission, at: now &+ retransmissionTimeout.timeout)
            }
        default:
            return
        }
    }
}
