import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPRuntime
@testable import NetMPSockets
@testable import NetMPTCP

/// TCP in the deterministic mode (manual clock, stepped): listen backlog overflow, SYN retries
/// running out, and a threaded connect with a timeout.
final class TCPDeterministicTests: XCTestCase {
    func testListenBacklogOverflowDropsSYNsUntilAcceptMakesRoom() throws {
        let network = SimulatedNetwork(seed: 5)
        defer { network.shutdown() }
        let stack = network.makeStack(threadCount: 2)
        let listener = try stack.socket(.inet, .stream)
        try listener.bind(to: .ipv4(.loopback, port: 7000))
        try listener.listen(backlog: 2)
        listener.isNonBlocking = true
        var clients: [NetSocket] = []
        for _ in 0..<5 {
            let client = try stack.socket(.inet, .stream)
            client.isNonBlocking = true
            // A dropped SYN leaves the connect in progress.
            startConnect(client, to: .ipv4(.loopback, port: 7000))
            clients.append(client)
        }
        network.run(for: .milliseconds(100))
        XCTAssertEqual(listener.core.listenQueue?.counts.complete, 2, "the backlog bounds the complete queue")
        XCTAssertEqual(clients.filter { $0.state.contains(.connected) }.count, 2)
        XCTAssertEqual(stack.tcpStatistics().listenOverflows, 3, "three SYNs dropped")
        var accepted: [NetSocket] = []
        while accepted.count < 5 {
            if let child = try? listener.accept() {
                accepted.append(child)
                continue
            }
            // The dropped SYNs are retransmitted (1 s, then 2 s) and find room.
            let more = network.run(until: { listener.core.listenQueue?.counts.complete ?? 0 > 0 }, limit: .seconds(10))
            XCTAssertTrue(more, "accepted \(accepted.count), \(stack.tcpStatistics())")
            if !more { break }
        }
        XCTAssertEqual(clients.filter { $0.state.contains(.connected) }.count, 5)
        let peers = Set(accepted.compactMap { try? $0.peerAddress() })
        XCTAssertEqual(peers, Set(clients.map(\.localAddress)), "each child names its client")
        for socket in accepted + clients { socket.close() }
        listener.close()
        network.run(for: .seconds(1))
        XCTAssertEqual(stack.tcpStatistics().liveConnections, 0)
    }

    func testIncompleteQueueIsBoundedAndDropsTheOldest() throws {
        let network = SimulatedNetwork(seed: 8)
        defer { network.shutdown() }
        let lan = network.makeSwitch()
        let a = network.makeStack()
        let b = network.makeStack(threadCount: 2)
        // Without SYN cookies a full incomplete queue makes room (with cookies, see TCPDefenceTests).
        b.tcpConfiguration.synCookies = false
        let clientPort = try network.attach(a, to: lan, address: "198.18.3.1/24")
        try network.attach(b, to: lan, address: "198.18.3.2/24")
        let server = IPv4Address(198, 18, 3, 2)
        let ping = a.startPing(server)
        XCTAssertTrue(network.run(until: { ping.isComplete }))
        // From now on nothing reaches the client: the server's SYN-ACKs are lost, so its
        // children stay half-open on the incomplete queue.
        lan.setImpairments(LinkImpairments(loss: 1), for: clientPort)
        let listener = try b.socket(.inet, .stream)
        try listener.bind(to: .ipv4(server, port: 9000))
        try listener.listen(backlog: 2)
        var clients: [NetSocket] = []
        for _ in 0..<5 {
            let client = try a.socket(.inet, .stream)
            client.isNonBlocking = true
            assertThrows(.inProgress) { () throws(NetError) in try client.connect(to: .ipv4(server, port: 9000)) }
            clients.append(client)
            network.run(for: .milliseconds(10))
        }
        let state = (listener.core.controlBlock as? TCPControlBlock)?.listener
        XCTAssertEqual(state?.incompleteCount, 2, "the incomplete queue holds the backlog")
        XCTAssertEqual(b.tcpStatistics().resetsSent, 3, "the three oldest were dropped with a RST")
        XCTAssertEqual(b.tcpStatistics().liveConnections, 2)
        for client in clients { client.close() }
        listener.close()
        network.run(for: .seconds(1))
        XCTAssertEqual(b.tcpStatistics().liveConnections, 0, "closing the listener aborts the half-open children")
    }

    func testSYNRetriesRunOutWithTimedOut() throws {
        let network = SimulatedNetwork(seed: 6)
        defer { network.shutdown() }
        let lan = network.makeSwitch(impairments: LinkImpairments(loss: 1))
        let a = network.makeStack()
        let b = network.makeStack()
        try network.attach(a, to: lan, address: "198.18.1.1/24")
        try network.attach(b, to: lan, address: "198.18.1.2/24")
        let client = try a.socket(.inet, .stream)
        client.isNonBlocking = true
        assertThrows(.inProgress) { () throws(NetError) in
            try client.connect(to: .ipv4(IPv4Address(rawValue: 0xC612_0102), port: 80))
        }
        let start = network.clock.nanoseconds
        XCTAssertTrue(network.run(until: { !client.state.contains(.connecting) }, limit: .seconds(300)))
        let elapsed = network.clock.nanoseconds - start
        // 1 + 2 + 4 + 8 + 16 + 32 + 64 s: six retransmissions, then the last one's timeout.
        XCTAssertEqual(elapsed, 127_000_000_000)
        XCTAssertEqual(try client.option(.error), Int(NetError.timedOut.rawValue))
        client.close()
    }

    func testThreadedConnectTimeout() throws {
        try bounded {
            let network = SimulatedNetwork(threadedWithSeed: 7)
            defer { network.shutdown() }
            let lan = network.makeSwitch()
            let a = network.makeStack()
            try network.attach(a, to: lan, address: "198.18.2.1/24")
            let client = try a.socket(.inet, .stream)
            let start = MonotonicTime.now
            assertThrows(.timedOut) { () throws(NetError) in
                try client.connect(to: .ipv4(IPv4Address(rawValue: 0xC612_0263), port: 80), timeout: .milliseconds(100))
            }
            XCTAssertGreaterThanOrEqual(MonotonicTime.now - start, 100_000_000)
            XCTAssertFalse(client.state.contains(.connecting))
            client.close()
        }
    }
}
