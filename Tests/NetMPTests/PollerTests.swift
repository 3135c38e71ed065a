import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

final class PollerTests: StackTestCase {
    func testReportsOnlyReadySocketsAmongThousands() throws {
        try bounded {
            let poller = SocketPoller()
            var pairs: [(NetSocket, NetSocket)] = []
            for index in 0..<2000 {
                let pair = try stack.socketPair(.stream)
                try poller.register(pair.1, interest: .readable, token: index)
                pairs.append(pair)
            }
            XCTAssertEqual(poller.wait(timeout: .zero), [])
            for index in [3, 1999, 700] { try pairs[index].0.write([UInt8(index % 256)]) }
            let events = poller.wait(timeout: .seconds(5))
            XCTAssertEqual(Set(events.map(\.token)), [3, 700, 1999])
            XCTAssertTrue(events.allSatisfy { $0.events == .readable })
            // Level-triggered: still readable until read.
            XCTAssertEqual(Set(poller.wait(timeout: .zero).map(\.token)), [3, 700, 1999])
            _ = try pairs[700].1.read(maxBytes: 10)
            XCTAssertEqual(Set(poller.wait(timeout: .zero).map(\.token)), [3, 1999])
            poller.unregister(pairs[3].1)
            XCTAssertEqual(Set(poller.wait(timeout: .zero).map(\.token)), [1999])
            XCTAssertEqual(poller.count, 1999)
        }
    }

    func testWakesAWaitingThreadAndReportsWritableAndHangup() throws {
        try bounded {
            let poller = SocketPoller()
            let (a, b) = try stack.socketPair(.stream)
            try b.setOption(.receiveBufferSize, 4096)
            try poller.register(a, interest: .writable, token: 1)
            XCTAssertEqual(poller.wait(timeout: .zero), [SocketPoller.Event(token: 1, events: .writable)])
            a.isNonBlocking = true
            while (try? a.write([UInt8](repeating: 0, count: 1000))) != nil {}
            XCTAssertEqual(poller.wait(timeout: .zero), [], "full: not writable")
            let reader = OSThread.start(name: "drain") { _ = try? b.read(maxBytes: 4096) }
            XCTAssertEqual(poller.wait(timeout: .seconds(5)), [SocketPoller.Event(token: 1, events: .writable)])
            reader.join()
            try poller.register(b, interest: .readable, token: 2)
            a.close()
            let events = poller.wait(timeout: .seconds(5))
            XCTAssertEqual(events.first { $0.token == 2 }?.events, [.readable, .hangup])
        }
    }

    /// Both ends of a connection made by connect and accept learn of room when the other reads,
    /// also when the connecting socket was refused once before (a full backlog): its reads must
    /// tell the child it is linked to now, not the one of the refused attempt.
    func testConnectedAndAcceptedStreamSocketsLearnOfRoomAfterARefusal() throws {
        try bounded {
            let listener = try stack.socket(.local, .stream)
            try listener.bind(to: .local("/poll/room"))
            try listener.listen(backlog: 1)
            let filler = try stack.socket(.local, .stream)
            try filler.connect(to: .local("/poll/room"))
            let client = try stack.socket(.local, .stream)
            XCTAssertThrowsError(try client.connect(to: .local("/poll/room"))) {
                XCTAssertEqual($0 as? NetError, .connectionRefused)
            }
            _ = try listener.accept()
            try client.connect(to: .local("/poll/room"))
            let child = try listener.accept()
            try client.setOption(.receiveBufferSize, 4096)
            try child.setOption(.receiveBufferSize, 4096)
            for (writer, reader, token) in [(client, child, 1), (child, client, 2)] {
                let poller = SocketPoller()
                try poller.register(writer, interest: .writable, token: token)
                writer.isNonBlocking = true
                while (try? writer.write([UInt8](repeating: 0, count: 1000))) != nil {}
                XCTAssertEqual(poller.wait(timeout: .zero), [], "full: not writable")
                let drain = OSThread.start(name: "drain") { _ = try? reader.read(maxBytes: 4096) }
                XCTAssertEqual(
                    poller.wait(timeout: .seconds(5)), [SocketPoller.Event(token: token, events: .writable)])
                drain.join()
            }
        }
    }

    func testListenerIsReadableWhenAConnectionWaits() throws {
        try bounded {
            let poller = SocketPoller()
            let listener = try stack.socket(.local, .stream)
            try listener.bind(to: .local("/poll/listen"))
            try listener.listen()
            try poller.register(listener, interest: .readable, token: 9)
            XCTAssertEqual(poller.wait(timeout: .milliseconds(1)), [])
            let stack = self.stack!
            let connector = OSThread.start(name: "connect") {
                let client = try? stack.socket(.local, .stream)
                try? client?.connect(to: .local("/poll/listen"))
                client?.close()
            }
            XCTAssertEqual(poller.wait(timeout: .seconds(5)), [SocketPoller.Event(token: 9, events: .readable)])
            connector.join()
            XCTAssertNotNil(try listener.accept())
        }
    }

    /// A full datagram receiver: room for less than one more datagram of the size the sender
    /// sends means not writable, exactly when a `dontWait` send of that size fails.
    func testDatagramWritableMeansATypicalDatagramFits() throws {
        try bounded {
            let receiver = try stack.socket(.local, .datagram)
            try receiver.bind(to: .local("/poll/dgram-full"))
            let size = DatagramRecord.charge(forPayload: 1000)
            // Room for two datagrams and half of a third.
            try receiver.setOption(.receiveBufferSize, size * 2 + size / 2)
            let sender = try stack.socket(.local, .datagram)
            try sender.connect(to: .local("/poll/dgram-full"))
            let poller = SocketPoller()
            try poller.register(sender, interest: .writable, token: 1)
            let datagram = [UInt8](repeating: 3, count: 1000)
            try sender.write(datagram, flags: .dontWait)
            try sender.write(datagram, flags: .dontWait)
            XCTAssertGreaterThan(receiver.core.receiveBuffer.room, 0, "some room is left")
            XCTAssertEqual(poller.wait(timeout: .zero), [], "but not for the datagram this socket sends")
            assertThrows(.wouldBlock) { () throws(NetError) in try sender.write(datagram, flags: .dontWait) }
            _ = try receiver.read(maxBytes: 2000)
            // (On protocol threads the reader's owner tells the poller, a message later.)
            XCTAssertEqual(poller.wait(timeout: .seconds(10)), [SocketPoller.Event(token: 1, events: .writable)])
            XCTAssertEqual(try sender.write(datagram, flags: .dontWait), 1000)
        }
    }

    /// Until a socket of the stack is first registered with a poller, readers tell nobody of
    /// room (`SocketRegistry.observersMade`); a sender registered after the receiver drained
    /// is still reported writable, by the registration's own look at readiness.
    func testSenderRegisteredAfterTheDrainIsWritable() throws {
        try bounded {
            let (sender, receiver) = try stack.socketPair(.datagram)
            try receiver.setOption(.receiveBufferSize, DatagramRecord.charge(forPayload: 500) * 2)
            while (try? sender.write([UInt8](repeating: 1, count: 500), flags: .dontWait)) != nil {}
            XCTAssertFalse(stack.sockets.observersMade.load(ordering: .sequentiallyConsistent))
            _ = try receiver.read(maxBytes: 500)
            let poller = SocketPoller()
            try poller.register(sender, interest: .writable, token: 4)
            XCTAssertTrue(stack.sockets.observersMade.load(ordering: .sequentiallyConsistent))
            XCTAssertEqual(poller.wait(timeout: .zero), [SocketPoller.Event(token: 4, events: .writable)])
        }
    }

    /// A receiver that drains tells the pollers of every socket connected to it, not only a
    /// peer it is connected back to.
    func testDrainingReceiverWakesPollersOfSendersItIsNotConnectedTo() throws {
        try bounded {
            let receiver = try stack.socket(.local, .datagram)
            try receiver.bind(to: .local("/poll/dgram-many"))
            let size = DatagramRecord.charge(forPayload: 500)
            try receiver.setOption(.receiveBufferSize, size * 2)
            let senders = try (0..<2).map { _ in try stack.socket(.local, .datagram) }
            let poller = SocketPoller()
            for (token, sender) in senders.enumerated() {
                try sender.connect(to: .local("/poll/dgram-many"))
                try sender.write([UInt8](repeating: UInt8(token), count: 500), flags: .dontWait)
                try poller.register(sender, interest: .writable, token: token)
            }
            XCTAssertEqual(poller.wait(timeout: .zero), [], "the receiver is full")
            _ = try receiver.read(maxBytes: 500)
            // Level-triggered: once both are told, both are reported by one wait.
            var seen: Set<Int> = []
            var events: [SocketPoller.Event] = []
            while seen.count < 2 {
                events = poller.wait(timeout: .seconds(10))
                XCTAssertFalse(events.isEmpty, "a sender was not told")
                if events.isEmpty { break }
                seen.formUnion(events.map(\.token))
            }
            XCTAssertEqual(Set(poller.wait(timeout: .zero).map(\.token)), [0, 1])
            XCTAssertTrue(events.allSatisfy { $0.events == .writable })
        }
    }
}
