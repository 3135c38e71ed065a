import NetMPInet
import NetMPRuntime
import NetMPSockets
import NetMPWire
import Synchronization

/// TCP over the socket layer (the SocketProtocol of `socket(.inet, .stream)`).
///
/// A connection's control block is owned by the protocol thread its 4-tuple hashes to (the
/// same symmetric Toeplitz hash inbound frames are dispatched with); `connect` moves it there.
/// User threads append to the send buffer and take from the receive buffer under their locks
/// and post the block's one coalesced *output* or *rcvd* message; everything else runs on the
/// owner as the state machine's events.
package final class TCPProtocol: SocketProtocol, @unchecked Sendable {
    package static let defaultBufferSize = 256 << 10
    /// The largest MTU used for a route, so a full segment with its headers fits a pool chunk.
    static let largestRouteMTU = 65520

    let inet: InetStack
    /// `inet.devicePolling` unretained (the stack keeps it): asked by every socket wait.
    private let devicePollingReference: Unmanaged<DevicePolling>

    /// A thread waiting on one of these sockets polls the stack's devices while it spins.
    package var busyPolling: (any BusyPolling)? { inet.devicePolling.isEmpty ? nil : inet.devicePolling }
    package var mayBusyPoll: Bool { devicePollingReference._withUnsafeGuaranteedRef { !$0.isEmpty } }
    let tables: TCPTables
    let sequenceNumbers: InitialSequenceNumbers
    package private(set) var threads: [TCPThread] = []
    private let nextOwner = Atomic<Int>(0)
    private let template: LockedValue<TCPConfiguration>
    /// The stack-wide challenge ACK budget (RFC 5961 7), shared by the threads.
    let challengeACKs: TCPChallengeACKLimiter
    let synCookies: TCPSYNCookies
    let synCookiesEnabled = Atomic<Bool>(true)

    package init(inet: InetStack, seed: UInt64) {
        var state = seed ^ 0x7C9_5EED_0F_7C9
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        func key() -> TCPSecretKey {
            let low = next().littleEndian
            let high = next().littleEndian
            return TCPSecretKey(bytes: withUnsafeBytes(of: low) { Array($0) } + withUnsafeBytes(of: high) { Array($0) })
        }
        let portKey = key()
        let sequenceKey = key()
        self.inet = inet
        devicePollingReference = Unmanaged.passUnretained(inet.devicePolling)
        tables = TCPTables(key: portKey)
        sequenceNumbers = InitialSequenceNumbers(key: sequenceKey)
        var initial = TCPConfiguration()
        initial.bufferAutoTuning = true
        template = LockedValue(initial)
        challengeACKs = TCPChallengeACKLimiter(limit: TCPConfiguration().challengeACKLimit, seed: next())
        synCookies = TCPSYNCookies(key: key())
        let made = inet.perThread.map { TCPThread(tcp: self, inet: $0) }
        threads = made
        inet.installTransport(protocol: 6) { state in made[state.threadIndex] }
    }

    /// The settings new connections start from (times, retries, TIME_WAIT length).
    package var configuration: TCPConfiguration {
        get { template.withLock { $0 } }
        set {
            template.withLock { $0 = newValue }
            challengeACKs.limit.store(Swift.max(0, newValue.challengeACKLimit), ordering: .relaxed)
            synCookiesEnabled.store(newValue.synCookies, ordering: .relaxed)
        }
    }

    @inline(__always) func block(_ socket: Socket) -> TCPControlBlock {
        guard let block = socket.controlBlock else { preconditionFailure("TCP socket without control block") }
        return unsafeDowncast(block, to: TCPControlBlock.self)
    }

    /// `body` with the socket's control block, unretained: the caller's socket keeps it (see
    /// `Socket.unretainedControlBlock`). For the per-write and per-read paths.
    @inline(__always) func withBlock<R>(_ socket: Socket, _ body: (TCPControlBlock) -> R) -> R {
        guard let block = socket.unretainedControlBlock else { preconditionFailure("TCP socket without control block") }
        return block._withUnsafeGuaranteedRef { body(unsafeDowncast($0, to: TCPControlBlock.self)) }
    }

    package func makeSocket(registry: SocketRegistry) throws(NetError) -> Socket {
        let index = nextOwner.add(1, ordering: .relaxed).newValue % threads.count
        let port = TCPOwnerPort(threads[index].thread)
        let socket = Socket(
            domain: .inet, type: .stream, registry: registry, proto: self, owner: port,
            receiveSize: TCPProtocol.defaultBufferSize, sendSize: TCPProtocol.defaultBufferSize)
        let block = TCPControlBlock(socket: socket, tcp: self, port: port, home: threads[index])
        let settings = configuration
        block.options.congestionControl.store(settings.congestionControl.rawValue, ordering: .relaxed)
        block.options.explicitCongestionNotification.store(
            settings.explicitCongestionNotification, ordering: .relaxed)
        socket.controlBlock = block
        return socket
    }

    package func attach(_ socket: Socket) throws(NetError) {
        guard socket.controlBlock is TCPControlBlock else { throw .invalidArgument }
    }

    private func ipv4(_ address: SocketAddress) throws(NetError) -> (IPv4Address, UInt16) {
        guard case .ipv4(let host, let port) = address else { throw .addressFamilyNotSupported }
        return (host, port)
    }

    /// A connection's settings: the stack's, with the socket's options and receive buffer size.
    private func connectionSettings(_ block: TCPControlBlock, hop: NextHop) -> (TCPConfiguration, Int) {
        let (settings, mtu) = settings(block, hop: hop)
        let threshold = Swift.min(2 * Swift.max(48, mtu - 40), settings.receiveBufferSize / 2)
        block.windowUpdateThreshold.store(Swift.max(1, threshold), ordering: .relaxed)
        return (settings, mtu)
    }

    /// The settings and route MTU a connection of `block`'s socket would use over `hop` (a
    /// listener's answer the children it would make).
    func settings(_ block: TCPControlBlock, hop: NextHop) -> (TCPConfiguration, Int) {
        var settings = configuration
        settings.noDelay = block.options.noDelay.load(ordering: .relaxed)
        block.options.applyTimers(to: &settings)
        if let algorithm = TCPCongestionAlgorithm(rawValue: block.options.congestionControl.load(ordering: .relaxed)) {
            settings.congestionControl = algorithm
        }
        settings.explicitCongestionNotification = block.options.explicitCongestionNotification.load(ordering: .relaxed)
        settings.receiveBufferSize = Swift.max(1, block.socket.receiveBuffer.highWater.load(ordering: .relaxed))
        block.options.applyBufferLimits(to: &settings, socket: block.socket)
        var mtu = Swift.min(block.home.inet.mtu(ofInterface: hop.interfaceIndex), TCPProtocol.largestRouteMTU)
        let largeSegmentLimit = block.home.inet.largeSegmentLimit(ofInterface: hop.interfaceIndex)
        settings.largeSegmentLimit = largeSegmentLimit > mtu ? largeSegmentLimit : 0
        let maximumSegment = block.options.maximumSegment.load(ordering: .relaxed)
        if maximumSegment > 0 { mtu = Swift.min(mtu, maximumSegment + 40) }
        return (settings, mtu)
    }

    // MARK: Control requests (owner thread)

    /// A request that raced close(2) and runs after detach must not leave state behind (close
    /// sets the bit before it queues the detach, so a request running later sees it).
    private func checkNotDetached(_ socket: Socket) throws(NetError) {
        if socket.state.contains(.noFileReference) { throw .badDescriptor }
    }

    package func bind(_ socket: Socket, to address: SocketAddress) throws(NetError) {
        try checkNotDetached(socket)
        let block = block(socket)
        let (host, port) = try ipv4(address)
        if block.isBound || block.hasConnection || block.key != nil { throw .invalidArgument }
        if !host.isUnspecified && !block.home.inet.isOwnAddress(host) { throw .addressNotAvailable }
        block.localPort = try tables.bind(
            port, address: host, owner: ObjectIdentifier(block),
            reuseAddress: block.options.reuseAddress.load(ordering: .relaxed))
        block.localAddress = host
        block.isBound = true
        block.publishNames()
        socket.state.set(.bound)
    }

    package func listen(_ socket: Socket, backlog: Int) throws(NetError) {
        try checkNotDetached(socket)
        let block = block(socket)
        if block.key != nil { throw .invalidArgument }
        if let listener = block.listener {
            listener.backlog = backlog
            return
        }
        if !block.isBound { try bind(socket, to: .ipv4(.unspecified, port: 0)) }
        let listener = TCPListenState(socket: socket, block: block, address: block.localAddress, port: block.localPort)
        listener.backlog = backlog
        block.listener = listener
        tables.addListener(listener)
        socket.state.set(.listening)
    }

    package func connect(_ socket: Socket, to address: SocketAddress) throws(NetError) {
        try checkNotDetached(socket)
        let block = block(socket)
        let (host, port) = try ipv4(address)
        if host.isUnspecified || port == 0 || host.isBroadcast || host.isMulticast { throw .invalidArgument }
        if block.listener != nil { throw .invalidArgument }
        if block.key != nil { throw socket.state.contains(.connecting) ? .alreadyInProgress : .alreadyConnected }
        let here = block.home
        guard
            let hop = here.inet.transportRoute(
                to: host, from: block.localAddress.isUnspecified ? nil : block.localAddress)
        else { throw .networkUnreachable }
        let local = block.localAddress.isUnspecified ? hop.source : block.localAddress
        // An ephemeral port whose tuple hashes to this thread, if one is near: no move. Over
        // loopback a TIME_WAIT record of this thread may give its tuple up (Linux's
        // tcp_tw_reuse default), or a fast connect loop runs out of ports in 2 MSL.
        let threadCount = threads.count
        let toSelf = host.isLoopback || host == local
        let (key, reclaimed) = try tables.reserveConnection(
            localAddress: local, localPort: block.localPort, remoteAddress: host, remotePort: port,
            preferred: { candidate in
                threads[
                    inet.threadIndex(source: host, destination: local, sourcePort: port, destinationPort: candidate)
                        % threadCount] === here
            },
            reclaimable: { candidate in toSelf && here.mayReclaimTimeWait(candidate) })
        let replaced = reclaimed ? here.timeWaits.removeValue(forKey: key) : nil
        block.key = key
        block.hop = hop
        block.localAddress = local
        block.localPort = key.localPort
        block.remoteAddress = host
        block.remotePort = port
        block.publishNames()
        let (settings, mtu) = connectionSettings(block, hop: hop)
        var connection = TCPConnection<ByteSlice>(
            configuration: settings, localPort: key.localPort, remotePort: port,
            initialSequenceNumber: initialSequenceNumber(for: key, replacing: replaced, now: here.now), routeMTU: mtu)
        connection.setTimestampOffset(timestampOffset(from: key.localAddress, to: key.remoteAddress))
        connection.shareConfiguration(through: &here.sharedConfiguration)
        block.connection = consume connection
        block.hold = socket
        _ = socket.takeError()
        socket.state.set([.bound, .connecting])
        let index = inet.threadIndex(source: host, destination: local, sourcePort: port, destinationPort: key.localPort)
        let target = threads[index % threads.count]
        let start: @Sendable () -> Void = {
            target.adopt(block)
            target.event(block) { connection, time, actions in connection.connect(now: time, into: &actions) }
            // Bytes written while the block moved.
            target.userDataChanged(block)
        }
        if target === here {
            start()
        } else {
            // The owner switches as the migrating message is queued on the new thread.
            block.home = target
            if !block.port.migrate(to: target.thread, start) { throw .shutdown }
        }
    }

    /// The ISN of an active open; past everything a TIME_WAIT it replaces sent.
    private func initialSequenceNumber(
        for key: TCPConnectionKey, replacing timeWait: TCPTimeWait?, now: Int64
    ) -> SequenceNumber {
        let proposed = sequenceNumbers.initialSequenceNumber(for: key, now: now)
        return timeWait?.initialSequenceNumber(replacing: proposed) ?? proposed
    }

    /// A SYN for `listener` arrived on `thread` (its tuple's): the child is born owned there, with
    /// its peer address stored, on the listener's incomplete queue, its SYN-ACK sent.
    func acceptChild(
        of listener: TCPListenState, syn: TCPHeader, key: TCPConnectionKey, source: IPv4Address,
        destination: IPv4Address, on thread: TCPThread, reusing: TCPTimeWait?,
        cookie: (ack: TCPHeader, decoded: TCPSYNCookies.Decoded)? = nil
    ) {
        let parent = listener.socket
        guard let hop = thread.inet.transportRoute(to: source, from: destination) else {
            tables.release(key)
            return
        }
        let port = TCPOwnerPort(thread.thread)
        let child = Socket(
            domain: .inet, type: .stream, registry: parent.registry, proto: self, owner: port,
            receiveSize: parent.receiveBuffer.highWater.load(ordering: .relaxed),
            sendSize: parent.sendBuffer.highWater.load(ordering: .relaxed))
        let block = TCPControlBlock(socket: child, tcp: self, port: port, home: thread)
        child.controlBlock = block
        block.options.inherit(from: listener.block.options)
        for (mine, theirs) in [(child.receiveBuffer, parent.receiveBuffer), (child.sendBuffer, parent.sendBuffer)] {
            mine.sizeSetByUser.store(theirs.sizeSetByUser.load(ordering: .relaxed), ordering: .relaxed)
        }
        block.key = key
        block.hop = hop
        block.localAddress = destination
        block.localPort = syn.destinationPort
        block.remoteAddress = source
        block.remotePort = syn.sourcePort
        block.publishNames()
        child.state.set([.bound, .connecting])
        let (settings, mtu) = connectionSettings(block, hop: hop)
        var sequence = sequenceNumbers.initialSequenceNumber(for: key, now: thread.now)
        if let reusing { sequence = reusing.initialSequenceNumber(replacing: sequence) }
        var actions = thread.withActions { actions in
            if let cookie {
                block.connection = TCPConnection(
                    cookieACK: cookie.ack, decoded: cookie.decoded, configuration: settings, routeMTU: mtu,
                    now: thread.now, into: &actions)
            } else {
                block.connection = TCPConnection(
                    acceptingSYN: syn, configuration: settings, initialSequenceNumber: sequence, routeMTU: mtu,
                    now: thread.now, into: &actions)
            }
        }
        block.connection?.shareConfiguration(through: &thread.sharedConfiguration)
        block.hold = child
        block.parent = listener
        thread.connections[key] = block
        // A child from a cookie is not on the incomplete queue: its handshake is done.
        let dropped = cookie == nil ? listener.addIncomplete(block) : nil
        thread.applyBirth(&actions, to: block)
        if let dropped {
            // The oldest handshake makes room (or the listener closed meanwhile).
            dropped.port.send { [self] in abortConnection(dropped) }
        }
    }

    /// Ends a connection at once with a RST (a dropped incomplete child, linger 0).
    func abortConnection(_ block: TCPControlBlock) {
        block.home.event(block) { connection, time, actions in connection.abort(now: time, into: &actions) }
    }

    package func connectPair(_ first: Socket, _ second: Socket) throws(NetError) { throw .notSupported }

    package func accept(_ child: Socket) throws(NetError) {}

    /// A child is queued complete, its peer address stored: accept needs nothing of its owner.
    package var acceptRunsOnOwner: Bool { false }

    package func disconnect(_ socket: Socket) throws(NetError) { throw .notSupported }

    package func detach(_ socket: Socket) {
        let block = block(socket)
        if let listener = block.listener {
            block.listener = nil
            tables.removeListener(listener)
            for child in listener.close() {
                child.port.send { [self] in abortConnection(child) }
            }
        }
        if block.isBound {
            block.isBound = false
            tables.unbind(block.localPort, owner: ObjectIdentifier(block))
        }
        guard block.hasConnection else {
            block.hold = nil
            return
        }
        // What is still to send stays with the connection after the socket's buffer goes.
        let buffer = socket.sendBuffer
        buffer.lock.withLock {
            swap(&block.detachedQueue, &buffer.chain)
            buffer.byteCount.store(0, ordering: .sequentiallyConsistent)
        }
        block.detached = true
        let lingerZero = block.options.linger.load(ordering: .relaxed) == 0
        block.home.event(block) { connection, time, actions in
            let appended = block.unsentAppended.exchange(0, ordering: .sequentiallyConsistent)
            if appended > 0 { connection.send(count: appended, now: time, into: &actions) }
            if lingerZero {
                connection.abort(now: time, into: &actions)
            } else {
                connection.close(now: time, into: &actions)
            }
        }
    }

    package func shutdownSend(_ socket: Socket) {
        let block = block(socket)
        block.home.event(block) { connection, time, actions in
            let appended = block.unsentAppended.exchange(0, ordering: .sequentiallyConsistent)
            if appended > 0 { connection.send(count: appended, now: time, into: &actions) }
            connection.shutdownWrite(now: time, into: &actions)
        }
    }

    package func shutdownReceive(_ socket: Socket) {
        let block = block(socket)
        // The bytes the user side flushed count as read: the window stays open.
        block.home.event(block) { connection, time, actions in
            connection.received(count: connection.unreadCount, now: time, into: &actions)
        }
    }

    package func abort(_ socket: Socket) { abortConnection(block(socket)) }

    package func checkState(_ socket: Socket) {}

    /// TCP_NODELAY on a live connection (owner thread).
    package func setNoDelay(_ socket: Socket, _ value: Bool) {
        let block = block(socket)
        block.options.noDelay.store(value, ordering: .relaxed)
        block.home.event(block) { connection, time, actions in
            connection.setNoDelay(value, now: time, into: &actions)
        }
    }

    /// SO_KEEPALIVE, TCP_KEEPIDLE/KEEPINTVL/KEEPCNT or TCP_USER_TIMEOUT changed on a live
    /// connection (owner thread): the connection takes the socket's current choices.
    package func updateTimers(_ socket: Socket) {
        let block = block(socket)
        var settings = configuration
        block.options.applyTimers(to: &settings)
        block.home.event(block) { connection, time, _ in
            connection.setKeepAlive(
                settings.keepAlive, idle: settings.keepAliveIdle, interval: settings.keepAliveInterval,
                count: settings.keepAliveCount, now: time)
            connection.setUserTimeout(settings.userTimeout)
        }
    }

    /// The TCP_INFO snapshot of a socket's connection (owner thread); nil without a connection.
    package func info(_ socket: Socket) -> TCPInfo? {
        let block = block(socket)
        guard var info = block.connection?.info else { return nil }
        info.segmentsIn = block.segmentsIn
        info.segmentsOut = block.segmentsOut
        info.bytesAcknowledged = block.bytesAcknowledged
        info.bytesReceived = block.bytesReceived
        return info
    }

    /// TCP_CONGESTION on a live connection (owner thread).
    package func setCongestionControl(_ socket: Socket, _ algorithm: TCPCongestionAlgorithm) {
        let block = block(socket)
        block.options.congestionControl.store(algorithm.rawValue, ordering: .relaxed)
        block.home.event(block) { connection, _, _ in connection.setCongestionControl(algorithm) }
    }

    // MARK: Addresses and readiness (any thread)

    package func localAddress(_ socket: Socket) -> SocketAddress { block(socket).names.local }

    package func peerAddress(_ socket: Socket) throws(NetError) -> SocketAddress {
        guard socket.state.containsAny([.connected, .connecting]), let peer = block(socket).names.peer
        else { throw .notConnected }
        return peer
    }

    package func isWritable(_ socket: Socket) -> Bool {
        let state = socket.state.value
        if state.containsAny([.cantSendMore, .disconnected]) || socket.hasError { return true }
        guard state.contains(.connected) else { return false }
        let buffer = socket.sendBuffer
        return buffer.room >= Swift.min(buffer.sendLowWater, buffer.highWater.load(ordering: .relaxed))
    }

    // MARK: Data path (user threads)

    /// Writes at most this much per call into one pooled chunk (the caller loops for the rest).
    static let largestChunk = 64 << 10
    /// Writes up to this size go into the tail chunk's free room when there is some.
    static let tailCopyLimit = 2048

    package func send(_ socket: Socket, _ bytes: UnsafeRawBufferPointer, to address: SocketAddress?) throws(NetError)
        -> SendProgress
    {
        let state = socket.state.value
        if state.contains(.cantSendMore) { throw .brokenPipe }
        if !state.containsAny([.connected, .connecting]) {
            throw state.contains(.disconnected) ? .brokenPipe : .notConnected
        }
        if bytes.isEmpty { return .sent(0) }
        return withBlock(socket) { block in block.withSendBuffer { buffer in send(bytes, block, buffer) } }
    }

    /// `send`'s work once the socket may send: `buffer` is the send buffer, unretained.
    @inline(__always) private func send(
        _ bytes: UnsafeRawBufferPointer, _ block: TCPControlBlock, _ buffer: SocketBuffer
    ) -> SendProgress {
        let highWater = buffer.highWater.load(ordering: .relaxed)
        if bytes.count <= TCPProtocol.tailCopyLimit {
            buffer.lock.lock()
            if highWater - buffer.chain.count >= bytes.count {
                let n = buffer.chain.appendIntoTailRoom(bytes)
                if n > 0 { return .sent(finishAppendLocked(block, buffer, n)) }
                // No room behind the tail (an acknowledged queue gave its chunk back): a small
                // chunk filled here, a copy as short as the tail's, saves a second lock.
                if let source = bytes.baseAddress {
                    let chunk = ChunkPool.withShared { $0.take(atLeast: bytes.count) }
                    let start = chunk.filled
                    (chunk.base + start).copyMemory(from: source, byteCount: bytes.count)
                    chunk.filled += bytes.count
                    // Consumed into the slice: a copy was a retain and a release.
                    buffer.chain.append(ByteSlice(chunk: consume chunk, start: start, end: start + bytes.count))
                    return .sent(finishAppendLocked(block, buffer, bytes.count))
                }
            }
            buffer.lock.unlock()
        }
        let estimate = Swift.min(bytes.count, highWater - buffer.byteCount.load(ordering: .sequentiallyConsistent))
        if estimate <= 0 { return .mustWait(buffer, .sendRoom(bytes: Swift.min(buffer.sendLowWater, bytes.count))) }
        guard let source = bytes.baseAddress else { return .sent(0) }
        // Copied before the lock is taken; one chunk per call.
        let chunk = ChunkPool.withShared { $0.take(atLeast: Swift.min(estimate, TCPProtocol.largestChunk)) }
        let length = Swift.min(estimate, chunk.room)
        let start = chunk.filled
        (chunk.base + start).copyMemory(from: source, byteCount: length)
        chunk.filled += length
        buffer.lock.lock()
        let room = highWater - buffer.chain.count
        guard room > 0 else {
            buffer.lock.unlock()
            return .mustWait(buffer, .sendRoom(bytes: Swift.min(buffer.sendLowWater, bytes.count)))
        }
        let n = Swift.min(room, length)
        buffer.chain.append(ByteSlice(chunk: consume chunk, start: start, end: start + n))
        return .sent(finishAppendLocked(block, buffer, n))
    }

    /// After `n` bytes were appended under `buffer.lock`: publishes the count, unlocks, and posts
    /// the block's output message unless one is queued.
    @inline(__always) private func finishAppendLocked(_ block: TCPControlBlock, _ buffer: SocketBuffer, _ n: Int)
        -> Int
    {
        buffer.byteCount.store(buffer.chain.count, ordering: .sequentiallyConsistent)
        buffer.lock.unlock()
        block.unsentAppended.add(n, ordering: .sequentiallyConsistent)
        block.postOnce(block.output, pending: block.outputPending)
        return n
    }

    package func received(_ socket: Socket, count: Int) {
        guard count > 0 else { return }
        withBlock(socket) { block in received(count, block) }
    }

    @inline(__always) private func received(_ count: Int, _ block: TCPControlBlock) {
        let total = block.unreportedReads.add(count, ordering: .sequentiallyConsistent).newValue
        // Sequentially consistent against the owner's store of a new threshold and its check of
        // the reads after it (`TCPThread.publishWindowUpdateThreshold`).
        if total >= block.windowUpdateThreshold.load(ordering: .sequentiallyConsistent) {
            // Run by the reader itself when the owner is idle (direct dispatch): a window-limited
            // sender waits for this update, and a queued one waited for the owner's wake-up
            // (tap.bulk.to-netmp 1.7-2.0 GB/s queued, 2.3-2.4 dispatched; loopback bulk no slower).
            block.postOnce(block.received, pending: block.receivedPending)
        }
    }

    // MARK: Statistics

    /// Counters summed over the threads, with the live connections' retransmissions.
    package func statistics() -> TCPStatistics {
        var total = TCPStatistics()
        for thread in threads {
            let gather: @Sendable () -> TCPStatistics = {
                var sum = thread.statistics
                for block in thread.connections.values {
                    if let connection = block.connection {
                        sum.retransmittedSegments += connection.retransmittedSegments
                        sum.timeouts += connection.timeoutCount
                        sum.fastRetransmits += connection.fastRetransmitCount
                    }
                }
                sum.liveConnections = thread.connections.count
                sum.timeWaitRecords = thread.timeWaits.count
                return sum
            }
            if thread.thread.isCurrent {
                total = total + gather()
            } else if let sum = try? thread.thread.call({ () throws(NetError) in gather() }) {
                total = total + sum
            }
        }
        return total
    }
}

extension TCPProtocol {
    package var tablesTupleCount: Int { tables.tupleCount }

    // MARK: Stack shutdown

    /// Resets every connection while the threads still run, so peers learn at once that this
    /// end is gone (as a process that exits with connections open would not leave them hanging).
    /// Runs each thread's part there; call from a thread that may wait.
    package func abortEveryConnection() {
        for thread in threads {
            _ = try? thread.thread.call { () throws(NetError) in thread.abortEveryConnection() }
        }
    }

    /// After the threads stopped (nothing runs them any more, so their tables are free to touch):
    /// every connection lets go of its socket and every table entry goes, so the sockets the user
    /// drops are freed.
    package func releaseAfterStop() {
        for thread in threads { thread.releaseEverything() }
        // A listen socket's state names its socket (and the socket's block names the state).
        for listener in tables.removeAllListeners() {
            listener.block.listener = nil
            _ = listener.close()
        }
    }

    /// The TSval offset of connections from `local` to `remote`: keyed by the host pair only.
    func timestampOffset(from local: TCPAddress, to remote: TCPAddress) -> UInt32 {
        var hasher = SipHasher(key: sequenceNumbers.key)
        hasher.append(UInt8(0x75))
        local.hash(into: &hasher)
        remote.hash(into: &hasher)
        return UInt32(truncatingIfNeeded: hasher.finalize())
    }
}
