import NetMPInet
import NetMPInterfaces
import NetMPLocal
import NetMPRuntime
import NetMPSockets
import NetMPWire

/// The IPv4 face of a stack: interfaces, addresses, routes, settings, statistics and ping.
extension NetworkStack {
    /// The loopback interface (127.0.0.1/8), present in every stack.
    public var loopback: NetworkInterface { inet.loopback }

    /// Attaches an interface; returns its index (loopback is 0).
    @discardableResult
    public func addInterface(_ interface: NetworkInterface) -> Int { inet.addInterface(interface) }

    /// Assigns `address`/`prefixLength` to `interface` (attaching it if needed) and announces it
    /// with a gratuitous ARP.
    public func addAddress(_ address: IPv4Address, prefixLength: Int, to interface: NetworkInterface) throws(NetError) {
        try inet.addAddress(address, prefixLength: prefixLength, to: interface)
    }

    /// Assigns an address written as "198.18.0.1/24": exactly one "/", a strict dotted quad, and
    /// a decimal length 0...32 without sign or leading zeros. Anything else is `invalidArgument`.
    public func addAddress(_ text: String, to interface: NetworkInterface) throws(NetError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPv4Address(String(parts[0])) else { throw .invalidArgument }
        let digits = parts[1].utf8
        guard (1...2).contains(digits.count),
            digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            digits.count == 1 || digits.first != UInt8(ascii: "0"),
            let length = Int(parts[1]), (0...32).contains(length)
        else { throw .invalidArgument }
        try addAddress(address, prefixLength: length, to: interface)
    }

    /// Adds (or replaces) a route. Without an interface, the gateway's connected network names it.
    public func addRoute(_ destination: IPv4Prefix, via gateway: IPv4Address?, interface: NetworkInterface? = nil)
        throws(NetError)
    {
        try inet.addRoute(destination, gateway: gateway, interface: interface)
    }

    /// Routes everything without a more specific route through `gateway`.
    public func setDefaultGateway(_ gateway: IPv4Address) throws(NetError) {
        guard let all = IPv4Prefix(address: .unspecified, length: 0) else { throw .invalidArgument }
        try addRoute(all, via: gateway)
    }

    /// The IPv4 layer's tunables.
    public var inetSettings: InetSettings { inet.currentSettings }

    public func updateInetSettings(_ body: (inout InetSettings) -> Void) { inet.updateSettings(body) }

    /// Turns IP forwarding on or off (a router).
    public var isForwarding: Bool {
        get { inet.currentSettings.forwarding }
        set { inet.updateSettings { $0.forwarding = newValue } }
    }

    /// The IPv4 layer's counters, summed over the protocol threads.
    public func inetStatistics() -> InetStatistics { inet.statistics() }

    /// Sends one ICMP echo request; the returned request completes with the round-trip time or
    /// an error. In the deterministic mode, step the network until `isComplete`.
    public func startPing(
        _ destination: IPv4Address, sequence: UInt16 = 1, payloadSize: Int = 56, ttl: UInt8? = nil,
        timeout: Duration = .seconds(2)
    ) -> PingRequest {
        let identifier = inet.nextPingIdentifier.wrappingAdd(1, ordering: .relaxed).newValue  // 16 bits: wraps
        let request = PingRequest(
            destination: destination, identifier: identifier, sequence: sequence,
            payloadSize: Swift.max(0, Swift.min(payloadSize, 65507)), ttl: ttl, timeout: timeout)
        guard let hop = inet.configuration.route(to: destination) else {
            request.complete(.failure(.networkUnreachable))
            return request
        }
        let state = inet.perThread[
            inet.threadIndex(source: hop.source, destination: destination, sourcePort: 0, destinationPort: 0)]
        if !state.thread.send({ state.startPing(request) }) { request.complete(.failure(.shutdown)) }
        return request
    }

    /// ping from Swift concurrency: suspends for the round-trip time (threaded mode only).
    public func ping(
        _ destination: IPv4Address, sequence: UInt16 = 1, payloadSize: Int = 56, ttl: UInt8? = nil,
        timeout: Duration = .seconds(2)
    ) async throws(NetError) -> Duration {
        try await startPing(destination, sequence: sequence, payloadSize: payloadSize, ttl: ttl, timeout: timeout)
            .value()
    }

    /// ping: blocks for the round-trip time (threaded mode only).
    public func ping(
        _ destination: IPv4Address, sequence: UInt16 = 1, payloadSize: Int = 56, ttl: UInt8? = nil,
        timeout: Duration = .seconds(2)
    ) throws(NetError) -> Duration {
        try startPing(destination, sequence: sequence, payloadSize: payloadSize, ttl: ttl, timeout: timeout).wait()
    }
}

extension NetSocket {
    /// SO_BROADCAST: whether this UDP socket may send to a broadcast address.
    public var allowsBroadcast: Bool {
        get {
            guard let block = core.controlBlock as? UDPControlBlock else { return false }
            return block.allowsBroadcast.load(ordering: .relaxed)
        }
        set {
            guard let block = core.controlBlock as? UDPControlBlock else { return }
            block.allowsBroadcast.store(newValue, ordering: .relaxed)
        }
    }

    /// Dissolves a UDP socket's association (connect to AF_UNSPEC).
    public func disconnect() throws(NetError) {
        try core.checkOpen()
        try core.request { [core] () throws(NetError) in try core.proto.disconnect(core) }
    }
}
