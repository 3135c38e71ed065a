import NetMPTCP
import NetMPWire
import XCTest

/// ECN (RFC 3168 section 6.1) against the manual clock, with the exact segments: the setup SYN and
/// SYN-ACK, ECT(0) only on new data, ECE echoed until CWR, and the sender's once-per-window
/// reduction that it answers with CWR.
final class ECNTests: XCTestCase {
    func configuration(ecn: Bool = true, _ algorithm: TCPCongestionAlgorithm = .cubic) -> TCPConfiguration {
        var configuration = plainConfiguration()
        configuration.noDelay = true
        configuration.explicitCongestionNotification = ecn
        configuration.congestionControl = algorithm
        return configuration
    }

    /// A listen socket's child that agreed to ECN, established.
    func established(_ algorithm: TCPCongestionAlgorithm = .cubic) -> Harness {
        var harness = Harness.accepting(
            configuration(algorithm),
            syn: TCPHeader(
                sourcePort: 40000, destinationPort: 80, sequenceNumber: 5000, flags: [.syn, .ece, .cwr],
                window: 60_000, options: TCPOptions(maximumSegmentSize: 1460)))
        XCTAssertEqual(harness.sent, [Wire([.syn, .ack, .ece], 1000, 5001)])
        harness.receive(peer(.ack, 5001, 1001))
        XCTAssertEqual(harness.state, .established)
        XCTAssertTrue(harness.connection.ecn.negotiated)
        return harness
    }

    func testActiveOpenAsksAndAgreesOnlyOnASetupSYNACK() {
        var asking = Harness.connecting(configuration())
        XCTAssertEqual(asking.sent, [Wire([.syn, .ece, .cwr], 1000)])
        asking.receive(peer([.syn, .ack, .ece], 5000, 1001))
        XCTAssertEqual(asking.sent, [Wire(.ack, 1001, 5001)])
        XCTAssertTrue(asking.connection.ecn.negotiated)
        for answer: TCPFlags in [[.syn, .ack], [.syn, .ack, .ece, .cwr]] {
            var refused = Harness.connecting(configuration())
            refused.receive(peer(answer, 5000, 1001))
            XCTAssertEqual(refused.state, .established)
            XCTAssertFalse(refused.connection.ecn.negotiated, "\(answer)")
        }
        var off = Harness.connecting(configuration(ecn: false))
        XCTAssertEqual(off.sent, [Wire(.syn, 1000)])
        off.receive(peer([.syn, .ack, .ece], 5000, 1001))
        XCTAssertFalse(off.connection.ecn.negotiated)
    }

    func testPassiveOpenAgreesOnlyToASetupSYNWhenConfigured() {
        let setup = TCPHeader(
            sourcePort: 40000, destinationPort: 80, sequenceNumber: 5000, flags: [.syn, .ece, .cwr], window: 60_000)
        let off = Harness.accepting(configuration(ecn: false), syn: setup)
        XCTAssertEqual(off.sent, [Wire([.syn, .ack], 1000, 5001)])
        XCTAssertFalse(off.connection.ecn.negotiated)
        var eceOnly = setup
        eceOnly.flags = [.syn, .ece]
        let half = Harness.accepting(configuration(), syn: eceOnly)
        XCTAssertEqual(half.sent, [Wire([.syn, .ack], 1000, 5001)])
        XCTAssertFalse(half.connection.ecn.negotiated)
    }

    /// New data is ECT(0); a bare ACK, a retransmission and a window probe are not.
    func testOnlyNewDataIsECNCapable() {
        var harness = established()
        harness.run { $0.send(count: 3000, now: $1, into: &$2) }
        XCTAssertEqual(harness.actions.segments.map(\.ecnCapable), [true, true, true])
        harness.fireNext()
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 5001, length: 1460)])
        XCTAssertEqual(harness.actions.segments.map(\.ecnCapable), [false], "a retransmission is not ECT")
        harness.receive(peer([.ack, .psh], 5001, 4001), payload: [1, 2, 3])
        XCTAssertEqual(harness.sent, [Wire(.ack, 4001, 5004)])
        XCTAssertEqual(harness.actions.segments.map(\.ecnCapable), [false], "a bare ACK is not ECT")
        // The peer's window closes: the probe is not ECT either.
        harness.receive(peer(.ack, 5004, 4001, window: 0))
        harness.run { $0.send(count: 10, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent, [])
        harness.fireNext()
        XCTAssertEqual(harness.sent, [Wire(.ack, 4001, 5004, length: 1)])
        XCTAssertEqual(harness.actions.segments.map(\.ecnCapable), [false])
    }

    /// A CE mark: every ACK carries ECE until a segment with CWR arrives.
    func testTheReceiverEchoesCEUntilCWR() {
        var harness = established()
        func data(_ sequence: UInt32, _ flags: TCPFlags = [.ack, .psh], ce: Bool) {
            harness.run {
                $0.receive(
                    peer(flags, sequence, 1001), payload: Array(repeating: 1, count: 100)[...],
                    congestionExperienced: ce,
                    now: $1, into: &$2)
            }
        }
        data(5001, ce: false)
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 5101)])
        data(5101, ce: true)
        XCTAssertEqual(harness.sent, [Wire([.ack, .ece], 1001, 5201)])
        XCTAssertEqual(harness.connection.ecn.marksReceived, 1)
        data(5201, ce: false)
        XCTAssertEqual(harness.sent, [Wire([.ack, .ece], 1001, 5301)], "still echoing: no CWR yet")
        data(5301, [.ack, .psh, .cwr], ce: false)
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 5401)], "CWR ends the echo")
        data(5401, [.ack, .psh, .cwr], ce: true)
        XCTAssertEqual(harness.sent, [Wire([.ack, .ece], 1001, 5501)], "a mark on the CWR segment echoes again")
    }

    /// ECE: one reduction per window of data, without a retransmission; CWR on the next new segment.
    func testTheSenderReducesOncePerWindowAndAnswersWithCWR() {
        var harness = established(.newReno)
        harness.run { $0.send(count: 20 * 1460, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent.count, 10)
        let start: (Int) -> UInt32 = { 1001 + UInt32($0) * 1460 }
        // Segment 0 acknowledged with ECE: slow start first grows cwnd to 16060, then the reduction
        // leaves ssthresh = flight / 2 = 9 segments × 1460 / 2 and cwnd = ssthresh; nothing resent.
        harness.receive(peer([.ack, .ece], 5001, start(1)))
        XCTAssertEqual(harness.connection.congestionControl.slowStartThreshold, 6570)
        XCTAssertEqual(harness.connection.congestionControl.congestionWindow, 6570)
        XCTAssertEqual(harness.connection.ecn.reductions, 1)
        XCTAssertEqual(harness.sent, [])
        XCTAssertEqual(harness.connection.retransmittedSegments, 0)
        // More ECE for data sent before the reduction: the same congestion event.
        harness.receive(peer([.ack, .ece], 5001, start(2)))
        harness.receive(peer([.ack, .ece], 5001, start(5)))
        XCTAssertEqual(harness.connection.ecn.reductions, 1)
        XCTAssertEqual(harness.sent, [], "flight 7300 is above cwnd 6570")
        // Congestion avoidance: 7300 bytes acknowledged since the reduction pass cwnd, which grows to
        // 8030; flight 5840 leaves room for one segment, which carries CWR and is ECT(0).
        harness.receive(peer(.ack, 5001, start(6)))
        XCTAssertEqual(harness.connection.congestionControl.congestionWindow, 8030)
        XCTAssertEqual(harness.sent, [Wire([.ack, .cwr], start(10), 5001, length: 1460)])
        XCTAssertEqual(harness.actions.segments.map(\.ecnCapable), [true])
        harness.receive(peer(.ack, 5001, start(7)))
        XCTAssertEqual(harness.sent, [Wire(.ack, start(11), 5001, length: 1460)], "CWR only once")
        // An ECE for data sent after the reduction is a new event.
        harness.receive(peer([.ack, .ece], 5001, start(11)))
        XCTAssertEqual(harness.connection.ecn.reductions, 2)
    }

    /// Under CUBIC the reduction keeps β = 0.7 of the flight.
    func testCubicReducesByBeta() {
        var harness = established(.cubic)
        harness.run { $0.send(count: 20 * 1460, now: $1, into: &$2) }
        harness.receive(peer([.ack, .ece], 5001, 2461))
        XCTAssertEqual(harness.connection.congestionControl.slowStartThreshold, Int(Double(9 * 1460) * 0.7))
        XCTAssertEqual(harness.connection.congestionControl.congestionWindow, 9198)
        XCTAssertEqual((harness.connection.congestionControl as? Cubic)?.hyStart?.phase, .finished)
    }

    /// Without negotiation ECE and CE mean nothing.
    func testMarksAreIgnoredWithoutNegotiation() {
        var configuration = plainConfiguration()
        configuration.noDelay = true
        var harness = ConnectionTests.established(configuration)
        harness.run { $0.send(count: 10 * 1460, now: $1, into: &$2) }
        XCTAssertTrue(harness.actions.segments.allSatisfy { !$0.ecnCapable })
        harness.receive(peer([.ack, .ece], 5001, 2461))
        XCTAssertEqual(harness.connection.ecn.reductions, 0)
        XCTAssertEqual(harness.connection.congestionControl.slowStartThreshold, Int.max)
        harness.run {
            $0.receive(
                peer([.ack, .psh], 5001, 2461), payload: [1][...], congestionExperienced: true, now: $1, into: &$2)
        }
        XCTAssertFalse(harness.sent.contains { $0.flags.contains(.ece) })
    }
}
