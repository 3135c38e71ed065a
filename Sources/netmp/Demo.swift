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
        print("NetMP demo: \(stack.threads.count) protocol threads; local sockets, then a virtual IPv4 network")
        let start = now()

        // 1. Messages around the ring of protocol threads.
        let hops = try tokenRing(stack, laps: 10_000)
        print("  token ring: \(hops) messages passed across \(stack.threads.count) protocol threads in order")

        let (problems, reports) = try echoRun(stack, clients: clients, bytes: bytes)
        let networkProblems = try networkRun() + tcpRun()
        let elapsed = now() - start
        for problem in problems + networkProblems { print("  FAILED \(problem)") }
        print("  echo: \(clients) clients x \(bytes) bytes each way, every stream hash matched: \(problems.isEmpty)")
        print("  reports received by datagram: \(reports.count) of \(clients)")
        print("  sockets alive after every handle closed: \(stack.liveSocketCount)")
        print("  done in \(format3(elapsed)) s")
        stack.shutdown()
        if !problems.isEmpty || reports.count != clients || stack.liveSocketCount != 0 || !networkProblems.isEmpty {
            throw ExitCode.failure
        }
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

/// Two stacks joined by a simulated switch (2 ms each way, jitter): ping, then UDP echoes
/// checked byte for byte. Returns what went wrong.
private func networkRun() throws -> [String] {
    let network = SimulatedNetwork(threadedWithSeed: 2026)
    defer { network.shutdown() }
    let lan = network.makeSwitch(impairments: LinkImpairments(delay: .milliseconds(2), jitter: .microseconds(300)))
    let a = network.makeStack(threadCount: 2)
    let b = network.makeStack(threadCount: 2)
    try network.attach(a, to: lan, address: "198.18.0.1/24")
    try network.attach(b, to: lan, address: "198.18.0.2/24")
    var problems: [String] = []
    print("  virtual network: 2 stacks on a simulated switch, 198.18.0.0/24, 2 ms delay with jitter")

    var times: [String] = []
    for sequence in 1...3 {
        let rtt = try a.ping(IPv4Address(198, 18, 0, 2), sequence: UInt16(sequence))
        times.append("\(format3(Double(rtt.nanoseconds) / 1e6)) ms")
    }
    print("  ping 198.18.0.2: \(times.joined(separator: ", "))")

    let server = try b.socket(.inet, .datagram)
    try server.bind(to: .ipv4(.unspecified, port: 7))
    server.receiveTimeout = .seconds(2)
    let echo = OSThread.start(name: "demo-udp-echo") {
        while let message = try? server.receive(maxBytes: 2048) {
            if message.bytes.isEmpty { break }
            _ = try? server.send(message.bytes, to: message.source)
        }
    }
    let client = try a.socket(.inet, .datagram)
    try client.connect(to: .ipv4(IPv4Address(198, 18, 0, 2), port: 7))
    client.receiveTimeout = .seconds(2)
    let rounds = 40
    let window = 25
    var echoed = 0
    for round in 0..<rounds {
        var sent: [[UInt8]] = []
        for index in 0..<window {
            let datagram = payload(index: round * window + index, count: 64 + (round * 37 + index * 101) % 1200)
            try client.write(datagram)
            sent.append(datagram)
        }
        // Jitter may reorder datagrams: compare as a set of hashes.
        var expected = Set(sent.map(fnv))
        for _ in 0..<window {
            let reply = try client.read(maxBytes: 2048)
            if expected.remove(fnv(reply)) != nil { echoed += 1 } else { problems.append("an echo that was not sent") }
        }
    }
    try client.write([])
    try server.send([], to: client.localAddress)
    echo.join()
    let stats = lan.statistics
    print("  udp echo: \(echoed) of \(rounds * window) datagrams (64-1263 bytes) came back exact")
    print("  switch: \(stats.received) frames in, \(stats.delivered) delivered, \(stats.lost) lost")
    if echoed != rounds * window { problems.append("\(rounds * window - echoed) echoes missing") }
    return problems
}
