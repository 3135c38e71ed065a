import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// The routing table: longest prefix, gateways, broadcast, loopback, source choice.
final class InetRoutingTests: XCTestCase {
    func testLongestPrefixAndGateways() throws {
        let clock = ManualClock()
        let stack = NetworkStack(.init(threadCount: 1, clock: clock, mode: .driven, seed: 1))
        defer { stack.shutdown() }
        let eth0 = TestInterface(mac: MACAddress(0x02, 0, 0, 0, 0, 1))
        let eth1 = TestInterface(mac: MACAddress(0x02, 0, 0, 0, 0, 2))
        try stack.addAddress("198.18.0.1/24", to: eth0)
        try stack.addAddress("198.18.1.1/24", to: eth1)
        try stack.addAddress("198.18.1.2/24", to: eth1)
        try stack.setDefaultGateway(address("198.18.0.254"))
        try stack.addRoute(prefix("198.19.0.0/16"), via: address("198.18.1.254"))
        try stack.addRoute(prefix("198.19.7.0/24"), via: address("198.18.0.253"))
        XCTAssertThrowsError(try stack.addRoute(prefix("198.19.9.0/24"), via: address("203.0.113.1"))) {
            XCTAssertEqual($0 as? NetError, .networkUnreachable)
        }
        let config = stack.inet.configuration
        func check(
            _ destination: String, interface: Int, nextHop: String, source: String, broadcast: Bool = false,
            line: UInt = #line
        ) {
            guard let hop = config.route(to: address(destination)) else {
                return XCTFail("no route to \(destination)", line: line)
            }
            XCTAssertEqual(hop.interfaceIndex, interface, destination, line: line)
            XCTAssertEqual(hop.nextHop, address(nextHop), destination, line: line)
            XCTAssertEqual(hop.source, address(source), destination, line: line)
            XCTAssertEqual(hop.isBroadcast, broadcast, destination, line: line)
        }
        check("198.18.0.9", interface: 1, nextHop: "198.18.0.9", source: "198.18.0.1")
        check("198.18.1.9", interface: 2, nextHop: "198.18.1.9", source: "198.18.1.1")
        check("198.19.3.3", interface: 2, nextHop: "198.18.1.254", source: "198.18.1.1")
        check("198.19.7.7", interface: 1, nextHop: "198.18.0.253", source: "198.18.0.1")
        check("203.0.113.5", interface: 1, nextHop: "198.18.0.254", source: "198.18.0.1")
        check("198.18.1.255", interface: 2, nextHop: "198.18.1.255", source: "198.18.1.1", broadcast: true)
        check("127.0.0.5", interface: 0, nextHop: "127.0.0.5", source: "127.0.0.1")
        check("198.18.1.2", interface: 0, nextHop: "198.18.1.2", source: "198.18.1.2")
        XCTAssertEqual(config.route(to: .broadcast, from: address("198.18.1.2"))?.interfaceIndex, 2)
        XCTAssertTrue(config.isBroadcast(address("198.18.0.255"), on: 1))
        XCTAssertFalse(config.isBroadcast(address("198.18.0.255"), on: 2))
        // Without a default route, an unknown network has no route: sendto says so at once.
        let bare = NetworkStack(.init(threadCount: 1, clock: clock, mode: .driven, seed: 2))
        defer { bare.shutdown() }
        XCTAssertNil(bare.inet.configuration.route(to: address("198.18.0.1")))
        let socket = try bare.socket(.inet, .datagram)
        XCTAssertThrowsError(try socket.send([1], to: .ipv4(address("198.18.0.1"), port: 9))) {
            XCTAssertEqual($0 as? NetError, .networkUnreachable)
        }
        XCTAssertThrowsError(try socket.connect(to: .ipv4(address("198.18.0.1"), port: 9))) {
            XCTAssertEqual($0 as? NetError, .networkUnreachable)
        }
    }
}
