import NetMPWire

/// The user's requests, as the socket layer relays them to the owner thread.
extension TCPConnection {
    /// Active open: sends the SYN. Only from CLOSED.
    public mutating func connect(now: Int64, into actions: inout TCPActions<Payload>) {
        guard state == .closed, sendNext == initialSendSequence else { return }
        state = .synSent
        emitSYN(now: now, &actions)
        sendNext = initialSendSequence + 1
        sendMax = sendNext
        timedSequence = initialSendSequence
        timedSince = now
        arm(.retransmission, at: now &+ retransmissionTimeout.timeout)
    }

    /// Passive open: the child a listen socket makes for `syn` (a SYN without ACK, see `TCPListener`),
    /// already in SYN_RECEIVED with its SYN-ACK in `actions`.
    public init(
        acceptingSYN syn: TCPHeader, configuration: TCPConfiguration = TCPConfiguration(),
        initialSequenceNumber: SequenceNumber, routeMTU: Int = 1500,
        congestionControl: (any TCPCongestionControl)? = nil, now: Int64, into actions: inout TCPActions<Payload>
    ) {
        self.init(
            configuration: configuration, localPort: syn.destinationPort, remotePort: syn.sourcePort,
            initialSequenceNumber: initialSequenceNumber, routeMTU: routeMTU, congestionControl: congestionControl)
        state = .synReceived
        passiveOpen = true
        initialReceiveSequence = SequenceNumber(syn.sequenceNumber)
        receiveNext = initialReceiveSequence + 1
        receiveAdvertised = receiveNext
        negotiate(syn.options, now: now)
        ecn.negotiated = configuration.explicitCongestionNotification && TCPExplicitCongestion.isSetupSYN(syn.flags)
        sendWindow = Int(syn.window)
        maximumSendWindow = sendWindow
        windowUpdateSequence = initialReceiveSequence
        emitSYN(now: now, &actions)
        sendNext = initialSendSequence + 1
        sendMax = sendNext
        timedSequence = initialSendSequence
        timedSince = now
        arm(.retransmission, at: now &+ retransmissionTimeout.timeout)
    }

    /// The application appended `count` bytes to the send buffer.
    public mutating func send(count: Int, now: Int64, into actions: inout TCPActions<Payload>) {
        guard count > 0, !finQueued else { return }
        switch state {
        case .synSent, .synReceived, .established, .closeWait:
            sendQueueCount += count
            output(now: now, &actions)
        default:
            return
        }
    }

    /// The application read `count` bytes: the window reopens, and is advertised at once when that
    /// matters to the sender (`windowUpdateStep`); otherwise the next ACK carries it.
    public mutating func received(count: Int, now: Int64, into actions: inout TCPActions<Payload>) {
        unreadCount = Swift.max(0, unreadCount - Swift.max(0, count))
        guard state.isSynchronized, state != .timeWait else { return }
        if windowIncrease >= windowUpdateStep {
            ackNow = true
            output(now: now, &actions)
        }
    }

    /// How far the window's right edge must move for a window update of its own: two segments (or
    /// half a small buffer), and at least the smaller of the window still advertised and a quarter
    /// of the buffer. A small window so at least doubles (Linux's rule in tcp_cleanup_rbuf), and a
    /// reader taking small pieces from a large buffer does not send an update every 2 MSS: the ACKs
    /// the sender's data draws carry what it opened. (The quarter: a sender with more window than
    /// that left still waits for the update when the window is a few large segments, as over TAP
    /// with 64 KiB segments into a 256 KiB buffer, where Linux's rule alone cost a fifth of the
    /// throughput.)
    @inline(__always) package var windowUpdateStep: Int {
        let least = Swift.min(2 * localMaximumSegmentSize, configuration.receiveBufferSize / 2)
        let advertised = Swift.max(0, receiveAdvertised - receiveNext)
        return Swift.max(least, Swift.min(advertised, configuration.receiveBufferSize / 4))
    }

    /// Bytes the application may read, beyond those reported, before a window update is due: what a
    /// reader counts before it tells the owner (at least 1).
    @inline(__always) package var readsBeforeWindowUpdate: Int {
        Swift.max(1, windowUpdateStep - windowIncrease)
    }

    /// shutdown(SHUT_WR): a FIN after the queued data; reading continues.
    public mutating func shutdownWrite(now: Int64, into actions: inout TCPActions<Payload>) {
        switch state {
        case .synSent, .synReceived:
            finQueued = true
        case .established:
            finQueued = true
            state = .finWait1
            output(now: now, &actions)
        case .closeWait:
            finQueued = true
            state = .lastAck
            output(now: now, &actions)
        case .closed, .listen:
            becomeClosed(&actions)
        default:
            return
        }
    }

    /// close(): a graceful close, except that unread received data makes it a reset (RFC 9293 3.10.4,
    /// RFC 2525 2.17), as BSD and Linux do.
    public mutating func close(now: Int64, into actions: inout TCPActions<Payload>) {
        closeRequested = true
        switch state {
        case .closed, .listen, .synSent:
            becomeClosed(&actions)
        case .established, .closeWait, .finWait1, .finWait2, .synReceived:
            if unreadCount > 0 {
                abort(now: now, into: &actions)
            } else if state == .finWait2 {
                if !isArmed(.finWait2) {
                    arm(.finWait2, at: now &+ configuration.finWait2Timeout)
                }
            } else {
                shutdownWrite(now: now, into: &actions)
            }
        default:
            break
        }
    }

    /// abort(), or close with SO_LINGER 0: a RST for a synchronized connection, then CLOSED at once.
    public mutating func abort(now: Int64, into actions: inout TCPActions<Payload>) {
        switch state {
        case .synReceived, .established, .finWait1, .finWait2, .closeWait:
            actions.segments.append(resetSegment(sequence: sendNext, acknowledge: true))
        default:
            break
        }
        becomeClosed(&actions)
    }
}
