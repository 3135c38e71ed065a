import NetMPTCP
import NetMPWire
import XCTest

/// Keep-alive (Linux's idle, interval and count), TCP_USER_TIMEOUT (RFC 5482) and the `TCPInfo`
/// snapshot, against the manual clock. Our ISN is 1000, the peer's 5000.
final class KeepAliveTests: XCTestCase {
    static func keepAliveConfiguration() -> TCPConfiguration {
        var configuration = plainConfiguration()
        configuration.keepAlive = true
        return configuration
    }

    /// Probes at idle (7200 s), then every 75 s; after 9 unanswered the connection is reset and
    /// reports `timedOut`.
    func testUnansweredProbesTimeOutAtTheExactTimes() {
        var harness = DefenceTests.established(KeepAliveTests.keepAliveConfiguration())
        XCTAssertEqual(harness.connection.deadline(of: .keepAlive), 7200 * seconds)
        XCTAssertEqual(harness.connection.nextDeadline, 7200 * seconds)
        var probeTimes: [Int64] = []
        while harness.state == .established, let time = harness.fireNext() {
            if harness.actions.closed { break }
            // A probe: SND.UNA − 1, no data, so the peer must answer with an ACK.
            XCTAssertEqual(harness.sent, [Wire(.ack, 1000, 5001)], "at \(time)")
            probeTimes.append(time)
        }
        XCTAssertEqual(probeTimes, (0..<9).map { (7200 + 75 * Int64($0)) * seconds })
        XCTAssertEqual(harness.now, (7200 + 75 * 9) * seconds)
        XCTAssertEqual(harness.sent, [Wire([.rst, .ack], 1001, 5001)])
        XCTAssertEqual(harness.actions.error, .timedOut)
        XCTAssertEqual(harness.state, .closed)
        XCTAssertNil(harness.connection.nextDeadline)
    }

    func testAnsweredProbeKeepsTheConnection() {
        var harness = DefenceTests.established(KeepAliveTests.keepAliveConfiguration())
        XCTAssertEqual(harness.fireNext(), 7200 * seconds)
        XCTAssertEqual(harness.sent, [Wire(.ack, 1000, 5001)])
        harness.fireNext()
        XCTAssertEqual(harness.now, 7275 * seconds)
        XCTAssertEqual(harness.connection.keepAliveProbesSent, 2)
        // The peer answers the second probe half a second later.
        harness.now += 500 * milliseconds
        harness.receive(peer(.ack, 5001, 1001))
        XCTAssertEqual(harness.sent, [])
        XCTAssertEqual(harness.connection.keepAliveProbesSent, 0)
        XCTAssertEqual(harness.connection.deadline(of: .keepAlive), (7275 + 7200) * seconds + 500 * milliseconds)
        XCTAssertEqual(harness.fireNext(), (7275 + 7200) * seconds + 500 * milliseconds)
        XCTAssertEqual(harness.sent, [Wire(.ack, 1000, 5001)])
        XCTAssertEqual(harness.state, .established)
    }

    /// While data is outstanding the retransmission timer watches the peer, not keep-alive; and
    /// keep-alive switched on later counts its idle time from then.
    func testKeepAliveWaitsForOutstandingDataAndCountsFromWhenSwitchedOn() {
        var configuration = plainConfiguration()
        configuration.noDelay = true
        var harness = DefenceTests.established(configuration)
        XCTAssertNil(harness.connection.deadline(of: .keepAlive))
        harness.now = 100 * seconds
        harness.connection.setKeepAlive(true, idle: 10 * seconds, interval: 2 * seconds, count: 3, now: harness.now)
        XCTAssertEqual(harness.connection.deadline(of: .keepAlive), 110 * seconds)
        harness.run { $0.send(count: 10, now: $1, into: &$2) }
        XCTAssertNil(harness.connection.deadline(of: .keepAlive))
        harness.now = 101 * seconds
        harness.receive(peer(.ack, 5001, 1011))
        XCTAssertEqual(harness.connection.deadline(of: .keepAlive), 111 * seconds)
        harness.connection.setKeepAlive(false, now: harness.now)
        XCTAssertNil(harness.connection.deadline(of: .keepAlive))
    }

    /// RFC 5482: data unacknowledged for the user timeout ends the connection at exactly that time,
    /// whatever the retransmission count allows; progress restarts the clock.
    func testUserTimeoutDropsTheConnection() {
        var configuration = plainConfiguration()
        configuration.noDelay = true
        configuration.userTimeout = 10 * seconds
        configuration.maximumRetransmissions = 1
        var harness = DefenceTests.established(configuration)
        XCTAssertNil(harness.connection.deadline(of: .userTimeout), "nothing outstanding")
        harness.run { $0.send(count: 100, now: $1, into: &$2) }
        XCTAssertEqual(harness.connection.deadline(of: .userTimeout), 10 * seconds)
        // Acknowledged after 1 ms: nothing outstanding; new data at 8 s counts from 8 s.
        harness.now = 1 * milliseconds
        harness.receive(peer(.ack, 5001, 1101))
        XCTAssertNil(harness.connection.deadline(of: .userTimeout))
        harness.now = 8 * seconds
        harness.run { $0.send(count: 100, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent, [Wire([.ack, .psh], 1101, 5001, length: 100)])
        XCTAssertEqual(harness.connection.deadline(of: .userTimeout), 18 * seconds)
        var retransmissions: [Int64] = []
        while harness.state != .closed, let time = harness.fireNext() {
            if harness.actions.closed { break }
            XCTAssertEqual(harness.sent, [Wire([.ack, .psh], 1101, 5001, length: 100)], "at \(time)")
            retransmissions.append(time)
        }
        // RTO 200 ms doubling: more retransmissions than the count of 1 allows without a user timeout.
        XCTAssertEqual(retransmissions, [8200, 8600, 9400, 11_000, 14_200].map { $0 * milliseconds })
        XCTAssertEqual(harness.now, 18 * seconds)
        XCTAssertEqual(harness.actions.error, .timedOut)
        XCTAssertEqual(harness.sent, [])
    }

    /// The snapshot after a known exchange: the handshake's RTT sample (50 ms), one acknowledged
    /// segment 100 ms after it was sent, then a timeout.
    func testInfoAfterAKnownExchange() {
        var configuration = plainConfiguration()
        configuration.noDelay = true
        var harness = DefenceTests.established(configuration, at: 50 * milliseconds)
        var info = harness.connection.info
        XCTAssertEqual(info.state, .established)
        XCTAssertEqual(info.smoothedRTT, 50 * milliseconds)
        XCTAssertEqual(info.rttVariance, 25 * milliseconds)
        XCTAssertEqual(info.retransmissionTimeout, 200 * milliseconds, "50 + 4 × 25 ms, raised to the 200 ms floor")
        // The initial window, 10 segments (the ACK of our SYN does not count toward slow start).
        XCTAssertEqual(info.congestionWindow, 14_600)
        XCTAssertEqual(info.slowStartThreshold, Int.max)
        XCTAssertEqual(info.sendMaximumSegmentSize, 1460)
        XCTAssertEqual(info.receiveMaximumSegmentSize, 1460)
        XCTAssertEqual(info.sendWindow, 60_000)
        XCTAssertEqual(info.receiveWindow, 60_000)
        XCTAssertEqual(info.reordering, 3)

        harness.run { $0.send(count: 3000, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent.map(\.length), [1460, 1460, 80])
        XCTAssertEqual(harness.connection.info.bytesInFlight, 3000)
        harness.now = 150 * milliseconds
        harness.receive(peer(.ack, 5001, 2461))
        info = harness.connection.info
        XCTAssertEqual(info.smoothedRTT, 56_250_000, "(7 × 50 + 100) / 8 ms")
        XCTAssertEqual(info.rttVariance, 31_250_000, "(3 × 25 + 50) / 4 ms")
        XCTAssertEqual(info.retransmissionTimeout, 200 * milliseconds)
        // Application-limited (RFC 7661): 3000 bytes in flight never reached half the window, so
        // the ACK does not grow it.
        XCTAssertEqual(info.congestionWindow, 14_600)
        XCTAssertEqual(info.bytesInFlight, 1540)
        XCTAssertEqual(info.lostSegments, 0)
        XCTAssertEqual(info.retransmittedSegments, 0)

        XCTAssertEqual(harness.fireNext(), 350 * milliseconds)
        XCTAssertEqual(harness.sent, [Wire(.ack, 2461, 5001, length: 1460)])
        info = harness.connection.info
        XCTAssertEqual(info.consecutiveRetransmissions, 1)
        XCTAssertEqual(info.retransmittedSegments, 1)
        XCTAssertEqual(info.retransmissionTimeouts, 1)
        XCTAssertEqual(info.retransmissionTimeout, 400 * milliseconds)
        XCTAssertEqual(info.congestionWindow, 1460)
        XCTAssertEqual(info.slowStartThreshold, 2920, "max(1540 / 2, 2 MSS)")
        XCTAssertEqual(info.lostSegments, 2, "1540 bytes in flight after a timeout: two segments")
        XCTAssertEqual(info.bytesInFlight, 1540)
    }

    /// Delivery rate: bytes acknowledged over an interval of at least one smoothed RTT.
    func testDeliveryRateOverARoundTrip() {
        var configuration = plainConfiguration()
        configuration.noDelay = true
        // The handshake's ACK at 100 ms (RTT 100 ms) opens the first interval at SND.UNA 1001.
        var harness = ConnectionTests.established(configuration, rtt: 100 * milliseconds)
        harness.run { $0.send(count: 10 * 1460, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent.count, 10)
        // Half acknowledged 50 ms in: shorter than the SRTT, the interval goes on.
        harness.now = 150 * milliseconds
        harness.receive(peer(.ack, 5001, 1001 + 5 * 1460))
        XCTAssertEqual(harness.connection.info.deliveryRate, 0)
        // All of it 100 ms in: 14,600 bytes in 0.1 s.
        harness.now = 200 * milliseconds
        harness.receive(peer(.ack, 5001, 1001 + 10 * 1460))
        XCTAssertEqual(harness.connection.info.deliveryRate, 146_000)
        XCTAssertEqual(harness.connection.info.bytesInFlight, 0)
    }
}
