import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// Inbound dispatch: flows spread over protocol threads by the symmetric Toeplitz hash, both
/// directions of a flow on one thread, one message per thread per batch, ARP handled by thread 0.
final class InetDispatchTests: XCTestCase {
    func testFlowsSpreadAndBothDirectionsShareAThread() throws {
        let network = SimulatedNetwork(seed: 21)
        defer { network.shutdown() }
        let lan = network.makeSwitch()
        let a = network.makeStack(threadCount: 4)
        let b = network.makeStack(threadCount: 4)
        try network.attach(a, to: lan, address: "198.18.0.1/24")
        try network.attach(b, to: lan, address: "198.18.0.2/24")
        let server = try b.socket(.inet, .datagram)
        try server.bind(to: .ipv4(.unspecified, port: 7))
        var clients: [NetSocket] = []
        for _ in 0..<32 {
            let client = try a.socket(.inet, .datagram)
            try client.connect(to: .ipv4(address("198.18.0.2"), port: 7))
            try client.write([1, 2, 3])
            clients.append(client)
        }
        network.runUntilIdle()
        // The server answers each client; the answer is handled on the same thread index of a
        // as the hash of the client's flow says, and a's thread tables all know the flow.
        var answered = 0
        while let request = try? server.receive(maxBytes: 16, flags: .dontWait) {
            try server.send(request.bytes, to: request.source)
            answered += 1
        }
        XCTAssertEqual(answered, 32)
        network.runUntilIdle()
        for client in clients { XCTAssertEqual(try client.read(maxBytes: 16, flags: .dontWait), [1, 2, 3]) }
        let perThreadIn = b.inet.perThread.map { $0.counters[InetCounter.udpIn.rawValue] }
        XCTAssertEqual(perThreadIn.reduce(0, +), 32)
        XCTAssertGreaterThanOrEqual(perThreadIn.filter { $0 > 0 }.count, 3, "\(perThreadIn)")
        let replies = a.inet.perThread.map { $0.counters[InetCounter.udpIn.rawValue] }
        // Symmetric hash: a's thread i got exactly the replies of the flows b's thread i got.
        XCTAssertEqual(replies, perThreadIn)
        // ARP went to thread 0 alone, and the one neighbour table serves every thread.
        XCTAssertNotNil(a.inet.neighbours.lookup(ARPKey(interfaceIndex: 1, address: address("198.18.0.2"))))
        let arpIn = a.inet.perThread.map { $0.counters[InetCounter.arpIn.rawValue] }
        XCTAssertGreaterThan(arpIn[0], 0)
        XCTAssertEqual(arpIn.dropFirst().reduce(0, +), 0, "\(arpIn)")
    }
}
