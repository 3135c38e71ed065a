import MetricsTestKit
import NetMP
import XCTest

@testable import NetMPMetrics

/// The reporter hands the stack's counters to a metrics backend: counters grow by what changed
/// since the last report, gauges carry the current value.
final class StackMetricsReporterTests: XCTestCase {
    func testTCPAndIPCountersReachTheBackend() throws {
        let stack = NetworkStack(.init(threadCount: 2))
        defer { stack.shutdown() }
        let backend = TestMetrics()
        let reporter = StackMetricsReporter(stack: stack, dimensions: [("stack", "test")], factory: backend)
        let listener = try stack.socket(.inet, .stream)
        try listener.bind(to: .ipv4(.loopback, port: 0))
        try listener.listen()
        let client = try stack.socket(.inet, .stream)
        try client.connect(to: listener.localAddress)
        let server = try listener.accept()
        XCTAssertEqual(try client.write([1, 2, 3]), 3)
        XCTAssertEqual(try server.read(maxBytes: 3, flags: .waitAll), [1, 2, 3])
        reporter.report()
        let stats = stack.tcpStatistics()
        let sent = try backend.expectCounter("netmp_tcp_segments_sent", [("stack", "test")])
        XCTAssertEqual(sent.totalValue, Int64(stats.segmentsSent))
        XCTAssertGreaterThanOrEqual(stats.segmentsSent, 4, "SYN, SYN-ACK, ACK, data at least")
        let live = try backend.expectGauge("netmp_tcp_live_connections", [("stack", "test")])
        XCTAssertEqual(live.lastValue, Double(stats.liveConnections))
        XCTAssertEqual(stats.liveConnections, 2)
        // The next report adds only what changed since.
        XCTAssertEqual(try server.write([4]), 1)
        XCTAssertEqual(try client.read(maxBytes: 1), [4])
        reporter.report()
        XCTAssertEqual(sent.totalValue, Int64(stack.tcpStatistics().segmentsSent))
        // IPv4 counters come along (every datagram of the exchange went through IP input).
        let ipIn = try backend.expectCounter("netmp_ip_ip_in", [("stack", "test")])
        XCTAssertEqual(ipIn.totalValue, Int64(stack.inetStatistics()[.ipIn]))
        client.close()
        server.close()
        listener.close()
    }

    func testThePeriodicReporterReportsUntilStopped() throws {
        let stack = NetworkStack(.init(threadCount: 1))
        defer { stack.shutdown() }
        let backend = TestMetrics()
        let reporter = StackMetricsReporter(stack: stack, factory: backend)
        reporter.start(every: .milliseconds(10))
        let socket = try stack.socket(.inet, .datagram)
        try socket.bind(to: .ipv4(.loopback, port: 0))
        XCTAssertEqual(try socket.send([1, 2], to: socket.localAddress), 2)
        XCTAssertEqual(try socket.receive(maxBytes: 2).bytes, [1, 2])
        // stop() ends the thread after a last report: what happened before it is in the backend.
        reporter.stop()
        let sockets = try backend.expectGauge("netmp_sockets_live")
        XCTAssertEqual(sockets.lastValue, 1)
        XCTAssertEqual(try backend.expectCounter("netmp_ip_udp_delivered").totalValue, 1)
    }

    func testNamesAreSnakeCase() {
        XCTAssertEqual(StackMetricsReporter.snakeCase("retransmittedSegments"), "retransmitted_segments")
        XCTAssertEqual(StackMetricsReporter.snakeCase("ipIn"), "ip_in")
    }
}
