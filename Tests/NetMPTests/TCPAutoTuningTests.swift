import XCTest

@testable import NetMP
@testable import NetMPInterfaces
@testable import NetMPRuntime
@testable import NetMPSockets
@testable import NetMPTCP

/// Socket-buffer auto-tuning: the rule against exact figures, and a transfer over a long fat
/// simulated link (1 Gbit/s, 10 ms each way) that grows its window and finishes sooner than with
/// auto-tuning off, in simulated time, reproducibly.
final class TCPAutoTuningTests: XCTestCase {
    func testReceiveRuleGrowsOncePerRoundTripToFourTimesTheReadUpToTheLimit() {
        var tuning = TCPBufferAutoTuning()
        let rtt: Int64 = 20_000_000
        // The first read starts the round.
        XCTAssertNil(
            tuning.receiveBufferSize(afterReading: 1000, now: 0, roundTrip: rtt, current: 65536, limit: 1 << 20))
        // Within the round: only counted.
        XCTAssertNil(
            tuning.receiveBufferSize(
                afterReading: 30_000, now: 10_000_000, roundTrip: rtt, current: 65536, limit: 1 << 20))
        // A round trip on: 4 × 41,000 read in the round.
        XCTAssertEqual(
            tuning.receiveBufferSize(
                afterReading: 10_000, now: 20_000_000, roundTrip: rtt, current: 65536, limit: 1 << 20),
            164_000)
        // A reader slower than the buffer: no change, never a shrink.
        XCTAssertNil(
            tuning.receiveBufferSize(
                afterReading: 1000, now: 40_000_000, roundTrip: rtt, current: 164_000, limit: 1 << 20))
        // Capped at the limit.
        XCTAssertNil(
            tuning.receiveBufferSize(
                afterReading: 900_000, now: 50_000_000, roundTrip: rtt, current: 164_000, limit: 1 << 20))
        XCTAssertEqual(
            tuning.receiveBufferSize(
                afterReading: 0, now: 60_000_000, roundTrip: rtt, current: 164_000, limit: 1 << 20),
            1 << 20)
        // No RTT yet: nothing is decided.
        var fresh = TCPBufferAutoTuning()
        XCTAssertNil(fresh.receiveBufferSize(afterReading: 1, now: 0, roundTrip: nil, current: 1, limit: 100))
        XCTAssertNil(
            fresh.receiveBufferSize(afterReading: 50, now: 1_000_000_000, roundTrip: nil, current: 1, limit: 100))
    }

    func testSendRuleIsTwiceTheCongestionWindowUpToTheLimit() {
        XCTAssertEqual(
            TCPBufferAutoTuning.sendBufferSize(congestionWindow: 200_000, current: 262_144, limit: 4 << 20), 400_000)
        XCTAssertNil(TCPBufferAutoTuning.sendBufferSize(congestionWindow: 100_000, current: 262_144, limit: 4 << 20))
        XCTAssertEqual(
            TCPBufferAutoTuning.sendBufferSize(congestionWindow: 3 << 20, current: 262_144, limit: 4 << 20), 4 << 20)
    }

    struct Outcome: Equatable {
        var nanoseconds: Int64
        var sent: StreamHash
        var received: StreamHash
        var receiveBuffer: Int
        var sendBuffer: Int
    }

    /// `total` bytes from one stack to another through a switch whose ports add `delay` each way
    /// and drain at 1 Gbit/s, in the deterministic mode; nil when it did not finish in 60 s.
    func transfer(
        total: Int, autoTuning: Bool, seed: UInt64 = 11, receiveBufferSize: Int? = nil, limits: (Int, Int)? = nil
    ) throws -> Outcome? {
        let network = SimulatedNetwork(seed: seed)
        defer { network.shutdown() }
        let lan = network.makeSwitch(
            impairments: LinkImpairments(delay: .milliseconds(10), bandwidth: 1_000_000_000, queueLimit: 10_000))
        let a = network.makeStack()
        let b = network.makeStack()
        try network.attach(a, to: lan, address: "198.18.0.1/24")
        try network.attach(b, to: lan, address: "198.18.0.2/24")
        for stack in [a, b] { stack.tcpConfiguration.bufferAutoTuning = autoTuning }
        let target = SocketAddress.ipv4(IPv4Address(198, 18, 0, 2), port: 5000)
        let listener = try b.socket(.inet, .stream)
        try listener.bind(to: target)
        // SO_RCVBUF on the listener: its connections inherit the size and keep it.
        if let receiveBufferSize { try listener.setOption(.receiveBufferSize, receiveBufferSize) }
        if let (receive, _) = limits { try listener.setOption(.receiveBufferLimit, receive) }
        try listener.listen()
        listener.isNonBlocking = true
        let client = try a.socket(.inet, .stream)
        if let (_, send) = limits { try client.setOption(.sendBufferLimit, send) }
        client.isNonBlocking = true
        let start = network.clock.nanoseconds
        let run = try steppedTransfer(
            network: network, listener: listener, client: client, to: target,
            source: TransferSource(seed: seed, total: total), limit: .seconds(60))
        defer {
            run.server?.close()
            client.close()
            listener.close()
        }
        guard run.finished, let server = run.server else { return nil }
        return Outcome(
            nanoseconds: network.clock.nanoseconds - start, sent: run.sent, received: run.received,
            receiveBuffer: try server.option(.receiveBufferSize), sendBuffer: try client.option(.sendBufferSize))
    }

    func testAutoTuningGrowsTheWindowAndFinishesSoonerOverALongFatLink() throws {
        let total = 16 << 20
        let fixed = try XCTUnwrap(try transfer(total: total, autoTuning: false), "the fixed-buffer transfer ended")
        let tuned = try XCTUnwrap(try transfer(total: total, autoTuning: true), "the auto-tuned transfer ended")
        print("fixed buffers: \(Double(fixed.nanoseconds) / 1e6) ms; auto-tuned: \(Double(tuned.nanoseconds) / 1e6) ms")
        print("auto-tuned buffers: receive \(tuned.receiveBuffer) B, send \(tuned.sendBuffer) B")
        XCTAssertEqual(fixed.received, fixed.sent, "bytes exact")
        XCTAssertEqual(tuned.received, tuned.sent, "bytes exact")
        XCTAssertEqual(fixed.receiveBuffer, TCPProtocol.defaultBufferSize, "without auto-tuning the buffer stays")
        XCTAssertGreaterThan(tuned.receiveBuffer, 4 * TCPProtocol.defaultBufferSize, "the window grew")
        XCTAssertLessThanOrEqual(tuned.receiveBuffer, 6 << 20, "within the limit")
        XCTAssertGreaterThan(tuned.sendBuffer, TCPProtocol.defaultBufferSize, "the send buffer grew")
        XCTAssertLessThan(tuned.nanoseconds * 2, fixed.nanoseconds, "at least twice as fast")
        // Deterministic: the same seed gives the same run.
        XCTAssertEqual(try transfer(total: total, autoTuning: true), tuned)
    }

    func testAReceiveBufferTheUserSizedIsNotAutoTuned() throws {
        let outcome = try XCTUnwrap(try transfer(total: 4 << 20, autoTuning: true, receiveBufferSize: 300_000))
        XCTAssertEqual(outcome.received, outcome.sent, "bytes exact")
        XCTAssertEqual(outcome.receiveBuffer, 300_000)
    }

    func testPerSocketLimitsBoundTheGrowth() throws {
        let outcome = try XCTUnwrap(try transfer(total: 8 << 20, autoTuning: true, limits: (1 << 20, 768 << 10)))
        XCTAssertEqual(outcome.received, outcome.sent, "bytes exact")
        XCTAssertEqual(outcome.receiveBuffer, 1 << 20, "grown to the socket's receive limit")
        XCTAssertEqual(outcome.sendBuffer, 768 << 10, "grown to the socket's send limit")
    }
}
