import NetMPRuntime
import NetMPSockets

/// The data path: a sender appends straight into its peer's receive buffer.
extension LocalDomain {
    /// Writable: a stream write of the low-water mark fits in the peer's buffer; a datagram
    /// socket's next `dontWait` send of its typical datagram (the size it last sent, or the
    /// send low-water mark if larger) fits whole.
    package func isWritable(_ socket: Socket) -> Bool {
        let now = socket.state.value
        if now.containsAny([.cantSendMore, .disconnected, .noFileReference]) || socket.hasError { return true }
        let block = block(socket)
        guard let peer = block.peer else { return socket.type == .datagram }
        if peer.state.containsAny([.cantReceiveMore, .noFileReference]) { return true }
        let setting = socket.sendBuffer.lowWaterSetting.load(ordering: .relaxed)
        let buffer = peer.receiveBuffer
        if socket.type == .datagram {
            let typical = Swift.max(block.lastDatagramSize.load(ordering: .relaxed), setting)
            return buffer.room >= DatagramRecord.charge(forPayload: typical)
        }
        let lowWater = setting > 0 ? setting : buffer.sendLowWater
        return buffer.room >= Swift.min(lowWater, buffer.highWater.load(ordering: .relaxed))
    }

    /// The reader took data: writers may have room again. Blocked writers are woken by the
    /// buffer itself; pollers are told by `tellWritersOfRoom`, here or (sockets on protocol
    /// threads) by the reader's owner.
    package func received(_ socket: Socket, count: Int) {
        if routesThroughOwners {
            postReceived(socket)
        } else {
            tellWritersOfRoom(socket)
        }
    }

    /// Tells the pollers of whoever writes to `socket`: a stream's peer, or every datagram
    /// socket connected to it (linked back or not).
    func tellWritersOfRoom(_ socket: Socket) {
        // No socket of the stack has pollers yet: nobody to tell. (Read after the reader's
        // change, its byte count stored under the buffer's lock; see `observersMade`.)
        guard socket.registry.observersMade.load(ordering: .sequentiallyConsistent) else { return }
        let block = block(socket)
        guard socket.type == .datagram else {
            let linked: Bool? = block.streamPeer.withLoaded { link in
                link.receiveBuffer.observers?.notify()
                return true
            }
            if linked == nil { block.peer?.observers?.notify() }
            return
        }
        block.notifySenders()
    }

    package func send(_ socket: Socket, _ bytes: UnsafeRawBufferPointer, to address: SocketAddress?) throws(NetError)
        -> SendProgress
    {
        if routesThroughOwners && ProtocolThread.current == nil { return try sendOnOwner(socket, bytes, to: address) }
        return try sendHere(socket, bytes, to: address)
    }

    /// The send itself, on the caller (a synchronous port) or on the owner.
    func sendHere(_ socket: Socket, _ bytes: UnsafeRawBufferPointer, to address: SocketAddress?) throws(NetError)
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
        let block = block(socket)
        // A small write copies into the tail room of the peer's buffer (a drained buffer keeps
        // its small last chunk's: `SocketBuffer.keepsTailRoom`; a ping-pong's every write),
        // reaching the peer through the link kept since the connect: no control-block lock.
        if bytes.count <= LocalDomain.tailCopyLimit, !bytes.isEmpty, !now.contains(.disconnected) {
            switch block.streamPeer.withLoaded({ link in appendIntoTailRoom(of: link, bytes) }) {
            case .appended(let n): return .sent(n)
            case .peerStoppedReading: throw .brokenPipe
            case .noRoom, nil: break
            }
        }
        guard let peer = block.peer else {
            throw socket.state.containsAny([.disconnected, .cantSendMore]) ? .brokenPipe : .notConnected
        }
        if peer.state.containsAny([.cantReceiveMore, .noFileReference]) { throw .brokenPipe }
        if bytes.isEmpty { return .sent(0) }
        let buffer = peer.receiveBuffer
        let highWater = buffer.highWater.load(ordering: .relaxed)

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
        try lockForAppend(buffer, peerState: peer.state)
        let room = highWater - buffer.chain.count
        guard room > 0 else {
            // Another writer took the room meanwhile (rare); the copy is dropped.
            buffer.lock.unlock()
            return .mustWait(buffer, writeCondition(socket, peer: peer, remaining: bytes.count))
        }
        let n = Swift.min(room, length)
        // The chain takes this reference: a reader woken below finds the chunk held by the chain
        // alone and recycles it, where a reference kept here until return would defeat that.
        buffer.chain.append(ByteSlice(chunk: consume chunk, start: start, end: start + n))
        return .sent(finishAppendLocked(buffer, n))
    }

    /// How a write into the tail room of a peer's buffer went.
    private enum TailAppend {
        case appended(Int)
        case noRoom
        case peerStoppedReading
    }

    /// Copies `bytes` (or what fits) into the tail room of `link`'s buffer, under its lock.
    @inline(__always) private func appendIntoTailRoom(of link: PeerLink, _ bytes: UnsafeRawBufferPointer)
        -> TailAppend
    {
        let buffer = link.receiveBuffer
        do {
            try lockForAppend(buffer, peerState: link.state)
        } catch {
            return .peerStoppedReading
        }
        if buffer.highWater.load(ordering: .relaxed) - buffer.chain.count >= bytes.count {
            let n = buffer.chain.appendIntoTailRoom(bytes)
            if n > 0 { return .appended(finishAppendLocked(buffer, n)) }
        }
        buffer.lock.unlock()
        return .noRoom
    }

    /// Locks the peer's receive buffer for an append, unless the peer stopped reading. Checked
    /// under the lock: a reader that shuts down sets its bit before it flushes under this lock,
    /// so nothing lands in a buffer nobody will read.
    @inline(__always) private func lockForAppend(_ buffer: SocketBuffer, peerState: AtomicSocketState)
        throws(NetError)
    {
        buffer.lock.lock()
        if peerState.containsAny([.cantReceiveMore, .noFileReference]) {
            buffer.lock.unlock()
            throw .brokenPipe
        }
    }

    /// After bytes were appended under `buffer.lock`: publishes the count, wakes readers after
    /// dropping the lock, tells observers.
    @inline(__always) private func finishAppendLocked(_ buffer: SocketBuffer, _ n: Int) -> Int {
        buffer.byteCount.store(buffer.chain.count, ordering: .sequentiallyConsistent)
        buffer.unlockWakingSatisfied()
        buffer.observers?.notify()
        return n
    }

    private func writeCondition(_ socket: Socket, peer: Socket, remaining: Int) -> WaitCondition {
        let setting = socket.sendBuffer.lowWaterSetting.load(ordering: .relaxed)
        let lowWater = setting > 0 ? setting : peer.receiveBuffer.sendLowWater
        let limit = Swift.max(1, peer.receiveBuffer.highWater.load(ordering: .relaxed))
        let link = block(socket).streamPeer.load() ?? PeerLink(peer)
        return PeerRoom.condition(peer: link, bytes: Swift.min(remaining, lowWater, limit))
    }

    private func sendDatagram(_ socket: Socket, _ bytes: UnsafeRawBufferPointer, to address: SocketAddress?)
        throws(NetError) -> SendProgress
    {
        let block = block(socket)
        if let address {
            let name = try LocalNamespace.validName(address)
            if block.datagramPeer.isLinked { throw .alreadyConnected }
            guard let found = lock.withLock({ namespace.socket(named: name) }), found.type == .datagram else {
                throw .connectionRefused
            }
            if socket.state.contains(.cantSendMore) { throw .brokenPipe }
            if found.state.contains(.noFileReference) { throw .connectionRefused }
            return try deliverDatagram(
                socket, block, bytes, into: found.receiveBuffer, peerState: found.state, peer: { PeerLink(found) })
        }
        // The connected peer, through the link published at connect: no control-block lock.
        var peerGone = false
        do {
            return try block.datagramPeer.withCurrent { (link) throws(NetError) -> SendProgress in
                guard let link else { throw .destinationRequired }
                if socket.state.contains(.cantSendMore) { throw .brokenPipe }
                if link.state.contains(.noFileReference) {
                    peerGone = true
                    throw .connectionRefused
                }
                return try deliverDatagram(
                    socket, block, bytes, into: link.receiveBuffer, peerState: link.state, peer: { link })
            }
        } catch {
            // The connected peer is gone: forget it, as Linux does, so the socket can be reused.
            // (After the link is let go: the disconnect replaces it.)
            if peerGone { try? disconnect(socket) }
            throw error
        }
    }

    /// Queues a copy of `bytes` as one datagram in `buffer`, the receive buffer of the socket
    /// whose state is `peerState` (`peer` makes its link, for a sender that must wait). The
    /// caller has checked that the sender may send and the peer is open.
    @inline(__always) private func deliverDatagram(
        _ socket: Socket, _ block: LocalControlBlock, _ bytes: UnsafeRawBufferPointer, into buffer: SocketBuffer,
        peerState: AtomicSocketState, peer: () -> PeerLink
    ) throws(NetError) -> SendProgress {
        if peerState.contains(.cantReceiveMore) { throw .brokenPipe }
        let highWater = buffer.highWater.load(ordering: .relaxed)
        let charge = DatagramRecord.charge(forPayload: bytes.count)
        if charge > highWater { throw .messageTooLong }
        block.lastDatagramSize.store(bytes.count, ordering: .relaxed)
        // A blocked sender waits for a quarter of the buffer (or its datagram, if larger), so a
        // full receiver does not wake it once per datagram it takes.
        func roomInPeer() -> SendProgress {
            .mustWait(buffer, PeerRoom.condition(peer: peer(), bytes: Swift.max(charge, buffer.sendLowWater)))
        }
        if buffer.room < charge { return roomInPeer() }
        let record = DatagramRecord(data: BufferChain(copyingIntoSharedPool: bytes), source: block.sourceAddress)
        buffer.lock.lock()
        if peerState.containsAny([.cantReceiveMore, .noFileReference]) {
            buffer.lock.unlock()
            throw peerState.contains(.noFileReference) ? .connectionRefused : .brokenPipe
        }
        guard highWater - buffer.byteCount.load(ordering: .relaxed) >= charge else {
            buffer.lock.unlock()
            return roomInPeer()
        }
        buffer.records.append(consume record)
        buffer.recordCount.add(1, ordering: .sequentiallyConsistent)
        buffer.byteCount.add(charge, ordering: .sequentiallyConsistent)
        buffer.unlockWakingSatisfied()
        buffer.observers?.notify()
        return .sent(bytes.count)
    }
}
