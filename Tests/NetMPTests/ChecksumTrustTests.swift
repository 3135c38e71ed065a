import NetMPWire
import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPRuntime

/// Frames whose transport checksum an interface vouches for (a TAP device's partial sums from
/// the host's kernel): a stack takes them without summing the payload, and a router finishes a
/// partial sum before the datagram leaves, so the next hop, which verifies, accepts it.
final class ChecksumTrustTests: XCTestCase {
    private static func address(_ text: String) -> IPv4Address { IPv4Address(text) ?? .unspecified }

    /// An Ethernet frame to `port` carrying UDP from 198.18.1.10:9000 to `destination`:6000,
    /// whose checksum field holds only the pseudo-header sum (VIRTIO_NET_HDR_F_NEEDS_CSUM).
    private static func partialUDPFrame(to port: SwitchPort, destination: IPv4Address, payload: [UInt8]) -> Frame {
        let source = address("198.18.1.10")
        let length = UInt16(8 + payload.count)
        let pseudo = InternetChecksum.pseudoHeaderSum(
            source: source, destination: destination, protocol: .udp, length: length)
        let udp: [UInt8] =
            [
                0x23, 0x28, 0x17, 0x70, UInt8(length >> 8), UInt8(length & 0xFF), UInt8(pseudo >> 8),
                UInt8(pseudo & 0xFF),
            ]
            + payload
        let bytes =
            EthernetHeader(
                destination: port.hardwareAddress, source: MACAddress(0x02, 0, 0, 0, 0, 0x42), etherType: .ipv4
            ).bytes()
            + IPv4Header(totalLength: 20 + length, protocol: .udp, source: source, destination: destination).bytes()
            + udp
        var frame = Frame(bytes)
        frame.checksumTrusted = true
        frame.checksumPartial = true
        return frame
    }

    func testATrustedPartialChecksumIsTakenAndFinishedWhenForwarded() throws {
        let network = SimulatedNetwork(seed: 17)
        defer { network.shutdown() }
        let lan1 = network.makeSwitch(name: "lan1")
        let lan2 = network.makeSwitch(name: "lan2")
        var routerSettings = InetSettings()
        routerSettings.forwarding = true
        let router = network.makeStack(settings: routerSettings)
        let host = network.makeStack()
        let routerPort = try network.attach(router, to: lan1, address: "198.18.1.1/24")
        try network.attach(router, to: lan2, address: "198.18.2.1/24")
        try network.attach(host, to: lan2, address: "198.18.2.20/24")
        let local = try router.socket(.inet, .datagram)
        try local.bind(to: .ipv4(.unspecified, port: 6000))
        let remote = try host.socket(.inet, .datagram)
        try remote.bind(to: .ipv4(.unspecified, port: 6000))
        defer {
            local.close()
            remote.close()
        }

        // To the router itself: taken as it is, though its checksum field is not a full sum.
        routerPort.deliverInbound([
            Self.partialUDPFrame(to: routerPort, destination: Self.address("198.18.1.1"), payload: [1, 2, 3])
        ])
        // Through the router: the host verifies the checksum the router finished.
        let payload = (0..<999).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        routerPort.deliverInbound([
            Self.partialUDPFrame(to: routerPort, destination: Self.address("198.18.2.20"), payload: payload)
        ])
        network.run(for: .seconds(1))
        XCTAssertEqual(try local.receive(maxBytes: 64, flags: .dontWait).bytes, [1, 2, 3])
        XCTAssertEqual(router.inetStatistics()[.ipForwarded], 1)
        XCTAssertEqual(try remote.receive(maxBytes: 2048, flags: .dontWait).bytes, payload)
        XCTAssertEqual(host.inetStatistics()[.udpMalformed], 0)

        // The same partial frame without the interface's word is checked, and dropped.
        var untrusted = Self.partialUDPFrame(to: routerPort, destination: Self.address("198.18.1.1"), payload: [4])
        untrusted.checksumTrusted = false
        untrusted.checksumPartial = false
        routerPort.deliverInbound([untrusted])
        network.run(for: .seconds(1))
        XCTAssertThrowsError(try local.receive(maxBytes: 64, flags: .dontWait))
        XCTAssertEqual(router.inetStatistics()[.udpMalformed], 1)
    }
}
