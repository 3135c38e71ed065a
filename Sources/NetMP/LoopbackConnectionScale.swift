import NetMPRuntime
import NetMPSockets
import NetMPTCP
import NetMPWire

/// Many concurrent TCP connections in one stack over its loopback, all accepted from one listen
/// socket, each exchanging a few bytes both ways (checked byte for byte), then left idle while
/// what they cost is measured: the scale test and `netmp bench connections` run it.
///
/// It runs in the deterministic mode (stepped on the caller's thread, manual clock), so its
/// counts reproduce from the seed. One client address gives about 16,000 ephemeral ports per
/// destination, so the clients connect to several loopback addresses (127.0.0.1, 127.0.0.2, …:
/// all of 127/8 is this host), on one port, to a listener bound to the wildcard address.
package enum LoopbackConnectionScale {
    /// Connections sent to each loopback address (of the 16,384 ports in the ephemeral range).
    package static let connectionsPerDestination = 12_000
    /// The listener's port.
    package static let port: UInt16 = 5001

    package struct Report: Sendable {
        /// Connections opened, accepted and exchanged on (each has two sockets in the stack).
        package var connections = 0
        /// Loopback addresses the clients connected to.
        package var destinations = 0
        /// Bytes each side wrote and the other read, per connection.
        package var payloadBytes = 0
        /// Connections whose bytes did not arrive exactly (wrong, short, or not accepted).
        package var mismatches = 0
        /// Idle sockets whose buffers still held bytes or chunks (should be none).
        package var socketsHoldingChunks = 0
        /// Heap in use (malloc) and resident set, grown from before the first connection to all
        /// of them idle.
        package var heapBytes = 0
        package var residentBytes = 0
        /// One idle accepted socket, object by object (socket side, then TCP side).
        package var socketFootprint: [FootprintItem] = []
        /// The two socket buffers' objects in `socketFootprint` (each empty, holding no chunk).
        package var bufferBytesPerSocket = 0
        /// The connection value's size (inside the control block's footprint).
        package var connectionValueBytes = MemoryLayout<TCPConnection<ByteSlice>>.size
        /// A TIME_WAIT record with its table key.
        package var timeWaitRecordBytes = TCPTimeWait.recordBytes
        /// Simulated time the run took.
        package var simulatedNanoseconds: Int64 = 0

        package var heapBytesPerConnection: Double { Double(heapBytes) / Double(Swift.max(1, connections)) }
        package var residentBytesPerConnection: Double {
            Double(residentBytes) / Double(Swift.max(1, connections))
        }
        /// One socket's objects: half a connection by this count.
        package var footprintBytesPerSocket: Int { socketFootprint.reduce(0) { $0 + $1.bytes } }
    }

    /// Byte `index` of what connection `connection` sends in `direction` (0 client to server, 1
    /// back): the first four bytes name the connection, so an accepted socket learns whose it is.
    @inline(__always) static func byte(_ index: Int, of connection: Int, direction: Int) -> UInt8 {
        if index < 4 { return UInt8(truncatingIfNeeded: connection >> (index * 8)) }
        return UInt8(truncatingIfNeeded: connection &* 31 &+ index &* 7 &+ direction &* 101)
    }

    static func message(for connection: Int, direction: Int, length: Int) -> [UInt8] {
        (0..<length).map { byte($0, of: connection, direction: direction) }
    }

    /// Opens `connections` connections (in batches of `batch`, under the listen backlog), has
    /// each send `payload` bytes (at least 4) both ways, lets every timer run out, and measures.
    /// The sockets are closed and the network run until every connection has gone before it
    /// returns.
    package static func run(
        connections: Int, payload: Int = 64, threadCount: Int = 2, seed: UInt64 = 1, batch: Int = 1000
    ) throws(NetError) -> Report {
        let network = SimulatedNetwork(seed: seed)
        defer { network.shutdown() }
        let stack = network.makeStack(threadCount: threadCount)
        let start = network.clock.nanoseconds
        let listener = try stack.socket(.inet, .stream)
        try listener.bind(to: .ipv4(.unspecified, port: port))
        try listener.listen(backlog: ListenQueue.maximumBacklog)
        listener.isNonBlocking = true
        let payload = Swift.max(4, payload)
        var report = Report()
        report.connections = connections
        report.payloadBytes = payload
        report.destinations = (connections + connectionsPerDestination - 1) / connectionsPerDestination
        var clients: [NetSocket] = []
        var servers: [NetSocket] = []
        clients.reserveCapacity(connections)
        servers.reserveCapacity(connections)
        var scratch = [UInt8](repeating: 0, count: payload)
        let heapBefore = HeapFootprint.inUse
        let residentBefore = HeapFootprint.residentBytes
        var opened = 0
        while opened < connections {
            let count = Swift.min(batch, connections - opened)
            for index in opened..<(opened + count) {
                let client = try stack.socket(.inet, .stream)
                client.isNonBlocking = true
                let offset = UInt32(truncatingIfNeeded: index / connectionsPerDestination)
                let destination = IPv4Address(rawValue: IPv4Address.loopback.rawValue &+ offset)
                do {
                    try client.connect(to: .ipv4(destination, port: port))
                } catch .inProgress {
                    // Finished by the steps below.
                }
                clients.append(client)
            }
            network.runUntilIdle()
            let accepted = acceptAll(from: listener, expecting: count, network: network)
            report.mismatches += count - accepted.count
            for index in opened..<(opened + count) {
                report.mismatches += write(message(for: index, direction: 0, length: payload), to: clients[index])
            }
            network.runUntilIdle()
            // Each accepted socket learns its connection from the first bytes, checks the rest,
            // and answers.
            var acceptedIndices: [Int] = []
            for server in accepted {
                server.isNonBlocking = true
                let got = read(server, into: &scratch)
                let index = got >= 4 ? scratch.prefix(4).reversed().reduce(0) { $0 << 8 | Int($1) } : -1
                guard got == payload, index >= opened, index < opened + count,
                    scratch == message(for: index, direction: 0, length: payload)
                else {
                    report.mismatches += 1
                    continue
                }
                acceptedIndices.append(index)
                report.mismatches += write(message(for: index, direction: 1, length: payload), to: server)
            }
            network.runUntilIdle()
            for index in acceptedIndices {
                let got = read(clients[index], into: &scratch)
                if got != payload || scratch != message(for: index, direction: 1, length: payload) {
                    report.mismatches += 1
                }
            }
            servers.append(contentsOf: accepted)
            opened += count
        }
        // Delayed ACKs and every other timer run out: the connections are idle.
        network.run(for: .seconds(1))
        report.heapBytes = HeapFootprint.inUse - heapBefore
        report.residentBytes = HeapFootprint.residentBytes - residentBefore
        report.socketsHoldingChunks = (clients + servers).filter { !$0.buffersAreEmpty }.count
        if let sample = servers.first {
            report.socketFootprint =
                sample.core.footprint + [FootprintItem("NetSocket handle", HeapFootprint.of(sample))]
                + TCPControlBlock.footprint(of: sample.core)
            report.bufferBytesPerSocket = sample.core.receiveBuffer.footprint + sample.core.sendBuffer.footprint
        }
        report.simulatedNanoseconds = network.clock.nanoseconds - start
        var settings = stack.tcpConfiguration
        settings.maximumSegmentLifetime = 1_000_000
        stack.tcpConfiguration = settings
        for socket in clients + servers { socket.close() }
        listener.close()
        network.run(until: { stack.tcpStatistics().reservedTuples == 0 }, limit: .seconds(600))
        return report
    }

    /// Accepts what the listener has; steps the network (timers included) while fewer than
    /// `count` are there, within a bound of simulated time.
    private static func acceptAll(from listener: NetSocket, expecting count: Int, network: SimulatedNetwork)
        -> [NetSocket]
    {
        var accepted: [NetSocket] = []
        accepted.reserveCapacity(count)
        var rounds = 0
        while accepted.count < count {
            if let child = try? listener.accept() {
                accepted.append(child)
                continue
            }
            rounds += 1
            if rounds > 20 { break }
            network.run(for: .milliseconds(100))
        }
        return accepted
    }

    /// Writes `bytes` whole; returns 1 when they did not all fit (a mismatch), else 0.
    private static func write(_ bytes: [UInt8], to socket: NetSocket) -> Int {
        let written = (try? socket.write(bytes)) ?? 0
        return written == bytes.count ? 0 : 1
    }

    /// Reads what is there, up to `scratch.count` bytes; returns the count.
    private static func read(_ socket: NetSocket, into scratch: inout [UInt8]) -> Int {
        var got = 0
        while got < scratch.count {
            let n = scratch.withUnsafeMutableBytes { raw -> Int in
                (try? socket.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[got...]))) ?? 0
            }
            if n <= 0 { break }
            got += n
        }
        return got
    }
}

extension NetSocket {
    /// Neither buffer holds a byte or a chunk.
    package var buffersAreEmpty: Bool {
        core.receiveBuffer.chunksHeld == 0 && core.sendBuffer.chunksHeld == 0
            && core.receiveBuffer.byteCount.load(ordering: .relaxed) == 0
            && core.sendBuffer.byteCount.load(ordering: .relaxed) == 0
    }
}

extension LoopbackConnectionScale {
    /// The report as lines of text.
    package static func describe(_ report: Report) -> String {
        var lines = [
            "connections: \(report.connections) (two sockets each, one stack), to \(report.destinations) loopback "
                + "address(es), \(report.payloadBytes) bytes each way, mismatches \(report.mismatches)",
            "idle sockets holding chunks: \(report.socketsHoldingChunks)",
            "heap per connection: \(Int(report.heapBytesPerConnection.rounded())) B "
                + "(both ends, tables included); RSS per connection: "
                + "\(Int(report.residentBytesPerConnection.rounded())) B",
            "one idle socket's objects: \(report.footprintBytesPerSocket) B, of which its two empty buffers "
                + "\(report.bufferBytesPerSocket) B (TCPConnection value \(report.connectionValueBytes) B inside "
                + "the control block)",
        ]
        for item in report.socketFootprint { lines.append("  \(item.name): \(item.bytes) B") }
        lines.append("TIME_WAIT record with its key: \(report.timeWaitRecordBytes) B")
        return lines.joined(separator: "\n")
    }
}
