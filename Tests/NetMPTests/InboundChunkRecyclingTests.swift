import XCTest

@testable import NetMP
@testable import NetMPRuntime

/// Inbound frames whose chunk input keeps nothing of (a SYN, an ACK, a FIN) give the chunk back
/// to the pool, so the next segment sent reuses it instead of allocating.
final class InboundChunkRecyclingTests: XCTestCase {
    func testControlSegmentChunksGoBackToThePool() throws {
        // The driven mode runs the whole stack on this thread: every chunk taken and given back
        // goes through this thread's cache, emptied here first.
        let clock = ManualClock(startingAt: 1)
        let stack = NetworkStack(.init(threadCount: 1, clock: clock, mode: .driven))
        defer { stack.shutdown() }
        stack.tcpConfiguration.maximumSegmentLifetime = 1_000_000
        let listener = try stack.socket(.inet, .stream)
        try listener.bind(to: .ipv4(IPv4Address(127, 0, 0, 1), port: 7000))
        try listener.listen(backlog: 4)
        listener.isNonBlocking = true
        ChunkPool.shared.drain()
        XCTAssertEqual(ChunkPool.shared.cachedCount, 0)
        for round in 0..<5 {
            let client = try startConnect(stack, to: 7000)
            stack.runUntilIdle()
            let server = try listener.accept()
            // Handshake and teardown carry no data: every chunk is a header only.
            client.close()
            server.close()
            stack.runUntilIdle()
            clock.advance(by: 3_000_000)
            stack.runUntilIdle()
            // Every segment's chunk came back: two serve the whole exchange (a segment, and the
            // answer sent while it is handled), the same two every round. Without the recycling
            // each segment's chunk was freed and none was ever cached here.
            XCTAssertEqual(ChunkPool.shared.cachedCount, 2, "round \(round)")
        }
        listener.close()
    }

    /// A non-blocking client whose connect to 127.0.0.1:`port` has started.
    private func startConnect(_ stack: NetworkStack, to port: UInt16) throws(NetError) -> NetSocket {
        let client = try stack.socket(.inet, .stream)
        client.isNonBlocking = true
        do {
            try client.connect(to: .ipv4(IPv4Address(127, 0, 0, 1), port: port))
        } catch .inProgress {}
        return client
    }
}
