import ArgumentParser
import NetMP

/// Runs the wire parsers' randomized robustness driver (for CI): millions of mutated valid
/// packets and random bytes; a trap fails the run. With `--tcp`, the structure-aware TCP
/// fuzzer instead: sequences of segments and user calls into one connection, invariants checked
/// after each step (`TCPFuzz`); a broken invariant prints the sequence and exits 1.
struct FuzzCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuzz",
        abstract: "Feed the packet parsers mutated and random input (they must never trap), or with --tcp drive"
            + " adversarial segment sequences into a TCP connection, checking its invariants after each step.")

    @Flag(help: "Fuzz one TCP connection with segment sequences (iterations are sequences).")
    var tcp = false

    @Option(help: "Events per TCP sequence (with --tcp).")
    var steps: Int = 64

    @Option(help: "Inputs to try.")
    var iterations: Int = 1_000_000

    @Option(help: "Seed (the same seed replays the same inputs).")
    var seed: UInt64 = 0x5EED

    func validate() throws {
        guard iterations >= 0 else { throw ValidationError("--iterations must not be negative") }
        guard (1...100_000).contains(steps) else { throw ValidationError("--steps must be 1...100000") }
    }

    func run() throws {
        if tcp {
            switch TCPFuzz.run(iterations: iterations, seed: seed, steps: steps) {
            case .success(let counts):
                let states = counts.statesReached.map(\.description).sorted().joined(separator: " ")
                print(
                    "fuzz --tcp: \(counts.sequences) sequences, \(counts.steps) steps, seed \(seed):"
                        + " \(counts.segmentsIn) segments in, \(counts.segmentsOut) out, \(counts.bytesDelivered) bytes"
                        + " delivered and checked; states reached: \(states)")
            case .failure(let violation):
                print("fuzz --tcp: invariant broken, \(violation)")
                throw ExitCode(1)
            }
            return
        }
        let counts = WireFuzz.run(iterations: iterations, seed: seed)
        print("fuzz: \(iterations) iterations, seed \(seed): \(counts.accepted) parsed, \(counts.rejected) rejected")
    }
}
