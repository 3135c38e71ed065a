/// SipHash-2-4 (Aumasson and Bernstein, 2012): the keyed hash behind initial sequence numbers and
/// ephemeral ports, so an off-path attacker cannot predict either.
public struct SipHasher {
    private var v0: UInt64
    private var v1: UInt64
    private var v2: UInt64
    private var v3: UInt64
    /// Bytes not yet absorbed, little-endian in the low bits.
    private var tail: UInt64 = 0
    private var length = 0

    /// A hasher keyed by the 16 bytes `key0` (bytes 0–7, little-endian) and `key1` (bytes 8–15).
    public init(key0: UInt64, key1: UInt64) {
        v0 = key0 ^ 0x736f_6d65_7073_6575
        v1 = key1 ^ 0x646f_7261_6e64_6f6d
        v2 = key0 ^ 0x6c79_6765_6e65_7261
        v3 = key1 ^ 0x7465_6462_7974_6573
    }

    public init(key: TCPSecretKey) {
        self.init(key0: key.low, key1: key.high)
    }

    public mutating func append(_ byte: UInt8) {
        tail |= UInt64(byte) << UInt64(8 * (length & 7))
        length += 1
        if length & 7 == 0 {
            compress(tail)
            tail = 0
        }
    }

    /// Appends the value's bytes most significant first (network order).
    public mutating func append(_ value: UInt16) {
        absorb(UInt64(value.byteSwapped), count: 2)
    }

    /// Appends the value's bytes most significant first (network order).
    public mutating func append(_ value: UInt32) {
        absorb(UInt64(value.byteSwapped), count: 4)
    }

    /// Absorbs `count` (at most 8) bytes held in `bytes`, the first in the low bits: the same as
    /// appending them one by one, in one step (a connection hashes its 4-tuple twice at set-up).
    @inline(__always) private mutating func absorb(_ bytes: UInt64, count: Int) {
        let used = length & 7
        tail |= bytes << UInt64(8 * used)
        length += count
        if used + count >= 8 {
            compress(tail)
            // The bytes that did not fit (none when the block ended exactly).
            tail = bytes >> UInt64(8 * (8 - used))
        }
    }

    public mutating func append(contentsOf bytes: some Sequence<UInt8>) {
        for byte in bytes {
            append(byte)
        }
    }

    public consuming func finalize() -> UInt64 {
        let last = tail | UInt64(truncatingIfNeeded: length) << 56
        compress(last)
        v2 ^= 0xff
        for _ in 0..<4 {
            round()
        }
        return v0 ^ v1 ^ v2 ^ v3
    }

    private mutating func compress(_ word: UInt64) {
        v3 ^= word
        round()
        round()
        v0 ^= word
    }

    private mutating func round() {
        v0 = v0 &+ v1
        v1 = v1.rotatedLeft(13)
        v1 ^= v0
        v0 = v0.rotatedLeft(32)
        v2 = v2 &+ v3
        v3 = v3.rotatedLeft(16)
        v3 ^= v2
        v0 = v0 &+ v3
        v3 = v3.rotatedLeft(21)
        v3 ^= v0
        v2 = v2 &+ v1
        v1 = v1.rotatedLeft(17)
        v1 ^= v2
        v2 = v2.rotatedLeft(32)
    }
}

extension UInt64 {
    fileprivate func rotatedLeft(_ count: UInt64) -> UInt64 {
        self << count | self >> (64 - count)
    }
}

/// The per-stack random secret for ISNs and port choice (16 bytes; the stack draws it at start).
public struct TCPSecretKey: Hashable, Sendable {
    public var low: UInt64
    public var high: UInt64

    /// Bytes 0–7 are `low` little-endian, 8–15 `high`; fewer than 16 bytes are zero-padded.
    public init(bytes: some Sequence<UInt8>) {
        var low: UInt64 = 0
        var high: UInt64 = 0
        for (index, byte) in bytes.enumerated() where index < 16 {
            if index < 8 {
                low |= UInt64(byte) << UInt64(8 * index)
            } else {
                high |= UInt64(byte) << UInt64(8 * (index - 8))
            }
        }
        self.low = low
        self.high = high
    }
}
