/// What the connection tells its congestion controller beyond losses: per-ACK samples with the RTT
/// and round, and whether the window was in use (RFC 7661).
extension TCPConnection {
    /// After output sent what it could: record the flight, and whether the congestion window (rather
    /// than the peer's window, Nagle or a lack of data) held data back.
    mutating func noteCongestionWindowUse() {
        windowValidation.sent(flight: flightSize)
        let unsent = sendQueueEnd - sendNext
        let window = congestionControl.congestionWindow
        guard unsent > 0, window <= sendWindow else { return }
        let usable = (sendUnacknowledged + window) - sendNext
        if usable < Swift.min(unsent, maximumSegmentSize) {
            windowValidation.stoppedByCongestionWindow()
        }
    }

    /// The sample for an ACK of `bytes` outside recovery; `rtt` is what the ACK measured, if anything.
    func acknowledgmentSample(bytes: Int, rtt: Int64?, now: Int64) -> TCPAcknowledgmentSample {
        TCPAcknowledgmentSample(
            bytes: bytes, maximumSegmentSize: maximumSegmentSize, now: now, acknowledgment: sendUnacknowledged,
            sendMax: sendMax, rtt: rtt, smoothedRTT: retransmissionTimeout.smoothedRTT,
            windowValidated: windowValidation.isValidated(congestionWindow: congestionControl.congestionWindow))
    }
}
