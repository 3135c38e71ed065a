/// Codes of ICMP "destination unreachable" (type 3), RFC 792 and RFC 1812.
public struct DestinationUnreachableCode: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8

    public init(rawValue: UInt8) {
        self.rawValue = rawValue
    }

    public static let networkUnreachable = DestinationUnreachableCode(rawValue: 0)
    public static let hostUnreachable = DestinationUnreachableCode(rawValue: 1)
    public static let protocolUnreachable = DestinationUnreachableCode(rawValue: 2)
    /// No socket listens on the UDP port: what `connect`ed UDP sockets report as "connection refused".
    public static let portUnreachable = DestinationUnreachableCode(rawValue: 3)
    /// DF set but the next hop's MTU is smaller: path MTU discovery reads `nextHopMTU` (RFC 1191).
    public static let fragmentationNeeded = DestinationUnreachableCode(rawValue: 4)
    public static let sourceRouteFailed = DestinationUnreachableCode(rawValue: 5)
    public static let communicationAdministrativelyProhibited = DestinationUnreachableCode(rawValue: 13)
}

/// Codes of ICMP "time exceeded" (type 11).
public struct TimeExceededCode: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8

    public init(rawValue: UInt8) {
        self.rawValue = rawValue
    }

    /// TTL reached zero in transit (what traceroute listens for).
    public static let timeToLiveExceeded = TimeExceededCode(rawValue: 0)
    /// Fragments did not all arrive before the reassembly timer ran out.
    public static let fragmentReassemblyTimeExceeded = TimeExceededCode(rawValue: 1)
}

/// The ICMPv4 messages a host stack acts on, with everything else kept raw so it round-trips.
public enum ICMPMessage: Hashable, Sendable {
    case echoReply(identifier: UInt16, sequenceNumber: UInt16)
    case echoRequest(identifier: UInt16, sequenceNumber: UInt16)
    /// `nextHopMTU` is meaningful for `.fragmentationNeeded` and zero otherwise.
    case destinationUnreachable(code: DestinationUnreachableCode, nextHopMTU: UInt16)
    case timeExceeded(code: TimeExceededCode)
    /// Any other type, or a known type with a code it does not define or non-zero bytes where it defines
    /// them unused (kept raw so the message re-emits unchanged); `restOfHeader` is bytes 4..<8.
    case other(type: UInt8, code: UInt8, restOfHeader: UInt32)

    /// The wire type, code and bytes 4..<8 of this message.
    var wireFields: (type: UInt8, code: UInt8, restOfHeader: UInt32) {
        switch self {
        case .echoReply(let identifier, let sequenceNumber):
            return (0, 0, UInt32(identifier) << 16 | UInt32(sequenceNumber))
        case .echoRequest(let identifier, let sequenceNumber):
            return (8, 0, UInt32(identifier) << 16 | UInt32(sequenceNumber))
        case .destinationUnreachable(let code, let nextHopMTU):
            return (3, code.rawValue, UInt32(nextHopMTU))
        case .timeExceeded(let code):
            return (11, code.rawValue, 0)
        case .other(let type, let code, let restOfHeader):
            return (type, code, restOfHeader)
        }
    }

    /// True for error messages, which quote the datagram that caused them.
    public var isError: Bool {
        switch self {
        case .destinationUnreachable, .timeExceeded: return true
        case .echoReply, .echoRequest: return false
        // Source quench (4), redirect (5) and parameter problem (12) also quote the datagram.
        case .other(let type, _, _): return type == 4 || type == 5 || type == 12
        }
    }
}

/// An ICMPv4 header (RFC 792): type, code, checksum and the four type-specific bytes.
public struct ICMPHeader: Hashable, Sendable {
    /// Bytes of the fixed header; echo data or the quoted datagram follows.
    public static let length = 8

    public var message: ICMPMessage
    /// The checksum as read; `emit` computes its own and ignores this.
    public var checksum: UInt16

    public init(message: ICMPMessage, checksum: UInt16 = 0) {
        self.message = message
        self.checksum = checksum
    }

    /// Parses an ICMP message that fills `bytes` (the IPv4 payload); the checksum covers all of it.
    public static func parse(_ bytes: UnsafeRawBufferPointer, verifyChecksum: Bool = true) -> Result<
        ICMPPacket, WireError
    > {
        Result { () throws(WireError) -> ICMPPacket in
            guard bytes.count >= length else { throw .truncated }
            if verifyChecksum {
                guard InternetChecksum.verify(bytes) else { throw .badChecksum }
            }
            let type = try bytes.networkUInt8(at: 0)
            let code = try bytes.networkUInt8(at: 1)
            let restOfHeader = try bytes.networkUInt32(at: 4)
            let message: ICMPMessage
            switch (type, code) {
            case (0, 0):
                message = .echoReply(
                    identifier: UInt16(truncatingIfNeeded: restOfHeader >> 16),
                    sequenceNumber: UInt16(truncatingIfNeeded: restOfHeader))
            case (8, 0):
                message = .echoRequest(
                    identifier: UInt16(truncatingIfNeeded: restOfHeader >> 16),
                    sequenceNumber: UInt16(truncatingIfNeeded: restOfHeader))
            // Byte 5 may hold RFC 4884's length of the original datagram (extensions follow it);
            // the rest of the unused bits are ignored, as receivers must.
            case (3, _):
                message = .destinationUnreachable(
                    code: DestinationUnreachableCode(rawValue: code),
                    nextHopMTU: UInt16(truncatingIfNeeded: restOfHeader))
            case (11, _):
                message = .timeExceeded(code: TimeExceededCode(rawValue: code))
            default:
                message = .other(type: type, code: code, restOfHeader: restOfHeader)
            }
            let header = ICMPHeader(message: message, checksum: try bytes.networkUInt16(at: 2))
            return ICMPPacket(header: header, headerLength: length, payloadRange: length..<bytes.count)
        }
    }

    /// Parses an ICMP message held in an array.
    public static func parse(_ bytes: [UInt8], verifyChecksum: Bool = true) -> Result<ICMPPacket, WireError> {
        bytes.withUnsafeBytes { parse($0, verifyChecksum: verifyChecksum) }
    }

    /// Writes the 8-byte header at the start of `buffer`, with the checksum computed over it and the
    /// `payloadLength` bytes the caller already placed after it. Returns the header length.
    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer, payloadLength: Int) throws(WireError) -> Int {
        guard payloadLength >= 0 else { throw .badLength }
        guard buffer.count >= ICMPHeader.length, buffer.count - ICMPHeader.length >= payloadLength else {
            throw .bufferTooSmall
        }
        let fields = message.wireFields
        try buffer.storeNetwork(fields.type, at: 0)
        try buffer.storeNetwork(fields.code, at: 1)
        try buffer.storeNetwork(UInt16(0), at: 2)
        try buffer.storeNetwork(fields.restOfHeader, at: 4)
        let covered = UnsafeRawBufferPointer(try buffer.networkSlice(0..<(ICMPHeader.length + payloadLength)))
        try buffer.storeNetwork(InternetChecksum.checksum(covered), at: 2)
        return ICMPHeader.length
    }

    /// The whole message (header, then `payload`) as bytes.
    public func bytes(payload: [UInt8] = []) -> [UInt8] {
        let total = ICMPHeader.length + payload.count
        let emitted = try? emitToArray(capacity: total) { (buffer) throws(WireError) -> Int in
            for (index, byte) in payload.enumerated() {
                try buffer.storeNetwork(byte, at: ICMPHeader.length + index)
            }
            return try emit(into: buffer, payloadLength: payload.count) + payload.count
        }
        return emitted ?? []
    }
}

/// A parsed ICMP message: the payload range holds echo data or the quoted datagram.
public typealias ICMPPacket = Parsed<ICMPHeader>

/// The original datagram an ICMP error quotes: its IPv4 header and the first transport bytes,
/// enough to find the socket it concerns (RFC 792 requires at least 8 bytes: TCP/UDP ports and more).
public struct ICMPQuotedDatagram: Hashable, Sendable {
    /// The quoted IPv4 header (its checksum not verified; its total length may exceed the quote).
    public var header: IPv4Header
    /// Offsets, in the ICMP message buffer, of the quoted transport bytes (at least 8).
    public var transportRange: Range<Int>
    /// The first two bytes of the quoted transport header: the source port for TCP and UDP.
    public var sourcePort: UInt16
    /// Bytes 2..<4 of the quoted transport header: the destination port for TCP and UDP.
    public var destinationPort: UInt16
}

extension Parsed where Header == ICMPHeader {
    /// The datagram quoted by an error message, parsed from `bytes`, the same buffer this message was
    /// parsed from. `.unsupported` for messages that quote nothing (echo), `.truncated` when fewer than
    /// the IPv4 header and 8 transport bytes are present.
    public func quotedDatagram(in bytes: UnsafeRawBufferPointer) -> Result<ICMPQuotedDatagram, WireError> {
        Result { () throws(WireError) -> ICMPQuotedDatagram in
            guard header.message.isError else { throw .unsupported }
            // RFC 4884: a nonzero length (32-bit words, byte 5 of the header) ends the quote
            // where extensions begin.
            var range = payloadRange
            let words = Int(try bytes.networkUInt8(at: payloadRange.lowerBound - headerLength + 5))
            if words > 0 && payloadRange.count >= 4 * words {
                range = payloadRange.lowerBound..<(payloadRange.lowerBound + 4 * words)
            }
            let quote = try bytes.networkSlice(range)
            // The quoted header's checksum is not required: routers and NATs may have changed it.
            let inner = try IPv4Header.parseHeader(quote, verifyChecksum: false, allowTruncatedPayload: true)
            guard inner.payloadRange.count >= 8 else { throw .truncated }
            let start = range.lowerBound + inner.payloadRange.lowerBound
            let end = range.lowerBound + inner.payloadRange.upperBound
            return ICMPQuotedDatagram(
                header: inner.header, transportRange: start..<end,
                sourcePort: try bytes.networkUInt16(at: start),
                destinationPort: try bytes.networkUInt16(at: start + 2))
        }
    }

    /// The quoted datagram of a message held in an array.
    public func quotedDatagram(in bytes: [UInt8]) -> Result<ICMPQuotedDatagram, WireError> {
        bytes.withUnsafeBytes { quotedDatagram(in: $0) }
    }
}
