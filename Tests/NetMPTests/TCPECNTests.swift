import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPRuntime
@testable import NetMPSockets
@testable import NetMPTCP

/// ECN through the stack: the switch marks CE on ECN-capable IPv4 packets past its marking
/// threshold, and a transfer whose senders react to the echoes keeps the queue from overflowing.
final class TCPECNTests: XCTestCase {
    func frame(ecn: UInt8, etherType: EtherType = .ipv4) -> Frame {
        let ethernet = EthernetHeader(
            destination: MACAddress(0x02, 0, 0, 0, 0, 1), source: MACAddress(0x02, 0, 0, 0, 0, 2), etherType: etherType
        ).bytes()
        let ip = IPv4Header(
            dscp: 10, ecn: ecn, totalLength: 28, identification: 77, protocol: .udp,
            source: IPv4Address(198, 18, 0, 1), destination: IPv4Address(198, 18, 0, 2)
        ).bytes()
        return Frame(ethernet + ip + [1, 2, 3, 4, 5, 6, 7, 8])
    }

    func testTheSwitchMarksOnlyECNCapableIPv4() throws {
        for codepoint: UInt8 in [0b01, 0b10] {
            let original = frame(ecn: codepoint)
            let marked = try XCTUnwrap(SimulatedSwitch.markingCongestion(original))
            let packet = try IPv4Header.parse(Array(marked.array[14...])).get()
            XCTAssertEqual(packet.header.ecn, 0b11, "CE, and the header checksum verifies (parse checks it)")
            XCTAssertEqual(packet.header.dscp, 10)
            XCTAssertEqual(Array(marked.array[0..<15]), Array(original.array[0..<15]))
            XCTAssertEqual(Array(marked.array[26...]), Array(original.array[26...]))
            XCTAssertEqual(original.array[15] & 0x3, codepoint, "the original frame is not touched")
        }
        XCTAssertNil(SimulatedSwitch.markingCongestion(frame(ecn: 0)), "Not-ECT is never marked")
        XCTAssertNil(SimulatedSwitch.markingCongestion(frame(ecn: 0b11)), "already CE")
        XCTAssertNil(SimulatedSwitch.markingCongestion(frame(ecn: 0b10, etherType: .arp)))
        XCTAssertNil(SimulatedSwitch.markingCongestion(Frame(Array(frame(ecn: 0b10).array[0..<30]))), "runt")
    }

    /// 4 MiB through a 100 Mbit/s port with a 40-frame queue: without ECN the queue overflows and
    /// segments are lost; with ECN (marking from 8 frames) the senders slow down on the echoes and
    /// nothing is dropped or retransmitted. Byte-exact both ways.
    func testECNAvoidsQueueDropsOnABottleneck() throws {
        let bottleneck = LinkImpairments(
            delay: .milliseconds(1), bandwidth: 100_000_000, queueLimit: 40, ecnMarkingThreshold: 8)
        var drops: [Bool: Int] = [:]
        for ecn in [false, true] {
            let outcome = try bounded(300) {
                try tcpTransfer(seed: 23, impairments: bottleneck, bytes: 4 << 20, threaded: false, ecn: ecn)
            }
            XCTAssertTrue(outcome.finished, "ecn \(ecn)")
            XCTAssertEqual(outcome.received, outcome.sent, "ecn \(ecn)")
            let stats = try XCTUnwrap(outcome.switchStats)
            drops[ecn] = stats.queueDrops
            print(
                "ECN \(ecn): \(outcome.seconds) simulated s, \(stats.queueDrops) queue drops, "
                    + "\(stats.congestionMarks) CE marks, \(outcome.client.retransmittedSegments) retransmitted")
            if ecn {
                XCTAssertGreaterThan(stats.congestionMarks, 0)
                XCTAssertEqual(stats.queueDrops, 0)
                XCTAssertEqual(outcome.client.retransmittedSegments, 0)
            } else {
                XCTAssertEqual(stats.congestionMarks, 0, "Not-ECT traffic is never marked")
                XCTAssertGreaterThan(stats.queueDrops, 0)
            }
        }
    }

    /// The socket option: ECN is negotiated only when both the connecting socket and the listen socket
    /// ask; the listener's connections inherit its setting.
    func testTheSocketOptionAsksForECN() throws {
        let network = SimulatedNetwork(seed: 12)
        defer { network.shutdown() }
        let stack = network.makeStack(threadCount: 2)
        func negotiated(_ socket: NetSocket?) -> Bool? {
            (socket?.core.controlBlock as? TCPControlBlock)?.connection?.ecn.negotiated
        }
        var results: [Bool] = []
        for (port, clientAsks, listenerAsks) in [(7200, true, true), (7201, true, false), (7202, false, true)] {
            let listener = try stack.socket(.inet, .stream)
            XCTAssertEqual(try listener.option(.explicitCongestionNotification), 0, "off by default")
            try listener.setOption(.explicitCongestionNotification, listenerAsks ? 1 : 0)
            try listener.bind(to: .ipv4(.loopback, port: UInt16(port)))
            try listener.listen(backlog: 4)
            listener.isNonBlocking = true
            let client = try stack.socket(.inet, .stream)
            try client.setOption(.explicitCongestionNotification, clientAsks ? 1 : 0)
            XCTAssertEqual(try client.option(.explicitCongestionNotification), clientAsks ? 1 : 0)
            client.isNonBlocking = true
            do {
                try client.connect(to: .ipv4(.loopback, port: UInt16(port)))
            } catch {
                XCTAssertEqual(error, .inProgress)
            }
            var child: NetSocket?
            XCTAssertTrue(
                network.run(until: {
                    child = child ?? (try? listener.accept())
                    return child != nil && client.state.contains(.connected)
                }))
            XCTAssertEqual(negotiated(child), negotiated(client))
            results.append(negotiated(client) ?? false)
            for socket in [client, listener] + [child].compactMap({ $0 }) { socket.close() }
        }
        XCTAssertEqual(results, [true, false, false])
        network.run(for: .seconds(1))
    }
}
