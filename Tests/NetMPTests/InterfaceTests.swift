import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// Interfaces: pcap format, the simulated switch and its impairments, loopback.
final class InterfaceTests: XCTestCase {
    /// A switch with `count` test ports that record what they receive.
    final class Recorder: @unchecked Sendable {
        let frames = LockedValue<[[UInt8]]>([])
        var count: Int { frames.withLock { $0.count } }
    }

    func makeSwitch(_ impairments: LinkImpairments, ports count: Int = 2, seed: UInt64 = 1)
        -> (ManualClock, SimulatedSwitch, [SwitchPort], [Recorder])
    {
        let clock = ManualClock(startingAt: 0)
        let made = SimulatedSwitch(clock: clock, mode: .driven, seed: seed, impairments: impairments)
        let ports = (0..<count).map { _ in made.addPort() }
        let recorders = ports.map { port -> Recorder in
            let recorder = Recorder()
            port.setReceiver { frames in recorder.frames.withLock { $0 += frames.map(\.array) } }
            return recorder
        }
        return (clock, made, ports, recorders)
    }

    /// A broadcast frame from `port` carrying `index`.
    func frame(from port: SwitchPort, _ index: Int, size: Int = 100) -> Frame {
        var bytes = EthernetHeader(
            destination: .broadcast, source: port.hardwareAddress, etherType: EtherType(rawValue: 0x88B5)
        )
        .bytes()
        bytes += [UInt8(index >> 8), UInt8(index & 0xFF)]
        bytes += [UInt8](repeating: 0xAB, count: size - bytes.count)
        return Frame(bytes)
    }

    func testPcapFileFormat() {
        let clock = ManualClock(startingAt: 1_500_000_000)
        let writer = PcapWriter(clock: clock)
        let bytes: [UInt8] = [1, 2, 3, 4, 5]
        bytes.withUnsafeBytes { writer.write($0) }
        let capture = writer.bytes
        XCTAssertEqual(capture.count, 24 + 16 + 5)
        XCTAssertEqual(Array(capture[0..<4]), [0xD4, 0xC3, 0xB2, 0xA1])
        XCTAssertEqual(Array(capture[4..<8]), [2, 0, 4, 0])
        XCTAssertEqual(Array(capture[16..<24]), [0xFF, 0xFF, 0, 0, 1, 0, 0, 0])
        // ts_sec 1, ts_usec 500000, incl_len 5, orig_len 5, then the bytes.
        XCTAssertEqual(Array(capture[24..<28]), [1, 0, 0, 0])
        XCTAssertEqual(Array(capture[28..<32]), [0x20, 0xA1, 0x07, 0])
        XCTAssertEqual(Array(capture[32..<40]), [5, 0, 0, 0, 5, 0, 0, 0])
        XCTAssertEqual(Array(capture[40...]), bytes)
        XCTAssertEqual(writer.count, 1)
    }

    func testPerfectSwitchDeliversEverythingInOrder() {
        let (_, made, ports, recorders) = makeSwitch(.none, ports: 3)
        defer { made.shutdown() }
        ports[0].transmit((0..<50).map { frame(from: ports[0], $0) })
        made.thread.runUntilIdle()
        XCTAssertEqual(recorders[1].frames.withLock { $0.map { Int($0[14]) << 8 | Int($0[15]) } }, Array(0..<50))
        XCTAssertEqual(recorders[2].count, 50)
        XCTAssertEqual(recorders[0].count, 0)
        // Learned: a unicast frame to port 0's MAC goes to port 0 alone.
        var unicast = EthernetHeader(
            destination: ports[0].hardwareAddress, source: ports[1].hardwareAddress, etherType: .ipv4
        ).bytes()
        unicast += [UInt8](repeating: 0, count: 50)
        ports[1].transmit([Frame(unicast)])
        made.thread.runUntilIdle()
        XCTAssertEqual(recorders[0].count, 1)
        XCTAssertEqual(recorders[2].count, 50)
    }

    func testLossDuplicationAndCorruptionAreSeededAndCounted() {
        func run(seed: UInt64) -> ([[UInt8]], SwitchStatistics) {
            let (_, made, ports, recorders) = makeSwitch(
                LinkImpairments(loss: 0.2, duplication: 0.1, corruption: 0.1), seed: seed)
            defer { made.shutdown() }
            ports[0].transmit((0..<1000).map { frame(from: ports[0], $0) })
            made.thread.runUntilIdle()
            return (recorders[1].frames.withLock { $0 }, made.statistics)
        }
        let (frames, stats) = run(seed: 5)
        XCTAssertEqual(stats.received, 1000)
        XCTAssertEqual(frames.count, 1000 - stats.lost + stats.duplicated)
        XCTAssertEqual(stats.delivered, frames.count)
        XCTAssertTrue((150...250).contains(stats.lost), "\(stats)")
        XCTAssertTrue((50...130).contains(stats.duplicated), "\(stats)")
        XCTAssertTrue((50...130).contains(stats.corrupted), "\(stats)")
        // Corrupted frames differ from the original in exactly one bit.
        let original = frame(
            from: SwitchPort(
                owner: SimulatedSwitch(clock: ManualClock(), mode: .driven, seed: 0), index: 0, name: "x", mtu: 1500,
                hardwareAddress: MACAddress(0x02, 0x00, 0x5E, 0, 0, 0)), 0
        ).array
        var flipped = 0
        for received in frames {
            var bits = 0
            for (index, byte) in received.enumerated() where index != 14 && index != 15 {
                bits += (byte ^ original[index]).nonzeroBitCount
            }
            if bits > 0 { flipped += 1 }
            XCTAssertLessThanOrEqual(bits, 1)
        }
        XCTAssertGreaterThan(flipped, 0)
        let (again, sameStats) = run(seed: 5)
        XCTAssertEqual(again, frames)
        XCTAssertEqual(sameStats, stats)
        XCTAssertNotEqual(run(seed: 6).0, frames)
    }

    func testDelayJitterAndReorderingUseTheClock() {
        let (clock, made, ports, recorders) = makeSwitch(
            LinkImpairments(
                reordering: 0.3, reorderDelay: .milliseconds(5), delay: .milliseconds(10), jitter: .microseconds(10)))
        defer { made.shutdown() }
        ports[0].transmit((0..<100).map { frame(from: ports[0], $0) })
        made.thread.runUntilIdle()
        XCTAssertEqual(recorders[1].count, 0)
        clock.advance(by: .milliseconds(9))
        made.thread.runUntilIdle()
        XCTAssertEqual(recorders[1].count, 0)
        clock.advance(by: .microseconds(1010))
        made.thread.runUntilIdle()
        let onTime = recorders[1].count
        XCTAssertEqual(onTime, 100 - made.statistics.reordered)
        clock.advance(by: .milliseconds(5))
        made.thread.runUntilIdle()
        let order = recorders[1].frames.withLock { $0.map { Int($0[14]) << 8 | Int($0[15]) } }
        XCTAssertEqual(order.count, 100)
        XCTAssertEqual(Set(order), Set(0..<100))
        XCTAssertNotEqual(order, Array(0..<100))
    }

    func testBandwidthAndQueueLimit() {
        // 1000-byte frames at 8 Mbit/s: one per millisecond; at most 10 waiting.
        let (clock, made, ports, recorders) = makeSwitch(LinkImpairments(bandwidth: 8_000_000, queueLimit: 10))
        defer { made.shutdown() }
        ports[0].transmit((0..<20).map { frame(from: ports[0], $0, size: 1000) })
        made.thread.runUntilIdle()
        XCTAssertEqual(made.statistics.queueDrops, 10)
        for expected in 1...10 {
            clock.advance(by: .milliseconds(1))
            made.thread.runUntilIdle()
            XCTAssertEqual(recorders[1].count, expected)
        }
        XCTAssertEqual(recorders[1].frames.withLock { $0.map { Int($0[15]) } }, Array(0..<10))
    }

    func testPartitionCutAndHeal() {
        let (_, made, ports, recorders) = makeSwitch(.none, ports: 3)
        defer { made.shutdown() }
        made.cut(ports[0], ports[1])
        ports[0].transmit([frame(from: ports[0], 1)])
        made.thread.runUntilIdle()
        XCTAssertEqual(recorders[1].count, 0)
        XCTAssertEqual(recorders[2].count, 1)
        made.isolate(ports[2])
        ports[0].transmit([frame(from: ports[0], 2)])
        made.thread.runUntilIdle()
        XCTAssertEqual(recorders[2].count, 1)
        XCTAssertEqual(made.statistics.partitionDrops, 3)
        made.heal()
        ports[0].transmit([frame(from: ports[0], 3)])
        made.thread.runUntilIdle()
        XCTAssertEqual(recorders[1].count, 1)
        XCTAssertEqual(recorders[2].count, 2)
    }

    func testCaptureRecordsWhatTheImpairmentsDid() {
        let (clock, made, ports, _) = makeSwitch(LinkImpairments(loss: 0.3, corruption: 0.2), seed: 9)
        defer { made.shutdown() }
        let received = PcapWriter(clock: clock)
        let sent = PcapWriter(clock: clock)
        ports[1].setCapture(received, direction: .receive)
        ports[0].setCapture(sent, direction: .transmit)
        ports[0].transmit((0..<200).map { frame(from: ports[0], $0) })
        made.thread.runUntilIdle()
        let stats = made.statistics
        XCTAssertEqual(sent.count, 200)
        XCTAssertEqual(received.count, 200 - stats.lost)
        XCTAssertEqual(received.count, ports[1].statistics.framesReceived)
        // The corrupted frames are in the capture as corrupted: records differ from the sent ones.
        let records = pcapRecords(received.bytes)
        let originals = Dictionary(
            uniqueKeysWithValues: pcapRecords(sent.bytes).map { (Int($0[14]) << 8 | Int($0[15]), $0) })
        var differing = 0
        for record in records {
            let key = Int(record[14]) << 8 | Int(record[15])
            if originals[key] != record { differing += 1 }
        }
        XCTAssertGreaterThan(differing, 0)
        XCTAssertLessThanOrEqual(differing, stats.corrupted)
    }

    func pcapRecords(_ capture: [UInt8]) -> [[UInt8]] {
        var records: [[UInt8]] = []
        var offset = 24
        while offset + 16 <= capture.count {
            let length = Int(capture[offset + 8]) | Int(capture[offset + 9]) << 8 | Int(capture[offset + 10]) << 16
            records.append(Array(capture[(offset + 16)..<(offset + 16 + length)]))
            offset += 16 + length
        }
        return records
    }

    func testToeplitzHashIsSymmetric() {
        var generator = SeededGenerator(seed: 1)
        var buckets = [Int](repeating: 0, count: 4)
        for _ in 0..<10_000 {
            let a = IPv4Address(rawValue: UInt32(truncatingIfNeeded: generator.next()))
            let b = IPv4Address(rawValue: UInt32(truncatingIfNeeded: generator.next()))
            let p = UInt16(truncatingIfNeeded: generator.next())
            let q = UInt16(truncatingIfNeeded: generator.next())
            let forward = Toeplitz.hash(source: a, destination: b, sourcePort: p, destinationPort: q)
            XCTAssertEqual(forward, Toeplitz.hash(source: b, destination: a, sourcePort: q, destinationPort: p))
            buckets[Int(forward % 4)] += 1
        }
        for count in buckets { XCTAssertTrue((2000...3000).contains(count), "\(buckets)") }
    }

    func testLoopbackCapturesEachFrameOnce() throws {
        let clock = ManualClock(startingAt: 0)
        let stack = NetworkStack(.init(threadCount: 2, clock: clock, mode: .driven, seed: 3))
        defer { stack.shutdown() }
        let writer = PcapWriter(clock: clock)
        stack.loopback.setCapture(writer)
        let ping = stack.startPing(.loopback)
        stack.runUntilIdle()
        stack.runUntilIdle()
        XCTAssertEqual(try ping.result?.get(), .zero)
        XCTAssertEqual(writer.count, 2)
        XCTAssertTrue(stack.loopback.offloads.contains(.checksumsSkipped))
    }

    /// Random and mutated frames never trap the stack; they are counted and dropped.
    func testHostileFramesAreDroppedAndCounted() throws {
        let clock = ManualClock(startingAt: 0)
        let stack = NetworkStack(.init(threadCount: 2, clock: clock, mode: .driven, seed: 4))
        defer { stack.shutdown() }
        let interface = TestInterface()
        try stack.addAddress(address("198.18.0.1"), prefixLength: 24, to: interface)
        let socket = try stack.socket(.inet, .datagram)
        try socket.bind(to: .ipv4(.unspecified, port: 7))
        let local = address("198.18.0.1")
        let peer = address("198.18.0.2")
        let ethernet = EthernetHeader(
            destination: interface.hardwareAddress, source: MACAddress(0x02, 0, 0, 0, 0, 9), etherType: .ipv4
        ).bytes()
        let udp = UDPHeader(sourcePort: 1, destinationPort: 7).bytes(
            payload: Array(repeating: 1, count: 40), source: peer, destination: local)
        let ip = IPv4Header(
            totalLength: UInt16(20 + udp.count), identification: 1, protocol: .udp, source: peer, destination: local
        ).bytes()
        let valid = ethernet + ip + udp
        let icmp = ICMPHeader(message: .echoRequest(identifier: 1, sequenceNumber: 1)).bytes(payload: [1, 2, 3, 4])
        let ping =
            ethernet
            + IPv4Header(totalLength: UInt16(20 + icmp.count), protocol: .icmp, source: peer, destination: local)
            .bytes() + icmp
        let fragment =
            ethernet
            + IPv4Header(
                totalLength: UInt16(20 + 16), identification: 9, dontFragment: false, moreFragments: true,
                protocol: .udp, source: peer, destination: local
            ).bytes() + Array(udp[0..<16])
        var generator = SeededGenerator(seed: 77)
        for round in 0..<200 {
            var batch: [[UInt8]] = []
            for _ in 0..<100 {
                var bytes = [valid, ping, fragment][Int(generator.next() % 3)]
                switch generator.next() % 4 {
                case 0: bytes = generator.bytes(Int(generator.next() % 120))
                case 1:
                    for _ in 0..<(1 + Int(generator.next() % 4)) {
                        let index = 14 + Int(generator.next() % UInt64(bytes.count - 14))
                        bytes[index] = UInt8(truncatingIfNeeded: generator.next())
                    }
                case 2: bytes = Array(bytes[0..<Int(generator.next() % UInt64(bytes.count))])
                default: break
                }
                batch.append(bytes)
            }
            interface.inject(batch)
            stack.runUntilIdle()
            if round % 50 == 0 { clock.advance(by: .seconds(31)) }
            while (try? socket.receive(maxBytes: 100, flags: .dontWait)) != nil {}
        }
        let stats = stack.inetStatistics()
        XCTAssertGreaterThan(stats[.udpDelivered], 0, "\(stats)")
        XCTAssertGreaterThan(stats[.ipMalformed] + stats[.ipBadChecksum] + stats[.framesRunt], 0, "\(stats)")
        XCTAssertGreaterThan(stats[.icmpEchoRepliesSent], 0, "\(stats)")
    }

    func testChecksumOffloadOnASimulatedLink() throws {
        let network = SimulatedNetwork(seed: 31)
        defer { network.shutdown() }
        let lan = network.makeSwitch()
        let a = network.makeStack()
        let b = network.makeStack()
        let portA = try network.attach(a, to: lan, address: "198.18.0.1/24", offloads: .checksumsSkipped)
        try network.attach(b, to: lan, address: "198.18.0.2/24", offloads: .checksumsSkipped)
        let writer = PcapWriter(clock: network.clock)
        portA.setCapture(writer, direction: .transmit)
        let server = try b.socket(.inet, .datagram)
        try server.bind(to: .ipv4(.unspecified, port: 5))
        let client = try a.socket(.inet, .datagram)
        try client.send([1, 2, 3], to: .ipv4(address("198.18.0.2"), port: 5))
        network.runUntilIdle()
        XCTAssertEqual(try server.receive(maxBytes: 8, flags: .dontWait).bytes, [1, 2, 3])
        // The UDP datagram went out with checksum 0 ("none"); the IP header checksum is kept.
        guard let udpFrame = pcapRecords(writer.bytes).first(where: { $0.count > 23 && $0[23] == 17 }) else {
            return XCTFail("no UDP frame captured")
        }
        XCTAssertEqual(Array(udpFrame[40..<42]), [0, 0])
        XCTAssertNotEqual(Array(udpFrame[24..<26]), [0, 0])
    }
}
