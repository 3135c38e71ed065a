import ArgumentParser
import Glibc
import NetMP
import Synchronization

/// `netmp soak`: thousands of TCP and UDP flows through impaired simulated links on every
/// protocol thread for a given time, every byte checked, sockets, chunks and memory sampled
/// each second and required to stay flat (see `SoakVerdict` for what flat means).
struct SoakCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soak",
        abstract: "TCP and UDP flows through lossy, reordering, duplicating, corrupting simulated links;"
            + " every byte checked, live sockets, chunks and RSS required to stay flat.",
        discussion: SoakVerdict.rules)

    @Option(help: "How long flows keep starting: 30s, 10m, 1h, 500ms (a bare number is seconds).")
    var duration: SoakDuration = SoakDuration(nanoseconds: 60_000_000_000)

    @Option(help: "Seed of the switch's impairments and of every flow's sizes and bytes.")
    var seed: UInt64 = 0x50A4

    @Option(help: "Protocol threads of each of the two stacks (default: one per CPU, at least 2).")
    var threads: Int?

    @Option(help: "Client threads running TCP flows one after another (and as many server threads).")
    var tcpWorkers: Int = 16

    @Option(help: "Client threads running UDP flows one after another.")
    var udpWorkers: Int = 4

    @Option(help: "A flow that has not finished after this long fails (same units as --duration).")
    var flowDeadline: SoakDuration = SoakDuration(nanoseconds: 30_000_000_000)

    @Option(help: "Largest TCP request or response, bytes.")
    var maxTransfer: Int = 256 * 1024

    @Flag(help: "Print one JSON object (samples, counts, verdict) instead of the text report.")
    var json = false

    func validate() throws {
        if let threads, !(1...64).contains(threads) { throw ValidationError("--threads must be 1...64") }
        guard (1...512).contains(tcpWorkers) else { throw ValidationError("--tcp-workers must be 1...512") }
        guard (0...512).contains(udpWorkers) else { throw ValidationError("--udp-workers must be 0...512") }
        guard (16...(16 << 20)).contains(maxTransfer) else {
            throw ValidationError("--max-transfer must be 16...16777216")
        }
        guard duration.nanoseconds >= 1_000_000_000 else { throw ValidationError("--duration must be at least 1s") }
        guard flowDeadline.nanoseconds >= 1_000_000_000 else {
            throw ValidationError("--flow-deadline must be at least 1s")
        }
    }

    func run() throws {
        // Chunks are counted only when asked (one global atomic per allocation); before any exists.
        setenv("NETMP_COUNT_LIVE_CHUNKS", "1", 1)
        let plan = SoakPlan(
            seed: seed, threads: threads ?? Swift.max(2, OSThread.cpuCount), tcpWorkers: tcpWorkers,
            udpWorkers: udpWorkers, duration: duration.nanoseconds, flowDeadline: flowDeadline.nanoseconds,
            maxTransfer: maxTransfer)
        let report = try SoakRun(plan: plan, printsProgress: !json).run()
        if json {
            print(report.json())
        } else {
            report.printText()
        }
        if !report.verdict.passed { throw ExitCode(1) }
    }
}

/// A duration argument: "30s", "10m", "1h", "250ms" or a bare number of seconds.
struct SoakDuration: ExpressibleByArgument, Sendable {
    var nanoseconds: Int64

    init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    init?(argument: String) {
        let units: [(String, Double)] = [("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
        var number = Substring(argument)
        var scale = 1e9
        for (suffix, value) in units where argument.hasSuffix(suffix) {
            number = argument.dropLast(suffix.count)
            scale = value
            break
        }
        guard let value = Double(number), value.isFinite, value >= 0, value * scale < 1e17 else { return nil }
        nanoseconds = Int64(value * scale)
    }

    var defaultValueDescription: String { "\(Double(nanoseconds) / 1e9)s" }
}
