/// Congestion window validation for application-limited periods (RFC 7661): the window is
/// validated, and may grow, only while the sender uses at least half of it over a round trip or is
/// stopped by it. A sender that writes less than its window would otherwise grow cwnd on ACKs of
/// data it never needed the window for, then burst into a network that never carried that much.
///
/// The RFC's pipeACK (bytes acknowledged over an RTT) is approximated by the largest flight seen in
/// the current or the previous round; a round ends when SND.MAX as it was at its start is acknowledged.
public struct CongestionWindowValidation: Hashable, Sendable {
    /// SND.MAX when the current round began.
    public private(set) var roundEnd: SequenceNumber
    /// The largest flight after a send in the current round, and in the one before.
    public private(set) var peakFlight = 0
    public private(set) var previousPeakFlight = 0
    /// Sending stopped at the congestion window in the current round, or in the one before.
    public private(set) var stoppedByWindow = false
    private var previouslyStoppedByWindow = false

    public init(start: SequenceNumber) {
        roundEnd = start
    }

    /// A segment was sent; `flight` is the bytes in flight now.
    public mutating func sent(flight: Int) {
        peakFlight = Swift.max(peakFlight, flight)
    }

    /// Data was waiting but the congestion window (not the peer's window) kept it back.
    public mutating func stoppedByCongestionWindow() {
        stoppedByWindow = true
    }

    /// An ACK moved SND.UNA to `acknowledgment`; a round that ends starts the next one.
    public mutating func acknowledged(_ acknowledgment: SequenceNumber, sendMax: SequenceNumber, flight: Int) {
        guard !(acknowledgment < roundEnd) else { return }
        previousPeakFlight = peakFlight
        peakFlight = flight
        previouslyStoppedByWindow = stoppedByWindow
        stoppedByWindow = false
        roundEnd = sendMax
    }

    /// True when `congestionWindow` is validated: it was in use (RFC 7661 section 4.3).
    public func isValidated(congestionWindow: Int) -> Bool {
        if stoppedByWindow || previouslyStoppedByWindow {
            return true
        }
        let used = Swift.max(peakFlight, previousPeakFlight)
        return used >= congestionWindow - used
    }
}
