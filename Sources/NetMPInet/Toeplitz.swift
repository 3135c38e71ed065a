import NetMPInterfaces
import NetMPRuntime
import NetMPSockets
import NetMPWire

/// The Toeplitz hash (RSS) under a key given as a parameter. Precomputed per key: one table of
/// 12 × 256 words, so a hash is twelve lookups.
public struct ToeplitzHasher: Sendable, Hashable {
    public let key: [UInt8]
    /// table[i * 256 + v]: the hash contribution of input byte i having value v (12 input bytes:
    /// source address, destination address, source port, destination port).
    private let table: [UInt32]

    /// A hasher for `key`, which must hold at least 16 bytes (12 input bytes plus the 32-bit
    /// window); RSS keys are 40.
    public init?(key: [UInt8]) {
        guard key.count >= 16 else { return nil }
        self.key = key
        var table = [UInt32](repeating: 0, count: 12 * 256)
        func window(_ bit: Int) -> UInt32 {
            var value: UInt32 = 0
            for offset in 0..<32 {
                let position = bit + offset
                let set = (key[position / 8] >> UInt8(7 - position % 8)) & 1
                value = value << 1 | UInt32(set)
            }
            return value
        }
        for index in 0..<12 {
            for value in 0..<256 {
                var result: UInt32 = 0
                for bit in 0..<8 where (value >> (7 - bit)) & 1 == 1 {
                    result ^= window(index * 8 + bit)
                }
                table[index * 256 + value] = result
            }
        }
        self.table = table
    }

    public static func == (a: ToeplitzHasher, b: ToeplitzHasher) -> Bool { a.key == b.key }
    public func hash(into hasher: inout Hasher) { hasher.combine(key) }

    /// The RSS hash of an IPv4 4-tuple (NDIS_HASH_TCP_IPV4: addresses, then ports).
    @inline(__always) public func hash(
        source: IPv4Address, destination: IPv4Address, sourcePort: UInt16, destinationPort: UInt16
    ) -> UInt32 {
        let s = source.rawValue
        let d = destination.rawValue
        return table.withUnsafeBufferPointer { t in
            var h: UInt32 = 0
            h ^= t[0 * 256 + Int(s >> 24)]
            h ^= t[1 * 256 + Int((s >> 16) & 0xFF)]
            h ^= t[2 * 256 + Int((s >> 8) & 0xFF)]
            h ^= t[3 * 256 + Int(s & 0xFF)]
            h ^= t[4 * 256 + Int(d >> 24)]
            h ^= t[5 * 256 + Int((d >> 16) & 0xFF)]
            h ^= t[6 * 256 + Int((d >> 8) & 0xFF)]
            h ^= t[7 * 256 + Int(d & 0xFF)]
            h ^= t[8 * 256 + Int(sourcePort >> 8)]
            h ^= t[9 * 256 + Int(sourcePort & 0xFF)]
            h ^= t[10 * 256 + Int(destinationPort >> 8)]
            h ^= t[11 * 256 + Int(destinationPort & 0xFF)]
            return h
        }
    }

    /// The RSS hash of the addresses alone (NDIS_HASH_IPV4). Zero ports add nothing, so this is
    /// the 4-tuple hash with both ports 0.
    @inline(__always) public func hash(source: IPv4Address, destination: IPv4Address) -> UInt32 {
        hash(source: source, destination: destination, sourcePort: 0, destinationPort: 0)
    }
}

/// The keys the stack knows.
public enum Toeplitz {
    /// 0x6d, 0x5a repeated (Woo and Park): a flow's two directions hash alike,
    /// hash(a, b, p, q) == hash(b, a, q, p). The default, so both directions share a thread.
    public static let symmetricKey: [UInt8] = (0..<40).map { $0 % 2 == 0 ? 0x6D : 0x5A }

    /// Microsoft's RSS verification key (the one NICs ship with); not symmetric.
    public static let microsoftKey: [UInt8] = [
        0x6D, 0x5A, 0x56, 0xDA, 0x25, 0x5B, 0x0E, 0xC2, 0x41, 0x67, 0x25, 0x3D, 0x43, 0xA3, 0x8F, 0xB0,
        0xD0, 0xCA, 0x2B, 0xCB, 0xAE, 0x7B, 0x30, 0xB4, 0x77, 0xCB, 0x2D, 0xA3, 0x80, 0x30, 0xF2, 0x0C,
        0x6A, 0x42, 0xB7, 0x3B, 0xBE, 0xAC, 0x01, 0xFA,
    ]

    static let symmetric: ToeplitzHasher = {
        guard let hasher = ToeplitzHasher(key: symmetricKey) else { preconditionFailure("40-byte key") }
        return hasher
    }()

    /// The hash under the symmetric key.
    @inline(__always) static func hash(
        source: IPv4Address, destination: IPv4Address, sourcePort: UInt16, destinationPort: UInt16
    ) -> UInt32 {
        symmetric.hash(
            source: source, destination: destination, sourcePort: sourcePort, destinationPort: destinationPort)
    }
}
