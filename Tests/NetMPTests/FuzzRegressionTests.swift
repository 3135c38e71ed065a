import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPRuntime

/// Crashes the libFuzzer targets (Proofs/fuzz) found, each kept as a test.
final class FuzzRegressionTests: SingleHostTestCase {
    /// The receive fuzzer: an ICMP error sent after the clock had moved on two minutes per input
    /// trapped on an arithmetic overflow in the identification counters (`Atomic.add` traps;
    /// counters start anywhere and a step after an idle gap can be billions).
    func testIdentificationCountersWrapInsteadOfTrapping() {
        let identifiers = IPIdentifiers(seed: 1)
        let source = address("198.18.0.1")
        let destination = address("198.18.0.2")
        let gap: Int64 = (1 << 31) * 1_000_000  // 2^31 ms between sends
        for send in 0..<64 {
            _ = identifiers.next(source: source, destination: destination, protocol: 17, now: Int64(send) * gap)
        }
        // Within one millisecond the counter steps by one, wrapped or not.
        let now = 64 * gap
        let first = identifiers.next(source: source, destination: destination, protocol: 17, now: now)
        let second = identifiers.next(source: source, destination: destination, protocol: 17, now: now)
        XCTAssertEqual(second, first &+ 1)
        // The same seed draws the same sequence.
        let again = IPIdentifiers(seed: 1)
        var replayed: UInt16 = 0
        for send in 0...64 {
            replayed = again.next(source: source, destination: destination, protocol: 17, now: Int64(send) * gap)
        }
        XCTAssertEqual(replayed, first)
    }

    /// Found beside it: the 16-bit ping identifier trapped on its 65536th ping.
    func testPingIdentifierWrapsAfter65535Pings() throws {
        try makeStack()
        stack.inet.nextPingIdentifier.store(0xFFFE, ordering: .relaxed)
        XCTAssertEqual(stack.startPing(peer, timeout: .seconds(1)).identifier, 0xFFFF)
        XCTAssertEqual(stack.startPing(peer, timeout: .seconds(1)).identifier, 0)
        XCTAssertEqual(stack.startPing(peer, timeout: .seconds(1)).identifier, 1)
    }
}
