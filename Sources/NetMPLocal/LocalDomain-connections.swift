import NetMPRuntime
import NetMPSockets

/// Connection management: names, links between peers, shutdown and teardown.
extension LocalDomain {
    package func attach(_ socket: Socket) throws(NetError) {
        socket.controlBlock = LocalControlBlock(socket: socket)
    }

    package func detach(_ socket: Socket) {
        let block = block(socket)
        let peer: Socket? = lock.withLock {
            if let name = block.boundName { namespace.unbind(name, from: socket) }
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

    package func bind(_ socket: Socket, to address: SocketAddress) throws(NetError) {
        let name = try LocalNamespace.validName(address)
        let block = block(socket)
        try lock.withLock { () throws(NetError) in
            if block.boundName != nil { throw .invalidArgument }
            try namespace.bind(name, to: socket)
            block.setBoundName(name)
        }
        socket.state.set(.bound)
    }

    package func listen(_ socket: Socket, backlog: Int) throws(NetError) {
        guard socket.type == .stream else { throw .notSupported }
        guard block(socket).boundName != nil else { throw .destinationRequired }
        socket.state.set(.listening)
    }

    package func connect(_ socket: Socket, to address: SocketAddress) throws(NetError) {
        let name = try LocalNamespace.validName(address)
        let block = block(socket)
        let listener: Socket? = try lock.withLock { () throws(NetError) -> Socket? in
            guard let target = namespace.socket(named: name), target.type == socket.type,
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
                domain: .local, type: .stream, registry: socket.registry, proto: self,
                owner: nextOwner(),
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

    package func connectPair(_ first: Socket, _ second: Socket) throws(NetError) {
        guard first.type == second.type else { throw .invalidArgument }
        lock.withLock {
            block(first).setPeer(second)
            block(second).setPeer(first)
            first.state.set(.connected)
            second.state.set(.connected)
        }
    }

    package func accept(_ child: Socket) throws(NetError) {}

    package func disconnect(_ socket: Socket) throws(NetError) {
        let peer = lock.withLock { unlinkLocked(socket) }
        if let peer { peerWentAway(peer) }
    }

    package func abort(_ socket: Socket) {
        try? disconnect(socket)
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

    package func localAddress(_ socket: Socket) -> SocketAddress { block(socket).sourceAddress }

    package func peerAddress(_ socket: Socket) throws(NetError) -> SocketAddress {
        guard let peer = block(socket).peer else { throw .notConnected }
        return block(peer).sourceAddress
    }
}
