import ArgumentParser
import NetMP

@main
struct NetMPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "netmp",
        abstract: "NetMP: a multi-core user-space TCP/IP stack and socket layer.",
        subcommands: [
            Demo.self, Bench.self, FuzzCommand.self, SoakCommand.self, ServeCommand.self, NetcatCommand.self,
            PingCommand.self,
        ],
        defaultSubcommand: Demo.self)
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks that run NetMP and the kernel side by side and print ratios.",
        subcommands: [LocalBench.self, UDPBench.self, TCPBench.self, TAPBench.self, ConnectionsBench.self])
}

/// Options every benchmark takes.
struct BenchOptions: ParsableArguments {
    @Flag(help: "Print one JSON object per line instead of a table.")
    var json = false

    @Option(help: "Seconds each side of a measurement runs (about), 0.01 to 60.")
    var seconds: Double = 1.0

    @Flag(help: "Also print every leg and pass, the spin calibration and the kernel buffer sizes granted.")
    var verbose = false

    @Option(help: "Most nanoseconds a blocked thread spins before sleeping, NetMP's and the kernel legs' (tuning).")
    var spinNs: Int64?

    @Option(help: "Most nanoseconds an idle protocol thread spins before parking (tuning).")
    var protocolSpinNs: Int64?

    func validate() throws {
        guard seconds.isFinite, seconds >= 0.01, seconds <= 60 else {
            throw ValidationError("--seconds must be between 0.01 and 60")
        }
        for value in [spinNs, protocolSpinNs] {
            if let value, !(0...10_000_000).contains(value) {
                throw ValidationError("spin budgets must be 0...10000000 ns")
            }
        }
    }

    @Flag(help: "Run the two threads of every leg on CPUs 0 and 1, so that they never share a CPU.")
    var pin = false

    /// Applies the spin budgets and pinning given, before any socket exists.
    func applySpinSettings() {
        if pin {
            pinLegThreads = true
            pinIfAsked(0)
        }
        if let spinNs {
            SpinPolicy.waiterMaximumSpinNanoseconds = spinNs
            SpinPolicy.waiterMinimumSpinNanoseconds = Swift.min(SpinPolicy.waiterMinimumSpinNanoseconds, spinNs)
        }
        if let protocolSpinNs {
            SpinPolicy.protocolThreadSpinNanoseconds = protocolSpinNs
            SpinPolicy.protocolThreadMinimumSpinNanoseconds = Swift.min(
                SpinPolicy.protocolThreadMinimumSpinNanoseconds, protocolSpinNs)
        }
    }
}
