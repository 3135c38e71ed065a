import NetMPTCP
import NetMPWire
import XCTest

/// MSS from the route MTU, window scaling and timestamps (RFC 7323), SACK-permitted recorded, and
/// RTT measured from timestamps.
final class OptionsTests: XCTestCase {
    func testSYNOffersOptionsFromTheConfiguration() {
        var configuration = TCPConfiguration()
        configuration.receiveBufferSize = 256 * 1024
        configuration.sackPermitted = true
        var harness = Harness(
            Connection(
                configuration: configuration, localPort: 40000, remotePort: 80,
                initialSequenceNumber: SequenceNumber(1000), routeMTU: 9000))
        harness.now = 5 * seconds
        harness.run { $0.connect(now: $1, into: &$2) }
        let options = harness.actions.segments.first?.header.options
        XCTAssertEqual(options?.maximumSegmentSize, 8960)
        XCTAssertEqual(options?.windowScale, 3, "256 KiB needs a shift of 3 to fit 16 bits")
        XCTAssertEqual(options?.sackPermitted, true)
        XCTAssertEqual(options?.timestamps?.echoReply, 0)
        XCTAssertEqual(harness.actions.segments.first?.header.window, 65535)
    }

    func testNegotiatedScalingTimestampsAndMSS() {
        var configuration = TCPConfiguration()
        configuration.sackPermitted = false
        var harness = Harness.connecting(configuration)
        let ourStamp = harness.actions.segments[0].header.options.timestamps?.value ?? 0
        harness.now = 50 * milliseconds
        harness.receive(
            peer(
                [.syn, .ack], 5000, 1001, window: 30000,
                options: TCPOptions(
                    maximumSegmentSize: 1400, windowScale: 20, sackPermitted: true,
                    timestamps: TCPTimestamps(value: 777, echoReply: ourStamp))))
        let connection = harness.connection
        XCTAssertEqual(connection.sendScale, 14, "a shift above 14 is used as 14")
        XCTAssertEqual(connection.receiveScale, 3, "256 KiB default buffer needs a shift of 3")
        XCTAssertTrue(connection.timestampsEnabled)
        XCTAssertFalse(connection.sackPermitted, "not offered by this end")
        XCTAssertEqual(connection.maximumSegmentSize, 1400 - 12)
        XCTAssertEqual(connection.sendWindow, 30000, "the window of a SYN is never scaled")
        XCTAssertEqual(connection.retransmissionTimeout.smoothedRTT, 50 * milliseconds)
        // The ACK echoes the peer's timestamp; later windows are scaled.
        let ack = harness.actions.segments[0].header
        XCTAssertEqual(ack.options.timestamps?.echoReply, 777)
        XCTAssertEqual(ack.window, 32768, "the whole 256 KiB buffer, shifted by 3")
        harness.receive(
            peer(.ack, 5001, 1001, window: 2, options: TCPOptions(timestamps: TCPTimestamps(value: 778, echoReply: 0))))
        XCTAssertEqual(harness.connection.sendWindow, 2 << 14)

        // A timestamp echo measures the RTT of the segment it answers: 30 ms here.
        harness.now = 100 * milliseconds
        harness.run { $0.send(count: 100, now: $1, into: &$2) }
        let sentStamp = harness.actions.segments[0].header.options.timestamps?.value ?? 0
        XCTAssertEqual(harness.actions.segments[0].header.options.timestamps?.echoReply, 778)
        harness.now = 130 * milliseconds
        harness.receive(
            peer(
                .ack, 5001, 1101, window: 2,
                options: TCPOptions(timestamps: TCPTimestamps(value: 779, echoReply: sentStamp))))
        // SRTT = 7/8 × 50 + 1/8 × 30 = 47.5 ms.
        XCTAssertEqual(harness.connection.retransmissionTimeout.smoothedRTT, 47_500_000)
    }

    func testNoScalingOrTimestampsUnlessBothOffer() {
        var harness = Harness.connecting(TCPConfiguration())
        harness.receive(peer([.syn, .ack], 5000, 1001, window: 30000))
        XCTAssertEqual(harness.connection.sendScale, 0)
        XCTAssertEqual(harness.connection.receiveScale, 0)
        XCTAssertFalse(harness.connection.timestampsEnabled)
        XCTAssertEqual(harness.connection.maximumSegmentSize, 536, "no MSS option: the IPv4 default")
        XCTAssertNil(harness.actions.segments[0].header.options.timestamps)
        XCTAssertEqual(harness.actions.segments[0].header.window, 65535)

        // A listen socket's child answers only what the SYN offered.
        let syn = incomingSYN(
            5000,
            options: TCPOptions(
                maximumSegmentSize: 1460, windowScale: 7, timestamps: TCPTimestamps(value: 1, echoReply: 0)))
        var configuration = TCPConfiguration()
        configuration.sackPermitted = true
        let child = Harness.accepting(configuration, syn: syn)
        let options = child.actions.segments[0].header.options
        XCTAssertEqual(options.windowScale, 3)
        XCTAssertEqual(options.timestamps?.echoReply, 1)
        XCTAssertFalse(options.sackPermitted, "the SYN did not offer SACK")
        XCTAssertEqual(options.maximumSegmentSize, 1460)
    }

    func testTinyPeerMSSIsClamped() {
        var harness = Harness.connecting()
        harness.receive(peer([.syn, .ack], 5000, 1001, options: TCPOptions(maximumSegmentSize: 1)))
        XCTAssertEqual(harness.connection.maximumSegmentSize, 48)
    }

    func testCongestionWindowStartsAtTenSegments() {
        XCTAssertEqual(NewReno.initialWindow(maximumSegmentSize: 1460), 14600)
        XCTAssertEqual(NewReno.initialWindow(maximumSegmentSize: 536), 5360)
        XCTAssertEqual(NewReno.initialWindow(maximumSegmentSize: 8960), 17920)
        var reno = NewReno(maximumSegmentSize: 1000)
        reno.acknowledged(bytes: 5000, maximumSegmentSize: 1000, now: 0)
        XCTAssertEqual(reno.congestionWindow, 12000, "slow start: at most 2 MSS per ACK")
        reno.retransmissionTimeout(flightSize: 12000, maximumSegmentSize: 1000, now: 0)
        XCTAssertEqual(reno.congestionWindow, 1000)
        XCTAssertEqual(reno.slowStartThreshold, 6000)
        for _ in 0..<5 {
            reno.acknowledged(bytes: 1000, maximumSegmentSize: 1000, now: 0)
        }
        XCTAssertEqual(reno.congestionWindow, 6000)
        // Congestion avoidance: one MSS per window of acknowledged bytes.
        for _ in 0..<6 {
            reno.acknowledged(bytes: 1000, maximumSegmentSize: 1000, now: 0)
        }
        XCTAssertEqual(reno.congestionWindow, 7000)
    }
}
