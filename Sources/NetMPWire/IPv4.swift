/// The IPv4 protocol field (and the pseudo-header's protocol): which transport a datagram carries.
public struct IPProtocol: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8

    @inlinable public init(rawValue: UInt8) {
        self.rawValue = rawValue
    }

    // Inlinable constants rather than stored statics, which cost a call from other modules.
    /// 1.
    @inlinable public static var icmp: IPProtocol { IPProtocol(rawValue: 1) }
    /// 6.
    @inlinable public static var tcp: IPProtocol { IPProtocol(rawValue: 6) }
    /// 17.
    @inlinable public static var udp: IPProtocol { IPProtocol(rawValue: 17) }
}

/// An IPv4 header (RFC 791). Options are validated and skipped on parse (their length is in
/// `headerLength`; `IPv4Options` reads them); the reserved flag bit is ignored.
public struct IPv4Header: Hashable, Sendable {
    /// Bytes of a header without options.
    public static let minimumLength = 20

    /// Differentiated Services code point, 6 bits.
    public var dscp: UInt8
    /// Explicit Congestion Notification, 2 bits (0 not-ECT, 1/2 ECT, 3 CE).
    public var ecn: UInt8
    /// Header plus payload, in bytes.
    public var totalLength: UInt16
    public var identification: UInt16
    /// DF: routers must not fragment; the sender wants an ICMP "fragmentation needed" instead.
    public var dontFragment: Bool
    /// MF: more fragments of this datagram follow.
    public var moreFragments: Bool
    /// Offset of this fragment in 8-byte units (13 bits).
    public var fragmentOffset: UInt16
    public var timeToLive: UInt8
    public var `protocol`: IPProtocol
    /// The checksum as read; `emit` computes its own and ignores this.
    public var checksum: UInt16
    public var source: IPv4Address
    public var destination: IPv4Address

    public init(
        dscp: UInt8 = 0, ecn: UInt8 = 0, totalLength: UInt16, identification: UInt16 = 0, dontFragment: Bool = true,
        moreFragments: Bool = false, fragmentOffset: UInt16 = 0, timeToLive: UInt8 = 64, protocol: IPProtocol,
        checksum: UInt16 = 0, source: IPv4Address, destination: IPv4Address
    ) {
        self.dscp = dscp
        self.ecn = ecn
        self.totalLength = totalLength
        self.identification = identification
        self.dontFragment = dontFragment
        self.moreFragments = moreFragments
        self.fragmentOffset = fragmentOffset
        self.timeToLive = timeToLive
        self.protocol = `protocol`
        self.checksum = checksum
        self.source = source
        self.destination = destination
    }

    /// The fragment offset in bytes.
    public var fragmentByteOffset: Int { Int(fragmentOffset) * 8 }

    /// True for any piece of a fragmented datagram (first, middle or last).
    public var isFragment: Bool { moreFragments || fragmentOffset != 0 }

    /// Parses a datagram at the start of `bytes`.
    ///
    /// Checks version 4, IHL >= 5, IHL*4 <= total length <= buffer length, and (unless
    /// `verifyChecksum` is false, for checksum-offloading devices) the header checksum. The payload
    /// range ends at the total length, so Ethernet padding is excluded.
    public static func parse(
        _ bytes: UnsafeRawBufferPointer, verifyChecksum: Bool = true
    ) -> Result<IPv4Packet, WireError> {
        Result { () throws(WireError) -> IPv4Packet in
            try parseHeader(bytes, verifyChecksum: verifyChecksum, allowTruncatedPayload: false)
        }
    }

    /// Parses a datagram held in an array.
    public static func parse(_ bytes: [UInt8], verifyChecksum: Bool = true) -> Result<IPv4Packet, WireError> {
        bytes.withUnsafeBytes { parse($0, verifyChecksum: verifyChecksum) }
    }

    /// The shared parser; `allowTruncatedPayload` serves ICMP error quotes, which hold only the
    /// header and the first 8 payload bytes of a longer datagram, and frames whose payload
    /// follows in other buffers (scatter-gather).
    package static func parseHeader(
        _ bytes: UnsafeRawBufferPointer, verifyChecksum: Bool, allowTruncatedPayload: Bool
    ) throws(WireError) -> IPv4Packet {
        guard bytes.count >= minimumLength else { throw .truncated }
        let versionAndLength = try bytes.networkUInt8(at: 0)
        guard versionAndLength >> 4 == 4 else { throw .badVersion }
        let headerLength = Int(versionAndLength & 0xF) * 4
        guard headerLength >= minimumLength else { throw .badHeaderLength }
        guard headerLength <= bytes.count else { throw .truncated }
        let totalLength = try bytes.networkUInt16(at: 2)
        guard Int(totalLength) >= headerLength else { throw .badLength }
        if !allowTruncatedPayload {
            guard Int(totalLength) <= bytes.count else { throw .truncated }
        }
        if verifyChecksum {
            guard InternetChecksum.verify(try bytes.networkSlice(0..<headerLength)) else { throw .badChecksum }
        }
        if headerLength > minimumLength {
            try IPv4Options.validate(try bytes.networkSlice(minimumLength..<headerLength))
        }
        let trafficClass = try bytes.networkUInt8(at: 1)
        let flagsAndOffset = try bytes.networkUInt16(at: 6)
        let header = IPv4Header(
            dscp: trafficClass >> 2,
            ecn: trafficClass & 0x3,
            totalLength: totalLength,
            identification: try bytes.networkUInt16(at: 4),
            dontFragment: flagsAndOffset & 0x4000 != 0,
            moreFragments: flagsAndOffset & 0x2000 != 0,
            fragmentOffset: flagsAndOffset & 0x1FFF,
            timeToLive: try bytes.networkUInt8(at: 8),
            protocol: IPProtocol(rawValue: try bytes.networkUInt8(at: 9)),
            checksum: try bytes.networkUInt16(at: 10),
            source: try IPv4Address.read(from: bytes, at: 12),
            destination: try IPv4Address.read(from: bytes, at: 16))
        let payloadEnd = Swift.min(Int(totalLength), bytes.count)
        return IPv4Packet(header: header, headerLength: headerLength, payloadRange: headerLength..<payloadEnd)
    }

    /// Writes the 20-byte header (no options) with a freshly computed checksum at the start of
    /// `buffer`; the caller places the payload after it. Returns the bytes written.
    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer) throws(WireError) -> Int {
        let length = IPv4Header.minimumLength
        guard buffer.count >= length else { throw .bufferTooSmall }
        guard dscp < 64, ecn < 4, fragmentOffset < 0x2000, Int(totalLength) >= length else { throw .badLength }
        guard let base = buffer.baseAddress else { throw .bufferTooSmall }
        // The five 32-bit words of the header, stored big-endian inside the 20 bytes checked
        // above; their sum folded to 16 bits is the sum of its 16-bit fields (2^16 ≡ 1 modulo
        // 0xFFFF), so the checksum needs no second pass over the bytes.
        let flags: UInt32 = (dontFragment ? 0x4000 : 0) | (moreFragments ? 0x2000 : 0)
        let versionAndLength: UInt32 = 0x45 << 24 | UInt32(dscp << 2 | ecn) << 16 | UInt32(totalLength)
        let fragment = UInt32(identification) << 16 | flags | UInt32(fragmentOffset)
        let ttlAndProtocol = UInt32(timeToLive) << 24 | UInt32(self.protocol.rawValue) << 16
        let sum =
            UInt64(versionAndLength) + UInt64(fragment) + UInt64(ttlAndProtocol) + UInt64(source.rawValue)
            + UInt64(destination.rawValue)
        let checksum = ~InternetChecksum.fold(sum)
        base.storeBytes(of: versionAndLength.bigEndian, toByteOffset: 0, as: UInt32.self)
        base.storeBytes(of: fragment.bigEndian, toByteOffset: 4, as: UInt32.self)
        base.storeBytes(of: (ttlAndProtocol | UInt32(checksum)).bigEndian, toByteOffset: 8, as: UInt32.self)
        base.storeBytes(of: source.rawValue.bigEndian, toByteOffset: 12, as: UInt32.self)
        base.storeBytes(of: destination.rawValue.bigEndian, toByteOffset: 16, as: UInt32.self)
        return length
    }

    /// The header as 20 bytes with its checksum (empty if a field is out of range, e.g. DSCP >= 64).
    public func bytes() -> [UInt8] {
        (try? emitToArray(capacity: IPv4Header.minimumLength) { (buffer) throws(WireError) in try emit(into: buffer) })
            ?? []
    }

    /// The pseudo-header sum for a transport segment of `length` bytes carried in this datagram.
    public func pseudoHeaderSum(length: Int) -> UInt16 {
        InternetChecksum.pseudoHeaderSum(
            source: source, destination: destination, protocol: self.protocol,
            length: UInt16(truncatingIfNeeded: length))
    }
}

/// A parsed IPv4 datagram: header fields, header length (options included) and payload range.
public typealias IPv4Packet = Parsed<IPv4Header>
