import XCTest

@testable import NetMP
@testable import NetMPSockets

/// No weak reference may point at a live socket: a weak reference gives its object a side
/// table for life, and every retain and release of it then takes the runtime's slow path (the
/// stack's registry, a local socket's *rcvd* notice and a datagram socket's list of senders
/// each held one, a fifth of a local datagram's send and receive).
final class SocketReferenceTests: StackTestCase {
    private func assertNoWeakReferences(_ socket: NetSocket, _ what: String, line: UInt = #line) {
        XCTAssertEqual(
            _getWeakRetainCount(socket.core), 1, "\(what): a weak reference points at the socket", line: line)
    }

    func testLocalSocketsHaveNoWeakReferences() throws {
        let (a, b) = try stack.socketPair(.stream)
        let (c, d) = try stack.socketPair(.datagram)
        defer { [a, b, c, d].forEach { $0.close() } }
        // Data both ways, so that every path that could take a reference has run.
        XCTAssertEqual(try a.write([1, 2, 3]), 3)
        XCTAssertEqual(try b.read(maxBytes: 8), [1, 2, 3])
        XCTAssertEqual(try c.write([4]), 1)
        XCTAssertEqual(try d.read(maxBytes: 8), [4])
        for (socket, what) in [(a, "stream a"), (b, "stream b"), (c, "datagram c"), (d, "datagram d")] {
            assertNoWeakReferences(socket, what)
        }
    }

    func testInetSocketsHaveNoWeakReferences() throws {
        let udp = try stack.socket(.inet, .datagram)
        let tcp = try stack.socket(.inet, .stream)
        defer {
            udp.close()
            tcp.close()
        }
        assertNoWeakReferences(udp, "UDP")
        assertNoWeakReferences(tcp, "TCP")
    }
}
