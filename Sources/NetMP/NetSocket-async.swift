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

    /// Reads up to `maxBytes` (at least one byte unless end-of-file, then an empty array).
    public func read(maxBytes: Int) async throws(NetError) -> [UInt8] {
        guard maxBytes >= 0 else { throw .invalidArgument }
        if core.type == .datagram { return try await receive(maxBytes: maxBytes).bytes }
        var result = [UInt8](repeating: 0, count: core.readAllocation(maxBytes, flags: []))
        var copied = 0
        while true {
            try core.checkOpen()
            let attempt = result.withUnsafeMutableBytes { raw in
                Result { () throws(NetError) in try core.attemptStreamReceive(into: raw, flags: [], copied: &copied) }
            }
            guard let blocked = try attempt.get() else { break }
            try await core.waitAsync(for: blocked.condition, on: blocked.buffer)
        }
        result.removeSubrange(copied...)
        return result
    }

    /// Writes all of `bytes`, suspending while the peer's buffer is full.
    public func write(_ bytes: [UInt8]) async throws(NetError) {
        try await send(bytes, to: nil)
    }

    /// Sends `bytes` (a whole datagram, or all of a stream write) to `address` or the peer.
    public func send(_ bytes: [UInt8], to address: SocketAddress?) async throws(NetError) {
        var sent = 0
        while true {
            try core.checkOpen()
            let attempt = bytes.withUnsafeBytes { raw in
                Result { () throws(NetError) in try core.attemptSend(raw, to: address, sent: &sent) }
            }
            guard let blocked = try attempt.get() else { return }
            try await core.waitAsync(for: blocked.condition, on: blocked.buffer)
        }
    }

    /// Receives one datagram of at most `maxBytes`, with its sender.
    public func receive(maxBytes: Int) async throws(NetError) -> (
        bytes: [UInt8], source: SocketAddress, flags: MessageFlags
    ) {
        guard maxBytes >= 0 else { throw .invalidArgument }
        var result = [UInt8](repeating: 0, count: core.readAllocation(maxBytes, flags: []))
        while true {
            try core.checkOpen()
            let attempt = result.withUnsafeMutableBytes { raw in
                Result { () throws(NetError) in try core.attemptDatagramReceive(into: raw, flags: []) }
            }
            switch try attempt.get() {
            case .success(let receipt):
                result.removeSubrange(receipt.count...)
                return (result, receipt.source, receipt.flags)
            case .failure(let blocked):
                try await core.waitAsync(for: blocked.blocked.condition, on: blocked.blocked.buffer)
            }
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
