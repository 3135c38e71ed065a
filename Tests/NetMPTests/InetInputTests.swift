import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// IPv4 input validation (RFC 1122 3.2.1), ICMP error rules and rate limit, gratuitous ARP.
final class InetInputTests: SingleHostTestCase {
    override func setUpWithError() throws { try makeStack() }

    func udp(_ payload: [UInt8] = [1, 2, 3], port: UInt16 = 9000, from source: IPv4Address? = nil) -> [UInt8] {
        UDPHeader(sourcePort: 4000, destinationPort: port).bytes(
            payload: payload, source: source ?? peer, destination: local)
    }

    func ip(
        _ body: [UInt8], source: IPv4Address? = nil, destination: IPv4Address? = nil, ttl: UInt8 = 64,
        protocol proto: IPProtocol = .udp
    ) -> [UInt8] {
        IPv4Header(
            totalLength: UInt16(20 + body.count), identification: 5, timeToLive: ttl, protocol: proto,
            source: source ?? peer, destination: destination ?? local
        ).bytes() + body
    }

    func frame(_ packet: [UInt8], to mac: MACAddress? = nil) -> [UInt8] {
        EthernetHeader(destination: mac ?? interface.hardwareAddress, source: peerMAC, etherType: .ipv4).bytes()
            + packet
    }

    /// Rewrites the IPv4 header checksum after a field was changed by hand.
    func refreshChecksum(_ packet: inout [UInt8]) {
        let length = Int(packet[0] & 0xF) * 4
        packet[10] = 0
        packet[11] = 0
        let sum = packet[0..<Swift.min(length, packet.count)].withUnsafeBytes { InternetChecksum.checksum($0) }
        packet[10] = UInt8(sum >> 8)
        packet[11] = UInt8(sum & 0xFF)
    }

    /// Injects one frame and returns the counters that moved.
    func deltas(_ bytes: [UInt8]) -> [InetCounter: Int] {
        let before = stack.inetStatistics()
        interface.inject([bytes])
        stack.runUntilIdle()
        let after = stack.inetStatistics()
        var moved: [InetCounter: Int] = [:]
        for counter in InetCounter.allCases where after[counter] != before[counter] {
            moved[counter] = after[counter] - before[counter]
        }
        return moved
    }

    func testValidDatagramIsDelivered() throws {
        let moved = deltas(frame(ip(udp())))
        XCTAssertEqual(moved[.udpDelivered], 1)
        XCTAssertEqual(try receiver.receive(maxBytes: 10, flags: .dontWait).bytes, [1, 2, 3])
        // A host takes a datagram with TTL 0 or 1 addressed to it (RFC 1122 3.2.1.7).
        XCTAssertEqual(deltas(frame(ip(udp(), ttl: 0)))[.udpDelivered], 1)
    }

    func testMalformedHeadersAreCounted() {
        var badVersion = ip(udp())
        badVersion[0] = 0x65
        refreshChecksum(&badVersion)
        XCTAssertEqual(deltas(frame(badVersion))[.ipMalformed], 1)
        var shortHeader = ip(udp())
        shortHeader[0] = 0x44
        refreshChecksum(&shortHeader)
        XCTAssertEqual(deltas(frame(shortHeader))[.ipMalformed], 1)
        var badChecksum = ip(udp())
        badChecksum[10] ^= 0x01
        XCTAssertEqual(deltas(frame(badChecksum))[.ipBadChecksum], 1)
        var tooLong = ip(udp())
        tooLong[3] = tooLong[3] &+ 50
        refreshChecksum(&tooLong)
        XCTAssertEqual(deltas(frame(tooLong))[.ipMalformed], 1)
        var tooShort = ip(udp())
        tooShort[2] = 0
        tooShort[3] = 10
        refreshChecksum(&tooShort)
        XCTAssertEqual(deltas(frame(tooShort))[.ipMalformed], 1)
        XCTAssertEqual(deltas(Array(frame(ip(udp()))[0..<30]))[.ipMalformed], 1)
        XCTAssertEqual(deltas(Array(frame(ip(udp()))[0..<10]))[.framesRunt], 1)
    }

    func testMartianSourcesAndForeignDestinations() {
        // 0.0.0.0 over UDP to us is a DHCP-like case (InetMartianTests); over ICMP it is martian.
        XCTAssertEqual(
            deltas(frame(ip([8, 0, 0, 0, 0, 0, 0, 0], source: address("0.0.0.0"), protocol: .icmp)))[
                .ipMartianSource], 1)
        for source in ["255.255.255.255", "224.0.0.1", "127.0.0.1", "240.0.0.1"] {
            XCTAssertEqual(deltas(frame(ip(udp(), source: address(source))))[.ipMartianSource], 1, source)
        }
        XCTAssertEqual(deltas(frame(ip(udp(), destination: address("198.18.0.77"))))[.ipNotForUs], 1)
        for destination in ["127.0.0.1", "0.1.2.3", "240.0.0.1"] {
            XCTAssertEqual(
                deltas(frame(ip(udp(), destination: address(destination))))[.ipMartianDestination], 1, destination)
        }
        XCTAssertEqual(deltas(frame(ip(udp(), destination: address("224.0.0.9"))))[.ipMulticastDropped], 1)
        XCTAssertEqual(deltas(frame(ip(udp()), to: MACAddress(0x02, 9, 9, 9, 9, 9)))[.framesNotForUs], 1)
        XCTAssertEqual(stack.inetStatistics()[.udpDelivered], 0)
    }

    func testTransportErrors() {
        var badUDP = udp()
        badUDP[7] ^= 0xFF
        XCTAssertEqual(deltas(frame(ip(badUDP)))[.udpMalformed], 1)
        var longUDP = udp()
        longUDP[5] = 200
        XCTAssertEqual(deltas(frame(ip(longUDP)))[.udpMalformed], 1)
        let unknown = deltas(frame(ip([1, 2, 3, 4], protocol: IPProtocol(rawValue: 99))))
        XCTAssertEqual(unknown[.protocolUnsupported], 1)
        XCTAssertEqual(unknown[.icmpErrorsSent], 1)
        let closed = deltas(frame(ip(udp(port: 9999))))
        XCTAssertEqual(closed[.udpNoPort], 1)
        XCTAssertEqual(closed[.icmpErrorsSent], 1)
        // No ICMP error about an ICMP error.
        let icmpError = ICMPHeader(message: .destinationUnreachable(code: .portUnreachable, nextHopMTU: 0)).bytes(
            payload: ip(udp(), source: local, destination: peer))
        let quiet = deltas(frame(ip(icmpError, protocol: .icmp)))
        XCTAssertEqual(quiet[.icmpErrorsIn], 1)
        XCTAssertNil(quiet[.icmpErrorsSent])
    }

    func testICMPErrorsAreRateLimited() {
        // Burst 10, then 100 per second.
        let closed = frame(ip(udp(port: 9999)))
        var sent = 0
        var limited = 0
        for _ in 0..<30 {
            let moved = deltas(closed)
            sent += moved[.icmpErrorsSent] ?? 0
            limited += moved[.icmpErrorsRateLimited] ?? 0
        }
        XCTAssertEqual(sent, 10)
        XCTAssertEqual(limited, 20)
        clock.advance(by: .milliseconds(50))
        sent = 0
        for _ in 0..<30 { sent += deltas(closed)[.icmpErrorsSent] ?? 0 }
        XCTAssertEqual(sent, 5)
    }

    func testGratuitousARPOnAddressAdd() throws {
        // setUp added 198.18.0.1: the first frame out is its announcement.
        let frames = interface.sent.withLock { $0 }
        guard let first = frames.first else { return XCTFail("nothing sent") }
        guard case .success(let ethernet) = EthernetHeader.parse(first) else { return XCTFail() }
        XCTAssertEqual(ethernet.header.destination, .broadcast)
        XCTAssertEqual(ethernet.header.etherType, .arp)
        guard case .success(let arp) = ARPPacket.parse(Array(first[14...])) else { return XCTFail() }
        XCTAssertEqual(arp.operation, .request)
        XCTAssertEqual(arp.senderProtocolAddress, local)
        XCTAssertEqual(arp.targetProtocolAddress, local)
        XCTAssertEqual(arp.senderHardwareAddress, interface.hardwareAddress)
        XCTAssertEqual(first.count, 60)
        try stack.addAddress(address("198.18.5.1"), prefixLength: 24, to: interface)
        stack.runUntilIdle()
        XCTAssertEqual(stack.inetStatistics()[.arpAnnouncementsSent], 2)
        // A request for our address is answered, and teaches us the asker.
        let request = ARPPacket(
            operation: .request, senderHardwareAddress: peerMAC, senderProtocolAddress: peer,
            targetHardwareAddress: .zero, targetProtocolAddress: local)
        let arpFrame =
            EthernetHeader(destination: .broadcast, source: peerMAC, etherType: .arp).bytes() + request.bytes()
        let moved = deltas(arpFrame)
        XCTAssertEqual(moved[.arpRepliesSent], 1)
        guard let reply = interface.sent.withLock({ $0.last }),
            case .success(let parsed) = ARPPacket.parse(Array(reply[14...]))
        else { return XCTFail() }
        XCTAssertEqual(parsed.operation, .reply)
        XCTAssertEqual(parsed.targetHardwareAddress, peerMAC)
        XCTAssertEqual(stack.inet.neighbours.lookup(ARPKey(interfaceIndex: 1, address: peer)), peerMAC)
    }
}
