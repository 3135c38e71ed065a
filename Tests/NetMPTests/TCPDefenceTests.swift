import NetMPWire
import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPRuntime
@testable import NetMPSockets
@testable import NetMPTCP

/// The defences through the stack (deterministic mode): forged RSTs injected at the server's
/// interface are challenged within the stack-wide rate limit, keep-alive through the socket
/// options, and TCP_INFO read from a socket.
final class TCPDefenceTests: XCTestCase {
    static let clientAddress = IPv4Address(198, 18, 5, 1)
    static let serverAddress = IPv4Address(198, 18, 5, 2)

    /// Two stacks on a switch with an established connection from `client` to `server`.
    struct Pair {
        let network: SimulatedNetwork
        let lan: SimulatedSwitch
        let a: NetworkStack
        let b: NetworkStack
        let clientPort: SwitchPort
        let serverPort: SwitchPort
        let client: NetSocket
        let server: NetSocket
        let listener: NetSocket

        func close() {
            client.close()
            server.close()
            listener.close()
            network.run(for: .seconds(1))
            network.shutdown()
        }
    }

    func makePair(seed: UInt64, delay: Duration = .zero) throws -> Pair {
        let network = SimulatedNetwork(seed: seed)
        let lan = network.makeSwitch(impairments: LinkImpairments(delay: delay))
        let a = network.makeStack()
        let b = network.makeStack()
        let clientPort = try network.attach(a, to: lan, address: "198.18.5.1/24")
        let serverPort = try network.attach(b, to: lan, address: "198.18.5.2/24")
        let listener = try b.socket(.inet, .stream)
        try listener.bind(to: .ipv4(TCPDefenceTests.serverAddress, port: 7000))
        try listener.listen()
        listener.isNonBlocking = true
        let client = try a.socket(.inet, .stream)
        client.isNonBlocking = true
        do {
            try client.connect(to: .ipv4(TCPDefenceTests.serverAddress, port: 7000))
        } catch {
            XCTAssertEqual(error, .inProgress)
        }
        var server: NetSocket?
        let accepted = network.run(
            until: {
                if server == nil { server = try? listener.accept() }
                return server != nil && client.state.contains(.connected)
            }, limit: .seconds(5))
        XCTAssertTrue(accepted, "the handshake completes")
        guard let server else { throw NetError.timedOut }
        server.isNonBlocking = true
        return Pair(
            network: network, lan: lan, a: a, b: b, clientPort: clientPort, serverPort: serverPort, client: client,
            server: server, listener: listener)
    }

    /// A segment from the client's address and port to the server's, as a frame at the server.
    static func frame(_ header: TCPHeader, pair: Pair) -> [UInt8] {
        let segment = header.bytes(source: clientAddress, destination: serverAddress)
        return EthernetHeader(
            destination: pair.serverPort.hardwareAddress, source: pair.clientPort.hardwareAddress, etherType: .ipv4
        ).bytes()
            + IPv4Header(
                totalLength: UInt16(20 + segment.count), protocol: .tcp, source: clientAddress,
                destination: serverAddress
            ).bytes() + segment
    }

    func testForgedResetFloodIsChallengedWithinTheRateLimit() throws {
        let pair = try makePair(seed: 21)
        defer { pair.close() }
        let block = try XCTUnwrap(pair.server.core.controlBlock as? TCPControlBlock)
        let connection = try XCTUnwrap(block.connection)
        let receiveNext = connection.receiveNext.rawValue
        let window = UInt32(try pair.server.tcpInfo().receiveWindow)
        XCTAssertGreaterThan(window, 1000)
        guard case .ipv4(_, let clientPort) = pair.client.localAddress else { return XCTFail("no IPv4 name") }
        let serverBefore = pair.b.tcpStatistics()
        let clientBefore = pair.a.tcpStatistics()
        var random = SeededRandom(seed: 5)
        for _ in 0..<10 {
            var frames: [[UInt8]] = []
            for _ in 0..<1000 {
                let sequence = receiveNext &+ 1 &+ UInt32(random.next() % UInt64(window - 1))
                let header = TCPHeader(
                    sourcePort: clientPort, destinationPort: 7000, sequenceNumber: sequence, acknowledgmentNumber: 0,
                    flags: .rst, window: 0)
                frames.append(TCPDefenceTests.frame(header, pair: pair))
            }
            pair.serverPort.deliverInbound(frames.map { Frame($0) })
            // No time passes: all 10,000 fall in one second of the limiter.
            XCTAssertTrue(pair.network.runUntilIdle())
        }
        let server = pair.b.tcpStatistics()
        let client = pair.a.tcpStatistics()
        let sent = server.challengeACKsSent - serverBefore.challengeACKsSent
        let suppressed = server.challengeACKsSuppressed - serverBefore.challengeACKsSuppressed
        XCTAssertEqual(sent + suppressed, 10_000)
        XCTAssertGreaterThanOrEqual(sent, 500, "limit/2 at least")
        XCTAssertLessThan(sent, 1500, "below 1.5 × limit")
        XCTAssertEqual(server.drops.resetNotExact - serverBefore.drops.resetNotExact, 10_000)
        XCTAssertEqual(server.resetsReceived - serverBefore.resetsReceived, 10_000)
        XCTAssertEqual(server.segmentsSent - serverBefore.segmentsSent, sent, "only the challenges went out")
        XCTAssertEqual(client.segmentsReceived - clientBefore.segmentsReceived, sent, "and reached the client")
        XCTAssertEqual(client.segmentsSent, clientBefore.segmentsSent, "which had nothing to answer")
        XCTAssertEqual(server.connectionsReset, 0)
        XCTAssertTrue(pair.server.state.contains(.connected))

        // The connection still carries data.
        let message: [UInt8] = Array("still here".utf8)
        XCTAssertEqual(
            try message.withUnsafeBytes { raw throws(NetError) in try pair.client.write(raw) }, message.count)
        var received = [UInt8](repeating: 0, count: 64)
        var count = 0
        XCTAssertTrue(
            pair.network.run(
                until: {
                    count = (try? received.withUnsafeMutableBytes { raw in try pair.server.read(into: raw) }) ?? 0
                    return count > 0
                }, limit: .seconds(5)))
        XCTAssertEqual(Array(received[0..<count]), message)

        // A RST at exactly RCV.NXT is the peer's own: the connection ends.
        let next = try XCTUnwrap(block.connection?.receiveNext.rawValue)
        let reset = TCPHeader(
            sourcePort: clientPort, destinationPort: 7000, sequenceNumber: next, acknowledgmentNumber: 0, flags: .rst,
            window: 0)
        pair.serverPort.deliverInbound([Frame(TCPDefenceTests.frame(reset, pair: pair))])
        XCTAssertTrue(pair.network.runUntilIdle())
        XCTAssertEqual(pair.b.tcpStatistics().connectionsReset, 1)
        XCTAssertTrue(pair.server.state.contains(.disconnected))
    }

    func testKeepAliveProbesThroughSocketOptionsAndTimesOut() throws {
        let pair = try makePair(seed: 22)
        defer { pair.close() }
        XCTAssertEqual(try pair.client.option(.keepAliveIdle), 7200)
        XCTAssertEqual(try pair.client.option(.keepAliveInterval), 75)
        XCTAssertEqual(try pair.client.option(.keepAliveCount), 9)
        XCTAssertEqual(try pair.client.option(.userTimeout), 0)
        assertThrows(.invalidArgument) { () throws(NetError) in try pair.client.setOption(.keepAliveIdle, 0) }
        assertThrows(.invalidArgument) { () throws(NetError) in try pair.client.setOption(.keepAliveCount, 128) }
        try pair.client.setOption(.keepAliveIdle, 10)
        try pair.client.setOption(.keepAliveInterval, 2)
        try pair.client.setOption(.keepAliveCount, 3)
        try pair.client.setOption(.keepAlive, 1)
        XCTAssertEqual(try pair.client.option(.keepAliveIdle), 10)
        let before = pair.a.tcpStatistics()
        // Answered probes at 10 s and 20 s of idle time: the connection stays.
        pair.network.run(for: .milliseconds(25_000))
        var client = pair.a.tcpStatistics()
        XCTAssertEqual(client.segmentsSent - before.segmentsSent, 2, "two probes")
        XCTAssertEqual(client.segmentsReceived - before.segmentsReceived, 2, "two answers")
        XCTAssertEqual(try pair.client.tcpInfo().keepAliveProbes, 0)
        XCTAssertTrue(pair.client.state.contains(.connected))

        // Nothing reaches the client any more: probes at 30, 32 and 34 s go unanswered, and at
        // 36 s the connection is reset and times out.
        pair.lan.setImpairments(LinkImpairments(loss: 1), for: pair.clientPort)
        pair.network.run(for: .milliseconds(10_500))
        XCTAssertEqual(try pair.client.tcpInfo().keepAliveProbes, 3)
        pair.network.run(for: .seconds(2))
        client = pair.a.tcpStatistics()
        XCTAssertEqual(client.segmentsSent - before.segmentsSent, 6, "five probes and the RST")
        XCTAssertEqual(client.connectionsTimedOut, 1)
        XCTAssertEqual(pair.b.tcpStatistics().connectionsReset, 1, "the server heard the RST")
        assertThrows(.timedOut) { () throws(NetError) in _ = try pair.client.read(maxBytes: 16) }
    }

    /// TCP_USER_TIMEOUT of 3 s: data unacknowledged that long ends the connection with
    /// `.timedOut`, long before the retransmission count would.
    func testUserTimeoutThroughTheSocketOption() throws {
        let pair = try makePair(seed: 25)
        defer { pair.close() }
        assertThrows(.invalidArgument) { () throws(NetError) in try pair.client.setOption(.userTimeout, -1) }
        try pair.client.setOption(.userTimeout, 3000)
        XCTAssertEqual(try pair.client.option(.userTimeout), 3000)
        // From now on nothing reaches the server.
        pair.lan.setImpairments(LinkImpairments(loss: 1), for: pair.serverPort)
        let start = pair.network.clock.nanoseconds
        let bytes = [UInt8](repeating: 1, count: 100)
        XCTAssertEqual(try bytes.withUnsafeBytes { raw throws(NetError) in try pair.client.write(raw) }, 100)
        XCTAssertTrue(
            pair.network.run(until: { pair.client.state.contains(.disconnected) }, limit: .seconds(10)))
        XCTAssertEqual(pair.network.clock.nanoseconds - start, 3_000_000_000)
        let statistics = pair.a.tcpStatistics()
        XCTAssertEqual(statistics.connectionsTimedOut, 1)
        XCTAssertGreaterThan(statistics.retransmittedSegments, 0)
        assertThrows(.timedOut) { () throws(NetError) in _ = try pair.client.read(maxBytes: 16) }
    }

    func testTCPInfoFromASocketAfterAKnownExchange() throws {
        // 5 ms each way: every RTT sample is 10 ms.
        let pair = try makePair(seed: 23, delay: .milliseconds(5))
        defer { pair.close() }
        assertThrows(.notConnected) { () throws(NetError) in _ = try pair.listener.tcpInfo() }
        let bytes = [UInt8](repeating: 0x5A, count: 1000)
        XCTAssertEqual(try bytes.withUnsafeBytes { raw throws(NetError) in try pair.client.write(raw) }, 1000)
        pair.network.run(for: .milliseconds(100))
        let client = try pair.client.tcpInfo()
        XCTAssertEqual(client.state, .established)
        XCTAssertEqual(client.bytesAcknowledged, 1000)
        XCTAssertEqual(client.bytesReceived, 0)
        XCTAssertEqual(client.segmentsOut, 3, "SYN, ACK, data")
        XCTAssertEqual(client.segmentsIn, 2, "SYN-ACK, ACK")
        XCTAssertEqual(client.bytesInFlight, 0)
        XCTAssertEqual(client.sendMaximumSegmentSize, 1448, "1460 less the timestamp option")
        XCTAssertTrue(client.timestamps)
        // Two RTT samples: the handshake's, 15 ms (the SYN waited for ARP), then the data's, 10 ms.
        XCTAssertEqual(client.smoothedRTT, 14_375_000, "(7 × 15 + 10) / 8 ms")
        XCTAssertEqual(client.rttVariance, 6_875_000, "(3 × 7.5 + 5) / 4 ms")
        XCTAssertEqual(client.retransmissionTimeout, 200_000_000, "14.375 + 4 × 6.875 ms, raised to the floor")
        XCTAssertEqual(
            client.congestionWindow, 14_480, "IW 10 × 1448; 1000 bytes in flight are application-limited (RFC 7661)")
        let server = try pair.server.tcpInfo()
        XCTAssertEqual(server.bytesReceived, 1000)
        XCTAssertEqual(server.unreadBytes, 1000)
        XCTAssertEqual(server.segmentsIn, 2, "ACK, data (the SYN went to the listener)")
        XCTAssertEqual(server.segmentsOut, 2, "SYN-ACK, ACK")
    }

    /// 100,000 spoofed SYNs at a listen socket with a backlog of 4: the first four make children,
    /// every other one is answered with a cookie and costs nothing, so control blocks, tuples and
    /// chunks stay flat; a real client connecting in the middle of the flood completes through its
    /// cookie (with timestamps, so window scaling and SACK come back from the TSval) and carries
    /// data.
    func testSYNFloodStaysFlatAndALegitimateConnectionCompletesThroughACookie() throws {
        let network = SimulatedNetwork(seed: 24)
        defer { network.shutdown() }
        let lan = network.makeSwitch()
        let a = network.makeStack()
        let b = network.makeStack(threadCount: 2)
        let clientPort = try network.attach(a, to: lan, address: "198.18.5.1/24")
        let serverPort = try network.attach(b, to: lan, address: "198.18.5.2/24")
        let listener = try b.socket(.inet, .stream)
        try listener.bind(to: .ipv4(TCPDefenceTests.serverAddress, port: 7000))
        try listener.listen(backlog: 4)
        listener.isNonBlocking = true
        let state = try XCTUnwrap((listener.core.controlBlock as? TCPControlBlock)?.listener)
        let client = try a.socket(.inet, .stream)
        client.isNonBlocking = true
        network.runUntilIdle()
        let chunksBefore = ByteChunk.liveCount.load(ordering: .relaxed)
        var highestChunks = 0
        var random = SeededRandom(seed: 11)
        let spoofed = IPv4Address(198, 18, 5, 9)
        var occurrences: [UInt16: Int] = [:]
        let wallStart = ContinuousClock.now
        for batch in 0..<100 {
            var frames: [Frame] = []
            frames.reserveCapacity(1000)
            for _ in 0..<1000 {
                let bits = random.next()
                var options = TCPOptions(maximumSegmentSize: 1460)
                options.windowScale = 7
                options.sackPermitted = true
                options.timestamps = TCPTimestamps(value: UInt32(truncatingIfNeeded: bits >> 32), echoReply: 0)
                let port = 1024 + UInt16(truncatingIfNeeded: bits) % 60_000
                occurrences[port, default: 0] += 1
                let syn = TCPHeader(
                    sourcePort: port, destinationPort: 7000,
                    sequenceNumber: UInt32(truncatingIfNeeded: bits >> 16), flags: .syn, window: 65535,
                    options: options)
                let segment = syn.bytes(source: spoofed, destination: TCPDefenceTests.serverAddress)
                let bytes =
                    EthernetHeader(
                        destination: serverPort.hardwareAddress, source: MACAddress(0x02, 0, 0, 0, 0x77, 0x09),
                        etherType: .ipv4
                    ).bytes()
                    + IPv4Header(
                        totalLength: UInt16(20 + segment.count), protocol: .tcp, source: spoofed,
                        destination: TCPDefenceTests.serverAddress
                    ).bytes() + segment
                frames.append(Frame(bytes))
            }
            serverPort.deliverInbound(frames)
            XCTAssertTrue(network.runUntilIdle())
            let statistics = b.tcpStatistics()
            XCTAssertLessThanOrEqual(statistics.liveConnections, 5, "batch \(batch)")
            XCTAssertLessThanOrEqual(statistics.reservedTuples, 5, "batch \(batch)")
            XCTAssertLessThanOrEqual(state.incompleteCount, 4, "batch \(batch)")
            highestChunks = Swift.max(highestChunks, ByteChunk.liveCount.load(ordering: .relaxed) - chunksBefore)
            if batch == 50 {
                do {
                    try client.connect(to: .ipv4(TCPDefenceTests.serverAddress, port: 7000))
                } catch {
                    XCTAssertEqual(error, .inProgress)
                }
            }
        }
        var server: NetSocket?
        XCTAssertTrue(
            network.run(
                until: {
                    if server == nil { server = try? listener.accept() }
                    return server != nil && client.state.contains(.connected)
                }, limit: .seconds(5)))
        let statistics = b.tcpStatistics()
        // Every spoofed SYN got a cookie except those of the four children's tuples (the first made
        // the child, repeats went to it), and the client's got one.
        let childPorts = b.tcp.threads.flatMap { thread in
            thread.connections.keys.filter { $0.remoteAddress == .ipv4(spoofed) }.map(\.remotePort)
        }
        XCTAssertEqual(childPorts.count, 4)
        let toChildren = childPorts.reduce(0) { $0 + (occurrences[$1] ?? 0) }
        XCTAssertEqual(statistics.cookiesSent, 100_000 - toChildren + 1)
        XCTAssertEqual(statistics.cookiesValidated, 1)
        XCTAssertEqual(statistics.cookiesRejected, 0)
        XCTAssertEqual(statistics.liveConnections, 5, "four half-open children and the real one")
        print(
            "SYN flood: 100,000 SYNs in \(ContinuousClock.now - wallStart) wall time (frame building included), "
                + "\(highestChunks) chunks alive at most above the start (1,000-frame batches)")
        // What is alive: one batch of frames, the pool's cache, ARP's queue for the spoofed host.
        XCTAssertLessThanOrEqual(highestChunks, 1000 + 1024 + 64)
        guard let server else { return }
        server.isNonBlocking = true
        let info = try server.tcpInfo()
        // The client offers the scale of its largest window: 6 MiB, auto-tuning's limit.
        XCTAssertEqual(info.sendScale, 7, "the client's window scale came back through the TSval")
        XCTAssertTrue(info.timestamps)
        XCTAssertEqual(info.sendMaximumSegmentSize, 1460 - 12)

        // The connection made from the cookie carries 256 KiB, byte-exact.
        var source = TransferSource(seed: 24, total: 256 << 10)
        var sent = StreamHash()
        var received = StreamHash()
        var scratch = [UInt8](repeating: 0, count: 1 << 16)
        XCTAssertTrue(
            network.run(
                until: {
                    _ = fill(client, from: &source, hash: &sent)
                    _ = try? drain(server, into: &received, scratch: &scratch)
                    return received.count == source.total
                }, limit: .seconds(30)))
        XCTAssertEqual(received, sent)
        client.close()
        server.close()
        listener.close()
        network.run(for: .seconds(1))
        _ = clientPort
    }
}
