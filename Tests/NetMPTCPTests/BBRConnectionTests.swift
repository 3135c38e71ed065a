import NetMPWire
import XCTest

@testable import NetMPTCP

/// A connection using BBR: its rate samples come from the connection's own sends and ACKs, and its
/// segments leave at the pacing rate through the pacing timer.
final class BBRConnectionTests: XCTestCase {
    func established(_ algorithm: TCPCongestionAlgorithm) -> Harness {
        var configuration = plainConfiguration()
        configuration.noDelay = true
        configuration.congestionControl = algorithm
        return ConnectionTests.established(configuration, rtt: 10 * milliseconds)
    }

    func testSegmentsLeaveAtThePacingRate() throws {
        var harness = established(.bbr)
        XCTAssertTrue(harness.connection.congestionControl is BBR)
        harness.run { $0.send(count: 40 * 1460, now: $1, into: &$2) }
        // No estimate yet: the initial window goes at once.
        XCTAssertEqual(harness.sent.count, 10)
        XCTAssertNil(harness.connection.deadline(of: .pacing))
        harness.now += 10 * milliseconds
        harness.receive(peer(.ack, 5001, 1001 + 14_600))
        // 14 600 bytes in 10 ms: 1.46 MB/s; Startup paces at 739/256 of it, less 1 %.
        let bbr = try XCTUnwrap(harness.connection.congestionControl as? BBR)
        XCTAssertEqual(bbr.bottleneckBandwidth, 1_460_000)
        XCTAssertEqual(bbr.minimumRTT, 10 * milliseconds)
        XCTAssertEqual(bbr.congestionWindow, 29_200)
        let rate = 4_172_454
        XCTAssertEqual(harness.connection.congestionControl.pacingRate, rate)
        XCTAssertEqual(harness.connection.info.pacingRate, rate)
        // A burst of at most 1 ms of the rate goes now (the window would allow twenty segments).
        let spacing = Pacer.nanoseconds(1460, at: rate)
        XCTAssertEqual(spacing, 349_913)
        let burst = Int(Pacer.burstDuration / spacing) + 1
        XCTAssertEqual(burst, 3)
        XCTAssertEqual(harness.sent, (0..<3).map { Wire([.ack], 15_601 + UInt32($0) * 1460, 5001, length: 1460) })
        var deadline = harness.now - Pacer.burstDuration + Int64(burst) * spacing
        XCTAssertEqual(harness.connection.deadline(of: .pacing), deadline)
        XCTAssertEqual(harness.connection.nextDeadline, deadline)
        // Then one segment per timer, `spacing` apart, until the window is full.
        var sequence: UInt32 = 15_601 + 3 * 1460
        for _ in 3..<20 {
            XCTAssertEqual(harness.fireNext(), deadline)
            XCTAssertEqual(harness.sent, [Wire([.ack], sequence, 5001, length: 1460)])
            sequence += 1460
            deadline += spacing
        }
        XCTAssertNil(harness.connection.deadline(of: .pacing), "the window is full: nothing waits for the pacer")
        XCTAssertEqual(harness.connection.flightSize, 29_200)
    }

    func testLossBasedControllersArePacedByNothing() {
        for algorithm in [TCPCongestionAlgorithm.cubic, .newReno] {
            var harness = established(algorithm)
            harness.run { $0.send(count: 40 * 1460, now: $1, into: &$2) }
            harness.now += 10 * milliseconds
            harness.receive(peer(.ack, 5001, 1001 + 14_600))
            // All the window allows goes at once.
            XCTAssertEqual(
                harness.connection.flightSize, harness.connection.congestionControl.congestionWindow, "\(algorithm)")
            XCTAssertGreaterThan(harness.sent.count, 10)
            XCTAssertNil(harness.connection.deadline(of: .pacing))
            XCTAssertNil(harness.connection.rateBasedSending, "no estimator for \(algorithm)")
            XCTAssertEqual(harness.connection.info.pacingRate, 0)
        }
    }

    func testSwitchingToBBRAndBackKeepsTheEstimatorOnlyWhileItIsUsed() {
        var harness = established(.cubic)
        harness.connection.setCongestionControl(.bbr)
        XCTAssertTrue(harness.connection.congestionControl is BBR)
        XCTAssertNotNil(harness.connection.rateBasedSending)
        // It takes the window over and starts its model afresh.
        XCTAssertEqual(harness.connection.congestionControl.congestionWindow, 14_600)
        harness.run { $0.send(count: 4 * 1460, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent.count, 4)
        harness.now += 10 * milliseconds
        harness.receive(peer(.ack, 5001, 1001 + 4 * 1460))
        XCTAssertEqual((harness.connection.congestionControl as? BBR)?.minimumRTT, 10 * milliseconds)
        harness.connection.setCongestionControl(.newReno)
        XCTAssertNil(harness.connection.rateBasedSending)
        XCTAssertEqual(harness.connection.info.pacingRate, 0)
    }

    /// The application wrote less than the window: the samples say so, and do not lower the model.
    func testAnApplicationLimitedFlightIsMarked() throws {
        var harness = established(.bbr)
        harness.run { $0.send(count: 2 * 1460, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent.count, 2)
        let rates = try XCTUnwrap(harness.connection.rateBasedSending?.rates)
        XCTAssertEqual(rates.applicationLimitedUntil, 2920)
    }
}
