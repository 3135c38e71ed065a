import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPRuntime
@testable import NetMPSockets
@testable import NetMPTCP

/// Over loopback, connect may end one of its own thread's TIME_WAIT records (timestamps in use)
/// and reuse its tuple, as Linux's tcp_tw_reuse does by default there: a fast connect loop does
/// not run out of ephemeral ports while closed connections wait out 2 MSL.
final class TCPTimeWaitReuseTests: XCTestCase {
    func testLoopbackConnectReusesItsOwnTimeWaitTuplesWhenThePortsRunOut() throws {
        let clock = ManualClock(startingAt: 1)
        let stack = NetworkStack(.init(threadCount: 1, clock: clock, mode: .driven))
        defer { stack.shutdown() }
        let ports: ClosedRange<UInt16> = 50000...50003
        stack.tcp.tables.setEphemeralRange(ports)
        let address = SocketAddress.ipv4(IPv4Address(127, 0, 0, 1), port: 7000)
        let listener = try stack.socket(.inet, .stream)
        try listener.bind(to: address)
        try listener.listen(backlog: 4)
        listener.isNonBlocking = true
        var used: Set<UInt16> = []
        var sequences: [UInt16: UInt32] = [:]
        for round in 0..<12 {
            let client = try stack.socket(.inet, .stream)
            client.isNonBlocking = true
            startConnect(client, to: address)
            stack.runUntilIdle()
            let server = try listener.accept()
            server.isNonBlocking = true
            guard case .ipv4(_, let port) = client.localAddress else { return XCTFail("no local port") }
            used.insert(port)
            // A new incarnation of a tuple starts past everything the old one sent (its data and FIN).
            let first = try XCTUnwrap(stack.tcp.block(server.core).connection?.receiveNext.rawValue)
            if let previous = sequences[port] {
                XCTAssertTrue(SequenceNumber(previous) < SequenceNumber(first), "round \(round): ISN moved on")
            }
            let message: [UInt8] = [UInt8(round), 1, 2, 3]
            XCTAssertEqual(try client.write(message), 4)
            stack.runUntilIdle()
            XCTAssertEqual(try server.read(maxBytes: 16), message)
            // The client closes first and keeps the tuple in TIME_WAIT.
            client.close()
            stack.runUntilIdle()
            server.close()
            stack.runUntilIdle()
            sequences[port] = first &+ 5
        }
        XCTAssertEqual(used, Set(ports), "only the four ports, each used again")
        XCTAssertEqual(stack.tcpStatistics().timeWaitRecords, 4)
        XCTAssertEqual(stack.liveSocketCount, 1, "only the listener: every connection's sockets were freed")
        listener.close()
    }

    /// Away from loopback nothing is reclaimed: the range runs out as before.
    func testTimeWaitTuplesAreNotReclaimedBeyondLoopbackRules() throws {
        let tables = TCPTables(key: TCPSecretKey(bytes: 1...16))
        tables.setEphemeralRange(50000...50001)
        let local = IPv4Address(198, 18, 0, 1)
        let remote = IPv4Address(198, 18, 0, 2)
        let first = try tables.reserveConnection(
            localAddress: local, localPort: 0, remoteAddress: remote, remotePort: 80)
        let second = try tables.reserveConnection(
            localAddress: local, localPort: 0, remoteAddress: remote, remotePort: 80)
        XCTAssertFalse(first.reclaimed || second.reclaimed)
        assertThrows(.addressNotAvailable) { () throws(NetError) in
            _ = try tables.reserveConnection(localAddress: local, localPort: 0, remoteAddress: remote, remotePort: 80)
        }
        // A reclaimable tuple is handed over, not reserved twice: releasing it once frees it.
        let taken = try tables.reserveConnection(
            localAddress: local, localPort: 0, remoteAddress: remote, remotePort: 80, reclaimable: { $0 == first.key })
        XCTAssertEqual(taken.key, first.key)
        XCTAssertTrue(taken.reclaimed)
        tables.release(taken.key)
        let again = try tables.reserveConnection(
            localAddress: local, localPort: 0, remoteAddress: remote, remotePort: 80)
        XCTAssertEqual(again.key, first.key)
        XCTAssertFalse(again.reclaimed)
    }
}
