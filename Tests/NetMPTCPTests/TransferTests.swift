import NetMPTCP
import NetMPWire
import XCTest

/// Reliable transfer against the manual clock: RTO and backoff, SYN retransmission, fast retransmit,
/// NewReno, zero-window probes, delayed ACKs, Nagle and window updates.
final class TransferTests: XCTestCase {
    func testRetransmissionTimeoutAndBackoff() {
        var configuration = plainConfiguration()
        configuration.maximumRetransmissions = 3
        // Handshake RTT 100 ms: SRTT 100 ms, RTTVAR 50 ms, RTO = 100 + 4 × 50 = 300 ms.
        var harness = ConnectionTests.established(configuration, rtt: 100 * milliseconds)
        XCTAssertEqual(harness.connection.retransmissionTimeout.smoothedRTT, 100 * milliseconds)
        XCTAssertEqual(harness.connection.retransmissionTimeout.timeout, 300 * milliseconds)
        harness.run { $0.send(count: 100, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent, [Wire([.ack, .psh], 1001, 5001, length: 100)])
        XCTAssertEqual(harness.connection.deadline(of: .retransmission), 400 * milliseconds)
        harness.advance(to: 399 * milliseconds)
        XCTAssertEqual(harness.sent, [])
        var fired: [Int64] = []
        for _ in 0..<3 {
            fired.append(harness.fireNext() ?? -1)
            XCTAssertEqual(harness.sent, [Wire([.ack, .psh], 1001, 5001, length: 100)])
            XCTAssertEqual(harness.actions.segments.first?.sendQueueOffset, 0)
        }
        // 300 ms, then 600, 1200: each timeout doubles the next.
        XCTAssertEqual(fired, [400 * milliseconds, 1_000 * milliseconds, 2_200 * milliseconds])
        XCTAssertEqual(harness.connection.deadline(of: .retransmission), 4_600 * milliseconds)
        XCTAssertEqual(harness.fireNext(), 4_600 * milliseconds)
        XCTAssertEqual(harness.actions.error, .timedOut)
        XCTAssertTrue(harness.actions.closed)
        XCTAssertEqual(harness.sent, [])
        XCTAssertEqual(harness.state, .closed)
    }

    func testAnACKEndsBackoffAndANewSampleSetsTheTimeout() {
        var harness = ConnectionTests.established(rtt: 100 * milliseconds)
        harness.run { $0.send(count: 100, now: $1, into: &$2) }
        harness.fireNext()
        XCTAssertEqual(harness.connection.retransmissionTimeout.timeout, 600 * milliseconds)
        // Karn: the ACK of a retransmitted segment gives no sample; the backed-off timeout stays.
        harness.now = 450 * milliseconds
        harness.receive(peer(.ack, 5001, 1101))
        XCTAssertEqual(harness.actions.acknowledgedBytes, 100)
        XCTAssertEqual(harness.connection.retransmissionTimeout.timeout, 600 * milliseconds)
        XCTAssertNil(harness.connection.deadline(of: .retransmission))
        // A fresh segment is timed: 20 ms gives SRTT = 7/8 × 100 + 1/8 × 20 = 90 ms and
        // RTTVAR = 3/4 × 50 + 1/4 × 80 = 57.5 ms, so RTO = 90 + 230 = 320 ms.
        harness.run { $0.send(count: 100, now: $1, into: &$2) }
        harness.now = 470 * milliseconds
        harness.receive(peer(.ack, 5001, 1201))
        XCTAssertEqual(harness.connection.retransmissionTimeout.smoothedRTT, 90 * milliseconds)
        XCTAssertEqual(harness.connection.retransmissionTimeout.rttVariance, 57_500_000)
        XCTAssertEqual(harness.connection.retransmissionTimeout.timeout, 320 * milliseconds)
    }

    func testMinimumAndMaximumRTO() {
        var estimator = RetransmissionTimeout(initial: seconds, minimum: 200 * milliseconds, maximum: 120 * seconds)
        XCTAssertEqual(estimator.timeout, seconds)
        estimator.sample(1 * milliseconds)
        XCTAssertEqual(estimator.timeout, 200 * milliseconds)
        for _ in 0..<20 {
            estimator.backOff()
        }
        XCTAssertEqual(estimator.timeout, 120 * seconds)
        XCTAssertEqual(estimator.backoffCount, 20)
    }

    func testSYNRetransmissionAndGiveUp() {
        var configuration = plainConfiguration()
        configuration.maximumSYNRetransmissions = 3
        var harness = Harness.connecting(configuration)
        var fired: [Int64] = []
        for _ in 0..<3 {
            fired.append(harness.fireNext() ?? -1)
            XCTAssertEqual(harness.sent, [Wire(.syn, 1000)])
            XCTAssertEqual(harness.state, .synSent)
        }
        XCTAssertEqual(fired, [1, 3, 7].map { $0 * seconds })
        XCTAssertEqual(harness.fireNext(), 15 * seconds)
        XCTAssertEqual(harness.sent, [])
        XCTAssertEqual(harness.actions.error, .timedOut)
        XCTAssertEqual(harness.state, .closed)

        // A SYN-ACK is retransmitted the same way; a retransmitted SYN gives no RTT sample.
        var child = Harness.accepting()
        XCTAssertEqual(child.fireNext(), 1 * seconds)
        XCTAssertEqual(child.sent, [Wire([.syn, .ack], 1000, 5001)])
        child.now = 1_500 * milliseconds
        child.receive(peer(.ack, 5001, 1001))
        XCTAssertEqual(child.state, .established)
        XCTAssertNil(child.connection.retransmissionTimeout.smoothedRTT)
        XCTAssertEqual(child.connection.retransmissionTimeout.timeout, 3 * seconds, "RFC 6298 5.7 fallback")
        child.run { $0.send(count: 10, now: $1, into: &$2) }
        XCTAssertEqual(child.connection.deadline(of: .retransmission), 4_500 * milliseconds)
    }

    /// An established NewReno sender (noDelay) with `segments` full segments in flight of 1460 bytes.
    static func sending(segments: Int, queued: Int? = nil) -> Harness {
        var configuration = plainConfiguration()
        configuration.noDelay = true
        configuration.congestionControl = .newReno
        var harness = ConnectionTests.established(configuration, rtt: 10 * milliseconds)
        harness.run { $0.send(count: (queued ?? segments) * 1460, now: $1, into: &$2) }
        return harness
    }

    func testFastRetransmitOnThreeDuplicateACKs() {
        var harness = TransferTests.sending(segments: 10)
        XCTAssertEqual(harness.sent.count, 10, "initial window: 10 segments")
        XCTAssertEqual(harness.sent.map(\.sequence), (0..<10).map { 1001 + UInt32($0) * 1460 })
        harness.receive(peer(.ack, 5001, 1001))
        harness.receive(peer(.ack, 5001, 1001))
        XCTAssertEqual(harness.sent, [])
        XCTAssertFalse(harness.connection.inFastRecovery)
        harness.receive(peer(.ack, 5001, 1001))
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 5001, length: 1460)])
        XCTAssertEqual(harness.actions.segments.first?.sendQueueOffset, 0)
        XCTAssertTrue(harness.connection.inFastRecovery)
        // ssthresh = flight / 2 = 7300; cwnd = ssthresh + 3 MSS.
        XCTAssertEqual(harness.connection.congestionControl.slowStartThreshold, 7300)
        XCTAssertEqual(harness.connection.congestionControl.congestionWindow, 7300 + 3 * 1460)
        XCTAssertEqual(harness.connection.fastRetransmitCount, 1)
    }

    func testNewRenoRecoversTwoLossesInOneWindowWithoutATimeout() {
        // 20 segments queued, 10 sent; segments 0 and 4 are lost.
        var harness = TransferTests.sending(segments: 10, queued: 20)
        let start: (Int) -> UInt32 = { 1001 + UInt32($0) * 1460 }
        var highest = start(10)
        var retransmitted: [UInt32] = []
        func step(_ ack: UInt32) {
            harness.advance(to: harness.now + 5 * milliseconds)
            harness.receive(peer(.ack, 5001, ack))
            for segment in harness.sent {
                if segment.sequence < highest {
                    retransmitted.append(segment.sequence)
                } else {
                    highest = segment.sequence + UInt32(segment.length)
                }
            }
        }
        // Segments 1–3 arrive: three duplicate ACKs, fast retransmit of segment 0.
        for _ in 1...3 { step(start(0)) }
        XCTAssertEqual(retransmitted, [start(0)])
        // Segments 5–9 arrive: more duplicates inflate the window and let new data out.
        for _ in 5...9 { step(start(0)) }
        XCTAssertEqual(retransmitted, [start(0)])
        XCTAssertGreaterThan(highest, start(10), "the inflated window sent new data")
        // Segment 0's retransmission arrives: a partial ACK up to the second hole, resent at once.
        step(start(4))
        XCTAssertEqual(retransmitted, [start(0), start(4)])
        XCTAssertTrue(harness.connection.inFastRecovery)
        // Segment 4 arrives: everything up to the recovery point is acknowledged.
        step(start(10))
        XCTAssertFalse(harness.connection.inFastRecovery)
        XCTAssertEqual(retransmitted, [start(0), start(4)])
        XCTAssertEqual(harness.connection.timeoutCount, 0)
        XCTAssertEqual(harness.connection.retransmittedSegments, 2)
        XCTAssertEqual(harness.connection.congestionControl.congestionWindow, 7300)
    }

    func testZeroWindowProbeBackoffAndRecovery() {
        var harness = ConnectionTests.established(window: 0)
        harness.run { $0.send(count: 100, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent, [])
        XCTAssertEqual(harness.connection.deadline(of: .persist), 200 * milliseconds)
        XCTAssertEqual(harness.fireNext(), 200 * milliseconds)
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 5001, length: 1)])
        XCTAssertEqual(harness.connection.deadline(of: .persist), 600 * milliseconds)
        harness.receive(peer(.ack, 5001, 1001, window: 0))
        XCTAssertEqual(harness.sent, [])
        XCTAssertEqual(harness.fireNext(), 600 * milliseconds)
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 5001, length: 1)])
        XCTAssertEqual(harness.connection.deadline(of: .persist), 1_400 * milliseconds)
        // The window opens: the data goes at once and the persist timer stops.
        harness.now = 700 * milliseconds
        harness.receive(peer(.ack, 5001, 1001, window: 1000))
        XCTAssertEqual(harness.sent, [Wire([.ack, .psh], 1001, 5001, length: 100)])
        XCTAssertNil(harness.connection.deadline(of: .persist))
        XCTAssertNotNil(harness.connection.deadline(of: .retransmission))
        // A probe the peer accepted counts as sent.
        var accepted = ConnectionTests.established(window: 0)
        accepted.run { $0.send(count: 100, now: $1, into: &$2) }
        accepted.fireNext()
        accepted.receive(peer(.ack, 5001, 1002, window: 500))
        XCTAssertEqual(accepted.actions.acknowledgedBytes, 1)
        XCTAssertEqual(accepted.sent, [Wire([.ack, .psh], 1002, 5001, length: 99)])
        XCTAssertEqual(accepted.actions.segments.first?.sendQueueOffset, 0)
    }

    func testDelayedACKTiming() {
        var configuration = plainConfiguration()
        configuration.quickACKSegments = 0
        var harness = ConnectionTests.established(configuration)
        harness.now = 10 * milliseconds
        harness.receive(peer(.ack, 5001, 1001), payload: Array(repeating: 1, count: 100))
        XCTAssertEqual(harness.sent, [])
        XCTAssertEqual(harness.connection.deadline(of: .delayedACK), 50 * milliseconds)
        harness.advance(to: 49 * milliseconds)
        XCTAssertEqual(harness.sent, [])
        harness.advance(to: 50 * milliseconds)
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 5101)])
        // Every second full-sized segment is acknowledged at once.
        harness.receive(peer(.ack, 5101, 1001), payload: Array(repeating: 1, count: 1460))
        XCTAssertEqual(harness.sent, [])
        harness.receive(peer(.ack, 6561, 1001), payload: Array(repeating: 1, count: 1460))
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 8021)])
        XCTAssertNil(harness.connection.deadline(of: .delayedACK))
        // Out of order: a duplicate ACK at once; the segment that fills the hole too.
        harness.receive(peer(.ack, 8121, 1001), payload: Array(repeating: 1, count: 100))
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 8021)])
        harness.receive(peer(.ack, 8021, 1001), payload: Array(repeating: 1, count: 100))
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 8221)])
        // Data going out carries the ACK and cancels the delayed one.
        harness.receive(peer(.ack, 8221, 1001), payload: Array(repeating: 1, count: 10))
        XCTAssertNotNil(harness.connection.deadline(of: .delayedACK))
        harness.run { $0.send(count: 5, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent, [Wire([.ack, .psh], 1001, 8231, length: 5)])
        XCTAssertNil(harness.connection.deadline(of: .delayedACK))
    }

    func testQuickACKsAtTheStart() {
        var harness = ConnectionTests.established()
        for index in 0..<8 {
            harness.receive(peer(.ack, 5001 + UInt32(index) * 10, 1001), payload: Array(repeating: 1, count: 10))
            XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 5011 + UInt32(index) * 10)])
        }
        harness.receive(peer(.ack, 5081, 1001), payload: Array(repeating: 1, count: 10))
        XCTAssertEqual(harness.sent, [], "the ninth small segment's ACK is delayed")
    }

    func testNagle() {
        var harness = ConnectionTests.established()
        harness.run { $0.send(count: 100, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent, [Wire([.ack, .psh], 1001, 5001, length: 100)])
        harness.run { $0.send(count: 100, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent, [], "a small segment waits while data is unacknowledged")
        harness.run { $0.send(count: 100, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent, [])
        harness.receive(peer(.ack, 5001, 1101))
        XCTAssertEqual(harness.sent, [Wire([.ack, .psh], 1101, 5001, length: 200)])
        XCTAssertEqual(harness.actions.segments.first?.sendQueueOffset, 0)
        // Full segments are never held back.
        harness.run { $0.send(count: 1500, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent, [Wire(.ack, 1301, 5001, length: 1460)])

        var configuration = plainConfiguration()
        configuration.noDelay = true
        var noDelay = ConnectionTests.established(configuration)
        noDelay.run { $0.send(count: 100, now: $1, into: &$2) }
        noDelay.run { $0.send(count: 100, now: $1, into: &$2) }
        XCTAssertEqual(noDelay.sent, [Wire([.ack, .psh], 1101, 5001, length: 100)])
        XCTAssertEqual(noDelay.actions.segments.first?.sendQueueOffset, 100)
    }

    func testWindowUpdateWhenTheApplicationReads() {
        var configuration = plainConfiguration()
        configuration.receiveBufferSize = 8000
        var harness = ConnectionTests.established(configuration)
        XCTAssertEqual(harness.connection.localMaximumSegmentSize, 1460)
        for index in 0..<8 {
            harness.receive(peer(.ack, 5001 + UInt32(index) * 1000, 1001), payload: Array(repeating: 1, count: 1000))
        }
        XCTAssertEqual(harness.actions.segments.last?.header.window, 0)
        // Reading 2000 bytes opens less than 2 MSS (2920): no update; 3000 is enough.
        harness.run { $0.received(count: 2000, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent, [])
        harness.run { $0.received(count: 1000, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 13001)])
        XCTAssertEqual(harness.actions.segments.first?.header.window, 3000)
        // Data past the advertised window is cut off, and the window ACKed again.
        harness.receive(peer(.ack, 13001, 1001), payload: Array(repeating: 1, count: 3500))
        XCTAssertEqual(harness.actions.deliveredByteCount, 3000)
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 16001)])
    }

    /// A read earns a window update of its own only when it opens at least the smaller of the window
    /// still advertised and a quarter of the buffer (and 2 MSS); until then the ACKs the sender's
    /// data draws carry the reopened window. Reading a large buffer in small pieces so sends no
    /// update per piece.
    func testWindowUpdateWaitsForTheAdvertisedWindowOrAQuarterOfTheBuffer() {
        var configuration = plainConfiguration()
        configuration.receiveBufferSize = 20_000
        configuration.quickACKSegments = 0
        var harness = ConnectionTests.established(configuration)
        for index in 0..<15 {
            harness.receive(peer(.ack, 5001 + UInt32(index) * 1000, 1001), payload: Array(repeating: 1, count: 1000))
        }
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 20001)], "every third segment is more than 2 MSS")
        XCTAssertEqual(harness.actions.segments.first?.header.window, 5000)
        // 15000 unread: 5000 of the window left (a quarter of the buffer), so 5000 must be read.
        XCTAssertEqual(harness.connection.windowUpdateStep, 5000)
        XCTAssertEqual(harness.connection.readsBeforeWindowUpdate, 5000)
        // 4000 read in pieces of 1000: more than 2 MSS, but no update (the old rule sent one at 3000).
        for read in 1...4 {
            harness.run { $0.received(count: 1000, now: $1, into: &$2) }
            XCTAssertEqual(harness.sent, [], "no window update after \(read * 1000) bytes read")
            XCTAssertEqual(harness.connection.readsBeforeWindowUpdate, 5000 - read * 1000)
        }
        // The fifth piece doubles the window: the update goes at once.
        harness.run { $0.received(count: 1000, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 20001)])
        XCTAssertEqual(harness.actions.segments.first?.header.window, 10000)
        // 10000 advertised now: a quarter of the buffer (5000) is the step.
        XCTAssertEqual(harness.connection.windowUpdateStep, 5000)
        harness.run { $0.received(count: 4000, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent, [])
        harness.run { $0.received(count: 1000, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 20001)])
        XCTAssertEqual(harness.actions.segments.first?.header.window, 15000)
        // Reads that earn no update of their own still show in the next ACK the sender's data draws.
        harness.run { $0.received(count: 4000, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent, [])
        harness.receive(peer(.ack, 20001, 1001), payload: Array(repeating: 1, count: 1460))
        harness.receive(peer(.ack, 21461, 1001), payload: Array(repeating: 1, count: 1460))
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 22921)])
        // 20000 − (1000 + 2920) free: the edge moves from 35001 to 39001 (more than an MSS).
        XCTAssertEqual(harness.actions.segments.first?.header.window, 16080)
        XCTAssertEqual(harness.connection.readsBeforeWindowUpdate, 5000)
    }

    func testReceiverSillyWindowAvoidanceAndProbesOfAClosedWindow() {
        var configuration = plainConfiguration()
        configuration.receiveBufferSize = 8000
        var harness = ConnectionTests.established(configuration)
        for index in 0..<8 {
            harness.receive(peer(.ack, 5001 + UInt32(index) * 1000, 1001), payload: Array(repeating: 1, count: 1000))
        }
        // 500 bytes read: less than min(half the buffer, one MSS), so the window stays closed, and a
        // probe of the closed window is answered with its ACK and no data taken.
        harness.run { $0.received(count: 500, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent, [])
        harness.receive(peer(.ack, 13001, 1001), payload: [9])
        XCTAssertEqual(harness.actions.deliveredByteCount, 0)
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 13001)])
        XCTAssertEqual(harness.actions.segments.first?.header.window, 0)
        // At 1500 bytes free the window may open by more than one MSS: not worth an update of its
        // own (under 2 MSS), but the next ACK shows it. The probe was still outside the old window.
        harness.run { $0.received(count: 1000, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent, [])
        harness.receive(peer(.ack, 13001, 1001), payload: [9])
        XCTAssertEqual(harness.actions.deliveredByteCount, 0)
        XCTAssertEqual(harness.actions.segments.last?.header.window, 1500)
        harness.receive(peer(.ack, 13001, 1001), payload: [9])
        XCTAssertEqual(harness.actions.deliveredByteCount, 1)
    }

    func testDuplicateDataIsAcknowledgedAtOnce() {
        var configuration = plainConfiguration()
        configuration.quickACKSegments = 0
        var harness = ConnectionTests.established(configuration)
        harness.receive(peer(.ack, 5001, 1001), payload: Array(repeating: 1, count: 100))
        XCTAssertEqual(harness.sent, [])
        // A retransmission overlapping what we have (our ACK was lost): ACK at once, new bytes only.
        harness.receive(peer(.ack, 5051, 1001), payload: Array(repeating: 1, count: 100))
        XCTAssertEqual(harness.actions.deliveredByteCount, 50)
        XCTAssertEqual(harness.sent, [Wire(.ack, 1001, 5151)])
    }

    func testSenderSillyWindowAvoidance() {
        // The peer offers 60 000 then only 100 bytes: a 100-byte segment is less than half the largest
        // window, so it waits while data is outstanding.
        var harness = ConnectionTests.established()
        harness.run { $0.send(count: 1460, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent.count, 1)
        harness.run { $0.send(count: 1000, now: $1, into: &$2) }
        harness.receive(peer(.ack, 5001, 1001, window: 1560))
        XCTAssertEqual(harness.sent, [])
    }
}
