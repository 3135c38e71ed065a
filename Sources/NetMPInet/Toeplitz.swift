import NetMPInterfaces
import NetMPRuntime
import NetMPSockets
import NetMPWire

/// The Toeplitz hash (RSS) with the symmetric key 0x6d5a repeated (Woo and Park), so a flow's
/// two directions hash alike: hash(a, b, p, q) == hash(b, a, q, p).
package enum Toeplitz {
    /// 40 key bytes: 0x6d, 0x5a repeated.
    static let key: [UInt8] = (0..<40).map { $0 % 2 == 0 ? 0x6D : 0x5A }

    /// table[i * 256 + v]: the hash contribution of input byte i having value v (12 input bytes:
    /// source address, destination address, source port, destination port).
    static let table: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 12 * 256)
        func window(_ bit: Int) -> UInt32 {
            var value: UInt32 = 0
            for offset in 0..<32 {
                let position = bit + offset
                let byte = key[position / 8]
                let set = (byte >> UInt8(7 - position % 8)) & 1
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
        return table
    }()

    @inline(__always) package static func hash(
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
}
