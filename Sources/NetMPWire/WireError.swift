/// Why a packet could not be parsed or emitted.
///
/// Every parser in this module returns one of these for malformed, truncated or hostile input
/// instead of trapping, so a stack can drop the packet and count the reason.
public enum WireError: Error, Sendable, Hashable {
    /// The buffer ends before the structure it should hold.
    case truncated
    /// An IP version field that is not 4.
    case badVersion
    /// A header length field (IHL, TCP data offset) that is too small or points past the buffer.
    case badHeaderLength
    /// The checksum does not verify.
    case badChecksum
    /// A length field that contradicts the header or the buffer.
    case badLength
    /// A malformed option (zero or one length, past the end, wrong size for its kind, too many to encode).
    case badOption
    /// Well formed, but a variant this module does not handle (e.g. ARP for non-Ethernet hardware).
    case unsupported
    /// An emit was given a destination buffer too small for what it must write.
    case bufferTooSmall
}

/// A parsed header together with where its payload lies in the buffer it was parsed from.
///
/// Ranges rather than pointers, so the value is `Sendable` and never outlives its buffer by accident;
/// `bytes.networkSlice(parsed.payloadRange)` gives the payload view for the next layer.
public struct Parsed<Header: Sendable & Equatable>: Sendable, Equatable {
    /// The decoded header fields.
    public var header: Header
    /// Bytes taken by the header, options included.
    public var headerLength: Int
    /// Byte offsets of the payload inside the parsed buffer (trailing link padding excluded where the
    /// protocol carries its own length).
    public var payloadRange: Range<Int>

    /// Builds a parse result; parsers guarantee `headerLength <= payloadRange.lowerBound`.
    public init(header: Header, headerLength: Int, payloadRange: Range<Int>) {
        self.header = header
        self.headerLength = headerLength
        self.payloadRange = payloadRange
    }
}

extension Parsed: Hashable where Header: Hashable {}
