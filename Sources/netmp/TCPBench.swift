import ArgumentParser
import Glibc
import NetMP
import Synchronization

/// `netmp bench tcp`: NetMP TCP over its loopback interface against the kernel's TCP over
/// 127.0.0.1 in the same run, same threads and buffer sizes, the kernel at its best (TCP_NODELAY
/// where NetMP uses it, reads that spin with MSG_DONTWAIT for NetMP's waiter budget before
/// blocking), CPU time per operation on both sides.
struct TCPBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tcp",
        abstract: "NetMP TCP over its loopback interface against the kernel's TCP over 127.0.0.1 at its best:"
            + " same buffer sizes, TCP_NODELAY where NetMP uses it, blocking or spinning then blocking.")

    @OptionGroup var options: BenchOptions

    @Option(help: "Protocol threads of the NetMP stack (default: one per CPU).")
    var threads: Int?

    @Option(help: "Run only the benchmarks whose name contains this text.")
    var only: String?

    @Flag(help: "Measure NetMP only (for profiling).")
    var netmpOnly = false

    @Option(help: "Congestion control of the kernel's TCP sockets (TCP_CONGESTION).")
    var kernelCongestionControl = "cubic"

    @Option(help: "Simulated seconds each tcp.lossy row measures (the issue's rows: 30), 0.1 to 600.")
    var lossySeconds: Double = 30

    /// An experiment, not the rows' setting.
    @Option(help: "Segments a tcp.lossy receiver may hold out of order, 16 to 65536 (default: the stack's, 1024).")
    var lossyOutOfOrderSegments: Int?

    @Option(help: "Microseconds between the tcp.syn.flood injector's deliveries of the SYNs due, 10 to 100000.")
    var floodIntervalUs = 1000

    func validate() throws {
        if let threads, !(1...64).contains(threads) { throw ValidationError("--threads must be 1...64") }
        guard lossySeconds.isFinite, (0.1...600).contains(lossySeconds) else {
            throw ValidationError("--lossy-seconds must be 0.1...600")
        }
        if let segments = lossyOutOfOrderSegments, !(16...65536).contains(segments) {
            throw ValidationError("--lossy-out-of-order-segments must be 16...65536")
        }
        guard (10...100_000).contains(floodIntervalUs) else {
            throw ValidationError("--flood-interval-us must be 10...100000")
        }
    }

    private func selected(_ name: String) -> Bool { only.map { name.contains($0) } ?? true }

    func run() throws {
        options.applySpinSettings()
        netmp.kernelCongestionControl = kernelCongestionControl
        let stack = NetworkStack(.init(threadCount: threads ?? OSThread.cpuCount))
        defer { stack.shutdown() }
        netmpBufferSize = try withConnectedPair(.kernel(spinning: false), noDelay: false) {
            try kernelReceiveWindow(sender: $0, receiver: $1, path: "loopback")
        }
        var results: [BenchResult] = []
        func add(_ name: String, _ kind: RowKind, _ body: @escaping (TCPBenchSide, Int) throws -> Pass) throws {
            guard selected(name) else { return }
            var legs = [Leg(name: "netmp") { try body(.netmp(stack), $0) }]
            if !netmpOnly {
                legs.append(Leg(name: "kernel.block") { try body(.kernel(spinning: false), $0) })
                legs.append(Leg(name: "kernel.spin") { try body(.kernel(spinning: true), $0) })
            }
            results.append(try measureRow(name, kind, legs: legs, seconds: options.seconds, row: results.count))
        }
        let gigabytes = Double(bulkMessageSize) / 1e9
        try add("tcp.bulk.64k", .throughput(unit: "GB/s", scale: gigabytes, probe: 256)) {
            try bulk($0, connections: 1, messages: $1)
        }
        try add("tcp.pingpong", .latency(probe: 2000)) { try pingPong($0, roundTrips: $1) }
        try add("tcp.connect", .throughput(unit: "conn/s", scale: 1, probe: 200)) { try connects($0, count: $1) }
        for count in [1, 2, 4, 8, 64] {
            try add("tcp.bulk.conns.\(count)", .throughput(unit: "GB/s", scale: gigabytes, probe: 256)) {
                try bulk($0, connections: count, messages: $1)
            }
        }
        if selected("tcp.idle.memory") { results.append(try idleMemoryRow(connections: 10_000, kernel: !netmpOnly)) }
        for row in LossyRow.rows where selected(row.name) {
            results.append(try row.measure(simulatedSeconds: lossySeconds, outOfOrderSegments: lossyOutOfOrderSegments))
        }
        if selected(SYNFloodRow.name) {
            results.append(
                try SYNFloodRow(
                    threadCount: threads ?? OSThread.cpuCount, deliveryInterval: Int64(floodIntervalUs) * 1000
                ).measure(
                    seconds: options.seconds, row: results.count))
        }
        printResults(results, json: options.json, verbose: options.verbose)
        printRowNotes(json: options.json)
        if !options.json {
            let stats = stack.tcpStatistics()
            print(
                "netmp: \(stack.threads.count) protocol threads, \(stats.retransmittedSegments) segments"
                    + " retransmitted; cpu/op is process CPU per 64 KiB message, round trip or connection"
                    + " (tcp.lossy rows: per MB delivered)")
        }
    }
}

// MARK: The two sides behind one face

/// A stream socket of either side, as the benchmarks use it.
enum TCPBenchSide {
    case netmp(NetworkStack)
    case kernel(spinning: Bool)
}

/// The buffer size the kernel's sockets are given (SO_SNDBUF, SO_RCVBUF).
let benchBufferSize = 256 << 10

/// NetMP's buffer sizes: the window the kernel's receiver advertises on the benchmark's path with
/// `benchBufferSize` asked, measured at start (`kernelReceiveWindow`). Linux doubles the size
/// asked (its bookkeeping is charged to the buffer) and, with 64 KiB segments, advertises most of
/// the doubled size; NetMP's buffer counts payload, so the same number asked gave NetMP about half
/// the kernel's window. Never below `benchBufferSize`.
nonisolated(unsafe) var netmpBufferSize = benchBufferSize

/// Sends `messages` messages of `bulkMessageSize` bytes from `sender`, on a thread of its own
/// named `name`, to `receiver`, read on the caller's; `finish` gets how many arrived whole before
/// the writer is joined (a pass stops its clock there). Throws unless all arrived.
func sendMessages<T>(
    from sender: BenchSocket, to receiver: BenchSocket, count messages: Int, writer name: String,
    finish: (Int) -> T
) throws -> T {
    let failed = Atomic<Bool>(false)
    let writer = OSThread.start(name: name) {
        pinIfAsked(1)
        let block = [UInt8](repeating: 0x5A, count: bulkMessageSize)
        block.withUnsafeBytes { raw in
            for _ in 0..<messages where (try? sender.write(raw)) == nil {
                failed.store(true, ordering: .relaxed)
                return
            }
        }
    }
    var block = [UInt8](repeating: 0, count: bulkMessageSize)
    let received = block.withUnsafeMutableBytes { raw -> Int in
        var count = 0
        while count < messages, (try? receiver.readFully(into: raw)) == true { count += 1 }
        return count
    }
    let result = finish(received)
    writer.join()
    guard received == messages, !failed.load(ordering: .relaxed) else {
        throw BenchFailure(description: "transfer ended after \(received) of \(messages) messages")
    }
    return result
}

/// The largest window the kernel's receiver advertises (TCP_INFO's `tcpi_rcv_ssthresh`) once
/// 64 MiB went from `sender` to `receiver`, two connected kernel sockets with the benchmark's
/// buffers; at least `benchBufferSize`. Notes what it found.
func kernelReceiveWindow(sender: BenchSocket, receiver: BenchSocket, path: String) throws -> Int {
    try sendMessages(from: sender, to: receiver, count: (64 << 20) / bulkMessageSize, writer: "bench-window") { _ in }
    var info = tcp_info()
    var length = socklen_t(MemoryLayout<tcp_info>.size)
    guard getsockopt(receiver.fd, Int32(IPPROTO_TCP), TCP_INFO, &info, &length) == 0 else {
        throw BenchFailure(description: "TCP_INFO: errno \(errno)")
    }
    let window = max(benchBufferSize, Int(info.tcpi_rcv_ssthresh))
    let note =
        "netmp buffers: \(window) bytes, the window the kernel's receiver advertises on \(path) with"
        + " SO_RCVBUF \(benchBufferSize) asked (tcpi_rcv_ssthresh)"
    if !benchNotes.contains(note) { benchNotes.append(note) }
    return window
}

final class BenchSocket: @unchecked Sendable {
    let netmp: NetSocket?
    let fd: Int32
    let spinning: Bool
    /// Reads happen on one thread per socket: one spinner per socket and direction.
    private var spinner = KernelSpinner()

    init(netmp: NetSocket) {
        self.netmp = netmp
        fd = -1
        spinning = false
    }

    init(fd: Int32, spinning: Bool) {
        netmp = nil
        self.fd = fd
        self.spinning = spinning
    }

    /// Writes all of `bytes`.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        if let netmp {
            _ = try netmp.write(bytes)
            return
        }
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.send(fd, bytes.baseAddress.map { $0 + offset }, bytes.count - offset, Int32(MSG_NOSIGNAL))
            guard n > 0 else { throw BenchFailure(description: "kernel send: errno \(errno)") }
            offset += n
        }
    }

    /// Reads at least one byte (0 at end of file); the spinning kernel leg retries with
    /// MSG_DONTWAIT, yields, then blocks, by NetMP's waiting rule (`KernelSpinner`).
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if let netmp { return try netmp.read(into: buffer) }
        let descriptor = fd
        let n =
            spinning
            ? spinner.call { flags in Glibc.recv(descriptor, buffer.baseAddress, buffer.count, flags) }
            : Glibc.recv(descriptor, buffer.baseAddress, buffer.count, 0)
        guard n >= 0 else { throw BenchFailure(description: "kernel recv: errno \(errno)") }
        return n
    }

    /// Reads exactly `buffer.count` bytes (false at end of file first).
    func readFully(into buffer: UnsafeMutableRawBufferPointer) throws -> Bool {
        var offset = 0
        while offset < buffer.count {
            let n = try read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[offset...]))
            if n == 0 { return false }
            offset += n
        }
        return true
    }

    func close() {
        if let netmp { netmp.close() } else { Glibc.close(fd) }
    }
}

private final class BenchListener: @unchecked Sendable {
    let side: TCPBenchSide
    let netmp: NetSocket?
    let fd: Int32
    let port: UInt16

    init(_ side: TCPBenchSide, backlog: Int = 1024) throws {
        self.side = side
        switch side {
        case .netmp(let stack):
            let listener = try stack.socket(.inet, .stream)
            try setBuffers(listener)
            try listener.bind(to: .ipv4(.loopback, port: 0))
            try listener.listen(backlog: backlog)
            netmp = listener
            fd = -1
            guard case .ipv4(_, let bound) = listener.localAddress else { throw BenchFailure(description: "no port") }
            port = bound
        case .kernel:
            netmp = nil
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            fd = descriptor
            var one: Int32 = 1
            _ = setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            setBuffers(descriptor)
            var address = loopbackAddress(port: 0)
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(descriptor, $0, length) }
            }
            guard bound == 0, Glibc.listen(descriptor, Int32(backlog)) == 0 else {
                throw BenchFailure(description: "kernel listen: errno \(errno)")
            }
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
            }
            port = UInt16(bigEndian: address.sin_port)
        }
    }

    func connect(noDelay: Bool) throws -> BenchSocket {
        switch side {
        case .netmp(let stack):
            let socket = try stack.socket(.inet, .stream)
            try setBuffers(socket)
            if noDelay { try socket.setOption(.noDelay, 1) }
            try socket.connect(to: .ipv4(.loopback, port: port))
            return BenchSocket(netmp: socket)
        case .kernel(let spinning):
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            setBuffers(fd)
            if noDelay {
                var one: Int32 = 1
                _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            }
            var address = loopbackAddress(port: port)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard connected == 0 else { throw BenchFailure(description: "kernel connect: errno \(errno)") }
            return BenchSocket(fd: fd, spinning: spinning)
        }
    }

    func accept(noDelay: Bool) throws -> BenchSocket {
        if let netmp {
            let child = try netmp.accept()
            if noDelay { try child.setOption(.noDelay, 1) }
            return BenchSocket(netmp: child)
        }
        let child = Glibc.accept(fd, nil, nil)
        guard child >= 0 else { throw BenchFailure(description: "kernel accept: errno \(errno)") }
        if noDelay {
            var one: Int32 = 1
            _ = setsockopt(child, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        guard case .kernel(let spinning) = side else { return BenchSocket(fd: child, spinning: false) }
        return BenchSocket(fd: child, spinning: spinning)
    }

    func close() {
        if let netmp { netmp.close() } else { Glibc.close(fd) }
    }
}

func setBuffers(_ fd: Int32) {
    applyBufferSizes(BufferSizes(send: benchBufferSize, receive: benchBufferSize), to: fd, label: "tcp")
    setKernelCongestionControl(fd)
}

/// The congestion control every kernel TCP socket of the benchmarks uses (`--kernel-congestion-control`).
nonisolated(unsafe) var kernelCongestionControl = "cubic"

/// TCP_CONGESTION on a kernel socket: the machine's default is a sysctl. This VM's is BBR, whose
/// pacing held the kernel's own veth transfer to 5.3-5.9 GB/s (1.7-2.0 blocking) against CUBIC's
/// 7.1-7.4, and its loopback transfer to 6.8-7.1 against 7.5-8.0. Notes what was asked and got.
func setKernelCongestionControl(_ fd: Int32) {
    let asked = kernelCongestionControl
    _ = asked.withCString { setsockopt(fd, Int32(IPPROTO_TCP), TCP_CONGESTION, $0, socklen_t(strlen($0))) }
    var name = [CChar](repeating: 0, count: 32)
    var length = socklen_t(name.count)
    _ = getsockopt(fd, Int32(IPPROTO_TCP), TCP_CONGESTION, &name, &length)
    let got = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    let note = "kernel congestion control: asked \(asked), got \(got)"
    if !benchNotes.contains(note) { benchNotes.append(note) }
}

/// NetMP's side gets the same fixed sizes: set by the user, its buffers do not auto-tune (as the
/// kernel's do not once SO_SNDBUF/SO_RCVBUF are set), so neither side has more room than the
/// other. A listener's connections inherit them.
func setBuffers(_ socket: NetSocket) throws {
    try socket.setOption(.sendBufferSize, netmpBufferSize)
    try socket.setOption(.receiveBufferSize, netmpBufferSize)
}

private func loopbackAddress(port: UInt16) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    address.sin_port = port.bigEndian
    return address
}

// MARK: Benchmarks

let bulkMessageSize = 64 << 10

/// `connections` streams carrying `messages` 64 KiB messages between them; min(connections, 4)
/// writer threads and as many readers each serve their share in turn (whole messages, so none
/// waits on another).
private func bulk(_ side: TCPBenchSide, connections: Int, messages: Int) throws -> Pass {
    let listener = try BenchListener(side)
    defer { listener.close() }
    var clients: [BenchSocket] = []
    var servers: [BenchSocket] = []
    for _ in 0..<connections {
        clients.append(try listener.connect(noDelay: false))
        servers.append(try listener.accept(noDelay: false))
    }
    defer {
        for socket in clients + servers { socket.close() }
    }
    let groups = Swift.min(connections, 4)
    let perConnection = Swift.max(1, messages / connections)
    let sendSockets = clients
    let receiveSockets = servers
    let failures = Atomic<Int>(0)
    let clock = PassClock()
    let writers = (0..<groups).map { group in
        OSThread.start(name: "bench-tcp-writer") {
            pinIfAsked(1)
            let block = [UInt8](repeating: 0x5A, count: bulkMessageSize)
            block.withUnsafeBytes { raw in
                for _ in 0..<perConnection {
                    for index in stride(from: group, to: connections, by: groups) {
                        if (try? sendSockets[index].write(raw)) == nil {
                            failures.add(1, ordering: .relaxed)
                            return
                        }
                    }
                }
            }
        }
    }
    let readers = (0..<groups).map { group in
        OSThread.start(name: "bench-tcp-reader") {
            pinIfAsked(0)
            var block = [UInt8](repeating: 0, count: bulkMessageSize)
            block.withUnsafeMutableBytes { raw in
                for _ in 0..<perConnection {
                    for index in stride(from: group, to: connections, by: groups) {
                        if (try? receiveSockets[index].readFully(into: raw)) != true {
                            failures.add(1, ordering: .relaxed)
                            return
                        }
                    }
                }
            }
        }
    }
    for thread in writers + readers { thread.join() }
    let pass = clock.stop(operations: perConnection * connections)
    guard failures.load(ordering: .relaxed) == 0 else { throw BenchFailure(description: "bulk transfer failed") }
    return pass
}

/// One byte there and back on a no-delay connection, `roundTrips` times.
private func pingPong(_ side: TCPBenchSide, roundTrips count: Int) throws -> Pass {
    try withConnectedPair(side, noDelay: true) { try measureRoundTrips(pinger: $0, echoer: $1, count: count) }
}

/// Runs `body` with a connected client and server on `side`, closed after it.
private func withConnectedPair<T>(
    _ side: TCPBenchSide, noDelay: Bool, _ body: (BenchSocket, BenchSocket) throws -> T
) throws -> T {
    let listener = try BenchListener(side)
    defer { listener.close() }
    let client = try listener.connect(noDelay: noDelay)
    let server = try listener.accept(noDelay: noDelay)
    defer {
        client.close()
        server.close()
    }
    return try body(client, server)
}

/// `count` one-byte round trips: `pinger` sends and waits for the byte `echoer` sends back
/// (on a thread of its own).
func measureRoundTrips(pinger: BenchSocket, echoer: BenchSocket, count: Int) throws -> Pass {
    let clock = PassClock()
    let echo = OSThread.start(name: "bench-echo") {
        pinIfAsked(1)
        var byte: [UInt8] = [0]
        byte.withUnsafeMutableBytes { raw in
            for _ in 0..<count {
                guard (try? echoer.read(into: raw)) == 1, (try? echoer.write(UnsafeRawBufferPointer(raw))) != nil
                else { return }
            }
        }
    }
    var byte: [UInt8] = [7]
    try byte.withUnsafeMutableBytes { raw in
        for _ in 0..<count {
            try pinger.write(UnsafeRawBufferPointer(raw))
            guard try pinger.read(into: raw) == 1 else { throw BenchFailure(description: "echo ended") }
        }
    }
    let pass = clock.stop(operations: count)
    echo.join()
    return pass
}

/// connect + accept + close of both ends, one after another, `count` times.
private func connects(_ side: TCPBenchSide, count: Int) throws -> Pass {
    let listener = try BenchListener(side)
    defer { listener.close() }
    let clock = PassClock()
    for _ in 0..<count {
        let client = try listener.connect(noDelay: false)
        let server = try listener.accept(noDelay: false)
        client.close()
        server.close()
    }
    return clock.stop(operations: count)
}
