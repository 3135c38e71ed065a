import NetMP

/// The receive target's TCP connections, one per state a segment must be handled in: made by
/// scripted frames from the peer (198.18.7.1) to the listener (198.18.7.2:80), and rebuilt when
/// an input has moved one out of its state (a reset, a FIN, a timeout).
///
/// Each role has its own peer port and peer ISN, so the committed corpus can address a role with
/// in-window numbers; record kind 3 (see `ReceivePath`) builds a segment for a role from
/// sequence and acknowledgment offsets, because our ISN changes with the clock.
final class TCPFixtures {
    enum Role: Int, CaseIterable {
        case established, closeWait, finWait2, timeWait

        /// The peer's port: 41001 for `established`, and so on.
        var peerPort: UInt16 { 41001 + UInt16(rawValue) }
        /// The peer's ISN: 0x1000_0000 for `established`, 0x2000_0000 for the next, and so on.
        var peerISN: UInt32 { UInt32(rawValue + 1) << 28 }
    }

    struct Connection {
        var socket: NetSocket?
        /// The peer's next sequence number and ours, once set up.
        var peerNext: UInt32
        var ourNext: UInt32
        /// The socket state the role leaves it in (nil: closed, a TIME_WAIT record).
        var expected: SocketState?
    }

    private(set) var connections: [Role: Connection] = [:]
    private(set) var rebuilds = 0

    /// Whether every role is still in its state: its socket's flags as set up and no pending
    /// error, and a TIME_WAIT record in the stack.
    func intact(_ stack: NetworkStack) -> Bool {
        guard connections.count == Role.allCases.count, stack.tcpStatistics().timeWaitRecords >= 1 else { return false }
        for connection in connections.values {
            guard let socket = connection.socket else { continue }
            guard socket.state == connection.expected, (try? socket.option(.error)) == 0 else { return false }
        }
        return true
    }

    /// The open fixture sockets, for draining.
    var sockets: [NetSocket] { connections.values.compactMap(\.socket) }

    /// Aborts every role's connection, lets every TIME_WAIT record expire, and sets them up anew.
    func rebuild(_ harness: ReceivePath) {
        rebuilds += 1
        for connection in connections.values {
            connection.socket?.linger = .zero
            connection.socket?.close()
        }
        connections = [:]
        // Every connection and TIME_WAIT record goes (the aborted ones, and what inputs left:
        // children closed half-way, retransmitting): time moves on until none is left.
        let configuration = harness.stack.tcpConfiguration
        for _ in 0..<64 {
            harness.stack.runUntilIdle()
            let statistics = harness.stack.tcpStatistics()
            if statistics.liveConnections == 0 && statistics.timeWaitRecords == 0 { break }
            harness.clock.advance(by: 2 * configuration.maximumSegmentLifetime + configuration.finWait2Timeout)
        }
        for role in Role.allCases {
            if let connection = setUp(role, harness) { connections[role] = connection }
        }
        harness.interfaces[0].stopCapturing()
        harness.settle()
    }

    /// The handshake and the role's close steps, reading our numbers from what the stack sends.
    private func setUp(_ role: Role, _ harness: ReceivePath) -> Connection? {
        let interface = harness.interfaces[0]
        var peerNext = role.peerISN
        interface.startCapturing()
        harness.announcePeer()
        harness.injectSegment(
            peerPort: role.peerPort, sequence: peerNext, acknowledgment: 0, flags: .syn, rawOptions: [2, 4, 0x05, 0xB4])
        peerNext &+= 1
        guard let synACK = harness.sentSegment(to: role.peerPort, flags: [.syn, .ack]) else {
            printError("DEBUG \(harness.stack.tcpStatistics()) \(harness.stack.tcpStatistics())")
            printError(
                "DEBUG no SYN-ACK; captured \(interface.captured.map { $0.prefix(60).map { String($0, radix: 16) }.joined(separator: " ") })"
            )
            return nil
        }
        var ourNext = synACK.sequenceNumber &+ 1
        harness.injectSegment(peerPort: role.peerPort, sequence: peerNext, acknowledgment: ourNext, flags: .ack)
        guard case .success(let socket) = Result(catching: { () throws(NetError) in try harness.listener.accept() })
        else { return nil }
        socket.isNonBlocking = true
        switch role {
        case .established:
            break
        case .closeWait:
            harness.injectSegment(
                peerPort: role.peerPort, sequence: peerNext, acknowledgment: ourNext, flags: [.fin, .ack])
            peerNext &+= 1
        case .finWait2:
            try? socket.shutdown(.write)
            harness.stack.runUntilIdle()
            ourNext &+= 1
            harness.injectSegment(peerPort: role.peerPort, sequence: peerNext, acknowledgment: ourNext, flags: .ack)
        case .timeWait:
            socket.close()
            harness.stack.runUntilIdle()
            ourNext &+= 1
            harness.injectSegment(
                peerPort: role.peerPort, sequence: peerNext, acknowledgment: ourNext, flags: [.fin, .ack])
            peerNext &+= 1
            return Connection(socket: nil, peerNext: peerNext, ourNext: ourNext, expected: nil)
        }
        return Connection(socket: socket, peerNext: peerNext, ourNext: ourNext, expected: socket.state)
    }
}
