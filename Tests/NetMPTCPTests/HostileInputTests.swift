import NetMPTCP
import NetMPWire
import XCTest

/// Random segments thrown at a connection in every state never trap and never break its invariants:
/// the receive buffer is never overrun and segments only name bytes that are in the send queue.
final class HostileInputTests: XCTestCase {
    func testRandomSegmentsInEveryState() {
        var random = SeededRandom(seed: 77)
        var events = 0
        var segmentsOut = 0
        for state in StateTableTests.states {
            for round in 0..<300 {
                var harness = StateTableTests.harness(in: state)
                harness.run { $0.send(count: 3000, now: $1, into: &$2) }
                var queued = harness.connection.sendQueueCount
                for step in 0..<20 {
                    let context = "\(state) round \(round) step \(step)"
                    let next = harness.connection.receiveNext.rawValue
                    let ours = harness.connection.sendUnacknowledged.rawValue
                    let sequence =
                        random.chance(500)
                        ? next &+ UInt32(random.below(3000)) &- 1000 : UInt32(truncatingIfNeeded: random.next())
                    let ack =
                        random.chance(500)
                        ? ours &+ UInt32(random.below(6000)) &- 1000 : UInt32(truncatingIfNeeded: random.next())
                    var options = TCPOptions()
                    if random.chance(300) { options.maximumSegmentSize = UInt16(random.below(70000) % 65536) }
                    if random.chance(300) { options.windowScale = UInt8(random.below(256)) }
                    if random.chance(300) {
                        options.timestamps = TCPTimestamps(
                            value: UInt32(truncatingIfNeeded: random.next()),
                            echoReply: UInt32(truncatingIfNeeded: random.next()))
                    }
                    var flags = TCPFlags(rawValue: UInt8(truncatingIfNeeded: random.next()))
                    if !random.chance(100) {
                        // Mostly without RST, so the connection lives long enough to be worked on.
                        flags.remove(.rst)
                    }
                    let header = peer(
                        flags, sequence, ack,
                        window: UInt16(truncatingIfNeeded: random.next()), options: options)
                    harness.now += Int64(random.below(300)) * milliseconds
                    switch random.below(10) {
                    case 0: harness.advance(to: harness.now)
                    case 1: harness.run { $0.received(count: random.below(5000), now: $1, into: &$2) }
                    case 2: harness.run { $0.send(count: random.below(5000), now: $1, into: &$2) }
                    default: harness.receive(header, payload: Array(repeating: 1, count: random.below(2000)))
                    }
                    let connection = harness.connection
                    events += 1
                    segmentsOut += harness.actions.segments.count
                    XCTAssertLessThanOrEqual(harness.actions.acknowledgedBytes, queued, context)
                    queued = connection.sendQueueCount
                    XCTAssertGreaterThanOrEqual(queued, 0, context)
                    for segment in harness.actions.segments where segment.payloadLength > 0 {
                        XCTAssertGreaterThanOrEqual(segment.sendQueueOffset, 0, context)
                        XCTAssertLessThanOrEqual(segment.sendQueueOffset + segment.payloadLength, queued, context)
                    }
                    XCTAssertLessThanOrEqual(
                        connection.unreadCount, connection.configuration.receiveBufferSize, context)
                    XCTAssertFalse(connection.sendMax < connection.sendUnacknowledged, context)
                    XCTAssertFalse(connection.sendMax < connection.sendNext, context)
                    if connection.state == .closed {
                        XCTAssertNil(connection.nextDeadline, context)
                        break
                    }
                }
            }
        }
        print("\(events) hostile events, \(segmentsOut) segments in reply")
        XCTAssertGreaterThan(events, 30_000)
    }
}
