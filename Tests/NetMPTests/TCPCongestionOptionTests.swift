import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPRuntime
@testable import NetMPSockets
@testable import NetMPTCP

/// TCP_CONGESTION per socket, in the deterministic mode: CUBIC by default, NewReno when a socket
/// asks before connect or listen, inherited by a listen socket's connections.
final class TCPCongestionOptionTests: XCTestCase {
    func congestionControl(of socket: NetSocket) -> (any TCPCongestionControl)? {
        (socket.core.controlBlock as? TCPControlBlock)?.connection?.congestionControl
    }

    func testDefaultIsCubicAndNewRenoIsChosenPerSocket() throws {
        let network = SimulatedNetwork(seed: 9)
        defer { network.shutdown() }
        let stack = network.makeStack(threadCount: 2)
        let listener = try stack.socket(.inet, .stream)
        try listener.bind(to: .ipv4(.loopback, port: 7100))
        try listener.listen(backlog: 8)
        listener.isNonBlocking = true
        XCTAssertEqual(try listener.option(.congestionControl), TCPCongestionAlgorithm.cubic.rawValue)
        XCTAssertEqual(listener.congestionControl, .cubic)

        let reno = try stack.socket(.inet, .stream)
        try reno.setOption(.congestionControl, TCPCongestionAlgorithm.newReno.rawValue)
        XCTAssertEqual(reno.congestionControl, .newReno)
        assertThrows(.invalidArgument) { () throws(NetError) in try reno.setOption(.congestionControl, 7) }
        XCTAssertEqual(reno.congestionControl, .newReno, "a bad value changes nothing")
        let cubic = try stack.socket(.inet, .stream)
        for client in [reno, cubic] {
            client.isNonBlocking = true
            do {
                try client.connect(to: .ipv4(.loopback, port: 7100))
            } catch {
                XCTAssertEqual(error, .inProgress)
            }
        }
        XCTAssertTrue(network.run(until: { [reno, cubic].allSatisfy { $0.state.contains(.connected) } }))
        XCTAssertTrue(congestionControl(of: reno) is NewReno)
        XCTAssertTrue(congestionControl(of: cubic) is Cubic)
        // On a connected socket the option switches the live connection, keeping its window.
        let window = congestionControl(of: cubic)?.congestionWindow
        try cubic.setOption(.congestionControl, TCPCongestionAlgorithm.newReno.rawValue)
        XCTAssertTrue(congestionControl(of: cubic) is NewReno)
        XCTAssertEqual(congestionControl(of: cubic)?.congestionWindow, window)
        cubic.congestionControl = .cubic
        XCTAssertTrue(congestionControl(of: cubic) is Cubic)
        XCTAssertEqual(try cubic.option(.congestionControl), TCPCongestionAlgorithm.cubic.rawValue)
        var children: [NetSocket] = []
        XCTAssertTrue(
            network.run(until: {
                if let child = try? listener.accept() { children.append(child) }
                return children.count == 2
            }))
        XCTAssertTrue(children.allSatisfy { congestionControl(of: $0) is Cubic }, "the listener's default")

        // A listen socket set to NewReno: its connections are NewReno.
        let renoListener = try stack.socket(.inet, .stream)
        renoListener.congestionControl = .newReno
        try renoListener.bind(to: .ipv4(.loopback, port: 7101))
        try renoListener.listen(backlog: 8)
        renoListener.isNonBlocking = true
        let client = try stack.socket(.inet, .stream)
        client.isNonBlocking = true
        do {
            try client.connect(to: .ipv4(.loopback, port: 7101))
        } catch {
            XCTAssertEqual(error, .inProgress)
        }
        var child: NetSocket?
        XCTAssertTrue(
            network.run(until: {
                child = child ?? (try? renoListener.accept())
                return child != nil
            }))
        XCTAssertTrue(child.map { congestionControl(of: $0) is NewReno } ?? false)
        XCTAssertEqual(child?.congestionControl, .newReno)
        XCTAssertTrue(congestionControl(of: client) is Cubic)
        for socket in [reno, cubic, client, listener, renoListener] + children + [child].compactMap({ $0 }) {
            socket.close()
        }
        network.run(for: .seconds(1))
    }

    /// Each algorithm, chosen through the stack's configuration, carries 2 MiB through 5 % loss with
    /// reordering and duplication, byte-exact, on the same seed.
    func testBothAlgorithmsCarryALossyTransferByteExact() throws {
        let impairments = LinkImpairments(
            loss: 0.05, duplication: 0.02, reordering: 0.03, reorderDelay: .milliseconds(3), delay: .milliseconds(1))
        for algorithm in TCPCongestionAlgorithm.allCases {
            try bounded(300) {
                let outcome = try tcpTransfer(
                    seed: 17, impairments: impairments, bytes: 2 << 20, threaded: false, congestionControl: algorithm)
                XCTAssertTrue(outcome.finished, "\(algorithm)")
                XCTAssertEqual(outcome.sent.count, 2 << 20, "\(algorithm)")
                XCTAssertEqual(outcome.received, outcome.sent, "\(algorithm)")
                XCTAssertGreaterThan(outcome.client.retransmittedSegments, 0, "\(algorithm)")
                print("2 MiB at 5 % loss, \(algorithm): \(outcome.seconds) simulated s")
            }
        }
    }
}
