import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// A UDP binding is in every protocol thread's table before `bind` returns, as far as anything
/// that happens after `bind` can tell: the owner queues the table updates on every other thread
/// before it replies, and each thread's port is one FIFO, so any datagram dispatched after `bind`
/// returned is handled after the update. This pins that ordering with dedicated threads.
final class InetBindVisibilityTests: XCTestCase {
    func testDatagramRightAfterBindIsDeliveredWhicheverThreadItHashesTo() throws {
        let stack = NetworkStack(.init(threadCount: 4))
        defer { stack.shutdown() }
        let client = try stack.socket(.inet, .datagram)
        defer { client.close() }
        try client.bind(to: .ipv4(.loopback, port: 0))
        guard case .ipv4(_, let clientPort) = client.localAddress else { return XCTFail("no client port") }
        var elsewhere = 0
        for round in 0..<200 {
            let port = UInt16(21000 + round)
            let server = try stack.socket(.inet, .datagram)
            server.receiveTimeout = .seconds(5)
            try server.bind(to: .ipv4(.loopback, port: port))
            try client.send([UInt8(truncatingIfNeeded: round)], to: .ipv4(.loopback, port: port))
            let datagram = try server.receive(maxBytes: 8)
            XCTAssertEqual(datagram.bytes, [UInt8(truncatingIfNeeded: round)], "round \(round)")
            let flowThread = stack.inet.threadIndex(
                source: .loopback, destination: .loopback, sourcePort: clientPort, destinationPort: port)
            if let owner = server.core.owner as? ProtocolThread, owner.index != flowThread { elsewhere += 1 }
            server.close()
        }
        XCTAssertEqual(stack.inetStatistics()[.udpNoPort], 0)
        XCTAssertGreaterThan(elsewhere, 50, "too few datagrams landed on a thread other than the owner")
    }
}
