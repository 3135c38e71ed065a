import NetMPRuntime

/// Counters of one thread (summed by the stack).
package struct TCPStatistics: Sendable {
    package var segmentsSent = 0
    package var segmentsReceived = 0
    package var malformed = 0
    /// Segments whose payload arrived as the sender's send-buffer slices (scatter-gather) and
    /// went to the receive buffer without a copy.
    package var gatheredSegmentsReceived = 0
    package var resetsSent = 0
    package var errors = 0
    package var listenOverflows = 0
    package var bytesReceived = 0
    /// ICMP errors that named one of our connections, and those that named none.
    package var icmpErrors = 0
    package var icmpErrorsUnmatched = 0
    /// Of connections that ended; live ones are added when asked.
    package var retransmittedSegments = 0
    package var timeouts = 0
    package var fastRetransmits = 0
    package var connectionsClosed = 0
    /// Control blocks in the thread tables now, and TIME_WAIT records.
    package var liveConnections = 0
    package var timeWaitRecords = 0
    /// RFC 5961 challenge ACKs sent, and those the stack's rate limit suppressed.
    package var challengeACKsSent = 0
    package var challengeACKsSuppressed = 0
    /// Segments dropped by a connection, by reason.
    package var drops = TCPDropCounts()
    /// RST segments that arrived (for connections, TIME_WAIT records or nothing).
    package var resetsReceived = 0
    /// Connections ended by the peer's RST, and by a timeout (retransmission, user timeout,
    /// keep-alive).
    package var connectionsReset = 0
    package var connectionsTimedOut = 0
    /// SYN cookies sent, ACKs that proved one (a connection made), and ACKs that did not.
    package var cookiesSent = 0
    package var cookiesValidated = 0
    package var cookiesRejected = 0
    /// Out-of-order data held by this thread's connections now, and the times a connection's
    /// queue was pruned because the thread's share of the stack's bound was exceeded (with the
    /// bytes dropped).
    package var outOfOrderBytes = 0
    package var outOfOrderPrunes = 0
    package var outOfOrderBytesPruned = 0

    package init() {}

    mutating func add(_ connection: TCPConnection<ByteSlice>, closing: Bool) {
        guard closing else { return }
        retransmittedSegments += connection.retransmittedSegments
        timeouts += connection.timeoutCount
        fastRetransmits += connection.fastRetransmitCount
        connectionsClosed += 1
    }

    package static func + (lhs: TCPStatistics, rhs: TCPStatistics) -> TCPStatistics {
        var sum = lhs
        sum.segmentsSent += rhs.segmentsSent
        sum.segmentsReceived += rhs.segmentsReceived
        sum.malformed += rhs.malformed
        sum.gatheredSegmentsReceived += rhs.gatheredSegmentsReceived
        sum.resetsSent += rhs.resetsSent
        sum.errors += rhs.errors
        sum.listenOverflows += rhs.listenOverflows
        sum.bytesReceived += rhs.bytesReceived
        sum.icmpErrors += rhs.icmpErrors
        sum.icmpErrorsUnmatched += rhs.icmpErrorsUnmatched
        sum.retransmittedSegments += rhs.retransmittedSegments
        sum.timeouts += rhs.timeouts
        sum.fastRetransmits += rhs.fastRetransmits
        sum.connectionsClosed += rhs.connectionsClosed
        sum.liveConnections += rhs.liveConnections
        sum.timeWaitRecords += rhs.timeWaitRecords
        sum.challengeACKsSent += rhs.challengeACKsSent
        sum.challengeACKsSuppressed += rhs.challengeACKsSuppressed
        sum.drops = sum.drops + rhs.drops
        sum.resetsReceived += rhs.resetsReceived
        sum.connectionsReset += rhs.connectionsReset
        sum.connectionsTimedOut += rhs.connectionsTimedOut
        sum.cookiesSent += rhs.cookiesSent
        sum.cookiesValidated += rhs.cookiesValidated
        sum.cookiesRejected += rhs.cookiesRejected
        sum.outOfOrderBytes += rhs.outOfOrderBytes
        sum.outOfOrderPrunes += rhs.outOfOrderPrunes
        sum.outOfOrderBytesPruned += rhs.outOfOrderBytesPruned
        return sum
    }
}
