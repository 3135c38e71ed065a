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
    /// A paced connection's next departure (rate-based congestion control); derived from its pacer.
    case pacing
}

/// One deadline per stored timer, inline so a connection value carries no array of its own
/// (keep-alive and user timeout are derived from the connection, never stored). A word each:
/// `Int64.min` stands for "not armed" (an optional would take two), which keeps an idle
/// connection's control block small.
struct TimerDeadlines: Hashable, Sendable {
    private static let unarmed = Int64.min
    private var retransmission = unarmed
    private var persist = unarmed
    private var delayedACK = unarmed
    private var finWait2 = unarmed
    private var timeWait = unarmed
    private var reorderTimeout = unarmed
    private var lossProbe = unarmed

    private static func value(_ stored: Int64) -> Int64? { stored == unarmed ? nil : stored }

    /// The earliest armed stored deadline, or nil when none is armed (inlined into
    /// `nextDeadline`, read after every event).
    @inline(__always) var earliest: Int64? {
        var least = Int64.max
        var armed = false
        @inline(__always) func consider(_ stored: Int64) {
            guard stored != Self.unarmed else { return }
            armed = true
            least = Swift.min(least, stored)
        }
        consider(retransmission)
        consider(persist)
        consider(delayedACK)
        consider(finWait2)
        consider(timeWait)
        consider(reorderTimeout)
        consider(lossProbe)
        return armed ? least : nil
    }

    subscript(timer: TCPTimer) -> Int64? {
        get {
            switch timer {
            case .retransmission: return Self.value(retransmission)
            case .persist: return Self.value(persist)
            case .delayedACK: return Self.value(delayedACK)
            case .finWait2: return Self.value(finWait2)
            case .timeWait: return Self.value(timeWait)
            case .keepAlive, .userTimeout, .pacing: return nil
            case .reorderTimeout: return Self.value(reorderTimeout)
            case .lossProbe: return Self.value(lossProbe)
            }
        }
        set {
            // An unarmed timer and one armed at the earliest representable time are one value;
            // no deadline is ever that early (times count up from the clock's start).
            let stored = newValue ?? Self.unarmed
            switch timer {
            case .retransmission: retransmission = stored
            case .persist: persist = stored
            case .delayedACK: delayedACK = stored
            case .finWait2: finWait2 = stored
            case .timeWait: timeWait = stored
            case .keepAlive, .userTimeout, .pacing: break
            case .reorderTimeout: reorderTimeout = stored
            case .lossProbe: lossProbe = stored
            }
        }
    }
}
