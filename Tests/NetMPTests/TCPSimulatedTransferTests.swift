import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPRuntime
@testable import NetMPSockets
@testable import NetMPTCP

/// Transfers between two stacks (two protocol threads each) through a simulated switch with
/// loss, reordering and duplication, byte-exact by hash, bounded in simulated or wall time; a
/// failure names the seed to replay.
final class TCPSimulatedTransferTests: XCTestCase {
    static let lossy1 = LinkImpairments(
        loss: 0.01, duplication: 0.01, reordering: 0.02, reorderDelay: .milliseconds(3), delay: .milliseconds(1))
    static let lossy5 = LinkImpairments(
        loss: 0.05, duplication: 0.02, reordering: 0.03, reorderDelay: .milliseconds(3), delay: .milliseconds(1))
    /// A hostile link: 10 % loss, 1 % corruption (the checksum catches it), a fifth of the frames
    /// reordered by up to 4 ms, duplicates.
    static let hostile = LinkImpairments(
        loss: 0.10, duplication: 0.02, reordering: 0.20, reorderDelay: .milliseconds(4), delay: .milliseconds(1),
        jitter: .microseconds(500), corruption: 0.01)

    func check(
        seed: UInt64, _ impairments: LinkImpairments, bytes: Int, threaded: Bool,
        congestionControl: TCPCongestionAlgorithm? = nil, file: StaticString = #filePath, line: UInt = #line
    ) throws -> TCPTransferOutcome {
        let outcome = try tcpTransfer(
            seed: seed, impairments: impairments, bytes: bytes, threaded: threaded,
            minimumRTO: threaded ? .milliseconds(20) : nil, congestionControl: congestionControl)
        let algorithm = congestionControl.map { ", \($0)" } ?? ""
        let replay = "seed \(seed) (\(threaded ? "threaded" : "deterministic"), \(bytes) bytes\(algorithm))"
        XCTAssertTrue(outcome.finished, "transfer did not finish: \(replay)", file: file, line: line)
        XCTAssertEqual(outcome.sent.count, bytes, "not all bytes were written: \(replay)", file: file, line: line)
        XCTAssertEqual(outcome.received, outcome.sent, "stream differs: \(replay)", file: file, line: line)
        return outcome
    }

    func testDeterministic64MiBWithFivePercentLoss() throws {
        try bounded(600) {
            let outcome = try check(seed: 11, Self.lossy5, bytes: 64 << 20, threaded: false)
            XCTAssertGreaterThan(outcome.client.retransmittedSegments, 0, "loss must cause retransmissions")
            print(
                "64 MiB at 5 % loss: \(outcome.seconds) simulated s, \(outcome.client.retransmittedSegments) "
                    + "retransmitted, \(outcome.client.fastRetransmits) fast, \(outcome.client.retransmissionTimeouts) RTOs"
            )
        }
    }

    func testThreaded64MiBWithOnePercentLoss() throws {
        try bounded(600) {
            let outcome = try check(seed: 12, Self.lossy1, bytes: 64 << 20, threaded: true)
            XCTAssertGreaterThan(outcome.client.retransmittedSegments, 0, "loss must cause retransmissions")
        }
    }

    func testDeterministicSweep2MiBTwentySeeds() throws {
        try bounded(600) {
            for seed in UInt64(100)..<UInt64(120) {
                _ = try check(seed: seed, seed % 2 == 0 ? Self.lossy1 : Self.lossy5, bytes: 2 << 20, threaded: false)
            }
        }
    }

    func testThreadedSweep1MiBSixSeeds() throws {
        try bounded(600) {
            for seed in UInt64(200)..<UInt64(206) {
                _ = try check(seed: seed, seed % 2 == 0 ? Self.lossy1 : Self.lossy5, bytes: 1 << 20, threaded: true)
            }
        }
    }

    func testDeterministicCorruptionIsCaughtByChecksums1MiB() throws {
        try bounded(300) {
            let corrupting = LinkImpairments(delay: .milliseconds(1), corruption: 0.03)
            let outcome = try check(seed: 41, corrupting, bytes: 1 << 20, threaded: false)
            // Bit flips in TCP bytes fail the checksum: the segment is dropped and sent again.
            XCTAssertGreaterThan(outcome.client.malformedSegments + outcome.server.malformedSegments, 0)
            XCTAssertGreaterThan(outcome.client.retransmittedSegments, 0)
        }
    }

    func testDeterministicRunReplaysExactly() throws {
        try bounded(300) {
            let first = try check(seed: 31, Self.lossy5, bytes: 512 << 10, threaded: false)
            let second = try check(seed: 31, Self.lossy5, bytes: 512 << 10, threaded: false)
            XCTAssertEqual(first.client, second.client)
            XCTAssertEqual(first.server, second.server)
            XCTAssertEqual(first.seconds, second.seconds)
        }
    }

    /// 64 MiB through the hostile link, several seeds, in the deterministic mode (fewer seeds under
    /// a sanitizer, NETMP_STRESS_SCALE): byte-exact, losses repaired by SACK recovery, corruption
    /// caught by the checksum. The threaded mode's run is below.
    func test64MiBThroughTenPercentLossCorruptionAndHeavyReordering() throws {
        let scale = Double(getenv("NETMP_STRESS_SCALE").flatMap { Double(String(cString: $0)) } ?? 1)
        try bounded(900) {
            for seed in UInt64(300)..<UInt64(300 + Swift.max(1, Int(3 * scale))) {
                let outcome = try check(seed: seed, Self.hostile, bytes: 64 << 20, threaded: false)
                XCTAssertGreaterThan(outcome.client.fastRetransmits, 0, "seed \(seed): no fast recovery")
                XCTAssertGreaterThan(outcome.client.malformedSegments + outcome.server.malformedSegments, 0)
                print(
                    "64 MiB hostile, seed \(seed): \(outcome.seconds) simulated s, "
                        + "\(outcome.client.retransmittedSegments) retransmitted, "
                        + "\(outcome.client.retransmissionTimeouts) RTOs")
            }
        }
    }

    /// BBR (paced, rate-based): 16 MiB through 1 % loss with reordering and duplication, then the
    /// hostile link, deterministic; byte-exact, losses repaired without reducing its model.
    func testDeterministicBBRThroughLossReorderingAndCorruption() throws {
        try bounded(600) {
            let outcome = try check(seed: 51, Self.lossy1, bytes: 16 << 20, threaded: false, congestionControl: .bbr)
            XCTAssertGreaterThan(outcome.client.retransmittedSegments, 0, "loss must cause retransmissions")
            XCTAssertGreaterThan(outcome.client.fastRetransmits, 0)
            print(
                "16 MiB at 1 % loss, BBR: \(outcome.seconds) simulated s, \(outcome.client.retransmittedSegments) "
                    + "retransmitted, \(outcome.client.retransmissionTimeouts) RTOs")
            let hostile = try check(seed: 52, Self.hostile, bytes: 4 << 20, threaded: false, congestionControl: .bbr)
            XCTAssertGreaterThan(hostile.client.malformedSegments + hostile.server.malformedSegments, 0)
        }
    }

    /// BBR in the threaded mode, where its pacing timer is a real callout on a protocol thread.
    func testThreadedBBRWithOnePercentLoss() throws {
        try bounded(600) {
            let outcome = try check(seed: 53, Self.lossy1, bytes: 8 << 20, threaded: true, congestionControl: .bbr)
            XCTAssertGreaterThan(outcome.client.retransmittedSegments, 0)
        }
    }

    /// The hostile link's 64 MiB (as in the deterministic test above) with protocol threads and the
    /// real clock: at 10 % loss its RTOs are real time, about a minute and a half here; a sanitizer
    /// lane scales it down (NETMP_STRESS_SCALE).
    func testThreaded64MiBThroughTenPercentLossCorruptionAndHeavyReordering() throws {
        let scale = Double(getenv("NETMP_STRESS_SCALE").flatMap { Double(String(cString: $0)) } ?? 1)
        let mebibytes = Swift.max(8, Int(64 * scale))
        try bounded(900) {
            let outcome = try check(seed: 310, Self.hostile, bytes: mebibytes << 20, threaded: true)
            XCTAssertGreaterThan(outcome.client.retransmittedSegments, 0)
            XCTAssertGreaterThan(outcome.client.malformedSegments + outcome.server.malformedSegments, 0)
            print(
                "\(mebibytes) MiB hostile, threaded: \(outcome.seconds) s, "
                    + "\(outcome.client.retransmittedSegments) retransmitted, "
                    + "\(outcome.client.retransmissionTimeouts) RTOs")
        }
    }
}
