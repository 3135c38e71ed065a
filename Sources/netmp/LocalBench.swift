import ArgumentParser
import Glibc
import NetMP
import Synchronization

struct LocalBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "local",
        abstract: "NetMP local sockets against the kernel's AF_UNIX socketpair at its best: same buffer sizes,"
            + " same threads, blocking or spinning then blocking.")

    @OptionGroup var options: BenchOptions

    @Option(help: "Run only the benchmarks whose name contains this text.")
    var only: String?

    private func selected(_ name: String) -> Bool { only.map { name.contains($0) } ?? true }

    func run() throws {
        options.applySpinSettings()
        let seconds = options.seconds
        let stack = NetworkStack()
        defer { stack.shutdown() }
        let streamSizes = try bufferSizes(stack, .stream)
        let datagramSizes = try bufferSizes(stack, .datagram)
        var results: [BenchResult] = []
        func row(_ name: String, _ kind: RowKind, _ legs: [Leg]) throws {
            results.append(try measureRow(name, kind, legs: legs, seconds: seconds, row: results.count))
        }

        if selected("local.stream.64k") {
            try row(
                "local.stream.64k", .throughput(unit: "GB/s", scale: Double(chunkSize) / 1e9, probe: 1024),
                [
                    Leg(name: "netmp") { try netmpStream(stack, chunks: $0) },
                    Leg(name: "kernel.block") { kernelStream(streamSizes, spin: false, chunks: $0) },
                    Leg(name: "kernel.spin") { kernelStream(streamSizes, spin: true, chunks: $0) },
                ])
        }
        let kernelPingPongLegs = [
            Leg(name: "kernel.block") { kernelPingPong(streamSizes, spin: false, count: $0) },
            Leg(name: "kernel.spin") { kernelPingPong(streamSizes, spin: true, count: $0) },
        ]
        if selected("local.pingpong") && only != "local.pingpong.async" {
            try row(
                "local.pingpong", .latency(probe: 2000),
                [Leg(name: "netmp") { try netmpPingPong(stack, count: $0) }] + kernelPingPongLegs)
        }
        if selected("local.pingpong.async") {
            try row(
                "local.pingpong.async", .latency(probe: 2000),
                [Leg(name: "netmp") { try netmpPingPongAsync(stack, count: $0) }] + kernelPingPongLegs)
        }
        if selected("local.dgram.1k") {
            try row(
                "local.dgram.1k", .throughput(unit: "msg/s", scale: 1, probe: 20_000),
                [
                    Leg(name: "netmp") { try netmpDatagrams(stack, count: $0) },
                    Leg(name: "kernel.block") { kernelDatagrams(datagramSizes, spin: false, count: $0) },
                    Leg(name: "kernel.spin") { kernelDatagrams(datagramSizes, spin: true, count: $0) },
                ])
        }
        if selected("runtime.messages") {
            try row(
                "runtime.messages", .throughput(unit: "msg/s", scale: 1, probe: 100_000),
                [Leg(name: "netmp") { runtimeMessages(stack, count: $0) }])
        }
        if selected("runtime.sendwait") {
            try row(
                "runtime.sendwait", .latency(probe: 2000),
                [Leg(name: "netmp") { try runtimeSendWait(stack, count: $0) }])
        }
        printResults(results, json: options.json, verbose: options.verbose)
    }
}

/// The buffer sizes NetMP gives a new local socket of `type` (the kernel legs get the same).
private func bufferSizes(_ stack: NetworkStack, _ type: SocketType) throws -> BufferSizes {
    let (a, b) = try stack.socketPair(type)
    defer {
        a.close()
        b.close()
    }
    return try BufferSizes(a)
}

// MARK: Stream throughput

private let chunkSize = 64 << 10

private func netmpStream(_ stack: NetworkStack, chunks: Int) throws -> Pass {
    let (a, b) = try stack.socketPair(.stream)
    defer {
        a.close()
        b.close()
    }
    let total = chunks * chunkSize
    let clock = PassClock()
    let writer = OSThread.start(name: "bench-writer") {
        pinIfAsked(1)
        let chunk = [UInt8](repeating: 0x5a, count: chunkSize)
        chunk.withUnsafeBytes { raw in
            for _ in 0..<chunks { _ = try? a.write(raw) }
        }
    }
    var buffer = [UInt8](repeating: 0, count: chunkSize)
    var received = 0
    try buffer.withUnsafeMutableBytes { raw in
        while received < total {
            let n = try b.read(into: raw)
            if n == 0 { break }
            received += n
        }
    }
    let pass = clock.stop(operations: received / chunkSize)
    writer.join()
    return pass
}

private func kernelPair(_ type: Int32, _ sizes: BufferSizes, label: String) -> (Int32, Int32) {
    var fds: [Int32] = [0, 0]
    let result = socketpair(AF_UNIX, type, 0, &fds)
    precondition(result == 0, "socketpair failed")
    applyBufferSizes(sizes, to: fds[0], label: label)
    applyBufferSizes(sizes, to: fds[1], label: label)
    return (fds[0], fds[1])
}

/// Writes all of `count` bytes at `base` (spinning first if `spin`); false if the socket failed.
private func writeAll(_ fd: Int32, _ base: UnsafeRawPointer, _ count: Int, spinner: inout KernelSpinner?) -> Bool {
    var done = 0
    while done < count {
        let n: Int
        if spinner != nil {
            n = spinner!.call { flags in Glibc.send(fd, base + done, count - done, flags | Int32(MSG_NOSIGNAL)) }
        } else {
            n = Glibc.send(fd, base + done, count - done, Int32(MSG_NOSIGNAL))
        }
        if n <= 0 { return false }
        done += n
    }
    return true
}

/// One read of up to `count` bytes (spinning first if `spin`).
private func readSome(_ fd: Int32, _ base: UnsafeMutableRawPointer, _ count: Int, spinner: inout KernelSpinner?)
    -> Int
{
    if spinner != nil { return spinner!.call { flags in Glibc.recv(fd, base, count, flags) } }
    return Glibc.recv(fd, base, count, 0)
}

private func kernelStream(_ sizes: BufferSizes, spin: Bool, chunks: Int) -> Pass {
    let (a, b) = kernelPair(Int32(SOCK_STREAM.rawValue), sizes, label: "local stream")
    defer {
        Glibc.close(a)
        Glibc.close(b)
    }
    let total = chunks * chunkSize
    let clock = PassClock()
    let writer = OSThread.start(name: "kernel-writer") {
        pinIfAsked(1)
        var spinner: KernelSpinner? = spin ? KernelSpinner() : nil
        let chunk = [UInt8](repeating: 0x5a, count: chunkSize)
        chunk.withUnsafeBytes { raw in
            for _ in 0..<chunks {
                guard let base = raw.baseAddress, writeAll(a, base, raw.count, spinner: &spinner) else { return }
            }
        }
    }
    var spinner: KernelSpinner? = spin ? KernelSpinner() : nil
    var buffer = [UInt8](repeating: 0, count: chunkSize)
    var received = 0
    buffer.withUnsafeMutableBytes { raw in
        guard let base = raw.baseAddress else { return }
        while received < total {
            let n = readSome(b, base, raw.count, spinner: &spinner)
            if n <= 0 { break }
            received += n
        }
    }
    let pass = clock.stop(operations: received / chunkSize)
    writer.join()
    return pass
}

// MARK: Ping-pong

private func netmpPingPong(_ stack: NetworkStack, count: Int) throws -> Pass {
    let (a, b) = try stack.socketPair(.stream)
    defer {
        a.close()
        b.close()
    }
    let echo = OSThread.start(name: "bench-echo") {
        pinIfAsked(1)
        var byte: [UInt8] = [0]
        byte.withUnsafeMutableBytes { raw in
            for _ in 0..<count {
                guard (try? b.read(into: raw)) == 1, (try? b.write(UnsafeRawBufferPointer(raw))) == 1 else {
                    return
                }
            }
        }
    }
    var byte: [UInt8] = [7]
    let clock = PassClock()
    try byte.withUnsafeMutableBytes { raw in
        for _ in 0..<count {
            try a.write(UnsafeRawBufferPointer(raw))
            _ = try a.read(into: raw)
        }
    }
    let pass = clock.stop(operations: count)
    echo.join()
    return pass
}

private func kernelPingPong(_ sizes: BufferSizes, spin: Bool, count: Int) -> Pass {
    let (a, b) = kernelPair(Int32(SOCK_STREAM.rawValue), sizes, label: "local stream")
    defer {
        Glibc.close(a)
        Glibc.close(b)
    }
    let echo = OSThread.start(name: "kernel-echo") {
        pinIfAsked(1)
        var reads: KernelSpinner? = spin ? KernelSpinner() : nil
        var writes: KernelSpinner? = spin ? KernelSpinner() : nil
        var byte: UInt8 = 0
        for _ in 0..<count {
            guard readSome(b, &byte, 1, spinner: &reads) == 1, writeAll(b, &byte, 1, spinner: &writes) else { return }
        }
    }
    var reads: KernelSpinner? = spin ? KernelSpinner() : nil
    var writes: KernelSpinner? = spin ? KernelSpinner() : nil
    var byte: UInt8 = 7
    let clock = PassClock()
    for _ in 0..<count {
        guard writeAll(a, &byte, 1, spinner: &writes), readSome(a, &byte, 1, spinner: &reads) == 1 else { break }
    }
    let pass = clock.stop(operations: count)
    echo.join()
    return pass
}

/// Runs an async body to completion from synchronous code.
private func runAsync<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let result = Mutex<Result<T, any Error>?>(nil)
    let done = Atomic<Bool>(false)
    Task {
        let value: Result<T, any Error>
        do { value = .success(try await body()) } catch { value = .failure(error) }
        result.withLock { $0 = value }
        done.store(true, ordering: .releasing)
    }
    while !done.load(ordering: .acquiring) { usleep(200) }
    return try result.withLock { $0 }!.get()
}

private func netmpPingPongAsync(_ stack: NetworkStack, count: Int) throws -> Pass {
    try runAsync {
        let (a, b) = try stack.socketPair(.stream)
        defer {
            a.close()
            b.close()
        }
        let echo = Task {
            for _ in 0..<count {
                let byte = try await b.read(maxBytes: 1)
                guard byte.count == 1 else { return }
                try await b.write(byte)
            }
        }
        let clock = PassClock()
        for _ in 0..<count {
            try await a.write([7])
            _ = try await a.read(maxBytes: 1)
        }
        let pass = clock.stop(operations: count)
        try await echo.value
        return pass
    }
}

// MARK: Datagrams

private let datagramSize = 1024

private func netmpDatagrams(_ stack: NetworkStack, count: Int) throws -> Pass {
    let (a, b) = try stack.socketPair(.datagram)
    defer {
        a.close()
        b.close()
    }
    let clock = PassClock()
    let sender = OSThread.start(name: "bench-dgram") {
        pinIfAsked(1)
        let message = [UInt8](repeating: 1, count: datagramSize)
        message.withUnsafeBytes { raw in
            for _ in 0..<count { _ = try? a.write(raw) }
        }
    }
    var buffer = [UInt8](repeating: 0, count: datagramSize)
    try buffer.withUnsafeMutableBytes { raw in
        for _ in 0..<count { _ = try b.read(into: raw) }
    }
    let pass = clock.stop(operations: count)
    sender.join()
    return pass
}

private func kernelDatagrams(_ sizes: BufferSizes, spin: Bool, count: Int) -> Pass {
    let (a, b) = kernelPair(Int32(SOCK_DGRAM.rawValue), sizes, label: "local datagram")
    defer {
        Glibc.close(a)
        Glibc.close(b)
    }
    let clock = PassClock()
    let sender = OSThread.start(name: "kernel-dgram") {
        pinIfAsked(1)
        var spinner: KernelSpinner? = spin ? KernelSpinner() : nil
        let message = [UInt8](repeating: 1, count: datagramSize)
        message.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            for _ in 0..<count { _ = writeAll(a, base, raw.count, spinner: &spinner) }
        }
    }
    var spinner: KernelSpinner? = spin ? KernelSpinner() : nil
    var buffer = [UInt8](repeating: 0, count: datagramSize)
    buffer.withUnsafeMutableBytes { raw in
        guard let base = raw.baseAddress else { return }
        for _ in 0..<count { _ = readSome(b, base, raw.count, spinner: &spinner) }
    }
    let pass = clock.stop(operations: count)
    sender.join()
    return pass
}

// MARK: Runtime

/// Two threads send `count` messages in all to one protocol thread, which counts them.
private func runtimeMessages(_ stack: NetworkStack, count: Int) -> Pass {
    guard let thread = stack.threads.first else { return Pass(operations: 0, seconds: 1, cpuSeconds: 0) }
    let perSender = Swift.max(1, count / 2)
    let handled = Counter()
    let clock = PassClock()
    let senders = (0..<2).map { index in
        OSThread.start(name: "bench-sender-\(index)") {
            pinIfAsked(index)
            for _ in 0..<perSender { thread.send { handled.increment() } }
        }
    }
    for sender in senders { sender.join() }
    _ = try? thread.call { () throws(NetError) in 0 }
    let pass = clock.stop(operations: 2 * perSender)
    precondition(handled.value == 2 * perSender, "messages lost")
    return pass
}

/// Synchronous requests to a protocol thread, one after another.
private func runtimeSendWait(_ stack: NetworkStack, count: Int) throws -> Pass {
    guard let thread = stack.threads.first else { return Pass(operations: 0, seconds: 1, cpuSeconds: 0) }
    let clock = PassClock()
    var sum = 0
    for index in 0..<count { sum &+= try thread.call { () throws(NetError) in index } }
    let pass = clock.stop(operations: count)
    precondition(sum == count * (count - 1) / 2)
    return pass
}

/// A counter only the protocol thread increments.
final class Counter: @unchecked Sendable {
    private let storage = Atomic<Int>(0)
    func increment() { storage.add(1, ordering: .releasing) }
    var value: Int { storage.load(ordering: .acquiring) }
}
