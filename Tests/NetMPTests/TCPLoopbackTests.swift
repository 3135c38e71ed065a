import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPRuntime
@testable import NetMPSockets
@testable import NetMPTCP

/// TCP over 127.0.0.1 in one threaded stack: echo, transfers checked by hash, the errors BSD
/// gives, options, and that every socket is freed afterwards.
final class TCPLoopbackTests: StackTestCase {
    override var threadCount: Int { 2 }

    func listener(port: UInt16 = 0, backlog: Int = 128) throws -> (NetSocket, SocketAddress) {
        let listener = try stack.socket(.inet, .stream)
        try listener.bind(to: .ipv4(.loopback, port: port))
        try listener.listen(backlog: backlog)
        return (listener, listener.localAddress)
    }

    func connectedPair() throws -> (client: NetSocket, server: NetSocket) {
        let (listener, address) = try listener()
        let client = try stack.socket(.inet, .stream)
        try client.connect(to: address)
        let server = try listener.accept()
        listener.close()
        return (client, server)
    }

    func testEchoAndAddresses() throws {
        try bounded {
            let (listener, address) = try listener()
            let client = try stack.socket(.inet, .stream)
            try client.connect(to: address)
            let server = try listener.accept()
            XCTAssertEqual(try server.peerAddress(), client.localAddress)
            XCTAssertEqual(try client.peerAddress(), address)
            guard case .ipv4(let host, let port) = client.localAddress else { return XCTFail("no address") }
            XCTAssertEqual(host, .loopback)
            XCTAssertTrue(InetStack.ephemeralPorts.contains(port))
            try client.write(Array("hello".utf8))
            XCTAssertEqual(try server.read(maxBytes: 5, flags: .waitAll), Array("hello".utf8))
            try server.write(Array("world!".utf8))
            XCTAssertEqual(String(decoding: try client.read(maxBytes: 6, flags: .waitAll), as: UTF8.self), "world!")
            client.close()
            XCTAssertEqual(try server.read(maxBytes: 10), [])
            server.close()
            listener.close()
        }
    }

    func testBulkTransferBothWaysHashesMatch() throws {
        try bounded(60) {
            let (client, server) = try connectedPair()
            let total = 8 << 20
            var generator = SeededGenerator(seed: 7)
            let data = generator.bytes(total)
            var sent = StreamHash()
            sent.add(data)
            let writer = OSThread.start(name: "tcp-writer") {
                data.withUnsafeBytes { raw in
                    var offset = 0
                    while offset < raw.count {
                        let end = Swift.min(raw.count, offset + 65536)
                        offset += (try? client.write(UnsafeRawBufferPointer(rebasing: raw[offset..<end]))) ?? raw.count
                    }
                }
                try? client.shutdown(.write)
            }
            var received = StreamHash()
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = try buffer.withUnsafeMutableBytes { try server.read(into: $0) }
                if n == 0 { break }
                buffer.withUnsafeBytes { received.add(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            }
            writer.join()
            XCTAssertEqual(received, sent)
            server.close()
            client.close()
        }
    }

    func testConnectToClosedPortIsRefused() throws {
        try bounded {
            let client = try stack.socket(.inet, .stream)
            assertThrows(.connectionRefused) { () throws(NetError) in try client.connect(to: .ipv4(.loopback, port: 9))
            }
            XCTAssertGreaterThanOrEqual(stack.tcpStatistics().resetsSent, 1)
        }
    }

    func testBindConflictsAndReuseAddressAfterTimeWait() throws {
        try bounded {
            stack.tcpConfiguration.maximumSegmentLifetime = 50_000_000
            let (listener, address) = try listener()
            guard case .ipv4(_, let port) = address else { return XCTFail("no port") }
            let rival = try stack.socket(.inet, .stream)
            assertThrows(.addressInUse) { () throws(NetError) in try rival.bind(to: .ipv4(.unspecified, port: port)) }
            let client = try stack.socket(.inet, .stream)
            try client.connect(to: address)
            let server = try listener.accept()
            listener.close()
            // The server closes first: its side keeps the tuple in TIME_WAIT.
            server.close()
            XCTAssertEqual(try client.read(maxBytes: 1), [])
            client.close()
            let again = try stack.socket(.inet, .stream)
            assertThrows(.addressInUse) { () throws(NetError) in try again.bind(to: .ipv4(.loopback, port: port)) }
            let reusing = try stack.socket(.inet, .stream)
            try reusing.setOption(.reuseAddress, 1)
            try reusing.bind(to: .ipv4(.loopback, port: port))
            reusing.close()
            again.close()
            rival.close()
        }
    }
}
