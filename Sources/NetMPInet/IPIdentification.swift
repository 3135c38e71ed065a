import NetMPInterfaces
import NetMPRuntime
import NetMPSockets
import NetMPWire
import Synchronization

/// The IPv4 identification field, as Linux's hashed `ip_idents`: 2048 counters, the counter a
/// datagram draws from chosen by a keyed hash (SipHash-2-4) of destination, source and protocol,
/// each counter starting at a random value, and the hash added to what it returns. Datagrams to
/// one destination get consecutive identifications (what RFC 6864 asks of fragmentable ones);
/// a host watching its own identifications learns nothing of traffic to others, which a single
/// sequential counter leaks, and cores sending to different destinations seldom share a line.
/// As Linux does since the 2019 hash-collision attacks, a counter idle for a while moves on by
/// a keyed random amount below the idle time (in milliseconds), so a destination that shares a
/// bucket with another cannot count the other's datagrams across the gap.
package final class IPIdentifiers: @unchecked Sendable {
    static let bucketCount = 2048

    private let buckets: UnsafeMutablePointer<Atomic<UInt32>>
    /// When each counter was last used, in milliseconds of the stack's clock.
    private let stamps: UnsafeMutablePointer<Atomic<UInt32>>
    private let key0: UInt64
    private let key1: UInt64

    init(seed: UInt64) {
        var random = SeededRandom(seed: seed ^ 0x1D_E471_F1CA_7104)
        key0 = random.next()
        key1 = random.next()
        buckets = .allocate(capacity: IPIdentifiers.bucketCount)
        stamps = .allocate(capacity: IPIdentifiers.bucketCount)
        for index in 0..<IPIdentifiers.bucketCount {
            (buckets + index).initialize(to: Atomic(UInt32(truncatingIfNeeded: random.next())))
            (stamps + index).initialize(to: Atomic(0))
        }
    }

    deinit {
        buckets.deinitialize(count: IPIdentifiers.bucketCount)
        buckets.deallocate()
        stamps.deinitialize(count: IPIdentifiers.bucketCount)
        stamps.deallocate()
    }

    /// The next identification for a datagram from `source` to `destination`, sent at `now`
    /// (nanoseconds of the stack's clock).
    func next(source: IPv4Address, destination: IPv4Address, protocol proto: UInt8, now: Int64) -> UInt16 {
        next(flowHash: flowHash(source: source, destination: destination, protocol: proto), now: now)
    }

    /// The keyed hash that picks a flow's counter (and offsets what it returns): a function of
    /// the three values alone, so a sender may keep it for its next datagram of the same flow.
    func flowHash(source: IPv4Address, destination: IPv4Address, protocol proto: UInt8) -> UInt64 {
        SipHash24.hash(
            key0: key0, key1: key1, UInt64(destination.rawValue) << 32 | UInt64(source.rawValue), UInt64(proto))
    }

    /// The next identification for the flow whose `flowHash` is `hash`.
    func next(flowHash hash: UInt64, now: Int64) -> UInt16 {
        let bucket = Int(truncatingIfNeeded: hash % UInt64(IPIdentifiers.bucketCount))
        let millisecond = UInt32(truncatingIfNeeded: now / 1_000_000)
        var step: UInt32 = 1
        let last = stamps[bucket].load(ordering: .relaxed)
        if last != millisecond,
            stamps[bucket].compareExchange(expected: last, desired: millisecond, ordering: .relaxed).exchanged
        {
            let idle = UInt64(millisecond &- last)
            let draw = SipHash24.hash(key0: key1, key1: key0, UInt64(bucket), UInt64(millisecond))
            step &+= UInt32(truncatingIfNeeded: draw % idle)
        }
        let count = buckets[bucket].wrappingAdd(step, ordering: .relaxed).newValue
        return UInt16(truncatingIfNeeded: count &+ UInt32(truncatingIfNeeded: hash >> 32))
    }
}

/// SipHash-2-4 (Aumasson and Bernstein) of two 64-bit words, as Linux keys its identifiers.
package enum SipHash24 {
    static func hash(key0: UInt64, key1: UInt64, _ first: UInt64, _ second: UInt64) -> UInt64 {
        var v0: UInt64 = 0x736f_6d65_7073_6575 ^ key0
        var v1: UInt64 = 0x646f_7261_6e64_6f6d ^ key1
        var v2: UInt64 = 0x6c79_6765_6e65_7261 ^ key0
        var v3: UInt64 = 0x7465_6462_7974_6573 ^ key1
        @inline(__always) func round() {
            v0 = v0 &+ v1
            v1 = v1.rotatedLeft(13) ^ v0
            v0 = v0.rotatedLeft(32)
            v2 = v2 &+ v3
            v3 = v3.rotatedLeft(16) ^ v2
            v0 = v0 &+ v3
            v3 = v3.rotatedLeft(21) ^ v0
            v2 = v2 &+ v1
            v1 = v1.rotatedLeft(17) ^ v2
            v2 = v2.rotatedLeft(32)
        }
        // 16 message bytes, then the final block holding the length.
        for word in [first, second, UInt64(16) << 56] {
            v3 ^= word
            round()
            round()
            v0 ^= word
        }
        v2 ^= 0xFF
        for _ in 0..<4 { round() }
        return v0 ^ v1 ^ v2 ^ v3
    }
}

extension UInt64 {
    @inline(__always) fileprivate func rotatedLeft(_ count: UInt64) -> UInt64 {
        self << count | self >> (64 - count)
    }
}
