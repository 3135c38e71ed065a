import NetMPWire
import XCTest

@testable import NetMPTCP

/// The structure-aware TCP fuzzer, bounded: a fixed seed, a few thousand sequences.
final class TCPFuzzTests: XCTestCase {
    func testSeededSequencesKeepEveryInvariant() throws {
        let counts = try TCPFuzz.run(iterations: 3000, seed: 0x7C9F, steps: 64).get()
        XCTAssertEqual(counts.sequences, 3000)
        // The sequences reach the states that matter and move data, or they prove little.
        for state in [
            TCPState.synSent, .synReceived, .established, .finWait1, .closeWait, .lastAck, .timeWait, .closed,
        ] {
            XCTAssertTrue(counts.statesReached.contains(state), "never reached \(state)")
        }
        XCTAssertGreaterThan(counts.bytesDelivered, 100_000)
        XCTAssertGreaterThan(counts.segmentsOut, 10_000)
    }

    func testTheSameSeedReplaysTheSameRun() throws {
        let first = try TCPFuzz.run(iterations: 50, seed: 42).get()
        let second = try TCPFuzz.run(iterations: 50, seed: 42).get()
        XCTAssertEqual(first, second)
    }

    /// The oracle itself: a delivered byte that is not the peer's fails the run.
    func testAWrongDeliveredByteIsAViolation() {
        var choices = TCPFuzz.Choices(seed: 1)
        var run = TCPFuzz.Run(choices: &choices)
        var counts = TCPFuzz.Counts()
        run.peerSentEnd = 2
        run.actions.delivered = [[TCPFuzz.streamByte(0), TCPFuzz.streamByte(1) ^ 1][...]]
        let violation = run.absorb(counts: &counts)
        XCTAssertEqual(violation?.message.hasPrefix("delivered byte at stream position 1 is"), true)
    }

    /// And bytes beyond what the peer sent, even the right ones, fail it too.
    func testDeliveringMoreThanThePeerSentIsAViolation() {
        var choices = TCPFuzz.Choices(seed: 1)
        var run = TCPFuzz.Run(choices: &choices)
        var counts = TCPFuzz.Counts()
        run.peerSentEnd = 1
        run.actions.delivered = [[TCPFuzz.streamByte(0), TCPFuzz.streamByte(1)][...]]
        XCTAssertEqual(run.absorb(counts: &counts)?.message.hasPrefix("2 bytes delivered, the peer sent 1"), true)
    }

    /// A libFuzzer input runs until its bytes end; empty input is one sequence with no step.
    func testBytesDriveOneSequence() throws {
        let empty = try [UInt8]().withUnsafeBytes { TCPFuzz.run(bytes: $0) }.get()
        XCTAssertEqual(empty.sequences, 1)
        XCTAssertEqual(empty.steps, 0)
        let bytes = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 37 ^ $0 >> 3) }
        let some = try bytes.withUnsafeBytes { TCPFuzz.run(bytes: $0) }.get()
        XCTAssertGreaterThan(some.steps, 10)
    }
}
