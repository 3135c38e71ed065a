/// The local domain (DragonFly's `uipc_usrreq`): in-process stream and datagram sockets named
/// in the stack's own namespace.
///
/// Its owner is a synchronous port: requests run inline in the caller's thread under the
/// domain's lock (the namespace and who is connected to whom) and each control block's lock.
/// A sender appends straight into its peer's receive buffer, so a round trip needs no
/// protocol-thread hop; waits are the same predicate messages, resolved under the buffer lock.
final class LocalDomain: SocketProtocol, @unchecked Sendable {
    /// Receive buffer of a local stream socket; it also bounds what a writer has in flight. A
    /// megabyte lets a fast writer run ahead a few of its 64 KiB writes, so the two sides meet
    /// (and wake each other) a quarter-megabyte at a time.
    static let defaultStreamBufferSize = 1 << 20
    /// Receive buffer of a local datagram socket; also the largest datagram.
    static let defaultDatagramBufferSize = 208 << 10
    /// Writes up to this size copy into the receiver's tail chunk under its lock when it has
    /// room; larger ones are copied into fresh chunks before the lock is taken.
    static let tailCopyLimit = 512
    /// The largest chunk a write fills at once.
    static let largestChunk = ChunkPool.sizeClasses[ChunkPool.sizeClasses.count - 1]

    private let lock = NetLock()
    private var names: [String: Socket] = [:]  // under lock

    @inline(__always) private func block(_ socket: Socket) -> LocalControlBlock {
        guard let block = socket.controlBlock else { preconditionFailure("local socket without control block") }
        return unsafeDowncast(block, to: LocalControlBlock.self)
    }

    func makeSocket(type: SocketType, context: StackContext) throws(NetError) -> Socket {
        let size = type == .stream ? LocalDomain.defaultStreamBufferSize : LocalDomain.defaultDatagramBufferSize
        let socket = Socket(
            domain: .local, type: type, context: context, proto: self, owner: context.localOwner(),
            receiveSize: size, sendSize: size)
        try attach(socket)
        return socket
    }

    // MARK: Control requests

    func attach(_ socket: Socket) throws(NetError) {
        socket.controlBlock = LocalControlBlock(socket: socket)
    }

    func detach(_ socket: Socket) {
        let block = block(socket)
        let peer: Socket? = lock.withLock {
            if let name = block.boundName, names[name] === socket { names[name] = nil }
            return unlinkLocked(socket)
        }
        if let peer { peerWentAway(peer) }
    }

    /// Drops the links between `socket` and its peer (under the domain lock). Returns a stream
    /// peer that must be told.
    private func unlinkLocked(_ socket: Socket) -> Socket? {
        let block = block(socket)
        guard let peer = block.peer else { return nil }
        // State first, links second: whoever finds the link gone also finds the state that
        // says why.
        if socket.state.contains(.connected) {
            socket.state.set(.disconnected)
            socket.state.clear(.connected)
        }
        guard socket.type == .stream else {
            block.setPeer(nil)
            return nil
        }
        let peerBlock = self.block(peer)
        let linkedBack = peerBlock.peer === socket
        if linkedBack {
            // The other end of a stream closed: end-of-file for its reader, brokenPipe for its
            // writer.
            peer.state.set([.cantReceiveMore, .cantSendMore, .disconnected])
            peer.state.clear(.connected)
        }
        block.setPeer(nil)
        if linkedBack { peerBlock.setPeer(nil) }
        return linkedBack ? peer : nil
    }

    /// Wakes the other end of a stream that went away (after the domain lock is dropped).
    private func peerWentAway(_ peer: Socket) {
        peer.receiveBuffer.wake()
        peer.sendBuffer.wake()
    }

    func bind(_ socket: Socket, to address: SocketAddress) throws(NetError) {
        let name = try validName(address)
        let block = block(socket)
        try lock.withLock { () throws(NetError) in
            if block.boundName != nil { throw .invalidArgument }
            if names[name] != nil { throw .addressInUse }
            names[name] = socket
            block.setBoundName(name)
        }
        socket.state.set(.bound)
    }

    private func validName(_ address: SocketAddress) throws(NetError) -> String {
        guard case .local(let name) = address else { throw .invalidArgument }
        if name.isEmpty || name.utf8.contains(0) { throw .invalidArgument }
        if name.utf8.count > SocketAddress.maximumLocalNameLength { throw .nameTooLong }
        return name
    }

    func listen(_ socket: Socket, backlog: Int) throws(NetError) {
        guard socket.type == .stream else { throw .notSupported }
        guard block(socket).boundName != nil else { throw .destinationRequired }
        socket.state.set(.listening)
    }

    func connect(_ socket: Socket, to address: SocketAddress) throws(NetError) {
        let name = try validName(address)
        let block = block(socket)
        let listener: Socket? = try lock.withLock { () throws(NetError) -> Socket? in
            guard let target = names[name], target.type == socket.type,
                !target.state.contains(.noFileReference)
            else { throw .connectionRefused }
            if socket.type == .datagram {
                block.setPeer(target)
                socket.state.set(.connected)
                return nil
            }
            guard target.state.contains(.listening), let queue = target.listenQueue else {
                throw .connectionRefused
            }
            // Checked under the domain lock: two racing connects make one connection.
            if block.peer != nil { throw .alreadyConnected }
            let child = Socket(
                domain: .local, type: .stream, context: socket.context, proto: self,
                owner: socket.context.localOwner(),
                receiveSize: target.receiveBuffer.highWater.load(ordering: .relaxed),
                sendSize: target.sendBuffer.highWater.load(ordering: .relaxed))
            let childBlock = LocalControlBlock(socket: child)
            child.controlBlock = childBlock
            childBlock.inheritedName = name
            // The peer is linked before the child can be seen on the complete queue.
            childBlock.setPeer(socket)
            child.state.set(.connected)
            block.setPeer(child)
            socket.state.set(.connected)
            guard queue.addComplete(child) else {
                block.setPeer(nil)
                childBlock.setPeer(nil)
                socket.state.clear(.connected)
                child.state.set(.noFileReference)
                throw .connectionRefused
            }
            return target
        }
        listener?.receiveBuffer.wake()
    }

    func connectPair(_ first: Socket, _ second: Socket) throws(NetError) {
        guard first.type == second.type else { throw .invalidArgument }
        lock.withLock {
            block(first).setPeer(second)
            block(second).setPeer(first)
            first.state.set(.connected)
            second.state.set(.connected)
        }
    }

    func accept(_ child: Socket) throws(NetError) {}

    func disconnect(_ socket: Socket) throws(NetError) {
        let peer = lock.withLock { unlinkLocked(socket) }
        if let peer { peerWentAway(peer) }
    }

    func abort(_ socket: Socket) {
        try? disconnect(socket)
    }

    func shutdownSend(_ socket: Socket) {
        guard socket.type == .stream, let peer = block(socket).peer else { return }
        peer.state.set(.cantReceiveMore)
        peer.receiveBuffer.wake()
    }

    func shutdownReceive(_ socket: Socket) {
        socket.receiveBuffer.wake()
        guard socket.type == .stream, let peer = block(socket).peer else { return }
        // As on Linux: the peer's later writes fail with brokenPipe.
        peer.state.set(.cantSendMore)
        peer.sendBuffer.wake()
    }

    func checkState(_ socket: Socket) {}

    func isWritable(_ socket: Socket) -> Bool {
        let now = socket.state.value
        if now.containsAny([.cantSendMore, .disconnected, .noFileReference]) || socket.hasError { return true }
        guard let peer = block(socket).peer else { return socket.type == .datagram }
        if peer.state.containsAny([.cantReceiveMore, .noFileReference]) { return true }
        let setting = socket.sendBuffer.lowWaterSetting.load(ordering: .relaxed)
        let lowWater = setting > 0 ? setting : (socket.type == .stream ? peer.receiveBuffer.sendLowWater : 1)
        return peer.receiveBuffer.room >= Swift.min(lowWater, peer.receiveBuffer.highWater.load(ordering: .relaxed))
    }

    func localAddress(_ socket: Socket) -> SocketAddress { block(socket).sourceAddress }

    func peerAddress(_ socket: Socket) throws(NetError) -> SocketAddress {
        guard let peer = block(socket).peer else { throw .notConnected }
        return block(peer).sourceAddress
    }

    // MARK: Data path

    func received(_ socket: Socket, count: Int) {
        // The peer may be writable again (a datagram sender only when it is linked back, as a
        // socketpair is; blocked writers of any kind are woken by the buffer itself).
        guard let peer = block(socket).peer else { return }
        peer.observers.notify()
    }

    func send(_ socket: Socket, _ bytes: UnsafeRawBufferPointer, to address: SocketAddress?) throws(NetError)
        -> SendProgress
    {
        socket.type == .stream
            ? try sendStream(socket, bytes, to: address) : try sendDatagram(socket, bytes, to: address)
    }

    private func sendStream(_ socket: Socket, _ bytes: UnsafeRawBufferPointer, to address: SocketAddress?)
        throws(NetError) -> SendProgress
    {
        let now = socket.state.value
        if address != nil { throw now.contains(.connected) ? .alreadyConnected : .notConnected }
        if now.contains(.cantSendMore) { throw .brokenPipe }
        guard let peer = block(socket).peer else {
            throw socket.state.containsAny([.disconnected, .cantSendMore]) ? .brokenPipe : .notConnected
        }
        if peer.state.containsAny([.cantReceiveMore, .noFileReference]) { throw .brokenPipe }
        if bytes.isEmpty { return .sent(0) }
        let buffer = peer.receiveBuffer
        let highWater = buffer.highWater.load(ordering: .relaxed)

        if bytes.count <= LocalDomain.tailCopyLimit {
            try lockForAppend(buffer, of: peer)
            if highWater - buffer.chain.count >= bytes.count {
                let n = buffer.chain.appendIntoTailRoom(bytes)
                if n > 0 { return .sent(finishAppendLocked(buffer, n)) }
            }
            buffer.lock.unlock()
        }

        let estimate = Swift.min(bytes.count, highWater - buffer.byteCount.load(ordering: .sequentiallyConsistent))
        if estimate <= 0 { return .mustWait(buffer, writeCondition(socket, peer: peer, remaining: bytes.count)) }
        // Copy into a fresh chunk before taking the lock; one chunk per call keeps the path free
        // of allocation (the caller loops for the rest).
        guard let source = bytes.baseAddress else { return .sent(0) }
        let chunk = ChunkPool.shared.take(atLeast: Swift.min(estimate, LocalDomain.largestChunk))
        let length = Swift.min(estimate, chunk.room)
        (chunk.base + chunk.filled).copyMemory(from: source, byteCount: length)
        let start = chunk.filled
        chunk.filled += length
        try lockForAppend(buffer, of: peer)
        let room = highWater - buffer.chain.count
        guard room > 0 else {
            // Another writer took the room meanwhile (rare); the copy is dropped.
            buffer.lock.unlock()
            return .mustWait(buffer, writeCondition(socket, peer: peer, remaining: bytes.count))
        }
        let n = Swift.min(room, length)
        buffer.chain.append(ByteSlice(chunk: chunk, start: start, end: start + n))
        return .sent(finishAppendLocked(buffer, n))
    }

    /// Locks the peer's receive buffer for an append, unless the peer stopped reading. Checked
    /// under the lock: a reader that shuts down sets its bit before it flushes under this lock,
    /// so nothing lands in a buffer nobody will read.
    @inline(__always) private func lockForAppend(_ buffer: SocketBuffer, of peer: Socket) throws(NetError) {
        buffer.lock.lock()
        if peer.state.containsAny([.cantReceiveMore, .noFileReference]) {
            buffer.lock.unlock()
            throw .brokenPipe
        }
    }

    /// After bytes were appended under `buffer.lock`: publishes the count, wakes readers after
    /// dropping the lock, tells observers.
    @inline(__always) private func finishAppendLocked(_ buffer: SocketBuffer, _ n: Int) -> Int {
        buffer.byteCount.store(buffer.chain.count, ordering: .sequentiallyConsistent)
        var wakes = WakeList()
        buffer.collectSatisfiedLocked(into: &wakes)
        buffer.lock.unlock()
        wakes.publishAll()
        buffer.observers.notify()
        return n
    }

    private func writeCondition(_ socket: Socket, peer: Socket, remaining: Int) -> WaitCondition {
        let setting = socket.sendBuffer.lowWaterSetting.load(ordering: .relaxed)
        let lowWater = setting > 0 ? setting : peer.receiveBuffer.sendLowWater
        let limit = Swift.max(1, peer.receiveBuffer.highWater.load(ordering: .relaxed))
        return .room(in: peer, bytes: Swift.min(remaining, lowWater, limit))
    }

    private func sendDatagram(_ socket: Socket, _ bytes: UnsafeRawBufferPointer, to address: SocketAddress?)
        throws(NetError) -> SendProgress
    {
        let block = block(socket)
        let (connectedPeer, source) = block.peerAndSource
        let target: Socket
        if let address {
            let name = try validName(address)
            if connectedPeer != nil { throw .alreadyConnected }
            guard let found = lock.withLock({ names[name] }), found.type == .datagram else {
                throw .connectionRefused
            }
            target = found
        } else {
            guard let connectedPeer else { throw .destinationRequired }
            target = connectedPeer
        }
        if socket.state.contains(.cantSendMore) { throw .brokenPipe }
        if target.state.contains(.noFileReference) {
            // The connected peer is gone: forget it, as Linux does, so the socket can be reused.
            if address == nil { try? disconnect(socket) }
            throw .connectionRefused
        }
        if target.state.contains(.cantReceiveMore) { throw .brokenPipe }
        let buffer = target.receiveBuffer
        let highWater = buffer.highWater.load(ordering: .relaxed)
        let charge = DatagramRecord.charge(forPayload: bytes.count)
        if charge > highWater { throw .messageTooLong }
        // A blocked sender waits for a quarter of the buffer (or its datagram, if larger), so a
        // full receiver does not wake it once per datagram it takes.
        let wait = WaitCondition.room(in: target, bytes: Swift.max(charge, buffer.sendLowWater))
        if buffer.room < charge { return .mustWait(buffer, wait) }
        let record = DatagramRecord(data: BufferChain(copying: bytes), source: source)
        buffer.lock.lock()
        if target.state.containsAny([.cantReceiveMore, .noFileReference]) {
            buffer.lock.unlock()
            throw target.state.contains(.noFileReference) ? .connectionRefused : .brokenPipe
        }
        guard highWater - buffer.byteCount.load(ordering: .relaxed) >= charge else {
            buffer.lock.unlock()
            return .mustWait(buffer, wait)
        }
        buffer.records.append(record)
        buffer.recordCount.add(1, ordering: .sequentiallyConsistent)
        buffer.byteCount.add(charge, ordering: .sequentiallyConsistent)
        var wakes = WakeList()
        buffer.collectSatisfiedLocked(into: &wakes)
        buffer.lock.unlock()
        wakes.publishAll()
        buffer.observers.notify()
        return .sent(bytes.count)
    }
}
