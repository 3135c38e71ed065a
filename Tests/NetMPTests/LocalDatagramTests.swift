import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

final class LocalDatagramTests: StackTestCase {
    func testBoundariesAreKeptAndSendersNamed() throws {
        try bounded {
            let server = try stack.socket(.local, .datagram)
            try server.bind(to: .local("/dgram/server"))
            let client = try stack.socket(.local, .datagram)
            try client.bind(to: .local("/dgram/client"))
            try client.send([1, 2, 3], to: .local("/dgram/server"))
            try client.send([], to: .local("/dgram/server"))
            try client.send([4, 5], to: .local("/dgram/server"))
            let first = try server.receive(maxBytes: 100)
            XCTAssertEqual(first.bytes, [1, 2, 3])
            XCTAssertEqual(first.source, .local("/dgram/client"))
            XCTAssertEqual(first.flags, [])
            XCTAssertEqual(try server.receive(maxBytes: 100).bytes, [])
            XCTAssertEqual(try server.receive(maxBytes: 100).bytes, [4, 5])
            // Reply to the named sender.
            try server.send([6], to: first.source)
            XCTAssertEqual(try client.receive(maxBytes: 10).bytes, [6])
            // An unnamed sender.
            let anonymous = try stack.socket(.local, .datagram)
            try anonymous.send([7], to: .local("/dgram/server"))
            XCTAssertEqual(try server.receive(maxBytes: 10).source, .unnamed)
        }
    }

    func testTruncationIsReportedAndTheRestDropped() throws {
        try bounded {
            let (a, b) = try stack.socketPair(.datagram)
            try a.write([UInt8](0..<10))
            try a.write([42])
            let cut = try b.receive(maxBytes: 4)
            XCTAssertEqual(cut.bytes, [0, 1, 2, 3])
            XCTAssertEqual(cut.flags, .truncated)
            XCTAssertEqual(try b.receive(maxBytes: 4).bytes, [42])
            try a.write([1, 2, 3])
            XCTAssertEqual(try b.receive(maxBytes: 2, flags: .peek).flags, .truncated)
            XCTAssertEqual(try b.read(maxBytes: 10), [1, 2, 3])
        }
    }

    func testConnectedDatagramsAndErrors() throws {
        try bounded {
            let server = try stack.socket(.local, .datagram)
            try server.bind(to: .local("/dg"))
            let client = try stack.socket(.local, .datagram)
            assertThrows(.destinationRequired) { () throws(NetError) in try client.write([1]) }
            assertThrows(.connectionRefused) { () throws(NetError) in try client.send([1], to: .local("/none")) }
            try client.connect(to: .local("/dg"))
            try client.write([1])
            assertThrows(.alreadyConnected) { () throws(NetError) in try client.send([1], to: .local("/dg")) }
            XCTAssertEqual(try server.read(maxBytes: 5), [1])
            assertThrows(.messageTooLong) { () throws(NetError) in
                try client.write([UInt8](repeating: 0, count: LocalDomain.defaultDatagramBufferSize + 1))
            }
            // Empty datagrams are charged too: a receiver nobody reads fills up instead of
            // growing without bound.
            let sink = try stack.socket(.local, .datagram)
            try sink.bind(to: .local("/dg/sink"))
            try sink.setOption(.receiveBufferSize, 10 * DatagramRecord.overhead)
            let spammer = try stack.socket(.local, .datagram)
            spammer.isNonBlocking = true
            for _ in 0..<10 { try spammer.send([], to: .local("/dg/sink")) }
            assertThrows(.wouldBlock) { () throws(NetError) in try spammer.send([], to: .local("/dg/sink")) }
            XCTAssertEqual(try sink.option(.bytesToRead), 0)
            XCTAssertEqual(try sink.receive(maxBytes: 4).bytes, [])
            server.close()
            assertThrows(.connectionRefused) { () throws(NetError) in try client.write([2]) }
            let stream = try stack.socket(.local, .stream)
            try stream.bind(to: .local("/stream-only"))
            try stream.listen()
            assertThrows(.connectionRefused) { () throws(NetError) in try client.send([1], to: .local("/stream-only")) }
        }
    }

    /// A connected sender reaches its peer through a link published at connect: every change
    /// of peer (reconnect, the peer's close, disconnect) and a later bind must show in the next
    /// send, exactly as when the peer was looked up under the lock on every send.
    func testAConnectedSenderFollowsEveryChangeOfItsPeer() throws {
        try bounded {
            let first = try stack.socket(.local, .datagram)
            try first.bind(to: .local("/follow/first"))
            let second = try stack.socket(.local, .datagram)
            try second.bind(to: .local("/follow/second"))
            first.isNonBlocking = true
            second.isNonBlocking = true
            let client = try stack.socket(.local, .datagram)
            try client.connect(to: .local("/follow/first"))
            try client.write([1])
            XCTAssertEqual(try first.receive(maxBytes: 8).bytes, [1])
            // Reconnected: the next datagram goes to the new peer only.
            try client.connect(to: .local("/follow/second"))
            try client.write([2])
            XCTAssertEqual(try second.receive(maxBytes: 8).bytes, [2])
            assertThrows(.wouldBlock) { () throws(NetError) in try first.receive(maxBytes: 8) }
            // Bound after the connect: later datagrams carry the name.
            try client.bind(to: .local("/follow/client"))
            try client.write([3])
            let named = try second.receive(maxBytes: 8)
            XCTAssertEqual(named.bytes, [3])
            XCTAssertEqual(named.source, .local("/follow/client"))
            // The peer closed: refused once, and the association is gone after that.
            second.close()
            assertThrows(.connectionRefused) { () throws(NetError) in try client.write([4]) }
            assertThrows(.destinationRequired) { () throws(NetError) in try client.write([5]) }
            XCTAssertThrowsError(try client.peerAddress())
            try client.send([6], to: .local("/follow/first"))
            XCTAssertEqual(try first.receive(maxBytes: 8).bytes, [6])
            // Connected again, then disconnected: nothing reaches the old peer.
            try client.connect(to: .local("/follow/first"))
            try client.write([7])
            XCTAssertEqual(try first.receive(maxBytes: 8).bytes, [7])
            try client.disconnect()
            assertThrows(.destinationRequired) { () throws(NetError) in try client.write([8]) }
            assertThrows(.wouldBlock) { () throws(NetError) in try first.receive(maxBytes: 8) }
            // The client itself closed.
            try client.connect(to: .local("/follow/first"))
            client.close()
            assertThrows(.badDescriptor) { () throws(NetError) in try client.write([9]) }
            assertThrows(.wouldBlock) { () throws(NetError) in try first.receive(maxBytes: 8) }
        }
    }

    func testFullReceiverHoldsSendersBackUntilItDrains() throws {
        try bounded {
            let (a, b) = try stack.socketPair(.datagram)
            // Room for exactly three 1000-byte datagrams (each is charged its overhead too).
            try b.setOption(.receiveBufferSize, 3 * DatagramRecord.charge(forPayload: 1000))
            a.isNonBlocking = true
            try a.write([UInt8](repeating: 1, count: 1000))
            try a.write([UInt8](repeating: 2, count: 1000))
            try a.write([UInt8](repeating: 3, count: 1000))
            assertThrows(.wouldBlock) { () throws(NetError) in try a.write([4]) }
            a.isNonBlocking = false
            let count = 2000
            let writer = OSThread.start(name: "writer") {
                for index in 0..<count { _ = try? a.write([UInt8](repeating: UInt8(index % 251), count: 500)) }
            }
            for expected: UInt8 in [1, 2, 3] {
                XCTAssertEqual(try b.read(maxBytes: 2000), [UInt8](repeating: expected, count: 1000))
            }
            for index in 0..<count {
                XCTAssertEqual(try b.read(maxBytes: 2000), [UInt8](repeating: UInt8(index % 251), count: 500))
            }
            writer.join()
        }
    }

    func testManySendersToOneReceiverLoseNothing() throws {
        try bounded {
            let server = try stack.socket(.local, .datagram)
            try server.bind(to: .local("/sink"))
            try server.setOption(.receiveBufferSize, 8192)
            let senders = 4
            let perSender = 2000
            let stack = self.stack!
            let threads = (0..<senders).map { index in
                OSThread.start(name: "sender-\(index)") {
                    guard let socket = try? stack.socket(.local, .datagram) else { return }
                    for sequence in 0..<perSender {
                        let message = [UInt8(index), UInt8(sequence & 0xff), UInt8(sequence >> 8)]
                        _ = try? socket.send(message, to: .local("/sink"))
                    }
                }
            }
            var next = [Int](repeating: 0, count: senders)
            for _ in 0..<(senders * perSender) {
                let message = try server.read(maxBytes: 16)
                XCTAssertEqual(message.count, 3)
                let sender = Int(message[0])
                XCTAssertEqual(Int(message[1]) | Int(message[2]) << 8, next[sender], "per-sender order")
                next[sender] += 1
            }
            for thread in threads { thread.join() }
            XCTAssertEqual(next, [Int](repeating: perSender, count: senders))
        }
    }
}
