import NetMPWire

/// SYN cookies (D. J. Bernstein, with Linux's encoding): when a listen socket's incomplete queue is
/// full, the SYN-ACK's ISN carries what the listener would have remembered, so a SYN costs no
/// memory and the handshake's ACK rebuilds the connection.
///
/// ISN = H1(tuple) + SEG.SEQ + (minute << 24) + ((H2(tuple, minute) + MSS index) mod 2^24), with
/// H1 and H2 keyed SipHash. With timestamps the SYN-ACK's TSval carries in its low 6 bits the
/// peer's window scale (4 bits, 15 for none), SACK-permitted and ECN; the ACK echoes it back.
/// Without timestamps the connection goes without scaling and SACK, as on Linux.
public struct TCPSYNCookies: Sendable {
    public let key: TCPSecretKey
    /// The MSS values a cookie can carry (Linux's IPv4 table): the largest not above the peer's.
    public static let segmentSizes: [UInt16] = [536, 1300, 1440, 1460]
    /// Minutes after which a cookie is refused (Linux: MAX_SYNCOOKIE_AGE 2).
    public static let maximumAge: UInt32 = 2
    static let timestampBits: UInt32 = 6
    static let noWindowScale: UInt32 = 0xF
    static let sackBit: UInt32 = 1 << 4

    public init(key: TCPSecretKey) {
        self.key = key
    }

    /// What a valid cookie gives back of the SYN.
    public struct Decoded: Hashable, Sendable {
        public var maximumSegmentSize: UInt16
        public var windowScale: UInt8?
        public var sackPermitted: Bool
        public var timestamps: Bool

        public init(maximumSegmentSize: UInt16, windowScale: UInt8?, sackPermitted: Bool, timestamps: Bool) {
            self.maximumSegmentSize = maximumSegmentSize
            self.windowScale = windowScale
            self.sackPermitted = sackPermitted
            self.timestamps = timestamps
        }
    }

    private func hash(_ connection: TCPConnectionKey, minute: UInt32?) -> UInt32 {
        var hasher = SipHasher(key: key)
        hasher.append(UInt8(minute == nil ? 0xC1 : 0xC2))
        connection.localAddress.hash(into: &hasher)
        hasher.append(connection.localPort)
        connection.remoteAddress.hash(into: &hasher)
        hasher.append(connection.remotePort)
        if let minute { hasher.append(minute) }
        return UInt32(truncatingIfNeeded: hasher.finalize())
    }

    static func minute(_ now: Int64) -> UInt32 { UInt32(truncatingIfNeeded: now / 60_000_000_000) }

    /// The index of the largest table MSS not above the peer's (536 when it sent none).
    static func segmentSizeIndex(_ peerMSS: UInt16?) -> UInt32 {
        let wanted = peerMSS ?? 536
        var index: UInt32 = 0
        for (candidate, size) in segmentSizes.enumerated() where size <= wanted {
            index = UInt32(candidate)
        }
        return index
    }

    /// The ISN of a cookie SYN-ACK answering `syn` on `connection` (seen from this end).
    public func sequenceNumber(answering syn: TCPHeader, on connection: TCPConnectionKey, now: Int64) -> SequenceNumber
    {
        let minute = TCPSYNCookies.minute(now)
        let data = TCPSYNCookies.segmentSizeIndex(syn.options.maximumSegmentSize)
        let cookie =
            hash(connection, minute: nil) &+ syn.sequenceNumber &+ (minute << 24)
            &+ ((hash(connection, minute: minute) &+ data) & 0xFF_FFFF)
        return SequenceNumber(cookie)
    }

    /// The TSval for a cookie SYN-ACK: `tick` with its low 6 bits replaced by the options, moved
    /// down a step if that would put it ahead of `tick` (later TSvals must not go backwards).
    public static func timestampValue(tick: UInt32, peerWindowScale: UInt8?, sackPermitted: Bool) -> UInt32 {
        var options = peerWindowScale.map { UInt32(Swift.min($0, 14)) } ?? noWindowScale
        if sackPermitted { options |= sackBit }
        let mask: UInt32 = (1 << timestampBits) - 1
        var value = (tick & ~mask) | options
        if options > tick & mask { value = value &- (1 << timestampBits) }
        return value
    }

    /// What `ack` (the handshake's third segment, from the peer) proves of the SYN it answers, or
    /// nil when its cookie is forged or more than two minutes old.
    public func validate(_ ack: TCPHeader, on connection: TCPConnectionKey, now: Int64) -> Decoded? {
        guard ack.flags.contains(.ack), !ack.flags.contains(.syn), !ack.flags.contains(.rst) else { return nil }
        let cookie = ack.acknowledgmentNumber &- 1
        let peerSequence = ack.sequenceNumber &- 1
        let rest = cookie &- hash(connection, minute: nil) &- peerSequence
        let minute = TCPSYNCookies.minute(now)
        let age = (minute &- (rest >> 24)) & 0xFF
        guard age <= TCPSYNCookies.maximumAge else { return nil }
        let issued = minute &- age
        let data = (rest &- hash(connection, minute: issued)) & 0xFF_FFFF
        guard data < UInt32(TCPSYNCookies.segmentSizes.count) else { return nil }
        var decoded = Decoded(
            maximumSegmentSize: TCPSYNCookies.segmentSizes[Int(data)], windowScale: nil, sackPermitted: false,
            timestamps: false)
        if let timestamps = ack.options.timestamps {
            let bits = timestamps.echoReply & ((1 << TCPSYNCookies.timestampBits) - 1)
            let scale = bits & 0xF
            if scale != TCPSYNCookies.noWindowScale {
                guard scale <= 14 else { return nil }
                decoded.windowScale = UInt8(scale)
            }
            decoded.sackPermitted = bits & TCPSYNCookies.sackBit != 0
            decoded.timestamps = true
        }
        return decoded
    }
}

extension TCPConnection {
    /// The SYN a listener would have kept: what the cookie carries, for `acceptingSYN`. Without
    /// timestamps the options cannot come back, so none are offered (as Linux does).
    static func cookieSYN(_ syn: TCPHeader, stripped: Bool) -> TCPHeader {
        var rebuilt = syn
        var options = TCPOptions(
            maximumSegmentSize: TCPSYNCookies.segmentSizes[
                Int(TCPSYNCookies.segmentSizeIndex(syn.options.maximumSegmentSize))])
        if !stripped {
            options.windowScale = syn.options.windowScale
            options.sackPermitted = syn.options.sackPermitted
            options.timestamps = syn.options.timestamps
        }
        rebuilt.options = options
        return rebuilt
    }

    /// The cookie SYN-ACK for `syn` in `actions.segments` (last), from a connection value that is
    /// then thrown away: the listener keeps nothing.
    public static func cookieSYNACK(
        answering syn: TCPHeader, cookie: SequenceNumber, configuration: TCPConfiguration, routeMTU: Int, now: Int64,
        into actions: inout TCPActions<Payload>
    ) {
        let stripped = syn.options.timestamps == nil || !configuration.timestamps
        let answered = cookieSYN(syn, stripped: stripped)
        let connection = TCPConnection(
            acceptingSYN: answered, configuration: configuration, initialSequenceNumber: cookie, routeMTU: routeMTU,
            now: now, into: &actions)
        guard let last = actions.segments.indices.last, connection.timestampsEnabled else { return }
        let value = TCPSYNCookies.timestampValue(
            tick: connection.timestampTick(now), peerWindowScale: answered.options.windowScale,
            sackPermitted: connection.sackPermitted)
        actions.segments[last].header.options.timestamps?.value = value
    }

    /// A listen socket's child rebuilt from the handshake's ACK whose cookie `decoded` proved, in
    /// SYN_RECEIVED; the caller then passes it the ACK itself.
    public init(
        cookieACK ack: TCPHeader, decoded: TCPSYNCookies.Decoded, configuration: TCPConfiguration, routeMTU: Int,
        now: Int64, into actions: inout TCPActions<Payload>
    ) {
        var options = TCPOptions(maximumSegmentSize: decoded.maximumSegmentSize)
        options.windowScale = decoded.windowScale
        options.sackPermitted = decoded.sackPermitted
        if decoded.timestamps, let timestamps = ack.options.timestamps {
            options.timestamps = TCPTimestamps(value: timestamps.value, echoReply: 0)
        }
        let syn = TCPHeader(
            sourcePort: ack.sourcePort, destinationPort: ack.destinationPort, sequenceNumber: ack.sequenceNumber &- 1,
            flags: .syn, window: ack.window, options: options)
        let before = actions.segments.count
        self.init(
            acceptingSYN: syn, configuration: configuration,
            initialSequenceNumber: SequenceNumber(ack.acknowledgmentNumber &- 1), routeMTU: routeMTU, now: now,
            into: &actions)
        // The peer has its SYN-ACK already.
        actions.segments.removeSubrange(before...)
        if decoded.timestamps, let echo = ack.options.timestamps?.echoReply {
            // The SYN-ACK left when its TSval was current: time the handshake from then.
            let ticks = Int64(Int32(bitPattern: timestampTick(now) &- echo))
            timedSince = now &- Swift.max(0, ticks) &* 1_000_000
        } else {
            // No sample: data starts from the 3 s fallback (RFC 6298 5.7).
            consecutiveRetransmissions = 1
        }
    }
}
