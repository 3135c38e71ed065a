/// The TCP control bits (RFC 793, RFC 3168 for ECE/CWR).
///
/// The flags are inlinable constants, not stored statics: every segment tests several, and a
/// stored static read from another module is a call to its addressor (and a once-check) each time.
public struct TCPFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8

    @inlinable public init(rawValue: UInt8) {
        self.rawValue = rawValue
    }

    @inlinable public static var fin: TCPFlags { TCPFlags(rawValue: 0x01) }
    @inlinable public static var syn: TCPFlags { TCPFlags(rawValue: 0x02) }
    @inlinable public static var rst: TCPFlags { TCPFlags(rawValue: 0x04) }
    @inlinable public static var psh: TCPFlags { TCPFlags(rawValue: 0x08) }
    @inlinable public static var ack: TCPFlags { TCPFlags(rawValue: 0x10) }
    @inlinable public static var urg: TCPFlags { TCPFlags(rawValue: 0x20) }
    @inlinable public static var ece: TCPFlags { TCPFlags(rawValue: 0x40) }
    @inlinable public static var cwr: TCPFlags { TCPFlags(rawValue: 0x80) }
}

/// A TCP header with its options (RFC 793/9293). The reserved bits (and the historic NS bit) are
/// ignored on parse and written as zero.
public struct TCPHeader: Hashable, Sendable {
    /// Bytes of a header without options.
    public static let minimumLength = 20

    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var sequenceNumber: UInt32
    public var acknowledgmentNumber: UInt32
    public var flags: TCPFlags
    /// The advertised window, unscaled as on the wire.
    public var window: UInt16
    /// The checksum as read; `emit` computes its own and ignores this.
    public var checksum: UInt16
    public var urgentPointer: UInt16
    public var options: TCPOptions

    public init(
        sourcePort: UInt16, destinationPort: UInt16, sequenceNumber: UInt32, acknowledgmentNumber: UInt32 = 0,
        flags: TCPFlags, window: UInt16, checksum: UInt16 = 0, urgentPointer: UInt16 = 0,
        options: TCPOptions = TCPOptions()
    ) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.sequenceNumber = sequenceNumber
        self.acknowledgmentNumber = acknowledgmentNumber
        self.flags = flags
        self.window = window
        self.checksum = checksum
        self.urgentPointer = urgentPointer
        self.options = options
    }

    /// The header length `emit` writes: 20 bytes plus the encoded options.
    /// (Inlinable: the sender sizes each segment's chunk with it.)
    @inlinable public var encodedLength: Int { TCPHeader.minimumLength + options.encodedLength }

    /// Parses a segment that fills `bytes` (the IPv4 payload) sent from `source` to `destination`.
    ///
    /// The data offset must be at least 5 and inside the buffer and the checksum (with the
    /// pseudo-header) valid unless `verifyChecksum` is false. A malformed option only ends option
    /// parsing (see `TCPOptions.parse`); unknown options' ranges are offsets into `bytes`.
    public static func parse(
        _ bytes: UnsafeRawBufferPointer, source: IPv4Address, destination: IPv4Address, verifyChecksum: Bool = true
    ) -> Result<TCPPacket, WireError> {
        Result { () throws(WireError) -> TCPPacket in
            try parseSegment(bytes, source: source, destination: destination, verifyChecksum: verifyChecksum)
        }
    }

    /// As `parse`, throwing: the input path's form (a `Result` of this large value cost two more
    /// copies of it a segment).
    @inlinable
    public static func parseSegment(
        _ bytes: UnsafeRawBufferPointer, source: IPv4Address, destination: IPv4Address, verifyChecksum: Bool = true
    ) throws(WireError) -> TCPPacket {
        guard bytes.count >= minimumLength else { throw .truncated }
        let dataOffsetAndReserved = try bytes.networkUInt8(at: 12)
        let headerLength = Int(dataOffsetAndReserved >> 4) * 4
        guard headerLength >= minimumLength else { throw .badHeaderLength }
        guard headerLength <= bytes.count else { throw .truncated }
        // Segments come from IPv4 datagrams, whose length fits in 16 bits.
        guard bytes.count <= Int(UInt16.max) else { throw .badLength }
        if verifyChecksum {
            let pseudoHeader = InternetChecksum.pseudoHeaderSum(
                source: source, destination: destination, protocol: .tcp, length: UInt16(bytes.count))
            guard InternetChecksum.verify(bytes, initial: pseudoHeader) else { throw .badChecksum }
        }
        // Options as nearly every segment of a connection carries them (NOP, NOP, timestamps) are
        // read here, without the general parser's call and its copy of the whole set back.
        let options: TCPOptions
        if headerLength == minimumLength {
            options = TCPOptions()
        } else if headerLength == minimumLength + 12, try bytes.networkUInt32(at: minimumLength) == 0x0101_080A {
            options = TCPOptions(
                timestamps: TCPTimestamps(
                    value: try bytes.networkUInt32(at: minimumLength + 4),
                    echoReply: try bytes.networkUInt32(at: minimumLength + 8)))
        } else {
            options = TCPOptions.parseOptions(
                try bytes.networkSlice(minimumLength..<headerLength), base: minimumLength)
        }
        let header = TCPHeader(
            sourcePort: try bytes.networkUInt16(at: 0),
            destinationPort: try bytes.networkUInt16(at: 2),
            sequenceNumber: try bytes.networkUInt32(at: 4),
            acknowledgmentNumber: try bytes.networkUInt32(at: 8),
            flags: TCPFlags(rawValue: try bytes.networkUInt8(at: 13)),
            window: try bytes.networkUInt16(at: 14),
            checksum: try bytes.networkUInt16(at: 16),
            urgentPointer: try bytes.networkUInt16(at: 18),
            options: options)
        return TCPPacket(header: header, headerLength: headerLength, payloadRange: headerLength..<bytes.count)
    }

    /// Parses a segment held in an array.
    public static func parse(
        _ bytes: [UInt8], source: IPv4Address, destination: IPv4Address, verifyChecksum: Bool = true
    ) -> Result<TCPPacket, WireError> {
        bytes.withUnsafeBytes {
            parse($0, source: source, destination: destination, verifyChecksum: verifyChecksum)
        }
    }

    /// Writes the header and options at the start of `buffer`, with the checksum computed over them,
    /// the `payloadLength` bytes the caller already placed after them, and the pseudo-header.
    /// Returns the header length (where the payload must start: `encodedLength`). With
    /// `computeChecksum` false (an interface that skips checksums) the field is left zero.
    @discardableResult
    public func emit(
        into buffer: UnsafeMutableRawBufferPointer, payloadLength: Int, source: IPv4Address,
        destination: IPv4Address, computeChecksum: Bool = true
    ) throws(WireError) -> Int {
        let optionsLength = options.encodedLength
        guard optionsLength <= TCPOptions.maximumLength else { throw .badOption }
        let headerLength = TCPHeader.minimumLength + optionsLength
        guard payloadLength >= 0, payloadLength <= Int(UInt16.max) - headerLength else { throw .badLength }
        let segmentLength = headerLength + payloadLength
        guard buffer.count >= segmentLength, let base = buffer.baseAddress else { throw .bufferTooSmall }
        // Everything below lies inside the `segmentLength` bytes just checked: stored directly, a
        // 32-bit word at a time (the checksum field zero until it is computed).
        @inline(__always) func word(_ value: UInt32, at offset: Int) {
            base.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
        }
        word(UInt32(sourcePort) << 16 | UInt32(destinationPort), at: 0)
        word(sequenceNumber, at: 4)
        word(acknowledgmentNumber, at: 8)
        word(UInt32(headerLength / 4) << 28 | UInt32(flags.rawValue) << 16 | UInt32(window), at: 12)
        word(UInt32(urgentPointer), at: 16)
        _ = options.store(at: base + TCPHeader.minimumLength)
        guard computeChecksum else { return headerLength }
        let pseudoHeader = InternetChecksum.pseudoHeaderSum(
            source: source, destination: destination, protocol: .tcp, length: UInt16(segmentLength))
        let segment = UnsafeRawBufferPointer(start: base, count: segmentLength)
        let checksum = InternetChecksum.checksum(segment, initial: pseudoHeader)
        base.storeBytes(of: checksum.bigEndian, toByteOffset: 16, as: UInt16.self)
        return headerLength
    }

    /// The whole segment (header, options, then `payload`) as bytes; empty if the options do not fit.
    public func bytes(payload: [UInt8] = [], source: IPv4Address, destination: IPv4Address) -> [UInt8] {
        let headerLength = encodedLength
        let emitted = try? emitToArray(capacity: headerLength + payload.count) {
            (buffer) throws(WireError) -> Int in
            for (index, byte) in payload.enumerated() {
                try buffer.storeNetwork(byte, at: headerLength + index)
            }
            return try emit(into: buffer, payloadLength: payload.count, source: source, destination: destination)
                + payload.count
        }
        return emitted ?? []
    }
}

/// A parsed TCP segment; the payload runs from the data offset to the end of the buffer.
public typealias TCPPacket = Parsed<TCPHeader>
