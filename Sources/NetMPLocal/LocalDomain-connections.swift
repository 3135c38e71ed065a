import NetMPRuntime
import NetMPSockets

/// Connection management: names, links between peers, shutdown and teardown.
///
/// Every decision that depends on a socket's state (closed, listening, connected) is taken
/// under the domain lock, where the state it depends on cannot change: close() sets
/// `noFileReference` before its detach takes this lock, so a request that races a close either
/// runs first (and the detach undoes it) or finds the bit set and fails.
extension LocalDomain {
    package func attach(_ socket: Socket) throws(NetError) {
        socket.controlBlock = LocalControlBlock(socket: socket, domain: self)
    }

    package func detach(_ socket: Socket) {
        let block = block(socket)
        let peer: Socket? = lock.withLock {
            if let name = block.boundName { namespace.unbind(name, from: socket) }
            block.removeAllSenders()
            // Unread data is lost: the peer learns that as a reset, not a clean end of file.
            let unread = socket.receiveBuffer.byteCount.load(ordering: .sequentiallyConsistent) > 0
            return unlinkLocked(socket, reset: unread)
        }
        if let peer { peerWentAway(peer) }
    }

    /// Drops the links between `socket` and its peer (under the domain lock). Returns a stream
    /// peer that must be told; `reset` gives that peer `connectionReset` (BSD and Linux do when
    /// a socket goes with unread data, or a queued child is aborted).
    private func unlinkLocked(_ socket: Socket, reset: Bool) -> Socket? {
        let block = block(socket)
        guard let peer = block.peer else { return nil }
        // State first, links second: whoever finds the link gone also finds the state that
        // says why.
        if socket.state.contains(.connected) {
            socket.state.set(.disconnected)
            socket.state.clear(.connected)
        }
        guard socket.type == .stream else {
            removeSenderLocked(socket, from: peer)
            block.setPeer(nil)
            block.forgetPeerAddress()
            return nil
        }
        let peerBlock = self.block(peer)
        let linkedBack = peerBlock.peer === socket
        if linkedBack {
            // The other end of a stream closed: end-of-file for its reader, brokenPipe for its
            // writer (or connectionReset first, when data was lost).
            if reset { peer.setError(.connectionReset) }
            peer.state.set([.cantReceiveMore, .cantSendMore, .disconnected])
            peer.state.clear(.connected)
        }
        block.setPeer(nil)
        if linkedBack { peerBlock.setPeer(nil) }
        return linkedBack ? peer : nil
    }

    /// Links a datagram socket to `target` (under the domain lock), replacing an earlier link.
    private func linkDatagramLocked(_ socket: Socket, to target: Socket, address: SocketAddress) {
        let block = block(socket)
        if let old = block.peer { removeSenderLocked(socket, from: old) }
        block.setPeer(target, address: address)
        self.block(target).updateSenders(socket, adding: true)
    }

    private func removeSenderLocked(_ socket: Socket, from target: Socket) {
        block(target).updateSenders(socket, adding: false)
    }

    /// Wakes the other end of a stream that went away (after the domain lock is dropped).
    private func peerWentAway(_ peer: Socket) {
        peer.receiveBuffer.wake()
        peer.sendBuffer.wake()
    }

    package func bind(_ socket: Socket, to address: SocketAddress) throws(NetError) {
        let name = try LocalNamespace.validName(address)
        let block = block(socket)
        try lock.withLock { () throws(NetError) in
            // Closed meanwhile: its detach has run or will find no name; either way the name
            // must not stay taken.
            if socket.state.contains(.noFileReference) { throw .badDescriptor }
            if block.boundName != nil { throw .invalidArgument }
            try namespace.bind(name, to: socket)
            block.setBoundName(name)
        }
        socket.state.set(.bound)
    }

    package func listen(_ socket: Socket, backlog: Int) throws(NetError) {
        guard socket.type == .stream else { throw .notSupported }
        let block = block(socket)
        try lock.withLock { () throws(NetError) in
            let now = socket.state.value
            if now.contains(.noFileReference) { throw .badDescriptor }
            if now.containsAny([.connected, .connecting, .disconnected]) || block.peer != nil {
                throw .invalidArgument
            }
            guard block.boundName != nil else { throw .destinationRequired }
            socket.state.set(.listening)
        }
    }

    package func connect(_ socket: Socket, to address: SocketAddress) throws(NetError) {
        let name = try LocalNamespace.validName(address)
        let block = block(socket)
        let listener: Socket? = try lock.withLock { () throws(NetError) -> Socket? in
            let now = socket.state.value
            // A connect that lost the race with its own socket's close must not link it.
            if now.contains(.noFileReference) { throw .badDescriptor }
            if now.contains(.listening) { throw .invalidArgument }
            guard let target = namespace.socket(named: name), target.type == socket.type,
                !target.state.contains(.noFileReference)
            else { throw .connectionRefused }
            if socket.type == .datagram {
                linkDatagramLocked(socket, to: target, address: .local(name))
                socket.state.set(.connected)
                return nil
            }
            guard target.state.contains(.listening), let queue = target.listenQueue else {
                throw .connectionRefused
            }
            // Checked under the domain lock: two racing connects make one connection.
            if block.peer != nil || now.contains(.connected) { throw .alreadyConnected }
            let child = Socket(
                domain: .local, type: .stream, registry: socket.registry, proto: self,
                owner: nextOwner(),
                receiveSize: target.receiveBuffer.highWater.load(ordering: .relaxed),
                sendSize: target.sendBuffer.highWater.load(ordering: .relaxed), keepsTailRoom: true)
            let childBlock = LocalControlBlock(socket: child, domain: self)
            child.controlBlock = childBlock
            childBlock.inheritedName = name
            // The peer is linked, and its address saved, before the child can be seen on the
            // complete queue.
            childBlock.setPeer(socket, address: block.sourceAddress)
            _ = childBlock.streamPeer.storeIfNil(PeerLink(socket))
            child.state.set(.connected)
            block.setPeer(child, address: .local(name))
            socket.state.set(.connected)
            guard queue.addComplete(child) else {
                block.setPeer(nil)
                block.forgetPeerAddress()
                childBlock.setPeer(nil)
                socket.state.clear(.connected)
                child.state.set(.noFileReference)
                throw .connectionRefused
            }
            _ = block.streamPeer.storeIfNil(PeerLink(child))
            return target
        }
        listener?.receiveBuffer.wake()
    }

    package func connectPair(_ first: Socket, _ second: Socket) throws(NetError) {
        guard first.type == second.type else { throw .invalidArgument }
        lock.withLock {
            if first.type == .datagram {
                linkDatagramLocked(first, to: second, address: .unnamed)
                linkDatagramLocked(second, to: first, address: .unnamed)
            } else {
                block(first).setPeer(second, address: .unnamed)
                block(second).setPeer(first, address: .unnamed)
                _ = block(first).streamPeer.storeIfNil(PeerLink(second))
                _ = block(second).streamPeer.storeIfNil(PeerLink(first))
            }
            first.state.set(.connected)
            second.state.set(.connected)
        }
    }

    package func accept(_ child: Socket) throws(NetError) {}

    package func disconnect(_ socket: Socket) throws(NetError) {
        let peer = lock.withLock { unlinkLocked(socket, reset: false) }
        if let peer { peerWentAway(peer) }
    }

    /// A queued child of a closing listener: its client sees `connectionReset`.
    package func abort(_ socket: Socket) {
        let peer = lock.withLock { unlinkLocked(socket, reset: true) }
        if let peer { peerWentAway(peer) }
    }

    package func shutdownSend(_ socket: Socket) {
        guard socket.type == .stream, let peer = block(socket).peer else { return }
        peer.state.set(.cantReceiveMore)
        peer.receiveBuffer.wake()
    }

    package func shutdownReceive(_ socket: Socket) {
        socket.receiveBuffer.wake()
        guard socket.type == .stream, let peer = block(socket).peer else { return }
        // As on Linux: the peer's later writes fail with brokenPipe.
        peer.state.set(.cantSendMore)
        peer.sendBuffer.wake()
    }

    package func checkState(_ socket: Socket) {}

    package var runsUnderItsOwnLocks: Bool { true }

    package func localAddress(_ socket: Socket) -> SocketAddress { block(socket).sourceAddress }

    /// The peer's address as saved when the connection was made: a stream reports it after
    /// the peer has gone, as a TCP socket reports its peer after a FIN.
    package func peerAddress(_ socket: Socket) throws(NetError) -> SocketAddress {
        let block = block(socket)
        guard let address = block.peerAddress else { throw .notConnected }
        return address
    }
}
