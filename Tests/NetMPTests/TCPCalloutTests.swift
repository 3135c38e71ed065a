import XCTest

@testable import NetMP
@testable import NetMPTCP

/// The connection's callout is armed lazily (left armed when the deadline moves later or goes
/// away): a callout that fires with nothing due sends nothing, and a timer that is due still
/// runs at its own deadline. Driven mode, manual clock, over 127.0.0.1.
final class TCPCalloutTests: XCTestCase {
    private func drivenPair() throws -> (NetworkStack, ManualClock, client: NetSocket, server: NetSocket) {
        let clock = ManualClock(startingAt: 1_000_000_000)
        let stack = NetworkStack(.init(threadCount: 1, clock: clock, mode: .driven))
        let listener = try stack.socket(.inet, .stream)
        try listener.bind(to: .ipv4(.loopback, port: 7000))
        try listener.listen(backlog: 4)
        listener.isNonBlocking = true
        let client = try stack.socket(.inet, .stream)
        client.isNonBlocking = true
        do {
            try client.connect(to: .ipv4(.loopback, port: 7000))
        } catch .inProgress {}
        stack.runUntilIdle()
        let server = try listener.accept()
        server.isNonBlocking = true
        listener.close()
        stack.runUntilIdle()
        return (stack, clock, client, server)
    }

    func testCalloutLeftArmedAfterItsTimerWentAwaySendsNothing() throws {
        let (stack, clock, client, server) = try drivenPair()
        defer { stack.shutdown() }
        // The byte arms the client's retransmission timer; the ACK (quick at the start) stops it,
        // and the client's callout stays armed for the old deadline.
        XCTAssertEqual(try client.write([1]), 1)
        stack.runUntilIdle()
        XCTAssertEqual(try server.read(maxBytes: 8), [1])
        stack.runUntilIdle()
        let before = stack.tcpStatistics()
        // Past every deadline the byte armed (the initial RTO is 1 s): nothing is due, so nothing
        // is sent, retransmitted or timed out.
        clock.advance(by: 10_000_000_000)
        stack.runUntilIdle()
        let after = stack.tcpStatistics()
        XCTAssertEqual(after.segmentsSent, before.segmentsSent)
        XCTAssertEqual(after.retransmittedSegments, 0)
        XCTAssertEqual(after.retransmissionTimeouts, 0)
        // The connection still works, and its next timer is armed afresh.
        XCTAssertEqual(try server.write([2, 3]), 2)
        stack.runUntilIdle()
        XCTAssertEqual(try client.read(maxBytes: 8), [2, 3])
        XCTAssertEqual(stack.tcpStatistics().liveConnections, 2)
    }

    func testDelayedACKRunsAtItsOwnDeadline() throws {
        let (stack, clock, client, server) = try drivenPair()
        defer { stack.shutdown() }
        // Use up the quick ACKs, so the next data segment's ACK is delayed (40 ms).
        let quickACKs = stack.tcpConfiguration.quickACKSegments
        for index in 0..<quickACKs {
            XCTAssertEqual(try client.write([UInt8(truncatingIfNeeded: index)]), 1)
            stack.runUntilIdle()
        }
        XCTAssertEqual(try server.read(maxBytes: 64).count, quickACKs)
        stack.runUntilIdle()
        let before = stack.tcpStatistics().segmentsSent
        XCTAssertEqual(try client.write([9]), 1)
        stack.runUntilIdle()
        XCTAssertEqual(stack.tcpStatistics().segmentsSent, before + 1, "the data segment, its ACK delayed")
        clock.advance(by: 39_999_999)
        stack.runUntilIdle()
        XCTAssertEqual(stack.tcpStatistics().segmentsSent, before + 1, "no ACK before 40 ms")
        clock.advance(by: 1)
        stack.runUntilIdle()
        XCTAssertEqual(stack.tcpStatistics().segmentsSent, before + 2, "the delayed ACK at 40 ms")
        XCTAssertEqual(stack.tcpStatistics().retransmittedSegments, 0)
        XCTAssertEqual(try server.read(maxBytes: 8), [9])
    }
}
