/// The timers a connection runs; the integration arms one callout at `nextDeadline` and calls
/// `timerFired` when it passes (the connection works out which timers expired).
public enum TCPTimer: Int, CaseIterable, Hashable, Sendable {
    case retransmission
    case persist
    case delayedACK
    case finWait2
    case timeWait
    /// Keep-alive probes (SO_KEEPALIVE); its deadline is derived from the connection's state.
    case keepAlive
    /// TCP_USER_TIMEOUT; its deadline is derived from when the oldest unacknowledged data was sent.
    case userTimeout
    /// RACK's reordering window for a segment that may yet be reordered rather than lost.
    case reorderTimeout
    /// The tail loss probe (RFC 8985 7).
    case lossProbe
}

/// One deadline per stored timer, inline so a connection value carries no array of its own
/// (keep-alive and user timeout are derived from the connection, never stored).
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
            case .keepAlive, .userTimeout: return nil
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
            case .keepAlive, .userTimeout: break
            case .reorderTimeout: reorderTimeout = newValue
            case .lossProbe: lossProbe = newValue
            }
        }
    }
}
