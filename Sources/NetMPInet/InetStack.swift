import NetMPInterfaces
import NetMPRuntime
import NetMPSockets
import NetMPWire
import Synchronization

/// The IPv4 layer of one stack: its interfaces and configuration, the inbound dispatch to
/// protocol threads, the port table, and each thread's `InetThread`.
package final class InetStack: @unchecked Sendable {
    let threads: [ProtocolThread]
    /// perThread[i] belongs to threads[i]; fixed after init.
    @exclusivity(unchecked) package private(set) var perThread: [InetThread] = []
    /// `perThread` unretained, for the per-frame dispatch: an element read from the array was a
    /// retain and a release of a state every CPU that runs as its owner writes.
    @exclusivity(unchecked) private var perThreadUnretained: [Unmanaged<InetThread>] = []
    package let loopback: LoopbackInterface
    let seed: UInt64

    private let configLock = NetLock()
    private var interfaces: [NetworkInterface] = []  // under configLock
    private var addresses: [InterfaceAddress] = []  // under configLock
    private var routes: [Route] = []  // under configLock
    private var settings: InetSettings  // under configLock
    private var current: InetConfiguration  // under configLock
    private var generation: UInt64 = 0  // under configLock

    /// The interfaces that threads waiting on this stack's sockets read while they spin.
    package let devicePolling = DevicePolling()

    /// Frames the dispatcher could not hand to any thread.
    let dispatchDrops = Atomic<Int>(0)

    private let portLock = NetLock()
    private var ports: [UInt16: [IPv4Address]] = [:]  // under portLock
    private var portRandom: SeededRandom  // under portLock
    private let nextOwner = Atomic<Int>(0)
    package let nextPingIdentifier: Atomic<UInt16>

    /// The ephemeral port range (RFC 6056 suggests 49152-65535).
    package static let ephemeralPorts: ClosedRange<UInt16> = 49152...65535

    /// The IPv4 identifications every protocol thread draws from.
    let identifiers: IPIdentifiers

    /// The one neighbour (ARP) table every protocol thread resolves through.
    let neighbours: NeighbourTable

    /// The inbound dispatch hash, under `InetSettings.dispatchKey` as the stack was made with.
    let dispatchHasher: ToeplitzHasher

    package init(threads: [ProtocolThread], settings: InetSettings, seed: UInt64) {
        identifiers = IPIdentifiers(seed: seed)
        self.threads = threads
        self.settings = settings
        self.seed = seed
        neighbours = NeighbourTable(seed: seed)
        dispatchHasher = ToeplitzHasher(key: settings.dispatchKey) ?? Toeplitz.symmetric
        portRandom = SeededRandom(seed: seed ^ 0x5EED_0F_7057)
        nextPingIdentifier = Atomic(UInt16(truncatingIfNeeded: seed >> 32))
        loopback = LoopbackInterface()
        current = InetConfiguration(interfaces: [], addresses: [], routes: [], settings: settings)
        perThread = threads.map { thread in
            InetThread(stack: self, thread: thread, config: current, seed: seed &+ UInt64(thread.index))
        }
        perThreadUnretained = perThread.map { Unmanaged.passUnretained($0) }
        for state in perThread {
            _ = try? state.thread.call { () throws(NetError) in
                // Unretained: this stack (which holds the state) outlives every batch the thread
                // runs; a counted reference cost atomics on objects every dispatching thread shares.
                state.thread.addEndOfBatchHook(context: Unmanaged.passUnretained(state).toOpaque()) { context in
                    guard let context else { return }
                    Unmanaged<InetThread>.fromOpaque(context)._withUnsafeGuaranteedRef { $0.flush() }
                }
            }
        }
        addInterface(loopback)
        _ = try? addAddress(.loopback, prefixLength: 8, to: loopback)
    }

    /// Breaks the links between interfaces and this stack.
    package func detachInterfaces() {
        for interface in configLock.withLock({ interfaces }) { interface.setReceiver(nil) }
    }

    // MARK: Configuration

    package var configuration: InetConfiguration { configLock.withLock { current } }

    /// Makes a new snapshot of the configuration (under `configLock`); `publish` hands it out.
    private func publishLocked() {
        current = InetConfiguration(interfaces: interfaces, addresses: addresses, routes: routes, settings: settings)
        generation &+= 1
    }

    /// Hands the newest snapshot to every protocol thread, after `configLock` is dropped: from a
    /// user thread it waits until each has it; from a protocol thread (which never waits on
    /// another) it posts. A thread keeps the newest generation it has seen, so snapshots that
    /// cross on the way are never applied out of order.
    private func publish() {
        let (snapshot, number) = configLock.withLock { (current, generation) }
        let waits = ProtocolThread.current == nil
        for state in perThread {
            let apply: @Sendable () -> Void = {
                if number > state.configGeneration {
                    state.config = snapshot
                    state.configGeneration = number
                }
            }
            if state.thread.isCurrent {
                apply()
            } else if waits {
                _ = try? state.thread.call { () throws(NetError) in apply() }
            } else {
                state.thread.send(apply)
            }
        }
    }

    @discardableResult
    package func addInterface(_ interface: NetworkInterface) -> Int {
        let (index, added) = configLock.withLock { () -> (Int, Bool) in
            if let existing = interfaces.firstIndex(where: { $0 === interface }) { return (existing, false) }
            let index = interfaces.count
            interfaces.append(interface)
            // Held strongly: a weak reference gave the stack a side table, which sends every
            // retain and release of it (several per packet) down the runtime's slow path. The
            // cycle this makes is broken by `detachInterfaces`, which the stack's shutdown runs.
            interface.setReceiver { [self] frames in receive(frames, interfaceIndex: index) }
            publishLocked()
            return (index, true)
        }
        if added {
            if interface.supportsBusyPolling { devicePolling.add(interface) }
            publish()
        }
        return index
    }

    func interfaceIndex(of interface: NetworkInterface) -> Int? {
        configLock.withLock { interfaces.firstIndex { $0 === interface } }
    }

    package func addAddress(_ address: IPv4Address, prefixLength: Int, to interface: NetworkInterface) throws(NetError)
    {
        guard let prefix = IPv4Prefix(address: address, length: prefixLength) else { throw .invalidArgument }
        let index = addInterface(interface)
        try configLock.withLock { () throws(NetError) in
            if addresses.contains(where: { $0.address == address }) { throw .addressInUse }
            addresses.append(InterfaceAddress(address: address, prefix: prefix, interfaceIndex: index))
            publishLocked()
        }
        publish()
        if interface.needsAddressResolution, let first = perThread.first {
            first.thread.send {
                first.announce(address, interfaceIndex: index)
                first.flush()
            }
        }
    }

    package func addRoute(_ destination: IPv4Prefix, gateway: IPv4Address?, interface: NetworkInterface?)
        throws(NetError)
    {
        try configLock.withLock { () throws(NetError) in
            let index: Int
            if let interface, let found = interfaces.firstIndex(where: { $0 === interface }) {
                index = found
            } else if let gateway,
                let found = current.routes.first(where: {
                    $0.gateway == nil && $0.destination.contains(gateway)
                })
            {
                index = found.interfaceIndex
            } else {
                throw .networkUnreachable
            }
            routes.removeAll { $0.destination == destination }
            routes.append(Route(destination: destination, gateway: gateway, interfaceIndex: index))
            publishLocked()
        }
        publish()
    }

    package var currentSettings: InetSettings { configLock.withLock { settings } }

    package func updateSettings(_ body: (inout InetSettings) -> Void) {
        configLock.withLock {
            body(&settings)
            publishLocked()
        }
        publish()
    }

    package func statistics() -> InetStatistics {
        var total = InetStatistics()
        for state in perThread {
            // Copied element by element on the owner: the caller never shares the owner's array
            // buffer, whose copy-on-write hand-over ThreadSanitizer cannot follow.
            let values: [Int] =
                state.thread.isCurrent
                ? state.counters
                : ((try? state.thread.call { () throws(NetError) in state.counters.map { $0 } }) ?? [])
            for (index, value) in values.enumerated() where index < total.values.count {
                total.values[index] += value
            }
        }
        return total
    }

    // MARK: Dispatch

    @inline(__always) package func threadIndex(
        source: IPv4Address, destination: IPv4Address, sourcePort: UInt16, destinationPort: UInt16
    ) -> Int {
        let count = perThread.count
        if count <= 1 { return 0 }
        let hash = dispatchHasher.hash(
            source: source, destination: destination, sourcePort: sourcePort, destinationPort: destinationPort)
        return Int(hash % UInt32(count))
    }

    /// The thread an IPv4 packet's flow belongs to: its addresses and ports (addresses alone for
    /// fragments and ICMP; an ICMP error goes with the flow of the datagram it quotes).
    func threadIndex(ipPacket bytes: UnsafeRawBufferPointer) -> Int {
        guard bytes.count >= 20 else { return 0 }
        let headerLength = Int(bytes[0] & 0xF) * 4
        guard headerLength >= 20, bytes.count >= headerLength else { return 0 }
        func address(_ offset: Int) -> IPv4Address {
            IPv4Address(
                rawValue: UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8
                    | UInt32(bytes[offset + 3]))
        }
        func port(_ offset: Int) -> UInt16 { UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1]) }
        let source = address(12)
        let destination = address(16)
        let fragmented = bytes[6] & 0x3F != 0 || bytes[7] != 0
        let proto = bytes[9]
        if !fragmented && (proto == 17 || proto == 6) && bytes.count >= headerLength + 4 {
            return threadIndex(
                source: source, destination: destination, sourcePort: port(headerLength),
                destinationPort: port(headerLength + 2))
        }
        if !fragmented && proto == 1 && bytes.count >= headerLength + 8 + 20 {
            let type = bytes[headerLength]
            if type == 3 || type == 11 || type == 12 {
                let quote = headerLength + 8
                let quoteLength = Int(bytes[quote] & 0xF) * 4
                if quoteLength >= 20, bytes.count >= quote + quoteLength + 4 {
                    let quotedProto = bytes[quote + 9]
                    let quotedSource = address(quote + 12)
                    let quotedDestination = address(quote + 16)
                    if quotedProto == 17 || quotedProto == 6 {
                        return threadIndex(
                            source: quotedSource, destination: quotedDestination,
                            sourcePort: port(quote + quoteLength), destinationPort: port(quote + quoteLength + 2))
                    }
                    return threadIndex(
                        source: quotedSource, destination: quotedDestination, sourcePort: 0, destinationPort: 0)
                }
            }
        }
        return threadIndex(source: source, destination: destination, sourcePort: 0, destinationPort: 0)
    }

    /// Inbound frames from interface `interfaceIndex`: hashed to protocol threads, one message
    /// per thread per batch. ARP goes to thread 0 (the neighbour table is shared).
    func receive(_ frames: [Frame], interfaceIndex: Int) {
        let count = perThread.count
        if count == 1 || frames.count == 1 {
            let index = count == 1 ? 0 : threadIndex(frame: frames[0])
            perThreadUnretained[index]._withUnsafeGuaranteedRef { post(frames, to: $0, interfaceIndex: interfaceIndex) }
            return
        }
        var batches = [InboundBatch?](repeating: nil, count: count)
        for frame in frames {
            let index = threadIndex(frame: frame)
            if batches[index] == nil {
                let batch = perThread[index].takeInboundBatch()
                batch.interfaceIndex = interfaceIndex
                batches[index] = batch
            }
            batches[index]?.frames.append(frame)
        }
        for (index, batch) in batches.enumerated() {
            guard let batch else { continue }
            let state = perThread[index]
            let posted = batch.frames.count
            if !state.thread.post(batch) {
                state.recycle(batch)
                dispatchDrops.add(posted, ordering: .relaxed)
            }
        }
    }

    /// Posts `frames` to `state`'s thread in one of its reusable batches.
    private func post(_ frames: [Frame], to state: InetThread, interfaceIndex: Int) {
        let batch = state.takeInboundBatch()
        if frames.count == 1 {
            batch.single = frames[0]
        } else {
            batch.frames.append(contentsOf: frames)
        }
        batch.interfaceIndex = interfaceIndex
        // The batch's reference goes with it (one that cannot be posted is dropped: a stopped
        // thread's next batch is made afresh).
        if !state.thread.post(consuming: consume batch) {
            dispatchDrops.add(frames.count, ordering: .relaxed)
        }
    }

    /// The protocol thread an inbound frame belongs to: an IPv4 packet's by its addresses (and
    /// ports), anything else the first thread's.
    private func threadIndex(frame: Frame) -> Int {
        let bytes = frame.bytes
        guard bytes.count >= 14 else { return 0 }
        let etherType = UInt16(bytes[12]) << 8 | UInt16(bytes[13])
        guard etherType == 0x0800 else { return 0 }
        return threadIndex(ipPacket: UnsafeRawBufferPointer(rebasing: bytes[14...]))
    }

    // MARK: Ports

    private func portIsFree(_ port: UInt16, _ address: IPv4Address) -> Bool {
        guard let users = ports[port] else { return true }
        return !users.contains { $0 == address || $0.isUnspecified || address.isUnspecified }
    }

    /// Reserves `port` on `address` (0: an ephemeral port, RFC 6056 algorithm 1: a random
    /// start in the range, then the next free one).
    func reservePort(_ port: UInt16, address: IPv4Address) throws(NetError) -> UInt16 {
        try portLock.withLock { () throws(NetError) -> UInt16 in
            if port != 0 {
                guard portIsFree(port, address) else { throw .addressInUse }
                ports[port, default: []].append(address)
                return port
            }
            let range = InetStack.ephemeralPorts
            let size = Int(range.upperBound - range.lowerBound) + 1
            let start = Int(portRandom.next() % UInt64(size))
            for step in 0..<size {
                let candidate = range.lowerBound + UInt16((start + step) % size)
                if portIsFree(candidate, address) {
                    ports[candidate, default: []].append(address)
                    return candidate
                }
            }
            throw .addressInUse
        }
    }

    /// Moves a reservation to another address (a wildcard-bound socket that connects).
    func moveReservation(_ port: UInt16, from old: IPv4Address, to new: IPv4Address) {
        portLock.withLock {
            guard var users = ports[port], let index = users.firstIndex(of: old) else { return }
            users[index] = new
            ports[port] = users
        }
    }

    func releasePort(_ port: UInt16, address: IPv4Address) {
        portLock.withLock {
            guard var users = ports[port], let index = users.firstIndex(of: address) else { return }
            users.remove(at: index)
            ports[port] = users.isEmpty ? nil : users
        }
    }

    /// The protocol thread a new socket is owned by (round robin).
    func nextOwnerThread() -> InetThread {
        let index = nextOwner.add(1, ordering: .relaxed).newValue
        return perThread[index % perThread.count]
    }
}
