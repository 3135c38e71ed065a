import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// Addresses that must never be accepted or sent: martian sources, a link broadcast carrying a
/// unicast destination, bad sources on output, SO_BROADCAST for directed broadcasts, and no
/// forwarding of directed broadcasts.
final class InetMartianTests: SingleHostTestCase {
    func datagram(
        from source: IPv4Address, to destination: IPv4Address? = nil, port: UInt16 = 9999,
        linkDestination: MACAddress? = nil
    ) -> [UInt8] {
        let to = destination ?? local
        let udp = UDPHeader(sourcePort: 4000, destinationPort: port).bytes(
            payload: [1, 2, 3], source: source, destination: to)
        let ip = IPv4Header(
            totalLength: UInt16(20 + udp.count), identification: 5, protocol: .udp, source: source, destination: to)
        return EthernetHeader(
            destination: linkDestination ?? interface.hardwareAddress, source: peerMAC, etherType: .ipv4
        ).bytes() + ip.bytes() + udp
    }

    func moved(_ frame: [UInt8]) -> [InetCounter: Int] {
        let before = stack.inetStatistics()
        interface.inject([frame])
        stack.runUntilIdle()
        let after = stack.inetStatistics()
        var result: [InetCounter: Int] = [:]
        for counter in InetCounter.allCases where after[counter] != before[counter] {
            result[counter] = after[counter] - before[counter]
        }
        return result
    }

    /// Our subnet broadcasts and our own addresses from the wire used to be accepted (and drew
    /// ICMP port unreachable back to them).
    func testMartianSourcesAreDroppedWithoutICMP() throws {
        try makeStack()
        try stack.addAddress(address("198.18.5.1"), prefixLength: 24, to: interface)
        let sources = [
            "198.18.0.255", "198.18.5.255", "198.18.0.1", "198.18.5.1", "0.1.2.3", "127.0.0.1", "224.0.0.1",
            "240.0.0.1", "255.255.255.255",
        ]
        for source in sources {
            let counters = moved(datagram(from: address(source)))
            XCTAssertEqual(counters[.ipMartianSource], 1, source)
            XCTAssertNil(counters[.icmpErrorsSent], source)
            XCTAssertNil(counters[.udpNoPort], source)
        }
    }

    /// 0.0.0.0 to the limited broadcast over UDP is what a DHCP client sends: accepted (it
    /// used to be dropped), and never answered with ICMP.
    func testUnspecifiedSourceToBroadcastIsAcceptedForUDP() throws {
        try makeStack()
        let frame = datagram(from: .unspecified, to: .broadcast, port: 9000, linkDestination: .broadcast)
        XCTAssertEqual(moved(frame)[.udpDelivered], 1)
        XCTAssertEqual(try receiver.receive(maxBytes: 10, flags: .dontWait).bytes, [1, 2, 3])
        let closed = moved(datagram(from: .unspecified, to: .broadcast, port: 9999, linkDestination: .broadcast))
        XCTAssertEqual(closed[.udpNoPort], 1)
        XCTAssertNil(closed[.icmpErrorsSent])
    }

    /// RFC 1122 3.3.6: a link-layer broadcast with a unicast IP destination is dropped (it used
    /// to be delivered).
    func testLinkBroadcastWithUnicastDestinationIsDropped() throws {
        try makeStack()
        let counters = moved(datagram(from: peer, port: 9000, linkDestination: .broadcast))
        XCTAssertEqual(counters[.ipLinkBroadcastUnicast], 1)
        XCTAssertNil(counters[.udpDelivered])
    }

    /// A source in 127/8 leaving on a wire, or a broadcast source, fails with EINVAL (a
    /// datagram from 127.0.0.1 used to go out on the wire).
    func testBadSourcesCannotBeSent() throws {
        try makeStack()
        let fromLoopback = try stack.socket(.inet, .datagram)
        defer { fromLoopback.close() }
        try fromLoopback.bind(to: .ipv4(.loopback, port: 7100))
        XCTAssertThrowsError(try fromLoopback.send([1], to: .ipv4(peer, port: 7))) {
            XCTAssertEqual($0 as? NetError, .invalidArgument)
        }
        XCTAssertThrowsError(try fromLoopback.connect(to: .ipv4(peer, port: 7))) {
            XCTAssertEqual($0 as? NetError, .invalidArgument)
        }
        // Over loopback it is fine.
        try fromLoopback.send([1], to: .ipv4(.loopback, port: 7))
        let fromBroadcast = try stack.socket(.inet, .datagram)
        defer { fromBroadcast.close() }
        fromBroadcast.allowsBroadcast = true
        try fromBroadcast.bind(to: .ipv4(.broadcast, port: 7101))
        XCTAssertThrowsError(try fromBroadcast.send([1], to: .ipv4(peer, port: 7))) {
            XCTAssertEqual($0 as? NetError, .invalidArgument)
        }
        stack.runUntilIdle()
        let wire = interface.sent.withLock { $0 }.filter { $0.count > 14 && $0[12] == 0x08 && $0[13] == 0x00 }
        XCTAssertEqual(wire.count, 0)
    }

    /// SO_BROADCAST is needed for directed broadcasts too (only 255.255.255.255 was checked).
    func testDirectedBroadcastNeedsSOBroadcast() throws {
        try makeStack()
        try stack.addAddress(address("198.18.5.1"), prefixLength: 24, to: interface)
        let sender = try stack.socket(.inet, .datagram)
        defer { sender.close() }
        for destination in ["198.18.0.255", "198.18.5.255", "255.255.255.255"] {
            XCTAssertThrowsError(try sender.send([1], to: .ipv4(address(destination), port: 7)), destination) {
                XCTAssertEqual($0 as? NetError, .permissionDenied, destination)
            }
        }
        XCTAssertThrowsError(try sender.connect(to: .ipv4(address("198.18.0.255"), port: 7))) {
            XCTAssertEqual($0 as? NetError, .permissionDenied)
        }
        sender.allowsBroadcast = true
        try sender.send([1], to: .ipv4(address("198.18.0.255"), port: 7))
    }

    /// A router does not forward a datagram to the subnet broadcast of its other network
    /// (RFC 2644); it used to, as a link broadcast.
    func testDirectedBroadcastIsNotForwarded() throws {
        let network = SimulatedNetwork(seed: 11)
        defer { network.shutdown() }
        let lan1 = network.makeSwitch(name: "lan1")
        let lan2 = network.makeSwitch(name: "lan2")
        let a = network.makeStack()
        let b = network.makeStack()
        var routerSettings = InetSettings()
        routerSettings.forwarding = true
        let router = network.makeStack(settings: routerSettings)
        try network.attach(a, to: lan1, address: "198.18.1.10/24")
        try network.attach(router, to: lan1, address: "198.18.1.1/24")
        try network.attach(router, to: lan2, address: "198.18.2.1/24")
        try network.attach(b, to: lan2, address: "198.18.2.20/24")
        try a.setDefaultGateway(address("198.18.1.1"))
        let listener = try b.socket(.inet, .datagram)
        try listener.bind(to: .ipv4(.unspecified, port: 6000))
        let sender = try a.socket(.inet, .datagram)
        sender.allowsBroadcast = true
        try sender.send([1], to: .ipv4(address("198.18.2.255"), port: 6000))
        try sender.send([2], to: .ipv4(address("198.18.2.20"), port: 6000))
        network.run(for: .seconds(1))
        XCTAssertEqual(router.inetStatistics()[.ipDirectedBroadcastDropped], 1)
        XCTAssertEqual(router.inetStatistics()[.ipForwarded], 1)
        XCTAssertEqual(try listener.receive(maxBytes: 10, flags: .dontWait).bytes, [2])
        XCTAssertThrowsError(try listener.receive(maxBytes: 10, flags: .dontWait))
    }
}
