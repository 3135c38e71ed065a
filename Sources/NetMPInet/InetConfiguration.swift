import NetMPInterfaces
import NetMPRuntime
import NetMPSockets
import NetMPWire

/// An address assigned to an interface, with its prefix (198.18.0.1/24).
public struct InterfaceAddress: Sendable, Hashable {
    public var address: IPv4Address
    public var prefix: IPv4Prefix
    public var interfaceIndex: Int
}

/// A route: packets to `destination` leave through the interface, to `gateway` if set, else
/// straight to their destination (a connected network).
public struct Route: Sendable, Hashable {
    public var destination: IPv4Prefix
    public var gateway: IPv4Address?
    public var interfaceIndex: Int

    public init(destination: IPv4Prefix, gateway: IPv4Address?, interfaceIndex: Int) {
        self.destination = destination
        self.gateway = gateway
        self.interfaceIndex = interfaceIndex
    }
}

/// Tunables of the IPv4 layer.
public struct InetSettings: Sendable, Hashable {
    /// Forward packets not addressed to this stack (a router). Off by default.
    public var forwarding = false
    /// Forward datagrams to the subnet broadcast of one of our other networks (RFC 2644: off).
    public var forwardsDirectedBroadcasts = false
    /// How long a resolved ARP entry is used before it is resolved again.
    public var arpLifetime: Duration = .seconds(60)
    /// Time between ARP requests for one address, and how many are sent before giving up.
    public var arpRetransmit: Duration = .seconds(1)
    public var arpMaxRequests = 3
    /// Packets held per address while it resolves (the oldest is dropped past this). One queue
    /// serves every protocol thread (Linux holds about 100).
    public var arpQueueLimit = 64
    /// Neighbour entries the stack holds at most (both learning paths; the oldest is evicted).
    public var arpCacheLimit = 1024
    /// A datagram's fragments are dropped if it is not complete in this time (RFC 1122 3.3.2:
    /// 60 to 120 s).
    public var reassemblyTimeout: Duration = .seconds(60)
    /// Bytes of receive chunks fragments keep alive on one protocol thread at most, datagrams in
    /// reassembly at most, and fragments per datagram at most.
    public var reassemblyMaxBytes = 1 << 20
    public var reassemblyMaxDatagrams = 64
    public var reassemblyMaxFragments = 64
    /// What one source may hold of the above (its own oldest datagrams make room).
    public var reassemblyMaxBytesPerSource = 1 << 19
    public var reassemblyMaxDatagramsPerSource = 16
    /// ICMP errors each protocol thread sends: a token bucket.
    public var icmpErrorsPerSecond = 100
    public var icmpErrorBurst = 10
    /// The Toeplitz key inbound packets are hashed with to pick their protocol thread (read when
    /// the stack is made; keys under 16 bytes fall back to the default). The default is
    /// symmetric, so both directions of a flow land on one thread; a NIC's key is not.
    public var dispatchKey: [UInt8] = Toeplitz.symmetricKey
    /// Default TTL of packets this stack originates.
    public var defaultTTL: UInt8 = 64

    public init() {}
}

/// Where a packet goes next.
package struct NextHop {
    package var interfaceIndex: Int
    package var nextHop: IPv4Address
    package var source: IPv4Address
    /// Sent to the link broadcast address.
    package var isBroadcast: Bool
}

/// An immutable snapshot of interfaces, addresses, routes and settings. Each protocol thread
/// keeps its own reference, replaced by a message when the configuration changes.
package final class InetConfiguration: @unchecked Sendable {
    let interfaces: [NetworkInterface]
    /// What the per-packet paths read of each interface (`LinkFacts`), in `interfaces`' order.
    let links: [LinkFacts]
    let addresses: [InterfaceAddress]
    /// Longest prefix first.
    let routes: [Route]
    let settings: InetSettings
    private let localSet: AddressSet
    /// The subnet broadcasts of our prefixes on real interfaces (martian sources, never forwarded).
    let directedBroadcasts: AddressSet

    init(interfaces: [NetworkInterface], addresses: [InterfaceAddress], routes: [Route], settings: InetSettings) {
        self.interfaces = interfaces
        links = interfaces.map(LinkFacts.init)
        self.addresses = addresses
        var all = routes
        for address in addresses {
            all.append(Route(destination: address.prefix, gateway: nil, interfaceIndex: address.interfaceIndex))
        }
        self.routes = all.sorted { $0.destination.length > $1.destination.length }
        self.settings = settings
        localSet = AddressSet(addresses.map(\.address))
        directedBroadcasts = AddressSet(
            addresses.filter { $0.interfaceIndex != 0 && $0.prefix.length < 31 }.map(\.prefix.broadcastAddress))
    }

    @inline(__always) func isLocal(_ address: IPv4Address) -> Bool { localSet.contains(address) }

    /// True for 255.255.255.255 and the directed broadcast of a prefix on `interfaceIndex`.
    package func isBroadcast(_ address: IPv4Address, on interfaceIndex: Int) -> Bool {
        if address.isBroadcast { return true }
        for entry in addresses where entry.interfaceIndex == interfaceIndex && entry.prefix.length < 31 {
            if entry.prefix.broadcastAddress == address { return true }
        }
        return false
    }

    /// The first address of an interface (preferring one whose prefix holds `near`).
    func address(on interfaceIndex: Int, near: IPv4Address? = nil) -> IPv4Address? {
        var first: IPv4Address?
        for entry in addresses where entry.interfaceIndex == interfaceIndex {
            if let near, entry.prefix.contains(near) { return entry.address }
            if first == nil { first = entry.address }
        }
        return first
    }

    func interfaceIndex(of address: IPv4Address) -> Int? {
        addresses.first { $0.address == address }?.interfaceIndex
    }

    /// The route to `destination`; `source` (if given) must be one of ours.
    package func route(to destination: IPv4Address, from source: IPv4Address? = nil) -> NextHop? {
        if destination.isLoopback || isLocal(destination) {
            let from = source ?? (destination.isLoopback ? IPv4Address.loopback : destination)
            return NextHop(interfaceIndex: 0, nextHop: destination, source: from, isBroadcast: false)
        }
        if destination.isBroadcast {
            let index =
                source.flatMap { interfaceIndex(of: $0) }
                ?? addresses.first(where: { $0.interfaceIndex != 0 })?.interfaceIndex
            guard let index, let from = source ?? address(on: index) else { return nil }
            return NextHop(interfaceIndex: index, nextHop: destination, source: from, isBroadcast: true)
        }
        for route in routes where route.destination.contains(destination) {
            let nextHop = route.gateway ?? destination
            guard let from = source ?? address(on: route.interfaceIndex, near: nextHop) else { continue }
            let broadcast =
                route.gateway == nil && route.destination.length < 31
                && route.destination.broadcastAddress == destination
            return NextHop(interfaceIndex: route.interfaceIndex, nextHop: nextHop, source: from, isBroadcast: broadcast)
        }
        return nil
    }
}
