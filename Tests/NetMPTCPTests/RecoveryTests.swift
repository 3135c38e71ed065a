import NetMPTCP
import NetMPWire
import XCTest

/// SACK (RFC 2018, D-SACK RFC 2883), SACK-based recovery (RFC 6675), RACK-TLP (RFC 8985) and the
/// NewReno fallback, against the manual clock with the exact segments asserted.
final class RecoveryTests: XCTestCase {
    /// The first byte of full segment `index` of a sender whose data starts at 1001.
    static func start(_ index: Int) -> UInt32 { 1001 + UInt32(index) * 1460 }

    /// A SACK-permitted child (port 80), established with a 10 ms handshake RTT at t = 10 ms, that
    /// queued `queued` full segments and sent what the initial window allows (10 segments).
    static func sackSender(
        _ detection: TCPLossDetection, queued: Int, congestionControl: TCPCongestionAlgorithm = .newReno
    ) -> Harness {
        var configuration = plainConfiguration()
        configuration.noDelay = true
        configuration.lossDetection = detection
        // The windows asserted are NewReno's (loss detection is what these tests are about).
        configuration.congestionControl = congestionControl
        var harness = Harness.accepting(
            configuration, syn: incomingSYN(5000, options: TCPOptions(maximumSegmentSize: 1460, sackPermitted: true)))
        harness.now = 10 * milliseconds
        harness.receive(peer(.ack, 5001, 1001))
        harness.run { $0.send(count: queued * 1460, now: $1, into: &$2) }
        return harness
    }

    /// The peer's ACK of `ack` with SACK blocks of whole segments `first ..< end`, in the order given.
    static func sack(_ ack: UInt32, _ blocks: [Range<Int>] = []) -> TCPHeader {
        let sackBlocks = SACKBlocks(blocks.map { SACKBlock(left: start($0.lowerBound), right: start($0.upperBound)) })
        return peer(.ack, 5001, ack, options: TCPOptions(sackBlocks: sackBlocks))
    }

    /// A full data segment of ours (no PSH): a retransmission or a segment in the middle of the queue.
    static func data(_ index: Int, _ flags: TCPFlags = .ack) -> Wire {
        Wire(flags, start(index), 5001, length: 1460)
    }

    func testSACKRecoveryRepairsThreeLossesInOneWindowWithoutATimeout() {
        // RFC 6675: ten segments in flight, nothing more queued; segments 1, 4 and 7 are lost.
        var harness = Self.sackSender(.rfc6675, queued: 10)
        XCTAssertTrue(harness.connection.sackPermitted)
        XCTAssertEqual(harness.sent, (0..<9).map { Self.data($0) } + [Self.data(9, [.ack, .psh])])
        let start = Self.start
        func ack(_ header: TCPHeader) -> [Wire] {
            harness.now += 1 * milliseconds
            harness.receive(header)
            return harness.sent
        }
        XCTAssertEqual(ack(Self.sack(start(1))), [])
        // Two duplicate ACKs: 2 920 bytes SACKed above segment 1 is not yet more than 2 SMSS.
        XCTAssertEqual(ack(Self.sack(start(1), [2..<3])), [])
        XCTAssertEqual(ack(Self.sack(start(1), [2..<4])), [])
        XCTAssertFalse(harness.connection.inFastRecovery)
        // The third: segment 1 is lost by IsLost; recovery starts with its retransmission.
        XCTAssertEqual(ack(Self.sack(start(1), [5..<6, 2..<4])), [Self.data(1)])
        XCTAssertTrue(harness.connection.inFastRecovery)
        // ssthresh = FlightSize / 2 = 13 140 / 2; pipe (segments 1 resent, 4, 6–9) is over it.
        XCTAssertEqual(harness.connection.congestionControl.slowStartThreshold, 6570)
        XCTAssertEqual(ack(Self.sack(start(1), [5..<7, 2..<4])), [])
        // Segment 8 SACKed: segment 4 is lost now, and pipe (1, 7, 9) leaves room for it.
        XCTAssertEqual(ack(Self.sack(start(1), [8..<9, 5..<7, 2..<4])), [Self.data(4)])
        // Segment 9: only two segments lie above segment 7, so it is not lost by IsLost, but with no new
        // data to send NextSeg's rule 3 resends it as pipe (1, 4, 7) allows.
        XCTAssertEqual(ack(Self.sack(start(1), [8..<10, 5..<7, 2..<4])), [Self.data(7)])
        // The retransmissions arrive: partial ACKs, then everything.
        XCTAssertEqual(ack(Self.sack(start(4), [8..<10, 5..<7])), [])
        XCTAssertEqual(ack(Self.sack(start(7), [8..<10])), [])
        XCTAssertTrue(harness.connection.inFastRecovery)
        XCTAssertEqual(ack(Self.sack(start(10))), [])
        XCTAssertFalse(harness.connection.inFastRecovery)
        XCTAssertNil(harness.connection.deadline(of: .retransmission))
        XCTAssertEqual(harness.connection.timeoutCount, 0)
        XCTAssertEqual(harness.connection.retransmittedSegments, 3)
        XCTAssertEqual(harness.connection.sackRecoveryCount, 1)
        XCTAssertEqual(harness.connection.fastRetransmitCount, 1)
    }

    func testRescueRetransmissionRepairsALostTailWithoutATimeout() {
        // RFC 6675: ten segments, nothing more queued; segment 1 is lost, and so are 8 and 9, the tail.
        var harness = Self.sackSender(.rfc6675, queued: 10)
        let start = Self.start
        func ack(_ header: TCPHeader) -> [Wire] {
            harness.now += 1 * milliseconds
            harness.receive(header)
            return harness.sent
        }
        XCTAssertEqual(ack(Self.sack(start(1))), [])
        XCTAssertEqual(ack(Self.sack(start(1), [2..<3])), [])
        XCTAssertEqual(ack(Self.sack(start(1), [2..<4])), [])
        XCTAssertEqual(ack(Self.sack(start(1), [2..<5])), [Self.data(1)])
        XCTAssertEqual(ack(Self.sack(start(1), [2..<6])), [])
        // PRR-SSRB lets half a segment go: nothing.
        XCTAssertEqual(ack(Self.sack(start(1), [2..<7])), [])
        // Now a whole one. Nothing is lost by IsLost, no new data waits, and no hole lies below the
        // highest SACK but segment 1's (resent): NextSeg rule 4 rescues the tail, segment 9.
        XCTAssertEqual(ack(Self.sack(start(1), [2..<8])), [Self.data(9, [.ack, .psh])])
        // Segment 1's resend arrives: a partial ACK. The one rescue of this recovery has gone.
        XCTAssertEqual(ack(Self.sack(start(8))), [])
        // The rescued 9 arrives: 8 is a hole below the highest SACK, which rule 3 resends.
        XCTAssertEqual(ack(Self.sack(start(8), [9..<10])), [Self.data(8)])
        XCTAssertEqual(ack(Self.sack(start(10))), [])
        XCTAssertFalse(harness.connection.inFastRecovery)
        XCTAssertNil(harness.connection.nextDeadline)
        XCTAssertEqual(harness.connection.timeoutCount, 0)
        XCTAssertEqual(harness.connection.retransmittedSegments, 3)
    }

    func testRACKRepairsThreeLossesInOneWindowWithoutATimeout() {
        // RACK (the default): the same ten segments, 1, 4 and 7 lost.
        var harness = Self.sackSender(.rack, queued: 10)
        let start = Self.start
        harness.now = 20 * milliseconds
        harness.receive(Self.sack(start(1)))
        XCTAssertEqual(harness.sent, [])
        // Two SACKed segments: segment 1 may only be reordered, so RACK waits a quarter of the
        // minimum RTT (10 ms) past its RTT before calling it lost.
        harness.receive(Self.sack(start(1), [2..<4]))
        XCTAssertEqual(harness.sent, [])
        XCTAssertEqual(harness.connection.deadline(of: .reorderTimeout), 22_500_000)
        // Four SACKed segments at 21 ms: the reordering window is zero, and segments 1 and 4 were sent
        // before segment 6 at least an RTT ago. Segment 1 goes at once; pipe (1, 7–9) leaves no room.
        harness.now = 21 * milliseconds
        harness.receive(Self.sack(start(1), [5..<7, 2..<4]))
        XCTAssertEqual(harness.sent, [Self.data(1)])
        XCTAssertEqual(harness.connection.rackLostSegments, 2)
        XCTAssertNil(harness.connection.deadline(of: .reorderTimeout))
        // Segments 8 and 9 SACKed: segment 7 is lost too, and pipe (the resend of 1) now lets 4 and 7 go.
        harness.now = 22 * milliseconds
        harness.receive(Self.sack(start(1), [8..<10, 5..<7, 2..<4]))
        XCTAssertEqual(harness.sent, [Self.data(4), Self.data(7)])
        XCTAssertEqual(harness.connection.rackLostSegments, 3)
        harness.now = 31 * milliseconds
        harness.receive(Self.sack(start(4), [8..<10, 5..<7]))
        XCTAssertEqual(harness.sent, [])
        harness.now = 32 * milliseconds
        harness.receive(Self.sack(start(10)))
        XCTAssertEqual(harness.sent, [])
        XCTAssertFalse(harness.connection.inFastRecovery)
        XCTAssertNil(harness.connection.nextDeadline)
        XCTAssertEqual(harness.connection.timeoutCount, 0)
        XCTAssertEqual(harness.connection.tailLossProbeCount, 0)
        XCTAssertEqual(harness.connection.retransmittedSegments, 3)
        XCTAssertEqual(harness.connection.sackRecoveryCount, 1)
    }

    func testRACKReorderingTimerFindsALossTwoSACKsCannotProve() {
        // Segment 7 is lost and only two segments follow it: too few for a duplicate-ACK threshold.
        var harness = Self.sackSender(.rack, queued: 10)
        let start = Self.start
        harness.now = 20 * milliseconds
        harness.receive(Self.sack(start(7), [8..<10]))
        XCTAssertEqual(harness.sent, [])
        XCTAssertFalse(harness.connection.inFastRecovery)
        // RTT 10 ms after its sending plus a reordering window of 10 ms / 4: the timer says lost.
        XCTAssertEqual(harness.connection.deadline(of: .reorderTimeout), 22_500_000)
        XCTAssertEqual(harness.fireNext(), 22_500_000)
        XCTAssertEqual(harness.sent, [Self.data(7)])
        XCTAssertTrue(harness.connection.inFastRecovery)
        XCTAssertEqual(harness.connection.rackLostSegments, 1)
        XCTAssertEqual(harness.connection.timeoutCount, 0)
    }

    func testAfterATimeoutOnlyWhatWasNotSACKedIsResent() {
        // RFC 6675: segment 0 is lost; 1 and 2 are SACKed, too few to start a recovery.
        var harness = Self.sackSender(.rfc6675, queued: 10)
        let start = Self.start
        harness.now = 20 * milliseconds
        harness.receive(Self.sack(start(0), [1..<3]))
        XCTAssertEqual(harness.sent, [])
        XCTAssertFalse(harness.connection.inFastRecovery)
        // The timeout collapses the window to one segment: the first unSACKed one.
        XCTAssertEqual(harness.fireNext(), 210 * milliseconds)
        XCTAssertEqual(harness.sent, [Self.data(0)])
        XCTAssertEqual(harness.connection.timeoutCount, 1)
        // Its ACK covers the SACKed 1 and 2; slow start (byte counting, L = 2 SMSS) makes the window
        // three segments: 3, 4 and 5 go again, never 1 and 2.
        harness.now = 230 * milliseconds
        harness.receive(Self.sack(start(3)))
        XCTAssertEqual(harness.connection.congestionControl.congestionWindow, 3 * 1460)
        XCTAssertEqual(harness.sent, [Self.data(3), Self.data(4), Self.data(5)])
        XCTAssertEqual(harness.connection.retransmittedSegments, 4)
    }

    func testRACKDetectsALostRetransmission() {
        // Twenty segments queued, ten sent at t = 10 ms; segment 1 is lost, and so is its first resend.
        var harness = Self.sackSender(.rack, queued: 20)
        let start = Self.start
        harness.now = 20 * milliseconds
        harness.receive(Self.sack(start(1)))
        XCTAssertEqual(harness.sent, [Self.data(10), Self.data(11)], "slow start: ACK of one segment sends two")
        // Segments 2–4 SACKed at 20 ms: three SACKed segments and no reordering seen make RACK's
        // reordering window zero; segment 1 went before segment 4 and an RTT has passed, so it is lost.
        // ssthresh = FlightSize (11 segments) / 2; PRR (RFC 6937) lets out half of the three segments
        // delivered, rounded up to whole segments: the resend and one new segment.
        harness.receive(Self.sack(start(1), [2..<5]))
        XCTAssertEqual(harness.sent, [Self.data(1), Self.data(12)])
        XCTAssertTrue(harness.connection.inFastRecovery)
        XCTAssertEqual(harness.connection.rackLostSegments, 1)
        XCTAssertEqual(harness.connection.congestionControl.slowStartThreshold, 8030)
        // Segments 5–11 SACKed at 22 ms leave the resend and 12 in pipe, below ssthresh: PRR-SSRB
        // fills it up to ssthresh in whole segments, three. Segments 10 and 11 went out at 20 ms
        // too, but before the resend, so they do not make it lost.
        harness.now = 22 * milliseconds
        harness.receive(Self.sack(start(1), [2..<12]))
        XCTAssertEqual(harness.sent, (13..<16).map { Self.data($0) })
        XCTAssertNil(harness.connection.deadline(of: .reorderTimeout))
        // Segment 12 (sent at 20 ms, after the resend) is SACKed at 32 ms but segment 1's resend is
        // not: RACK marks the retransmission lost and sends it again, with no timeout; pipe (13–15)
        // leaves room up to ssthresh for one more new segment.
        harness.now = 32 * milliseconds
        harness.receive(Self.sack(start(1), [2..<13]))
        XCTAssertEqual(harness.sent, [Self.data(1), Self.data(16)])
        XCTAssertEqual(harness.connection.rackLostSegments, 2)
        XCTAssertEqual(harness.connection.retransmittedSegments, 2)
        XCTAssertEqual(harness.connection.timeoutCount, 0)
    }

    func testTailLossProbeRecoversATailLossWithoutATimeout() {
        // Ten segments, nothing more queued; the last two are lost.
        var harness = Self.sackSender(.rack, queued: 10)
        let start = Self.start
        harness.now = 20 * milliseconds
        harness.receive(Self.sack(start(8)))
        XCTAssertEqual(harness.sent, [])
        // SRTT 10 ms: the probe timeout is 2 · SRTT after the ACK, well before the RTO at 220 ms.
        XCTAssertEqual(harness.connection.deadline(of: .lossProbe), 40 * milliseconds)
        XCTAssertEqual(harness.connection.deadline(of: .retransmission), 220 * milliseconds)
        // The probe: no new data, so the last segment again.
        XCTAssertEqual(harness.fireNext(), 40 * milliseconds)
        XCTAssertEqual(harness.sent, [Self.data(9, [.ack, .psh])])
        XCTAssertEqual(harness.connection.tailLossProbeCount, 1)
        XCTAssertEqual(harness.connection.deadline(of: .retransmission), 240 * milliseconds)
        // Its SACK at 50 ms shows segment 8, sent 40 ms before it, lost: fast recovery resends it.
        harness.now = 50 * milliseconds
        harness.receive(Self.sack(start(8), [9..<10]))
        XCTAssertEqual(harness.sent, [Self.data(8)])
        XCTAssertTrue(harness.connection.inFastRecovery)
        harness.now = 60 * milliseconds
        harness.receive(Self.sack(start(10)))
        XCTAssertEqual(harness.sent, [])
        XCTAssertFalse(harness.connection.inFastRecovery)
        XCTAssertEqual(harness.actions.acknowledgedBytes, 2 * 1460)
        XCTAssertNil(harness.connection.nextDeadline)
        XCTAssertEqual(harness.connection.timeoutCount, 0)
        XCTAssertEqual(harness.connection.retransmittedSegments, 2)
    }

    func testARepairingProbeReducesTheWindowAndADuplicatedOneDoesNot() {
        // Segment 9 is lost, and so is the ACK of segment 8: the probe resends 9 and repairs the loss.
        var repaired = Self.sackSender(.rack, queued: 10)
        repaired.now = 20 * milliseconds
        repaired.receive(Self.sack(Self.start(8)))
        XCTAssertEqual(repaired.fireNext(), 40 * milliseconds)
        XCTAssertEqual(repaired.sent, [Self.data(9, [.ack, .psh])])
        // The ACK of exactly the probe could be the original's: no verdict yet.
        repaired.now = 50 * milliseconds
        repaired.receive(Self.sack(Self.start(10)))
        XCTAssertEqual(repaired.connection.congestionControl.slowStartThreshold, Int.max)
        let window = repaired.connection.congestionControl.congestionWindow
        // Slow start: 10 segments, 2 more for the first ACK; by the second the sender had run out
        // of data (2 segments in flight of 12), so RFC 7661 keeps the window as it was.
        XCTAssertEqual(window, 12 * 1460)
        // An ACK beyond it with no D-SACK on the way: the probe repaired a loss; the window halves.
        repaired.run { $0.send(count: 1460, now: $1, into: &$2) }
        XCTAssertEqual(repaired.sent, [Self.data(10, [.ack, .psh])])
        repaired.now = 60 * milliseconds
        repaired.receive(Self.sack(Self.start(11)))
        XCTAssertEqual(repaired.connection.congestionControl.slowStartThreshold, window / 2)
        XCTAssertEqual(repaired.connection.tailLossProbeCount, 1)

        // Segment 9 was only slow to be acknowledged: the peer D-SACKs the probe; nothing changes.
        var duplicated = Self.sackSender(.rack, queued: 10)
        duplicated.now = 20 * milliseconds
        duplicated.receive(Self.sack(Self.start(8)))
        duplicated.fireNext()
        duplicated.now = 45 * milliseconds
        duplicated.receive(Self.sack(Self.start(10)))
        duplicated.now = 50 * milliseconds
        duplicated.receive(Self.sack(Self.start(10), [9..<10]))
        duplicated.run { $0.send(count: 1460, now: $1, into: &$2) }
        duplicated.now = 60 * milliseconds
        duplicated.receive(Self.sack(Self.start(11)))
        XCTAssertEqual(duplicated.connection.congestionControl.slowStartThreshold, Int.max)
        XCTAssertEqual(duplicated.connection.tailLossProbeCount, 1)
    }

    func testNoProbeOrRetransmissionGoesIntoAClosedWindow() {
        // The peer takes eight segments and closes its window: two are still on their way.
        var harness = Self.sackSender(.rack, queued: 10)
        harness.now = 20 * milliseconds
        harness.receive(peer(.ack, 5001, Self.start(8), window: 0))
        XCTAssertNil(harness.connection.deadline(of: .lossProbe), "a probe could not be taken")
        // They were lost: the timeout resends nothing while the window stays shut.
        XCTAssertEqual(harness.fireNext(), 220 * milliseconds)
        XCTAssertEqual(harness.sent, [])
        XCTAssertEqual(harness.connection.timeoutCount, 1)
        XCTAssertNotNil(harness.connection.deadline(of: .retransmission))
        // The window opens: the first lost segment goes (the timeout left a window of one segment).
        harness.now = 300 * milliseconds
        harness.receive(peer(.ack, 5001, Self.start(8)))
        XCTAssertEqual(harness.sent, [Self.data(8)])
        XCTAssertEqual(harness.connection.tailLossProbeCount, 0)
    }

    /// An established SACK receiver (our ISN 1000, the peer's 5000), timestamps as asked.
    static func sackReceiver(timestamps: Bool = false) -> Harness {
        var configuration = plainConfiguration()
        configuration.timestamps = timestamps
        let stamps = timestamps ? TCPTimestamps(value: 1, echoReply: 0) : nil
        var harness = Harness.accepting(
            configuration,
            syn: incomingSYN(
                5000, options: TCPOptions(maximumSegmentSize: 1460, sackPermitted: true, timestamps: stamps)))
        harness.receive(peer(.ack, 5001, 1001, options: TCPOptions(timestamps: stamps)))
        return harness
    }

    func testReceiverReportsSACKBlocksMostRecentFirstAndADuplicateSACK() {
        var harness = Self.sackReceiver()
        func blocks(_ sequence: UInt32, _ count: Int) -> [[UInt32]] {
            harness.receive(peer(.ack, sequence, 1001), payload: Array(repeating: 7, count: count))
            XCTAssertEqual(harness.actions.segments.count, 1)
            return harness.actions.segments.first?.header.options.sackBlocks.map { [$0.left, $0.right] } ?? []
        }
        // Segments of 100 bytes with a hole before each: every block is reported, newest first.
        XCTAssertEqual(blocks(5101, 100), [[5101, 5201]])
        XCTAssertEqual(blocks(5301, 100), [[5301, 5401], [5101, 5201]])
        XCTAssertEqual(blocks(5501, 100), [[5501, 5601], [5301, 5401], [5101, 5201]])
        XCTAssertEqual(blocks(5701, 100), [[5701, 5801], [5501, 5601], [5301, 5401], [5101, 5201]])
        // Four blocks fit without timestamps: the oldest one is left out.
        XCTAssertEqual(blocks(5901, 100), [[5901, 6001], [5701, 5801], [5501, 5601], [5301, 5401]])
        // Filling the gap between two blocks reports the merged block first.
        XCTAssertEqual(blocks(5201, 100), [[5101, 5401], [5901, 6001], [5701, 5801], [5501, 5601]])
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 5001)])
        // A duplicate of out-of-order data: a D-SACK, then the block holding it (RFC 2883 4.1.2).
        XCTAssertEqual(blocks(5501, 100), [[5501, 5601], [5501, 5601], [5101, 5401], [5901, 6001]])
        // The hole at the front fills: the remaining blocks, the D-SACK reported only once.
        XCTAssertEqual(blocks(5001, 100), [[5501, 5601], [5901, 6001], [5701, 5801]])
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 5401)])
        XCTAssertEqual(harness.actions.deliveredByteCount, 400)
        // A duplicate of data already delivered: a D-SACK below the cumulative ACK (RFC 2883 4.1.1).
        XCTAssertEqual(blocks(5001, 100), [[5001, 5101], [5501, 5601], [5901, 6001], [5701, 5801]])
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 5401)])
        // A partly old segment: only the old part is reported, and its new bytes are taken.
        XCTAssertEqual(blocks(5351, 100), [[5351, 5401], [5501, 5601], [5901, 6001], [5701, 5801]])
        XCTAssertEqual(harness.actions.deliveredByteCount, 50)
    }

    func testReceiverReportsThreeBlocksBesideTimestamps() {
        var harness = Self.sackReceiver(timestamps: true)
        XCTAssertTrue(harness.connection.timestampsEnabled)
        for index in 0..<4 {
            let stamps = TCPTimestamps(value: 2 + UInt32(index), echoReply: 0)
            harness.receive(
                peer(.ack, 5101 + UInt32(index) * 200, 1001, options: TCPOptions(timestamps: stamps)),
                payload: Array(repeating: 7, count: 100))
        }
        let options = harness.actions.segments.first?.header.options
        XCTAssertEqual(
            options?.sackBlocks.map { [$0.left, $0.right] }, [[5701, 5801], [5501, 5601], [5301, 5401]])
        XCTAssertEqual(options?.encodable.sackBlocks.count, 3, "all three fit beside the timestamps")
    }

    func testWithoutSACKTheSenderUsesNewReno() {
        // This end offers SACK; the peer does not, so NewReno recovers and ACKs carry no blocks.
        var configuration = plainConfiguration()
        configuration.noDelay = true
        configuration.congestionControl = .newReno
        var harness = ConnectionTests.established(configuration, rtt: 10 * milliseconds)
        XCTAssertFalse(harness.connection.sackPermitted)
        harness.run { $0.send(count: 10 * 1460, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent.count, 10)
        // SACK blocks from a peer that never negotiated them are ignored: plain duplicate ACKs.
        for count in 1...2 {
            harness.receive(Self.sack(Self.start(0), [1..<(1 + count)]))
            XCTAssertEqual(harness.sent, [], "no limited transmit and no recovery yet")
        }
        harness.receive(Self.sack(Self.start(0), [1..<4]))
        XCTAssertEqual(harness.sent, [Self.data(0)])
        XCTAssertTrue(harness.connection.inFastRecovery)
        XCTAssertEqual(harness.connection.congestionControl.congestionWindow, 7300 + 3 * 1460, "window inflation")
        XCTAssertEqual(harness.connection.sackRecoveryCount, 0)
        // Out-of-order data is acknowledged without SACK blocks.
        harness.receive(peer(.ack, 5101, Self.start(0)), payload: Array(repeating: 1, count: 100))
        XCTAssertEqual(harness.sent, [Wire(.ack, Self.start(10), 5001)])
        XCTAssertEqual(harness.actions.segments.first?.header.options.sackBlocks.count, 0)
    }

    func testDuplicateSACKUndoesASpuriousFastRetransmit() {
        // Segment 1 is only delayed: SACKs of 2–4 make RACK resend it; the original then arrives,
        // and the peer's D-SACK of the resend shows the recovery was spurious: the window comes back.
        var harness = Self.sackSender(.rack, queued: 10)
        let start = Self.start
        harness.now = 20 * milliseconds
        harness.receive(Self.sack(start(1)))
        let before = harness.connection.congestionControl.congestionWindow
        harness.receive(Self.sack(start(1), [2..<5]))
        XCTAssertEqual(harness.sent, [Self.data(1)])
        XCTAssertLessThan(harness.connection.congestionControl.slowStartThreshold, before)
        harness.now = 21 * milliseconds
        harness.receive(Self.sack(start(10)))
        XCTAssertFalse(harness.connection.inFastRecovery)
        harness.now = 30 * milliseconds
        harness.receive(Self.sack(start(10), [1..<2]))
        XCTAssertEqual(harness.connection.spuriousRecoveryCount, 1)
        XCTAssertEqual(harness.connection.congestionControl.congestionWindow, before)
        XCTAssertEqual(harness.connection.congestionControl.slowStartThreshold, Int.max)
    }

    /// Lossy, reordering, duplicating transfers both ways in each recovery mode: byte-exact, and
    /// each mode recovers the way it should (SACK modes by the scoreboard, the plain one by NewReno).
    func testLossyTransfersInEveryRecoveryMode() {
        let impairments = Simulation.Impairments(lossPermille: 50, duplicatePermille: 10, reorderPermille: 50)
        for mode in ["rack", "rfc6675", "no SACK"] {
            var configuration = TCPConfiguration()
            configuration.lossDetection = mode == "rfc6675" ? .rfc6675 : .rack
            configuration.sackPermitted = mode != "no SACK"
            for seed: UInt64 in 41...42 {
                var simulation = Simulation(
                    seed: seed, bytes: (1 << 20, 1 << 20), impairments: impairments, configuration: configuration)
                let context = "\(mode), seed \(seed)"
                XCTAssertTrue(simulation.run(maximumSteps: 400_000), "did not finish: \(context)")
                for index in 0..<2 {
                    var expected = FNV1a()
                    expected.add(simulation.ends[index].stream)
                    let peer = simulation.ends[1 - index]
                    XCTAssertEqual(peer.receivedCount, simulation.ends[index].stream.count, context)
                    XCTAssertEqual(peer.received, expected, "stream \(index) corrupted: \(context)")
                    XCTAssertNil(peer.error, context)
                }
                XCTAssertEqual(simulation.rangeViolations, 0, context)
                let connections = simulation.ends.map(\.connection)
                let sackRecoveries = connections.map(\.sackRecoveryCount).reduce(0, +)
                let probes = connections.map(\.tailLossProbeCount).reduce(0, +)
                let rackLost = connections.map(\.rackLostSegments).reduce(0, +)
                XCTAssertEqual(connections.allSatisfy(\.sackPermitted), mode != "no SACK", context)
                XCTAssertEqual(sackRecoveries > 0, mode != "no SACK", context)
                XCTAssertEqual(rackLost > 0, mode == "rack", context)
                if mode != "rack" {
                    XCTAssertEqual(probes, 0, "tail loss probes are RACK-TLP's: \(context)")
                }
                print(
                    "\(context): retransmitted \(connections.map(\.retransmittedSegments)), timeouts "
                        + "\(connections.map(\.timeoutCount)), SACK recoveries \(sackRecoveries), RACK lost \(rackLost), "
                        + "probes \(probes), undone \(connections.map(\.spuriousRecoveryCount)), "
                        + "\(simulation.now / milliseconds) ms simulated")
            }
        }
    }

}
