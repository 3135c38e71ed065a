/// An IPv4 address as a value: compact, hashable, ordered, and printed in dotted-quad notation.
public struct IPv4Address: RawRepresentable, Hashable, Comparable, Sendable, LosslessStringConvertible {
    /// The address as a host-order integer: 198.18.0.1 is `0xC612_0001`.
    public var rawValue: UInt32

    /// Wraps a host-order integer.
    public init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    /// Builds `a.b.c.d` from its four octets.
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        rawValue = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Parses dotted-quad text strictly: four decimal octets 0...255, no leading zeros (which some
    /// libraries read as octal), no spaces, no shorthand forms such as "127.1".
    public init?(_ description: String) {
        var value: UInt32 = 0
        var octet: UInt32 = 0
        var digits = 0
        var octets = 0
        var leadingZero = false
        for character in description.utf8 {
            if character == UInt8(ascii: ".") {
                guard digits > 0, octets < 3 else { return nil }
                value = value << 8 | octet
                octets += 1
                octet = 0
                digits = 0
                leadingZero = false
            } else if character >= UInt8(ascii: "0"), character <= UInt8(ascii: "9") {
                guard !leadingZero, digits < 3 else { return nil }
                if digits == 0, character == UInt8(ascii: "0") {
                    leadingZero = true
                }
                octet = octet * 10 + UInt32(character - UInt8(ascii: "0"))
                guard octet <= 255 else { return nil }
                digits += 1
            } else {
                return nil
            }
        }
        guard digits > 0, octets == 3 else { return nil }
        rawValue = value << 8 | octet
    }

    /// 0.0.0.0, "any address" in a bind.
    public static let unspecified = IPv4Address(rawValue: 0)
    /// 255.255.255.255, the limited broadcast.
    public static let broadcast = IPv4Address(rawValue: 0xFFFF_FFFF)
    /// 127.0.0.1.
    public static let loopback = IPv4Address(127, 0, 0, 1)

    /// The four octets, most significant first.
    public var octets: (UInt8, UInt8, UInt8, UInt8) {
        (
            UInt8(truncatingIfNeeded: rawValue >> 24), UInt8(truncatingIfNeeded: rawValue >> 16),
            UInt8(truncatingIfNeeded: rawValue >> 8), UInt8(truncatingIfNeeded: rawValue)
        )
    }

    /// The limited broadcast 255.255.255.255 (directed broadcasts need the prefix; see `IPv4Prefix`).
    public var isBroadcast: Bool { rawValue == 0xFFFF_FFFF }
    /// 224.0.0.0/4.
    public var isMulticast: Bool { rawValue >> 28 == 0xE }
    /// 127.0.0.0/8.
    public var isLoopback: Bool { rawValue >> 24 == 127 }
    /// 0.0.0.0.
    public var isUnspecified: Bool { rawValue == 0 }

    /// Dotted-quad text, e.g. "198.18.0.1".
    public var description: String {
        let (a, b, c, d) = octets
        return "\(a).\(b).\(c).\(d)"
    }

    public static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool {
        lhs.rawValue < rhs.rawValue
    }

    /// Reads an address stored in network order at `offset`.
    static func read(from bytes: UnsafeRawBufferPointer, at offset: Int) throws(WireError) -> IPv4Address {
        IPv4Address(rawValue: try bytes.networkUInt32(at: offset))
    }

    /// Writes this address in network order at `offset`.
    func write(to buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(WireError) {
        try buffer.storeNetwork(rawValue, at: offset)
    }
}

/// A network prefix such as 198.18.0.0/15: the routing and "is this on-link" question in one value.
public struct IPv4Prefix: Hashable, Sendable, LosslessStringConvertible {
    /// The network address, host bits always zero.
    public let network: IPv4Address
    /// The number of leading one bits in the mask, 0...32.
    public let length: Int

    /// The prefix of `length` bits containing `address`; host bits are cleared, so an interface
    /// address with its prefix length gives the on-link network. Nil if `length` is not 0...32.
    public init?(address: IPv4Address, length: Int) {
        guard length >= 0, length <= 32 else { return nil }
        self.length = length
        self.network = IPv4Address(rawValue: address.rawValue & IPv4Prefix.mask(length: length))
    }

    /// Parses "198.18.0.0/15" strictly: a valid address, a decimal length 0...32 without leading zeros,
    /// and no host bits set (a typo like "198.18.0.1/15" is refused rather than silently widened).
    public init?(_ description: String) {
        let parts = description.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPv4Address(String(parts[0])) else { return nil }
        let lengthText = parts[1].utf8
        guard !lengthText.isEmpty, lengthText.count <= 2,
            lengthText.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            lengthText.count == 1 || lengthText.first != UInt8(ascii: "0"),
            let length = Int(String(parts[1])),
            let prefix = IPv4Prefix(address: address, length: length),
            prefix.network == address
        else { return nil }
        self = prefix
    }

    /// The mask as an address, e.g. 255.254.0.0 for /15.
    public var netmask: IPv4Address { IPv4Address(rawValue: IPv4Prefix.mask(length: length)) }

    /// The directed broadcast address of this network (all host bits set).
    public var broadcastAddress: IPv4Address { IPv4Address(rawValue: network.rawValue | ~netmask.rawValue) }

    /// True when `address` lies inside this prefix.
    public func contains(_ address: IPv4Address) -> Bool {
        address.rawValue & IPv4Prefix.mask(length: length) == network.rawValue
    }

    /// True when every address of `other` lies inside this prefix.
    public func contains(_ other: IPv4Prefix) -> Bool {
        other.length >= length && contains(other.network)
    }

    /// "network/length".
    public var description: String { "\(network)/\(length)" }

    static func mask(length: Int) -> UInt32 {
        length <= 0 ? 0 : length >= 32 ? 0xFFFF_FFFF : ~(0xFFFF_FFFF >> UInt32(length))
    }
}
