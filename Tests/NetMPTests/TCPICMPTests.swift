import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPRuntime
@testable import NetMPSockets
@testable import NetMPTCP

/// ICMP errors reaching TCP connections through a router, in the deterministic mode:
/// a (198.18.1.10) -- lan1 -- router (forwarding) -- lan2 -- b (198.18.2.20) (`makeRoutedNetwork`).
final class TCPICMPTests: XCTestCase {
    func testConnectThroughARouterWithNoRouteFailsAtOnceWithNetworkUnreachable() throws {
        let (network, a, _, _) = try makeRoutedNetwork(forwarding: true, seed: 3)
        defer { network.shutdown() }

        let client = try a.socket(.inet, .stream)
        client.isNonBlocking = true
        XCTAssertThrowsError(try client.connect(to: .ipv4(address("198.19.9.9"), port: 80))) {
            XCTAssertEqual($0 as? NetError, .inProgress)
        }
        let start = network.clock.nanoseconds
        XCTAssertTrue(network.run(until: { client.core.state.contains(.disconnected) }, limit: .seconds(5)))
        // The router's "network unreachable" ends the attempt within the round trip, long
        // before the first SYN retransmission (1 s).
        XCTAssertLessThan(network.clock.nanoseconds - start, 100_000_000)
        XCTAssertEqual(try client.option(.error), Int(NetError.networkUnreachable.rawValue))
        XCTAssertEqual(a.tcp.statistics().icmpErrors, 1)
        XCTAssertEqual(a.tcpStatistics().liveConnections, 0)
        client.close()
        network.runUntilIdle()
        XCTAssertEqual(a.tcpStatistics().reservedTuples, 0, "the failed connect released its tuple")
    }
}
