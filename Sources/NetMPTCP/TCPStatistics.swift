import NetMPRuntime

/// Counters of one thread (summed by the stack).
package struct TCPStatistics: Sendable {
    package var segmentsSent = 0
    package var segmentsReceived = 0
    package var malformed = 0
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
        return sum
    }
}
