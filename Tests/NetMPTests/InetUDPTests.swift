import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// UDP sockets over loopback (threaded) and over simulated links (deterministic).
final class InetUDPTests: XCTestCase {
    var stack: NetworkStack!

    override func setUp() {
        super.setUp()
        stack = NetworkStack(.init(threadCount: 2))
    }

    override func tearDown() {
        if let stack {
            self.stack = nil
            // Closing posts the table removals to every thread: wait for them, then check
            // that every socket and buffer was freed.
            for thread in stack.threads { _ = try? thread.call { () throws(NetError) in 0 } }
            for thread in stack.threads { _ = try? thread.call { () throws(NetError) in 0 } }
            XCTAssertEqual(stack.liveSocketCount, 0, "sockets leaked")
            XCTAssertEqual(stack.liveBufferCount, 0, "buffers leaked")
            stack.shutdown()
        }
        super.tearDown()
    }

    func socket() throws -> NetSocket {
        let made = try stack.socket(.inet, .datagram)
        made.receiveTimeout = .seconds(10)
        return made
    }

    func testSendToAndReceiveFromOverLoopback() throws {
        try bounded {
            let server = try socket()
            try server.bind(to: .ipv4(.loopback, port: 9000))
            XCTAssertEqual(server.localAddress, .ipv4(.loopback, port: 9000))
            let client = try socket()
            try client.send(Array("hello".utf8), to: .ipv4(.loopback, port: 9000))
            let received = try server.receive(maxBytes: 100)
            XCTAssertEqual(received.bytes, Array("hello".utf8))
            // The client was bound implicitly to an ephemeral port.
            guard case .ipv4(let host, let port) = received.source else { return XCTFail("\(received.source)") }
            XCTAssertEqual(host, .loopback)
            XCTAssertTrue(InetStack.ephemeralPorts.contains(port), "\(port)")
            XCTAssertEqual(client.localAddress, .ipv4(.unspecified, port: port))
            try server.send(Array("world".utf8), to: received.source)
            let reply = try client.receive(maxBytes: 100)
            XCTAssertEqual(reply.bytes, Array("world".utf8))
            XCTAssertEqual(reply.source, .ipv4(.loopback, port: 9000))
            // Truncation as recvfrom does it.
            try client.send([UInt8](repeating: 7, count: 50), to: .ipv4(.loopback, port: 9000))
            let cut = try server.receive(maxBytes: 10)
            XCTAssertEqual(cut.bytes.count, 10)
            XCTAssertTrue(cut.flags.contains(.truncated))
        }
    }

    func testBindErrorsAndEphemeralPorts() throws {
        let first = try socket()
        try first.bind(to: .ipv4(.unspecified, port: 5353))
        let second = try socket()
        XCTAssertThrowsError(try second.bind(to: .ipv4(.loopback, port: 5353))) {
            XCTAssertEqual($0 as? NetError, .addressInUse)
        }
        XCTAssertThrowsError(try second.bind(to: .ipv4(address("198.18.0.99"), port: 1))) {
            XCTAssertEqual($0 as? NetError, .addressNotAvailable)
        }
        XCTAssertThrowsError(try second.bind(to: .local("/x"))) {
            XCTAssertEqual($0 as? NetError, .addressFamilyNotSupported)
        }
        var ports = Set<UInt16>()
        var sockets: [NetSocket] = []
        for _ in 0..<50 {
            let each = try socket()
            try each.bind(to: .ipv4(.loopback, port: 0))
            guard case .ipv4(_, let port) = each.localAddress else { return XCTFail() }
            XCTAssertTrue(InetStack.ephemeralPorts.contains(port))
            ports.insert(port)
            sockets.append(each)
        }
        XCTAssertEqual(ports.count, 50)
        // Randomized (RFC 6056): not one consecutive run.
        let sorted = ports.sorted()
        XCTAssertNotEqual(Int(sorted[49]) - Int(sorted[0]), 49)
        // A closed socket's port is free again.
        first.close()
        let third = try socket()
        try third.bind(to: .ipv4(.unspecified, port: 5353))
        // A wildcard-bound socket that connects keeps its port (now on the source address),
        // and frees it on close.
        let roaming = try socket()
        try roaming.bind(to: .ipv4(.unspecified, port: 6000))
        try roaming.connect(to: .ipv4(.loopback, port: 6001))
        XCTAssertEqual(roaming.localAddress, .ipv4(.loopback, port: 6000))
        let rival = try socket()
        XCTAssertThrowsError(try rival.bind(to: .ipv4(.unspecified, port: 6000))) {
            XCTAssertEqual($0 as? NetError, .addressInUse)
        }
        roaming.close()
        try rival.bind(to: .ipv4(.unspecified, port: 6000))
        // A stream socket in the inet domain is TCP now.
        XCTAssertEqual(try stack.socket(.inet, .stream).type, .stream)
    }

    func testDatagramsSentJustBeforeCloseStillLeave() throws {
        try bounded {
            let server = try socket()
            try server.bind(to: .ipv4(.loopback, port: 7100))
            for round in 0..<20 {
                let client = try socket()
                for index in 0..<40 {
                    try client.send([UInt8(round), UInt8(index)], to: .ipv4(.loopback, port: 7100))
                }
                client.close()
                for index in 0..<40 {
                    XCTAssertEqual(try server.receive(maxBytes: 8).bytes, [UInt8(round), UInt8(index)])
                }
            }
        }
    }

    func testConnectedSocketAndPortUnreachable() throws {
        try bounded {
            let server = try socket()
            try server.bind(to: .ipv4(.loopback, port: 7000))
            let client = try socket()
            try client.connect(to: .ipv4(.loopback, port: 7000))
            XCTAssertEqual(try client.peerAddress(), .ipv4(.loopback, port: 7000))
            // As on Linux, sendto names another destination even on a connected socket.
            let other = try socket()
            try other.bind(to: .ipv4(.loopback, port: 7003))
            try client.send([1], to: .ipv4(.loopback, port: 7003))
            XCTAssertEqual(try other.receive(maxBytes: 8).bytes, [1])
            try client.write(Array("connected".utf8))
            let got = try server.receive(maxBytes: 64)
            XCTAssertEqual(got.bytes, Array("connected".utf8))
            // A connected socket hears only its peer.
            let stranger = try socket()
            try stranger.send([9, 9], to: client.localAddress)
            try server.send([1, 2, 3], to: got.source)
            XCTAssertEqual(try client.read(maxBytes: 10), [1, 2, 3])
            XCTAssertThrowsError(try client.read(maxBytes: 10, flags: .dontWait)) {
                XCTAssertEqual($0 as? NetError, .wouldBlock)
            }
            // The peer goes away: ICMP port unreachable, then connectionRefused on the next call.
            server.close()
            try client.write([4])
            XCTAssertThrowsError(try client.read(maxBytes: 10)) {
                XCTAssertEqual($0 as? NetError, .connectionRefused)
            }
            XCTAssertGreaterThanOrEqual(stack.inetStatistics()[.icmpErrorsSent], 1)
            // An unconnected sender is not told.
            let loose = try socket()
            try loose.send([1], to: .ipv4(.loopback, port: 7002))
            try loose.send([1], to: .ipv4(.loopback, port: 7002))
            XCTAssertThrowsError(try loose.receive(maxBytes: 10, flags: .dontWait)) {
                XCTAssertEqual($0 as? NetError, .wouldBlock)
            }
            guard case .ipv4(let connectedAddress, let port) = client.localAddress else {
                return XCTFail("no local address")
            }
            XCTAssertEqual(connectedAddress, .loopback, "connect chose the route's source")
            try client.disconnect()
            XCTAssertThrowsError(try client.write([1])) { XCTAssertEqual($0 as? NetError, .destinationRequired) }
            XCTAssertEqual(client.localAddress, .ipv4(.unspecified, port: port), "disconnect gave the source back")
        }
    }

    func testBroadcastNeedsTheOption() throws {
        let network = SimulatedNetwork(seed: 2)
        defer { network.shutdown() }
        let lan = network.makeSwitch()
        let a = network.makeStack()
        let b = network.makeStack()
        let c = network.makeStack()
        try network.attach(a, to: lan, address: "198.18.0.1/24")
        try network.attach(b, to: lan, address: "198.18.0.2/24")
        try network.attach(c, to: lan, address: "198.18.0.3/24")
        let listenerB = try b.socket(.inet, .datagram)
        try listenerB.bind(to: .ipv4(.unspecified, port: 6000))
        let listenerC = try c.socket(.inet, .datagram)
        try listenerC.bind(to: .ipv4(.unspecified, port: 6000))
        let sender = try a.socket(.inet, .datagram)
        XCTAssertThrowsError(try sender.send([1], to: .ipv4(.broadcast, port: 6000))) {
            XCTAssertEqual($0 as? NetError, .permissionDenied)
        }
        sender.allowsBroadcast = true
        try sender.send(Array("all".utf8), to: .ipv4(.broadcast, port: 6000))
        try sender.send(Array("subnet".utf8), to: .ipv4(address("198.18.0.255"), port: 6000))
        network.runUntilIdle()
        for listener in [listenerB, listenerC] {
            XCTAssertEqual(try listener.receive(maxBytes: 10, flags: .dontWait).bytes, Array("all".utf8))
            let second = try listener.receive(maxBytes: 10, flags: .dontWait)
            XCTAssertEqual(second.bytes, Array("subnet".utf8))
            guard case .ipv4(let host, _) = second.source else { return XCTFail() }
            XCTAssertEqual(host, address("198.18.0.1"))
        }
        // Broadcast without listeners draws no ICMP.
        try sender.send([1], to: .ipv4(.broadcast, port: 6001))
        network.runUntilIdle()
        XCTAssertEqual(b.inetStatistics()[.icmpErrorsSent], 0)
    }

    func testAsyncSendAndReceive() async throws {
        let server = try socket()
        try server.bind(to: .ipv4(.loopback, port: 8100))
        let client = try socket()
        try await client.connect(to: .ipv4(.loopback, port: 8100))
        let receiving = Task {
            var total = 0
            for _ in 0..<100 {
                let datagram = try await server.receive(maxBytes: 2000)
                total += datagram.bytes.count
            }
            return total
        }
        for index in 0..<100 { try await client.send([UInt8](repeating: UInt8(index), count: 1000), to: nil) }
        let total = try await receiving.value
        XCTAssertEqual(total, 100_000)
    }

    /// Many datagrams from two threads, each checked by hash, none lost on loopback when the
    /// receiver keeps up (the window bounds what is in flight).
    func testManyDatagramsOverLoopbackAreExact() throws {
        try bounded(60) {
            let server = try socket()
            try server.setOption(.receiveBufferSize, 4 << 20)
            try server.bind(to: .ipv4(.loopback, port: 8200))
            let client = try socket()
            try client.connect(to: .ipv4(.loopback, port: 8200))
            let count = 5000
            var generator = SeededGenerator(seed: 99)
            var sentHash = StreamHash()
            var receivedHash = StreamHash()
            var received = 0
            for index in 0..<count {
                let size = 1 + Int(generator.next() % 1400)
                let payload = generator.bytes(size)
                sentHash.add(payload)
                try client.write(payload)
                if index % 64 == 63 {
                    while received < index - 256 {
                        receivedHash.add(try server.receive(maxBytes: 2000).bytes)
                        received += 1
                    }
                }
            }
            while received < count {
                receivedHash.add(try server.receive(maxBytes: 2000).bytes)
                received += 1
            }
            XCTAssertEqual(receivedHash, sentHash)
            XCTAssertEqual(stack.inetStatistics()[.udpBufferFull], 0)
        }
    }

    func testLargestDatagramIsFragmentedAndReassembledOverLoopback() throws {
        try bounded {
            let server = try socket()
            try server.bind(to: .ipv4(.loopback, port: 8300))
            let client = try socket()
            var generator = SeededGenerator(seed: 12)
            for size in [UDPProtocol.maximumPayload, 40_000, 16_400, 0] {
                let payload = generator.bytes(size)
                try client.send(payload, to: .ipv4(.loopback, port: 8300))
                let received = try server.receive(maxBytes: 70_000)
                XCTAssertEqual(received.bytes.count, size)
                XCTAssertEqual(received.bytes, payload)
            }
            XCTAssertThrowsError(
                try client.send(
                    [UInt8](repeating: 0, count: UDPProtocol.maximumPayload + 1), to: .ipv4(.loopback, port: 8300))
            ) { XCTAssertEqual($0 as? NetError, .messageTooLong) }
            let stats = stack.inetStatistics()
            XCTAssertEqual(stats[.reassembled], 3, "\(stats)")
            XCTAssertEqual(stats[.ipFragmentsOut], 5 + 3 + 2, "\(stats)")
        }
    }

    func testPollerSeesUDPReadinessAndErrors() throws {
        try bounded {
            let poller = SocketPoller()
            let server = try socket()
            try server.bind(to: .ipv4(.loopback, port: 8400))
            let client = try socket()
            try client.connect(to: .ipv4(.loopback, port: 8400))
            try poller.register(server, interest: .readable, token: 1)
            try poller.register(client, interest: [.readable, .writable], token: 2)
            XCTAssertEqual(poller.wait(timeout: .zero), [SocketPoller.Event(token: 2, events: .writable)])
            try client.write([42])
            // Level-triggered: the writable client shows up again until its interest changes.
            poller.unregister(client)
            try poller.register(client, interest: .readable, token: 2)
            XCTAssertEqual(poller.wait(timeout: .seconds(10)), [SocketPoller.Event(token: 1, events: .readable)])
            XCTAssertEqual(try server.receive(maxBytes: 4).bytes, [42])
            // The peer goes away: the ICMP error makes the client readable.
            poller.unregister(server)
            server.close()
            try client.write([43])
            XCTAssertEqual(poller.wait(timeout: .seconds(10)), [SocketPoller.Event(token: 2, events: .readable)])
            XCTAssertThrowsError(try client.read(maxBytes: 4)) { XCTAssertEqual($0 as? NetError, .connectionRefused) }
            poller.unregister(client)
        }
    }

    func testTimeoutsAndShutdownWakeABlockedReader() throws {
        try bounded {
            let server = try socket()
            try server.bind(to: .ipv4(.loopback, port: 8500))
            server.receiveTimeout = .milliseconds(30)
            XCTAssertThrowsError(try server.receive(maxBytes: 8)) { XCTAssertEqual($0 as? NetError, .wouldBlock) }
            server.receiveTimeout = nil
            let reader = OSThread.start(name: "test-blocked-reader") {
                let receipt = try? server.receive(maxBytes: 8)
                XCTAssertEqual(receipt?.bytes, [])
            }
            // Whether the reader has blocked yet or not, the shutdown ends its read with 0 bytes.
            try server.shutdown(.read)
            reader.join()
            // Datagrams for a socket that cannot receive are dropped, not queued.
            let client = try socket()
            try client.send([1], to: .ipv4(.loopback, port: 8500))
            for thread in stack.threads { _ = try? thread.call { () throws(NetError) in 0 } }
            XCTAssertEqual(try server.option(.bytesToRead), 0)
        }
    }
}
