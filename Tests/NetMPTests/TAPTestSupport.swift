import Foundation
import Synchronization
import XCTest

@testable import NetMP
@testable import NetMPInterfaces

/// What a command run inside the test's namespace did.
struct CommandResult {
    var status: Int32
    var output: String
    var errors: String
    var timedOut: Bool
}

/// A command left running inside the namespace (a kernel-side server); stopped at teardown.
/// Its standard output is collected as it comes, so a test can wait for a line such as
/// "ready" instead of sleeping.
final class BackgroundCommand: @unchecked Sendable {
    let process: Process
    let exited = DispatchSemaphore(value: 0)
    private let collected = Mutex("")
    private let arrived = DispatchSemaphore(value: 0)

    init(process: Process) {
        self.process = process
    }

    /// Called with each piece of standard output.
    func append(_ data: Data) {
        collected.withLock { $0 += String(decoding: data, as: UTF8.self) }
        arrived.signal()
    }

    /// Waits up to `timeout` for the command to end by itself; false if it did not.
    func waitForExit(timeout: Duration) -> Bool {
        let result = exited.wait(timeout: .now() + .milliseconds(Int(timeout.components.seconds * 1000)))
        if result == .success { exited.signal() }
        return result == .success
    }

    /// Waits up to `timeout` for `text` to appear in the output; false if it did not.
    func waitForOutput(containing text: String, timeout: Duration) -> Bool {
        let deadline = DispatchTime.now() + .milliseconds(Int(timeout.components.seconds * 1000))
        while !output.contains(text) {
            if arrived.wait(timeout: deadline) == .timedOut { return output.contains(text) }
        }
        return true
    }

    var output: String { collected.withLock { $0 } }

    func stop() {
        if process.isRunning { process.terminate() }
        _ = waitForExit(timeout: .seconds(5))
    }
}

/// A network namespace the test makes and deletes, holding a multi-queue TAP device whose
/// kernel side is 198.18.0.1/24; NetMP attaches to the device from its own namespace (the
/// queues are opened inside the namespace by `TAPInterface(namespacePath:)`) and takes
/// 198.18.0.2/24. IPv6 is off inside, so nothing but the test's IPv4 crosses the device.
/// No address outside 198.18.0.0/15 is configured, and nothing leaves the namespace.
final class TAPNamespace: @unchecked Sendable {
    static let kernelAddress = "198.18.0.1"
    static let netmpAddress = "198.18.0.2"
    static let prefixLength = 24

    let name: String
    let device: String
    private var removed = false
    private var interfaces: [TAPInterface] = []
    private var commands: [BackgroundCommand] = []
    private static let counter = Mutex(0)

    var namespacePath: String { "/run/netns/\(name)" }

    /// Python that makes a test stream: `blocks(count)`, deterministic, 1 MiB blocks.
    static let pythonStreamSource = """
        import hashlib, random
        def blocks(count, seed=11):
            generator = random.Random(seed)
            while count > 0:
                n = min(count, 1 << 20)
                yield generator.randbytes(n)
                count -= n
        """

    /// Makes the namespace and device, or skips the test (saying why) when it cannot. Removal
    /// is registered before anything is made, so a failure half-way still cleans up.
    static func make(for test: XCTestCase) throws -> TAPNamespace {
        guard geteuid() == 0 else {
            throw XCTSkip(
                "TAP interop needs root (CAP_NET_ADMIN) to make a network namespace and a TAP device; "
                    + "run the tests as root, as CI does")
        }
        guard
            FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")
                || FileManager.default.isExecutableFile(atPath: "/sbin/ip")
        else { throw XCTSkip("TAP interop needs iproute2 (`ip`); scripts/test.sh installs it") }
        guard FileManager.default.fileExists(atPath: "/dev/net/tun") else {
            throw XCTSkip("TAP interop needs /dev/net/tun (the tun module)")
        }
        let serial = counter.withLock { value -> Int in
            value += 1
            return value
        }
        sweepLeftovers()
        let pid = Int(getpid())
        // The device lives in the namespace, so its short name only has to be unique there.
        let namespace = TAPNamespace(name: "netmp-t\(pid)-\(serial)", device: "nmt\(pid % 100_000)x\(serial)")
        test.addTeardownBlock { namespace.remove() }
        try namespace.setUp()
        return namespace
    }

    /// Deletes namespaces an earlier test process made and could not delete (it crashed):
    /// "netmp-t<pid>-<n>" whose process is gone.
    private static func sweepLeftovers() {
        guard let list = try? execute(["ip", "netns", "list"], timeout: .seconds(10)) else { return }
        for line in list.output.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            guard name.hasPrefix("netmp-t"), let dash = name.dropFirst(7).firstIndex(of: "-"),
                let pid = Int32(name.dropFirst(7)[..<dash]), pid != getpid(),
                kill(pid, 0) != 0, errno == ESRCH
            else { continue }
            _ = try? execute(["ip", "netns", "del", name], timeout: .seconds(10))
        }
    }

    private init(name: String, device: String) {
        self.name = name
        self.device = device
    }

    private func setUp() throws {
        try check(["ip", "netns", "add", name])
        try check(["ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])
        try check(["ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"])
        try check(["ip", "-n", name, "link", "set", "lo", "up"])
        try check(["ip", "-n", name, "tuntap", "add", "dev", device, "mode", "tap", "multi_queue", "vnet_hdr"])
        try check([
            "ip", "-n", name, "addr", "add", "\(TAPNamespace.kernelAddress)/\(TAPNamespace.prefixLength)", "dev",
            device,
        ])
        try check(["ip", "-n", name, "link", "set", device, "up"])
    }

    /// Closes NetMP's queues, stops kernel-side commands, deletes the namespace (and with it the
    /// device). Safe to call more than once.
    func remove() {
        guard !removed else { return }
        removed = true
        for interface in interfaces { interface.close() }
        for command in commands { command.stop() }
        _ = try? TAPNamespace.execute(["ip", "-n", name, "link", "del", device], timeout: .seconds(10))
        _ = try? TAPNamespace.execute(["ip", "netns", "del", name], timeout: .seconds(10))
    }

    /// Opens the device's queues for `stack` and gives NetMP its address.
    func attach(_ stack: NetworkStack, queues: Int = 1, largeReceive: Bool = false, busyPolling: Bool = true) throws
        -> TAPInterface
    {
        let interface = try TAPInterface(
            name: device, queues: queues, create: false, namespacePath: namespacePath, largeReceive: largeReceive,
            busyPolling: busyPolling)
        interfaces.append(interface)
        try stack.addAddress("\(TAPNamespace.netmpAddress)/\(TAPNamespace.prefixLength)", to: interface)
        return interface
    }

    /// Runs `arguments` inside the namespace and waits (at most `timeout`).
    func run(_ arguments: [String], timeout: Duration = .seconds(60)) throws -> CommandResult {
        try TAPNamespace.execute(["ip", "netns", "exec", name] + arguments, timeout: timeout)
    }

    /// Starts `arguments` inside the namespace; it is stopped at teardown.
    func start(_ arguments: [String]) throws -> BackgroundCommand {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ip", "netns", "exec", name] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        let command = BackgroundCommand(process: process)
        pipe.fileHandleForReading.readabilityHandler = { [command] handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
            } else {
                command.append(data)
            }
        }
        process.terminationHandler = { [command] _ in command.exited.signal() }
        try process.run()
        commands.append(command)
        return command
    }

    /// A Python program run with python3 inside the namespace (the kernel's side of a test).
    func runPython(_ program: String, timeout: Duration = .seconds(60)) throws -> CommandResult {
        try run(["python3", "-c", program], timeout: timeout)
    }

    private func check(_ arguments: [String]) throws {
        let result = try TAPNamespace.execute(arguments, timeout: .seconds(20))
        guard result.status == 0 else {
            throw NSError(
                domain: "TAPNamespace", code: Int(result.status),
                userInfo: [NSLocalizedDescriptionKey: "\(arguments.joined(separator: " ")) failed: \(result.errors)"])
        }
    }

    /// Runs a command, its output in temporary files (no pipe to fill), killed after `timeout`.
    static func execute(_ arguments: [String], timeout: Duration) throws -> CommandResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let base = NSTemporaryDirectory() + "netmp-tap-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: base + ".out", contents: nil)
        _ = FileManager.default.createFile(atPath: base + ".err", contents: nil)
        defer {
            try? FileManager.default.removeItem(atPath: base + ".out")
            try? FileManager.default.removeItem(atPath: base + ".err")
        }
        process.standardOutput = FileHandle(forWritingAtPath: base + ".out")
        process.standardError = FileHandle(forWritingAtPath: base + ".err")
        process.standardInput = FileHandle.nullDevice
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        try process.run()
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        var timedOut = false
        if exited.wait(timeout: .now() + seconds) == .timedOut {
            timedOut = true
            process.terminate()
            if exited.wait(timeout: .now() + 5) == .timedOut { kill(process.processIdentifier, SIGKILL) }
        }
        return CommandResult(
            status: timedOut ? -1 : process.terminationStatus,
            output: (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? "",
            errors: (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? "", timedOut: timedOut)
    }
}

extension XCTestCase {
    /// A kernel client in `namespace` sends `bytes` (deterministic, 1 MiB blocks) to NetMP's
    /// echo service on `port` while it reads the echo, then checks that the echo came back whole
    /// and byte for byte (SHA-256 of what was sent against what came back).
    func checkKernelEchoClient(_ namespace: TAPNamespace, port: UInt16, bytes: Int, timeout: Duration) throws {
        let program =
            TAPNamespace.pythonStreamSource + """

                import socket, threading
                count = \(bytes)
                s = socket.create_connection(("\(TAPNamespace.netmpAddress)", \(port)), timeout=120)
                sent = hashlib.sha256()
                def send():
                    for block in blocks(count):
                        sent.update(block)
                        s.sendall(block)
                    s.shutdown(socket.SHUT_WR)
                writer = threading.Thread(target=send)
                writer.start()
                received = hashlib.sha256()
                total = 0
                for data in iter(lambda: s.recv(1 << 20), b""):
                    received.update(data)
                    total += len(data)
                writer.join()
                print(total, sent.hexdigest(), received.hexdigest())
                """
        let result = try namespace.runPython(program, timeout: timeout)
        XCTAssertEqual(result.status, 0, result.errors)
        let fields = result.output.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        XCTAssertEqual(fields.count, 3, result.output)
        if fields.count == 3 {
            XCTAssertEqual(fields[0], "\(bytes)")
            XCTAssertEqual(fields[1], fields[2], "echoed bytes differ from those sent")
        }
    }

    /// A stream socket of the inet domain, or a skip while TCP is not in this build.
    func tcpSocketOrSkip(_ stack: NetworkStack) throws -> NetSocket {
        do {
            return try stack.socket(.inet, .stream)
        } catch .protocolNotSupported {
            throw XCTSkip("TCP sockets not yet in this build")
        }
    }
}
