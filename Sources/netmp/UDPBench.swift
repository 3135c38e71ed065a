import ArgumentParser
import Glibc
import NetMP
import Synchronization

struct UDPBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "udp",
        abstract: "NetMP UDP over its loopback interface against the kernel's UDP over 127.0.0.1 at its best:"
            + " same buffer sizes, same threads, blocking or spinning then blocking.")

    @OptionGroup var options: BenchOptions

    @Option(help: "Protocol threads of the NetMP stack.")
    var threads: Int = 1

    @Option(help: "Datagrams a sender may be ahead of its receiver (keeps both sides loss-free).")
    var window: Int = 256

    @Flag(help: "Measure NetMP only (for profiling).")
    var netmpOnly = false

    func validate() throws {
        guard (1...64).contains(threads) else { throw ValidationError("--threads must be 1...64") }
        guard (1...1 << 20).contains(window) else { throw ValidationError("--window must be 1...1048576") }
    }

    func run() throws {
        options.applySpinSettings()
        let stack = NetworkStack(.init(threadCount: threads))
        defer { stack.shutdown() }
        let sizes = try udpBufferSizes(stack)
        var results: [BenchResult] = []
        for size in [64, 1400] {
            var legs = [Leg(name: "netmp") { try netmpUDP(stack, size: size, count: $0, window: window) }]
            if !netmpOnly {
                legs.append(
                    Leg(name: "kernel.block") {
                        try kernelUDP(sizes, spin: false, size: size, count: $0, window: window)
                    })
                legs.append(
                    Leg(name: "kernel.spin") { try kernelUDP(sizes, spin: true, size: size, count: $0, window: window) }
                )
            }
            results.append(
                try measureRow(
                    "udp.\(size)", .throughput(unit: "dgram/s", scale: 1, probe: 20_000), legs: legs,
                    seconds: options.seconds, row: results.count))
        }
        if options.verbose {
            for thread in stack.threads {
                benchNotes.append(
                    "thread \(thread.index): messages \(thread.messagesHandled.load(ordering: .relaxed)),"
                        + " wake-ups from park \(thread.parkWakeups.load(ordering: .relaxed))")
            }
        }
        printResults(results, json: options.json, verbose: options.verbose)
        let stats = stack.inetStatistics()
        if stats[.udpBufferFull] != 0 || stats[.udpNoPort] != 0 {
            print("warning: NetMP dropped datagrams: \(stats)")
        }
    }
}

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

/// A NetMP receiver and sender, their buffers set as the benchmark sets them.
private func udpPair(_ stack: NetworkStack) throws -> (receiver: NetSocket, sender: NetSocket) {
    let receiver = try stack.socket(.inet, .datagram)
    try receiver.setOption(.receiveBufferSize, 4 << 20)
    try receiver.bind(to: .ipv4(.loopback, port: 0))
    receiver.receiveTimeout = .seconds(5)
    let sender = try stack.socket(.inet, .datagram)
    try sender.setOption(.sendBufferSize, 4 << 20)
    try sender.connect(to: receiver.localAddress)
    return (receiver, sender)
}

/// The buffer sizes of NetMP's receiver and sender (the kernel's get the same).
private func udpBufferSizes(_ stack: NetworkStack) throws -> (receiver: BufferSizes, sender: BufferSizes) {
    let (receiver, sender) = try udpPair(stack)
    defer {
        sender.close()
        receiver.close()
    }
    return (try BufferSizes(receiver), try BufferSizes(sender))
}

/// Sender thread + receiver thread over one NetMP stack's loopback; every datagram counted.
private func netmpUDP(_ stack: NetworkStack, size: Int, count: Int, window: Int) throws -> Pass {
    let (receiver, sender) = try udpPair(stack)
    defer {
        sender.close()
        receiver.close()
    }
    let progress = Progress()
    let clock = PassClock()
    let senderThread = OSThread.start(name: "bench-udp-send") {
        pinIfAsked(1)
        let message = [UInt8](repeating: 1, count: size)
        message.withUnsafeBytes { raw in
            for index in 0..<count {
                progress.waitForRoom(sent: index, window: window)
                _ = try? sender.write(raw)
            }
        }
    }
    var buffer = [UInt8](repeating: 0, count: 2048)
    var received = 0
    try buffer.withUnsafeMutableBytes { raw in
        while received < count {
            let receipt = try receiver.receive(into: raw)
            guard receipt.count == size else { throw BenchFailure(description: "short datagram") }
            received += 1
            progress.received.store(received, ordering: .releasing)
        }
    }
    let pass = clock.stop(operations: count)
    senderThread.join()
    return pass
}

private func kernelUDP(
    _ sizes: (receiver: BufferSizes, sender: BufferSizes), spin: Bool, size: Int, count: Int, window: Int
) throws -> Pass {
    let receiver = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    let sender = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    defer {
        Glibc.close(sender)
        Glibc.close(receiver)
    }
    applyBufferSizes(sizes.receiver, to: receiver, label: "udp receiver")
    applyBufferSizes(sizes.sender, to: sender, label: "udp sender")
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
    let clock = PassClock()
    let senderThread = OSThread.start(name: "kernel-udp-send") {
        pinIfAsked(1)
        var spinner: KernelSpinner? = spin ? KernelSpinner() : nil
        let message = [UInt8](repeating: 1, count: size)
        message.withUnsafeBytes { raw in
            for index in 0..<count {
                progress.waitForRoom(sent: index, window: window)
                if spinner != nil {
                    _ = spinner!.call { flags in Glibc.send(sender, raw.baseAddress, raw.count, flags) }
                } else {
                    _ = Glibc.send(sender, raw.baseAddress, raw.count, 0)
                }
            }
        }
    }
    var spinner: KernelSpinner? = spin ? KernelSpinner() : nil
    var buffer = [UInt8](repeating: 0, count: 2048)
    var received = 0
    try buffer.withUnsafeMutableBytes { raw in
        while received < count {
            let n =
                spinner != nil
                ? spinner!.call { flags in Glibc.recv(receiver, raw.baseAddress, raw.count, flags) }
                : Glibc.recv(receiver, raw.baseAddress, raw.count, 0)
            guard n == size else { throw BenchFailure(description: "kernel recv returned \(n), errno \(errno)") }
            received += 1
            progress.received.store(received, ordering: .releasing)
        }
    }
    let pass = clock.stop(operations: count)
    senderThread.join()
    return pass
}
