import XCTest

@testable import NetMPTCP

/// RACK's state (RFC 8985 6.2): the RTT it keeps is that of the most recently sent delivered segment,
/// whatever order one ACK's deliveries are handled in.
final class RACKTests: XCTestCase {
    static let millisecond: Int64 = 1_000_000

    func segment(_ index: UInt32, sentAt: Int64, transmission: Int) -> SACKScoreboard.Segment {
        SACKScoreboard.Segment(
            start: SequenceNumber(index * 1000), end: SequenceNumber((index + 1) * 1000), sentAt: sentAt,
            transmission: transmission)
    }

    /// A retransmission (sent last) and an original sent before it, delivered by one ACK: the
    /// original comes after it in sequence order, and its longer RTT must not replace the newer
    /// segment's.
    func testTheRTTIsTheMostRecentlySentSegmentsOnly() {
        let ms = Self.millisecond
        var rack = RACK()
        rack.delivered(segment(0, sentAt: 0, transmission: 1), now: 20 * ms)
        XCTAssertEqual(rack.roundTripTime, 20 * ms)
        var resent = segment(1, sentAt: 100 * ms, transmission: 9)
        resent.everRetransmitted = true
        rack.delivered(resent, now: 130 * ms)
        rack.delivered(segment(2, sentAt: 90 * ms, transmission: 5), now: 130 * ms)
        XCTAssertEqual(rack.transmission, 9)
        XCTAssertEqual(rack.roundTripTime, 30 * ms, "the retransmission's, sent at 100 ms")
        XCTAssertEqual(rack.minimumRTT, 20 * ms)
    }

    /// With the newest segment's RTT, a segment sent between the two is lost at once; with the older
    /// one's (10 ms longer) it would wait 10 ms more.
    func testLossesAreTimedFromTheNewestSegmentsRTT() {
        let ms = Self.millisecond
        var board = SACKScoreboard()
        board.sent(SequenceNumber(0), SequenceNumber(1000), now: 90 * ms)  // transmission 1
        board.sent(SequenceNumber(1000), SequenceNumber(2000), now: 95 * ms)  // 2: not delivered
        board.sent(SequenceNumber(2000), SequenceNumber(3000), now: 100 * ms)  // 3
        var rack = RACK()
        // One ACK SACKs 2000–3000 (sent last) and then, in a second block, 0–1000 (sent first).
        board.sack(SequenceNumber(2000), SequenceNumber(3000)) { rack.delivered($0, now: 125 * ms) }
        board.sack(SequenceNumber(0), SequenceNumber(1000)) { rack.delivered($0, now: 125 * ms) }
        XCTAssertEqual(rack.roundTripTime, 25 * ms)
        let (wait, marked) = rack.detectLosses(in: &board, window: 0, now: 125 * ms)
        XCTAssertEqual(marked, 1, "95 ms + 25 ms is before 125 ms")
        XCTAssertEqual(wait, 0)
        XCTAssertEqual(board.lostBytes, 1000)
    }
}
