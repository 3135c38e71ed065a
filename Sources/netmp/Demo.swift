import ArgumentParser
import NetMP
import Synchronization

/// The main job: a short run of a NetMP stack that shows its parts working together.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo", abstract: "The main job: a short, checked run of a NetMP stack (the default command).")

    @Option(help: "Client connections served by the echo server.")
    var clients = 8

    @Option(help: "Bytes each client sends and checks.")
    var bytes = 4 << 20

    func run() throws {
        guard clients > 0, clients <= 1000, bytes >= 0, bytes <= 1 << 30 else {
            throw ValidationError("clients must be 1...1000 and bytes 0...1 GiB")
        }
        let stack = NetworkStack()
        print("NetMP demo: \(stack.threads.count) protocol threads, local domain")
        let start = now()

        // 1. Messages around the ring of protocol threads.
        let hops = try tokenRing(stack, laps: 10_000)
        print("  token ring: \(hops) messages passed across \(stack.threads.count) protocol threads in order")

        let (problems, reports) = try echoRun(stack, clients: clients, bytes: bytes)
        let elapsed = now() - start
        for problem in problems { print("  FAILED \(problem)") }
        print("  echo: \(clients) clients x \(bytes) bytes each way, every stream hash matched: \(problems.isEmpty)")
        print("  reports received by datagram: \(reports.count) of \(clients)")
        print("  sockets alive after every handle closed: \(stack.liveSocketCount)")
        print("  done in \(format3(elapsed)) s")
        stack.shutdown()
        if !problems.isEmpty || reports.count != clients || stack.liveSocketCount != 0 { throw ExitCode.failure }
    }
}

/// Runs the echo server and its clients; returns failures and the clients' datagram reports.
private func echoRun(_ stack: NetworkStack, clients: Int, bytes: Int) throws -> ([String], [String]) {
    // 2. An echo server on one thread serving every client through a poller.
    let listener = try stack.socket(.local, .stream)
    try listener.bind(to: .local("/demo/echo"))
    try listener.listen(backlog: 64)
    let log = try stack.socket(.local, .datagram)
    try log.bind(to: .local("/demo/log"))
    let server = EchoServer(listener: listener, expectedClients: clients)
    let serverThread = OSThread.start(name: "demo-echo") { server.run() }

    // 3. Clients: half on blocking threads, half as async tasks.
    let failures = Failures()
    let threadClients = (clients + 1) / 2
    let threads = (0..<threadClients).map { index in
        OSThread.start(name: "demo-client-\(index)") {
            do {
                try blockingClient(stack, index: index, bytes: bytes)
            } catch {
                failures.add("client \(index): \(error)")
            }
        }
    }
    let asyncDone = Counter()
    for index in threadClients..<clients {
        Task {
            do {
                try await asyncClient(stack, index: index, bytes: bytes)
            } catch {
                failures.add("client \(index): \(error)")
            }
            asyncDone.increment()
        }
    }
    for thread in threads { thread.join() }
    while asyncDone.value < clients - threadClients { netmpYield() }
    serverThread.join()

    // 4. Every client reported by datagram.
    var reports: [String] = []
    log.isNonBlocking = true
    while let report = try? log.receive(maxBytes: 256) { reports.append(String(decoding: report.bytes, as: UTF8.self)) }
    listener.close()
    log.close()
    return (failures.all, reports)
}

func netmpYield() { OSThread.yieldNow() }

/// Passes a counter around the protocol threads by asynchronous messages, each thread
/// forwarding to the next, and checks that every hop arrived in order.
private func tokenRing(_ stack: NetworkStack, laps: Int) throws -> Int {
    let threads = stack.threads
    let total = laps * threads.count
    let hops = Atomic<Int>(0)
    let finished = Atomic<Bool>(false)
    @Sendable func hop(_ count: Int) {
        let seen = hops.add(1, ordering: .relaxed).newValue
        precondition(seen == count + 1, "token ring out of order")
        if count + 1 == total {
            finished.store(true, ordering: .releasing)
            return
        }
        threads[(count + 1) % threads.count].send { hop(count + 1) }
    }
    threads[0].send { hop(0) }
    while !finished.load(ordering: .acquiring) { netmpYield() }
    return hops.load(ordering: .relaxed)
}

private func payload(index: Int, count: Int) -> [UInt8] {
    var state = UInt64(index + 1) &* 0x9E37_79B9_7F4A_7C15
    return (0..<count).map { _ in
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state)
    }
}

private func fnv(_ bytes: [UInt8]) -> UInt64 {
    bytes.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x0000_0100_0000_01b3 }
}

private func blockingClient(_ stack: NetworkStack, index: Int, bytes: Int) throws {
    let socket = try stack.socket(.local, .stream)
    try socket.connect(to: .local("/demo/echo"))
    let data = payload(index: index, count: bytes)
    let writer = OSThread.start(name: "demo-writer") {
        _ = try? socket.write(data)
        try? socket.shutdown(.write)
    }
    var echoed: [UInt8] = []
    echoed.reserveCapacity(bytes)
    while true {
        let chunk = try socket.read(maxBytes: 64 << 10)
        if chunk.isEmpty { break }
        echoed += chunk
    }
    writer.join()
    try report(stack, index: index, ok: fnv(echoed) == fnv(data) && echoed.count == bytes)
}

private func asyncClient(_ stack: NetworkStack, index: Int, bytes: Int) async throws {
    let data = payload(index: index, count: bytes)
    let ok = try await stack.withConnection(to: .local("/demo/echo")) { socket in
        async let sent: Void = {
            try await socket.write(data)
            try socket.shutdown(.write)
        }()
        var echoed: [UInt8] = []
        for try await chunk in socket.inbound() { echoed += chunk }
        try await sent
        return fnv(echoed) == fnv(data) && echoed.count == bytes
    }
    try report(stack, index: index, ok: ok)
}

private func report(_ stack: NetworkStack, index: Int, ok: Bool) throws {
    let socket = try stack.socket(.local, .datagram)
    try socket.send(Array("client \(index) \(ok ? "ok" : "MISMATCH")".utf8), to: .local("/demo/log"))
    if !ok { throw DemoError.mismatch(index) }
}

enum DemoError: Error { case mismatch(Int) }

final class Failures: Sendable {
    private let list = Mutex<[String]>([])
    func add(_ message: String) { list.withLock { $0.append(message) } }
    var all: [String] { list.withLock { $0 } }
}

/// One thread serving every connection without blocking, driven by a poller.
final class EchoServer: @unchecked Sendable {
    let listener: NetSocket
    let expectedClients: Int

    init(listener: NetSocket, expectedClients: Int) {
        self.listener = listener
        self.expectedClients = expectedClients
    }

    func run() {
        let poller = SocketPoller()
        listener.isNonBlocking = true
        try? poller.register(listener, interest: .readable, token: 0)
        var connections: [Int: (socket: NetSocket, pending: [UInt8], readDone: Bool)] = [:]
        var nextToken = 1
        var finished = 0
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while finished < expectedClients {
            for event in poller.wait(timeout: .seconds(10)) {
                if event.token == 0 {
                    while let client = try? listener.accept() {
                        client.isNonBlocking = true
                        connections[nextToken] = (client, [], false)
                        try? poller.register(client, interest: [.readable, .writable], token: nextToken)
                        nextToken += 1
                    }
                    continue
                }
                guard var connection = connections[event.token] else { continue }
                // Echo what is pending, then read more while there is room to hold it.
                if !connection.pending.isEmpty, let n = try? connection.socket.write(connection.pending) {
                    connection.pending.removeFirst(n)
                }
                while connection.pending.count < 256 << 10 && !connection.readDone {
                    guard
                        let n = try? buffer.withUnsafeMutableBytes({ raw in
                            try connection.socket.read(into: raw)
                        })
                    else { break }
                    if n == 0 {
                        connection.readDone = true
                        break
                    }
                    connection.pending += buffer[0..<n]
                    if let sent = try? connection.socket.write(connection.pending) {
                        connection.pending.removeFirst(sent)
                    }
                }
                if connection.readDone && connection.pending.isEmpty {
                    try? connection.socket.shutdown(.write)
                    poller.unregister(connection.socket)
                    connection.socket.close()
                    connections[event.token] = nil
                    finished += 1
                } else {
                    connections[event.token] = connection
                }
            }
        }
    }
}
