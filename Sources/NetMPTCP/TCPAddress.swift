import NetMPWire

/// A host address as TCP keys and hashes it: IPv4 today, with room for IPv6 as another case, so
/// control blocks, lookups and hashes never assume 32 bits.
public enum TCPAddress: Hashable, Sendable, CustomStringConvertible {
    case ipv4(IPv4Address)

    /// Feeds the address (with its family, so equal bits of different families differ) into a hash.
    func hash(into hasher: inout SipHasher) {
        switch self {
        case .ipv4(let address):
            hasher.append(UInt8(4))
            hasher.append(address.rawValue)
        }
    }

    public var description: String {
        switch self {
        case .ipv4(let address): return address.description
        }
    }
}

/// A connection's 4-tuple as seen from this end.
public struct TCPConnectionKey: Hashable, Sendable {
    public var localAddress: TCPAddress
    public var localPort: UInt16
    public var remoteAddress: TCPAddress
    public var remotePort: UInt16

    public init(localAddress: TCPAddress, localPort: UInt16, remoteAddress: TCPAddress, remotePort: UInt16) {
        self.localAddress = localAddress
        self.localPort = localPort
        self.remoteAddress = remoteAddress
        self.remotePort = remotePort
    }

    /// Two words into the hasher, not the six the synthesized conformance feeds (each case tag,
    /// address and port apart): the tables look a key up on every segment.
    public func hash(into hasher: inout Hasher) {
        switch (localAddress, remoteAddress) {
        case (.ipv4(let local), .ipv4(let remote)):
            hasher.combine(UInt64(local.rawValue) << 32 | UInt64(remote.rawValue))
            hasher.combine(UInt32(localPort) << 16 | UInt32(remotePort))
        }
    }
}
