/// Options the user may change on a live connection.
extension TCPConnection {
    /// TCP_NODELAY set or cleared after the connection was made; setting it sends what Nagle held.
    public mutating func setNoDelay(_ noDelay: Bool, now: Int64, into actions: inout TCPActions<Payload>) {
        configuration.noDelay = noDelay
        if noDelay {
            output(now: now, &actions)
        }
    }
}

extension TCPConnection {
    /// TCP_CONGESTION changed: later connections use `algorithm`, and this one switches now. A
    /// synchronized connection hands the new controller its window and threshold (as Linux keeps
    /// cwnd and ssthresh across the change); before the handshake the new one starts afresh.
    public mutating func setCongestionControl(_ algorithm: TCPCongestionAlgorithm) {
        let current = configuration.congestionControl
        configuration.congestionControl = algorithm
        guard algorithm != current else { return }
        var replacement = algorithm.make(maximumSegmentSize: maximumSegmentSize, hyStart: configuration.hyStart)
        replacement.start(maximumSegmentSize: maximumSegmentSize)
        if state.isSynchronized, state != .synReceived {
            replacement.resume(
                congestionWindow: congestionControl.congestionWindow,
                slowStartThreshold: congestionControl.slowStartThreshold, maximumSegmentSize: maximumSegmentSize)
        }
        congestionControl = replacement
        matchRateBasedSending()
    }
}

extension TCPConnection {
    /// Sets the offset added to the millisecond clock in TSval, before the connection sends
    /// anything. A per-host-pair offset (as Linux keys it) keeps TSvals rising across successive
    /// connections between two hosts, so a new SYN can end an old TIME_WAIT by timestamp.
    public mutating func setTimestampOffset(_ offset: UInt32) {
        guard state == .closed, sendNext == initialSendSequence else { return }
        timestampOffset = offset
    }
}
