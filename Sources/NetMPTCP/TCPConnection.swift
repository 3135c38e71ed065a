import NetMPWire

/// One TCP connection's control block as a value (RFC 9293): events go in with the current time,
/// actions come out in a caller-owned `TCPActions`; no I/O, clock or allocation of its own.
///
/// The send queue is the integration's: `send(count:)` says how many bytes were appended, and
/// segments name ranges of it. Received bytes are `Payload` values passed through without a copy.
/// After each event the integration re-arms its one callout at `nextDeadline` (or cancels it when
/// nil) and calls `timerFired` when it passes. SO_LINGER 0 is `abort`.
public struct TCPConnection<Payload: TCPPayload> {
    /// The settings, in a box shared with connections that have equal ones.
    var sharedConfiguration: TCPSharedConfiguration
    public internal(set) var configuration: TCPConfiguration {
        _read { yield sharedConfiguration.value }
        set { sharedConfiguration = TCPSharedConfiguration(newValue) }
    }
    public let localPort: UInt16
    public let remotePort: UInt16
    public internal(set) var state: TCPState = .closed

    // MARK: Send sequence space (RFC 9293 3.3.1)

    public let initialSendSequence: SequenceNumber
    /// SND.UNA.
    public internal(set) var sendUnacknowledged: SequenceNumber
    /// SND.NXT: the next sequence number to send (moved back to SND.UNA after a timeout).
    public internal(set) var sendNext: SequenceNumber
    /// One past the highest sequence number ever sent.
    public internal(set) var sendMax: SequenceNumber
    /// SND.WND in bytes (scaled).
    public internal(set) var sendWindow = 0
    /// The largest window the peer offered (sender silly-window avoidance).
    var maximumSendWindow = 0
    var windowUpdateSequence = SequenceNumber(0)
    var windowUpdateAcknowledgment = SequenceNumber(0)
    /// The sequence number of the send queue's first byte.
    public internal(set) var sendQueueStart: SequenceNumber
    /// Bytes in the send queue, sent or not, not yet acknowledged.
    public internal(set) var sendQueueCount = 0
    /// The user shut down writing: a FIN follows the queued data.
    public internal(set) var finQueued = false
    /// The user closed the socket (not only shut down writing): FIN_WAIT_2 then times out.
    var closeRequested = false
    /// A listen socket's child rather than an active opener.
    public internal(set) var passiveOpen = false
    /// An ACK is owed now (kept beside the other flags, where it takes no padding).
    var ackNow = false

    // MARK: Receive sequence space

    public internal(set) var initialReceiveSequence = SequenceNumber(0)
    /// RCV.NXT.
    public internal(set) var receiveNext = SequenceNumber(0)
    /// The right edge of the window last advertised; never moved left.
    var receiveAdvertised = SequenceNumber(0)
    /// Bytes delivered to the receive buffer that the application has not read.
    public internal(set) var unreadCount = 0
    var outOfOrder = OutOfOrderQueue<Payload>()

    // MARK: Options

    /// Our MSS option: the route MTU less the IPv4 and TCP headers.
    public let localMaximumSegmentSize: Int
    /// Effective bytes of data per segment we send (peer's MSS, our MTU, less timestamp option bytes).
    public internal(set) var maximumSegmentSize: Int
    public internal(set) var sendScale: UInt8 = 0
    public internal(set) var receiveScale: UInt8 = 0
    public internal(set) var timestampsEnabled = false
    /// Both ends offered SACK-permitted: ACKs carry SACK blocks, and losses are found and repaired
    /// from the scoreboard (RACK-TLP or RFC 6675) instead of by NewReno's duplicate ACKs.
    public internal(set) var sackPermitted = false
    var peerOfferedWindowScale = false
    // Flags of other sections kept here, beside the others, where they take no padding.
    public internal(set) var inFastRecovery = false
    /// Whether the outstanding tail loss probe (`tailLossProbeEnd`) was a retransmission.
    var tailLossProbeRetransmitted = false
    /// This fast recovery's one rescue retransmission (RFC 6675 NextSeg rule 4) has been sent.
    var rescueRetransmitted = false
    /// TS.Recent (RFC 7323).
    var recentTimestamp: UInt32 = 0
    var lastACKSent = SequenceNumber(0)
    /// Added to our millisecond clock so TSval does not reveal uptime.
    var timestampOffset: UInt32
    /// RFC 6582's "recover": the highest sequence sent when recovery began (kept beside the
    /// other 32-bit field).
    var recoveryPoint: SequenceNumber

    // MARK: Retransmission and congestion

    public internal(set) var retransmissionTimeout: RetransmissionTimeout
    /// Consecutive timeouts without progress.
    public internal(set) var consecutiveRetransmissions = 0
    /// The segment being timed by Karn's rule: its start and when it was first sent.
    var timedSequence: SequenceNumber?
    var timedSince: Int64 = 0
    public internal(set) var congestionControl: any TCPCongestionControl {
        // Every change (an ACK, a loss, a timeout, an undo, a switch of algorithm) goes through
        // here, in place: the copy below never lags the controller.
        didSet { congestionWindow = congestionControl.congestionWindow }
    }
    /// `congestionControl.congestionWindow` as of the controller's last change. The send path
    /// reads the window several times a segment; through the existential each read was a call.
    public private(set) var congestionWindow: Int
    /// The delivery-rate estimator and pacer of a rate-based controller (nil otherwise).
    var rateBasedSending: RateBasedSendingStorage?
    /// Whether the congestion window is in use, so that it may grow (RFC 7661).
    public internal(set) var windowValidation: CongestionWindowValidation
    /// ECN state (RFC 3168): negotiated on the handshake; see TCPConnection+ECN.swift.
    public internal(set) var ecn = TCPExplicitCongestion()
    public internal(set) var duplicateACKs = 0
    var persistBackoff = 0

    // MARK: SACK loss recovery

    /// What the peer holds out of order and what is lost (SACK only).
    var scoreboard = SACKScoreboard()
    var rack = RACK()
    /// The blocks our ACKs report (SACK only).
    var sackReporter = SACKReporter()
    /// Bytes sent by limited transmit (RFC 3042) since the cumulative ACK last moved.
    var limitedTransmitBytes = 0
    /// What each ACK of a fast recovery lets go (RFC 6937 PRR-SSRB).
    var proportionalRateReduction = ProportionalRateReduction()
    /// The outstanding tail loss probe: the SND.NXT after it (`tailLossProbeRetransmitted` says
    /// whether it was a retransmission).
    var tailLossProbeEnd: SequenceNumber?
    /// The congestion state before the last fast recovery, restored when D-SACKs show every
    /// retransmission of it was spurious (RFC 2883 with an Eifel-like undo).
    var undo: RecoveryUndo?

    // MARK: ACK generation

    var quickACKsLeft: Int
    var bytesSinceACK = 0

    // MARK: Timers and counters

    var deadlines = TimerDeadlines()
    /// Segments sent again (timeouts, fast and partial-ACK retransmissions, not probes).
    public internal(set) var retransmittedSegments = 0
    public internal(set) var timeoutCount = 0
    public internal(set) var fastRetransmitCount = 0
    /// Bytes per second acknowledged over the last interval of at least one smoothed RTT, and
    /// where the current interval began (time, SND.UNA): `TCPInfo.deliveryRate`.
    public internal(set) var deliveryRate = 0
    var deliveryIntervalStart: (time: Int64, acknowledged: SequenceNumber)?
    /// The last ICMP error about a segment in flight on a synchronized connection: reported in
    /// place of `timedOut` if retransmissions, keep-alive probes or the user timeout run out
    /// (Linux's sk_err_soft).
    public internal(set) var softError: TCPError?

    // MARK: Defences (RFC 5961, PAWS, keep-alive, user timeout)

    /// When TS.Recent was last set: after 24 days idle it is no longer trusted (RFC 7323 5.5).
    var recentTimestampTime: Int64 = 0
    /// When the last acceptable segment arrived: keep-alive idle time counts from it.
    var lastReceiveTime: Int64 = 0
    /// When keep-alive was switched on for a live connection (idle time counts from it too).
    var keepAliveStartTime: Int64 = 0
    /// Keep-alive probes sent since the peer last answered, and when the last one went.
    public internal(set) var keepAliveProbesSent = 0
    var lastKeepAliveProbeTime: Int64 = 0
    /// When SND.UNA last advanced or data was sent from idle: the user timeout counts from it.
    var progressTime: Int64 = 0
    /// When an unacceptable segment without data was last answered with an ACK.
    var lastOutOfWindowACKTime = Int64.min  // Int64.min: never

    /// Fast recoveries driven by the SACK scoreboard (a subset of `fastRetransmitCount`).
    public internal(set) var sackRecoveryCount = 0
    /// Segments RACK marked lost (RFC 8985).
    public internal(set) var rackLostSegments = 0
    /// Tail loss probes sent (RFC 8985 7).
    public internal(set) var tailLossProbeCount = 0
    /// Recoveries whose every retransmission D-SACKs showed spurious: undone, the window before them
    /// restored unless it has grown past it since.
    public internal(set) var spuriousRecoveryCount = 0

    /// A connection in CLOSED, ready for `connect` (active open). `routeMTU` is the MTU of the route
    /// to the peer; the MSS we announce is that less 40 bytes of IPv4 and TCP headers.
    public init(
        configuration: TCPConfiguration = TCPConfiguration(), localPort: UInt16, remotePort: UInt16,
        initialSequenceNumber: SequenceNumber, routeMTU: Int = 1500,
        congestionControl: (any TCPCongestionControl)? = nil
    ) {
        sharedConfiguration = TCPSharedConfiguration(configuration)
        self.localPort = localPort
        self.remotePort = remotePort
        initialSendSequence = initialSequenceNumber
        sendUnacknowledged = initialSequenceNumber
        sendNext = initialSequenceNumber
        sendMax = initialSequenceNumber
        sendQueueStart = initialSequenceNumber + 1
        recoveryPoint = initialSequenceNumber
        localMaximumSegmentSize = Swift.max(TCPConnection.minimumMSS, Swift.min(routeMTU - 40, 65495))
        maximumSegmentSize = TCPConnection.defaultPeerMSS
        timestampOffset = initialSequenceNumber.rawValue &* 2_654_435_761
        retransmissionTimeout = RetransmissionTimeout(
            initial: configuration.initialRTO, minimum: configuration.minimumRTO, maximum: configuration.maximumRTO)
        self.congestionControl =
            congestionControl
            ?? configuration.congestionControl.make(
                maximumSegmentSize: TCPConnection.defaultPeerMSS, hyStart: configuration.hyStart)
        congestionWindow = self.congestionControl.congestionWindow
        windowValidation = CongestionWindowValidation(start: initialSequenceNumber)
        if self.congestionControl.isRateBased {
            rateBasedSending = RateBasedSendingStorage()
        }
        ecn.reductionEnd = initialSequenceNumber
        quickACKsLeft = configuration.quickACKSegments
        var scale: UInt8 = 0
        // With auto-tuning the window may grow to the limit: the scale is chosen for that.
        let largestWindow =
            configuration.bufferAutoTuning
            ? Swift.max(configuration.receiveBufferSize, configuration.maximumReceiveBufferSize)
            : configuration.receiveBufferSize
        while scale < 14, largestWindow >> Int(scale) > 65535 {
            scale += 1
        }
        receiveScale = configuration.windowScaling ? scale : 0
    }

    /// The MSS assumed when the peer sends none (RFC 9293 3.7.1, IPv4).
    static var defaultPeerMSS: Int { 536 }
    /// The smallest MSS we use whatever the peer says (Linux's tcp_min_snd_mss).
    static var minimumMSS: Int { 48 }

    // MARK: Timers

    public func deadline(of timer: TCPTimer) -> Int64? {
        switch timer {
        case .keepAlive: return keepAliveDeadline
        case .userTimeout: return userTimeoutDeadline
        case .pacing: return rateBasedSending?.pacer.deadline
        default: return deadlines[timer]
        }
    }

    /// The earliest armed timer: the integration's one callout for this connection.
    public var nextDeadline: Int64? {
        // The stored timers' minimum in straight-line compares (the loop over `allCases` it
        // replaces walked an array per event), then the three derived ones.
        var earliest = deadlines.earliest
        if let keepAlive = keepAliveDeadline, earliest.map({ keepAlive < $0 }) ?? true { earliest = keepAlive }
        if let userTimeout = userTimeoutDeadline, earliest.map({ userTimeout < $0 }) ?? true {
            earliest = userTimeout
        }
        if let pacing = rateBasedSending?.pacer.deadline, earliest.map({ pacing < $0 }) ?? true { earliest = pacing }
        // Debug builds check that no timer is left out (a new one must be added above).
        assert(earliest == TCPTimer.allCases.compactMap { deadline(of: $0) }.min(), "a timer missing in nextDeadline")
        return earliest
    }

    mutating func arm(_ timer: TCPTimer, at deadline: Int64) { deadlines[timer] = deadline }
    mutating func cancel(_ timer: TCPTimer) {
        if timer == .pacing {
            updateRateBasedSending { $0.pacer.timerDone() }
        } else {
            deadlines[timer] = nil
        }
    }
    func isArmed(_ timer: TCPTimer) -> Bool { deadlines[timer] != nil }

    // MARK: Derived values

    /// Sequence number just past the queued data (where the FIN goes).
    var sendQueueEnd: SequenceNumber { sendQueueStart + sendQueueCount }
    /// Our FIN was sent and acknowledged.
    var finAcknowledged: Bool { finQueued && sendUnacknowledged == sendQueueEnd + 1 }
    /// Bytes sent and not acknowledged (SYN and FIN included).
    public var flightSize: Int { Swift.max(0, sendMax - sendUnacknowledged) }
    /// The compact record a TIME_WAIT connection can be replaced by.
    public func timeWaitRecord() -> TCPTimeWait? {
        guard state == .timeWait, let deadline = deadline(of: .timeWait) else { return nil }
        return TCPTimeWait(
            receiveNext: receiveNext, sendNext: sendNext,
            recentTimestamp: timestampsEnabled ? recentTimestamp : nil, deadline: deadline)
    }

    func timestampTick(_ now: Int64) -> UInt32 {
        UInt32(truncatingIfNeeded: now / 1_000_000) &+ timestampOffset
    }

    // MARK: State changes

    mutating func becomeClosed(_ actions: inout TCPActions<Payload>, error: TCPError? = nil) {
        state = .closed
        for timer in TCPTimer.allCases {
            cancel(timer)
        }
        outOfOrder.removeAll()
        sackReporter.removeAll()
        scoreboard.removeAll()
        actions.closed = true
        if let error {
            actions.error = error
        }
    }

    mutating func enterTimeWait(now: Int64, _ actions: inout TCPActions<Payload>) {
        state = .timeWait
        for timer in TCPTimer.allCases {
            cancel(timer)
        }
        arm(.timeWait, at: now &+ 2 &* configuration.maximumSegmentLifetime)
        actions.enteredTimeWait = true
    }
}

extension TCPConnection: Sendable where Payload: Sendable {}
