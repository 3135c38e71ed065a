import NetMPTCP
import NetMPWire
import XCTest

/// The connection and its congestion controller: which algorithm a configuration selects, CUBIC's
/// reduction on a fast retransmit with the exact segments, RFC 7661 validation of an
/// application-limited window, and the sequence number of bare ACKs after a timeout.
final class CongestionControlTests: XCTestCase {
    func established(_ algorithm: TCPCongestionAlgorithm?, rtt: Int64 = 10 * milliseconds) -> Harness {
        var configuration = plainConfiguration()
        configuration.noDelay = true
        if let algorithm {
            configuration.congestionControl = algorithm
        }
        return ConnectionTests.established(configuration, rtt: rtt)
    }

    func testCubicIsTheDefaultAndNewRenoIsSelectable() {
        XCTAssertEqual(TCPConfiguration().congestionControl, .cubic)
        XCTAssertTrue(established(nil).connection.congestionControl is Cubic)
        XCTAssertTrue(established(.cubic).connection.congestionControl is Cubic)
        XCTAssertTrue(established(.newReno).connection.congestionControl is NewReno)
        var configuration = plainConfiguration()
        configuration.hyStart = false
        let plain = Connection(
            configuration: configuration, localPort: 1, remotePort: 2, initialSequenceNumber: .init(0))
        XCTAssertNil((plain.congestionControl as? Cubic)?.hyStart, "hyStart off: none")
        XCTAssertNotNil((established(nil).connection.congestionControl as? Cubic)?.hyStart)
    }

    /// Ten segments out, three duplicate ACKs: CUBIC keeps β = 0.7 of the flight where NewReno keeps
    /// half (TransferTests.testFastRetransmitOnThreeDuplicateACKs).
    func testFastRetransmitUnderCubicKeepsSeventyPercent() {
        var harness = established(.cubic)
        harness.run { $0.send(count: 20 * 1460, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent.map(\.sequence), (0..<10).map { 1001 + UInt32($0) * 1460 })
        for _ in 0..<2 {
            harness.receive(peer(.ack, 5001, 1001))
            XCTAssertEqual(harness.sent, [])
        }
        harness.receive(peer(.ack, 5001, 1001))
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 5001, length: 1460)])
        XCTAssertEqual(harness.connection.congestionControl.slowStartThreshold, 10_220, "0.7 × 14600")
        XCTAssertEqual(harness.connection.congestionControl.congestionWindow, 10_220 + 3 * 1460)
        XCTAssertEqual((harness.connection.congestionControl as? Cubic)?.maximumWindow, 14_600)
        // Two more duplicates inflate the window to 17520: one new segment (flight 14600 → 16060).
        harness.receive(peer(.ack, 5001, 1001))
        XCTAssertEqual(harness.sent, [Wire([.ack], 15601, 5001, length: 1460)])
        harness.receive(peer(.ack, 5001, 1001))
        XCTAssertEqual(harness.sent, [Wire([.ack], 17061, 5001, length: 1460)])
        // Everything up to the recovery point: cwnd = min(ssthresh, flight + MSS) = 2920 + 1460.
        harness.receive(peer(.ack, 5001, 15601))
        XCTAssertFalse(harness.connection.inFastRecovery)
        XCTAssertEqual(harness.connection.congestionControl.congestionWindow, 4380)
        XCTAssertEqual(harness.sent, [Wire([.ack], 18521, 5001, length: 1460)])
    }

    /// One segment per round trip while the window is ten: the window is never validated, so it stays
    /// at IW (without RFC 7661 every ACK would have grown it in slow start). A bulk write then fills
    /// it, and it grows again.
    func testAnApplicationLimitedSenderDoesNotGrowItsWindow() {
        // The loss-based ones: BBR's window follows its model (its samples mark the application's
        // limit instead; BBRConnectionTests).
        for algorithm in TCPCongestionAlgorithm.allCases where algorithm != .bbr {
            var harness = established(algorithm)
            var next: UInt32 = 1001
            for _ in 0..<20 {
                harness.run { $0.send(count: 1460, now: $1, into: &$2) }
                XCTAssertEqual(harness.sent, [Wire([.ack, .psh], next, 5001, length: 1460)])
                next += 1460
                harness.now += 10 * milliseconds
                harness.receive(peer(.ack, 5001, next))
            }
            XCTAssertEqual(harness.connection.congestionControl.congestionWindow, 14_600, "\(algorithm)")
            XCTAssertFalse(harness.connection.windowValidation.isValidated(congestionWindow: 14_600))
            if let cubic = harness.connection.congestionControl as? Cubic {
                // An unused window needs none of CUBIC's state beyond the window: none is made.
                XCTAssertFalse(cubic.ownsState)
                XCTAssertEqual(harness.connection.retransmissionTimeout.smoothedRTT, 10 * milliseconds)
            }
            // A bulk write: ten segments go out at once, and their ACKs grow the window again.
            harness.run { $0.send(count: 40 * 1460, now: $1, into: &$2) }
            XCTAssertEqual(harness.sent.count, 10, "\(algorithm)")
            for _ in 0..<10 {
                next += 1460
                harness.receive(peer(.ack, 5001, next))
            }
            XCTAssertEqual(harness.connection.congestionControl.congestionWindow, 29_200, "\(algorithm)")
            if let cubic = harness.connection.congestionControl as? Cubic {
                // Now it keeps the smoothed RTT the samples carry, the connection's.
                XCTAssertTrue(cubic.ownsState)
                XCTAssertEqual(cubic.smoothedRTT, harness.connection.retransmissionTimeout.smoothedRTT)
                XCTAssertGreaterThan(cubic.smoothedRTT, 0)
            }
        }
    }

    /// After a timeout moved SND.NXT back, a bare ACK carries SND.MAX: with SND.NXT the peer, which
    /// already holds those bytes, finds the segment unacceptable and drops its ACK field unread.
    /// (Before the fix a CUBIC run of SimulationTests at 5 % loss, seed 13, deadlocked this way: both
    /// ends retransmitting data the other had, each dropping the other's ACKs, until both timed out.)
    func testABareACKAfterATimeoutCarriesSNDMAX() {
        var harness = established(.cubic)
        harness.run { $0.send(count: 3 * 1460, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent.count, 3)
        XCTAssertEqual(harness.connection.sendMax, SequenceNumber(1001 + 3 * 1460))
        harness.fireNext()
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 5001, length: 1460)], "go back N with cwnd = 1 MSS")
        XCTAssertEqual(harness.connection.sendNext, SequenceNumber(2461))
        // The peer's data arrives: the ACK for it says SEQ = SND.MAX = 5381, not SND.NXT = 2461.
        harness.receive(peer([.ack, .psh], 5001, 1001), payload: Array(repeating: 7, count: 100))
        XCTAssertEqual(harness.sent, [Wire(.ack, 5381, 5101)])
    }

    /// RFC 7661's test, round by round: validated when the largest flight of this round or the last
    /// is at least half the window, or when the window held data back.
    func testWindowValidationRounds() {
        var validation = CongestionWindowValidation(start: SequenceNumber(100))
        validation.sent(flight: 5000)
        XCTAssertTrue(validation.isValidated(congestionWindow: 10_000), "5000 is half of 10000")
        XCTAssertFalse(validation.isValidated(congestionWindow: 10_001))
        // An ACK before the round's end changes nothing; one at it starts the next round.
        validation.acknowledged(SequenceNumber(99), sendMax: SequenceNumber(5100), flight: 3000)
        XCTAssertEqual(validation.roundEnd, SequenceNumber(100))
        validation.acknowledged(SequenceNumber(100), sendMax: SequenceNumber(5100), flight: 3000)
        XCTAssertEqual(validation.roundEnd, SequenceNumber(5100))
        XCTAssertEqual(validation.previousPeakFlight, 5000)
        XCTAssertEqual(validation.peakFlight, 3000)
        XCTAssertTrue(validation.isValidated(congestionWindow: 10_000), "the last round's peak still counts")
        // Two rounds later the 5000 is forgotten.
        validation.acknowledged(SequenceNumber(5100), sendMax: SequenceNumber(6000), flight: 1000)
        XCTAssertEqual(validation.previousPeakFlight, 3000)
        XCTAssertFalse(validation.isValidated(congestionWindow: 10_000))
        validation.stoppedByCongestionWindow()
        XCTAssertTrue(validation.isValidated(congestionWindow: 1_000_000), "stopped by the window")
        validation.acknowledged(SequenceNumber(6000), sendMax: SequenceNumber(7000), flight: 0)
        XCTAssertTrue(validation.isValidated(congestionWindow: 1_000_000), "and for the round after")
        validation.acknowledged(SequenceNumber(7000), sendMax: SequenceNumber(7000), flight: 0)
        XCTAssertFalse(validation.isValidated(congestionWindow: 1_000_000))
    }

    /// TCP_CONGESTION on a live connection: the new algorithm continues from cwnd and ssthresh.
    func testSwitchingALiveConnectionKeepsItsWindow() {
        var harness = established(.cubic)
        harness.run { $0.send(count: 40 * 1460, now: $1, into: &$2) }
        for segment in 1...4 {
            harness.receive(peer(.ack, 5001, 1001 + UInt32(segment) * 1460))
        }
        XCTAssertEqual(harness.connection.congestionControl.congestionWindow, 14 * 1460)
        harness.connection.setCongestionControl(.newReno)
        XCTAssertTrue(harness.connection.congestionControl is NewReno)
        XCTAssertEqual(harness.connection.congestionControl.congestionWindow, 14 * 1460)
        XCTAssertEqual(harness.connection.congestionControl.slowStartThreshold, Int.max)
        XCTAssertEqual(harness.connection.configuration.congestionControl, .newReno)
        // A loss under NewReno halves; switching back to CUBIC keeps the halved window and threshold.
        for _ in 0..<3 {
            harness.receive(peer(.ack, 5001, 1001 + 4 * 1460))
        }
        XCTAssertEqual(harness.connection.congestionControl.slowStartThreshold, harness.connection.flightSize / 2)
        let threshold = harness.connection.congestionControl.slowStartThreshold
        harness.receive(peer(.ack, 5001, harness.connection.sendMax.rawValue))
        XCTAssertFalse(harness.connection.inFastRecovery)
        let window = harness.connection.congestionControl.congestionWindow
        harness.connection.setCongestionControl(.cubic)
        let cubic = harness.connection.congestionControl as? Cubic
        XCTAssertEqual(cubic?.congestionWindow, window)
        XCTAssertEqual(cubic?.slowStartThreshold, threshold)
        XCTAssertEqual(cubic?.hyStart?.phase, .finished, "HyStart++ is for the initial slow start only")
        // Before the handshake the new algorithm simply starts when it completes.
        var early = Harness.connecting(plainConfiguration())
        early.connection.setCongestionControl(.newReno)
        early.receive(peer([.syn, .ack], 5000, 1001, options: TCPOptions(maximumSegmentSize: 1460)))
        XCTAssertTrue(early.connection.congestionControl is NewReno)
        XCTAssertEqual(early.connection.congestionControl.congestionWindow, 14_600)
    }

    /// The connection keeps a copy of the controller's window for the send path: after every kind of
    /// change (the handshake's start, ACKs, a loss and its recovery, a timeout, a switch of
    /// algorithm) it is the controller's own figure, and the figure the RFCs give.
    func testTheConnectionsWindowIsTheControllersAfterEveryChange() {
        func assertWindow(_ harness: Harness, _ expected: Int, _ step: String, line: UInt = #line) {
            XCTAssertEqual(harness.connection.congestionWindow, expected, step, line: line)
            XCTAssertEqual(harness.connection.congestionControl.congestionWindow, expected, step, line: line)
        }
        var early = Harness.connecting(plainConfiguration())
        assertWindow(early, 10 * 536, "before the handshake: IW10 for the default MSS of 536")
        early.receive(peer([.syn, .ack], 5000, 1001, options: TCPOptions(maximumSegmentSize: 1460)))
        assertWindow(early, 14_600, "the handshake settled the MSS: IW10")

        var harness = established(.cubic)
        harness.run { $0.send(count: 40 * 1460, now: $1, into: &$2) }
        for segment in 1...4 {
            harness.receive(peer(.ack, 5001, 1001 + UInt32(segment) * 1460))
        }
        assertWindow(harness, 14 * 1460, "slow start: one MSS per ACK")
        for _ in 0..<3 {
            harness.receive(peer(.ack, 5001, 1001 + 4 * 1460))
        }
        XCTAssertTrue(harness.connection.inFastRecovery)
        assertWindow(harness, 14_308 + 3 * 1460, "loss: 0.7 of the flight of 14 MSS, plus the 3 duplicates")
        harness.receive(peer(.ack, 5001, harness.connection.sendMax.rawValue))
        XCTAssertFalse(harness.connection.inFastRecovery)
        assertWindow(harness, 2 * 1460, "recovery over, nothing in flight: RFC 6582's flight + 1 MSS, 1 MSS least")
        XCTAssertEqual(harness.sent.count, 2)
        harness.fireNext()
        XCTAssertEqual(harness.connection.consecutiveRetransmissions, 1)
        assertWindow(harness, 1460, "timeout: one MSS")
        harness.connection.setCongestionControl(.newReno)
        assertWindow(harness, 1460, "switched to NewReno with the window")
        harness.connection.setCongestionControl(.bbr)
        XCTAssertTrue(harness.connection.congestionControl is BBR)
        XCTAssertEqual(
            harness.connection.congestionWindow, harness.connection.congestionControl.congestionWindow,
            "switched to BBR: its own window")
    }
}
