import Glibc

/// A byte stream whose every byte is a function of its position and a seed, so a receiver can
/// check what it reads without a copy of what was sent: a byte lost, repeated or out of order
/// shows at its position. Long benchmark transfers use it where hashing every byte would cost
/// more than the stack does.
///
/// The stream is made of 8-byte words, word `i` a SplitMix64 finaliser of `seed` and `i`, laid
/// out little-endian, produced a block at a time.
package struct StampedStream: Sendable {
    package let seed: UInt64
    /// Bytes per generated block (a multiple of 8).
    package static let blockSize = 1 << 16
    /// The current block and the stream position of its first byte.
    private var block: [UInt8]
    private var blockStart = 0
    /// How much of the current block has been consumed.
    private var offset = 0

    package init(seed: UInt64) {
        self.seed = seed
        block = [UInt8](repeating: 0, count: StampedStream.blockSize)
        StampedStream.generate(into: &block, firstWord: 0, seed: seed)
    }

    /// Bytes consumed so far: the position of the next byte.
    package var position: Int { blockStart + offset }

    /// Word `index` of the stream with `seed`.
    @inline(__always) package static func word(_ index: Int, seed: UInt64) -> UInt64 {
        var z = seed &+ UInt64(truncatingIfNeeded: index) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The byte at stream position `position`.
    package static func byte(at position: Int, seed: UInt64) -> UInt8 {
        UInt8(truncatingIfNeeded: word(position / 8, seed: seed) >> (UInt64(position % 8) * 8))
    }

    private static func generate(into block: inout [UInt8], firstWord: Int, seed: UInt64) {
        block.withUnsafeMutableBytes { raw in
            for index in 0..<(raw.count / 8) {
                raw.storeBytes(
                    of: word(firstWord &+ index, seed: seed).littleEndian, toByteOffset: index * 8, as: UInt64.self)
            }
        }
    }

    private mutating func nextBlockIfConsumed() {
        guard offset == block.count else { return }
        blockStart += block.count
        offset = 0
        StampedStream.generate(into: &block, firstWord: blockStart / 8, seed: seed)
    }

    /// Calls `body` with the stream's next bytes (the rest of the current block, never empty);
    /// `body` returns how many of them it used, which are consumed.
    package mutating func withNextBytes(_ body: (UnsafeRawBufferPointer) -> Int) -> Int {
        nextBlockIfConsumed()
        let start = offset
        let used = block.withUnsafeBytes { raw in body(UnsafeRawBufferPointer(rebasing: raw[start...])) }
        offset += Swift.max(0, Swift.min(used, block.count - start))
        return used
    }

    /// Compares `bytes` with the stream's next bytes and consumes them; returns the stream
    /// position of the first byte that differs, or nil when all match.
    package mutating func check(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var checked = 0
        while checked < bytes.count {
            nextBlockIfConsumed()
            let count = Swift.min(bytes.count - checked, block.count - offset)
            let start = offset
            let differs = block.withUnsafeBytes { raw in
                guard let expected = raw.baseAddress, let got = bytes.baseAddress else { return false }
                return memcmp(expected + start, got + checked, count) != 0
            }
            if differs {
                for index in 0..<count where block[start + index] != bytes[checked + index] {
                    return blockStart + start + index
                }
            }
            offset += count
            checked += count
        }
        return nil
    }
}
