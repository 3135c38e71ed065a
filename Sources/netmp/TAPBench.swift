import ArgumentParser
import CNetMP
import Glibc
import NetMP
import Synchronization

/// `netmp bench tap`: one TCP connection between a kernel socket and NetMP over a TAP device,
/// each way, and a round trip, side by side with the kernel talking to itself over a veth pair
/// between two network namespaces, in the same run.
///
/// Root only. It makes three namespaces and deletes them at the end (also when a leg fails):
/// A and B joined by a veth pair (198.18.1.1 and 198.18.1.2), and T holding the TAP device, whose
/// kernel side is 198.18.0.1 and NetMP 198.18.0.2. Nothing else is touched. Kernel sockets are
/// made by threads that enter a namespace; NetMP runs in this process. The kernel legs get
/// NetMP's buffer sizes, TCP_NODELAY where NetMP has it, and (`kernel.spin`) NetMP's spin-then-
/// block reads; the kernel socket facing NetMP spins the same way.
struct TAPBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tap",
        abstract: "TCP between the kernel and NetMP over a TAP device against the kernel over a veth pair"
            + " (root: makes and deletes its own network namespaces).")

    @OptionGroup var options: BenchOptions

    @Option(help: "Protocol threads of the NetMP stack, and queues of the TAP device.")
    var threads = 1

    @Flag(
        inversion: .prefixedNo,
        help: "Take large TCP segments from the kernel through the virtio-net header (TSO), as `serve` can.")
    var largeReceive = true

    @Flag(
        inversion: .prefixedNo,
        help: "Let NetMP's waiting threads read the TAP queues while they spin (busy polling).")
    var busyPoll = true

    @Option(help: "Run only the benchmarks whose name contains this text.")
    var only: String?

    @Flag(help: "Measure NetMP only (for profiling).")
    var netmpOnly = false

    @Option(help: "Congestion control of the kernel's TCP sockets (TCP_CONGESTION).")
    var kernelCongestionControl = "cubic"

    func validate() throws {
        if !(1...64).contains(threads) { throw ValidationError("--threads must be 1...64") }
    }

    private func selected(_ name: String) -> Bool { only.map { name.contains($0) } ?? true }

    func run() throws {
        guard geteuid() == 0 else {
            print("netmp bench tap: skipped: making network namespaces, a veth pair and a TAP device needs root")
            return
        }
        options.applySpinSettings()
        netmp.kernelCongestionControl = kernelCongestionControl
        let lab = try BenchLab()
        defer { lab.remove() }
        let tap: TAPInterface
        do {
            tap = try TAPInterface(
                name: BenchLab.tapName, queues: threads, create: false, namespacePath: lab.path(of: lab.tapSide),
                largeReceive: largeReceive, busyPolling: busyPoll)
        } catch {
            throw BenchFailure(description: "open the TAP device: \(error)")
        }
        let stack = NetworkStack(.init(threadCount: threads))
        defer {
            stack.shutdown()
            tap.close()
        }
        try stack.addAddress("198.18.0.2/24", to: tap)
        do {
            let (near, far) = try connection(.veth(lab, spinning: false), kernelConnects: false, noDelay: false)
            defer {
                near.close()
                far.close()
            }
            netmpBufferSize = try kernelReceiveWindow(sender: near, receiver: far, path: "the veth pair")
        }
        var results: [BenchResult] = []
        func add(_ name: String, _ kind: RowKind, _ body: @escaping (TAPBenchPath, Int) throws -> Pass) throws {
            guard selected(name) else { return }
            let traffic = TAPTraffic()
            var legs = [
                Leg(name: "netmp") { operations in
                    let before = tap.statistics
                    defer { traffic.add(tap.statistics, since: before, operations: operations) }
                    return try body(.tap(stack, lab), operations)
                }
            ]
            if !netmpOnly {
                legs.append(Leg(name: "kernel.block") { try body(.veth(lab, spinning: false), $0) })
                legs.append(Leg(name: "kernel.spin") { try body(.veth(lab, spinning: true), $0) })
            }
            results.append(try measureRow(name, kind, legs: legs, seconds: options.seconds, row: results.count))
            benchNotes.append(traffic.note(name))
        }
        let gigabytes = Double(bulkMessageSize) / 1e9
        try add("tap.bulk.to-netmp", .throughput(unit: "GB/s", scale: gigabytes, probe: 64)) {
            try oneWay($0, towardsNetMP: true, messages: $1)
        }
        try add("tap.bulk.from-netmp", .throughput(unit: "GB/s", scale: gigabytes, probe: 64)) {
            try oneWay($0, towardsNetMP: false, messages: $1)
        }
        try add("tap.pingpong", .latency(probe: 500)) { try roundTrips($0, count: $1) }
        printResults(results, json: options.json, verbose: options.verbose)
        if !options.json {
            let stats = stack.tcpStatistics()
            print(
                "netmp: \(threads) protocol thread(s), \(threads) TAP queue(s), large receive \(largeReceive ? "on" : "off"),"
                    + " busy polling \(busyPoll ? "on" : "off") (\(tap.tapStatistics.busyPolledFrames) frames),"
                    + " \(stats.retransmittedSegments) segments retransmitted; `kernel` is the kernel over a veth"
                    + " pair; cpu/op is process CPU (both ends, this process) per 64 KiB message or round trip")
        }
    }
}

/// The TAP device's frames in and out over a row's NetMP passes, per operation: with large
/// receive and send each frame is one write, or one read that found something (busy polling
/// makes more that find nothing).
private final class TAPTraffic {
    private var received = 0
    private var sent = 0
    private var operations = 0

    func add(_ now: InterfaceStatistics, since before: InterfaceStatistics, operations count: Int) {
        received += now.framesReceived - before.framesReceived
        sent += now.framesSent - before.framesSent
        operations += count
    }

    func note(_ row: String) -> String {
        let per = Double(Swift.max(1, operations))
        return "\(row): netmp TAP frames per op: in \(format3(Double(received) / per)), out"
            + " \(format3(Double(sent) / per)) (\(operations) ops)"
    }
}

// MARK: The namespaces

/// Three network namespaces made for one run and deleted after it: A and B joined by a veth
/// pair, T holding the TAP device.
final class BenchLab {
    static let tapName = "tap0"
    let a: String
    let b: String
    let tapSide: String
    private var made: [String] = []

    init() throws {
        let tag = "netmp-bench-\(getpid())"
        a = tag + "-a"
        b = tag + "-b"
        tapSide = tag + "-t"
        do {
            for name in [a, b, tapSide] {
                try runTool(["ip", "netns", "add", name])
                made.append(name)
            }
            try runTool(["ip", "link", "add", "va", "netns", a, "type", "veth", "peer", "name", "vb", "netns", b])
            try runTool(["ip", "-n", a, "addr", "add", "198.18.1.1/24", "dev", "va"])
            try runTool(["ip", "-n", b, "addr", "add", "198.18.1.2/24", "dev", "vb"])
            for (space, device) in [(a, "va"), (b, "vb")] {
                try runTool(["ip", "-n", space, "link", "set", device, "up"])
                try runTool(["ip", "-n", space, "link", "set", "lo", "up"])
            }
            try runTool([
                "ip", "-n", tapSide, "tuntap", "add", "dev", BenchLab.tapName, "mode", "tap", "multi_queue", "vnet_hdr",
            ])
            try runTool(["ip", "-n", tapSide, "addr", "add", "198.18.0.1/24", "dev", BenchLab.tapName])
            try runTool(["ip", "-n", tapSide, "link", "set", BenchLab.tapName, "up"])
            try runTool(["ip", "-n", tapSide, "link", "set", "lo", "up"])
        } catch {
            remove()
            throw error
        }
    }

    func path(of namespace: String) -> String { "/run/netns/" + namespace }

    /// Deletes the namespaces (and with them the veth pair and the TAP device).
    func remove() {
        for name in made.reversed() { try? runTool(["ip", "netns", "del", name]) }
        made.removeAll()
    }

    /// Runs `body` on a thread inside `namespace`: the sockets it makes belong there.
    func inside<T: Sendable>(_ namespace: String, _ body: @escaping @Sendable () throws -> T) throws -> T {
        let path = self.path(of: namespace)
        let result = LockedResult<T>()
        let thread = OSThread.start(name: "bench-netns") {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                result.set(.failure(BenchFailure(description: "open \(path): errno \(errno)")))
                return
            }
            defer { close(fd) }
            let entered = netmp_enter_netns(fd)
            guard entered == 0 else {
                result.set(.failure(BenchFailure(description: "enter \(path): errno \(-entered)")))
                return
            }
            result.set(Result { try body() })
        }
        thread.join()
        return try result.get()
    }
}

private final class LockedResult<T: Sendable>: @unchecked Sendable {
    private let value = Mutex<Result<T, any Error>?>(nil)
    func set(_ result: Result<T, any Error>) { value.withLock { $0 = result } }
    func get() throws -> T {
        guard let result = value.withLock({ $0 }) else { throw BenchFailure(description: "namespace thread ended") }
        return try result.get()
    }
}

/// Runs a command (found on PATH) and waits for it; throws unless it exits 0.
func runTool(_ arguments: [String]) throws {
    var argv = arguments.map { strdup($0) }
    argv.append(nil)
    defer { for pointer in argv { free(pointer) } }
    var pid = pid_t()
    let spawned = posix_spawnp(&pid, arguments[0], nil, nil, argv, environ)
    guard spawned == 0 else {
        throw BenchFailure(description: "\(arguments.joined(separator: " ")): cannot run (errno \(spawned))")
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    guard status == 0 else {
        throw BenchFailure(description: "\(arguments.joined(separator: " ")): exit status \(status)")
    }
}

// MARK: The two paths

/// NetMP on the TAP device with a kernel socket in T for its peer, or two kernel sockets over
/// the veth pair.
enum TAPBenchPath {
    case tap(NetworkStack, BenchLab)
    case veth(BenchLab, spinning: Bool)
}

private let kernelTAPSide = sockaddrIPv4(198, 18, 0, 1)
private let netmpTAPSide = IPv4Address(198, 18, 0, 2)
private let vethB = sockaddrIPv4(198, 18, 1, 2)

private func sockaddrIPv4(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, port: UInt16 = 0) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = (UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)).bigEndian
    address.sin_port = port.bigEndian
    return address
}

/// A kernel TCP socket with NetMP's buffer sizes; `noDelay` sets TCP_NODELAY.
private func kernelSocket(noDelay: Bool) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw BenchFailure(description: "kernel socket: errno \(errno)") }
    setBuffers(fd)
    if noDelay {
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }
    return fd
}

/// A listening kernel socket on `address` (port 0: any); returns it and its port.
private func kernelListener(_ address: sockaddr_in) throws -> (Int32, UInt16) {
    let fd = try kernelSocket(noDelay: false)
    var bound = address
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let status = withUnsafePointer(to: &bound) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, length) }
    }
    guard status == 0, Glibc.listen(fd, 8) == 0 else {
        close(fd)
        throw BenchFailure(description: "kernel listen: errno \(errno)")
    }
    _ = withUnsafeMutablePointer(to: &bound) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return (fd, UInt16(bigEndian: bound.sin_port))
}

private func kernelConnect(to address: sockaddr_in, port: UInt16, noDelay: Bool) throws -> Int32 {
    let fd = try kernelSocket(noDelay: noDelay)
    var target = address
    target.sin_port = port.bigEndian
    let status = withUnsafePointer(to: &target) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard status == 0 else {
        close(fd)
        throw BenchFailure(description: "kernel connect: errno \(errno)")
    }
    return fd
}

private func kernelAccept(_ listener: Int32, noDelay: Bool) throws -> Int32 {
    let fd = Glibc.accept(listener, nil, nil)
    guard fd >= 0 else { throw BenchFailure(description: "kernel accept: errno \(errno)") }
    if noDelay {
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }
    return fd
}

/// One connection of `path`: `(netmpOrA, kernelPeer)`. Over the TAP device the first end is
/// NetMP's and the second a kernel socket in T (which connects to NetMP when `kernelConnects`,
/// else NetMP connects to it); over veth, the ends are in A and B.
private func connection(_ path: TAPBenchPath, kernelConnects: Bool, noDelay: Bool) throws -> (
    BenchSocket, BenchSocket
) {
    switch path {
    case .tap(let stack, let lab):
        if kernelConnects {
            let listener = try stack.socket(.inet, .stream)
            defer { listener.close() }
            try setBuffers(listener)
            try listener.bind(to: .ipv4(netmpTAPSide, port: 0))
            try listener.listen(backlog: 4)
            guard case .ipv4(_, let port) = listener.localAddress else { throw BenchFailure(description: "no port") }
            let peer = try lab.inside(lab.tapSide) {
                try kernelConnect(to: sockaddrIPv4(198, 18, 0, 2), port: port, noDelay: noDelay)
            }
            let accepted = try listener.accept()
            if noDelay { try accepted.setOption(.noDelay, 1) }
            return (BenchSocket(netmp: accepted), BenchSocket(fd: peer, spinning: true))
        }
        let (listener, port) = try lab.inside(lab.tapSide) { try kernelListener(kernelTAPSide) }
        defer { close(listener) }
        let socket = try stack.socket(.inet, .stream)
        try setBuffers(socket)
        if noDelay { try socket.setOption(.noDelay, 1) }
        try socket.connect(to: .ipv4(IPv4Address(198, 18, 0, 1), port: port))
        let peer = try kernelAccept(listener, noDelay: noDelay)
        return (BenchSocket(netmp: socket), BenchSocket(fd: peer, spinning: true))
    case .veth(let lab, let spinning):
        let (listener, port) = try lab.inside(lab.b) { try kernelListener(vethB) }
        defer { close(listener) }
        let near = try lab.inside(lab.a) { try kernelConnect(to: vethB, port: port, noDelay: noDelay) }
        let far = try kernelAccept(listener, noDelay: noDelay)
        return (BenchSocket(fd: near, spinning: spinning), BenchSocket(fd: far, spinning: spinning))
    }
}

// MARK: Benchmarks

/// `messages` 64 KiB messages one way over one connection: from the kernel socket to NetMP
/// (`towardsNetMP`) or back; over veth, from B to A or A to B.
private func oneWay(_ path: TAPBenchPath, towardsNetMP: Bool, messages: Int) throws -> Pass {
    let (near, far) = try connection(path, kernelConnects: towardsNetMP, noDelay: false)
    defer {
        near.close()
        far.close()
    }
    let (sender, receiver) = towardsNetMP ? (far, near) : (near, far)
    let clock = PassClock()
    return try sendMessages(from: sender, to: receiver, count: messages, writer: "bench-tap-writer") {
        clock.stop(operations: $0)
    }
}

/// One byte there and back, `count` times, on a no-delay connection: the kernel socket (or A)
/// sends, NetMP (or B) echoes.
private func roundTrips(_ path: TAPBenchPath, count: Int) throws -> Pass {
    let (near, far) = try connection(path, kernelConnects: true, noDelay: true)
    defer {
        near.close()
        far.close()
    }
    let (pinger, echoer) =
        if case .tap = path { (far, near) } else { (near, far) }
    return try measureRoundTrips(pinger: pinger, echoer: echoer, count: count)
}
