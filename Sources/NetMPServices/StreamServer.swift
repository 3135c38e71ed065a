import NetMP
import Synchronization

/// Accepts connections on a listening stream socket and runs `handler` on each in its own task,
/// until stopped. Written against the generic `NetSocket` stream API, so it serves local
/// stream sockets and TCP alike.
public final class StreamServer: Sendable {
    public let listener: NetSocket
    public let counters: ServiceCounters
    private let handler: @Sendable (NetSocket, ServiceCounters) async -> Void
    private let connections = Mutex<[ObjectIdentifier: NetSocket]>([:])
    private let stopped = Atomic<Bool>(false)

    public init(
        listener: NetSocket, name: String, handler: @escaping @Sendable (NetSocket, ServiceCounters) async -> Void
    ) {
        self.listener = listener
        self.counters = ServiceCounters(name: name)
        self.handler = handler
    }

    /// Accepts until `stop()` (or the listener fails); connections run in child tasks, and
    /// this returns once every one has ended.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            while !stopped.load(ordering: .acquiring) {
                let connection: NetSocket
                do throws(NetError) {
                    connection = try await listener.accept()
                } catch {
                    if error == .connectionAborted || error == .wouldBlock { continue }
                    break
                }
                counters.accepted.add(1, ordering: .relaxed)
                counters.active.add(1, ordering: .relaxed)
                let key = ObjectIdentifier(connection)
                connections.withLock { $0[key] = connection }
                if stopped.load(ordering: .acquiring) { connection.close() }
                group.addTask { [self] in
                    await handler(connection, counters)
                    connection.close()
                    connections.withLock { _ = $0.removeValue(forKey: key) }
                    counters.active.subtract(1, ordering: .relaxed)
                }
            }
        }
    }

    /// Closes the listener and every open connection (their handlers end with an error).
    public func stop() {
        stopped.store(true, ordering: .releasing)
        listener.close()
        let open = connections.withLock { Array($0.values) }
        for connection in open { connection.close() }
    }
}

/// Echo (RFC 862): every byte received is sent back; end of input half-closes the reply.
public enum EchoService {
    public static func handle(_ connection: NetSocket, counters: ServiceCounters) async {
        do {
            while true {
                let bytes = try await connection.read(maxBytes: 64 << 10)
                if bytes.isEmpty { break }
                counters.received.add(bytes.count, ordering: .relaxed)
                let sent = try await connection.write(bytes)
                counters.sent.add(sent, ordering: .relaxed)
                if sent < bytes.count { throw NetError.brokenPipe }
            }
            try connection.shutdown(.write)
        } catch {
            counters.failures.add(1, ordering: .relaxed)
        }
    }
}

/// Discard (RFC 863): everything received is thrown away; the service closes at end of input.
public enum DiscardService {
    public static func handle(_ connection: NetSocket, counters: ServiceCounters) async {
        do {
            while true {
                let bytes = try await connection.read(maxBytes: 64 << 10)
                if bytes.isEmpty { break }
                counters.received.add(bytes.count, ordering: .relaxed)
            }
        } catch {
            counters.failures.add(1, ordering: .relaxed)
        }
    }
}
