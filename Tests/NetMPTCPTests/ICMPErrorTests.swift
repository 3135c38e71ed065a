import NetMPTCP
import NetMPWire
import XCTest

/// ICMP errors about our segments (RFC 1122 4.2.3.9, RFC 5927), as Linux treats them: they end a
/// connect, are soft errors once synchronized, and are ignored when they name bytes not in flight.
final class ICMPErrorTests: XCTestCase {
    func testUnreachableEndsAConnectWithItsError() {
        for error in [TCPError.connectionRefused, .hostUnreachable, .networkUnreachable] {
            var harness = Harness.connecting()
            XCTAssertEqual(harness.sent, [Wire(.syn, 1000)])
            harness.run { $0.icmpError(error, sequence: SequenceNumber(1000), now: $1, into: &$2) }
            XCTAssertEqual(harness.state, .closed)
            XCTAssertTrue(harness.actions.closed)
            XCTAssertEqual(harness.actions.error, error)
            XCTAssertNil(harness.connection.nextDeadline, "no timer outlives the connection")
        }
    }

    func testAnErrorNamingBytesNotInFlightIsIgnored() {
        var harness = Harness.connecting()
        // Our SYN is sequence 1000; 999 and 1001 name nothing we have in flight.
        for sequence: UInt32 in [999, 1001, 70_000] {
            harness.run { $0.icmpError(.connectionRefused, sequence: SequenceNumber(sequence), now: $1, into: &$2) }
            XCTAssertEqual(harness.state, .synSent, "sequence \(sequence)")
            XCTAssertFalse(harness.actions.closed)
        }
        var established = ConnectionTests.established(rtt: 100 * milliseconds)
        established.run { $0.send(count: 100, now: $1, into: &$2) }
        // In flight: 1001 ..< 1101. An error about 1101 (not sent) or 1000 (acknowledged) is stale.
        for sequence: UInt32 in [1000, 1101] {
            established.run {
                $0.icmpError(.hostUnreachable, sequence: SequenceNumber(sequence), now: $1, into: &$2)
            }
        }
        XCTAssertNil(established.connection.softError)
    }

    func testASynchronizedConnectionKeepsTheErrorForItsTimeout() {
        var configuration = plainConfiguration()
        configuration.maximumRetransmissions = 2
        var harness = ConnectionTests.established(configuration, rtt: 100 * milliseconds)
        harness.run { $0.send(count: 100, now: $1, into: &$2) }
        harness.run { $0.icmpError(.hostUnreachable, sequence: SequenceNumber(1050), now: $1, into: &$2) }
        XCTAssertEqual(harness.state, .established, "a soft error does not end the connection")
        XCTAssertFalse(harness.actions.closed)
        XCTAssertEqual(harness.connection.softError, .hostUnreachable)
        // The retransmissions run out: the timeout reports what ICMP said.
        harness.fireNext()
        harness.fireNext()
        XCTAssertEqual(harness.state, .established)
        harness.fireNext()
        XCTAssertEqual(harness.state, .closed)
        XCTAssertEqual(harness.actions.error, .hostUnreachable)
    }

    func testAHandshakingChildJustGoes() {
        var harness = Harness.accepting()
        XCTAssertEqual(harness.sent, [Wire([.syn, .ack], 1000, 5001)])
        harness.run { $0.icmpError(.connectionRefused, sequence: SequenceNumber(1000), now: $1, into: &$2) }
        XCTAssertEqual(harness.state, .closed)
        XCTAssertTrue(harness.actions.closed)
        XCTAssertNil(harness.actions.error, "nobody connected through this child: no error to report")
    }
}
