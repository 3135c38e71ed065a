import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// IP options on input and when a router fragments a datagram that carries them.
final class InetOptionsTests: XCTestCase {
    let hostMAC = MACAddress(0x02, 0, 0, 0, 1, 10)
    let otherMAC = MACAddress(0x02, 0, 0, 0, 2, 20)
    /// Record route (one slot), a no-op, router alert (copied).
    let options: [UInt8] = [7, 7, 4, 0, 0, 0, 0, 1, 0x94, 4, 0, 0]

    /// A datagram from 198.18.1.10 to 198.18.2.20 with `options` and `payload`, as a frame to `mac`.
    func frame(to mac: MACAddress, options: [UInt8], payload: [UInt8]) -> [UInt8] {
        let length = 20 + options.count
        var ip =
            IPv4Header(
                totalLength: UInt16(length + payload.count), identification: 0x4242, dontFragment: false,
                protocol: .udp, source: address("198.18.1.10"), destination: address("198.18.2.20")
            ).bytes() + options
        ip[0] = UInt8(0x40 | length / 4)
        ip[10] = 0
        ip[11] = 0
        let sum = ip.withUnsafeBytes { InternetChecksum.checksum($0) }
        ip[10] = UInt8(sum >> 8)
        ip[11] = UInt8(sum & 0xFF)
        return EthernetHeader(destination: mac, source: hostMAC, etherType: .ipv4).bytes() + ip + payload
    }

    /// A router between 198.18.1.0/24 (MTU 1500) and 198.18.2.0/24 (MTU 600) that knows
    /// 198.18.2.20's address.
    func makeRouter() throws -> (NetworkStack, TestInterface, TestInterface) {
        var settings = InetSettings()
        settings.forwarding = true
        let router = NetworkStack(
            .init(threadCount: 1, clock: ManualClock(startingAt: 1_000_000_000), mode: .driven, seed: 4, inet: settings)
        )
        let inside = TestInterface(mac: MACAddress(0x02, 0, 0, 0, 1, 1))
        let outside = TestInterface(mac: MACAddress(0x02, 0, 0, 0, 2, 1), mtu: 600)
        try router.addAddress(address("198.18.1.1"), prefixLength: 24, to: inside)
        try router.addAddress(address("198.18.2.1"), prefixLength: 24, to: outside)
        let request = ARPPacket(
            operation: .request, senderHardwareAddress: otherMAC, senderProtocolAddress: address("198.18.2.20"),
            targetHardwareAddress: .zero, targetProtocolAddress: address("198.18.2.1"))
        outside.inject([
            EthernetHeader(destination: .broadcast, source: otherMAC, etherType: .arp).bytes() + request.bytes()
        ])
        router.runUntilIdle()
        return (router, inside, outside)
    }

    /// A forwarded datagram fragmented by the router: the first fragment keeps every option,
    /// later ones only the copied ones (they all used to leave with 20-byte headers).
    func testFragmentsCarryTheOptionsTheCopyBitSays() throws {
        let (router, inside, outside) = try makeRouter()
        defer { router.shutdown() }
        let payload = (0..<1008).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let sentBefore = outside.sent.withLock { $0.count }
        inside.inject([frame(to: inside.hardwareAddress, options: options, payload: payload)])
        router.runUntilIdle()
        let fragments = Array(outside.sent.withLock { $0 }[sentBefore...]).filter { $0[12] == 0x08 && $0[13] == 0 }
        XCTAssertEqual(fragments.count, 2)
        guard fragments.count == 2,
            case .success(let first) = IPv4Header.parse(Array(fragments[0][14...]), verifyChecksum: true),
            case .success(let second) = IPv4Header.parse(Array(fragments[1][14...]), verifyChecksum: true)
        else { return XCTFail("fragments did not parse") }
        XCTAssertEqual(first.headerLength, 32)
        XCTAssertEqual(Array(fragments[0][34..<46]), options)
        XCTAssertEqual(second.headerLength, 24)
        XCTAssertEqual(Array(fragments[1][34..<38]), [0x94, 4, 0, 0])
        XCTAssertEqual(first.header.fragmentByteOffset, 0)
        XCTAssertTrue(first.header.moreFragments)
        XCTAssertEqual(second.header.fragmentByteOffset, first.payloadRange.count)
        XCTAssertFalse(second.header.moreFragments)
        XCTAssertEqual(first.header.timeToLive, 63)
        XCTAssertEqual(second.header.identification, 0x4242)
        let rebuilt =
            Array(fragments[0][(14 + first.payloadRange.lowerBound)..<(14 + first.payloadRange.upperBound)])
            + Array(fragments[1][(14 + second.payloadRange.lowerBound)..<(14 + second.payloadRange.upperBound)])
        XCTAssertEqual(rebuilt, payload)
        for fragment in fragments { XCTAssertLessThanOrEqual(fragment.count - 14, 600) }
    }

    /// An option whose length runs past the header is malformed (it was accepted).
    func testMalformedOptionsAreDropped() throws {
        let (router, inside, _) = try makeRouter()
        defer { router.shutdown() }
        let before = router.inetStatistics()[.ipMalformed]
        inside.inject([frame(to: inside.hardwareAddress, options: [7, 9, 4, 0], payload: [1, 2, 3, 4])])
        router.runUntilIdle()
        XCTAssertEqual(router.inetStatistics()[.ipMalformed], before + 1)
        XCTAssertEqual(router.inetStatistics()[.ipForwarded], 0)
    }
}
