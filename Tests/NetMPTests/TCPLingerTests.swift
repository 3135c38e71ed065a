import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPRuntime
@testable import NetMPSockets
@testable import NetMPTCP

/// close(2) with SO_LINGER set to a positive time, between two stacks on a switch whose links
/// take 50 ms each way: what the close waits for shows as bytes at the peer when it returns.
final class TCPLingerTests: XCTestCase {
    private var network: SimulatedNetwork!
    private var lan: SimulatedSwitch!
    private var client: NetworkStack!
    private var server: NetworkStack!
    private var serverPort: SwitchPort!
    private let target = SocketAddress.ipv4(IPv4Address(198, 18, 0, 2), port: 5001)

    override func setUpWithError() throws {
        network = SimulatedNetwork(threadedWithSeed: 5)
        lan = network.makeSwitch(impairments: LinkImpairments(delay: .milliseconds(50)))
        client = network.makeStack()
        server = network.makeStack()
        try network.attach(client, to: lan, address: "198.18.0.1/24")
        serverPort = try network.attach(server, to: lan, address: "198.18.0.2/24")
    }

    override func tearDown() {
        network.shutdown()
        network = nil
    }

    private func connectedPair() throws -> (client: NetSocket, server: NetSocket, listener: NetSocket) {
        let listener = try server.socket(.inet, .stream)
        try listener.bind(to: target)
        try listener.listen()
        let socket = try client.socket(.inet, .stream)
        try socket.connect(to: target)
        return (socket, try listener.accept(), listener)
    }

    func testLingeringCloseReturnsOnceThePeerHasEverything() throws {
        try bounded(60) {
            let (socket, accepted, listener) = try connectedPair()
            defer { listener.close() }
            let bytes = (0..<20_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            XCTAssertEqual(try socket.write(bytes), bytes.count)
            socket.linger = .seconds(20)
            let start = MonotonicTime.now
            socket.close()
            let waited = MonotonicTime.now - start
            // The FIN's acknowledgment needs a round trip (100 ms here) after the last byte: it
            // cannot have come sooner, and when it has, every byte is in the peer's buffer.
            XCTAssertGreaterThanOrEqual(waited, 100_000_000, "close returned before a round trip")
            XCTAssertEqual(accepted.core.receiveBuffer.byteCount.load(ordering: .sequentiallyConsistent), bytes.count)
            XCTAssertTrue(accepted.core.state.contains(.cantReceiveMore), "the FIN arrived before close returned")
            var received: [UInt8] = []
            while true {
                let chunk = try accepted.read(maxBytes: 65536)
                if chunk.isEmpty { break }
                received += chunk
            }
            XCTAssertEqual(received.count, bytes.count)
            XCTAssertEqual(hashed(received), hashed(bytes), "the stream differs")
            accepted.close()
        }
    }

    func testLingerTimeoutEndsOnlyTheWait() throws {
        try bounded(60) {
            let (socket, accepted, listener) = try connectedPair()
            defer { listener.close() }
            // The peer cannot be reached: nothing sent is acknowledged.
            lan.isolate(serverPort)
            XCTAssertEqual(try socket.write(Array(repeating: 9, count: 1000)), 1000)
            socket.linger = .milliseconds(300)
            let start = MonotonicTime.now
            socket.close()
            let waited = MonotonicTime.now - start
            XCTAssertGreaterThanOrEqual(waited, 300_000_000, "close did not wait for its linger time")
            XCTAssertLessThan(waited, 10_000_000_000, "close waited far past its linger time")
            XCTAssertEqual(accepted.core.receiveBuffer.byteCount.load(ordering: .sequentiallyConsistent), 0)
            // The connection still closes gracefully behind the wait once the link heals.
            lan.heal()
            var received: [UInt8] = []
            while true {
                let chunk = try accepted.read(maxBytes: 4096)
                if chunk.isEmpty { break }
                received += chunk
            }
            XCTAssertEqual(received, Array(repeating: 9, count: 1000))
            accepted.close()
        }
    }

    func testLingerWithUnreadDataResetsWithoutWaiting() throws {
        try bounded(60) {
            let (socket, accepted, listener) = try connectedPair()
            defer { listener.close() }
            XCTAssertEqual(try accepted.write([1, 2, 3]), 3)
            XCTAssertEqual(try socket.read(maxBytes: 1, flags: .waitAll), [1])
            socket.linger = .seconds(20)
            let resets = client.tcpStatistics().resetsSent
            socket.close()
            XCTAssertEqual(client.tcpStatistics().resetsSent, resets + 1, "unread data makes close a reset")
            XCTAssertThrowsError(try accepted.read(maxBytes: 10)) { error in
                XCTAssertEqual(error as? NetError, .connectionReset)
            }
            accepted.close()
        }
    }

    private func hashed(_ bytes: [UInt8]) -> StreamHash {
        var hash = StreamHash()
        bytes.withUnsafeBytes { hash.add($0) }
        return hash
    }
}
