import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPRuntime
@testable import NetMPSockets
@testable import NetMPTCP

/// A bulk transfer from one stack to another through a simulated switch, in the deterministic
/// mode (stepped on the caller's thread under a manual clock) or the threaded one.
struct TCPTransferOutcome {
    var sent = StreamHash()
    var received = StreamHash()
    var finished = false
    /// Simulated seconds (deterministic mode) or wall seconds (threaded) it took.
    var seconds = 0.0
    var client = TCPStackStatistics.zero
    var server = TCPStackStatistics.zero
    var switchStats: SwitchStatistics?
}

extension TCPStackStatistics {
    static let zero = TCPStackStatistics(
        segmentsSent: 0, segmentsReceived: 0, malformedSegments: 0, resetsSent: 0, retransmittedSegments: 0,
        retransmissionTimeouts: 0, fastRetransmits: 0, listenOverflows: 0, liveConnections: 0, timeWaitRecords: 0,
        reservedTuples: 0)
}

/// The bytes of a transfer: 64 KiB blocks drawn from a seeded generator, so 64 MiB never sit
/// in memory at once.
struct TransferSource {
    private var generator: SeededGenerator
    private(set) var block: [UInt8] = []
    private(set) var offsetInBlock = 0
    private(set) var produced = 0
    let total: Int

    init(seed: UInt64, total: Int) {
        generator = SeededGenerator(seed: seed)
        self.total = total
    }

    /// The next bytes not yet consumed (empty at the end).
    mutating func pending() -> ArraySlice<UInt8> {
        if offsetInBlock == block.count {
            let size = Swift.min(65536, total - produced)
            guard size > 0 else { return [] }
            block = generator.bytes(size)
            produced += size
            offsetInBlock = 0
        }
        return block[offsetInBlock...]
    }

    mutating func consume(_ count: Int) { offsetInBlock += count }
}

/// Reads what is there (non-blocking, or blocking until some arrives) into `hash`; true at
/// end-of-file.
func drain(_ socket: NetSocket, into hash: inout StreamHash, scratch: inout [UInt8]) throws(NetError) -> Bool {
    var failure = NetError.wouldBlock
    while true {
        var n = 0
        var blocked = false
        scratch.withUnsafeMutableBytes { raw in
            do {
                n = try socket.read(into: raw)
            } catch {
                blocked = true
                failure = (error as? NetError) ?? .invalidArgument
            }
        }
        if blocked {
            if failure == .wouldBlock { return false }
            throw failure
        }
        if n == 0 { return true }
        scratch.withUnsafeBytes { raw in hash.add(UnsafeRawBufferPointer(rebasing: raw[0..<n])) }
        if !socket.isNonBlocking { return false }
    }
}

/// Writes what fits of `source` (all of it when blocking); returns bytes written.
func fill(_ socket: NetSocket, from source: inout TransferSource, hash: inout StreamHash) -> Int {
    var written = 0
    while true {
        let bytes = source.pending()
        if bytes.isEmpty { return written }
        let n = bytes.withUnsafeBytes { raw -> Int in (try? socket.write(raw)) ?? 0 }
        if n <= 0 { return written }
        bytes.withUnsafeBytes { raw in hash.add(UnsafeRawBufferPointer(rebasing: raw[0..<n])) }
        source.consume(n)
        written += n
    }
}

func tcpTransfer(
    seed: UInt64, impairments: LinkImpairments, bytes total: Int, threaded: Bool, threadCount: Int = 2,
    limit: Duration = .seconds(600), minimumRTO: Duration? = nil, congestionControl: TCPCongestionAlgorithm? = nil,
    ecn: Bool = false
) throws -> TCPTransferOutcome {
    let network = threaded ? SimulatedNetwork(threadedWithSeed: seed) : SimulatedNetwork(seed: seed)
    defer { network.shutdown() }
    let lan = network.makeSwitch(impairments: impairments)
    let a = network.makeStack(threadCount: threadCount)
    let b = network.makeStack(threadCount: threadCount)
    try network.attach(a, to: lan, address: "198.18.0.1/24")
    try network.attach(b, to: lan, address: "198.18.0.2/24")
    if let minimumRTO {
        // A LAN of 1 ms: a lower RTO floor (as Linux's per-route rto_min) keeps wall time short.
        a.tcpConfiguration.minimumRTO = minimumRTO.nanoseconds
        b.tcpConfiguration.minimumRTO = minimumRTO.nanoseconds
    }
    if let congestionControl {
        a.tcpConfiguration.congestionControl = congestionControl
        b.tcpConfiguration.congestionControl = congestionControl
    }
    a.tcpConfiguration.explicitCongestionNotification = ecn
    b.tcpConfiguration.explicitCongestionNotification = ecn
    guard let serverAddress = IPv4Address("198.18.0.2") else { throw NetError.invalidArgument }
    let target = SocketAddress.ipv4(serverAddress, port: 5000)
    let listener = try b.socket(.inet, .stream)
    try listener.bind(to: target)
    try listener.listen()
    let client = try a.socket(.inet, .stream)
    var outcome = TCPTransferOutcome()
    var scratch = [UInt8](repeating: 0, count: 1 << 16)
    let start = network.clock.nanoseconds
    if threaded {
        try client.connect(to: target)
        let server = try listener.accept()
        let sentBox = LockedValue(StreamHash())
        let writer = OSThread.start(name: "tcp-sim-writer") {
            var source = TransferSource(seed: seed, total: total)
            var hash = StreamHash()
            _ = fill(client, from: &source, hash: &hash)
            try? client.shutdown(.write)
            sentBox.withLock { $0 = hash }
        }
        var received = StreamHash()
        while try !drain(server, into: &received, scratch: &scratch) {}
        writer.join()
        outcome.received = received
        outcome.sent = sentBox.withLock { $0 }
        outcome.finished = true
        server.close()
    } else {
        client.isNonBlocking = true
        listener.isNonBlocking = true
        let run = try steppedTransfer(
            network: network, listener: listener, client: client, to: target,
            source: TransferSource(seed: seed, total: total), limit: limit)
        outcome.sent = run.sent
        outcome.received = run.received
        outcome.finished = run.finished
        run.server?.close()
    }
    outcome.seconds = Double(network.clock.nanoseconds - start) / 1e9
    outcome.client = a.tcpStatistics()
    outcome.server = b.tcpStatistics()
    outcome.switchStats = lan.statistics
    client.close()
    listener.close()
    return outcome
}

extension StackTestCase {
    /// A TCP socket listening on an ephemeral loopback port, and its address.
    func makeListener(backlog: Int = 128) throws -> (NetSocket, SocketAddress) {
        let listener = try stack.socket(.inet, .stream)
        try listener.bind(to: .ipv4(.loopback, port: 0))
        try listener.listen(backlog: backlog)
        return (listener, listener.localAddress)
    }
}

/// What `steppedTransfer` did: the accepted connection (still open), the streams' hashes, and
/// whether the server read end of file in time.
struct SteppedTransfer {
    var server: NetSocket?
    var sent = StreamHash()
    var received = StreamHash()
    var finished = false
}

/// The deterministic mode's bulk transfer: steps `network` 1 ms at a time while the non-blocking
/// `client` connects to `target` and sends all of `source` then shuts down writing, and the
/// connection `listener` (non-blocking) accepts reads it, until end of file or `limit` passes.
func steppedTransfer(
    network: SimulatedNetwork, listener: NetSocket, client: NetSocket, to target: SocketAddress,
    source: TransferSource, limit: Duration
) throws -> SteppedTransfer {
    var source = source
    var run = SteppedTransfer()
    do {
        try client.connect(to: target)
    } catch {
        guard error == .inProgress else { throw error }
    }
    var scratch = [UInt8](repeating: 0, count: 1 << 16)
    var shutDown = false
    let end = network.clock.nanoseconds &+ limit.nanoseconds
    while network.clock.nanoseconds < end {
        if run.server == nil, let accepted = try? listener.accept() {
            accepted.isNonBlocking = true
            run.server = accepted
        }
        if client.state.contains(.connected) {
            _ = fill(client, from: &source, hash: &run.sent)
            if !shutDown && run.sent.count == source.total {
                try client.shutdown(.write)
                shutDown = true
            }
        }
        if let server = run.server, try drain(server, into: &run.received, scratch: &scratch) {
            run.finished = true
            return run
        }
        network.run(for: .milliseconds(1))
    }
    return run
}

/// A non-blocking connect: the driven stack may finish the handshake inside connect, or leave it
/// in progress (`.inProgress`); any other error fails the test.
func startConnect(
    _ socket: NetSocket, to address: SocketAddress, file: StaticString = #filePath, line: UInt = #line
) {
    do {
        try socket.connect(to: address)
    } catch {
        XCTAssertEqual(error, .inProgress, file: file, line: line)
    }
}
