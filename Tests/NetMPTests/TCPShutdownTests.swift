import XCTest

@testable import NetMP
@testable import NetMPRuntime
@testable import NetMPSockets
@testable import NetMPTCP

/// Shutting a stack down with TCP connections in every state frees every socket the user lets
/// go of: nothing the connections held outlives the stack.
final class TCPShutdownTests: XCTestCase {
    /// Opens connections in several states on `stack` and returns the sockets (listener first).
    private func openConnections(on stack: NetworkStack) throws -> [NetSocket] {
        let listener = try stack.socket(.inet, .stream)
        try listener.bind(to: .ipv4(.loopback, port: 0))
        try listener.listen(backlog: 8)
        var sockets = [listener]
        // Established, with unread data on both sides.
        let client = try stack.socket(.inet, .stream)
        try client.connect(to: listener.localAddress)
        let server = try listener.accept()
        XCTAssertEqual(try client.write([1, 2, 3]), 3)
        XCTAssertEqual(try server.write([4, 5]), 2)
        sockets += [client, server]
        // Half-closed.
        let halfClient = try stack.socket(.inet, .stream)
        try halfClient.connect(to: listener.localAddress)
        let halfServer = try listener.accept()
        try halfClient.shutdown(.write)
        XCTAssertEqual(try halfServer.read(maxBytes: 1), [], "end of file")
        sockets += [halfClient, halfServer]
        // Closed by the user and still finishing (FIN sent, peer not closed): held only by the stack.
        let closing = try stack.socket(.inet, .stream)
        try closing.connect(to: listener.localAddress)
        let closingPeer = try listener.accept()
        closing.close()
        sockets.append(closingPeer)
        // Connected but never accepted: on the listen queue.
        let unaccepted = try stack.socket(.inet, .stream)
        try unaccepted.connect(to: listener.localAddress)
        sockets.append(unaccepted)
        return sockets
    }

    func testShutdownWithOpenConnectionsFreesEverySocket() throws {
        try bounded(60) {
            let stack = NetworkStack(.init(threadCount: 2))
            do {
                let sockets = try openConnections(on: stack)
                XCTAssertGreaterThan(stack.tcpStatistics().liveConnections, 0)
                stack.shutdown()
                for socket in sockets { socket.close() }
            }
            XCTAssertEqual(stack.liveSocketCount, 0, "sockets outlived the stack's shutdown")
        }
    }

    func testShutdownWhileTheUserStillHoldsSocketsThenLetsGo() throws {
        try bounded(60) {
            let stack = NetworkStack(.init(threadCount: 2))
            do {
                let sockets = try openConnections(on: stack)
                stack.shutdown()
                // Calls after shutdown fail clearly.
                XCTAssertThrowsError(try sockets[1].write([9])) { XCTAssertEqual($0 as? NetError, .shutdown) }
                _ = sockets.count
            }
            // Dropped without close: freed all the same.
            XCTAssertEqual(stack.liveSocketCount, 0, "sockets outlived the stack's shutdown")
        }
    }
}

/// A blocking wait that ends by throwing keeps nothing alive: the thread's spare waiters let go
/// of the socket however the wait ended.
final class WaiterSpareTests: XCTestCase {
    func testAWaitThatThrowsLeavesNoSocketBehind() throws {
        let network = SimulatedNetwork(seed: 1)
        defer { network.shutdown() }
        let stack = network.makeStack()
        do {
            let socket = try stack.socket(.inet, .datagram)
            try socket.bind(to: .ipv4(.loopback, port: 0))
            // The driven mode runs the stack, finds nothing to read and gives up: .wouldBlock.
            XCTAssertThrowsError(try socket.receive(maxBytes: 10)) { XCTAssertEqual($0 as? NetError, .wouldBlock) }
            socket.close()
        }
        network.runUntilIdle()
        XCTAssertEqual(stack.liveSocketCount, 0, "a spare waiter kept the socket alive")
    }
}
