import ArgumentParser
import NetMP

@main
struct NetMPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "netmp",
        abstract: "NetMP: a multi-core user-space TCP/IP stack and socket layer.",
        subcommands: [Demo.self, Bench.self, FuzzCommand.self],
        defaultSubcommand: Demo.self)
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks that run NetMP and the kernel side by side and print ratios.",
        subcommands: [LocalBench.self, UDPBench.self, TCPBench.self])
}

/// Options every benchmark takes.
struct BenchOptions: ParsableArguments {
    @Flag(help: "Print one JSON object per line instead of a table.")
    var json = false

    @Option(help: "Seconds each side of a measurement runs (about), 0.01 to 60.")
    var seconds: Double = 1.0

    func validate() throws {
        guard seconds.isFinite, seconds >= 0.01, seconds <= 60 else {
            throw ValidationError("--seconds must be between 0.01 and 60")
        }
    }
}
