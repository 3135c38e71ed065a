import Foundation
import XCTest

@testable import NetMP

/// The `netmp` command itself against the kernel, run inside the test's namespace with
/// `ip netns exec` (root only, and the `netmp` product must be built: `swift build` does it).
final class TAPCommandTests: XCTestCase {
    /// The built `netmp` next to the test bundle's build directory, or a skip.
    static func netmpExecutable() throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        for configuration in ["debug", "release"] {
            let path = root.appendingPathComponent(".build/\(configuration)/netmp").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw XCTSkip("the netmp executable is not built (swift build builds it; scripts/test.sh does)")
    }

    func testPingCommandGetsRepliesFromTheKernelAndExitsZero() throws {
        let namespace = try TAPNamespace.make(for: self)
        let netmp = try TAPCommandTests.netmpExecutable()
        let capture = NSTemporaryDirectory() + "netmp-ping-\(UUID().uuidString).pcap"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: capture) }
        let result = try namespace.run(
            [
                netmp, "ping", "--tap", namespace.device, "--address", "\(TAPNamespace.netmpAddress)/24",
                TAPNamespace.kernelAddress, "-c", "3", "-i", "0.1", "--pcap", capture,
            ], timeout: .seconds(30))
        XCTAssertEqual(result.status, 0, result.output + result.errors)
        XCTAssertTrue(result.output.contains("3 packets transmitted, 3 received, 0% packet loss"), result.output)
        // The capture holds the exchange: three requests, three replies.
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tshark") else { return }
        let decoded = try TAPNamespace.execute(["tshark", "-r", capture, "-Y", "icmp"], timeout: .seconds(60))
        let lines = decoded.output.split(separator: "\n")
        XCTAssertEqual(lines.filter { $0.contains("Echo (ping) request") }.count, 3, decoded.output)
        XCTAssertEqual(lines.filter { $0.contains("Echo (ping) reply") }.count, 3, decoded.output)
    }

    func testPingCommandExitsOneWithoutReplies() throws {
        let namespace = try TAPNamespace.make(for: self)
        let netmp = try TAPCommandTests.netmpExecutable()
        let result = try namespace.run(
            [
                netmp, "ping", "--tap", namespace.device, "--address", "\(TAPNamespace.netmpAddress)/24",
                "198.18.0.99", "-c", "1", "-W", "0.5",
            ], timeout: .seconds(30))
        XCTAssertEqual(result.status, 1, result.output + result.errors)
        XCTAssertTrue(result.output.contains("1 packets transmitted, 0 received, 100% packet loss"), result.output)
    }

    func testAnUnusableDeviceExitsWithItsDocumentedStatus() throws {
        let namespace = try TAPNamespace.make(for: self)
        let netmp = try TAPCommandTests.netmpExecutable()
        let made = try namespace.run(["ip", "tuntap", "add", "dev", "nmt-tun", "mode", "tun"])
        XCTAssertEqual(made.status, 0, made.errors)
        let result = try namespace.run(
            [netmp, "ping", "--tap", "nmt-tun", "--address", "198.18.0.2/24", "198.18.0.1", "-c", "1"],
            timeout: .seconds(30))
        XCTAssertEqual(result.status, 69, result.output + result.errors)
        XCTAssertTrue(result.errors.contains("not a multi-queue TAP"), result.errors)
    }

    /// `netmp serve --udp-echo`: a kernel client's datagrams come back; SIGUSR1 prints counters
    /// and SIGTERM ends it with statistics and status 0.
    func testServeEchoesUDPAndReportsOnSignals() throws {
        let namespace = try TAPNamespace.make(for: self)
        let netmp = try TAPCommandTests.netmpExecutable()
        let server = try namespace.start([
            netmp, "serve", "--tap", namespace.device, "--address", "\(TAPNamespace.netmpAddress)/24",
            "--udp-echo", "7", "--threads", "2",
        ])
        // The client retries its first datagram while the server starts (bounded: 50 × 0.2 s).
        let client = try namespace.runPython(
            """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(0.2)
            for attempt in range(50):
                s.sendto(b"hello", ("198.18.0.2", 7))
                try:
                    if s.recvfrom(100)[0] == b"hello": break
                except socket.timeout:
                    pass
            else:
                raise SystemExit("no echo")
            s.settimeout(3)
            good = 0
            for n in range(1, 101):
                data = bytes(range(n % 256)) * 10
                s.sendto(data, ("198.18.0.2", 7))
                if s.recvfrom(65535)[0] == data: good += 1
            print(good)
            """, timeout: .seconds(60))
        XCTAssertEqual(client.status, 0, client.errors)
        XCTAssertEqual(client.output.trimmingCharacters(in: .whitespacesAndNewlines), "100")
        kill(server.process.processIdentifier, SIGUSR1)
        kill(server.process.processIdentifier, SIGTERM)
        XCTAssertTrue(server.waitForExit(timeout: .seconds(10)), "serve did not stop on SIGTERM")
        XCTAssertEqual(server.process.terminationStatus, 0)
        XCTAssertTrue(server.waitForOutput(containing: "udp-echo: accepted=", timeout: .seconds(5)), server.output)
        let output = server.output
        XCTAssertTrue(output.contains("icmp:") && output.contains("udp:"), output)
    }

    /// `netmp nc --udp`: stdin goes out as a datagram to a kernel echo server, the reply comes
    /// out on stdout, and the command ends after --wait seconds of quiet.
    func testNetcatUDPClientGetsTheKernelsEcho() throws {
        let namespace = try TAPNamespace.make(for: self)
        let netmp = try TAPCommandTests.netmpExecutable()
        let server = try namespace.start([
            "python3", "-c",
            """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("198.18.0.1", 9001))
            print("ready", flush=True)
            while True:
                data, source = s.recvfrom(65535)
                s.sendto(data.upper(), source)
            """,
        ])
        XCTAssertTrue(server.waitForOutput(containing: "ready", timeout: .seconds(20)))
        let result = try namespace.run(
            [
                "sh", "-c",
                "printf 'hello over udp' | \"$0\" nc --udp --wait 1 --tap \"$1\" --address 198.18.0.2/24 198.18.0.1 9001",
                netmp, namespace.device,
            ], timeout: .seconds(30))
        XCTAssertEqual(result.status, 0, result.errors)
        XCTAssertEqual(result.output, "HELLO OVER UDP")
    }

    /// `netmp nc --listen --udp`: the first datagram from a kernel client comes out on stdout.
    func testNetcatUDPListenerPrintsWhatTheKernelSends() throws {
        let namespace = try TAPNamespace.make(for: self)
        let netmp = try TAPCommandTests.netmpExecutable()
        let listener = try namespace.start([
            "sh", "-c", "\"$0\" nc --listen --udp --wait 0.5 --tap \"$1\" --address 198.18.0.2/24 9002 < /dev/null",
            netmp, namespace.device,
        ])
        // Sent every 0.1 s for 3 s, so the listener gets it whenever within that it is up.
        let client = try namespace.runPython(
            """
            import socket, time
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for attempt in range(30):
                s.sendto(b"to the listener", ("198.18.0.2", 9002))
                time.sleep(0.1)
            """, timeout: .seconds(30))
        XCTAssertEqual(client.status, 0, client.errors)
        XCTAssertTrue(listener.waitForOutput(containing: "to the listener", timeout: .seconds(20)), listener.output)
        XCTAssertTrue(listener.waitForExit(timeout: .seconds(10)), "nc --listen --udp did not end after its wait")
        XCTAssertEqual(listener.process.terminationStatus, 0)
    }
}
