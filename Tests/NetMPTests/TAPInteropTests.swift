import Foundation
import NetMPServices
import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces

/// NetMP against the Linux kernel's own IPv4 over a TAP device in a namespace the test makes
/// (root only; skipped otherwise, saying why). Kernel side 198.18.0.1, NetMP 198.18.0.2.
final class TAPInteropTests: XCTestCase {
    private func makeStack(threads: Int) -> NetworkStack {
        NetworkStack(NetworkStack.Configuration(threadCount: threads))
    }

    private var kernel: IPv4Address { IPv4Address(198, 18, 0, 1) }

    func testKernelPingsNetMPAndLearnsItsHardwareAddress() throws {
        try kernelPings(threads: 1)
    }

    func testKernelPingsNetMPOverTwoQueues() throws {
        try kernelPings(threads: 2)
    }

    private func kernelPings(threads: Int) throws {
        let namespace = try TAPNamespace.make(for: self)
        let stack = makeStack(threads: threads)
        defer { stack.shutdown() }
        let tap = try namespace.attach(stack, queues: threads)
        XCTAssertEqual(tap.queueCount, threads)
        let ping = try namespace.run(["ping", "-c", "5", "-i", "0.2", "-W", "2", TAPNamespace.netmpAddress])
        XCTAssertEqual(ping.status, 0, ping.output + ping.errors)
        XCTAssertTrue(ping.output.contains("5 packets transmitted, 5 received"), ping.output)
        // ARP: the kernel resolved 198.18.0.2 to NetMP's address.
        let neighbours = try namespace.run(["ip", "neigh", "show", TAPNamespace.netmpAddress])
        XCTAssertTrue(
            neighbours.output.lowercased().contains("lladdr \(tap.hardwareAddress)".lowercased()),
            "neighbour table: \(neighbours.output), NetMP is \(tap.hardwareAddress)")
        let statistics = stack.inetStatistics()
        XCTAssertEqual(statistics[.icmpEchoRepliesSent], 5, "\(statistics)")
        XCTAssertGreaterThanOrEqual(statistics[.arpIn], 1, "\(statistics)")
        XCTAssertEqual(tap.tapStatistics.receiveDrops, 0)
    }

    func testNetMPPingsTheKernel() throws {
        let namespace = try TAPNamespace.make(for: self)
        let stack = makeStack(threads: 1)
        defer { stack.shutdown() }
        _ = try namespace.attach(stack)
        var requestsAfterFirstPing = 0
        for sequence in 1...3 {
            let rtt: Duration = try stack.ping(kernel, sequence: UInt16(sequence), timeout: .seconds(3))
            XCTAssertGreaterThan(rtt, .zero)
            XCTAssertLessThan(rtt, .seconds(3))
            if sequence == 1 { requestsAfterFirstPing = stack.inetStatistics()[.arpRequestsSent] }
        }
        let statistics = stack.inetStatistics()
        // The first ping resolves (a loaded machine may retry the request before the reply
        // comes); the later ones use the cache and send none.
        XCTAssertGreaterThanOrEqual(requestsAfterFirstPing, 1, "\(statistics)")
        XCTAssertEqual(
            statistics[.arpRequestsSent], requestsAfterFirstPing, "later pings resolved again: \(statistics)")
        // NetMP's ARP entry for the kernel is the kernel's real address.
        let link = try namespace.run(["cat", "/sys/class/net/\(namespace.device)/address"])
        XCTAssertEqual(link.status, 0)
        let kernelMAC = link.output.trimmingCharacters(in: .whitespacesAndNewlines)
        let learned = stack.inet.neighbours.lookup(ARPKey(interfaceIndex: 1, address: kernel))
        XCTAssertEqual(learned.map { "\($0)".lowercased() }, kernelMAC.lowercased())
    }

    func testPingToAnAbsentHostTimesOut() throws {
        let namespace = try TAPNamespace.make(for: self)
        let stack = makeStack(threads: 1)
        defer { stack.shutdown() }
        _ = try namespace.attach(stack)
        XCTAssertThrowsError(
            try { () throws(NetError) -> Duration in
                try stack.ping(IPv4Address(198, 18, 0, 77), timeout: .milliseconds(1500))
            }()
        ) { error in XCTAssertEqual(error as? NetError, .timedOut) }
    }

    func testUDPEchoFromKernelToNetMP() throws {
        try udpEchoFromKernel(threads: 1)
    }

    func testUDPEchoFromKernelToNetMPOverTwoQueues() throws {
        try udpEchoFromKernel(threads: 2)
    }

    /// A kernel client sends datagrams of many sizes (fragmented ones too) from several ports;
    /// each comes back byte for byte. The kernel hands the TAP partial checksums (checksum
    /// offload), which NetMP finishes before its UDP verifies them.
    private func udpEchoFromKernel(threads: Int) throws {
        let namespace = try TAPNamespace.make(for: self)
        let stack = makeStack(threads: threads)
        defer { stack.shutdown() }
        let tap = try namespace.attach(stack, queues: threads)
        let socket = try stack.socket(.inet, .datagram)
        try socket.bind(to: .ipv4(.unspecified, port: 7))
        let service = UDPEchoService(socket: socket)
        defer { service.stop() }
        let program = """
            import socket, hashlib, sys
            sizes = [0, 1, 18, 100, 1000, 1472, 1473, 3000, 8000, 20000]
            ok = 0
            digest = hashlib.sha256()
            for port in range(4):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind(("198.18.0.1", 0))
                s.settimeout(3)
                for n in sizes:
                    data = bytes((i * 7 + n + port) % 256 for i in range(n))
                    s.sendto(data, ("198.18.0.2", 7))
                    reply, source = s.recvfrom(65535)
                    if reply == data and source == ("198.18.0.2", 7):
                        ok += 1
                        digest.update(reply)
            print(ok, digest.hexdigest())
            """
        let result = try namespace.runPython(program, timeout: .seconds(60))
        XCTAssertEqual(result.status, 0, result.errors)
        let expected = SHA256Reference.expectedEchoDigest()
        XCTAssertEqual(result.output.trimmingCharacters(in: .whitespacesAndNewlines), "40 \(expected)")
        XCTAssertEqual(service.counters.snapshot.accepted, 40)
        let offloaded = tap.tapStatistics.checksumsCompleted + tap.tapStatistics.checksumsLeftPartial
        XCTAssertGreaterThan(offloaded, 0, "the kernel used checksum offload")
        XCTAssertEqual(stack.inetStatistics()[.ipBadChecksum], 0)
        XCTAssertEqual(stack.inetStatistics()[.udpMalformed], 0)
    }

    /// NetMP sends to a kernel UDP echo server; each reply is the same bytes from the kernel.
    func testUDPEchoFromNetMPToKernel() throws {
        let namespace = try TAPNamespace.make(for: self)
        let stack = makeStack(threads: 1)
        defer { stack.shutdown() }
        _ = try namespace.attach(stack)
        let server = try namespace.start([
            "python3", "-c",
            """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("198.18.0.1", 9000))
            print("ready", flush=True)
            while True:
                data, source = s.recvfrom(65535)
                s.sendto(data, source)
            """,
        ])
        defer { server.stop() }
        XCTAssertTrue(server.waitForOutput(containing: "ready", timeout: .seconds(20)), "kernel echo server")
        let client = try stack.socket(.inet, .datagram)
        defer { client.close() }
        client.receiveTimeout = .seconds(2)
        let destination = SocketAddress.ipv4(kernel, port: 9000)
        var echoed = 0
        for size in [1, 100, 1472, 1473, 4000, 30000] {
            let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ size) }
            // The first datagram also waits for ARP; a lost one is sent again (bounded).
            var reply: [UInt8]?
            for _ in 0..<3 where reply == nil {
                _ = try client.send(payload, to: destination)
                if let received = try? client.receive(maxBytes: 65535), received.source == destination {
                    reply = received.bytes
                }
            }
            XCTAssertEqual(reply, payload, "size \(size)")
            if reply == payload { echoed += 1 }
        }
        XCTAssertEqual(echoed, 6)
    }

    func testOpeningAnAbsentDeviceSaysNoSuchDevice() throws {
        let namespace = try TAPNamespace.make(for: self)
        XCTAssertThrowsError(
            try TAPInterface(name: "nmt-absent", create: false, namespacePath: namespace.namespacePath)
        ) { error in XCTAssertEqual(error as? NetError, .noSuchDevice) }
        XCTAssertThrowsError(try TAPInterface(name: "x", namespacePath: "/run/netns/netmp-no-such-namespace")) {
            error in XCTAssertEqual(error as? NetError, .noSuchDevice)
        }
    }

    func testADeviceThatIsNotAMultiQueueTAPIsRefused() throws {
        let namespace = try TAPNamespace.make(for: self)
        let made = try namespace.run(["ip", "tuntap", "add", "dev", "nmt-single", "mode", "tap"])
        XCTAssertEqual(made.status, 0, made.errors)
        XCTAssertThrowsError(
            try TAPInterface(name: "nmt-single", create: false, namespacePath: namespace.namespacePath)
        ) { error in XCTAssertEqual(error as? NetError, .invalidArgument) }
    }

    /// A namespace left by a test process that crashed (its pid is gone) is deleted by the
    /// next run's helper; one of a live process is not.
    func testLeftoversOfACrashedRunAreSwept() throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root to make namespaces") }
        var dead: Int32 = 4_000_000
        while kill(dead, 0) == 0 || errno != ESRCH { dead -= 1 }
        let leftover = "netmp-t\(dead)-1"
        let live = "netmp-t\(getppid())-77"
        for name in [leftover, live] {
            XCTAssertEqual(try TAPNamespace.execute(["ip", "netns", "add", name], timeout: .seconds(10)).status, 0)
        }
        defer { _ = try? TAPNamespace.execute(["ip", "netns", "del", live], timeout: .seconds(10)) }
        _ = try TAPNamespace.make(for: self)
        let list = try TAPNamespace.execute(["ip", "netns", "list"], timeout: .seconds(10)).output
        XCTAssertFalse(list.contains(leftover), list)
        XCTAssertTrue(list.contains(live), list)
    }

    func testTheNamespaceAndDeviceAreGoneAfterRemoval() throws {
        let namespace = try TAPNamespace.make(for: self)
        let stack = makeStack(threads: 1)
        defer { stack.shutdown() }
        _ = try namespace.attach(stack)
        namespace.remove()
        let list = try TAPNamespace.execute(["ip", "netns", "list"], timeout: .seconds(10))
        XCTAssertFalse(list.output.contains(namespace.name), list.output)
        let links = try TAPNamespace.execute(["ip", "-o", "link", "show"], timeout: .seconds(10))
        XCTAssertFalse(links.output.contains(namespace.device), links.output)
    }
}

/// The digest the kernel-side echo client prints when every datagram came back intact.
enum SHA256Reference {
    static func expectedEchoDigest() -> String {
        let program = """
            import hashlib
            sizes = [0, 1, 18, 100, 1000, 1472, 1473, 3000, 8000, 20000]
            digest = hashlib.sha256()
            for port in range(4):
                for n in sizes:
                    digest.update(bytes((i * 7 + n + port) % 256 for i in range(n)))
            print(digest.hexdigest())
            """
        let result = try? TAPNamespace.execute(["python3", "-c", program], timeout: .seconds(30))
        return result?.output.trimmingCharacters(in: .whitespacesAndNewlines) ?? "unavailable"
    }
}
