/// The timers a connection runs; the integration arms one callout at `nextDeadline` and calls
/// `timerFired` when it passes (the connection works out which timers expired).
public enum TCPTimer: Int, CaseIterable, Hashable, Sendable {
    case retransmission
    case persist
    case delayedACK
    case finWait2
    case timeWait
    /// RACK's reordering window for a segment that may yet be reordered rather than lost.
    case reorderTimeout
    /// The tail loss probe (RFC 8985 7).
    case lossProbe
}

/// One deadline per timer, stored inline so a connection value carries no array of its own.
struct TimerDeadlines: Hashable, Sendable {
    private var retransmission: Int64?
    private var persist: Int64?
    private var delayedACK: Int64?
    private var finWait2: Int64?
    private var timeWait: Int64?
    private var reorderTimeout: Int64?
    private var lossProbe: Int64?

    subscript(timer: TCPTimer) -> Int64? {
        get {
            switch timer {
            case .retransmission: return retransmission
            case .persist: return persist
            case .delayedACK: return delayedACK
            case .finWait2: return finWait2
            case .timeWait: return timeWait
            case .reorderTimeout: return reorderTimeout
            case .lossProbe: return lossProbe
            }
        }
        set {
            switch timer {
            case .retransmission: retransmission = newValue
            case .persist: persist = newValue
            case .delayedACK: delayedACK = newValue
            case .finWait2: finWait2 = newValue
            case .timeWait: timeWait = newValue
            case .reorderTimeout: reorderTimeout = newValue
            case .lossProbe: lossProbe = newValue
            }
        }
    }
}
