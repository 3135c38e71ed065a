/// The Internet checksum (RFC 1071): the one's-complement of the one's-complement sum of 16-bit words.
///
/// Sums are computed eight bytes at a time in host order and byte-swapped once at the end, which
/// RFC 1071 allows because one's-complement addition is independent of byte order. All values
/// taken and returned are ordinary integers holding the network-order 16-bit word.
public enum InternetChecksum {
    /// The folded one's-complement sum of `bytes` (not complemented), as if the view starts at an
    /// even offset of the checksummed data.
    public static func sum(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
        let count = bytes.count
        var accumulator: UInt64 = 0
        var offset = 0
        // Four wide words per round keeps the carry chain short; the end-around carry is added back.
        while count - offset >= 32 {
            accumulator = addWithCarry(accumulator, bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            accumulator = addWithCarry(accumulator, bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
            accumulator = addWithCarry(accumulator, bytes.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self))
            accumulator = addWithCarry(accumulator, bytes.loadUnaligned(fromByteOffset: offset + 24, as: UInt64.self))
            offset += 32
        }
        while count - offset >= 8 {
            accumulator = addWithCarry(accumulator, bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            offset += 8
        }
        if count - offset >= 4 {
            accumulator = addWithCarry(
                accumulator, UInt64(bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
            offset += 4
        }
        if count - offset >= 2 {
            accumulator = addWithCarry(
                accumulator, UInt64(bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
            offset += 2
        }
        if count - offset >= 1 {
            // A lone last byte is the high half of a word padded with zero (RFC 1071 4.1).
            let lastByte = UInt64(bytes.load(fromByteOffset: offset, as: UInt8.self))
            #if _endian(little)
                accumulator = addWithCarry(accumulator, lastByte)
            #else
                accumulator = addWithCarry(accumulator, lastByte << 8)
            #endif
        }
        // The words were loaded in host order; one swap at the end gives the network-order sum.
        return UInt16(bigEndian: fold(accumulator))
    }

    /// The checksum to store in a header: the complement of the sum of `bytes` plus `initial`
    /// (usually a pseudo-header sum).
    public static func checksum(_ bytes: UnsafeRawBufferPointer, initial: UInt16 = 0) -> UInt16 {
        ~add(sum(bytes), initial)
    }

    /// True when `bytes` (with their checksum field in place) plus `initial` sum to all ones.
    public static func verify(_ bytes: UnsafeRawBufferPointer, initial: UInt16 = 0) -> Bool {
        add(sum(bytes), initial) == 0xFFFF
    }

    /// One's-complement addition of two 16-bit words.
    public static func add(_ first: UInt16, _ second: UInt16) -> UInt16 {
        let total = UInt32(first) + UInt32(second)
        return UInt16(truncatingIfNeeded: (total & 0xFFFF) + (total >> 16))
    }

    /// The sum of the TCP/UDP pseudo-header over IPv4 (RFC 793 3.1, RFC 768), to pass as `initial`.
    public static func pseudoHeaderSum(
        source: IPv4Address, destination: IPv4Address, protocol ipProtocol: IPProtocol, length: UInt16
    ) -> UInt16 {
        var total: UInt32 = 0
        total += source.rawValue >> 16
        total += source.rawValue & 0xFFFF
        total += destination.rawValue >> 16
        total += destination.rawValue & 0xFFFF
        total += UInt32(ipProtocol.rawValue)
        total += UInt32(length)
        return UInt16(truncatingIfNeeded: fold32(total))
    }

    /// The checksum after one 16-bit word of the data changed from `old16` to `new16` (RFC 1624 eqn. 3),
    /// so a router rewriting TTL or a NAT rewriting a port need not re-sum the packet.
    public static func update(checksum: UInt16, old16: UInt16, new16: UInt16) -> UInt16 {
        ~add(add(~checksum, ~old16), new16)
    }

    /// The checksum after an aligned 32-bit field (an address, a sequence number) changed.
    public static func update(checksum: UInt16, old32: UInt32, new32: UInt32) -> UInt16 {
        let high = update(
            checksum: checksum, old16: UInt16(truncatingIfNeeded: old32 >> 16),
            new16: UInt16(truncatingIfNeeded: new32 >> 16))
        return update(
            checksum: high, old16: UInt16(truncatingIfNeeded: old32), new16: UInt16(truncatingIfNeeded: new32))
    }

    @inline(__always)
    static func addWithCarry(_ accumulator: UInt64, _ word: UInt64) -> UInt64 {
        let (total, overflow) = accumulator.addingReportingOverflow(word)
        return total &+ (overflow ? 1 : 0)
    }

    @inline(__always)
    static func fold(_ value: UInt64) -> UInt16 {
        // 64 -> 33 bits -> 17 bits -> 16 bits, keeping every end-around carry.
        var folded = (value & 0xFFFF_FFFF) + (value >> 32)
        folded = (folded & 0xFFFF) + (folded >> 16)
        folded = (folded & 0xFFFF) + (folded >> 16)
        folded = (folded & 0xFFFF) + (folded >> 16)
        return UInt16(truncatingIfNeeded: folded)
    }

    @inline(__always)
    static func fold32(_ value: UInt32) -> UInt32 {
        var folded = (value & 0xFFFF) + (value >> 16)
        folded = (folded & 0xFFFF) + (folded >> 16)
        return folded
    }
}

/// Sums data that arrives in pieces (a header, then payload chunks of any length) into one checksum.
///
/// Tracks whether the next piece starts at an odd offset and byte-swaps its sum then, so chunk
/// boundaries need not fall on 16-bit words.
public struct ChecksumAccumulator: Sendable, Equatable {
    private var total: UInt16
    private var startsAtOddOffset = false

    /// Starts from `initial`, typically a pseudo-header sum.
    public init(initial: UInt16 = 0) {
        total = initial
    }

    /// Adds the next piece of the checksummed data.
    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        var pieceSum = InternetChecksum.sum(bytes)
        if startsAtOddOffset {
            pieceSum = pieceSum.byteSwapped
        }
        total = InternetChecksum.add(total, pieceSum)
        if bytes.count & 1 == 1 {
            startsAtOddOffset.toggle()
        }
    }

    /// Adds a 16-bit word that is not part of the byte stream's positions (e.g. a pseudo-header field).
    public mutating func add(word: UInt16) {
        total = InternetChecksum.add(total, word)
    }

    /// The folded sum so far, not complemented.
    public var sum: UInt16 { total }

    /// The value to store in a checksum field.
    public var checksum: UInt16 { ~total }
}
