import NetMPTCP
import NetMPWire
import XCTest

/// Two connections joined by a seeded lossy, reordering, duplicating link under one manual clock
/// that jumps from event to event. Each end writes its stream as fast as its send buffer allows and
/// reads everything at once; both streams must arrive byte-exact (FNV-1a) and both ends must close.
struct Simulation {
    struct Impairments {
        /// Per-mille chances per segment.
        var lossPermille = 0
        var duplicatePermille = 0
        var reorderPermille = 0
        var delay: Int64 = 5 * milliseconds
        /// A slow reader takes at most this many bytes every `readInterval`; nil reads at once.
        var readChunk: Int?
        var readInterval: Int64 = 1 * milliseconds
    }

    struct Packet {
        var arrival: Int64
        var order: Int
        var to: Int
        var header: TCPHeader
        var payload: ArraySlice<UInt8>
    }

    struct End {
        var connection: Connection
        /// The whole stream this end sends; the send queue is `stream[acknowledged ..< appended]`.
        let stream: [UInt8]
        var acknowledged = 0
        var appended = 0
        var shutDown = false
        var received = FNV1a()
        var receivedCount = 0
        var endOfStream = false
        var closed = false
        var error: TCPError?
        /// Bytes delivered that a slow reader has not read yet, and when it reads next.
        var unread = 0
        var nextRead: Int64?
    }

    var ends: [End]
    var link: [Packet] = []
    var now: Int64 = 0
    var random: SeededRandom
    let impairments: Impairments
    let sendBufferSize = 256 * 1024
    var order = 0
    var segmentsSent = 0
    /// Segments that named bytes outside the send queue (must stay zero).
    var rangeViolations = 0
    var actions = Actions()

    init(seed: UInt64, bytes: (Int, Int), impairments: Impairments, configuration: TCPConfiguration) {
        random = SeededRandom(seed: seed)
        self.impairments = impairments
        var streamRandom = SeededRandom(seed: seed ^ 0xABCD)
        let first = (0..<bytes.0).map { _ in UInt8(truncatingIfNeeded: streamRandom.next()) }
        let second = (0..<bytes.1).map { _ in UInt8(truncatingIfNeeded: streamRandom.next()) }
        ends = [
            End(
                connection: Connection(
                    configuration: configuration, localPort: 40000, remotePort: 80,
                    initialSequenceNumber: SequenceNumber(UInt32(truncatingIfNeeded: seed &* 7919))),
                stream: first),
            End(
                connection: Connection(
                    configuration: configuration, localPort: 80, remotePort: 40000,
                    initialSequenceNumber: SequenceNumber(0xFFFF_F000)),
                stream: second),
        ]
    }

    /// Runs until both ends are closed or in TIME_WAIT with both streams delivered; false if it did
    /// not finish within `maximumSteps` events.
    mutating func run(maximumSteps: Int) -> Bool {
        actions.clear()
        ends[0].connection.connect(now: now, into: &actions)
        apply(0)
        var steps = 0
        while steps < maximumSteps {
            steps += 1
            if isFinished {
                return true
            }
            let linkTime = link.first?.arrival
            var timerEnd: Int?
            var timerTime: Int64?
            var isRead = false
            for index in 0..<2 {
                if let deadline = ends[index].connection.nextDeadline, timerTime.map({ deadline < $0 }) ?? true {
                    timerTime = deadline
                    timerEnd = index
                    isRead = false
                }
                if let read = ends[index].nextRead, timerTime.map({ read < $0 }) ?? true {
                    timerTime = read
                    timerEnd = index
                    isRead = true
                }
            }
            if let linkTime, timerTime.map({ linkTime <= $0 }) ?? true {
                let packet = link.removeFirst()
                now = Swift.max(now, packet.arrival)
                deliver(packet)
            } else if let timerEnd, let timerTime {
                now = Swift.max(now, timerTime)
                actions.clear()
                if isRead {
                    let count = Swift.min(ends[timerEnd].unread, impairments.readChunk ?? 0)
                    ends[timerEnd].unread -= count
                    ends[timerEnd].nextRead = ends[timerEnd].unread > 0 ? now + impairments.readInterval : nil
                    ends[timerEnd].connection.received(count: count, now: now, into: &actions)
                } else {
                    ends[timerEnd].connection.timerFired(now: now, into: &actions)
                }
                apply(timerEnd)
            } else {
                return isFinished
            }
        }
        return false
    }

    var isFinished: Bool {
        ends.allSatisfy { end in
            end.endOfStream && end.acknowledged == end.stream.count
                && (end.closed || end.connection.state == .timeWait)
        }
    }

    private mutating func deliver(_ packet: Packet) {
        let index = packet.to
        if ends[index].connection.state == .closed && !ends[index].closed && index == 1 {
            // The passive end is a listen socket until the first SYN.
            guard TCPListener.decide(packet.header, payloadLength: packet.payload.count) == .accept else { return }
            actions.clear()
            ends[1].connection = Connection(
                acceptingSYN: packet.header, configuration: ends[1].connection.configuration,
                initialSequenceNumber: ends[1].connection.initialSendSequence, now: now, into: &actions)
            apply(1)
            return
        }
        actions.clear()
        ends[index].connection.receive(packet.header, payload: packet.payload, now: now, into: &actions)
        apply(index)
    }

    /// Carries out one event's actions for end `index`, then lets its application write and read.
    private mutating func apply(_ index: Int) {
        var pending = true
        var rounds = 0
        while pending && rounds < 8 {
            rounds += 1
            ends[index].acknowledged += actions.acknowledgedBytes
            for payload in actions.delivered {
                ends[index].received.add(payload)
                ends[index].receivedCount += payload.count
            }
            let readCount = actions.deliveredByteCount
            if actions.endOfStream {
                ends[index].endOfStream = true
            }
            if actions.closed {
                ends[index].closed = true
                ends[index].error = actions.error
            }
            let base = ends[index].acknowledged
            for segment in actions.segments {
                let start = base + segment.sendQueueOffset
                guard segment.sendQueueOffset >= 0, segment.payloadLength >= 0,
                    start + segment.payloadLength <= ends[index].appended
                else {
                    rangeViolations += 1
                    continue
                }
                let payload = ends[index].stream[start..<(start + segment.payloadLength)]
                transmit(segment.header, payload: payload, to: 1 - index)
            }
            if let challenge = actions.challengeACK {
                // Nothing forges segments here: the stack-wide rate limit never bites.
                transmit(challenge.header, payload: [], to: 1 - index)
            }
            actions.clear()
            // The application reads all it was given and writes what fits.
            pending = false
            if readCount > 0 && impairments.readChunk != nil {
                ends[index].unread += readCount
                if ends[index].nextRead == nil {
                    ends[index].nextRead = now + impairments.readInterval
                }
            } else if readCount > 0 {
                ends[index].connection.received(count: readCount, now: now, into: &actions)
                pending = true
            }
            let state = ends[index].connection.state
            if state == .established || state == .closeWait {
                let room = sendBufferSize - (ends[index].appended - ends[index].acknowledged)
                let count = Swift.min(room, ends[index].stream.count - ends[index].appended)
                if count > 0 {
                    ends[index].appended += count
                    ends[index].connection.send(count: count, now: now, into: &actions)
                    pending = true
                }
                if ends[index].appended == ends[index].stream.count && !ends[index].shutDown {
                    ends[index].shutDown = true
                    ends[index].connection.shutdownWrite(now: now, into: &actions)
                    pending = true
                }
            }
        }
    }

    private mutating func transmit(_ header: TCPHeader, payload: ArraySlice<UInt8>, to index: Int) {
        segmentsSent += 1
        if random.chance(impairments.lossPermille) {
            return
        }
        var copies = 1
        if random.chance(impairments.duplicatePermille) {
            copies = 2
        }
        for _ in 0..<copies {
            var arrival = now + impairments.delay
            if random.chance(impairments.reorderPermille) {
                arrival += Int64(random.below(Int(3 * impairments.delay)))
            }
            order += 1
            let packet = Packet(arrival: arrival, order: order, to: index, header: header, payload: payload)
            // Keep the link sorted by arrival (stable for equal times).
            var position = link.count
            while position > 0 && link[position - 1].arrival > arrival {
                position -= 1
            }
            link.insert(packet, at: position)
        }
    }
}

final class SimulationTests: XCTestCase {
    func transfer(
        seed: UInt64, bytes: (Int, Int), impairments: Simulation.Impairments,
        configuration: TCPConfiguration = TCPConfiguration(), file: StaticString = #filePath, line: UInt = #line
    ) {
        var simulation = Simulation(
            seed: seed, bytes: bytes, impairments: impairments, configuration: configuration)
        let finished = simulation.run(maximumSteps: 400_000)
        let context = "seed \(seed), loss \(impairments.lossPermille)‰"
        XCTAssertTrue(
            finished, "did not finish: \(context), states \(simulation.ends.map(\.connection.state))", file: file,
            line: line)
        for index in 0..<2 {
            var expected = FNV1a()
            expected.add(simulation.ends[index].stream)
            let peer = simulation.ends[1 - index]
            XCTAssertEqual(peer.receivedCount, simulation.ends[index].stream.count, context, file: file, line: line)
            XCTAssertEqual(peer.received, expected, "stream \(index) corrupted: \(context)", file: file, line: line)
            XCTAssertNil(peer.error, context, file: file, line: line)
        }
        XCTAssertEqual(simulation.rangeViolations, 0, context, file: file, line: line)
        let retransmitted = simulation.ends.map(\.connection.retransmittedSegments)
        let timeouts = simulation.ends.map(\.connection.timeoutCount)
        let fast = simulation.ends.map(\.connection.fastRetransmitCount)
        print(
            "\(context): \(simulation.segmentsSent) segments, retransmitted \(retransmitted), fast \(fast), "
                + "timeouts \(timeouts), \(simulation.now / milliseconds) ms simulated")
        if impairments.lossPermille > 0 {
            XCTAssertGreaterThan(retransmitted.reduce(0, +), 0, context, file: file, line: line)
        }
    }

    /// The same seed gives the same run, segment for segment and nanosecond for nanosecond.
    func testRunsAreDeterministic() {
        let impairments = Simulation.Impairments(lossPermille: 30, duplicatePermille: 10, reorderPermille: 30)
        var first = Simulation(seed: 5, bytes: (200_000, 50_000), impairments: impairments, configuration: .init())
        var second = Simulation(seed: 5, bytes: (200_000, 50_000), impairments: impairments, configuration: .init())
        XCTAssertTrue(first.run(maximumSteps: 100_000))
        XCTAssertTrue(second.run(maximumSteps: 100_000))
        XCTAssertEqual(first.segmentsSent, second.segmentsSent)
        XCTAssertEqual(first.now, second.now)
        XCTAssertEqual(first.ends.map(\.received), second.ends.map(\.received))
        print("TCPConnection<ArraySlice<UInt8>> is \(MemoryLayout<Connection>.size) bytes inline")
    }

    func testCleanLink() {
        transfer(seed: 1, bytes: (1 << 20, 300_000), impairments: Simulation.Impairments())
    }

    func testOnePercentLossWithReorderingAndDuplication() {
        for seed: UInt64 in 1...3 {
            transfer(
                seed: seed, bytes: (2 << 20, 2 << 20),
                impairments: Simulation.Impairments(lossPermille: 10, duplicatePermille: 10, reorderPermille: 20))
        }
    }

    /// A 16 KiB receive buffer drained slowly: the window closes and reopens again and again, through
    /// zero-window probes, window updates and 1 % loss.
    func testSlowReaderWithSmallWindow() {
        var configuration = TCPConfiguration()
        configuration.receiveBufferSize = 16 * 1024
        for seed: UInt64 in 21...22 {
            transfer(
                seed: seed, bytes: (300_000, 100_000),
                impairments: Simulation.Impairments(
                    lossPermille: 10, duplicatePermille: 10, reorderPermille: 20, readChunk: 1000,
                    readInterval: 2 * milliseconds),
                configuration: configuration)
        }
    }

    /// Without window scaling or timestamps (Karn's rule times segments), with Nagle off.
    func testOnePercentLossWithoutScalingOrTimestamps() {
        var configuration = plainConfiguration()
        configuration.noDelay = true
        transfer(
            seed: 31, bytes: (1 << 20, 1 << 20),
            impairments: Simulation.Impairments(lossPermille: 10, duplicatePermille: 10, reorderPermille: 20),
            configuration: configuration)
    }

    /// BBR both ways, with SACK and without it (then its rate samples come from a scoreboard kept for
    /// them alone), byte-exact through loss, reordering and duplication, its segments paced by the
    /// pacing timer.
    func testBBRWithAndWithoutSACK() {
        for sack in [true, false] {
            var configuration = TCPConfiguration()
            configuration.congestionControl = .bbr
            configuration.sackPermitted = sack
            for seed: UInt64 in 41...42 {
                transfer(
                    seed: seed, bytes: (2 << 20, 1 << 20),
                    impairments: Simulation.Impairments(
                        lossPermille: seed == 41 ? 10 : 50, duplicatePermille: 10, reorderPermille: 20),
                    configuration: configuration)
            }
        }
    }

    func testFivePercentLossWithReorderingAndDuplication() {
        for seed: UInt64 in 11...13 {
            transfer(
                seed: seed, bytes: (2 << 20, 2 << 20),
                impairments: Simulation.Impairments(lossPermille: 50, duplicatePermille: 10, reorderPermille: 50))
        }
    }
}
