import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// RFC details of the IPv4 layer: ICMP errors quote up to 576 bytes, short frames are padded,
/// RFC 4884 errors reach their socket.
final class InetProtocolDetailTests: SingleHostTestCase {
    func resolvePeer() {
        let reply = ARPPacket(
            operation: .reply, senderHardwareAddress: peerMAC, senderProtocolAddress: peer,
            targetHardwareAddress: interface.hardwareAddress, targetProtocolAddress: local)
        interface.inject([
            EthernetHeader(destination: interface.hardwareAddress, source: peerMAC, etherType: .arp).bytes()
                + reply.bytes()
        ])
        stack.runUntilIdle()
    }

    func lastIPv4Frame() -> [UInt8]? {
        interface.sent.withLock { $0 }.last { $0.count > 14 && $0[12] == 0x08 && $0[13] == 0x00 }
    }

    /// RFC 1812 4.3.2.3: as much of the datagram as fits in 576 bytes (it quoted 28).
    func testICMPErrorQuotesUpTo576Bytes() throws {
        try makeStack()
        resolvePeer()
        let udp = UDPHeader(sourcePort: 4000, destinationPort: 9999).bytes(
            payload: [UInt8](repeating: 0xAB, count: 1000), source: peer, destination: local)
        let ip = IPv4Header(
            totalLength: UInt16(20 + udp.count), identification: 5, protocol: .udp, source: peer, destination: local)
        interface.inject([
            EthernetHeader(destination: interface.hardwareAddress, source: peerMAC, etherType: .ipv4).bytes()
                + ip.bytes() + udp
        ])
        stack.runUntilIdle()
        guard let frame = lastIPv4Frame(), case .success(let packet) = IPv4Header.parse(Array(frame[14...])) else {
            return XCTFail("no ICMP error sent")
        }
        XCTAssertEqual(packet.header.protocol, .icmp)
        XCTAssertEqual(packet.header.totalLength, 576)
        let icmp = Array(frame[(14 + 20)...])
        XCTAssertEqual(Array(icmp[8..<(8 + 548)]), Array((ip.bytes() + udp)[0..<548]))
    }

    /// Ethernet frames shorter than 60 bytes are padded with zeros (a 1-byte datagram left as a
    /// 43-byte frame).
    func testShortFramesArePadded() throws {
        try makeStack()
        resolvePeer()
        try receiver.send([0x5A], to: .ipv4(peer, port: 7))
        stack.runUntilIdle()
        guard let frame = lastIPv4Frame() else { return XCTFail("nothing sent") }
        XCTAssertEqual(frame.count, 60)
        XCTAssertEqual(frame[14 + 28], 0x5A)
        XCTAssertEqual(Array(frame[43...]), [UInt8](repeating: 0, count: 17))
        guard case .success(let packet) = IPv4Header.parse(Array(frame[14...])) else { return XCTFail() }
        XCTAssertEqual(packet.header.totalLength, 29)
    }

    /// A port unreachable carrying RFC 4884's length field reaches the connected socket (it was
    /// parsed as an unknown message and ignored).
    func testExtendedPortUnreachableReachesTheSocket() throws {
        try makeStack()
        resolvePeer()
        let client = try stack.socket(.inet, .datagram)
        defer { client.close() }
        try client.connect(to: .ipv4(peer, port: 53))
        try client.write([1, 2, 3, 4])
        stack.runUntilIdle()
        guard let sent = lastIPv4Frame() else { return XCTFail("nothing sent") }
        let original = Array(sent[14..<(14 + 32)])
        var message: [UInt8] = [3, 3, 0, 0, 0, 32, 0, 0] + original
        message += [UInt8](repeating: 0, count: 128 - original.count)
        message += [0x20, 0, 0, 0, 0, 8, 1, 1, 0, 0, 0, 7]
        let checksum = message.withUnsafeBytes { InternetChecksum.checksum($0) }
        message[2] = UInt8(checksum >> 8)
        message[3] = UInt8(checksum & 0xFF)
        let ip = IPv4Header(
            totalLength: UInt16(20 + message.count), identification: 9, protocol: .icmp, source: peer,
            destination: local)
        interface.inject([
            EthernetHeader(destination: interface.hardwareAddress, source: peerMAC, etherType: .ipv4).bytes()
                + ip.bytes() + message
        ])
        stack.runUntilIdle()
        XCTAssertThrowsError(try client.read(maxBytes: 4, flags: .dontWait)) {
            XCTAssertEqual($0 as? NetError, .connectionRefused)
        }
    }
}
