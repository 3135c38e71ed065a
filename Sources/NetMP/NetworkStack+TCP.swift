import NetMPInet
import NetMPRuntime
import NetMPSockets
import NetMPTCP
import NetMPWire

/// TCP counters of a stack, summed over its protocol threads.
public struct TCPStackStatistics: Sendable, Hashable {
    public var segmentsSent: Int
    public var segmentsReceived: Int
    public var malformedSegments: Int
    public var resetsSent: Int
    /// Segments sent again: timeouts, fast and partial-ACK retransmissions.
    public var retransmittedSegments: Int
    public var retransmissionTimeouts: Int
    public var fastRetransmits: Int
    /// SYNs dropped because a listen queue was full.
    public var listenOverflows: Int
    /// Control blocks alive in the threads' tables, and TIME_WAIT records.
    public var liveConnections: Int
    public var timeWaitRecords: Int
    /// 4-tuples reserved in the shared table (live connections and TIME_WAIT records).
    public var reservedTuples: Int
    /// RFC 5961 challenge ACKs sent, and those the stack-wide rate limit suppressed.
    public var challengeACKsSent = 0
    public var challengeACKsSuppressed = 0
    /// Segments connections dropped, by reason (PAWS, out of window, RFC 5961 cases).
    public var drops = TCPDropCounts()
    /// RST segments received, and connections ended by one.
    public var resetsReceived = 0
    public var connectionsReset = 0
    /// Connections that timed out (retransmissions, user timeout or keep-alive).
    public var connectionsTimedOut = 0
    /// SYN cookies sent (a listen socket's incomplete queue was full), ACKs that proved one, and
    /// ACKs that did not.
    public var cookiesSent = 0
    public var cookiesValidated = 0
    public var cookiesRejected = 0
    /// Out-of-order data the stack's connections hold now, and how often (and how many bytes)
    /// a connection's queue was pruned to keep its thread within the stack-wide bound
    /// (`TCPConfiguration.maximumOutOfOrderBytesPerStack`).
    public var outOfOrderBytes = 0
    public var outOfOrderPrunes = 0
    public var outOfOrderBytesPruned = 0
}

extension NetworkStack {
    /// The settings new TCP connections start from: RTO bounds, retries, TIME_WAIT length
    /// (2 × `maximumSegmentLifetime`), delayed-ACK time. Socket options override no-delay and the
    /// receive buffer.
    public var tcpConfiguration: TCPConfiguration {
        get { tcp.configuration }
        set { tcp.configuration = newValue }
    }

    public func tcpStatistics() -> TCPStackStatistics {
        let sum = tcp.statistics()
        return TCPStackStatistics(
            segmentsSent: sum.segmentsSent, segmentsReceived: sum.segmentsReceived, malformedSegments: sum.malformed,
            resetsSent: sum.resetsSent, retransmittedSegments: sum.retransmittedSegments,
            retransmissionTimeouts: sum.timeouts, fastRetransmits: sum.fastRetransmits,
            listenOverflows: sum.listenOverflows, liveConnections: sum.liveConnections,
            timeWaitRecords: sum.timeWaitRecords, reservedTuples: tcp.tablesTupleCount,
            challengeACKsSent: sum.challengeACKsSent, challengeACKsSuppressed: sum.challengeACKsSuppressed,
            drops: sum.drops, resetsReceived: sum.resetsReceived, connectionsReset: sum.connectionsReset,
            connectionsTimedOut: sum.connectionsTimedOut, cookiesSent: sum.cookiesSent,
            cookiesValidated: sum.cookiesValidated, cookiesRejected: sum.cookiesRejected,
            outOfOrderBytes: sum.outOfOrderBytes, outOfOrderPrunes: sum.outOfOrderPrunes,
            outOfOrderBytesPruned: sum.outOfOrderBytesPruned)
    }
}
