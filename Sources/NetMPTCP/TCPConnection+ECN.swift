import NetMPWire

/// Explicit Congestion Notification for one connection (RFC 3168 section 6.1).
public struct TCPExplicitCongestion: Hashable, Sendable {
    /// Both ends agreed on the handshake: data goes out ECT(0) and marks are echoed.
    public internal(set) var negotiated = false
    /// Receiver: a CE mark arrived and the sender has not yet answered with CWR; every ACK carries
    /// ECE meanwhile.
    public internal(set) var echoing = false
    /// Sender: cwnd was reduced for an ECE; the next new data segment carries CWR.
    public internal(set) var congestionWindowReducedPending = false
    /// Sender: SND.MAX at the last reduction; ECEs for data sent before it are the same event.
    public internal(set) var reductionEnd = SequenceNumber(0)
    /// Reductions made for ECE, and CE marks received.
    public internal(set) var reductions = 0
    public internal(set) var marksReceived = 0

    public init() {}

    /// The IP header's ECN field: ECT(0) on our data, CE when a router marked it (RFC 3168 5).
    public static let ect0Codepoint: UInt8 = 0b10
    public static let congestionExperiencedCodepoint: UInt8 = 0b11

    /// An ECN-setup SYN: ECE and CWR both set (section 6.1.1).
    static func isSetupSYN(_ flags: TCPFlags) -> Bool { flags.contains(.ece) && flags.contains(.cwr) }
    /// An ECN-setup SYN-ACK: ECE without CWR.
    static func isSetupSYNACK(_ flags: TCPFlags) -> Bool { flags.contains(.ece) && !flags.contains(.cwr) }
}

extension TCPConnection {
    /// A segment arrived in an IP packet whose ECN field was `congestionExperienced` (CE) or not.
    /// CWR from the sender ends the echo; a CE mark (re)starts it.
    public mutating func receive(
        _ header: TCPHeader, payload: Payload, congestionExperienced: Bool, now: Int64,
        into actions: inout TCPActions<Payload>
    ) {
        if ecn.negotiated, state.isSynchronized, !header.flags.contains(.syn) {
            if header.flags.contains(.cwr) {
                ecn.echoing = false
            }
            if congestionExperienced {
                ecn.echoing = true
                ecn.marksReceived += 1
            }
        }
        receive(header, payload: payload, now: now, into: &actions)
    }

    /// The flags of our SYN or SYN-ACK: an ECN-setup SYN when configured, the setup SYN-ACK when agreed.
    func synFlags(active: Bool) -> TCPFlags {
        if active {
            return configuration.explicitCongestionNotification ? [.syn, .ece, .cwr] : .syn
        }
        return ecn.negotiated ? [.syn, .ack, .ece] : [.syn, .ack]
    }

    /// Adds ECE (while echoing) and CWR (first new data after a reduction) to a non-SYN segment at
    /// `sequence`; true when it goes ECT(0): new data inside the peer's window, never a
    /// retransmission, a bare ACK or a window probe (section 6.1.5).
    @inline(__always)
    mutating func markECN(_ flags: inout TCPFlags, sequence: SequenceNumber, payloadLength: Int) -> Bool {
        guard ecn.negotiated else { return false }
        if ecn.echoing {
            flags.insert(.ece)
        }
        guard payloadLength > 0, !(sequence < sendMax), sequence < sendUnacknowledged + sendWindow else {
            return false
        }
        if ecn.congestionWindowReducedPending {
            ecn.congestionWindowReducedPending = false
            flags.insert(.cwr)
        }
        return true
    }

    /// An ACK carried ECE: reduce once per window of data, unless loss recovery already did.
    mutating func congestionEchoed(acknowledgment: SequenceNumber, now: Int64) {
        guard ecn.negotiated, !inFastRecovery, ecn.reductionEnd < acknowledgment else { return }
        congestionControl.congestionExperienced(
            flightSize: flightSize, maximumSegmentSize: maximumSegmentSize, now: now)
        ecn.reductionEnd = sendMax
        ecn.congestionWindowReducedPending = true
        ecn.reductions += 1
    }
}
