import NetMPWire
import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPRuntime
@testable import NetMPSockets
@testable import NetMPTCP

/// The stack-wide bound on out-of-order data (deterministic mode): segments ahead of a hole,
/// injected at the server's interface, are kept until the thread's share of the bound is
/// reached; past it the connection whose queue grew is pruned from its highest sequence, the
/// other connection keeps what it holds, and the hole's filling delivers exactly what was kept.
final class TCPOutOfOrderBoundTests: XCTestCase {
    static let clientAddress = IPv4Address(198, 18, 6, 1)
    static let serverAddress = IPv4Address(198, 18, 6, 2)
    static let share = 16_384
    static let segmentSize = 1000

    func testTheConnectionThatExceedsTheStackBoundIsPrunedAndTheOtherKeepsItsData() throws {
        let network = SimulatedNetwork(seed: 41)
        defer { network.shutdown() }
        let lan = network.makeSwitch(impairments: LinkImpairments())
        let clientStack = network.makeStack()
        let serverStack = network.makeStack()
        serverStack.tcpConfiguration.maximumOutOfOrderBytesPerStack = Self.share
        let clientPort = try network.attach(clientStack, to: lan, address: "198.18.6.1/24")
        let serverPort = try network.attach(serverStack, to: lan, address: "198.18.6.2/24")
        let listener = try serverStack.socket(.inet, .stream)
        defer { listener.close() }
        try listener.bind(to: .ipv4(Self.serverAddress, port: 7000))
        try listener.listen()
        listener.isNonBlocking = true

        var clients: [NetSocket] = []
        var servers: [NetSocket] = []
        defer {
            (clients + servers).forEach { $0.close() }
            network.run(for: .seconds(1))
        }
        for _ in 0..<2 {
            let client = try clientStack.socket(.inet, .stream)
            client.isNonBlocking = true
            clients.append(client)
            do {
                try client.connect(to: .ipv4(Self.serverAddress, port: 7000))
            } catch {
                XCTAssertEqual(error, .inProgress)
            }
            var server: NetSocket?
            XCTAssertTrue(
                network.run(
                    until: {
                        if server == nil { server = try? listener.accept() }
                        return server != nil && client.state.contains(.connected)
                    }, limit: .seconds(5)), "the handshake completes")
            let accepted = try XCTUnwrap(server)
            accepted.isNonBlocking = true
            servers.append(accepted)
        }

        /// Segments of `count` × 1000 bytes for `servers[index]`'s connection, the first one
        /// `skip` bytes past RCV.NXT; each byte is its stream offset from RCV.NXT, truncated.
        func inject(_ index: Int, from first: Int, count: Int) throws {
            let block = try XCTUnwrap(servers[index].core.controlBlock as? TCPControlBlock)
            let connection = try XCTUnwrap(block.connection)
            guard case .ipv4(_, let port) = clients[index].localAddress else { return XCTFail("no IPv4 name") }
            var frames: [Frame] = []
            for segment in first..<(first + count) {
                let offset = segment * Self.segmentSize
                let payload = (offset..<(offset + Self.segmentSize)).map { UInt8(truncatingIfNeeded: $0) }
                let header = TCPHeader(
                    sourcePort: port, destinationPort: 7000,
                    sequenceNumber: connection.receiveNext.rawValue &+ UInt32(offset),
                    acknowledgmentNumber: connection.sendNext.rawValue, flags: .ack, window: 65535)
                let segmentBytes = header.bytes(
                    payload: payload, source: Self.clientAddress, destination: Self.serverAddress)
                let frame =
                    EthernetHeader(
                        destination: serverPort.hardwareAddress, source: clientPort.hardwareAddress, etherType: .ipv4
                    ).bytes()
                    + IPv4Header(
                        totalLength: UInt16(20 + segmentBytes.count), protocol: .tcp, source: Self.clientAddress,
                        destination: Self.serverAddress
                    ).bytes() + segmentBytes
                frames.append(Frame(frame))
            }
            serverPort.deliverInbound(frames)
            XCTAssertTrue(network.runUntilIdle())
        }

        // Connection 1 holds 8 segments ahead of its hole; connection 0 then sends 20: its
        // queue may grow only to the share less connection 1's 8,000 bytes.
        try inject(1, from: 1, count: 8)
        XCTAssertEqual(serverStack.tcpStatistics().outOfOrderBytes, 8 * Self.segmentSize)
        try inject(0, from: 1, count: 20)
        let kept = (Self.share - 8 * Self.segmentSize) / Self.segmentSize  // whole segments
        var statistics = serverStack.tcpStatistics()
        XCTAssertEqual(statistics.outOfOrderBytes, (8 + kept) * Self.segmentSize)
        XCTAssertEqual(statistics.outOfOrderPrunes, 20 - kept)
        XCTAssertEqual(statistics.outOfOrderBytesPruned, (20 - kept) * Self.segmentSize)

        // The holes fill: each connection delivers its first segment and what it kept, no more.
        try inject(0, from: 0, count: 1)
        try inject(1, from: 0, count: 1)
        for (index, expected) in [(0, 1 + kept), (1, 1 + 8)] {
            var received = [UInt8](repeating: 0, count: 64 * 1024)
            let count = try received.withUnsafeMutableBytes { raw throws(NetError) in try servers[index].read(into: raw)
            }
            XCTAssertEqual(count, expected * Self.segmentSize, "connection \(index) delivers what it kept")
            XCTAssertEqual(
                Array(received[0..<count]), (0..<count).map { UInt8(truncatingIfNeeded: $0) },
                "connection \(index)'s bytes in order")
        }
        statistics = serverStack.tcpStatistics()
        XCTAssertEqual(statistics.outOfOrderBytes, 0, "nothing is held once the holes are filled")
    }
}
