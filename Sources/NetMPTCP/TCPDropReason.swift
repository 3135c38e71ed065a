/// Why a connection dropped an arriving segment, for the stack's counters (as `netstat -s` has them).
public enum TCPDropReason: Int, CaseIterable, Hashable, Sendable {
    /// Outside the receive window (RFC 9293 3.10.7.4 first check); answered with an ACK.
    case outOfWindow
    /// Its TSval is older than TS.Recent (PAWS, RFC 7323 5); answered with an ACK.
    case paws
    /// A RST whose sequence number is outside the window (RFC 5961 3.2): silently.
    case resetOutOfWindow
    /// A RST in the window but not at RCV.NXT (RFC 5961 3.2): challenged.
    case resetNotExact
    /// A SYN in a synchronized state (RFC 5961 4.2): challenged.
    case synInSynchronizedState
    /// An ACK for data never sent (RFC 5961 5.2): challenged.
    case acknowledgmentOfUnsentData
    /// An ACK older than SND.UNA − MAX.SND.WND (RFC 5961 5.2): challenged.
    case acknowledgmentTooOld
}

/// A count per `TCPDropReason`, stored inline.
public struct TCPDropCounts: Hashable, Sendable {
    public private(set) var outOfWindow = 0
    public private(set) var paws = 0
    public private(set) var resetOutOfWindow = 0
    public private(set) var resetNotExact = 0
    public private(set) var synInSynchronizedState = 0
    public private(set) var acknowledgmentOfUnsentData = 0
    public private(set) var acknowledgmentTooOld = 0

    public init() {}

    public subscript(reason: TCPDropReason) -> Int {
        get {
            switch reason {
            case .outOfWindow: return outOfWindow
            case .paws: return paws
            case .resetOutOfWindow: return resetOutOfWindow
            case .resetNotExact: return resetNotExact
            case .synInSynchronizedState: return synInSynchronizedState
            case .acknowledgmentOfUnsentData: return acknowledgmentOfUnsentData
            case .acknowledgmentTooOld: return acknowledgmentTooOld
            }
        }
        set {
            switch reason {
            case .outOfWindow: outOfWindow = newValue
            case .paws: paws = newValue
            case .resetOutOfWindow: resetOutOfWindow = newValue
            case .resetNotExact: resetNotExact = newValue
            case .synInSynchronizedState: synInSynchronizedState = newValue
            case .acknowledgmentOfUnsentData: acknowledgmentOfUnsentData = newValue
            case .acknowledgmentTooOld: acknowledgmentTooOld = newValue
            }
        }
    }

    /// All drops.
    public var total: Int { TCPDropReason.allCases.reduce(0) { $0 &+ self[$1] } }

    public static func + (lhs: TCPDropCounts, rhs: TCPDropCounts) -> TCPDropCounts {
        var sum = lhs
        for reason in TCPDropReason.allCases {
            sum[reason] = lhs[reason] &+ rhs[reason]
        }
        return sum
    }
}
