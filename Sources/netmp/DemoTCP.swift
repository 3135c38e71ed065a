import NetMP

/// The demo's TCP part: two stacks on a simulated switch that loses 2 % of frames and reorders
/// some, an echo exchange and a bulk transfer, both checked by hash, with what it took to
/// recover. Returns what went wrong.
func tcpRun(bulkBytes: Int = 16 << 20) throws -> [String] {
    let network = SimulatedNetwork(threadedWithSeed: 9293)
    defer { network.shutdown() }
    let lan = network.makeSwitch(
        impairments: LinkImpairments(
            loss: 0.02, duplication: 0.005, reordering: 0.01, reorderDelay: .milliseconds(2), delay: .milliseconds(1)))
    let a = network.makeStack(threadCount: 2)
    let b = network.makeStack(threadCount: 2)
    try network.attach(a, to: lan, address: "198.18.1.1/24")
    try network.attach(b, to: lan, address: "198.18.1.2/24")
    for stack in [a, b] {
        // A 1 ms LAN: a lower RTO floor, as a per-route rto_min would give.
        stack.tcpConfiguration.minimumRTO = 20_000_000
    }
    print("  tcp: 2 stacks on a switch losing 2 % of frames (and reordering 1 %), 1 ms each way")
    var problems: [String] = []
    let address = SocketAddress.ipv4(IPv4Address(198, 18, 1, 2), port: 80)
    let listener = try b.socket(.inet, .stream)
    try listener.bind(to: address)
    try listener.listen()

    // Echo: the server returns what it reads until end-of-file.
    let echoServer = OSThread.start(name: "demo-tcp-echo") {
        guard let connection = try? listener.accept() else { return }
        try? connection.setOption(.noDelay, 1)
        while let bytes = try? connection.read(maxBytes: 4096), !bytes.isEmpty {
            if (try? connection.write(bytes)) == nil { break }
        }
        connection.close()
    }
    let client = try a.socket(.inet, .stream)
    try client.setOption(.noDelay, 1)
    try client.connect(to: address)
    var matched = 0
    let rounds = 200
    let start = now()
    for round in 0..<rounds {
        let message = tcpPayload(seed: UInt64(round), count: 1 + (round * 97) % 3000)
        try client.write(message)
        let reply = try client.read(maxBytes: message.count, flags: .waitAll)
        if tcpHash(reply) == tcpHash(message) { matched += 1 } else { problems.append("echo \(round) differs") }
    }
    let echoTime = now() - start
    try client.shutdown(.write)
    _ = try client.read(maxBytes: 1)
    client.close()
    echoServer.join()
    print(
        "  tcp echo: \(matched) of \(rounds) messages (1-3000 bytes) came back exact, "
            + "\(format3(echoTime / Double(rounds) * 1e3)) ms per round trip")

    // Bulk: one connection carries `bulkBytes`; both ends hash the stream.
    let sender = try a.socket(.inet, .stream)
    try sender.connect(to: address)
    let receiver = try listener.accept()
    let expected = Hashes()
    let writer = OSThread.start(name: "demo-tcp-bulk") {
        var hash = tcpHashSeed
        var sent = 0
        var block = 0
        while sent < bulkBytes {
            let chunk = tcpPayload(seed: 1_000 + UInt64(block), count: Swift.min(65536, bulkBytes - sent))
            guard (try? sender.write(chunk)) != nil else { break }
            hash = tcpHash(chunk, into: hash)
            sent += chunk.count
            block += 1
        }
        try? sender.shutdown(.write)
        expected.set(hash)
    }
    let bulkStart = now()
    var received = 0
    var hash = tcpHashSeed
    while true {
        let bytes = try receiver.read(maxBytes: 65536)
        if bytes.isEmpty { break }
        received += bytes.count
        hash = tcpHash(bytes, into: hash)
    }
    writer.join()
    let bulkTime = now() - bulkStart
    receiver.close()
    sender.close()
    listener.close()
    let stats = a.tcpStatistics()
    let exact = received == bulkBytes && hash == expected.value
    print("  tcp bulk: \(received >> 20) MiB in \(format3(bulkTime)) s, stream hash matched: \(exact)")
    print(
        "  tcp recovery (sender): \(stats.retransmittedSegments) segments retransmitted, "
            + "\(stats.fastRetransmits) fast retransmits, \(stats.retransmissionTimeouts) timeouts; "
            + "switch lost \(lan.statistics.lost) frames")
    if !exact { problems.append("bulk stream differs (\(received) of \(bulkBytes) bytes)") }
    if matched != rounds { problems.append("\(rounds - matched) echoes differ") }
    return problems
}

private let tcpHashSeed: UInt64 = 0xcbf2_9ce4_8422_2325

/// FNV-1a over `bytes`, continuing from `hash`.
private func tcpHash(_ bytes: [UInt8], into hash: UInt64 = tcpHashSeed) -> UInt64 {
    var value = hash
    for byte in bytes {
        value ^= UInt64(byte)
        value = value &* 0x0000_0100_0000_01b3
    }
    return value
}

private func tcpPayload(seed: UInt64, count: Int) -> [UInt8] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<count).map { _ in
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state)
    }
}

private final class Hashes: @unchecked Sendable {
    private let lock = NetLock()
    private var stored: UInt64 = 0
    func set(_ value: UInt64) { lock.withLock { stored = value } }
    var value: UInt64 { lock.withLock { stored } }
}
