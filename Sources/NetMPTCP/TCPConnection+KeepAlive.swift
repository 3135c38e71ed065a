import NetMPWire

/// Keep-alive (RFC 9293 3.8.4, with Linux's idle, interval and count) and the user timeout
/// (RFC 5482, as Linux's TCP_USER_TIMEOUT). Their deadlines are derived from the connection's
/// state rather than stored, so nothing has to re-arm them as segments come and go.
extension TCPConnection {
    /// When the next keep-alive probe is due (or, after `keepAliveCount` unanswered ones, when the
    /// connection is dropped); nil while keep-alive is off, data is outstanding (the retransmission
    /// and persist timers watch the peer then) or the state has no use for it.
    @inline(__always)
    var keepAliveDeadline: Int64? {
        guard configuration.keepAlive, sendMax == sendUnacknowledged, !(sendNext < sendQueueEnd) else {
            return nil
        }
        switch state {
        case .established, .closeWait, .finWait2:
            break
        default:
            return nil
        }
        if keepAliveProbesSent > 0 {
            return lastKeepAliveProbeTime &+ configuration.keepAliveInterval
        }
        return Swift.max(lastReceiveTime, keepAliveStartTime) &+ configuration.keepAliveIdle
    }

    /// When the oldest unacknowledged data will have waited the user timeout; nil without one or
    /// with nothing outstanding.
    @inline(__always)
    var userTimeoutDeadline: Int64? {
        guard configuration.userTimeout > 0, sendMax != sendUnacknowledged else { return nil }
        switch state {
        case .established, .finWait1, .closeWait, .closing, .lastAck:
            return progressTime &+ configuration.userTimeout
        default:
            return nil
        }
    }

    /// An acceptable segment arrived: the peer is alive.
    mutating func noteSegmentAccepted(now: Int64) {
        lastReceiveTime = now
        keepAliveProbesSent = 0
    }

    /// Runs the keep-alive and user timeout timers if due; true when the connection was dropped.
    mutating func defenceTimersFired(now: Int64, _ actions: inout TCPActions<Payload>) -> Bool {
        if let deadline = userTimeoutDeadline, deadline <= now {
            becomeClosed(&actions, error: softError ?? .timedOut)
            return true
        }
        guard let deadline = keepAliveDeadline, deadline <= now else { return false }
        let exhausted: Bool
        if configuration.userTimeout > 0 {
            // With a user timeout, it decides when probing stops (as Linux does).
            let idle = now &- Swift.max(lastReceiveTime, keepAliveStartTime)
            exhausted = keepAliveProbesSent > 0 && idle >= configuration.userTimeout
        } else {
            exhausted = keepAliveProbesSent >= configuration.keepAliveCount
        }
        if exhausted {
            // The peer is gone or restarted: tell it, as Linux does, and report the timeout.
            actions.segments.append(resetSegment(sequence: sendNext, acknowledge: true))
            becomeClosed(&actions, error: softError ?? .timedOut)
            return true
        }
        // A probe: an old sequence number with no data, which any live peer must ACK.
        emit(sequence: sendUnacknowledged - 1, flags: .ack, now: now, &actions)
        keepAliveProbesSent += 1
        lastKeepAliveProbeTime = now
        return false
    }

    /// SO_KEEPALIVE and its parameters on a live connection. Switching it on counts the idle time
    /// from now, as Linux re-arms its timer.
    public mutating func setKeepAlive(
        _ enabled: Bool, idle: Int64? = nil, interval: Int64? = nil, count: Int? = nil, now: Int64
    ) {
        if enabled && !configuration.keepAlive {
            keepAliveStartTime = now
            keepAliveProbesSent = 0
        }
        configuration.keepAlive = enabled
        if let idle { configuration.keepAliveIdle = Swift.max(1, idle) }
        if let interval { configuration.keepAliveInterval = Swift.max(1, interval) }
        if let count { configuration.keepAliveCount = Swift.max(1, count) }
    }

    /// TCP_USER_TIMEOUT on a live connection; 0 turns it off.
    public mutating func setUserTimeout(_ timeout: Int64) {
        configuration.userTimeout = Swift.max(0, timeout)
    }
}
