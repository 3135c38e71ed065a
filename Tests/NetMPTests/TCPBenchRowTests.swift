import XCTest

@testable import NetMP
@testable import NetMPInterfaces
@testable import NetMPRuntime
@testable import NetMPSockets
@testable import NetMPTCP

/// What the `tcp.lossy.*` and `tcp.syn.flood` rows of `netmp bench tcp` are built from: the
/// response functions they are measured against, the self-checking byte stream, a scaled-down
/// lossy run (deterministic, byte-exact), and the spoofed SYNs through a discarding interface.
final class TCPBenchRowTests: XCTestCase {
    /// The Mathis bound at the rows' path: MSS 1448 (1460 less timestamps), RTT 10 ms.
    func testMathisBoundForRenoAtTheLossyRowsPath() {
        let tenMilliseconds: Int64 = 10_000_000
        // 1448 / 0.01 s × 1.22 / √0.01 = 144,800 × 12.2.
        XCTAssertEqual(
            TCPResponseFunction.mathisReno(maximumSegmentSize: 1448, roundTrip: tenMilliseconds, loss: 0.01),
            1_766_560, accuracy: 1e-6)
        // 144,800 × 1.22 / √0.001.
        XCTAssertEqual(
            TCPResponseFunction.mathisReno(maximumSegmentSize: 1448, roundTrip: tenMilliseconds, loss: 0.001),
            5_586_353.223_347, accuracy: 1e-3)
        // Inputs that give no bound.
        XCTAssertEqual(TCPResponseFunction.mathisReno(maximumSegmentSize: 0, roundTrip: tenMilliseconds, loss: 0.01), 0)
        XCTAssertEqual(TCPResponseFunction.mathisReno(maximumSegmentSize: 1448, roundTrip: 0, loss: 0.01), 0)
        XCTAssertEqual(TCPResponseFunction.mathisReno(maximumSegmentSize: 1448, roundTrip: tenMilliseconds, loss: 0), 0)
        XCTAssertEqual(
            TCPResponseFunction.mathisReno(maximumSegmentSize: 1448, roundTrip: tenMilliseconds, loss: 1.5), 0)
        XCTAssertEqual(
            TCPResponseFunction.mathisReno(maximumSegmentSize: 1448, roundTrip: tenMilliseconds, loss: .nan), 0)
    }

    /// CUBIC at the rows' path is in its Reno-friendly region (√(3/2p) segments per RTT, Reno's
    /// own sawtooth); on a long path with rare loss its cubic curve takes over.
    func testCubicResponseIsRenoFriendlyAtTheRowsPathAndCubicOnALongRareLossPath() {
        let tenMilliseconds: Int64 = 10_000_000
        // 144,800 × √(1.5 / 0.01) and × √(1.5 / 0.001).
        XCTAssertEqual(
            TCPResponseFunction.cubic(maximumSegmentSize: 1448, roundTrip: tenMilliseconds, loss: 0.01),
            1_773_430.573_775, accuracy: 1e-3)
        XCTAssertEqual(
            TCPResponseFunction.cubic(maximumSegmentSize: 1448, roundTrip: tenMilliseconds, loss: 0.001),
            5_608_079.885_308, accuracy: 1e-3)
        XCTAssertEqual(
            TCPResponseFunction.aimd(
                maximumSegmentSize: 1448, roundTrip: tenMilliseconds, loss: 0.01, increase: 1, decrease: 0.5),
            1_773_430.573_775, accuracy: 1e-3, "Reno's AIMD(1, 1/2): the same √(3/2p)")
        // RTT 100 ms, p = 10⁻⁶: 1.0538 × (0.1 / 10⁻⁶)^¾ segments beats √(1.5 × 10⁶).
        XCTAssertEqual(
            TCPResponseFunction.cubic(maximumSegmentSize: 1448, roundTrip: 100_000_000, loss: 1e-6),
            85_810_153.568_25, accuracy: 1e-2)
    }

    /// The next `count` bytes of `stream`.
    private func take(_ count: Int, from stream: inout StampedStream) -> [UInt8] {
        var taken: [UInt8] = []
        while taken.count < count {
            let left = count - taken.count
            _ = stream.withNextBytes { bytes in
                let n = Swift.min(left, bytes.count)
                taken += bytes[0..<n]
                return n
            }
        }
        return taken
    }

    func testStampedStreamFindsAByteOutOfPlaceAtItsPosition() {
        var sender = StampedStream(seed: 9)
        // Three blocks and a bit, in uneven pieces, so that reads and checks cross block edges.
        var sent: [UInt8] = []
        for piece in [1000, 70_000, 65_536, 60_000, 3] { sent += take(piece, from: &sender) }
        XCTAssertEqual(sent.count, 196_539)
        XCTAssertEqual(sender.position, sent.count)
        for position in [0, 7, 8, 65_535, 65_536, 123_457, 196_538] {
            XCTAssertEqual(sent[position], StampedStream.byte(at: position, seed: 9), "byte \(position)")
        }
        XCTAssertNotEqual(take(64, from: &sender), take(64, from: &sender), "no short period")
        var exact = StampedStream(seed: 9)
        XCTAssertNil(sent[0..<77_777].withUnsafeBytes { exact.check($0) })
        XCTAssertNil(sent[77_777...].withUnsafeBytes { exact.check($0) })
        XCTAssertEqual(exact.position, sent.count)
        var otherSeed = StampedStream(seed: 10)
        XCTAssertEqual(sent[0..<64].withUnsafeBytes { otherSeed.check($0) }, 0, "another seed, another stream")
        var damaged = sent
        damaged[131_100] ^= 0x40
        var checker = StampedStream(seed: 9)
        XCTAssertEqual(damaged.withUnsafeBytes { checker.check($0) }, 131_100)
        // A segment's worth sent again (1448 bytes from 8552): caught at the first repeated byte.
        let repeated = Array(sent[0..<10_000] + sent[8552..<20_000])
        var again = StampedStream(seed: 9)
        XCTAssertEqual(repeated.withUnsafeBytes { again.check($0) }, 10_000)
    }

    /// One simulated second of the `tcp.lossy.1pct` row's path: the same seed gives the same run
    /// (every counter, the same bytes), and what the application read is exactly what was sent.
    func testScaledDownLossyRowIsDeterministicAndByteExact() throws {
        func run() throws -> (LossyLinkGoodput.Report, StreamHash, [TCPInfo]) {
            var hash = StreamHash()
            var trace: [TCPInfo] = []
            let report = try bounded(120) {
                try LossyLinkGoodput.run(
                    .init(loss: 0.01, duration: .seconds(1), seed: 3), observeReceived: { hash.add($0) },
                    observeSender: { _, info in trace.append(info) })
            }
            return (report, hash, trace)
        }
        let (first, firstHash, firstTrace) = try run()
        let (second, secondHash, secondTrace) = try run()
        XCTAssertEqual(first, second, "the same seed replays the run")
        XCTAssertEqual(firstHash, secondHash)
        XCTAssertEqual(firstTrace.count, 1000, "one sample per millisecond step")
        XCTAssertEqual(firstTrace, secondTrace, "step by step: the sender's state at every millisecond")
        XCTAssertNil(first.firstMismatch, "every byte read was the one sent there")
        XCTAssertEqual(first.measuredNanoseconds, 1_000_000_000)
        XCTAssertGreaterThan(first.delivered, 0)
        XCTAssertEqual(firstHash.count, first.delivered)
        // The bytes read, hashed, are the stream's first `delivered` bytes.
        var expected = StreamHash()
        var stream = StampedStream(seed: 3)
        while expected.count < first.delivered {
            let left = first.delivered - expected.count
            _ = stream.withNextBytes { bytes in
                let n = Swift.min(left, bytes.count)
                expected.add(UnsafeRawBufferPointer(rebasing: bytes[0..<n]))
                return n
            }
        }
        XCTAssertEqual(firstHash, expected)
        XCTAssertGreaterThanOrEqual(first.written, first.delivered)
        XCTAssertEqual(first.sender.sendMaximumSegmentSize, 1448)
        let link = try XCTUnwrap(first.link)
        XCTAssertGreaterThan(link.lost, 0, "the link dropped frames")
        XCTAssertEqual(link.queueDrops, 0, "a loss-limited window never fills one BDP of queue")
        XCTAssertGreaterThan(first.sender.retransmittedSegments, 0, "and the sender repaired them")
        print(
            "lossy 1 % for 1 s: \(first.delivered) bytes, goodput \(first.goodput / 1e6) MB/s, mean cwnd "
                + "\(first.meanCongestionWindow / 1448) segments, \(first.sender.retransmittedSegments) retransmitted")
    }

    /// The `.bbr` rows' path scaled down to 100 Mbit/s: BBR's run replays to the byte, every byte
    /// read is the one sent, and it delivers several times what CUBIC does through the same 1 %
    /// random loss (a loss does not shrink its model of the path).
    func testScaledDownBBRRowIsDeterministicByteExactAndAheadOfCubic() throws {
        func run(_ algorithm: TCPCongestionAlgorithm) throws -> (LossyLinkGoodput.Report, StreamHash) {
            var parameters = LossyLinkGoodput.Parameters(loss: 0.01, duration: .seconds(2), seed: 3)
            parameters.linkBitsPerSecond = 100_000_000
            parameters.congestionControl = algorithm
            var hash = StreamHash()
            let report = try bounded(300) { try LossyLinkGoodput.run(parameters, observeReceived: { hash.add($0) }) }
            return (report, hash)
        }
        let (first, firstHash) = try run(.bbr)
        let (second, secondHash) = try run(.bbr)
        XCTAssertEqual(first, second, "the same seed replays the run")
        XCTAssertEqual(firstHash, secondHash)
        XCTAssertNil(first.firstMismatch, "every byte read was the one sent there")
        XCTAssertEqual(firstHash.count, first.delivered)
        XCTAssertEqual(first.sender.bbrMode, .probeBandwidth)
        XCTAssertGreaterThan(first.sender.pacingRate, 0)
        XCTAssertGreaterThan(first.sender.retransmittedSegments, 0)
        let (cubic, _) = try run(.cubic)
        XCTAssertNil(cubic.sender.bbrMode)
        XCTAssertEqual(cubic.sender.pacingRate, 0)
        XCTAssertGreaterThan(first.goodput, 4 * cubic.goodput)
        print(
            "lossy 1 % at 100 Mbit/s for 2 s: BBR \(first.goodput / 1e6) MB/s, CUBIC \(cubic.goodput / 1e6) MB/s")
    }

    /// Spoofed SYNs through a discarding interface at a listener on the wildcard address with a
    /// backlog of 4: four make half-open children, every other one a cookie whose SYN-ACK leaves
    /// through that interface; a client over loopback still connects (through a cookie) and
    /// exchanges bytes with the same listener.
    func testSpoofedSYNsAreAnsweredWithCookiesAndALoopbackClientStillConnects() throws {
        let network = SimulatedNetwork(seed: 31)
        defer { network.shutdown() }
        let stack = network.makeStack(threadCount: 2)
        let wire = DiscardInterface()
        try stack.addAddress("198.18.0.1/15", to: wire)
        let listener = try stack.socket(.inet, .stream)
        try listener.bind(to: .ipv4(.unspecified, port: 7100))
        try listener.listen(backlog: 4)
        listener.isNonBlocking = true
        network.runUntilIdle()
        var syns = SpoofedSYNs(
            to: IPv4Address(198, 18, 0, 1), port: 7100, interfaceAddress: wire.hardwareAddress, seed: 5)
        var sources = Set<IPv4Address>()
        for _ in 0..<10 {
            var frames: [Frame] = []
            for _ in 0..<100 {
                let frame = syns.next()
                XCTAssertEqual(frame.count, SpoofedSYNs.frameLength)
                let bytes = frame.array
                let source = IPv4Address(bytes[26], bytes[27], bytes[28], bytes[29])
                XCTAssertTrue(
                    source.rawValue >= IPv4Address(198, 18, 1, 0).rawValue
                        && source.rawValue < IPv4Address(198, 19, 255, 0).rawValue, "\(source)")
                sources.insert(source)
                frames.append(frame)
            }
            wire.deliverInbound(frames)
            XCTAssertTrue(network.runUntilIdle())
        }
        XCTAssertGreaterThan(sources.count, 990, "sources spread over the range")
        var statistics = stack.tcpStatistics()
        XCTAssertEqual(statistics.cookiesSent, 996, "past the backlog of four, cookies")
        XCTAssertEqual(statistics.malformedSegments, 0, "checksums and options well formed")
        XCTAssertEqual(wire.statistics.framesSent, 1000, "a SYN-ACK for every SYN, out through the wire")
        XCTAssertEqual(wire.statistics.framesReceived, 1000)

        let client = try stack.socket(.inet, .stream)
        client.isNonBlocking = true
        startConnect(client, to: .ipv4(.loopback, port: 7100))
        var server: NetSocket?
        XCTAssertTrue(
            network.run(
                until: {
                    if server == nil { server = try? listener.accept() }
                    return server != nil && client.state.contains(.connected)
                }, limit: .seconds(5)))
        let accepted = try XCTUnwrap(server)
        accepted.isNonBlocking = true
        statistics = stack.tcpStatistics()
        XCTAssertEqual(statistics.cookiesValidated, 1, "the loopback client came in through its cookie")
        XCTAssertEqual(try client.write([1, 2, 3, 4]), 4)
        network.runUntilIdle()
        XCTAssertEqual(try accepted.read(maxBytes: 16), [1, 2, 3, 4])
        client.close()
        accepted.close()
        listener.close()
        network.run(for: .seconds(1))
    }
}
