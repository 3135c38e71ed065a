import NetMPTCP
import NetMPWire
import XCTest

/// Proportional Rate Reduction (RFC 6937, PRR-SSRB) in SACK fast recovery, against the manual clock
/// with the segments each ACK releases asserted exactly. The sender is RecoveryTests' (RFC 6675
/// loss detection, NewReno windows, MSS 1460), first grown to a window of 20 segments.
final class ProportionalRateReductionTests: XCTestCase {
    let mss = 1460
    let start = RecoveryTests.start
    let data: (Int) -> Wire = { RecoveryTests.data($0) }

    /// Segments 0–9 sent and acknowledged one by one at 20 ms: slow start grows the window to 20
    /// segments, with segments 10–29 in flight and 30 more queued.
    func grownSender() -> Harness {
        var harness = RecoveryTests.sackSender(.rfc6675, queued: 60)
        XCTAssertEqual(harness.sent.count, 10)
        harness.now = 20 * milliseconds
        for index in 1...10 {
            harness.receive(RecoveryTests.sack(start(index)))
            XCTAssertEqual(harness.sent, [data(8 + 2 * index), data(9 + 2 * index)], "ACK of segment \(index - 1)")
        }
        XCTAssertEqual(harness.connection.congestionControl.congestionWindow, 20 * mss)
        XCTAssertEqual(harness.connection.flightSize, 20 * mss)
        return harness
    }

    /// RFC 6937's own example: a window of 20, one loss, ssthresh 10. After limited transmit's two
    /// segments, PRR sends one segment for every two delivered (the fast retransmit first), so the
    /// flight comes down to ssthresh over the recovery instead of RFC 6675's silence for half of it
    /// followed by one segment per ACK, and stays there to the end of the recovery.
    func testOneLossSendsOneSegmentPerTwoACKsAndEndsAtSSThresh() {
        var harness = grownSender()
        // Segment 10 is lost; each duplicate ACK SACKs one more of 11–29.
        var sentPerACK: [[Wire]] = []
        for sacked in 1...19 {
            harness.now += 1 * milliseconds
            harness.receive(RecoveryTests.sack(start(10), [11..<(11 + sacked)]))
            sentPerACK.append(harness.sent)
            if sacked == 3 {
                XCTAssertTrue(harness.connection.inFastRecovery)
                XCTAssertEqual(harness.connection.congestionControl.slowStartThreshold, 10 * mss)
            }
        }
        // Limited transmit (30, 31), the fast retransmit of 10 on the third, then new data on every
        // second ACK: CEIL(prr_delivered · 10/20) − prr_out is one segment on ACKs 5, 7, …, 17. On
        // the 19th pipe (10, 30–38) is down to ssthresh, and PRR-SSRB adds nothing.
        var expected: [[Wire]] = [[data(30)], [data(31)], [data(10)]]
        for ack in 4...19 {
            expected.append(ack % 2 == 1 && ack < 19 ? [data(32 + (ack - 5) / 2)] : [])
        }
        XCTAssertEqual(sentPerACK, expected)
        XCTAssertEqual(harness.connection.retransmittedSegments, 1)
        // The retransmission arrives: a partial ACK of 10–29 leaves 9 segments in flight, and SSRB
        // tops it up to ssthresh with one.
        harness.receive(RecoveryTests.sack(start(30)))
        XCTAssertEqual(harness.sent, [data(39)])
        XCTAssertTrue(harness.connection.inFastRecovery)
        XCTAssertEqual(harness.connection.flightSize, 10 * mss)
        harness.receive(RecoveryTests.sack(start(31)))
        XCTAssertEqual(harness.sent, [data(40)])
        XCTAssertEqual(harness.connection.flightSize, 10 * mss)
        // The recovery point: recovery ends with cwnd = min(ssthresh, flight + MSS) = ssthresh.
        harness.receive(RecoveryTests.sack(start(32)))
        XCTAssertFalse(harness.connection.inFastRecovery)
        XCTAssertEqual(harness.connection.congestionControl.congestionWindow, 10 * mss)
        XCTAssertEqual(harness.sent, [data(41)])
        XCTAssertEqual(harness.connection.timeoutCount, 0)
    }

    /// Twelve of the twenty segments lost (10–21), the other eight SACKed by one ACK: pipe falls to
    /// nothing, below ssthresh, and PRR-SSRB lets out what that ACK delivered plus one segment (9,
    /// where RFC 6675 alone would send ssthresh − pipe, 10, in one burst); each later ACK that
    /// delivers a segment lets two go until pipe is back at ssthresh, then one.
    func testHeavyLossClimbsBackToSSThreshByOneSegmentMoreThanDelivered() {
        var harness = grownSender()
        harness.now += 1 * milliseconds
        harness.receive(RecoveryTests.sack(start(10), [22..<30]))
        XCTAssertTrue(harness.connection.inFastRecovery)
        XCTAssertEqual(harness.connection.congestionControl.slowStartThreshold, 10 * mss)
        XCTAssertEqual(harness.sent, (10...18).map(data))
        // The resends arrive one by one: pipe (11–18) is 8 segments, so 2 go and it is back at 10.
        harness.now += 1 * milliseconds
        harness.receive(RecoveryTests.sack(start(11), [22..<30]))
        XCTAssertEqual(harness.sent, [data(19), data(20)])
        harness.receive(RecoveryTests.sack(start(12), [22..<30]))
        XCTAssertEqual(harness.sent, [data(21)])
        // Nothing more is lost: new data, one segment per segment delivered, pipe at ssthresh.
        harness.receive(RecoveryTests.sack(start(13), [22..<30]))
        XCTAssertEqual(harness.sent, [data(30)])
        XCTAssertEqual(harness.connection.retransmittedSegments, 12)
        XCTAssertEqual(harness.connection.timeoutCount, 0)
    }

    /// A recovery RACK's reordering timer starts has no ACK for PRR to be proportional to: pipe is
    /// filled up to ssthresh at once, so one more lost segment goes beside the fast retransmit (PRR
    /// alone would send that one, and its loss would leave only the retransmission timer).
    func testARecoveryTheReorderTimerStartsFillsPipeUpToSSThresh() {
        var harness = RecoveryTests.sackSender(.rack, queued: 10)
        // Segments 0–4 arrive, 5–7 do not, 8 and 9 are SACKed: too few for RACK to call 5–7 lost
        // before its reordering window (a quarter of the 10 ms RTT) has passed.
        harness.now = 20 * milliseconds
        harness.receive(RecoveryTests.sack(start(5), [8..<10]))
        XCTAssertEqual(harness.sent, [])
        XCTAssertEqual(harness.fireNext(), 22_500_000)
        // ssthresh is half the flight of five segments, 3650 bytes; pipe is empty. The fast
        // retransmit of 5 and then 6 fit below ssthresh; 7 waits for an ACK.
        XCTAssertTrue(harness.connection.inFastRecovery)
        XCTAssertEqual(harness.connection.congestionControl.slowStartThreshold, 3650)
        XCTAssertEqual(harness.connection.rackLostSegments, 3)
        XCTAssertEqual(harness.sent, [data(5), data(6)])
        // 5 arrives: PRR-SSRB lets 7 go (one segment delivered, plus one).
        harness.now = 33 * milliseconds
        harness.receive(RecoveryTests.sack(start(6), [8..<10]))
        XCTAssertEqual(harness.sent, [data(7)])
        harness.receive(RecoveryTests.sack(start(10)))
        XCTAssertFalse(harness.connection.inFastRecovery)
        XCTAssertEqual(harness.connection.retransmittedSegments, 3)
        XCTAssertEqual(harness.connection.timeoutCount, 0)
    }
}
