import NetMPTCP
import NetMPWire
import XCTest

/// Opening and closing: half-close, linger 0, close with unread data, TIME_WAIT, simultaneous open
/// and close, RSTs in SYN_SENT, and the pure RST and listen replies.
final class ConnectionTests: XCTestCase {
    /// An established child (port 80): our ISN 1000, the peer's 5000, handshake ACK at `rtt`.
    static func established(
        _ configuration: TCPConfiguration = plainConfiguration(), rtt: Int64 = 0, window: UInt16 = 60_000
    ) -> Harness {
        var harness = Harness.accepting(configuration)
        harness.now = rtt
        harness.receive(peer(.ack, 5001, 1001, window: window))
        return harness
    }

    func testActiveOpenHandshake() {
        var harness = Harness.connecting()
        XCTAssertEqual(harness.sent, [Wire(.syn, 1000)])
        XCTAssertEqual(harness.actions.segments.first?.header.options.maximumSegmentSize, 1460)
        XCTAssertEqual(harness.state, .synSent)
        harness.receive(peer([.syn, .ack], 5000, 1001, options: TCPOptions(maximumSegmentSize: 1400)))
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 5001)])
        XCTAssertTrue(harness.actions.established)
        XCTAssertEqual(harness.connection.maximumSegmentSize, 1400)
    }

    func testDataAndFINQueuedBeforeTheHandshakeGoOutWithItsACK() {
        var harness = Harness.connecting()
        harness.run { $0.send(count: 100, now: $1, into: &$2) }
        harness.run { $0.shutdownWrite(now: $1, into: &$2) }
        XCTAssertEqual(harness.sent, [])
        XCTAssertEqual(harness.state, .synSent)
        harness.receive(peer([.syn, .ack], 5000, 1001))
        XCTAssertEqual(harness.sent, [Wire([.ack, .psh, .fin], 1001, 5001, length: 100)])
        XCTAssertEqual(harness.actions.segments.first?.sendQueueOffset, 0)
        XCTAssertTrue(harness.actions.established)
        XCTAssertEqual(harness.state, .finWait1)
    }

    func testResetInSYNSentOnlyWhenItAcknowledgesOurSYN() {
        var harness = Harness.connecting()
        harness.receive(peer([.rst, .ack], 0, 1500))
        XCTAssertEqual(harness.sent, [])
        XCTAssertEqual(harness.state, .synSent)
        harness.receive(peer(.rst, 0))
        XCTAssertEqual(harness.state, .synSent)
        harness.receive(peer([.rst, .ack], 0, 1001))
        XCTAssertEqual(harness.state, .closed)
        XCTAssertEqual(harness.actions.error, .connectionRefused)
        XCTAssertTrue(harness.actions.closed)
    }

    func testHalfCloseBothWays() {
        // We shut down writing and keep reading.
        var harness = ConnectionTests.established()
        harness.run { $0.shutdownWrite(now: $1, into: &$2) }
        XCTAssertEqual(harness.sent, [Wire([.fin, .ack], 1001, 5001)])
        harness.receive(peer(.ack, 5001, 1002))
        XCTAssertEqual(harness.state, .finWait2)
        XCTAssertNil(harness.connection.deadline(of: .finWait2), "shutdown is not close: no FIN_WAIT_2 timeout")
        harness.receive(peer([.ack, .psh], 5001, 1002), payload: Array(repeating: 1, count: 100))
        XCTAssertEqual(harness.actions.deliveredByteCount, 100)
        XCTAssertEqual(harness.sent, [Wire(.ack, 1002, 5101)])
        harness.receive(peer([.fin, .ack], 5101, 1002))
        XCTAssertEqual(harness.sent, [Wire(.ack, 1002, 5102)])
        XCTAssertTrue(harness.actions.endOfStream)
        XCTAssertEqual(harness.state, .timeWait)

        // The peer shuts down writing and we keep sending.
        var other = ConnectionTests.established()
        other.receive(peer([.fin, .ack], 5001, 1001))
        XCTAssertEqual(other.state, .closeWait)
        other.run { $0.send(count: 300, now: $1, into: &$2) }
        XCTAssertEqual(other.sent, [Wire([.ack, .psh], 1001, 5002, length: 300)])
        other.run { $0.close(now: $1, into: &$2) }
        XCTAssertEqual(other.sent, [Wire([.fin, .ack], 1301, 5002)])
        XCTAssertEqual(other.state, .lastAck)
        other.receive(peer(.ack, 5002, 1302))
        XCTAssertEqual(other.actions.acknowledgedBytes, 300)
        XCTAssertTrue(other.actions.closed)
        XCTAssertEqual(other.state, .closed)
    }

    func testFinWait2TimesOutAfterClose() {
        var harness = ConnectionTests.established()
        harness.now = 1 * seconds
        harness.run { $0.close(now: $1, into: &$2) }
        harness.receive(peer(.ack, 5001, 1002))
        XCTAssertEqual(harness.state, .finWait2)
        XCTAssertEqual(harness.connection.deadline(of: .finWait2), 61 * seconds)
        harness.advance(to: 60 * seconds)
        XCTAssertEqual(harness.state, .finWait2)
        harness.advance(to: 61 * seconds)
        XCTAssertEqual(harness.state, .closed)
        XCTAssertTrue(harness.actions.closed)
        XCTAssertEqual(harness.sent, [])
    }

    func testLingerZeroSendsReset() {
        var harness = ConnectionTests.established()
        harness.run { $0.send(count: 500, now: $1, into: &$2) }
        harness.run { $0.abort(now: $1, into: &$2) }
        XCTAssertEqual(harness.sent, [Wire([.rst, .ack], 1501, 5001)])
        XCTAssertEqual(harness.state, .closed)
        XCTAssertNil(harness.connection.nextDeadline)
    }

    func testCloseWithUnreadDataResets() {
        var harness = ConnectionTests.established()
        harness.receive(peer([.ack, .psh], 5001, 1001), payload: Array(repeating: 9, count: 10))
        harness.run { $0.close(now: $1, into: &$2) }
        XCTAssertEqual(harness.sent, [Wire([.rst, .ack], 1001, 5011)])
        XCTAssertTrue(harness.actions.closed)

        // The same after the application read the data is a graceful close.
        var read = ConnectionTests.established()
        read.receive(peer([.ack, .psh], 5001, 1001), payload: Array(repeating: 9, count: 10))
        read.run { $0.received(count: 10, now: $1, into: &$2) }
        read.run { $0.close(now: $1, into: &$2) }
        XCTAssertEqual(read.sent, [Wire([.fin, .ack], 1001, 5011)])
        XCTAssertEqual(read.state, .finWait1)
    }

    func testTimeWaitLastsTwoMSLAndRestartsOnRetransmittedFIN() {
        var configuration = plainConfiguration()
        configuration.maximumSegmentLifetime = 1 * seconds
        var harness = ConnectionTests.established(configuration)
        harness.run { $0.close(now: $1, into: &$2) }
        harness.receive(peer(.ack, 5001, 1002))
        harness.now = 100 * milliseconds
        harness.receive(peer([.fin, .ack], 5001, 1002))
        XCTAssertTrue(harness.actions.enteredTimeWait)
        XCTAssertEqual(harness.connection.deadline(of: .timeWait), 2_100 * milliseconds)
        // The peer lost our ACK and sends its FIN again: ACK it and restart the 2 MSL.
        harness.now = 600 * milliseconds
        harness.receive(peer([.fin, .ack], 5001, 1002))
        XCTAssertEqual(harness.sent, [Wire(.ack, 1002, 5002)])
        XCTAssertEqual(harness.connection.deadline(of: .timeWait), 2_600 * milliseconds)
        harness.advance(to: 2_599 * milliseconds)
        XCTAssertEqual(harness.state, .timeWait)
        harness.advance(to: 2_600 * milliseconds)
        XCTAssertEqual(harness.state, .closed)
        XCTAssertTrue(harness.actions.closed)
    }

    func testTimeWaitReuseDecision() {
        var configuration = plainConfiguration()
        configuration.maximumSegmentLifetime = 1 * seconds
        var harness = ConnectionTests.established(configuration)
        harness.run { $0.close(now: $1, into: &$2) }
        harness.receive(peer(.ack, 5001, 1002))
        harness.receive(peer([.fin, .ack], 5001, 1002))
        guard let record = harness.connection.timeWaitRecord() else { return XCTFail("no TIME_WAIT record") }
        XCTAssertEqual(record.receiveNext, SequenceNumber(5002))
        XCTAssertEqual(record.sendNext, SequenceNumber(1002))
        XCTAssertEqual(record.deadline, 2 * seconds)
        XCTAssertNil(record.recentTimestamp)
        XCTAssertTrue(record.admits(incomingSYN(6000)))
        XCTAssertFalse(record.admits(incomingSYN(5002)))
        XCTAssertFalse(record.admits(incomingSYN(4000)))
        var synAck = incomingSYN(6000)
        synAck.flags = [.syn, .ack]
        XCTAssertFalse(record.admits(synAck))
        // With timestamps the newer timestamp decides, whatever the sequence number.
        let stamped = TCPTimeWait(
            receiveNext: SequenceNumber(5002), sendNext: SequenceNumber(1002), recentTimestamp: 0xFFFF_FFF0,
            deadline: 0)
        let newer = TCPOptions(timestamps: TCPTimestamps(value: 5, echoReply: 0))
        let older = TCPOptions(timestamps: TCPTimestamps(value: 0xFFFF_FF00, echoReply: 0))
        XCTAssertTrue(stamped.admits(incomingSYN(100, options: newer)))
        XCTAssertFalse(stamped.admits(incomingSYN(9000, options: older)))
        XCTAssertTrue(stamped.admits(incomingSYN(9000)))
        // The same timestamp (a new SYN within the same millisecond): the sequence number decides.
        let same = TCPOptions(timestamps: TCPTimestamps(value: 0xFFFF_FFF0, echoReply: 0))
        XCTAssertTrue(stamped.admits(incomingSYN(9000, options: same)))
        XCTAssertFalse(stamped.admits(incomingSYN(4000, options: same)))
        // The new incarnation's ISN lies beyond what the old one sent.
        XCTAssertEqual(record.initialSequenceNumber(replacing: SequenceNumber(9000)), SequenceNumber(9000))
        XCTAssertEqual(record.initialSequenceNumber(replacing: SequenceNumber(500)), SequenceNumber(129_002))
    }

    func testSimultaneousOpen() {
        var a = Harness.connecting()
        var b = Harness(
            Connection(
                configuration: plainConfiguration(), localPort: 80, remotePort: 40000,
                initialSequenceNumber: SequenceNumber(5000)))
        b.run { $0.connect(now: $1, into: &$2) }
        XCTAssertEqual(a.sent, [Wire(.syn, 1000)])
        XCTAssertEqual(b.sent, [Wire(.syn, 5000)])
        let synA = a.actions.segments[0].header
        let synB = b.actions.segments[0].header
        a.receive(synB)
        b.receive(synA)
        XCTAssertEqual(a.sent, [Wire([.syn, .ack], 1000, 5001)])
        XCTAssertEqual(b.sent, [Wire([.syn, .ack], 5000, 1001)])
        XCTAssertEqual([a.state, b.state], [.synReceived, .synReceived])
        let synAckA = a.actions.segments[0].header
        let synAckB = b.actions.segments[0].header
        a.receive(synAckB)
        b.receive(synAckA)
        XCTAssertEqual(a.sent, [Wire(.ack, 1001, 5001)])
        XCTAssertEqual(b.sent, [Wire(.ack, 5001, 1001)])
        XCTAssertEqual([a.state, b.state], [.established, .established])
        XCTAssertTrue(a.actions.established && b.actions.established)
    }

    func testResetDuringSimultaneousOpenIsARefusal() {
        var harness = Harness.connecting()
        harness.receive(peer(.syn, 5000))
        XCTAssertEqual(harness.state, .synReceived)
        XCTAssertFalse(harness.connection.passiveOpen)
        harness.receive(peer(.rst, 5001))
        XCTAssertEqual(harness.actions.error, .connectionRefused)
        XCTAssertEqual(harness.state, .closed)
    }

    func testSimultaneousClose() {
        var a = ConnectionTests.established()
        var b = Harness.connecting()
        b.receive(peer([.syn, .ack], 5000, 1001))
        // a is port 80 with ISN 1000 and b port 40000 with ISN 1000 too; their sequence spaces differ
        // by the peer ISN each was given: a expects 5001 from b, b expects 5001 from a (see `peer`).
        a.run { $0.close(now: $1, into: &$2) }
        b.run { $0.close(now: $1, into: &$2) }
        XCTAssertEqual(a.sent, [Wire([.fin, .ack], 1001, 5001)])
        XCTAssertEqual(b.sent, [Wire([.fin, .ack], 1001, 5001)])
        a.receive(peer([.fin, .ack], 5001, 1001))
        XCTAssertEqual(a.state, .closing)
        XCTAssertEqual(a.sent, [Wire(.ack, 1002, 5002)])
        a.receive(peer(.ack, 5002, 1002))
        XCTAssertEqual(a.state, .timeWait)
        XCTAssertTrue(a.actions.enteredTimeWait)
        b.receive(peer([.fin, .ack], 5001, 1001))
        b.receive(peer(.ack, 5002, 1002))
        XCTAssertEqual(b.state, .timeWait)
    }

    func testSYNReceivedAnswersARepeatedSYNWithItsSYNACK() {
        var harness = Harness.accepting()
        XCTAssertEqual(harness.sent, [Wire([.syn, .ack], 1000, 5001)])
        harness.receive(incomingSYN(5000))
        XCTAssertEqual(harness.sent, [Wire([.syn, .ack], 1000, 5001)])
        XCTAssertEqual(harness.state, .synReceived)
    }

    func testUrgentDataIsTreatedAsOrdinaryData() {
        var harness = ConnectionTests.established()
        var urgent = peer([.ack, .urg, .psh], 5001, 1001)
        urgent.urgentPointer = 60_000
        harness.receive(urgent, payload: [1, 2, 3])
        XCTAssertEqual(harness.actions.delivered.map(Array.init), [[1, 2, 3]])
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 5004)])
    }

    func testClosedPortReplies() {
        let data = peer([.psh, .fin], 7000)
        XCTAssertEqual(
            TCPReset.forClosedPort(data, payloadLength: 10).map {
                Wire($0.flags, $0.sequenceNumber, $0.acknowledgmentNumber)
            },
            Wire([.rst, .ack], 0, 7011))
        let reply = TCPReset.forClosedPort(peer(.ack, 7000, 1234), payloadLength: 0)
        XCTAssertEqual(reply.map { Wire($0.flags, $0.sequenceNumber, $0.acknowledgmentNumber) }, Wire(.rst, 1234, 0))
        XCTAssertEqual(reply?.sourcePort, 40000)
        XCTAssertEqual(reply?.destinationPort, 80)
        XCTAssertNil(TCPReset.forClosedPort(peer(.rst, 1), payloadLength: 0))
        XCTAssertEqual(TCPListener.decide(incomingSYN(1), payloadLength: 0), .accept)
        XCTAssertEqual(TCPListener.decide(peer(.rst, 1), payloadLength: 0), .ignore)
        XCTAssertEqual(TCPListener.decide(peer(.fin, 1), payloadLength: 0), .ignore)
        if case .reset(let header) = TCPListener.decide(peer(.ack, 1, 77), payloadLength: 0) {
            XCTAssertEqual(Wire(header.flags, header.sequenceNumber, header.acknowledgmentNumber), Wire(.rst, 77, 0))
        } else {
            XCTFail("an ACK at a listen socket must be reset")
        }
    }

    func testOutOfOrderSegmentsAreMergedWhenTheHoleFills() {
        var harness = ConnectionTests.established()
        harness.receive(peer(.ack, 5201, 1001), payload: Array(repeating: 3, count: 100))
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 5001)])
        // Overlapping the first out-of-order segment: only the new bytes are kept.
        harness.receive(peer(.ack, 5151, 1001), payload: Array(repeating: 2, count: 100))
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 5001)])
        XCTAssertEqual(harness.actions.deliveredByteCount, 0)
        harness.receive(peer(.ack, 5001, 1001), payload: Array(repeating: 1, count: 150))
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 5301)])
        let bytes = harness.actions.delivered.flatMap { Array($0) }
        XCTAssertEqual(
            bytes, Array(repeating: 1, count: 150) + Array(repeating: 2, count: 50) + Array(repeating: 3, count: 100))
        XCTAssertEqual(harness.connection.unreadCount, 300)
    }

    func testOutOfOrderQueueIsBounded() {
        var configuration = plainConfiguration()
        configuration.maximumOutOfOrderSegments = 2
        var harness = ConnectionTests.established(configuration)
        for start: UInt32 in [5101, 5301, 5501] {
            harness.receive(peer(.ack, start, 1001), payload: Array(repeating: 1, count: 100))
        }
        harness.receive(peer(.ack, 5001, 1001), payload: Array(repeating: 1, count: 100))
        XCTAssertEqual(harness.actions.deliveredByteCount, 200, "the third out-of-order segment was over the bound")
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 5201)])
    }

    func testOutOfOrderFINIsHeldUntilTheHoleFills() {
        var harness = ConnectionTests.established()
        harness.receive(peer([.ack, .fin], 5101, 1001), payload: Array(repeating: 1, count: 10))
        XCTAssertEqual(harness.state, .established)
        harness.receive(peer(.ack, 5001, 1001), payload: Array(repeating: 1, count: 100))
        XCTAssertEqual(harness.state, .closeWait)
        XCTAssertTrue(harness.actions.endOfStream)
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 5112)])
    }
}
