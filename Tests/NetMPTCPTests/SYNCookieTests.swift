import NetMPTCP
import NetMPWire
import XCTest

/// SYN cookies: the encoding (MSS index in the ISN; window scale and SACK-permitted in the TSval's
/// low bits), validation and expiry, and a handshake completed from a cookie alone.
final class SYNCookieTests: XCTestCase {
    static let cookies = TCPSYNCookies(key: TCPSecretKey(bytes: (0..<16).map { UInt8(truncatingIfNeeded: $0 &* 37) }))
    /// Seen from the listener: port 80 here, the peer at port 40000.
    static let tuple = TCPConnectionKey(
        localAddress: .ipv4(IPv4Address(198, 18, 0, 2)), localPort: 80,
        remoteAddress: .ipv4(IPv4Address(198, 18, 0, 1)),
        remotePort: 40000)

    static func syn(mss: UInt16?, scale: UInt8? = nil, sack: Bool = false, tsval: UInt32? = nil) -> TCPHeader {
        var options = TCPOptions()
        options.maximumSegmentSize = mss
        options.windowScale = scale
        options.sackPermitted = sack
        options.timestamps = tsval.map { TCPTimestamps(value: $0, echoReply: 0) }
        return incomingSYN(5000, options: options)
    }

    /// The peer's ACK of a SYN-ACK with ISN `cookie` (and, with timestamps, echoing `echo`).
    static func ack(_ cookie: SequenceNumber, echo: UInt32? = nil, tsval: UInt32 = 7000) -> TCPHeader {
        var options = TCPOptions()
        options.timestamps = echo.map { TCPTimestamps(value: tsval, echoReply: $0) }
        return TCPHeader(
            sourcePort: 40000, destinationPort: 80, sequenceNumber: 5001, acknowledgmentNumber: cookie.rawValue &+ 1,
            flags: .ack, window: 1000, options: options)
    }

    func testMSSIsEncodedAsTheLargestTableValueNotAbove() {
        let now = 90 * seconds
        for (peer, expected): (UInt16?, UInt16) in [
            (nil, 536), (500, 536), (1299, 536), (1300, 1300), (1459, 1440),
            (1460, 1460), (9000, 1460),
        ] {
            let cookie = SYNCookieTests.cookies.sequenceNumber(
                answering: SYNCookieTests.syn(mss: peer), on: SYNCookieTests.tuple, now: now)
            let decoded = SYNCookieTests.cookies.validate(
                SYNCookieTests.ack(cookie), on: SYNCookieTests.tuple, now: now)
            XCTAssertEqual(decoded?.maximumSegmentSize, expected, "peer MSS \(String(describing: peer))")
            XCTAssertEqual(decoded?.timestamps, false)
            XCTAssertNil(decoded?.windowScale)
        }
    }

    func testCookieExpiresAfterTwoMinutesAndIsBoundToItsTuple() {
        let issued = 600 * seconds
        let cookie = SYNCookieTests.cookies.sequenceNumber(
            answering: SYNCookieTests.syn(mss: 1460), on: SYNCookieTests.tuple, now: issued)
        let ack = SYNCookieTests.ack(cookie)
        for minutes: Int64 in [0, 1, 2] {
            XCTAssertNotNil(
                SYNCookieTests.cookies.validate(ack, on: SYNCookieTests.tuple, now: issued + minutes * 60 * seconds),
                "\(minutes) minutes")
        }
        XCTAssertNil(SYNCookieTests.cookies.validate(ack, on: SYNCookieTests.tuple, now: issued + 3 * 60 * seconds))
        var other = SYNCookieTests.tuple
        other.remotePort = 40001
        XCTAssertNil(SYNCookieTests.cookies.validate(ack, on: other, now: issued))
        var wrongSequence = ack
        // (The MSS index is added in, so a sequence number off by one or two decodes as another
        // table entry, as with Linux's cookies; further off, nothing decodes.)
        wrongSequence.sequenceNumber &+= 1000
        XCTAssertNil(SYNCookieTests.cookies.validate(wrongSequence, on: SYNCookieTests.tuple, now: issued))
        let otherKey = TCPSYNCookies(key: TCPSecretKey(bytes: [UInt8](repeating: 9, count: 16)))
        XCTAssertNil(otherKey.validate(ack, on: SYNCookieTests.tuple, now: issued))
    }

    /// Random ACKs almost never pass: the 24-bit check leaves 4 valid values in 2^24 per minute.
    func testForgedACKsAreRejected() {
        var random = SeededRandom(seed: 3)
        var accepted = 0
        for _ in 0..<100_000 {
            // Half with a random timestamp echo, so the option decoding sees garbage too.
            let bits = random.next()
            let forged = SYNCookieTests.ack(
                SequenceNumber(UInt32(truncatingIfNeeded: bits)),
                echo: bits >> 63 == 0 ? nil : UInt32(truncatingIfNeeded: bits >> 32))
            if SYNCookieTests.cookies.validate(forged, on: SYNCookieTests.tuple, now: 30 * seconds) != nil {
                accepted += 1
            }
        }
        // Expected 100,000 × 3 minutes × 4 / 2^24 ≈ 0.07.
        XCTAssertLessThanOrEqual(accepted, 1)
    }

    func testTimestampLowBitsCarryWindowScaleAndSACK() {
        XCTAssertEqual(
            TCPSYNCookies.timestampValue(tick: 0x1234_5678, peerWindowScale: 7, sackPermitted: true), 0x1234_5657)
        XCTAssertEqual(
            TCPSYNCookies.timestampValue(tick: 0x1234_5678, peerWindowScale: nil, sackPermitted: false), 0x1234_564F)
        // Never ahead of the clock: 0x..40 | 0x1F would be, so it steps back 64 ticks.
        XCTAssertEqual(
            TCPSYNCookies.timestampValue(tick: 0x1000_0040, peerWindowScale: 15, sackPermitted: true), 0x1000_001E)
        let cookie = SYNCookieTests.cookies.sequenceNumber(
            answering: SYNCookieTests.syn(mss: 1460), on: SYNCookieTests.tuple, now: 0)
        let decoded = SYNCookieTests.cookies.validate(
            SYNCookieTests.ack(cookie, echo: 0x1234_5657), on: SYNCookieTests.tuple, now: 0)
        XCTAssertEqual(
            decoded,
            TCPSYNCookies.Decoded(maximumSegmentSize: 1460, windowScale: 7, sackPermitted: true, timestamps: true))
    }

    /// A listener answers with a cookie SYN-ACK and keeps nothing; the peer's ACK alone makes the
    /// connection, with the MSS, window scale, SACK and timestamps the SYN offered.
    func testHandshakeCompletesFromTheCookieAlone() {
        var configuration = plainConfiguration()
        configuration.windowScaling = true
        configuration.timestamps = true
        configuration.sackPermitted = true
        configuration.receiveBufferSize = 256 * 1024
        let syn = SYNCookieTests.syn(mss: 1400, scale: 5, sack: true, tsval: 4242)
        let now = 75 * seconds
        let cookie = SYNCookieTests.cookies.sequenceNumber(answering: syn, on: SYNCookieTests.tuple, now: now)
        var actions = Actions()
        Connection.cookieSYNACK(
            answering: syn, cookie: cookie, configuration: configuration, routeMTU: 1500, now: now, into: &actions)
        XCTAssertEqual(actions.segments.count, 1)
        guard let synACK = actions.segments.first?.header else { return }
        XCTAssertEqual(
            Wire(synACK.flags, synACK.sequenceNumber, synACK.acknowledgmentNumber),
            Wire([.syn, .ack], cookie.rawValue, 5001))
        XCTAssertEqual(synACK.options.maximumSegmentSize, 1460)
        XCTAssertEqual(synACK.options.windowScale, 3, "256 KiB needs scale 3")
        XCTAssertTrue(synACK.options.sackPermitted)
        let tsval = synACK.options.timestamps?.value ?? 0
        XCTAssertEqual(tsval & 0x3F, 5 | 0x10, "scale 5 and SACK in the low bits")
        XCTAssertEqual(synACK.options.timestamps?.echoReply, 4242)

        // 30 ms later the peer's ACK arrives (its TSval is 4272).
        let later = now + 30 * milliseconds
        let ack = SYNCookieTests.ack(cookie, echo: tsval, tsval: 4272)
        guard let decoded = SYNCookieTests.cookies.validate(ack, on: SYNCookieTests.tuple, now: later) else {
            return XCTFail("a fresh cookie validates")
        }
        XCTAssertEqual(decoded.maximumSegmentSize, 1300, "1400 is carried as the table's 1300")
        actions.clear()
        var harness = Harness(
            Connection(
                cookieACK: ack, decoded: decoded, configuration: configuration, routeMTU: 1500, now: later,
                into: &actions))
        XCTAssertEqual(actions.segments, [], "the SYN-ACK is not sent again")
        harness.now = later
        harness.receive(ack)
        XCTAssertEqual(harness.state, .established)
        XCTAssertTrue(harness.actions.established)
        let connection = harness.connection
        XCTAssertEqual(connection.initialSendSequence, cookie)
        XCTAssertEqual(connection.receiveNext, SequenceNumber(5001))
        XCTAssertEqual(connection.sendScale, 5)
        XCTAssertEqual(connection.receiveScale, 3)
        XCTAssertTrue(connection.sackPermitted)
        XCTAssertTrue(connection.timestampsEnabled)
        XCTAssertEqual(connection.maximumSegmentSize, 1300 - 12)
        XCTAssertEqual(connection.sendWindow, 1000 << 5)
        let rtt = connection.retransmissionTimeout.smoothedRTT ?? 0
        XCTAssertGreaterThanOrEqual(rtt, 30 * milliseconds, "timed from the SYN-ACK's TSval")
        XCTAssertLessThan(rtt, 30 * milliseconds + 64 * milliseconds)
        // Data flows with the window the ACK offered, scaled.
        harness.run { $0.send(count: 100, now: $1, into: &$2) }
        XCTAssertEqual(harness.sent, [Wire([.ack, .psh], cookie.rawValue &+ 1, 5001, length: 100)])
    }
}
