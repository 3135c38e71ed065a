import ArgumentParser
import NetMP

/// `netmp bench connections`: many concurrent TCP connections in one stack over loopback,
/// accepted from one listen socket, each exchanging bytes both ways (checked exactly), then idle
/// while their memory is measured. Deterministic mode, so the counts reproduce from the seed.
struct ConnectionsBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connections",
        abstract: "Memory per idle TCP connection, with up to a million connections in one stack over loopback.")

    @Option(help: "Concurrent connections (two sockets each, both in the stack), 1 to 1000000.")
    var count = 100_000

    @Option(help: "Bytes each side sends and the other checks, 4 to 65536.")
    var payload = 100

    @Option(help: "Protocol threads of the stack, 1 to 64.")
    var threads = 2

    @Option(help: "Seed of the deterministic run.")
    var seed: UInt64 = 1

    @Flag(help: "Print one JSON object per line instead of the report.")
    var json = false

    @Option(
        help: """
            Kernel loopback connections measured by slab accounting as the reference (0: none; \
            capped by the descriptor limit; needs a readable /proc/slabinfo).
            """)
    var kernelCount = 10_000

    func validate() throws {
        guard (1...1_000_000).contains(count) else { throw ValidationError("--count must be 1...1000000") }
        guard (4...65536).contains(payload) else { throw ValidationError("--payload must be 4...65536") }
        guard (1...64).contains(threads) else { throw ValidationError("--threads must be 1...64") }
        guard (0...1_000_000).contains(kernelCount) else { throw ValidationError("--kernel-count must be 0...1000000") }
    }

    func run() throws {
        let report = try LoopbackConnectionScale.run(
            connections: count, payload: payload, threadCount: threads, seed: seed)
        let kernelConnections = Swift.min(kernelCount, KernelConnectionMemory.connectionLimit())
        let kernel =
            kernelConnections > 0
            ? KernelConnectionMemory.bytesPerConnection(count: kernelConnections, payload: payload) : nil
        if json {
            let rows = [
                BenchResult(
                    benchmark: "tcp.connections.heap", unit: "bytes/connection", netmp: report.heapBytesPerConnection,
                    kernel: kernel, better: "lower"),
                BenchResult(
                    benchmark: "tcp.connections.rss", unit: "bytes/connection",
                    netmp: report.residentBytesPerConnection, kernel: kernel, better: "lower"),
                BenchResult(
                    benchmark: "tcp.connections.objects", unit: "bytes/socket",
                    netmp: Double(report.footprintBytesPerSocket), kernel: nil, better: "lower"),
            ]
            for row in rows { print(row.json) }
        } else {
            print(LoopbackConnectionScale.describe(report))
            if let kernel {
                print(
                    "kernel: \(Int(kernel.rounded())) B of slab per idle loopback connection (both ends, "
                        + "\(kernelConnections) connections); NetMP heap / kernel = "
                        + format3(report.heapBytesPerConnection / Swift.max(1, kernel)))
            } else if kernelConnections > 0 {
                print("kernel: not measured (/proc/slabinfo unreadable, or a connection failed)")
            }
        }
        if report.mismatches > 0 || report.socketsHoldingChunks > 0 {
            throw ValidationError(
                "\(report.mismatches) connections did not exchange their bytes exactly; "
                    + "\(report.socketsHoldingChunks) idle sockets hold chunks")
        }
    }
}

/// The `tcp.idle.memory` row of `netmp bench tcp`: bytes per idle established loopback connection
/// at `connections` connections, both ends in one stack (NetMP: the RSS grown, divided by the
/// count; the kernel: its slab accounting, as the RSS of this process would not see its sockets).
func idleMemoryRow(connections: Int, kernel measureKernel: Bool) throws -> BenchResult {
    let report = try LoopbackConnectionScale.run(connections: connections, payload: 100)
    guard report.mismatches == 0, report.socketsHoldingChunks == 0 else {
        throw BenchFailure(description: "tcp.idle.memory: \(report.mismatches) connections failed their exchange")
    }
    let kernelConnections = measureKernel ? Swift.min(connections, KernelConnectionMemory.connectionLimit()) : 0
    let kernel =
        kernelConnections > 0 ? KernelConnectionMemory.bytesPerConnection(count: kernelConnections, payload: 100) : nil
    return BenchResult(
        benchmark: "tcp.idle.memory", unit: "B/conn", netmp: report.residentBytesPerConnection, kernel: kernel,
        better: "lower")
}
