import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPRuntime
@testable import NetMPSockets
@testable import NetMPTCP

/// Window updates through the socket layer, in the deterministic mode: a reader tells the owner of
/// its reads (a *rcvd* message) only when that earns a window update of its own, and the owner
/// then sends exactly one.
final class TCPWindowUpdateTests: XCTestCase {
    /// A connected pair over a switch with 1 ms of delay each way (what `b` sends in answer to a
    /// read is counted before the sender can answer it): `a` sends to `b`, whose receive buffer
    /// is 64 KiB.
    private func connectedPair(_ network: SimulatedNetwork) throws -> (
        sender: NetSocket, receiver: NetSocket, b: NetworkStack
    ) {
        let lan = network.makeSwitch(impairments: LinkImpairments(delay: .milliseconds(1)))
        let a = network.makeStack()
        let b = network.makeStack()
        try network.attach(a, to: lan, address: "198.18.4.1/24")
        try network.attach(b, to: lan, address: "198.18.4.2/24")
        let listener = try b.socket(.inet, .stream)
        try listener.setOption(.receiveBufferSize, 64 << 10)
        try listener.bind(to: .ipv4(IPv4Address(198, 18, 4, 2), port: 9100))
        try listener.listen(backlog: 1)
        listener.isNonBlocking = true
        let sender = try a.socket(.inet, .stream)
        sender.isNonBlocking = true
        assertThrows(.inProgress) { () throws(NetError) in
            try sender.connect(to: .ipv4(IPv4Address(198, 18, 4, 2), port: 9100))
        }
        XCTAssertTrue(network.run(until: { sender.state.contains(.connected) }, limit: .seconds(5)))
        XCTAssertTrue(network.run(until: { listener.core.listenQueue?.counts.complete == 1 }, limit: .seconds(5)))
        let receiver = try listener.accept()
        receiver.isNonBlocking = true
        listener.close()
        return (sender, receiver, b)
    }

    /// 48 KiB sent into a 64 KiB buffer leaves 16 KiB of window: read in 1 KiB pieces, an update
    /// comes after every 16 KiB (the window left, then a quarter of the buffer), not every 2 MSS.
    func testSmallReadsFromALargeBufferSendAnUpdatePerQuarterBuffer() throws {
        let network = SimulatedNetwork(seed: 41)
        defer { network.shutdown() }
        let (sender, receiver, b) = try connectedPair(network)
        defer {
            sender.close()
            receiver.close()
        }
        let stream = (0..<(48 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 8) }
        XCTAssertEqual(try sender.write(stream), stream.count)
        XCTAssertTrue(
            network.run(until: { receiver.core.receiveBuffer.byteCount.load(ordering: .relaxed) == stream.count }))
        // Every ACK of the data (delayed ones too) is out.
        network.run(for: .milliseconds(200))
        var received: [UInt8] = []
        var updates: [Int] = []
        var sent = b.tcpStatistics().segmentsSent
        for piece in 0..<48 {
            received += try receiver.read(maxBytes: 1024)
            network.run(for: .milliseconds(5))
            let now = b.tcpStatistics().segmentsSent
            if now != sent { updates.append(piece + 1) }
            XCTAssertLessThanOrEqual(now - sent, 1, "one window update at a time")
            sent = now
        }
        XCTAssertEqual(received, stream)
        // 16 KiB read doubles the 16 KiB left; then each quarter of the buffer read is worth one.
        XCTAssertEqual(updates, [16, 32, 48])
    }

    /// A window the sender filled reopens as soon as 2 MSS are read (the update is due at once,
    /// however little of the window was advertised).
    func testAClosedWindowReopensAfterTwoSegmentsAreRead() throws {
        let network = SimulatedNetwork(seed: 42)
        defer { network.shutdown() }
        let (sender, receiver, b) = try connectedPair(network)
        defer {
            sender.close()
            receiver.close()
        }
        let stream = (0..<(80 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ $0 >> 9) }
        var written = 0
        /// Writes until the sender's buffer is full or the stream is out.
        func writeMore() {
            while written < stream.count, let n = try? stream[written...].withUnsafeBytes({ try sender.write($0) }) {
                written += n
            }
        }
        writeMore()
        network.run(for: .milliseconds(200))
        // Full, but for a tail shorter than an MSS that the sender's silly-window avoidance holds.
        XCTAssertGreaterThan(receiver.core.receiveBuffer.byteCount.load(ordering: .relaxed), (64 << 10) - 1460)
        var received: [UInt8] = []
        let before = b.tcpStatistics().segmentsSent
        received += try receiver.read(maxBytes: 2048)
        network.run(for: .milliseconds(5))
        XCTAssertEqual(b.tcpStatistics().segmentsSent, before, "2048 bytes are less than 2 MSS")
        received += try receiver.read(maxBytes: 1024)
        // Stopped at the update (the data it lets go would draw ACKs of its own).
        XCTAssertTrue(network.run(until: { b.tcpStatistics().segmentsSent > before }, limit: .microseconds(500)))
        XCTAssertEqual(b.tcpStatistics().segmentsSent, before + 1, "3072 bytes reopen the window")
        // The rest of the stream follows.
        writeMore()
        XCTAssertTrue(
            network.run(
                until: {
                    if let more = try? receiver.read(maxBytes: 64 << 10) { received += more }
                    writeMore()
                    return received.count == stream.count
                }, limit: .seconds(10)))
        XCTAssertEqual(received, stream)
    }
}
