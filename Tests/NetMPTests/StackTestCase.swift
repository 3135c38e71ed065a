import Glibc
import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// A test case with a fresh stack per test that checks, at the end, that every socket and
/// buffer the test made was freed.
class StackTestCase: XCTestCase {
    var stack: NetworkStack!

    /// Protocol threads for the stack.
    var threadCount: Int { 2 }

    /// Whether local sockets are owned by protocol threads (requests and waits by message)
    /// rather than run inline: set NETMP_LOCAL_ON_PROTOCOL_THREADS=1 (the test script runs the
    /// socket suites both ways).
    var localSocketsOnProtocolThreads: Bool { getenv("NETMP_LOCAL_ON_PROTOCOL_THREADS") != nil }

    /// Scales loop counts down under ThreadSanitizer (set NETMP_STRESS_SCALE in CI).
    var scale: Double {
        guard let text = getenv("NETMP_STRESS_SCALE"), let value = Double(String(cString: text)) else { return 1 }
        return value
    }

    func scaled(_ count: Int) -> Int { Swift.max(1, Int(Double(count) * scale)) }

    override func setUp() {
        super.setUp()
        stack = NetworkStack(
            .init(threadCount: threadCount, localSocketsOnProtocolThreads: localSocketsOnProtocolThreads))
    }

    override func tearDown() {
        if let stack = self.stack {
            self.stack = nil
            // A closed TCP socket is freed when its connection has finished closing (FIN, ACK),
            // which may take more than one pass of the threads: wait for that, bounded.
            Self.waitUntilConnectionsEnd(stack)
            stack.quiesce()
            XCTAssertEqual(stack.liveSocketCount, 0, "sockets leaked")
            XCTAssertEqual(stack.liveBufferCount, 0, "buffers leaked")
            stack.shutdown()
        }
        super.tearDown()
    }

    /// Waits (by message round trips, not sleeps) until every TCP connection of `stack` has
    /// finished closing, so its sockets are freed once their handles are dropped; fails after
    /// 20 s (a connection that never ends).
    static func waitUntilConnectionsEnd(
        _ stack: NetworkStack, file: StaticString = #filePath, line: UInt = #line
    ) {
        let deadline = MonotonicTime.deadline(after: 20_000_000_000)
        while stack.tcpStatistics().liveConnections > 0 {
            if MonotonicTime.now > deadline {
                XCTFail("connections left: \(stack.tcpStatistics().liveConnections)", file: file, line: line)
                return
            }
            stack.quiesce()
        }
    }

    /// A connected pair through bind/listen/connect/accept at `name`.
    func connectedPair(_ name: String = "/test/server") throws -> (client: NetSocket, server: NetSocket) {
        let listener = try stack.socket(.local, .stream)
        try listener.bind(to: .local(name))
        try listener.listen()
        let client = try stack.socket(.local, .stream)
        try client.connect(to: .local(name))
        let server = try listener.accept()
        listener.close()
        return (client, server)
    }
}
