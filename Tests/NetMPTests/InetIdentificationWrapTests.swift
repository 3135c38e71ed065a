import XCTest

@testable import NetMPInet
@testable import NetMPWire

/// The identification counters wrap, as 32-bit counters do: long idle gaps move a counter on by
/// up to the gap in milliseconds, so it passes 2^32 in a long-running stack. Found by the TAP
/// interop tests (1,000 connections over two queues trapped on an overflowing atomic add).
final class InetIdentificationWrapTests: XCTestCase {
    func testCountersWrapInsteadOfTrappingAfterLongIdleGaps() {
        let local = IPv4Address(198, 18, 0, 2)
        let peer = IPv4Address(198, 18, 0, 1)
        let identifiers = IPIdentifiers(seed: 4)
        // Gaps of about 35 days each: every one moves the counter on by up to 3 × 10^9.
        var now: Int64 = 1_000_000
        for _ in 0..<64 {
            now += 3_000_000_000 * 1_000_000
            let first = identifiers.next(source: local, destination: peer, protocol: 6, now: now)
            let second = identifiers.next(source: local, destination: peer, protocol: 6, now: now)
            XCTAssertEqual(second, first &+ 1, "consecutive within one millisecond")
        }
    }
}
