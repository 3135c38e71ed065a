/// A 48-bit Ethernet MAC address as a hashable value, printed as "02:00:00:00:00:01".
public struct MACAddress: Hashable, Comparable, Sendable, LosslessStringConvertible {
    /// The six octets packed into the low 48 bits, first octet most significant.
    public let rawValue: UInt64

    /// Wraps the low 48 bits of `rawValue`; higher bits are dropped.
    @inlinable
    public init(rawValue: UInt64) {
        self.rawValue = rawValue & 0xFFFF_FFFF_FFFF
    }

    /// Builds an address from its six octets in transmission order.
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, _ e: UInt8, _ f: UInt8) {
        var value: UInt64 = 0
        for octet in [a, b, c, d, e, f] {
            value = value << 8 | UInt64(octet)
        }
        rawValue = value
    }

    /// Parses six two-digit hex octets separated by colons (either case), e.g. "02:00:00:00:00:01".
    public init?(_ description: String) {
        var value: UInt64 = 0
        var position = 0
        for character in description.utf8 {
            // Positions 2, 5, 8, 11, 14 are separators; the rest are hex digits.
            if position % 3 == 2 {
                guard character == UInt8(ascii: ":") else { return nil }
            } else {
                guard let nibble = MACAddress.hexValue(character) else { return nil }
                value = value << 4 | UInt64(nibble)
            }
            position += 1
            guard position <= 17 else { return nil }
        }
        guard position == 17 else { return nil }
        rawValue = value
    }

    /// ff:ff:ff:ff:ff:ff.
    @inlinable public static var broadcast: MACAddress { MACAddress(rawValue: 0xFFFF_FFFF_FFFF) }
    /// 00:00:00:00:00:00, the "unknown" target hardware address of an ARP request. (Both are
    /// inlinable constants: a `static let` read from another module calls its accessor, and the
    /// sender writes one into every frame.)
    @inlinable public static var zero: MACAddress { MACAddress(rawValue: 0) }

    /// The six octets in transmission order.
    public var octets: [UInt8] {
        (0..<6).map { UInt8(truncatingIfNeeded: rawValue >> UInt64(40 - 8 * $0)) }
    }

    /// ff:ff:ff:ff:ff:ff.
    public var isBroadcast: Bool { rawValue == 0xFFFF_FFFF_FFFF }
    /// The group bit (least significant bit of the first octet); broadcast is also multicast.
    public var isMulticast: Bool { rawValue >> 40 & 1 == 1 }
    /// Not a group address.
    public var isUnicast: Bool { !isMulticast }
    /// The U/L bit: set for addresses a program invents, such as a TAP interface's.
    public var isLocallyAdministered: Bool { rawValue >> 41 & 1 == 1 }

    /// Lower-case colon-separated hex.
    public var description: String {
        let digits: [Character] = Array("0123456789abcdef")
        var text = ""
        for (index, octet) in octets.enumerated() {
            if index > 0 {
                text.append(":")
            }
            text.append(digits[Int(octet >> 4)])
            text.append(digits[Int(octet & 0xF)])
        }
        return text
    }

    public static func < (lhs: MACAddress, rhs: MACAddress) -> Bool {
        lhs.rawValue < rhs.rawValue
    }

    /// Reads six octets at `offset`.
    @usableFromInline
    static func read(from bytes: UnsafeRawBufferPointer, at offset: Int) throws(WireError) -> MACAddress {
        let high = try bytes.networkUInt16(at: offset)
        let low = try bytes.networkUInt32(at: offset + 2)
        return MACAddress(rawValue: UInt64(high) << 32 | UInt64(low))
    }

    /// Writes six octets at `offset`.
    func write(to buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(WireError) {
        try buffer.storeNetwork(UInt16(truncatingIfNeeded: rawValue >> 32), at: offset)
        try buffer.storeNetwork(UInt32(truncatingIfNeeded: rawValue), at: offset + 2)
    }

    private static func hexValue(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return character - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
