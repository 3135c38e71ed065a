import Foundation
import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// UDP through impaired links, checked exactly; the same seed replays the same packets.
final class InetImpairedTests: XCTestCase {
    struct Outcome {
        var sent: StreamHash
        var received: StreamHash
        var chunks: Int
        var delivered: Int
        var capture: [UInt8]
        var switchStats: SwitchStatistics
        var receiverStats: InetStatistics
    }

    /// A stop-and-wait transfer over UDP (sequence number + data, acknowledged) from a to b
    /// through a switch with `impairments`, captured on b's port.
    func transfer(seed: UInt64, impairments: LinkImpairments, bytes total: Int = 60_000, capturePath: String? = nil)
        throws -> Outcome
    {
        let network = SimulatedNetwork(seed: seed)
        defer { network.shutdown() }
        let lan = network.makeSwitch(impairments: impairments)
        let a = network.makeStack()
        let b = network.makeStack(threadCount: 2)
        try network.attach(a, to: lan, address: "198.18.0.1/24")
        let portB = try network.attach(b, to: lan, address: "198.18.0.2/24")
        let writer =
            try capturePath.map { (path) throws(NetError) in try PcapWriter(path: path, clock: network.clock) }
            ?? PcapWriter(clock: network.clock)
        portB.setCapture(writer)
        let sender = try a.socket(.inet, .datagram)
        try sender.bind(to: .ipv4(.unspecified, port: 1000))
        let receiver = try b.socket(.inet, .datagram)
        try receiver.bind(to: .ipv4(.unspecified, port: 2000))
        let target = SocketAddress.ipv4(address("198.18.0.2"), port: 2000)

        var generator = SeededGenerator(seed: seed)
        let data = generator.bytes(total)
        var sentHash = StreamHash()
        sentHash.add(data)
        var receivedHash = StreamHash()
        var expected: UInt32 = 0
        var acked: Int64 = -1
        var delivered = 0

        func pump() {
            while let datagram = try? receiver.receive(maxBytes: 4000, flags: .dontWait) {
                delivered += 1
                guard datagram.bytes.count >= 4 else { continue }
                let sequence = datagram.bytes[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                if sequence == expected {
                    receivedHash.add(Array(datagram.bytes[4...]))
                    expected += 1
                }
                if sequence < expected { _ = try? receiver.send(Array(datagram.bytes[0..<4]), to: datagram.source) }
            }
            while let ack = try? sender.receive(maxBytes: 16, flags: .dontWait) {
                guard ack.bytes.count == 4 else { continue }
                acked = Swift.max(acked, Int64(ack.bytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }))
            }
        }

        var offset = 0
        var sequence: UInt32 = 0
        while offset < total {
            let size = Swift.min(total - offset, 200 + Int(generator.next() % 2800))
            let message =
                [
                    UInt8(sequence >> 24), UInt8((sequence >> 16) & 0xFF), UInt8((sequence >> 8) & 0xFF),
                    UInt8(sequence & 0xFF),
                ] + Array(data[offset..<(offset + size)])
            var attempts = 0
            while acked < Int64(sequence) {
                attempts += 1
                XCTAssertLessThan(attempts, 200, "seed \(seed): chunk \(sequence) never got through")
                if attempts >= 200 { break }
                try sender.send(message, to: target)
                network.run(
                    until: {
                        pump(); return acked >= Int64(sequence)
                    }, limit: .milliseconds(30))
            }
            offset += size
            sequence += 1
        }
        network.run(for: .milliseconds(100))
        pump()
        writer.close()
        return Outcome(
            sent: sentHash, received: receivedHash, chunks: Int(sequence), delivered: delivered,
            capture: writer.bytes, switchStats: lan.statistics, receiverStats: b.inetStatistics())
    }

    static let rough = LinkImpairments(
        loss: 0.1, duplication: 0.05, reordering: 0.1, reorderDelay: .milliseconds(3), delay: .milliseconds(1),
        jitter: .microseconds(500), corruption: 0.05, bandwidth: 100_000_000, queueLimit: 64)

    func testUDPTransferThroughImpairedLinksIsExact() throws {
        for seed in UInt64(1)...3 {
            let outcome = try transfer(seed: seed, impairments: InetImpairedTests.rough)
            XCTAssertEqual(outcome.received, outcome.sent, "seed \(seed)")
            let stats = outcome.switchStats
            XCTAssertGreaterThan(stats.lost, 0, "seed \(seed)")
            XCTAssertGreaterThan(stats.duplicated, 0, "seed \(seed)")
            XCTAssertGreaterThan(stats.corrupted, 0, "seed \(seed)")
            XCTAssertGreaterThan(stats.reordered, 0, "seed \(seed)")
            // Every delivered datagram was whole: corruption was caught by checksums (or hit a
            // MAC address), never handed to the socket.
            XCTAssertEqual(outcome.receiverStats[.udpDelivered], outcome.delivered, "seed \(seed)")
            XCTAssertGreaterThan(
                outcome.receiverStats[.ipBadChecksum] + outcome.receiverStats[.udpMalformed]
                    + outcome.receiverStats[.framesNotForUs] + outcome.receiverStats[.ipMalformed], 0, "seed \(seed)")
        }
    }

    func testSameSeedGivesTheSamePcapByteForByte() throws {
        let first = try transfer(seed: 42, impairments: InetImpairedTests.rough, bytes: 20_000)
        let second = try transfer(seed: 42, impairments: InetImpairedTests.rough, bytes: 20_000)
        XCTAssertGreaterThan(first.capture.count, 10_000)
        XCTAssertEqual(first.capture, second.capture)
        XCTAssertEqual(first.switchStats, second.switchStats)
        let other = try transfer(seed: 43, impairments: InetImpairedTests.rough, bytes: 20_000)
        XCTAssertNotEqual(first.capture, other.capture)
        XCTAssertEqual(other.received, other.sent)
    }

    static func findOnPath(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    func testPcapOpensInTsharkWithoutMalformedPackets() throws {
        guard let tshark = InetImpairedTests.findOnPath("tshark") else {
            throw XCTSkip("tshark is not on PATH (scripts/test.sh and .ci/run install it)")
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("netmp-\(getpid()).pcap").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        // Loss, duplication, reordering and delay, fragments, ARP, ICMP, UDP; no corruption
        // (a flipped bit may well make a packet malformed, which is the point of it).
        var clean = InetImpairedTests.rough
        clean.corruption = 0
        let outcome = try transfer(seed: 5, impairments: clean, bytes: 30_000, capturePath: path)
        XCTAssertEqual(outcome.received, outcome.sent)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tshark)
        process.arguments = ["-n", "-r", path]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, text)
        XCTAssertFalse(text.contains("Malformed"), text)
        XCTAssertTrue(text.contains("ARP"), text)
        XCTAssertTrue(text.contains("UDP"), text)
        XCTAssertTrue(text.contains("Fragmented IP protocol"), text)
        let lines = text.split(separator: "\n").count
        XCTAssertGreaterThan(lines, 20)
    }
}

/// The same protocol code on dedicated threads with the system clock.
final class InetThreadedImpairedTests: XCTestCase {
    func testStopAndWaitOverALossyLinkOnDedicatedThreads() throws {
        try bounded(60) {
            let network = SimulatedNetwork(threadedWithSeed: 8)
            defer { network.shutdown() }
            let lan = network.makeSwitch(
                impairments: LinkImpairments(
                    loss: 0.05, duplication: 0.05, reordering: 0.05, reorderDelay: .microseconds(300),
                    corruption: 0.02))
            let a = network.makeStack(threadCount: 2)
            let b = network.makeStack(threadCount: 2)
            try network.attach(a, to: lan, address: "198.18.0.1/24")
            try network.attach(b, to: lan, address: "198.18.0.2/24")
            let sender = try a.socket(.inet, .datagram)
            try sender.connect(to: .ipv4(address("198.18.0.2"), port: 4444))
            sender.receiveTimeout = .milliseconds(20)
            let receiver = try b.socket(.inet, .datagram)
            try receiver.bind(to: .ipv4(.unspecified, port: 4444))
            receiver.receiveTimeout = .seconds(20)
            var generator = SeededGenerator(seed: 8)
            let chunks = (0..<300).map { _ in generator.bytes(1 + Int(generator.next() % 2000)) }
            var hashOfSent = StreamHash()
            for chunk in chunks { hashOfSent.add(chunk) }
            let sentHash = hashOfSent
            let echo = OSThread.start(name: "test-receiver") {
                var expected = 0
                var hash = StreamHash()
                while expected < chunks.count {
                    guard let datagram = try? receiver.receive(maxBytes: 4096), datagram.bytes.count >= 2 else {
                        return
                    }
                    let sequence = Int(datagram.bytes[0]) << 8 | Int(datagram.bytes[1])
                    if sequence == expected {
                        hash.add(Array(datagram.bytes[2...]))
                        expected += 1
                    }
                    _ = try? receiver.send(Array(datagram.bytes[0..<2]), to: datagram.source)
                }
                XCTAssertEqual(hash, sentHash)
            }
            for (index, chunk) in chunks.enumerated() {
                let message = [UInt8(index >> 8), UInt8(index & 0xFF)] + chunk
                var acked = false
                var attempts = 0
                while !acked {
                    attempts += 1
                    XCTAssertLessThan(attempts, 500)
                    if attempts >= 500 { break }
                    try sender.write(message)
                    while let ack = try? sender.read(maxBytes: 2) {
                        if ack.count == 2, Int(ack[0]) << 8 | Int(ack[1]) == index {
                            acked = true
                            break
                        }
                    }
                }
            }
            echo.join()
            XCTAssertGreaterThan(lan.statistics.lost, 0)
        }
    }
}
