import Foundation
import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// Two or three stacks on simulated switches, stepped deterministically.
final class InetPingTests: XCTestCase {
    func testPingBetweenTwoStacksThroughASwitch() throws {
        let network = SimulatedNetwork(seed: 7)
        defer { network.shutdown() }
        let lan = network.makeSwitch()
        let a = network.makeStack()
        let b = network.makeStack()
        try network.attach(a, to: lan, address: "198.18.0.1/24")
        try network.attach(b, to: lan, address: "198.18.0.2/24")
        network.runUntilIdle()
        let ping = a.startPing(address("198.18.0.2"), sequence: 1, timeout: .seconds(2))
        XCTAssertTrue(network.run(until: { ping.isComplete }, limit: .seconds(5)))
        XCTAssertEqual(try ping.result?.get(), .zero)
        let statsA = a.inetStatistics()
        let statsB = b.inetStatistics()
        XCTAssertEqual(statsA[.arpRequestsSent], 1, "\(statsA)")
        XCTAssertEqual(statsB[.arpRepliesSent], 1, "\(statsB)")
        XCTAssertEqual(statsB[.icmpEchoRepliesSent], 1, "\(statsB)")
        // A second ping uses the cached entry: no new ARP request.
        let again = a.startPing(address("198.18.0.2"), sequence: 2)
        XCTAssertTrue(network.run(until: { again.isComplete }))
        XCTAssertNotNil(try again.result?.get())
        XCTAssertEqual(a.inetStatistics()[.arpRequestsSent], 1)
        // Nobody home: the request times out after ARP gives up.
        let lost = a.startPing(address("198.18.0.9"), sequence: 3, timeout: .seconds(5))
        XCTAssertTrue(network.run(until: { lost.isComplete }, limit: .seconds(10)))
        XCTAssertEqual(failure(lost), .timedOut)
        let final = a.inetStatistics()
        XCTAssertEqual(final[.arpResolutionFailures], 1)
        XCTAssertEqual(final[.arpRequestsSent], 1 + 3)
        XCTAssertEqual(final[.arpAnnouncementsSent], 1)
    }

    func testRoundTripTimeIsExactWithDelay() throws {
        let network = SimulatedNetwork(seed: 3)
        defer { network.shutdown() }
        let lan = network.makeSwitch(impairments: LinkImpairments(delay: .milliseconds(3)))
        let a = network.makeStack()
        let b = network.makeStack()
        try network.attach(a, to: lan, address: "198.18.0.1/24")
        try network.attach(b, to: lan, address: "198.18.0.2/24")
        network.run(for: .milliseconds(10))
        let first = a.startPing(address("198.18.0.2"), sequence: 1)
        XCTAssertTrue(network.run(until: { first.isComplete }))
        // ARP request and reply, then echo request and reply: four one-way trips.
        XCTAssertEqual(try first.result?.get(), .milliseconds(12))
        let second = a.startPing(address("198.18.0.2"), sequence: 2)
        XCTAssertTrue(network.run(until: { second.isComplete }))
        XCTAssertEqual(try second.result?.get(), .milliseconds(6))
    }

    func testPingThroughARouterBetweenTwoSubnets() throws {
        let (network, a, b, router) = try makeRoutedNetwork(forwarding: true)
        defer { network.shutdown() }
        for sequence in UInt16(1)...4 {
            let ping = a.startPing(address("198.18.2.20"), sequence: sequence, payloadSize: 100)
            XCTAssertTrue(network.run(until: { ping.isComplete }))
            XCTAssertNotNil(try ping.result?.get())
        }
        XCTAssertEqual(router.inetStatistics()[.ipForwarded], 8)
        XCTAssertEqual(b.inetStatistics()[.icmpEchoRepliesSent], 4)
        // TTL 1 dies at the router, which says so.
        let short = a.startPing(address("198.18.2.20"), sequence: 9, ttl: 1)
        XCTAssertTrue(network.run(until: { short.isComplete }))
        XCTAssertEqual(failure(short), .hostUnreachable)
        XCTAssertEqual(short.icmpError?.message, .timeExceeded(code: .timeToLiveExceeded))
        XCTAssertEqual(short.icmpError?.source, address("198.18.1.1"))
        XCTAssertEqual(router.inetStatistics()[.ipTTLExceeded], 1)
        // TTL 2 gets there.
        let enough = a.startPing(address("198.18.2.20"), sequence: 10, ttl: 2)
        XCTAssertTrue(network.run(until: { enough.isComplete }))
        XCTAssertNotNil(try enough.result?.get())
        // No route from the router: network unreachable.
        let nowhere = a.startPing(address("198.19.9.9"), sequence: 11)
        XCTAssertTrue(network.run(until: { nowhere.isComplete }))
        XCTAssertEqual(failure(nowhere), .networkUnreachable)
    }

    func testForwardingIsOffByDefault() throws {
        let (network, a, _, router) = try makeRoutedNetwork(forwarding: false)
        defer { network.shutdown() }
        let ping = a.startPing(address("198.18.2.20"), timeout: .seconds(1))
        XCTAssertTrue(network.run(until: { ping.isComplete }))
        XCTAssertEqual(failure(ping), .timedOut)
        XCTAssertEqual(router.inetStatistics()[.ipNotForUs], 1)
        XCTAssertEqual(router.inetStatistics()[.ipForwarded], 0)
    }

    func testARPExpiryAndReResolution() throws {
        var settings = InetSettings()
        settings.arpLifetime = .seconds(10)
        let network = SimulatedNetwork(seed: 5)
        defer { network.shutdown() }
        let lan = network.makeSwitch()
        let a = network.makeStack(settings: settings)
        let b = network.makeStack(settings: settings)
        try network.attach(a, to: lan, address: "198.18.0.1/24")
        try network.attach(b, to: lan, address: "198.18.0.2/24")
        let first = a.startPing(address("198.18.0.2"), sequence: 1)
        XCTAssertTrue(network.run(until: { first.isComplete }))
        XCTAssertNotNil(try first.result?.get())
        network.run(for: .seconds(5))
        let cached = a.startPing(address("198.18.0.2"), sequence: 2)
        XCTAssertTrue(network.run(until: { cached.isComplete }))
        XCTAssertNotNil(try cached.result?.get())
        XCTAssertEqual(a.inetStatistics()[.arpRequestsSent], 1)
        XCTAssertEqual(a.inetStatistics()[.arpExpired], 0)
        network.run(for: .seconds(6))
        let later = a.startPing(address("198.18.0.2"), sequence: 3)
        XCTAssertTrue(network.run(until: { later.isComplete }))
        XCTAssertNotNil(try later.result?.get())
        let stats = a.inetStatistics()
        XCTAssertEqual(stats[.arpExpired], 1, "\(stats)")
        XCTAssertEqual(stats[.arpRequestsSent], 2, "\(stats)")
        XCTAssertEqual(stats[.arpQueueDrops], 0)
    }

    func testPingOverLoopbackAndThreadedMode() throws {
        let stack = NetworkStack(.init(threadCount: 2))
        defer { stack.shutdown() }
        let rtt = try stack.ping(.loopback, timeout: .seconds(5))
        XCTAssertGreaterThan(rtt, .zero)
        XCTAssertEqual(stack.inetStatistics()[.icmpEchoRepliesSent], 1)
        let network = SimulatedNetwork(threadedWithSeed: 1)
        defer { network.shutdown() }
        let lan = network.makeSwitch()
        let a = network.makeStack(threadCount: 2)
        let b = network.makeStack(threadCount: 2)
        try network.attach(a, to: lan, address: "198.18.0.1/24")
        try network.attach(b, to: lan, address: "198.18.0.2/24")
        for sequence in UInt16(1)...10 {
            _ = try a.ping(
                address("198.18.0.2"), sequence: sequence, payloadSize: Int(sequence) * 300, timeout: .seconds(5))
        }
        XCTAssertEqual(b.inetStatistics()[.icmpEchoRepliesSent], 10)
    }

    func testAsyncPing() async throws {
        let stack = NetworkStack(.init(threadCount: 2))
        defer { stack.shutdown() }
        let rtt = try await stack.ping(.loopback, sequence: 5, timeout: .seconds(5))
        XCTAssertGreaterThan(rtt, .zero)
        do {
            _ = try await stack.ping(IPv4Address(198, 19, 0, 1), timeout: .milliseconds(50))
            XCTFail("no route expected")
        } catch {
            XCTAssertEqual(error, .networkUnreachable)
        }
    }

    /// The README's example, as written there.
    func testReadmeExample() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("readme-\(getpid()).pcap").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let network = SimulatedNetwork(seed: 7)
        defer { network.shutdown() }
        let lan = network.makeSwitch(impairments: LinkImpairments(delay: .milliseconds(2), jitter: .microseconds(200)))
        let a = network.makeStack()
        let b = network.makeStack()
        let portA = try network.attach(a, to: lan, address: "198.18.0.1/24")
        try network.attach(b, to: lan, address: "198.18.0.2/24")
        portA.setCapture(try PcapWriter(path: path, clock: network.clock))

        let server = try b.socket(.inet, .datagram)
        try server.bind(to: .ipv4(.unspecified, port: 53))
        let client = try a.socket(.inet, .datagram)
        try client.send(Array("query".utf8), to: .ipv4(IPv4Address(198, 18, 0, 2), port: 53))
        let ping = a.startPing(IPv4Address(198, 18, 0, 2))
        network.run(until: { ping.isComplete })
        let datagram = try server.receive(maxBytes: 512, flags: .dontWait)
        XCTAssertEqual(datagram.bytes, Array("query".utf8))
        XCTAssertNotNil(try ping.result?.get())
    }

    func testRouterFragmentsForASmallerMTU() throws {
        let network = SimulatedNetwork(seed: 13)
        defer { network.shutdown() }
        let lan1 = network.makeSwitch(name: "lan1")
        let lan2 = network.makeSwitch(name: "lan2")
        let a = network.makeStack()
        let b = network.makeStack()
        var settings = InetSettings()
        settings.forwarding = true
        let router = network.makeStack(settings: settings)
        try network.attach(a, to: lan1, address: "198.18.1.10/24")
        try network.attach(router, to: lan1, address: "198.18.1.1/24")
        try network.attach(router, to: lan2, address: "198.18.2.1/24", mtu: 576)
        try network.attach(b, to: lan2, address: "198.18.2.20/24", mtu: 576)
        try a.setDefaultGateway(address("198.18.1.1"))
        try b.setDefaultGateway(address("198.18.2.1"))
        let server = try b.socket(.inet, .datagram)
        try server.bind(to: .ipv4(.unspecified, port: 9))
        let client = try a.socket(.inet, .datagram)
        let payload = (0..<1400).map { UInt8(truncatingIfNeeded: $0 * 7) }
        try client.send(payload, to: .ipv4(address("198.18.2.20"), port: 9))
        network.runUntilIdle()
        XCTAssertEqual(try server.receive(maxBytes: 2000, flags: .dontWait).bytes, payload)
        // 1428 bytes of IP payload in 552-byte pieces: three fragments from the router.
        XCTAssertEqual(router.inetStatistics()[.ipFragmentsOut], 3)
        XCTAssertEqual(a.inetStatistics()[.ipFragmentsOut], 0)
        XCTAssertEqual(b.inetStatistics()[.reassembled], 1)
        let ping = a.startPing(address("198.18.2.20"), payloadSize: 1200)
        XCTAssertTrue(network.run(until: { ping.isComplete }))
        XCTAssertNotNil(try ping.result?.get())
    }
}
