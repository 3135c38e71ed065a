import NetMPWire
import XCTest

@testable import NetMPTCP

/// Found by the structure-aware fuzzer (`TCPFuzz`, seed 12, sequence 30871): when out-of-order
/// bytes lay beyond the peer's FIN, filling the hole delivered them too and put the end of the
/// stream (and our ACK of the FIN) after them. The stream ends at the FIN.
final class FINAheadOfQueuedDataTests: XCTestCase {
    /// The peer's stream: byte i is i (from 5001, after its SYN at 5000).
    private func stream(_ range: Range<Int>) -> [UInt8] { range.map { UInt8(truncatingIfNeeded: $0) } }

    private func established() -> Harness {
        var harness = Harness.accepting()
        harness.receive(peer(.ack, 5001, 1001))
        XCTAssertEqual(harness.state, .established)
        return harness
    }

    func testAnInOrderFINDoesNotDeliverQueuedBytesBeyondIt() {
        var harness = established()
        // Bytes 3..<20 ahead of a hole, then bytes 0..<5 with the FIN after them.
        harness.receive(peer(.ack, 5004, 1001), payload: stream(3..<20))
        XCTAssertTrue(harness.actions.delivered.isEmpty)
        harness.receive(peer([.ack, .fin], 5001, 1001), payload: stream(0..<5))
        XCTAssertEqual(harness.actions.delivered.flatMap { Array($0) }, stream(0..<5))
        XCTAssertTrue(harness.actions.endOfStream)
        XCTAssertEqual(harness.state, .closeWait)
        XCTAssertEqual(harness.connection.receiveNext, SequenceNumber(5007))
        XCTAssertEqual(harness.sent.last?.acknowledgment, 5007)
        XCTAssertEqual(harness.connection.unreadCount, 5)
    }

    func testAQueuedFINStopsTheDrainAtItsSequence() {
        var harness = established()
        // Bytes 5..<10 with the FIN after them, then bytes 8..<20 that run past the FIN.
        harness.receive(peer([.ack, .fin], 5006, 1001), payload: stream(5..<10))
        harness.receive(peer(.ack, 5009, 1001), payload: stream(8..<20))
        XCTAssertTrue(harness.actions.delivered.isEmpty)
        harness.receive(peer(.ack, 5001, 1001), payload: stream(0..<5))
        XCTAssertEqual(harness.actions.delivered.flatMap { Array($0) }, stream(0..<10))
        XCTAssertTrue(harness.actions.endOfStream)
        XCTAssertEqual(harness.state, .closeWait)
        XCTAssertEqual(harness.connection.receiveNext, SequenceNumber(5012))
        XCTAssertEqual(harness.sent.last?.acknowledgment, 5012)
        XCTAssertEqual(harness.connection.unreadCount, 10)
    }
}
