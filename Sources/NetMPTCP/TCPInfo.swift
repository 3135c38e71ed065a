/// A snapshot of one connection, like Linux's TCP_INFO. Times are nanoseconds. The connection
/// fills what it knows; the traffic counters (segments and bytes) are the integration's, which
/// sees what actually went on the wire.
public struct TCPInfo: Hashable, Sendable {
    public var state: TCPState = .closed
    /// Smoothed RTT and its variance (RFC 6298); 0 before the first sample.
    public var smoothedRTT: Int64 = 0
    public var rttVariance: Int64 = 0
    /// The retransmission timeout now, backoff included.
    public var retransmissionTimeout: Int64 = 0
    public var congestionWindow = 0
    public var slowStartThreshold = 0
    /// Bytes sent and not acknowledged (SYN and FIN count one each).
    public var bytesInFlight = 0
    /// Bytes of data per segment sent, and our own MSS.
    public var sendMaximumSegmentSize = 0
    public var receiveMaximumSegmentSize = 0
    /// The peer's window, and the one we last advertised.
    public var sendWindow = 0
    public var receiveWindow = 0
    /// Bytes received and not yet read by the application.
    public var unreadBytes = 0
    /// Consecutive timeouts without progress (Linux tcpi_retransmits).
    public var consecutiveRetransmissions = 0
    /// Segments sent again over the connection's life (tcpi_total_retrans).
    public var retransmittedSegments = 0
    public var retransmissionTimeouts = 0
    public var fastRetransmits = 0
    /// Segments now presumed lost: after a timeout everything in flight, in fast recovery the
    /// segment being repaired (Linux tcpi_lost for a connection without SACK).
    public var lostSegments = 0
    /// Duplicate ACKs that signal a loss (tcpi_reordering, Linux's dupthresh).
    public var reordering = 0
    public var inFastRecovery = false
    /// Unanswered keep-alive probes (tcpi_probes).
    public var keepAliveProbes = 0
    public var sendScale: UInt8 = 0
    public var receiveScale: UInt8 = 0
    public var timestamps = false
    public var sackPermitted = false
    /// Data bytes the peer acknowledged and data bytes received in order (tcpi_bytes_acked and
    /// tcpi_bytes_received), filled by the integration.
    public var bytesAcknowledged = 0
    public var bytesReceived = 0
    /// Segments received for the connection and sent by it (tcpi_segs_in, tcpi_segs_out), filled
    /// by the integration.
    public var segmentsIn = 0
    public var segmentsOut = 0
    /// Bytes per second the peer acknowledged over the last measured round trip (or longer, at
    /// least one smoothed RTT): tcpi_delivery_rate's meaning, from cumulative ACKs; 0 before the
    /// first such interval ends.
    public var deliveryRate = 0
    /// Loss recovery with SACK: recoveries the scoreboard drove, segments RACK declared lost, tail
    /// loss probes, and recoveries undone as spurious by D-SACKs.
    public var sackRecoveries = 0
    public var rackLostSegments = 0
    public var tailLossProbes = 0
    public var spuriousRecoveries = 0
    /// Bytes per second the congestion control paces at (tcpi_pacing_rate; 0: not paced).
    public var pacingRate = 0
    /// BBR's model (Linux's tcp_bbr_info), when the connection uses BBR: bottleneck bandwidth in
    /// bytes per second, minimum RTT, and its mode.
    public var bbrBandwidth = 0
    public var bbrMinimumRTT: Int64 = 0
    public var bbrMode: BBR.Mode?

    public init() {}
}

extension TCPConnection {
    /// The connection's part of a `TCPInfo` snapshot (the traffic counters left zero).
    public var info: TCPInfo {
        var info = TCPInfo()
        info.state = state
        info.smoothedRTT = retransmissionTimeout.smoothedRTT ?? 0
        info.rttVariance = retransmissionTimeout.rttVariance
        info.retransmissionTimeout = retransmissionTimeout.timeout
        info.congestionWindow = congestionControl.congestionWindow
        info.slowStartThreshold = congestionControl.slowStartThreshold
        info.bytesInFlight = flightSize
        info.sendMaximumSegmentSize = maximumSegmentSize
        info.receiveMaximumSegmentSize = localMaximumSegmentSize
        info.sendWindow = sendWindow
        info.receiveWindow = Swift.max(0, receiveAdvertised - receiveNext)
        info.unreadBytes = unreadCount
        info.consecutiveRetransmissions = consecutiveRetransmissions
        info.retransmittedSegments = retransmittedSegments
        info.retransmissionTimeouts = timeoutCount
        info.fastRetransmits = fastRetransmitCount
        let segment = Swift.max(1, maximumSegmentSize)
        if consecutiveRetransmissions > 0, state.isSynchronized {
            info.lostSegments = (flightSize + segment - 1) / segment
        } else if sackPermitted, scoreboard.lostBytes > 0 {
            info.lostSegments = (scoreboard.lostBytes + segment - 1) / segment
        } else if inFastRecovery {
            info.lostSegments = 1
        }
        info.reordering = TCPConnection.duplicateACKThreshold
        info.inFastRecovery = inFastRecovery
        info.keepAliveProbes = keepAliveProbesSent
        info.sendScale = sendScale
        info.receiveScale = receiveScale
        info.timestamps = timestampsEnabled
        info.sackPermitted = sackPermitted
        info.deliveryRate = deliveryRate
        info.sackRecoveries = sackRecoveryCount
        info.rackLostSegments = rackLostSegments
        info.tailLossProbes = tailLossProbeCount
        info.spuriousRecoveries = spuriousRecoveryCount
        info.pacingRate = congestionControl.pacingRate ?? 0
        if let bbr = congestionControl as? BBR {
            info.bbrBandwidth = bbr.bottleneckBandwidth
            info.bbrMinimumRTT = bbr.minimumRTT ?? 0
            info.bbrMode = bbr.mode
        }
        return info
    }

    /// Duplicate ACKs that start fast retransmit (RFC 5681 3.2).
    static var duplicateACKThreshold: Int { 3 }
}
