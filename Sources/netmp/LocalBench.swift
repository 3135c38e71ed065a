import ArgumentParser
import Glibc
import NetMP
import Synchronization

struct LocalBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "local",
        abstract: "NetMP local sockets against the kernel's AF_UNIX socketpair, same sizes and threads.")

    @OptionGroup var options: BenchOptions

    @Option(help: "Pause rounds a blocked thread spins before sleeping (tuning).")
    var spins: Int32?

    @Option(help: "Run only the benchmarks whose name contains this text.")
    var only: String?

    private func selected(_ name: String) -> Bool { only.map { name.contains($0) } ?? true }

    func validate() throws {
        if let spins, spins < 0 { throw ValidationError("--spins must not be negative") }
    }

    func run() throws {
        if let spins { SpinPolicy.waiterSpins = spins }
        let seconds = options.seconds
        let stack = NetworkStack()
        defer { stack.shutdown() }
        var results: [BenchResult] = []

        if selected("local.stream.64k") {
            results.append(
                BenchResult(
                    benchmark: "local.stream.64k", unit: "GB/s", netmp: try netmpStream(stack, seconds: seconds),
                    kernel: kernelStream(seconds: seconds), better: "higher"))
        }
        if selected("local.pingpong") && only != "local.pingpong.async" {
            results.append(
                BenchResult(
                    benchmark: "local.pingpong", unit: "us", netmp: try netmpPingPong(stack, seconds: seconds),
                    kernel: kernelPingPong(seconds: seconds), better: "lower"))
        }
        if selected("local.pingpong.async") {
            results.append(
                BenchResult(
                    benchmark: "local.pingpong.async", unit: "us",
                    netmp: try netmpPingPongAsync(stack, seconds: seconds), kernel: kernelPingPong(seconds: seconds),
                    better: "lower"))
        }
        if selected("local.dgram.1k") {
            results.append(
                BenchResult(
                    benchmark: "local.dgram.1k", unit: "msg/s", netmp: try netmpDatagrams(stack, seconds: seconds),
                    kernel: kernelDatagrams(seconds: seconds), better: "higher"))
        }
        if selected("runtime.messages") {
            results.append(
                BenchResult(
                    benchmark: "runtime.messages", unit: "msg/s", netmp: runtimeMessages(stack, seconds: seconds),
                    kernel: nil, better: "higher"))
        }
        if selected("runtime.sendwait") {
            results.append(
                BenchResult(
                    benchmark: "runtime.sendwait", unit: "us", netmp: try runtimeSendWait(stack, seconds: seconds),
                    kernel: nil, better: "lower"))
        }
        printResults(results, json: options.json)
    }
}

// MARK: Stream throughput

private let chunkSize = 64 << 10

/// Bytes to move so that one side runs about `seconds`, from a short calibration.
private func streamTotal(seconds: Double, bytesPerSecond: Double) -> Int {
    let total = Int(bytesPerSecond * seconds)
    return Swift.max(chunkSize * 16, total / chunkSize * chunkSize)
}

private func netmpStream(_ stack: NetworkStack, seconds: Double) throws -> Double {
    func once(total: Int) throws -> Double {
        let (a, b) = try stack.socketPair(.stream)
        let writer = OSThread.start(name: "bench-writer") {
            let chunk = [UInt8](repeating: 0x5a, count: chunkSize)
            chunk.withUnsafeBytes { raw in
                var sent = 0
                while sent < total { sent += (try? a.write(raw)) ?? total }
            }
        }
        let start = now()
        var buffer = [UInt8](repeating: 0, count: chunkSize)
        var received = 0
        try buffer.withUnsafeMutableBytes { raw in
            while received < total {
                let n = try b.read(into: raw)
                if n == 0 { break }
                received += n
            }
        }
        let elapsed = now() - start
        writer.join()
        return Double(received) / elapsed
    }
    let rate = try once(total: 64 << 20)
    return try once(total: streamTotal(seconds: seconds, bytesPerSecond: rate)) / 1e9
}

private func kernelPair(_ type: Int32) -> (Int32, Int32) {
    var fds: [Int32] = [0, 0]
    let result = socketpair(AF_UNIX, type, 0, &fds)
    precondition(result == 0, "socketpair failed")
    return (fds[0], fds[1])
}

private func kernelStream(seconds: Double) -> Double {
    func once(total: Int) -> Double {
        let (a, b) = kernelPair(Int32(SOCK_STREAM.rawValue))
        defer {
            Glibc.close(a)
            Glibc.close(b)
        }
        let writer = OSThread.start(name: "kernel-writer") {
            let chunk = [UInt8](repeating: 0x5a, count: chunkSize)
            chunk.withUnsafeBytes { raw in
                var sent = 0
                while sent < total {
                    let n = Glibc.write(a, raw.baseAddress, raw.count)
                    if n <= 0 { break }
                    sent += n
                }
            }
        }
        let start = now()
        var buffer = [UInt8](repeating: 0, count: chunkSize)
        var received = 0
        buffer.withUnsafeMutableBytes { raw in
            while received < total {
                let n = Glibc.read(b, raw.baseAddress, raw.count)
                if n <= 0 { break }
                received += n
            }
        }
        let elapsed = now() - start
        writer.join()
        return Double(received) / elapsed
    }
    let rate = once(total: 64 << 20)
    return once(total: streamTotal(seconds: seconds, bytesPerSecond: rate)) / 1e9
}

// MARK: Ping-pong

private func roundTrips(seconds: Double, perSecond: Double) -> Int { Swift.max(1000, Int(perSecond * seconds)) }

private func netmpPingPong(_ stack: NetworkStack, seconds: Double) throws -> Double {
    func once(_ count: Int) throws -> Double {
        let (a, b) = try stack.socketPair(.stream)
        let echo = OSThread.start(name: "bench-echo") {
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
        let start = now()
        try byte.withUnsafeMutableBytes { raw in
            for _ in 0..<count {
                try a.write(UnsafeRawBufferPointer(raw))
                _ = try a.read(into: raw)
            }
        }
        let elapsed = now() - start
        echo.join()
        return elapsed / Double(count)
    }
    let perTrip = try once(2000)
    return try once(roundTrips(seconds: seconds, perSecond: 1 / perTrip)) * 1e6
}

private func kernelPingPong(seconds: Double) -> Double {
    func once(_ count: Int) -> Double {
        let (a, b) = kernelPair(Int32(SOCK_STREAM.rawValue))
        defer {
            Glibc.close(a)
            Glibc.close(b)
        }
        let echo = OSThread.start(name: "kernel-echo") {
            var byte: UInt8 = 0
            for _ in 0..<count {
                guard Glibc.read(b, &byte, 1) == 1, Glibc.write(b, &byte, 1) == 1 else { return }
            }
        }
        var byte: UInt8 = 7
        let start = now()
        for _ in 0..<count {
            _ = Glibc.write(a, &byte, 1)
            _ = Glibc.read(a, &byte, 1)
        }
        let elapsed = now() - start
        echo.join()
        return elapsed / Double(count)
    }
    let perTrip = once(2000)
    return once(roundTrips(seconds: seconds, perSecond: 1 / perTrip)) * 1e6
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

private func netmpPingPongAsync(_ stack: NetworkStack, seconds: Double) throws -> Double {
    func once(_ count: Int) throws -> Double {
        try runAsync {
            let (a, b) = try stack.socketPair(.stream)
            let echo = Task {
                for _ in 0..<count {
                    let byte = try await b.read(maxBytes: 1)
                    guard byte.count == 1 else { return }
                    try await b.write(byte)
                }
            }
            let start = now()
            for _ in 0..<count {
                try await a.write([7])
                _ = try await a.read(maxBytes: 1)
            }
            let elapsed = now() - start
            try await echo.value
            return elapsed / Double(count)
        }
    }
    let perTrip = try once(2000)
    return try once(roundTrips(seconds: seconds, perSecond: 1 / perTrip)) * 1e6
}

// MARK: Datagrams

private let datagramSize = 1024

private func netmpDatagrams(_ stack: NetworkStack, seconds: Double) throws -> Double {
    func once(_ count: Int) throws -> Double {
        let (a, b) = try stack.socketPair(.datagram)
        let sender = OSThread.start(name: "bench-dgram") {
            let message = [UInt8](repeating: 1, count: datagramSize)
            message.withUnsafeBytes { raw in
                for _ in 0..<count { _ = try? a.write(raw) }
            }
        }
        var buffer = [UInt8](repeating: 0, count: datagramSize)
        let start = now()
        try buffer.withUnsafeMutableBytes { raw in
            for _ in 0..<count { _ = try b.read(into: raw) }
        }
        let elapsed = now() - start
        sender.join()
        return Double(count) / elapsed
    }
    let rate = try once(20_000)
    return try once(Swift.max(20_000, Int(rate * seconds)))
}

private func kernelDatagrams(seconds: Double) -> Double {
    func once(_ count: Int) -> Double {
        let (a, b) = kernelPair(Int32(SOCK_DGRAM.rawValue))
        defer {
            Glibc.close(a)
            Glibc.close(b)
        }
        let sender = OSThread.start(name: "kernel-dgram") {
            let message = [UInt8](repeating: 1, count: datagramSize)
            message.withUnsafeBytes { raw in
                for _ in 0..<count { _ = Glibc.write(a, raw.baseAddress, raw.count) }
            }
        }
        var buffer = [UInt8](repeating: 0, count: datagramSize)
        let start = now()
        buffer.withUnsafeMutableBytes { raw in
            for _ in 0..<count { _ = Glibc.read(b, raw.baseAddress, raw.count) }
        }
        let elapsed = now() - start
        sender.join()
        return Double(count) / elapsed
    }
    let rate = once(20_000)
    return once(Swift.max(20_000, Int(rate * seconds)))
}

// MARK: Runtime

private func runtimeMessages(_ stack: NetworkStack, seconds: Double) -> Double {
    guard let thread = stack.threads.first else { return 0 }
    func once(_ perSender: Int) -> Double {
        let handled = Counter()
        let start = now()
        let senders = (0..<2).map { index in
            OSThread.start(name: "bench-sender-\(index)") {
                for _ in 0..<perSender { thread.send { handled.increment() } }
            }
        }
        for sender in senders { sender.join() }
        _ = try? thread.call { () throws(NetError) in 0 }
        let elapsed = now() - start
        precondition(handled.value == 2 * perSender, "messages lost")
        return Double(2 * perSender) / elapsed
    }
    let rate = once(50_000)
    return once(Swift.max(50_000, Int(rate * seconds / 2)))
}

private func runtimeSendWait(_ stack: NetworkStack, seconds: Double) throws -> Double {
    guard let thread = stack.threads.first else { return 0 }
    func once(_ count: Int) throws -> Double {
        let start = now()
        var sum = 0
        for index in 0..<count { sum &+= try thread.call { () throws(NetError) in index } }
        precondition(sum == count * (count - 1) / 2)
        return (now() - start) / Double(count)
    }
    let perCall = try once(2000)
    return try once(Swift.max(2000, Int(seconds / perCall))) * 1e6
}

/// A counter only the protocol thread increments.
final class Counter: @unchecked Sendable {
    private let storage = Atomic<Int>(0)
    func increment() { storage.add(1, ordering: .releasing) }
    var value: Int { storage.load(ordering: .acquiring) }
}
