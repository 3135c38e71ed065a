import ArgumentParser
import Glibc
import NetMP
import Synchronization

struct UDPBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "udp",
        abstract: "NetMP UDP over its loopback interface against the kernel's UDP over 127.0.0.1, same threads.")

    @OptionGroup var options: BenchOptions

    @Option(help: "Protocol threads of the NetMP stack.")
    var threads: Int = 1

    @Option(help: "Datagrams a sender may be ahead of its receiver (keeps both sides loss-free).")
    var window: Int = 256

    @Flag(help: "Measure NetMP only (for profiling).")
    var netmpOnly = false

    @Flag(help: "Also print CPU time per datagram and protocol-thread counters.")
    var verbose = false

    @Option(help: "Pause rounds a blocked thread spins before sleeping (tuning).")
    var spins: Int32?

    @Option(help: "Pause rounds an idle protocol thread spins before sleeping (tuning).")
    var protocolSpins: Int?

    func validate() throws {
        guard (1...64).contains(threads) else { throw ValidationError("--threads must be 1...64") }
        guard (1...1 << 20).contains(window) else { throw ValidationError("--window must be 1...1048576") }
        if let spins, spins < 0 { throw ValidationError("--spins must not be negative") }
        if let protocolSpins, protocolSpins < 0 { throw ValidationError("--protocol-spins must not be negative") }
    }

    func run() throws {
        if let spins { SpinPolicy.waiterSpins = spins }
        if let protocolSpins { SpinPolicy.protocolThreadSpins = protocolSpins }
        let stack = NetworkStack(.init(threadCount: threads))
        defer { stack.shutdown() }
        var results: [BenchResult] = []
        for size in [64, 1400] {
            let netmp = try netmpUDP(stack, size: size, seconds: options.seconds, window: window)
            let kernel = netmpOnly ? nil : try kernelUDP(size: size, seconds: options.seconds, window: window)
            results.append(
                BenchResult(benchmark: "udp.\(size)", unit: "dgram/s", netmp: netmp, kernel: kernel, better: "higher"))
        }
        printResults(results, json: options.json)
        if verbose {
            for (key, value) in lastCPUPerDatagram.sorted(by: { $0.key < $1.key }) {
                print("cpu per datagram \(key): \(format3(value)) us (all threads, spinning included)")
            }
            for thread in stack.threads {
                print(
                    "thread \(thread.index): messages \(thread.messagesHandled.load(ordering: .relaxed)),"
                        + " wake-ups from park \(thread.parkWakeups.load(ordering: .relaxed))")
            }
        }
        let stats = stack.inetStatistics()
        if stats[.udpBufferFull] != 0 || stats[.udpNoPort] != 0 {
            print("warning: NetMP dropped datagrams: \(stats)")
        }
    }
}

/// CPU seconds the whole process has used (all threads).
func processCPUSeconds() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

/// Printed with --verbose: CPU microseconds per datagram of the last measurement.
nonisolated(unsafe) var lastCPUPerDatagram: [String: Double] = [:]

struct BenchFailure: Error, CustomStringConvertible {
    var description: String
}

/// Received so far, published by the receiver; the sender stays at most `window` ahead.
private final class Progress: Sendable {
    let received = Atomic<Int>(0)

    func waitForRoom(sent: Int, window: Int) {
        var spins = 0
        while sent - received.load(ordering: .acquiring) >= window {
            spins += 1
            if spins > 64 { sched_yield() }
        }
    }
}

/// Sender thread + receiver thread over one NetMP stack's loopback; every datagram counted.
private func netmpUDP(_ stack: NetworkStack, size: Int, seconds: Double, window: Int) throws -> Double {
    func once(_ count: Int) throws -> Double {
        let receiver = try stack.socket(.inet, .datagram)
        try receiver.setOption(.receiveBufferSize, 4 << 20)
        try receiver.bind(to: .ipv4(.loopback, port: 0))
        receiver.receiveTimeout = .seconds(5)
        let sender = try stack.socket(.inet, .datagram)
        try sender.setOption(.sendBufferSize, 4 << 20)
        try sender.connect(to: receiver.localAddress)
        defer {
            sender.close()
            receiver.close()
        }
        let progress = Progress()
        let senderThread = OSThread.start(name: "bench-udp-send") {
            let message = [UInt8](repeating: 1, count: size)
            message.withUnsafeBytes { raw in
                for index in 0..<count {
                    progress.waitForRoom(sent: index, window: window)
                    _ = try? sender.write(raw)
                }
            }
        }
        var buffer = [UInt8](repeating: 0, count: 2048)
        let start = now()
        let cpuStart = processCPUSeconds()
        var received = 0
        try buffer.withUnsafeMutableBytes { raw in
            while received < count {
                let receipt = try receiver.receive(into: raw)
                guard receipt.count == size else { throw BenchFailure(description: "short datagram") }
                received += 1
                progress.received.store(received, ordering: .releasing)
            }
        }
        let elapsed = now() - start
        lastCPUPerDatagram["netmp.\(size)"] = (processCPUSeconds() - cpuStart) * 1e6 / Double(count)
        senderThread.join()
        return Double(count) / elapsed
    }
    let rate = try once(20_000)
    return try once(Swift.max(20_000, Int(rate * seconds)))
}

private func kernelUDP(size: Int, seconds: Double, window: Int) throws -> Double {
    func once(_ count: Int) throws -> Double {
        let receiver = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        let sender = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer {
            Glibc.close(sender)
            Glibc.close(receiver)
        }
        var bufferSize: Int32 = 4 << 20
        _ = setsockopt(receiver, SOL_SOCKET, SO_RCVBUF, &bufferSize, socklen_t(MemoryLayout<Int32>.size))
        _ = setsockopt(sender, SOL_SOCKET, SO_SNDBUF, &bufferSize, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        _ = setsockopt(receiver, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(receiver, $0, length) }
        }
        guard bound == 0 else { throw BenchFailure(description: "bind failed: \(errno)") }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(receiver, $0, &length) }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(sender, $0, length) }
        }
        guard connected == 0 else { throw BenchFailure(description: "connect failed: \(errno)") }
        let progress = Progress()
        let senderThread = OSThread.start(name: "kernel-udp-send") {
            let message = [UInt8](repeating: 1, count: size)
            message.withUnsafeBytes { raw in
                for index in 0..<count {
                    progress.waitForRoom(sent: index, window: window)
                    _ = Glibc.send(sender, raw.baseAddress, raw.count, 0)
                }
            }
        }
        var buffer = [UInt8](repeating: 0, count: 2048)
        let start = now()
        let cpuStart = processCPUSeconds()
        var received = 0
        try buffer.withUnsafeMutableBytes { raw in
            while received < count {
                let n = Glibc.recv(receiver, raw.baseAddress, raw.count, 0)
                guard n == size else { throw BenchFailure(description: "kernel recv returned \(n), errno \(errno)") }
                received += 1
                progress.received.store(received, ordering: .releasing)
            }
        }
        let elapsed = now() - start
        lastCPUPerDatagram["kernel.\(size)"] = (processCPUSeconds() - cpuStart) * 1e6 / Double(count)
        senderThread.join()
        return Double(count) / elapsed
    }
    let rate = try once(20_000)
    return try once(Swift.max(20_000, Int(rate * seconds)))
}
