import CNetMP
import NetMPInet
import NetMPInterfaces
import NetMPLocal
import NetMPRuntime
import NetMPSockets
import NetMPWire

/// A socket handle: what a file descriptor is to a kernel socket. Dropping the last handle
/// closes the socket, so no socket outlives its user by accident.
///
/// Every call is safe from any thread. Blocking calls wait (a short spin, then sleep) unless
/// the socket is non-blocking or `.dontWait` is passed; then they throw `.wouldBlock`.
/// The `async` calls suspend the task instead and never block a thread.
public final class NetSocket: Sendable, Hashable, CustomStringConvertible {
    let core: Socket

    init(_ core: Socket) { self.core = core }

    deinit { core.close() }

    public static func == (lhs: NetSocket, rhs: NetSocket) -> Bool { lhs === rhs }

    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }

    public var description: String { "NetSocket(\(core.domain), \(core.type), \(localAddress))" }

    public var type: SocketType { core.type }

    public var domain: SocketDomain { core.domain }

    /// The state bits now (for diagnostics; they may change at once).
    public var state: SocketState { core.state.value }

    // MARK: Setup

    /// bind(2).
    public func bind(to address: SocketAddress) throws(NetError) { try core.bind(to: address) }

    /// listen(2). The backlog (clamped to 1...4096) bounds the queue of connections waiting for
    /// `accept`. When it is full, a local connect is refused at once with `.connectionRefused`
    /// (as FreeBSD refuses local connects; Linux would make the connector wait) and the
    /// connection is never half made. A queued connection whose listener closes is reset: its
    /// client reads `.connectionReset`. (For TCP the incomplete queue drops its oldest entry when
    /// full, and SYN cookies take over past the limit.) Listening again only changes the backlog.
    public func listen(backlog: Int = 128) throws(NetError) {
        guard backlog >= 0 else { throw .invalidArgument }
        try core.listen(backlog: backlog)
    }

    /// accept(2): the next connection, waiting for one unless non-blocking.
    public func accept() throws(NetError) -> NetSocket {
        let deadline = core.receiveCallDeadline
        while true {
            try core.checkOpen()
            switch try core.attemptAccept() {
            case .success(let child):
                try core.finishAccept(child)
                return NetSocket(child)
            case .failure(let blocked):
                guard core.mayWait([]) else { throw .wouldBlock }
                try core.wait(for: blocked.blocked.condition, on: blocked.blocked.buffer, deadline: deadline)
            }
        }
    }

    /// connect(2). A non-blocking socket whose connect cannot finish at once throws
    /// `.inProgress`; it becomes writable when done.
    public func connect(to address: SocketAddress) throws(NetError) {
        guard let blocked = try core.startConnect(to: address) else { return }
        guard core.mayWait([]) else { throw .inProgress }
        try core.wait(for: blocked.condition, on: blocked.buffer, deadline: core.sendCallDeadline)
        try core.finishConnect()
    }

    /// shutdown(2).
    public func shutdown(_ how: ShutdownHow) throws(NetError) { try core.shutdown(how) }

    /// close(2). Later calls on this handle throw `.badDescriptor`; closing twice does nothing.
    public func close() {
        lingerBeforeClose()
        core.close()
    }

    /// getsockname(2).
    public var localAddress: SocketAddress { core.localAddress }

    /// getpeername(2).
    public func peerAddress() throws(NetError) -> SocketAddress {
        try core.checkOpen()
        return try core.peerAddress()
    }

    /// O_NONBLOCK.
    public var isNonBlocking: Bool {
        get { core.nonBlocking.load(ordering: .relaxed) }
        set { core.nonBlocking.store(newValue, ordering: .relaxed) }
    }

    // MARK: Reading

    /// read(2)/recv(2) into raw memory. Returns 0 at end-of-file. On a datagram socket, reads
    /// one datagram (the rest of a longer one is dropped; use `receive` to learn that).
    /// SO_RCVTIMEO bounds the whole call; bytes already taken are returned, whatever ends it.
    public func read(into buffer: UnsafeMutableRawBufferPointer, flags: MessageFlags = []) throws(NetError) -> Int {
        try core.checkOpen()
        if core.type == .datagram { return try receiveDatagram(into: buffer, flags: flags).count }
        let deadline = core.receiveCallDeadline
        var copied = 0
        while let condition = try core.attemptStreamRead(into: buffer, flags: flags, copied: &copied) {
            guard core.mayWait(flags) else {
                if copied > 0 { return copied }
                throw .wouldBlock
            }
            do {
                try core.waitToRead(for: condition, deadline: deadline)
            } catch {
                if copied > 0 { return copied }
                throw error
            }
        }
        return copied
    }

    /// Reads up to `maxBytes`; an empty array means end-of-file. The array is sized by what
    /// the socket holds when the read takes it (a wait-all read grows it as bytes arrive), never
    /// by `maxBytes` alone, and is not zeroed first.
    public func read(maxBytes: Int, flags: MessageFlags = []) throws(NetError) -> [UInt8] {
        guard maxBytes >= 0 else { throw .invalidArgument }
        try core.checkOpen()
        if core.type == .datagram { return try receive(maxBytes: maxBytes, flags: flags).bytes }
        let deadline = core.receiveCallDeadline
        var result: [UInt8] = []
        while result.count < maxBytes {
            if let blocked = core.streamReadBlocked(flags: flags, want: maxBytes - result.count) {
                guard core.mayWait(flags) else {
                    if result.isEmpty { throw .wouldBlock }
                    return result
                }
                do {
                    try core.wait(for: blocked.condition, on: blocked.buffer, deadline: deadline)
                } catch {
                    // A wait-all read that timed out takes what arrived meanwhile (less than it
                    // waited for), as it would have taken it as it went.
                    if error == .wouldBlock, flags.contains(.waitAll),
                        let last = try? core.readPiece(upTo: maxBytes - result.count, flags: flags)
                    {
                        result.append(contentsOf: last.bytes)
                    }
                    if result.isEmpty { throw error }
                    return result
                }
                continue
            }
            let piece: ReadPiece
            do {
                piece = try core.readPiece(upTo: maxBytes - result.count, flags: flags)
            } catch {
                if result.isEmpty { throw error }
                core.setError(error)
                return result
            }
            if piece.bytes.isEmpty {
                if piece.ended { break }
                continue
            }
            if result.isEmpty { result = piece.bytes } else { result.append(contentsOf: piece.bytes) }
            // A read that took bytes is done, unless wait-all still wants more.
            if !flags.contains(.waitAll) || flags.contains(.peek) { break }
        }
        return result
    }

    /// recvfrom(2) on a datagram socket: one datagram, its sender, and `.truncated` if cut.
    public func receive(into buffer: UnsafeMutableRawBufferPointer, flags: MessageFlags = []) throws(NetError)
        -> DatagramReceipt
    {
        try core.checkOpen()
        guard core.type == .datagram else {
            let n = try read(into: buffer, flags: flags)
            return DatagramReceipt(count: n, source: (try? core.peerAddress()) ?? .unnamed, flags: [])
        }
        return try receiveDatagram(into: buffer, flags: flags)
    }

    /// `receive(into:)` on a datagram socket found open.
    private func receiveDatagram(into buffer: UnsafeMutableRawBufferPointer, flags: MessageFlags) throws(NetError)
        -> DatagramReceipt
    {
        let deadline = core.receiveCallDeadline
        while true {
            if let receipt = try core.attemptDatagramReceive(into: buffer, flags: flags) { return receipt }
            guard core.mayWait(flags) else { throw .wouldBlock }
            let blocked = core.datagramReadable
            try core.wait(for: blocked.condition, on: blocked.buffer, deadline: deadline)
        }
    }

    /// Receives one datagram of at most `maxBytes` with its sender, in an array sized by the
    /// datagram.
    public func receive(maxBytes: Int, flags: MessageFlags = []) throws(NetError) -> (
        bytes: [UInt8], source: SocketAddress, flags: MessageFlags
    ) {
        guard maxBytes >= 0 else { throw .invalidArgument }
        try core.checkOpen()
        guard core.type == .datagram else {
            let bytes = try read(maxBytes: maxBytes, flags: flags)
            return (bytes, (try? core.peerAddress()) ?? .unnamed, [])
        }
        let deadline = core.receiveCallDeadline
        while true {
            if let taken = try core.attemptDatagramReceive(upTo: maxBytes, flags: flags) {
                return (taken.output, taken.receipt.source, taken.receipt.flags)
            }
            guard core.mayWait(flags) else { throw .wouldBlock }
            let blocked = core.datagramReadable
            try core.wait(for: blocked.condition, on: blocked.buffer, deadline: deadline)
        }
    }

    // MARK: Writing

    /// write(2)/send(2). A blocking stream write sends everything before it returns (unless
    /// a timeout (SO_SNDTIMEO bounds the whole call), a close or an error cuts it short after
    /// some bytes: then the count sent so far); a
    /// non-blocking one sends what fits, or throws `.wouldBlock` if nothing does.
    @discardableResult
    public func write(_ bytes: UnsafeRawBufferPointer, flags: MessageFlags = []) throws(NetError) -> Int {
        try send(bytes, to: nil, flags: flags)
    }

    @discardableResult
    public func write(_ bytes: [UInt8], flags: MessageFlags = []) throws(NetError) -> Int {
        try bytes.withUnsafeBytes { raw in Result { () throws(NetError) in try send(raw, to: nil, flags: flags) } }
            .get()
    }

    /// sendto(2): a datagram to `address` (nil: the connected peer).
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer, to address: SocketAddress?, flags: MessageFlags = [])
        throws(NetError) -> Int
    {
        try core.checkOpen()
        let deadline = core.sendCallDeadline
        var sent = 0
        while let blocked = try core.attemptSend(bytes, to: address, sent: &sent) {
            guard core.mayWait(flags) else {
                if sent > 0 { return sent }
                throw .wouldBlock
            }
            do {
                try core.wait(for: blocked.condition, on: blocked.buffer, deadline: deadline)
                try core.checkOpen()
            } catch {
                // Bytes that went stay sent: the count is returned, the error comes next call.
                if sent > 0 { return sent }
                throw error
            }
        }
        return sent
    }

    @discardableResult
    public func send(_ bytes: [UInt8], to address: SocketAddress?, flags: MessageFlags = []) throws(NetError) -> Int {
        try bytes.withUnsafeBytes { raw in Result { () throws(NetError) in try send(raw, to: address, flags: flags) } }
            .get()
    }
}
