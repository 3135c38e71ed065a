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
        abstract: "NetMP TCP over its loopback interface against the kernel's TCP over 127.0.0.1.")

    @OptionGroup var options: BenchOptions

    @Option(help: "Protocol threads of the NetMP stack (default: one per CPU).")
    var threads: Int?

    @Option(help: "Run only the benchmarks whose name contains this text.")
    var only: String?

    @Flag(help: "Also measure the plainly blocking kernel (no spinning reads).")
    var verbose = false

    @Flag(help: "Measure NetMP only (for profiling).")
    var netmpOnly = false

    func validate() throws {
        if let threads, !(1...64).contains(threads) { throw ValidationError("--threads must be 1...64") }
    }

    private func selected(_ name: String) -> Bool { only.map { name.contains($0) } ?? true }

    func run() throws {
        let stack = NetworkStack(.init(threadCount: threads ?? OSThread.cpuCount))
        defer { stack.shutdown() }
        let seconds = options.seconds
        var rows: [TCPBenchRow] = []
        func add(_ name: String, _ unit: String, _ better: String, _ measure: (TCPBenchSide) throws -> Measured) throws
        {
            guard selected(name) else { return }
            let netmp = try measure(.netmp(stack))
            let kernel = netmpOnly ? nil : try measure(.kernel(spinning: true))
            let blocking = verbose && !netmpOnly ? try measure(.kernel(spinning: false)) : nil
            rows.append(
                TCPBenchRow(
                    result: BenchResult(
                        benchmark: name, unit: unit, netmp: netmp.value, kernel: kernel?.value, better: better),
                    cpuNetMP: netmp.cpuPerOperation, cpuKernel: kernel?.cpuPerOperation, blocking: blocking))
        }
        try add("tcp.bulk.64k", "GB/s", "higher") { try bulk($0, connections: 1, seconds: seconds) }
        try add("tcp.pingpong", "us", "lower") { try pingPong($0, seconds: seconds) }
        try add("tcp.connect", "conn/s", "higher") { try connects($0, seconds: seconds) }
        for count in [1, 2, 4, 8, 64] {
            try add("tcp.bulk.conns.\(count)", "GB/s", "higher") { try bulk($0, connections: count, seconds: seconds) }
        }
        printTCPRows(rows, json: options.json, verbose: verbose)
        let stats = stack.tcpStatistics()
        if !options.json {
            print(
                "netmp: \(stack.threads.count) protocol threads; \(stats.retransmittedSegments) segments "
                    + "retransmitted, \(stats.resetsSent) resets; cpu is µs of process CPU per operation "
                    + "(per 64 KiB write, round trip, or connection), all threads, spinning included")
        }
    }
}

/// One measurement: the figure and the process CPU microseconds per operation.
struct Measured {
    var value: Double
    var cpuPerOperation: Double
}

struct TCPBenchRow {
    var result: BenchResult
    var cpuNetMP: Double
    var cpuKernel: Double?
    var blocking: Measured?
}

private func printTCPRows(_ rows: [TCPBenchRow], json: Bool, verbose: Bool) {
    if json {
        for row in rows {
            var line = row.result.json
            line.removeLast()
            line +=
                ",\"cpu_netmp_us\":\(format3(row.cpuNetMP)),\"cpu_kernel_us\":\(row.cpuKernel.map(format3) ?? "null")"
            if let blocking = row.blocking {
                line +=
                    ",\"kernel_blocking\":\(format3(blocking.value)),"
                    + "\"cpu_kernel_blocking_us\":\(format3(blocking.cpuPerOperation))"
            }
            print(line + "}")
        }
        return
    }
    func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }
    var header =
        pad("benchmark", 20) + pad("unit", 8) + pad("netmp", 11) + pad("kernel", 11) + pad("ratio", 9)
        + pad("cpu netmp", 11) + pad("cpu kernel", 11)
    if verbose { header += pad("blocking", 11) + pad("cpu block", 11) }
    print(header + "better")
    for row in rows {
        var line =
            pad(row.result.benchmark, 20) + pad(row.result.unit, 8) + pad(format3(row.result.netmp), 11)
            + pad(row.result.kernel.map(format3) ?? "-", 11) + pad(row.result.ratio.map(format3) ?? "-", 9)
            + pad(format3(row.cpuNetMP), 11) + pad(row.cpuKernel.map(format3) ?? "-", 11)
        if verbose, let blocking = row.blocking {
            line += pad(format3(blocking.value), 11) + pad(format3(blocking.cpuPerOperation), 11)
        }
        print(line + row.result.better)
    }
}

// MARK: The two sides behind one face

/// A stream socket of either side, as the benchmarks use it.
enum TCPBenchSide {
    case netmp(NetworkStack)
    case kernel(spinning: Bool)
}

/// NetMP's buffer sizes, which the kernel's sockets are given too.
private let benchBufferSize = 256 << 10

private final class BenchSocket: @unchecked Sendable {
    let netmp: NetSocket?
    let fd: Int32
    let spinning: Bool

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

    /// Reads at least one byte (0 at end of file).
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if let netmp { return try netmp.read(into: buffer) }
        if spinning {
            // Spin for the longest NetMP's waiters spin, then yield, then block.
            let deadline = SystemClock().nanoseconds + SpinPolicy.waiterMaximumSpinNanoseconds
            repeat {
                let n = Glibc.recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT))
                if n >= 0 { return n }
                guard errno == EAGAIN || errno == EWOULDBLOCK else {
                    throw BenchFailure(description: "kernel recv: errno \(errno)")
                }
            } while SystemClock().nanoseconds < deadline
            // Then yield a few times, as NetMP's waiters do before they park.
            for _ in 0..<SpinPolicy.waiterYields {
                sched_yield()
                let n = Glibc.recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT))
                if n >= 0 { return n }
            }
        }
        let n = Glibc.recv(fd, buffer.baseAddress, buffer.count, 0)
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

private func setBuffers(_ fd: Int32) {
    var size = Int32(benchBufferSize)
    _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
}

private func loopbackAddress(port: UInt16) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    address.sin_port = port.bigEndian
    return address
}

/// Runs `body(count)` once to calibrate, then with a count sized for `seconds`; returns the
/// second run's operations per second and CPU microseconds per operation.
private func calibrated(seconds: Double, first: Int, _ body: (Int) throws -> Void) throws -> (Double, Double) {
    let start = now()
    try body(first)
    let rate = Double(first) / Swift.max(1e-6, now() - start)
    let count = Swift.max(first, Int(rate * seconds))
    let wall = now()
    let cpu = processCPUSeconds()
    try body(count)
    let elapsed = now() - wall
    return (Double(count) / elapsed, (processCPUSeconds() - cpu) * 1e6 / Double(count))
}

// MARK: Benchmarks

private let message = 64 << 10

/// `connections` streams, each carrying 64 KiB messages; min(connections, 4) writer threads and
/// as many readers each serve their share in turn (whole messages, so none waits on another).
private func bulk(_ side: TCPBenchSide, connections: Int, seconds: Double) throws -> Measured {
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
    let sendSockets = clients
    let receiveSockets = servers
    let (rate, cpu) = try calibrated(seconds: seconds, first: 256) { messages in
        let perConnection = Swift.max(1, messages / connections)
        let failures = Atomic<Int>(0)
        let writers = (0..<groups).map { group in
            OSThread.start(name: "bench-tcp-writer") {
                let block = [UInt8](repeating: 0x5A, count: message)
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
                var block = [UInt8](repeating: 0, count: message)
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
        guard failures.load(ordering: .relaxed) == 0 else { throw BenchFailure(description: "bulk transfer failed") }
    }
    // `rate` counts calls of the body's unit (messages across all connections).
    return Measured(value: rate * Double(message) / 1e9, cpuPerOperation: cpu)
}

/// One byte there and back on a no-delay connection: µs per round trip.
private func pingPong(_ side: TCPBenchSide, seconds: Double) throws -> Measured {
    let listener = try BenchListener(side)
    defer { listener.close() }
    let client = try listener.connect(noDelay: true)
    let server = try listener.accept(noDelay: true)
    defer {
        client.close()
        server.close()
    }
    let (rate, cpu) = try calibrated(seconds: seconds, first: 2000) { count in
        let echo = OSThread.start(name: "bench-tcp-echo") {
            var byte: [UInt8] = [0]
            byte.withUnsafeMutableBytes { raw in
                for _ in 0..<count {
                    guard (try? server.read(into: raw)) == 1, (try? server.write(UnsafeRawBufferPointer(raw))) != nil
                    else { return }
                }
            }
        }
        var byte: [UInt8] = [7]
        try byte.withUnsafeMutableBytes { raw in
            for _ in 0..<count {
                try client.write(UnsafeRawBufferPointer(raw))
                guard try client.read(into: raw) == 1 else { throw BenchFailure(description: "echo ended") }
            }
        }
        echo.join()
    }
    return Measured(value: 1e6 / rate, cpuPerOperation: cpu)
}

/// connect + accept + close of both ends, one after another: connections per second.
private func connects(_ side: TCPBenchSide, seconds: Double) throws -> Measured {
    let listener = try BenchListener(side)
    defer { listener.close() }
    let (rate, cpu) = try calibrated(seconds: seconds, first: 200) { count in
        for _ in 0..<count {
            let client = try listener.connect(noDelay: false)
            let server = try listener.accept(noDelay: false)
            client.close()
            server.close()
        }
    }
    return Measured(value: rate, cpuPerOperation: cpu)
}
