import NetMPInet
import NetMPInterfaces
import NetMPLocal
import NetMPRuntime
import NetMPSockets
import NetMPWire

/// The `async` face: the same operations, waiting by suspending the task (a continuation in
/// the predicate message) instead of blocking a thread. Cancelling the task ends a wait with
/// `.cancelled` and removes the waiter.
extension NetSocket {
    /// accept(2), suspending until a connection arrives.
    public func accept() async throws(NetError) -> NetSocket {
        while true {
            try core.checkOpen()
            switch try core.attemptAccept() {
            case .success(let child):
                try await core.finishAcceptAsync(child)
                return NetSocket(child)
            case .failure(let blocked):
                try await core.waitAsync(for: blocked.blocked.condition, on: blocked.blocked.buffer)
            }
        }
    }

    /// connect(2), suspending until the connection is made or refused.
    public func connect(to address: SocketAddress) async throws(NetError) {
        guard let blocked = try await core.startConnectAsync(to: address) else { return }
        try await core.waitAsync(for: blocked.condition, on: blocked.buffer)
        try core.finishConnect()
    }

    /// Reads up to `maxBytes` (at least one byte unless end-of-file, then an empty array), into
    /// an array sized by what the socket holds.
    public func read(maxBytes: Int) async throws(NetError) -> [UInt8] {
        guard maxBytes >= 0 else { throw .invalidArgument }
        if core.type == .datagram { return try await receive(maxBytes: maxBytes).bytes }
        if maxBytes == 0 { return [] }
        while true {
            try core.checkOpen()
            if let blocked = core.streamReadBlocked(flags: [], want: maxBytes) {
                try await core.waitAsync(for: blocked.condition, on: blocked.buffer)
                continue
            }
            let piece = try core.readPiece(upTo: maxBytes, flags: [])
            if !piece.bytes.isEmpty || piece.ended { return piece.bytes }
        }
    }

    /// Writes all of `bytes`, suspending while the peer's buffer is full. Returns the count
    /// sent: all of it, or, when the peer goes away, the socket is closed or the task is
    /// cancelled after some bytes went, how many did (the error comes with the next call).
    @discardableResult
    public func write(_ bytes: [UInt8]) async throws(NetError) -> Int {
        try await send(bytes, to: nil)
    }

    /// Sends `bytes` (a whole datagram, or all of a stream write) to `address` or the peer,
    /// returning the count sent as `write` does.
    @discardableResult
    public func send(_ bytes: [UInt8], to address: SocketAddress?) async throws(NetError) -> Int {
        var sent = 0
        while true {
            do {
                try core.checkOpen()
                let attempt = bytes.withUnsafeBytes { raw in
                    Result { () throws(NetError) in try core.attemptSend(raw, to: address, sent: &sent) }
                }
                guard let blocked = try attempt.get() else { return sent }
                try await core.waitAsync(for: blocked.condition, on: blocked.buffer)
            } catch {
                if sent > 0 { return sent }
                throw error
            }
        }
    }

    /// Receives one datagram of at most `maxBytes`, with its sender.
    public func receive(maxBytes: Int) async throws(NetError) -> (
        bytes: [UInt8], source: SocketAddress, flags: MessageFlags
    ) {
        guard maxBytes >= 0 else { throw .invalidArgument }
        while true {
            try core.checkOpen()
            if let taken = try core.attemptDatagramReceive(upTo: maxBytes, flags: []) {
                return (taken.output, taken.receipt.source, taken.receipt.flags)
            }
            let blocked = core.datagramReadable
            try await core.waitAsync(for: blocked.condition, on: blocked.buffer)
        }
    }

    /// Inbound data as an `AsyncSequence` of byte arrays of at most `chunkSize` bytes, ending at
    /// end-of-file. Data stays in the socket's buffer until the consumer asks for it, so a slow
    /// consumer holds the sender back.
    public func inbound(chunkSize: Int = 64 << 10) -> InboundBytes {
        InboundBytes(socket: self, chunkSize: Swift.max(1, chunkSize))
    }
}

/// A socket's inbound stream of bytes (see `NetSocket.inbound(chunkSize:)`).
public struct InboundBytes: AsyncSequence, Sendable {
    public typealias Element = [UInt8]
    public typealias Failure = NetError
    let socket: NetSocket
    let chunkSize: Int

    public struct AsyncIterator: AsyncIteratorProtocol {
        let socket: NetSocket
        let chunkSize: Int
        var finished = false

        public mutating func next() async throws(NetError) -> [UInt8]? {
            guard !finished else { return nil }
            let bytes = try await socket.read(maxBytes: chunkSize)
            if bytes.isEmpty {
                finished = true
                return nil
            }
            return bytes
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(socket: socket, chunkSize: chunkSize) }
}

extension NetworkStack {
    /// Connects a local socket to `address`, runs `body` with it and closes it, however `body`
    /// ends.
    public func withConnection<T: Sendable>(
        to address: SocketAddress, type: SocketType = .stream,
        _ body: (NetSocket) async throws -> T
    ) async throws -> T {
        let socket = try self.socket(.local, type)
        defer { socket.close() }
        try await socket.connect(to: address)
        return try await body(socket)
    }

    /// Runs `body` with a new socket and closes it afterwards.
    public func withSocket<T>(_ domain: SocketDomain, _ type: SocketType, _ body: (NetSocket) throws -> T) throws -> T {
        let socket = try self.socket(domain, type)
        defer { socket.close() }
        return try body(socket)
    }
}
