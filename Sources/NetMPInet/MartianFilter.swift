import NetMPInterfaces
import NetMPRuntime
import NetMPSockets
import NetMPWire

/// Addresses that must never be accepted or sent (RFC 1122 3.2.1.3 and 3.3.6, RFC 1812 5.3.7,
/// RFC 2644), checked against the configuration: what is a broadcast depends on our prefixes.
extension InetConfiguration {
    /// The directed broadcast of one of our prefixes, on any interface.
    @inline(__always) func isDirectedBroadcast(_ address: IPv4Address) -> Bool {
        directedBroadcasts.contains(address)
    }

    /// A source no datagram arriving on `interfaceIndex` may carry: 0/8 (but 0.0.0.0 to the
    /// limited broadcast or to us over UDP, as a DHCP client sends), 127/8 from outside, 224/4,
    /// 240/4 and 255.255.255.255, any subnet broadcast of ours, and our own addresses arriving
    /// on a wire.
    func isMartianSource(
        _ source: IPv4Address, destination: IPv4Address, protocol proto: IPProtocol, interfaceIndex: Int
    ) -> Bool {
        if source.isUnspecified {
            return !(proto == .udp && (destination.isBroadcast || isLocal(destination)))
        }
        if InetThread.isMartianSource(source) { return true }
        if interfaceIndex == 0 { return false }
        return source.isLoopback || isLocal(source) || isDirectedBroadcast(source)
    }

    /// Why `hop` may not carry a datagram we originate: its source is 0/8, a broadcast or a
    /// multicast address, or 127/8 leaving on a wire (Linux returns EINVAL).
    static func outputSourceError(_ hop: NextHop) -> NetError? {
        let source = hop.source
        if source.rawValue >> 24 == 0 || source.isBroadcast || source.isMulticast || source.rawValue >> 28 == 0xF {
            return .invalidArgument
        }
        if source.isLoopback && hop.interfaceIndex != 0 { return .invalidArgument }
        return nil
    }

    /// Whether a datagram to `destination` by `hop` is a broadcast (SO_BROADCAST needed).
    func isBroadcastDestination(_ destination: IPv4Address, hop: NextHop) -> Bool {
        destination.isBroadcast || hop.isBroadcast || isDirectedBroadcast(destination)
    }
}
