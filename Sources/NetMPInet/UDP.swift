import NetMPInterfaces
import NetMPRuntime
import NetMPSockets
import NetMPWire
import Synchronization

/// A datagram for a socket, queued during a batch of input.
package struct PendingDelivery {
    var socket: Socket
    var record: DatagramRecord
    var length: Int
}

package struct UDPFlowKey: Hashable {
    var localAddress: IPv4Address
    var localPort: UInt16
    var remoteAddress: IPv4Address
    var remotePort: UInt16
}

/// A socket's entry in every thread's UDP tables: an immutable copy of its addresses, replaced
/// whole by a message when they change.
package final class UDPBinding: @unchecked Sendable {
    let socket: Socket
    let localAddress: IPv4Address
    let localPort: UInt16
    let remoteAddress: IPv4Address?
    let remotePort: UInt16

    init(socket: Socket, localAddress: IPv4Address, localPort: UInt16, remoteAddress: IPv4Address?, remotePort: UInt16)
    {
        self.socket = socket
        self.localAddress = localAddress
        self.localPort = localPort
        self.remoteAddress = remoteAddress
        self.remotePort = remotePort
    }

    var flowKey: UDPFlowKey? {
        guard let remoteAddress else { return nil }
        return UDPFlowKey(
            localAddress: localAddress, localPort: localPort, remoteAddress: remoteAddress, remotePort: remotePort)
    }
}

/// A UDP socket's control block. The addresses are the owner thread's; `names` mirrors them
/// under a lock for getsockname/getpeername from any thread.
package final class UDPControlBlock: @unchecked Sendable {
    unowned(unsafe) let socket: Socket
    let owner: InetThread
    // Owner-thread state.
    var localAddress = IPv4Address.unspecified
    var localPort: UInt16 = 0
    var remoteAddress: IPv4Address?
    var remotePort: UInt16 = 0
    var scratch: [DatagramRecord] = []
    /// Set once detach has sent what was queued: later output messages do nothing.
    var detached = false
    /// The local address came from connect (the route's source), not from bind: disconnect
    /// gives it back, as Linux does.
    var addressFromConnect = false
    // Shared.
    let names = LockedValue<(local: SocketAddress, peer: SocketAddress?)>((.ipv4(.unspecified, port: 0), nil))
    /// SO_BROADCAST (set by the user, read by the sender).
    package let allowsBroadcast = Atomic<Bool>(false)
    /// An output message is queued on the owner (the coalesced *output* message).
    let outputPending = Atomic<Bool>(false)
    private(set) var outputMessage: UDPOutputMessage?

    init(socket: Socket, owner: InetThread, udp: UDPProtocol) {
        self.socket = socket
        self.owner = owner
        outputMessage = UDPOutputMessage(socket: socket, udp: udp)
    }
}

/// The embedded output message of one UDP socket: posting it allocates nothing. Each post holds
/// one reference on the socket, dropped when it has run.
package final class UDPOutputMessage: EmbeddedMessage, @unchecked Sendable {
    unowned(unsafe) let socket: Socket
    unowned let udp: UDPProtocol

    init(socket: Socket, udp: UDPProtocol) {
        self.socket = socket
        self.udp = udp
    }

    package func handle() {
        let held = Unmanaged.passUnretained(socket)
        udp.runOutput(socket)
        held.release()
    }
}

extension NetError {
    /// EACCES: a broadcast without SO_BROADCAST.
    public static let permissionDenied = NetError(rawValue: 13)
}

/// UDP (RFC 768) over the socket layer.
///
/// A send copies the payload into a pooled chunk with room for the headers, outside any lock,
/// queues it on the socket's send buffer (which bounds what waits for the owner), and posts the
/// socket's one output message if none is pending; the owner builds UDP and IP headers in place
/// and hands the frame to the interface. Input appends a zero-copy slice of the frame to the
/// receive buffer of the socket the thread's tables name.
package final class UDPProtocol: SocketProtocol, @unchecked Sendable {
    static let defaultReceiveBufferSize = 256 << 10
    static let defaultSendBufferSize = 256 << 10
    package static let maximumPayload = 65507
    static let headroom = InetThread.headroom + UDPHeader.length

    let inet: InetStack
    /// `inet.devicePolling` unretained (the stack keeps it): asked by every socket wait.
    private let devicePollingReference: Unmanaged<DevicePolling>

    /// A thread waiting on one of these sockets polls the stack's devices while it spins.
    package var busyPolling: (any BusyPolling)? { inet.devicePolling.isEmpty ? nil : inet.devicePolling }
    package var mayBusyPoll: Bool { devicePollingReference._withUnsafeGuaranteedRef { !$0.isEmpty } }

    package init(inet: InetStack) {
        self.inet = inet
        devicePollingReference = Unmanaged.passUnretained(inet.devicePolling)
    }

    @inline(__always) private func block(_ socket: Socket) -> UDPControlBlock {
        guard let block = socket.controlBlock else { preconditionFailure("UDP socket without control block") }
        return unsafeDowncast(block, to: UDPControlBlock.self)
    }

    package func makeSocket(registry: SocketRegistry) throws(NetError) -> Socket {
        let owner = inet.nextOwnerThread()
        let socket = Socket(
            domain: .inet, type: .datagram, registry: registry, proto: self, owner: owner.thread,
            receiveSize: UDPProtocol.defaultReceiveBufferSize, sendSize: UDPProtocol.defaultSendBufferSize)
        try attach(socket)
        return socket
    }

    package func attach(_ socket: Socket) throws(NetError) {
        guard let thread = socket.owner as? ProtocolThread, thread.index < inet.perThread.count else {
            throw .invalidArgument
        }
        socket.controlBlock = UDPControlBlock(socket: socket, owner: inet.perThread[thread.index], udp: self)
    }

    // MARK: Tables (owner thread posts to every thread)

    private func publish(_ block: UDPControlBlock) {
        let binding = UDPBinding(
            socket: block.socket, localAddress: block.localAddress, localPort: block.localPort,
            remoteAddress: block.remoteAddress, remotePort: block.remotePort)
        block.names.withLock {
            $0 = (
                .ipv4(block.localAddress, port: block.localPort),
                block.remoteAddress.map { SocketAddress.ipv4($0, port: block.remotePort) }
            )
        }
        for state in inet.perThread {
            if state.thread.isCurrent {
                state.installBinding(binding)
            } else {
                state.thread.send { state.installBinding(binding) }
            }
        }
    }

    private func unpublish(_ socket: Socket) {
        let id = ObjectIdentifier(socket)
        for state in inet.perThread {
            if state.thread.isCurrent {
                state.removeBinding(id)
            } else {
                state.thread.send { state.removeBinding(id) }
            }
        }
    }

    // MARK: Control requests (owner thread)

    package func detach(_ socket: Socket) {
        let block = block(socket)
        // Datagrams a send already accepted still leave: send them before the port goes.
        while socket.sendBuffer.recordCount.load(ordering: .sequentiallyConsistent) > 0 {
            runOutput(socket)
        }
        block.detached = true
        if block.localPort != 0 {
            inet.releasePort(block.localPort, address: block.localAddress)
            unpublish(socket)
        }
        block.localPort = 0
        block.remoteAddress = nil
    }

    private func ipv4(_ address: SocketAddress) throws(NetError) -> (IPv4Address, UInt16) {
        guard case .ipv4(let host, let port) = address else { throw .addressFamilyNotSupported }
        return (host, port)
    }

    package func bind(_ socket: Socket, to address: SocketAddress) throws(NetError) {
        let block = block(socket)
        let (host, port) = try ipv4(address)
        if block.localPort != 0 { throw .invalidArgument }
        let config = block.owner.config
        if !host.isUnspecified && !config.isLocal(host) && !host.isLoopback && !host.isBroadcast {
            throw .addressNotAvailable
        }
        block.localPort = try inet.reservePort(port, address: host)
        block.localAddress = host
        publish(block)
        socket.state.set(.bound)
    }

    package func connect(_ socket: Socket, to address: SocketAddress) throws(NetError) {
        let block = block(socket)
        let (host, port) = try ipv4(address)
        if host.isUnspecified || port == 0 { throw .invalidArgument }
        let config = block.owner.config
        guard let hop = config.route(to: host, from: block.localAddress.isUnspecified ? nil : block.localAddress)
        else { throw .networkUnreachable }
        if config.isBroadcastDestination(host, hop: hop) && !block.allowsBroadcast.load(ordering: .relaxed) {
            throw .permissionDenied
        }
        if let error = InetConfiguration.outputSourceError(hop) { throw error }
        if block.localPort == 0 {
            block.localPort = try inet.reservePort(0, address: .unspecified)
            socket.state.set(.bound)
        }
        if block.localAddress.isUnspecified {
            // Connected: the local address becomes the route's source, and the port's
            // reservation moves from the wildcard to it in one step.
            inet.moveReservation(block.localPort, from: .unspecified, to: hop.source)
            block.localAddress = hop.source
            block.addressFromConnect = true
        }
        block.remoteAddress = host
        block.remotePort = port
        publish(block)
        _ = socket.takeError()
        socket.state.set(.connected)
    }

    package func disconnect(_ socket: Socket) throws(NetError) {
        let block = block(socket)
        guard block.remoteAddress != nil else { throw .notConnected }
        block.remoteAddress = nil
        block.remotePort = 0
        if block.addressFromConnect {
            inet.moveReservation(block.localPort, from: block.localAddress, to: .unspecified)
            block.localAddress = .unspecified
            block.addressFromConnect = false
        }
        publish(block)
        socket.state.clear(.connected)
    }

    package func listen(_ socket: Socket, backlog: Int) throws(NetError) { throw .notSupported }
    package func connectPair(_ first: Socket, _ second: Socket) throws(NetError) { throw .notSupported }
    package func accept(_ child: Socket) throws(NetError) { throw .notSupported }
    package func shutdownSend(_ socket: Socket) {}
    package func shutdownReceive(_ socket: Socket) { socket.receiveBuffer.wake() }
    package func received(_ socket: Socket, count: Int) {}
    package func abort(_ socket: Socket) {}
    package func checkState(_ socket: Socket) {}

    package func isWritable(_ socket: Socket) -> Bool { socket.sendBuffer.room > 0 || socket.hasError }

    package func localAddress(_ socket: Socket) -> SocketAddress { block(socket).names.withLock { $0.local } }

    package func peerAddress(_ socket: Socket) throws(NetError) -> SocketAddress {
        guard let peer = block(socket).names.withLock({ $0.peer }) else { throw .notConnected }
        return peer
    }

    // MARK: Send (user thread)

    package func send(_ socket: Socket, _ bytes: UnsafeRawBufferPointer, to address: SocketAddress?) throws(NetError)
        -> SendProgress
    {
        let block = block(socket)
        let now = socket.state.value
        if now.contains(.cantSendMore) { throw .brokenPipe }
        if let address {
            let (host, port) = try ipv4(address)
            if port == 0 || host.isUnspecified { throw .invalidArgument }
            // As sendto(2) does: no route is an error now, not a silent drop later.
            let config = inet.configuration
            var from: IPv4Address?
            if case .ipv4(let bound, _) = block.names.withLock({ $0.local }), !bound.isUnspecified { from = bound }
            guard let hop = config.route(to: host, from: from) else { throw .networkUnreachable }
            if config.isBroadcastDestination(host, hop: hop) && !block.allowsBroadcast.load(ordering: .relaxed) {
                throw .permissionDenied
            }
            if let error = InetConfiguration.outputSourceError(hop) { throw error }
        } else if !now.contains(.connected) {
            throw .destinationRequired
        }
        let count = bytes.count
        if count > UDPProtocol.maximumPayload { throw .messageTooLong }
        let buffer = socket.sendBuffer
        let highWater = buffer.highWater.load(ordering: .relaxed)
        let charge = DatagramRecord.charge(forPayload: count)
        if charge > highWater { throw .messageTooLong }
        if buffer.room < charge { return .mustWait(buffer, .sendRoom(bytes: charge)) }
        // Copy outside the lock, with room in front for the link, IP and UDP headers.
        let chunk = ChunkPool.shared.take(atLeast: Swift.max(1, count), headroom: UDPProtocol.headroom)
        if let source = bytes.baseAddress, count > 0 {
            (chunk.base + UDPProtocol.headroom).copyMemory(from: source, byteCount: count)
        }
        chunk.filled = UDPProtocol.headroom + count
        var data = BufferChain()
        data.append(ByteSlice(chunk: chunk, start: UDPProtocol.headroom, end: UDPProtocol.headroom + count))
        let record = DatagramRecord(data: data, source: address ?? .unnamed)
        buffer.lock.lock()
        guard highWater - buffer.byteCount.load(ordering: .relaxed) >= charge else {
            buffer.lock.unlock()
            return .mustWait(buffer, .sendRoom(bytes: charge))
        }
        buffer.records.append(record)
        buffer.recordCount.add(1, ordering: .sequentiallyConsistent)
        buffer.byteCount.add(charge, ordering: .sequentiallyConsistent)
        buffer.lock.unlock()
        if !block.outputPending.exchange(true, ordering: .sequentiallyConsistent), let message = block.outputMessage {
            let held = Unmanaged.passUnretained(socket).retain()
            if !block.owner.thread.post(message) {
                held.release()
                throw .shutdown
            }
        }
        return .sent(count)
    }

    // MARK: Output (owner thread)

    /// Datagrams one run of the output message sends before it yields to the thread's other
    /// messages (and the end-of-batch flush), so a steady sender's frames leave in batches of
    /// this size rather than all at once when it pauses.
    static let outputBatch = 32

    func runOutput(_ socket: Socket) {
        let block = block(socket)
        guard !block.detached else { return }
        block.outputPending.store(false, ordering: .sequentiallyConsistent)
        let buffer = socket.sendBuffer
        buffer.lock.lock()
        var bytes = 0
        while block.scratch.count < UDPProtocol.outputBatch, let record = buffer.records.popFirst() {
            bytes += record.charge
            block.scratch.append(record)
        }
        let taken = block.scratch.count
        let more = !buffer.records.isEmpty
        var wakes = WakeList()
        if taken > 0 {
            buffer.recordCount.subtract(taken, ordering: .sequentiallyConsistent)
            buffer.byteCount.subtract(bytes, ordering: .sequentiallyConsistent)
            buffer.collectSatisfiedLocked(into: &wakes)
        }
        buffer.lock.unlock()
        guard taken > 0 else { return }
        wakes.publishAll()
        for record in block.scratch { output(record, block: block) }
        block.scratch.clearKeepingCapacity()
        buffer.observers?.notify()
        // More queued: run again after the messages already waiting (one reference per post).
        if more, !block.outputPending.exchange(true, ordering: .sequentiallyConsistent),
            let message = block.outputMessage
        {
            let held = Unmanaged.passUnretained(socket).retain()
            if !block.owner.thread.post(message) { held.release() }
        }
    }

    private func output(_ record: DatagramRecord, block: UDPControlBlock) {
        let state = block.owner
        let destination: IPv4Address
        let port: UInt16
        if case .ipv4(let host, let p) = record.source {
            destination = host
            port = p
        } else if let remote = block.remoteAddress {
            destination = remote
            port = block.remotePort
        } else {
            return
        }
        if block.localPort == 0 {
            guard let reserved = try? inet.reservePort(0, address: .unspecified) else { return }
            block.localPort = reserved
            block.socket.state.set(.bound)
            publish(block)
        }
        guard
            let hop = state.config.route(
                to: destination, from: block.localAddress.isUnspecified ? nil : block.localAddress)
        else {
            state.count(.ipNoRoute)
            if block.remoteAddress != nil { block.socket.setError(.networkUnreachable) }
            return
        }
        if InetConfiguration.outputSourceError(hop) != nil {
            state.count(.ipMartianSourceOut)
            return
        }
        // The payload is the only slice of a chunk with the headers' room in front.
        let count = record.data.count
        var chunk: ByteChunk
        var start: Int
        if record.data.sliceCount == 1, let slice = record.data.slices.first, slice.start >= UDPProtocol.headroom {
            chunk = slice.chunk
            start = slice.start
        } else {
            chunk = ChunkPool.shared.take(atLeast: Swift.max(1, count), headroom: UDPProtocol.headroom)
            record.data.copyOut(into: mutableRegion(chunk, UDPProtocol.headroom, count))
            chunk.filled = UDPProtocol.headroom + count
            start = UDPProtocol.headroom
        }
        let header = UDPHeader(sourcePort: block.localPort, destinationPort: port)
        let skip = state.checksumsSkipped(hop.interfaceIndex)
        guard
            (try? header.emit(
                into: mutableRegion(chunk, start - UDPHeader.length, UDPHeader.length + count), payloadLength: count,
                source: hop.source, destination: destination, computeChecksum: !skip)) != nil
        else { return }
        state.count(.udpOut)
        if let error = state.outputIP(
            chunk: chunk, payloadStart: start - UDPHeader.length, payloadEnd: start + count, protocol: .udp, hop: hop,
            destination: destination), block.remoteAddress != nil
        {
            block.socket.setError(error)
        }
    }
}

/// UDP tables and input on a protocol thread.
extension InetThread {
    func installBinding(_ binding: UDPBinding) {
        removeBinding(ObjectIdentifier(binding.socket))
        udpBySocket[ObjectIdentifier(binding.socket)] = binding
        udpBound[binding.localPort, default: []].append(binding)
        if let key = binding.flowKey { udpConnected[key] = binding }
    }

    func removeBinding(_ id: ObjectIdentifier) {
        guard let old = udpBySocket.removeValue(forKey: id) else { return }
        if var list = udpBound[old.localPort] {
            list.removeAll { $0 === old }
            udpBound[old.localPort] = list.isEmpty ? nil : list
        }
        if let key = old.flowKey, udpConnected[key] === old { udpConnected[key] = nil }
    }

    func udpInput(_ datagram: InboundDatagram) {
        let payload = datagram.payload
        let header = datagram.header
        guard
            case .success(let udp) = UDPHeader.parse(
                payload, source: header.source, destination: header.destination,
                verifyChecksum: !transportChecksumSkipped(datagram))
        else {
            count(.udpMalformed)
            return
        }
        count(.udpIn)
        let start = datagram.payloadStart + udp.payloadRange.lowerBound
        let end = datagram.payloadStart + udp.payloadRange.upperBound
        let source = SocketAddress.ipv4(header.source, port: udp.header.sourcePort)
        let port = udp.header.destinationPort
        if datagram.destinationIsBroadcast {
            var delivered = false
            for binding in udpBound[port] ?? []
            where binding.remoteAddress == nil
                && (binding.localAddress.isUnspecified || binding.localAddress == header.destination
                    || binding.localAddress.isBroadcast)
            {
                deliverUDP(to: binding.socket, chunk: datagram.chunk, start: start, end: end, source: source)
                delivered = true
            }
            if !delivered { count(.udpNoPort) }
            return
        }
        let key = UDPFlowKey(
            localAddress: header.destination, localPort: port, remoteAddress: header.source,
            remotePort: udp.header.sourcePort)
        if let binding = udpConnected[key] {
            deliverUDP(to: binding.socket, chunk: datagram.chunk, start: start, end: end, source: source)
            return
        }
        var best: UDPBinding?
        for binding in udpBound[port] ?? [] where binding.remoteAddress == nil {
            if binding.localAddress == header.destination {
                best = binding
                break
            }
            if binding.localAddress.isUnspecified { best = binding }
        }
        guard let best else {
            count(.udpNoPort)
            sendICMPError(.destinationUnreachable(code: .portUnreachable, nextHopMTU: 0), about: datagram)
            return
        }
        deliverUDP(to: best.socket, chunk: datagram.chunk, start: start, end: end, source: source)
    }

    /// Queues a zero-copy slice of the frame for the socket; `flushDeliveries` appends it.
    private func deliverUDP(to socket: Socket, chunk: ByteChunk, start: Int, end: Int, source: SocketAddress) {
        if socket.state.containsAny([.cantReceiveMore, .noFileReference]) {
            count(.udpBufferFull)
            return
        }
        var data = BufferChain()
        data.append(ByteSlice(chunk: chunk, start: start, end: end))
        pendingDeliveries.append(
            PendingDelivery(socket: socket, record: DatagramRecord(data: data, source: source), length: end - start))
    }

    /// Appends the datagrams queued by this batch of input: one lock, one wake-up and one
    /// readiness event per run of datagrams for the same socket, readers woken after the lock
    /// is dropped. A datagram that does not fit is dropped (as UDP does).
    func flushDeliveries() {
        guard !pendingDeliveries.isEmpty else { return }
        swap(&pendingDeliveries, &deliveriesInFlight)
        let total = deliveriesInFlight.count
        var index = 0
        while index < total {
            let socket = deliveriesInFlight[index].socket
            var end = index + 1
            while end < total && deliveriesInFlight[end].socket === socket { end += 1 }
            if socket.state.containsAny([.cantReceiveMore, .noFileReference]) {
                // Closed or shut down since the datagrams were matched.
                count(.udpBufferFull, end - index)
                index = end
                continue
            }
            let buffer = socket.receiveBuffer
            let highWater = buffer.highWater.load(ordering: .relaxed)
            var delivered = 0
            var bytes = 0
            buffer.lock.lock()
            var held = buffer.byteCount.load(ordering: .relaxed)
            for position in index..<end
            where highWater - held >= DatagramRecord.charge(forPayload: deliveriesInFlight[position].length) {
                let item = deliveriesInFlight[position]
                let charge = DatagramRecord.charge(forPayload: item.length)
                buffer.records.append(item.record)
                held += charge
                bytes += charge
                delivered += 1
            }
            var wakes = WakeList()
            if delivered > 0 {
                buffer.recordCount.add(delivered, ordering: .sequentiallyConsistent)
                buffer.byteCount.add(bytes, ordering: .sequentiallyConsistent)
                buffer.collectSatisfiedLocked(into: &wakes)
            }
            buffer.lock.unlock()
            if delivered > 0 {
                wakes.publishAll()
                buffer.observers?.notify()
            }
            count(.udpDelivered, delivered)
            count(.udpBufferFull, end - index - delivered)
            index = end
        }
        deliveriesInFlight.clearKeepingCapacity()
    }

    /// An ICMP error about a datagram one of our connected sockets sent.
    func udpError(_ message: ICMPMessage, quote: ICMPQuotedDatagram) {
        let key = UDPFlowKey(
            localAddress: quote.header.source, localPort: quote.sourcePort, remoteAddress: quote.header.destination,
            remotePort: quote.destinationPort)
        guard let binding = udpConnected[key], let error = message.transportError else { return }
        binding.socket.setError(error)
        binding.socket.receiveBuffer.wake()
        binding.socket.sendBuffer.wake()
    }
}
