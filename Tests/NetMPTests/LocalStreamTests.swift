import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

final class LocalStreamTests: StackTestCase {
    func testSocketPairCarriesBytesBothWays() throws {
        try bounded {
            let (a, b) = try stack.socketPair(.stream)
            XCTAssertEqual(try a.write(Array("hello".utf8)), 5)
            XCTAssertEqual(try b.read(maxBytes: 100), Array("hello".utf8))
            XCTAssertEqual(try b.write([1, 2, 3]), 3)
            XCTAssertEqual(try a.read(maxBytes: 2), [1, 2])
            XCTAssertEqual(try a.read(maxBytes: 2), [3])
            XCTAssertEqual(try a.write([]), 0)
        }
    }

    func testLargeTransferAcrossThreadsIsExact() throws {
        try bounded {
            let (a, b) = try stack.socketPair(.stream)
            var generator = SeededGenerator(seed: 42)
            let payload = generator.bytes(5 << 20)
            var expected = StreamHash()
            expected.add(payload)
            let failures = FailureLog()
            let writer = OSThread.start(name: "writer") {
                do {
                    var offset = 0
                    while offset < payload.count {
                        let end = Swift.min(payload.count, offset + 65536 + offset % 1000)
                        try a.write(Array(payload[offset..<end]))
                        offset = end
                    }
                    try a.shutdown(.write)
                } catch {
                    failures.record("writer: \(error)")
                }
            }
            var received = StreamHash()
            while true {
                let chunk = try b.read(maxBytes: 50_000)
                if chunk.isEmpty { break }
                received.add(chunk)
            }
            writer.join()
            failures.check()
            XCTAssertEqual(received, expected)
        }
    }

    func testSmallWritesCoalesceAndKeepOrder() throws {
        try bounded {
            let (a, b) = try stack.socketPair(.stream)
            var expected = StreamHash()
            for index in 0..<10_000 {
                let bytes = [UInt8(truncatingIfNeeded: index), UInt8(truncatingIfNeeded: index >> 8), 7]
                try a.write(bytes)
                expected.add(bytes)
            }
            XCTAssertEqual(try b.option(.bytesToRead), 30_000)
            try a.shutdown(.write)
            var received = StreamHash()
            while true {
                let chunk = try b.read(maxBytes: 777)
                if chunk.isEmpty { break }
                received.add(chunk)
            }
            XCTAssertEqual(received, expected)
        }
    }

    /// Small messages each way, one at a time (the ping-pong that reuses the reader's last
    /// chunk), now and then a larger one in a chunk of its own and a peek: every byte arrives in
    /// order.
    func testPingPongOfMixedSizesIsExact() throws {
        try bounded {
            let (a, b) = try stack.socketPair(.stream)
            var generator = SeededGenerator(seed: 11)
            let sizes = (0..<3000).map { index in index % 97 == 0 ? 600 + index % 1500 : 1 + index % 40 }
            let messages = sizes.map { generator.bytes($0) }
            let failures = FailureLog()
            let echo = OSThread.start(name: "echo") {
                do {
                    for message in messages {
                        var got: [UInt8] = []
                        while got.count < message.count {
                            got += try b.read(maxBytes: message.count - got.count)
                        }
                        if got != message { failures.record("echo side got other bytes") }
                        try b.write(got)
                    }
                } catch {
                    failures.record("echo: \(error)")
                }
            }
            var sent = StreamHash()
            var received = StreamHash()
            for (index, message) in messages.enumerated() {
                try a.write(message)
                sent.add(message)
                if index % 5 == 0 {
                    let peeked = try a.read(maxBytes: 1, flags: .peek)
                    XCTAssertEqual(peeked.count, 1)
                    XCTAssertEqual(peeked.first, message.first)
                }
                var got: [UInt8] = []
                while got.count < message.count { got += try a.read(maxBytes: message.count - got.count) }
                received.add(got)
            }
            echo.join()
            failures.check()
            XCTAssertEqual(received, sent)
        }
    }

    func testNamedListenAcceptConnectAndAddresses() throws {
        try bounded {
            let listener = try stack.socket(.local, .stream)
            try listener.bind(to: .local("/srv/echo"))
            try listener.listen(backlog: 4)
            XCTAssertEqual(try listener.option(.acceptsConnections), 1)
            let client = try stack.socket(.local, .stream)
            try client.bind(to: .local("/cli/1"))
            try client.connect(to: .local("/srv/echo"))
            let server = try listener.accept()
            XCTAssertEqual(server.localAddress, .local("/srv/echo"))
            XCTAssertEqual(try server.peerAddress(), .local("/cli/1"))
            XCTAssertEqual(try client.peerAddress(), .local("/srv/echo"))
            let anonymous = try stack.socket(.local, .stream)
            try anonymous.connect(to: .local("/srv/echo"))
            XCTAssertEqual(try listener.accept().peerAddress(), .unnamed)
            try client.write([9, 8, 7])
            XCTAssertEqual(try server.read(maxBytes: 10), [9, 8, 7])
            XCTAssertEqual(client.state.contains(.connected), true)
        }
    }

    func testPeerCloseGivesEndOfFileAfterTheDataAndBrokenPipeToWriters() throws {
        try bounded {
            let (client, server) = try connectedPair()
            try client.write([1, 2, 3])
            client.close()
            XCTAssertEqual(try server.read(maxBytes: 10), [1, 2, 3])
            XCTAssertEqual(try server.read(maxBytes: 10), [])
            XCTAssertEqual(try server.read(maxBytes: 10), [])
            assertThrows(.brokenPipe) { () throws(NetError) in try server.write([1]) }
        }
    }

    func testErrorsForMisuse() throws {
        try bounded {
            let a = try stack.socket(.local, .stream)
            assertThrows(.connectionRefused) { () throws(NetError) in try a.connect(to: .local("/nobody")) }
            try a.bind(to: .local("/taken"))
            assertThrows(.invalidArgument) { () throws(NetError) in try a.bind(to: .local("/other")) }
            let b = try stack.socket(.local, .stream)
            assertThrows(.addressInUse) { () throws(NetError) in try b.bind(to: .local("/taken")) }
            // A bound socket that does not listen refuses connections.
            assertThrows(.connectionRefused) { () throws(NetError) in try b.connect(to: .local("/taken")) }
            assertThrows(.invalidArgument) { () throws(NetError) in try b.bind(to: .local("")) }
            assertThrows(.nameTooLong) { () throws(NetError) in
                try b.bind(to: .local(String(repeating: "x", count: 200)))
            }
            assertThrows(.invalidArgument) { () throws(NetError) in try b.bind(to: .unnamed) }
            assertThrows(.notConnected) { () throws(NetError) in try b.write([1]) }
            assertThrows(.notConnected) { () throws(NetError) in try b.read(maxBytes: 1) }
            assertThrows(.notConnected) { () throws(NetError) in try b.shutdown(.both) }
            assertThrows(.notConnected) { () throws(NetError) in try b.peerAddress() }
            assertThrows(.invalidArgument) { () throws(NetError) in try b.accept() }
            assertThrows(.destinationRequired) { () throws(NetError) in try b.listen() }
            assertThrows(.invalidArgument) { () throws(NetError) in try b.listen(backlog: -1) }
            assertThrows(.invalidArgument) { () throws(NetError) in try b.read(maxBytes: -1) }
            let (c, cPeer) = try stack.socketPair(.stream)
            assertThrows(.alreadyConnected) { () throws(NetError) in try c.connect(to: .local("/taken")) }
            assertThrows(.alreadyConnected) { () throws(NetError) in try c.send([1], to: .local("/taken")) }
            withExtendedLifetime(cPeer) {}
            // Closing frees the name.
            a.close()
            let d = try stack.socket(.local, .stream)
            try d.bind(to: .local("/taken"))
        }
    }

    func testUseAfterCloseIsBadDescriptorAndCloseIsIdempotent() throws {
        try bounded {
            let (a, b) = try stack.socketPair(.stream)
            a.close()
            a.close()
            assertThrows(.badDescriptor) { () throws(NetError) in try a.write([1]) }
            assertThrows(.badDescriptor) { () throws(NetError) in try a.read(maxBytes: 1) }
            assertThrows(.badDescriptor) { () throws(NetError) in try a.bind(to: .local("/x")) }
            assertThrows(.badDescriptor) { () throws(NetError) in try a.listen() }
            assertThrows(.badDescriptor) { () throws(NetError) in try a.accept() }
            assertThrows(.badDescriptor) { () throws(NetError) in try a.connect(to: .local("/x")) }
            assertThrows(.badDescriptor) { () throws(NetError) in try a.shutdown(.read) }
            assertThrows(.badDescriptor) { () throws(NetError) in try a.setOption(.receiveBufferSize, 10) }
            assertThrows(.badDescriptor) { () throws(NetError) in try a.peerAddress() }
            XCTAssertEqual(try b.read(maxBytes: 1), [])
        }
    }

    func testNonBlockingReadAndWriteAndBackPressure() throws {
        try bounded {
            let (a, b) = try stack.socketPair(.stream)
            a.isNonBlocking = true
            b.isNonBlocking = true
            assertThrows(.wouldBlock) { () throws(NetError) in try b.read(maxBytes: 10) }
            try b.setOption(.receiveBufferSize, 10_000)
            let big = [UInt8](repeating: 1, count: 25_000)
            // A non-blocking write takes what fits.
            XCTAssertEqual(try a.write(big), 10_000)
            assertThrows(.wouldBlock) { () throws(NetError) in try a.write(big) }
            XCTAssertEqual(try b.read(maxBytes: 4000).count, 4000)
            XCTAssertEqual(try a.write(big), 4000)
            XCTAssertEqual(try b.read(maxBytes: 20_000).count, 10_000)
            // dontWait on a blocking socket.
            a.isNonBlocking = false
            b.isNonBlocking = false
            assertThrows(.wouldBlock) { () throws(NetError) in try b.read(maxBytes: 10, flags: .dontWait) }
        }
    }

    func testBlockedWriterIsWokenWhenTheReaderDrains() throws {
        try bounded {
            let (a, b) = try stack.socketPair(.stream)
            try b.setOption(.receiveBufferSize, 4096)
            var generator = SeededGenerator(seed: 3)
            let payload = generator.bytes(1 << 20)
            let failures = FailureLog()
            let writer = OSThread.start(name: "writer") {
                do {
                    let sent = try a.write(payload)
                    if sent != payload.count { failures.record("writer sent \(sent)") }
                    a.close()
                } catch {
                    failures.record("writer: \(error)")
                }
            }
            var received: [UInt8] = []
            while true {
                let chunk = try b.read(maxBytes: 1000)
                if chunk.isEmpty { break }
                XCTAssertLessThanOrEqual(try b.option(.bytesToRead), 4096)
                received += chunk
            }
            writer.join()
            failures.check()
            XCTAssertEqual(received, payload)
        }
    }

    func testPeekDoesNotConsumeAndWaitAllWaitsForEverything() throws {
        try bounded {
            let (a, b) = try stack.socketPair(.stream)
            try a.write([1, 2, 3, 4])
            XCTAssertEqual(try b.read(maxBytes: 2, flags: .peek), [1, 2])
            XCTAssertEqual(try b.read(maxBytes: 10, flags: .peek), [1, 2, 3, 4])
            XCTAssertEqual(try b.read(maxBytes: 3), [1, 2, 3])
            let writer = OSThread.start(name: "writer") {
                for value in 5...20 { _ = try? a.write([UInt8(value)]) }
            }
            // waitAll returns only when all 17 bytes are there.
            XCTAssertEqual(try b.read(maxBytes: 17, flags: .waitAll), (4...20).map { UInt8($0) })
            writer.join()
        }
    }

    func testPeekAcrossChunksSeesTheStreamInOrder() throws {
        try bounded {
            let (a, b) = try stack.socketPair(.stream)
            var generator = SeededGenerator(seed: 9)
            let payload = generator.bytes(1800)
            // Writes above the tail-copy size land in chunks of their own.
            for part in stride(from: 0, to: 1800, by: 600) { try a.write(Array(payload[part..<part + 600])) }
            XCTAssertGreaterThanOrEqual(b.core.receiveBuffer.chain.sliceCount, 3)
            XCTAssertEqual(try b.read(maxBytes: 1500, flags: .peek), Array(payload[0..<1500]))
            XCTAssertEqual(try b.read(maxBytes: 1800, flags: .waitAll), payload)
        }
    }

    func testReceiveLowWaterHoldsReadersBack() throws {
        try bounded {
            let (a, b) = try stack.socketPair(.stream)
            try b.setOption(.receiveLowWater, 4)
            XCTAssertEqual(try b.option(.receiveLowWater), 4)
            b.receiveTimeout = .milliseconds(20)
            try a.write([1, 2])
            // Two bytes are below the mark: the read waits, then times out with wouldBlock.
            assertThrows(.wouldBlock) { () throws(NetError) in try b.read(maxBytes: 10) }
            try a.write([3, 4])
            XCTAssertEqual(try b.read(maxBytes: 10), [1, 2, 3, 4])
        }
    }

    func testTimeoutsEndBlockedCallsAndLeaveNoWaiter() throws {
        try bounded {
            let (a, b) = try stack.socketPair(.stream)
            b.receiveTimeout = .milliseconds(10)
            XCTAssertEqual(b.receiveTimeout, .milliseconds(10))
            for _ in 0..<5 {
                assertThrows(.wouldBlock) { () throws(NetError) in try b.read(maxBytes: 1) }
            }
            XCTAssertEqual(b.core.receiveBuffer.waiterCount.load(ordering: .relaxed), 0)
            try b.setOption(.receiveBufferSize, 100)
            a.sendTimeout = .milliseconds(10)
            XCTAssertEqual(
                try a.write([UInt8](repeating: 0, count: 300)), 100, "a timed-out write reports what it sent")
            assertThrows(.wouldBlock) { () throws(NetError) in try a.write([1]) }
            XCTAssertEqual(b.core.receiveBuffer.waiterCount.load(ordering: .relaxed), 0)
            b.receiveTimeout = nil
            XCTAssertNil(b.receiveTimeout)
        }
    }

    func testOptionsValidateAndRoundTrip() throws {
        let (a, _) = try stack.socketPair(.stream)
        try a.setOption(.receiveBufferSize, 1 << 20)
        XCTAssertEqual(try a.option(.receiveBufferSize), 1 << 20)
        try a.setOption(.sendBufferSize, 12345)
        XCTAssertEqual(try a.option(.sendBufferSize), 12345)
        try a.setOption(.sendLowWater, 100)
        XCTAssertEqual(try a.option(.sendLowWater), 100)
        try a.setOption(.receiveTimeout, 5_000_000)
        XCTAssertEqual(a.receiveTimeout, .milliseconds(5))
        XCTAssertEqual(try a.option(.error), 0)
        XCTAssertEqual(try a.option(.acceptsConnections), 0)
        assertThrows(.invalidArgument) { () throws(NetError) in try a.setOption(.receiveBufferSize, 0) }
        assertThrows(.invalidArgument) { () throws(NetError) in try a.setOption(.sendBufferSize, 1 << 40) }
        assertThrows(.invalidArgument) { () throws(NetError) in try a.setOption(.receiveTimeout, -1) }
        assertThrows(.invalidArgument) { () throws(NetError) in try a.setOption(.receiveLowWater, -5) }
        assertThrows(.badOption) { () throws(NetError) in try a.setOption(.error, 1) }
        assertThrows(.badOption) { () throws(NetError) in try a.setOption(.bytesToRead, 1) }
    }

    func testShutdownWriteGivesPeerEndOfFileButKeepsTheOtherDirection() throws {
        try bounded {
            let (a, b) = try stack.socketPair(.stream)
            try a.write([1])
            try a.shutdown(.write)
            assertThrows(.brokenPipe) { () throws(NetError) in try a.write([2]) }
            XCTAssertEqual(try b.read(maxBytes: 5), [1])
            XCTAssertEqual(try b.read(maxBytes: 5), [])
            try b.write([3, 4])
            XCTAssertEqual(try a.read(maxBytes: 5), [3, 4])
        }
    }

    func testShutdownReadFlushesAndReturnsEndOfFile() throws {
        try bounded {
            let (a, b) = try stack.socketPair(.stream)
            try a.write([1, 2, 3])
            try b.shutdown(.read)
            XCTAssertEqual(try b.read(maxBytes: 5), [], "buffered data is flushed")
            XCTAssertEqual(try b.option(.bytesToRead), 0)
            assertThrows(.brokenPipe) { () throws(NetError) in try a.write([4]) }
        }
    }

    func testBacklogBoundsTheCompleteQueue() throws {
        try bounded {
            let listener = try stack.socket(.local, .stream)
            try listener.bind(to: .local("/small"))
            try listener.listen(backlog: 2)
            var clients: [NetSocket] = []
            for _ in 0..<2 {
                let client = try stack.socket(.local, .stream)
                try client.connect(to: .local("/small"))
                clients.append(client)
            }
            let refused = try stack.socket(.local, .stream)
            assertThrows(.connectionRefused) { () throws(NetError) in try refused.connect(to: .local("/small")) }
            XCTAssertFalse(refused.state.contains(.connected))
            _ = try listener.accept()
            let third = try stack.socket(.local, .stream)
            try third.connect(to: .local("/small"))
            listener.isNonBlocking = true
            _ = try listener.accept()
            _ = try listener.accept()
            assertThrows(.wouldBlock) { () throws(NetError) in try listener.accept() }
        }
    }

    func testDroppingHandlesClosesSockets() throws {
        try bounded {
            do {
                let (a, b) = try stack.socketPair(.stream)
                try a.write([1])
                _ = b
            }
            stack.quiesce()
            XCTAssertEqual(stack.liveSocketCount, 0)
            do {
                let listener = try stack.socket(.local, .stream)
                try listener.bind(to: .local("/dropped"))
                try listener.listen()
                let client = try stack.socket(.local, .stream)
                try client.connect(to: .local("/dropped"))
                _ = client
            }
            stack.quiesce()
            XCTAssertEqual(stack.liveSocketCount, 0)
        }
    }
}
