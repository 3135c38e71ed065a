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
}
