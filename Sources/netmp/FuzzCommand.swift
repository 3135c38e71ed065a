import ArgumentParser
import NetMP

/// Runs the wire parsers' randomized robustness driver (for CI): millions of mutated valid
/// packets and random bytes; a trap fails the run.
struct FuzzCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuzz", abstract: "Feed the packet parsers mutated and random input (they must never trap).")

    @Option(help: "Inputs to try.")
    var iterations: Int = 1_000_000

    @Option(help: "Seed (the same seed replays the same inputs).")
    var seed: UInt64 = 0x5EED

    func validate() throws {
        guard iterations >= 0 else { throw ValidationError("--iterations must not be negative") }
    }

    func run() throws {
        let counts = WireFuzz.run(iterations: iterations, seed: seed)
        print("fuzz: \(iterations) iterations, seed \(seed): \(counts.accepted) parsed, \(counts.rejected) rejected")
    }
}
