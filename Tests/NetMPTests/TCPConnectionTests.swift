import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPRuntime
@testable import NetMPSockets
@testable import NetMPTCP

/// TCP connection life cycles over loopback in a threaded stack: many connections across every
/// protocol thread, closes and resets as BSD gives them, half-close, TIME_WAIT reuse, and the
/// non-blocking, poller and `async` faces. Every socket is freed at the end (StackTestCase).
final class TCPConnectionTests: StackTestCase {
    override var threadCount: Int { 2 }

    func pair() throws -> (client: NetSocket, server: NetSocket) {
        let (listener, address) = try makeListener()
        let client = try stack.socket(.inet, .stream)
        try client.connect(to: address)
        let server = try listener.accept()
        listener.close()
        return (client, server)
    }

    /// The protocol thread a socket is owned by now.
    func ownerIndex(_ socket: NetSocket) -> Int? { (socket.core.owner as? TCPOwnerPort)?.thread.index }

    /// Waits until every connection has finished closing (StackTestCase checks the sockets).
    func waitUntilFreed(file: StaticString = #filePath, line: UInt = #line) {
        Self.waitUntilConnectionsEnd(stack, file: file, line: line)
    }

    func testTenThousandConnectsAcceptsAndClosesAcrossAllThreadsLeakNothing() throws {
        stack.tcpConfiguration.maximumSegmentLifetime = 1_000_000
        try bounded(300) {
            let (listener, address) = try makeListener()
            var serverThreads = Set<Int>()
            var clientMismatches = 0
            let count = scaled(10_000)
            for index in 0..<count {
                let client = try stack.socket(.inet, .stream)
                try client.connect(to: address)
                let server = try listener.accept()
                if let owner = ownerIndex(server) { serverThreads.insert(owner) }
                // The client's block moved to the thread its tuple hashes to.
                if case .ipv4(let host, let port) = client.localAddress, case .ipv4(let peer, let peerPort) = address {
                    let expected = stack.inet.threadIndex(
                        source: peer, destination: host, sourcePort: peerPort, destinationPort: port)
                    if ownerIndex(client) != expected { clientMismatches += 1 }
                }
                if index % 2 == 0 {
                    client.close()
                    server.close()
                } else {
                    server.close()
                    client.close()
                }
            }
            listener.close()
            XCTAssertEqual(serverThreads, Set(0..<threadCount), "children are born on every thread")
            XCTAssertEqual(clientMismatches, 0, "a connected block lives on its tuple's thread")
            waitUntilFreed()
            // TIME_WAIT lasts 2 ms here: its records expire by the threads' callouts.
            let deadline = MonotonicTime.deadline(after: 10_000_000_000)
            while stack.tcpStatistics().reservedTuples > 0 && MonotonicTime.now < deadline { stack.quiesce() }
        }
        stack.quiesce()
        XCTAssertEqual(stack.liveSocketCount, 0, "every socket freed")
        XCTAssertEqual(stack.tcpStatistics().reservedTuples, 0, "every tuple released after TIME_WAIT")
    }

    func testHalfCloseKeepsTheOtherDirection() throws {
        try bounded {
            let (client, server) = try pair()
            try client.write(Array("request".utf8))
            try client.shutdown(.write)
            XCTAssertEqual(try server.read(maxBytes: 7, flags: .waitAll), Array("request".utf8))
            XCTAssertEqual(try server.read(maxBytes: 10), [], "end of file after the peer's FIN")
            try server.write(Array("response".utf8))
            XCTAssertEqual(try client.read(maxBytes: 8, flags: .waitAll), Array("response".utf8))
            assertThrows(.brokenPipe) { () throws(NetError) in try client.write([1]) }
            server.close()
            XCTAssertEqual(try client.read(maxBytes: 10), [])
            client.close()
            waitUntilFreed()
        }
    }

    func testLingerZeroSendsReset() throws {
        try bounded {
            let (client, server) = try pair()
            let resets = stack.tcpStatistics().resetsSent
            client.linger = .zero
            XCTAssertEqual(client.linger, .zero)
            client.close()
            assertThrows(.connectionReset) { () throws(NetError) in try server.read(maxBytes: 10) }
            XCTAssertEqual(stack.tcpStatistics().resetsSent, resets + 1)
            server.close()
            waitUntilFreed()
        }
    }

    func testCloseWithUnreadDataSendsReset() throws {
        try bounded {
            let (client, server) = try pair()
            try client.write([1, 2, 3])
            // Wait until the bytes are in the server's buffer, unread.
            XCTAssertEqual(try server.read(maxBytes: 1, flags: .peek), [1])
            server.close()
            assertThrows(.connectionReset) { () throws(NetError) in try client.read(maxBytes: 10) }
            client.close()
            waitUntilFreed()
        }
    }

    func testTimeWaitTupleReusedByNewerSYN() throws {
        try bounded {
            let (listener, address) = try makeListener()
            for round in 0..<10 {
                let first = try stack.socket(.inet, .stream)
                try first.setOption(.reuseAddress, 1)
                try first.connect(to: address)
                let clientAddress = first.localAddress
                let server = try listener.accept()
                // The server closes first, so its end of the tuple stays in TIME_WAIT (60 s).
                server.close()
                XCTAssertEqual(try first.read(maxBytes: 1), [])
                first.close()
                waitUntilFreed()
                XCTAssertEqual(stack.tcpStatistics().timeWaitRecords, round + 1)
                // A new connection from the same port: its SYN's timestamp is newer (the TSval
                // offset is kept per host pair), so it replaces the record.
                let second = try stack.socket(.inet, .stream)
                try second.setOption(.reuseAddress, 1)
                try second.bind(to: clientAddress)
                try second.connect(to: address, timeout: .seconds(5))
                let again = try listener.accept()
                XCTAssertEqual(try again.peerAddress(), clientAddress)
                XCTAssertEqual(stack.tcpStatistics().timeWaitRecords, round, "the SYN replaced the TIME_WAIT record")
                try second.write([42])
                XCTAssertEqual(try again.read(maxBytes: 1), [42])
                // This time the client closes first: the TIME_WAIT is on its side.
                second.close()
                XCTAssertEqual(try again.read(maxBytes: 1), [])
                again.close()
                waitUntilFreed()
            }
            listener.close()
            waitUntilFreed()
        }
    }

    func testNonBlockingConnectAndPollerReadiness() throws {
        try bounded {
            let (listener, address) = try makeListener()
            let client = try stack.socket(.inet, .stream)
            client.isNonBlocking = true
            let poller = SocketPoller()
            try poller.register(client, interest: [.readable, .writable], token: 1)
            do {
                try client.connect(to: address)
            } catch {
                XCTAssertEqual(error as? NetError, .inProgress)
            }
            var writable = false
            while !writable {
                writable = poller.wait(timeout: .seconds(5)).contains { $0.token == 1 && $0.events.contains(.writable) }
            }
            XCTAssertTrue(client.state.contains(.connected))
            assertThrows(.wouldBlock) { () throws(NetError) in try client.read(maxBytes: 10) }
            let server = try listener.accept()
            try server.write([7, 8])
            var readable = false
            while !readable {
                readable = poller.wait(timeout: .seconds(5)).contains { $0.token == 1 && $0.events.contains(.readable) }
            }
            XCTAssertEqual(try client.read(maxBytes: 10), [7, 8])
            poller.unregister(client)
            client.close()
            server.close()
            listener.close()
            waitUntilFreed()
        }
    }

    func testAsyncEcho() async throws {
        let (listener, address) = try makeListener()
        let client = try stack.socket(.inet, .stream)
        try await client.connect(to: address)
        let server = try await listener.accept()
        try await client.write(Array("ping".utf8))
        var got: [UInt8] = []
        while got.count < 4 { got += try await server.read(maxBytes: 4 - got.count) }
        XCTAssertEqual(got, Array("ping".utf8))
        client.close()
        let tail = try await server.read(maxBytes: 4)
        XCTAssertEqual(tail, [])
        server.close()
        listener.close()
        waitUntilFreed()
    }

    func testOptions() throws {
        try bounded {
            let socket = try stack.socket(.inet, .stream)
            for option in [TCPSocketOption.noDelay, .keepAlive, .reuseAddress] {
                XCTAssertEqual(try socket.option(option), 0)
                try socket.setOption(option, 1)
                XCTAssertEqual(try socket.option(option), 1)
            }
            assertThrows(.invalidArgument) { () throws(NetError) in try socket.setOption(.maximumSegment, 10) }
            try socket.setOption(.maximumSegment, 536)
            XCTAssertEqual(try socket.option(.maximumSegment), 536)
            XCTAssertNil(socket.linger)
            socket.linger = .seconds(2)
            XCTAssertEqual(socket.linger, .seconds(2))
            try socket.setOption(.sendBufferSize, 8192)
            XCTAssertEqual(try socket.option(.sendBufferSize), 8192)
            let udp = try stack.socket(.inet, .datagram)
            assertThrows(.badOption) { () throws(NetError) in try udp.setOption(.noDelay, 1) }
            udp.close()
            // A small MSS and small buffers still carry a stream exactly.
            let (listener, address) = try makeListener()
            try socket.setOption(.receiveBufferSize, 4096)
            try socket.connect(to: address)
            let server = try listener.accept()
            var generator = SeededGenerator(seed: 3)
            let data = generator.bytes(200_000)
            let writer = OSThread.start(name: "tcp-small-writer") { _ = try? server.write(data) }
            let received = try socket.read(maxBytes: data.count, flags: .waitAll)
            writer.join()
            XCTAssertEqual(received, data)
            socket.close()
            server.close()
            listener.close()
            waitUntilFreed()
        }
    }

    func testNotConnectedAndAddressErrors() throws {
        try bounded {
            let socket = try stack.socket(.inet, .stream)
            assertThrows(.notConnected) { () throws(NetError) in try socket.write([1]) }
            assertThrows(.notConnected) { () throws(NetError) in try socket.peerAddress() }
            assertThrows(.addressNotAvailable) { () throws(NetError) in
                try socket.bind(to: .ipv4(IPv4Address(rawValue: 0xC612_0063), port: 80))
            }
            assertThrows(.addressFamilyNotSupported) { () throws(NetError) in try socket.connect(to: .local("/x")) }
            assertThrows(.networkUnreachable) { () throws(NetError) in
                try socket.connect(to: .ipv4(IPv4Address(rawValue: 0xC612_0063), port: 80))
            }
            socket.close()
        }
    }
}
