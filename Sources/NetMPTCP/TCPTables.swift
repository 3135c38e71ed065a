import NetMPRuntime
import NetMPSockets
import NetMPWire

/// The tables every protocol thread shares, under one short lock: bound ports, the 4-tuples in
/// use (live connections and TIME_WAIT records), and the listen sockets, so that a SYN can find
/// its listener on whichever thread its tuple hashes to. Bind and port choice are serialized
/// here (DragonFly's lesson: an async close racing a bind).
final class TCPTables: @unchecked Sendable {
    /// A socket bound to a port.
    struct Binding {
        var owner: ObjectIdentifier
        var address: IPv4Address
        var reuseAddress: Bool
    }

    private let lock = NetLock()
    @exclusivity(unchecked) private var bound: [UInt16: [Binding]] = [:]  // under lock
    @exclusivity(unchecked) private var tuples: Set<TCPConnectionKey> = []  // under lock
    @exclusivity(unchecked) private var tuplesPerPort: [UInt16: Int] = [:]  // under lock
    @exclusivity(unchecked) private var listeners: [UInt16: [TCPListenState]] = [:]  // under lock
    @exclusivity(unchecked) private var selector: EphemeralPortSelector  // under lock

    init(key: TCPSecretKey) { selector = EphemeralPortSelector(key: key) }

    /// Narrows the ephemeral range (tests that exhaust it).
    func setEphemeralRange(_ range: ClosedRange<UInt16>) {
        lock.withLock { selector = EphemeralPortSelector(key: selector.key, range: range) }
    }

    private static func overlaps(_ a: IPv4Address, _ b: IPv4Address) -> Bool {
        a == b || a.isUnspecified || b.isUnspecified
    }

    // MARK: Bind

    /// Binds `port` on `address` for `owner` (0: an ephemeral port). A port in use by another
    /// binding on an overlapping address, or (without SO_REUSEADDR) by a connection or TIME_WAIT
    /// record, is refused, as Linux does.
    func bind(_ port: UInt16, address: IPv4Address, owner: ObjectIdentifier, reuseAddress: Bool) throws(NetError)
        -> UInt16
    {
        try lock.withLock { () throws(NetError) -> UInt16 in
            let binding = Binding(owner: owner, address: address, reuseAddress: reuseAddress)
            if port != 0 {
                for other in bound[port] ?? [] where TCPTables.overlaps(other.address, address) {
                    if !(reuseAddress && other.reuseAddress) { throw .addressInUse }
                }
                if !reuseAddress, (tuplesPerPort[port] ?? 0) > 0 { throw .addressInUse }
                bound[port, default: []].append(binding)
                return port
            }
            let chosen = selector.choose(
                localAddress: .ipv4(address), remoteAddress: .ipv4(.unspecified), remotePort: 0
            ) { candidate in bound[candidate] != nil || tuplesPerPort[candidate] != nil }
            guard let chosen else { throw .addressInUse }
            bound[chosen, default: []].append(binding)
            return chosen
        }
    }

    func unbind(_ port: UInt16, owner: ObjectIdentifier) {
        lock.withLock {
            guard var list = bound[port] else { return }
            list.removeAll { $0.owner == owner }
            bound[port] = list.isEmpty ? nil : list
        }
    }

    // MARK: Connections

    private func insertLocked(_ key: TCPConnectionKey) -> Bool {
        guard tuples.insert(key).inserted else { return false }
        tuplesPerPort[key.localPort, default: 0] += 1
        return true
    }

    /// Reserves the tuple of an active open. With `localPort` 0 the port is chosen per RFC 6056
    /// (algorithm 3) among ports no binding holds and that this destination does not use.
    /// `preferred` picks among free ports (the ones whose tuple hashes to the caller's thread).
    /// A tuple `reclaimable` accepts (the caller's own TIME_WAIT record it may end) counts as
    /// free; its reservation passes to the new connection, and `reclaimed` says so.
    func reserveConnection(
        localAddress: IPv4Address, localPort: UInt16, remoteAddress: IPv4Address, remotePort: UInt16,
        preferred: (UInt16) -> Bool = { _ in true }, reclaimable: (TCPConnectionKey) -> Bool = { _ in false }
    ) throws(NetError) -> (key: TCPConnectionKey, reclaimed: Bool) {
        try lock.withLock { () throws(NetError) -> (key: TCPConnectionKey, reclaimed: Bool) in
            func key(_ port: UInt16) -> TCPConnectionKey {
                TCPConnectionKey(
                    localAddress: .ipv4(localAddress), localPort: port, remoteAddress: .ipv4(remoteAddress),
                    remotePort: remotePort)
            }
            if localPort != 0 {
                guard insertLocked(key(localPort)) else { throw .addressInUse }
                return (key(localPort), false)
            }
            let chosen = selector.choose(
                localAddress: .ipv4(localAddress), remoteAddress: .ipv4(remoteAddress), remotePort: remotePort,
                inUse: { candidate in
                    bound[candidate] != nil || (tuples.contains(key(candidate)) && !reclaimable(key(candidate)))
                },
                preferred: preferred)
            guard let chosen else { throw .addressNotAvailable }
            if tuples.contains(key(chosen)) { return (key(chosen), true) }
            guard insertLocked(key(chosen)) else { throw .addressNotAvailable }
            return (key(chosen), false)
        }
    }

    /// Reserves the tuple of a passive open; false when it is taken.
    func reserve(_ key: TCPConnectionKey) -> Bool { lock.withLock { insertLocked(key) } }

    func release(_ key: TCPConnectionKey) {
        lock.withLock {
            guard tuples.remove(key) != nil else { return }
            let left = (tuplesPerPort[key.localPort] ?? 1) - 1
            tuplesPerPort[key.localPort] = left > 0 ? left : nil
        }
    }

    // MARK: Listeners

    func addListener(_ listener: TCPListenState) {
        lock.withLock { listeners[listener.port, default: []].append(listener) }
    }

    func removeListener(_ listener: TCPListenState) {
        lock.withLock {
            guard var list = listeners[listener.port] else { return }
            list.removeAll { $0 === listener }
            listeners[listener.port] = list.isEmpty ? nil : list
        }
    }

    /// Takes every listener out (the stack shut down).
    func removeAllListeners() -> [TCPListenState] {
        lock.withLock {
            let all = listeners.values.flatMap { $0 }
            listeners.removeAll()
            return all
        }
    }

    /// The listener for a segment to `address`:`port`: one bound to that address, else a wildcard.
    func listener(port: UInt16, address: IPv4Address) -> TCPListenState? {
        lock.withLock {
            guard let list = listeners[port] else { return nil }
            return list.first { $0.address == address } ?? list.first { $0.address.isUnspecified }
        }
    }

    /// Tuples in use (live connections and TIME_WAIT records), for leak checks.
    var tupleCount: Int { lock.withLock { tuples.count } }
}
