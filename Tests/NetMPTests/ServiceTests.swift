import Foundation
import NetMPServices
import XCTest

@testable import NetMP

/// The services `netmp serve` runs, over local stream sockets: the same `NetSocket` stream
/// API they use over TCP.
final class ServiceTests: XCTestCase {
    private var stack: NetworkStack!

    override func setUp() {
        stack = NetworkStack(NetworkStack.Configuration(threadCount: 2))
    }

    override func tearDown() {
        stack.shutdown()
        stack = nil
    }

    /// Starts a server on a local name; stopped (and awaited) at teardown.
    private func serve(
        _ name: String, _ handler: @escaping @Sendable (NetSocket, ServiceCounters) async -> Void
    ) throws -> StreamServer {
        let listener = try stack.socket(.local, .stream)
        try listener.bind(to: .local(name))
        try listener.listen()
        let server = StreamServer(listener: listener, name: name, handler: handler)
        let done = expectation(description: "server \(name) ended")
        Task {
            await server.run()
            done.fulfill()
        }
        addTeardownBlock {
            server.stop()
            XCTAssertEqual(XCTWaiter().wait(for: [done], timeout: 10), .completed, "server \(name) did not end")
        }
        return server
    }

    private func connect(_ name: String) throws -> NetSocket {
        let client = try stack.socket(.local, .stream)
        try client.connect(to: .local(name))
        client.receiveTimeout = .seconds(10)
        client.sendTimeout = .seconds(10)
        return client
    }

    private func readToEnd(_ socket: NetSocket) throws(NetError) -> [UInt8] {
        var all: [UInt8] = []
        while true {
            let bytes = try socket.read(maxBytes: 1 << 20)
            if bytes.isEmpty { return all }
            all += bytes
        }
    }

    private func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
    }

    func testEchoReturnsEveryByteThenHalfCloses() throws {
        let server = try serve("/echo", EchoService.handle)
        let client = try connect("/echo")
        let data = pattern(3 << 20, seed: 1)
        // The writer runs beside the reader so neither side's buffer fills for good.
        let writer = OSThread.start(name: "writer") {
            _ = try? client.write(data)
            try? client.shutdown(.write)
        }
        let echoed = try readToEnd(client)
        writer.join()
        XCTAssertEqual(echoed.count, data.count)
        XCTAssertEqual(Fingerprint(echoed), Fingerprint(data))
        let counters = server.counters.snapshot
        XCTAssertEqual(counters.bytesReceived, data.count)
        XCTAssertEqual(counters.bytesSent, data.count)
        XCTAssertEqual(counters.failures, 0)
    }

    func testDiscardTakesEverythingAndClosesAtEndOfInput() throws {
        let server = try serve("/discard", DiscardService.handle)
        let client = try connect("/discard")
        XCTAssertEqual(try client.write(pattern(200_000, seed: 2)), 200_000)
        try client.shutdown(.write)
        XCTAssertEqual(try readToEnd(client), [], "discard sends nothing and closes")
        XCTAssertEqual(server.counters.snapshot.bytesReceived, 200_000)
    }

    func testStoppingTheServerClosesOpenConnections() throws {
        let server = try serve("/held", EchoService.handle)
        let client = try connect("/held")
        XCTAssertEqual(try client.write([1, 2, 3]), 3)
        XCTAssertEqual(try client.read(maxBytes: 3), [1, 2, 3])
        server.stop()
        // The server's side is closed: end of file, or a reset, never a hang.
        do throws(NetError) {
            let rest = try readToEnd(client)
            XCTAssertEqual(rest, [])
        } catch {
            XCTAssertEqual(error, .connectionReset)
        }
    }

    // MARK: HTTP

    private struct Reply {
        var status: Int
        var headers: [String: String]
        var body: [UInt8]
    }

    /// Reads one response (by Content-Length; `bodyless` for HEAD) from `socket`.
    private func readReply(_ socket: NetSocket, pending: inout [UInt8], bodyless: Bool = false) throws -> Reply? {
        while HTTPRequestHead.end(in: pending) == nil {
            let bytes = try socket.read(maxBytes: 65536)
            if bytes.isEmpty { return nil }
            pending += bytes
        }
        guard let end = HTTPRequestHead.end(in: pending),
            let text = String(validating: pending[..<end], as: UTF8.self)
        else { return nil }
        pending.removeFirst(end)
        let lines = text.split(separator: "\r\n")
        guard let statusLine = lines.first, statusLine.hasPrefix("HTTP/1.1 "),
            let status = Int(statusLine.dropFirst(9).prefix(3))
        else { return nil }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces)
        }
        let length = bodyless ? 0 : Int(headers["content-length"] ?? "0") ?? 0
        while pending.count < length {
            let bytes = try socket.read(maxBytes: 65536)
            if bytes.isEmpty { return nil }
            pending += bytes
        }
        let body = Array(pending[..<length])
        pending.removeFirst(length)
        return Reply(status: status, headers: headers, body: body)
    }

    /// Sends `raw` on a new connection and reads the reply; then checks the connection: closed
    /// by the server (end of file) when `closes`, else still serving (a second request works).
    private func request(_ name: String, _ raw: String, closes: Bool) throws -> Reply? {
        let client = try connect(name)
        defer { client.close() }
        XCTAssertEqual(try client.write(Array(raw.utf8)), raw.utf8.count)
        var pending: [UInt8] = []
        let reply = try readReply(client, pending: &pending)
        if closes {
            XCTAssertEqual(try client.read(maxBytes: 1), [], "closed after \(reply?.status ?? 0)")
        } else {
            let again = "GET / HTTP/1.1\r\nHost: t\r\n\r\n"
            XCTAssertEqual(try client.write(Array(again.utf8)), again.utf8.count)
            XCTAssertEqual(
                try readReply(client, pending: &pending)?.status, 200, "kept alive after \(reply?.status ?? 0)")
        }
        return reply
    }

    /// A directory with two files and a symbolic link that leaves it.
    private func makeRoot() throws -> String {
        let root = NSTemporaryDirectory() + "netmp-http-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/sub", withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: root) }
        try Data("hello, world\n".utf8).write(to: URL(fileURLWithPath: root + "/hello.txt"))
        try Data(pattern(300_000, seed: 3)).write(to: URL(fileURLWithPath: root + "/sub/big.bin"))
        try FileManager.default.createSymbolicLink(atPath: root + "/escape", withDestinationPath: "/etc")
        return root
    }

    func testHTTPServesFilesWithKeepAliveAndPipelining() throws {
        let root = try makeRoot()
        let http = try HTTPServer(root: root)
        let server = try serve("/http", http.handle)
        let client = try connect("/http")
        // Three requests at once: answered in order on one connection.
        let requests =
            "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n" + "HEAD /sub/big.bin HTTP/1.1\r\nHost: t\r\n\r\n"
            + "GET /sub/big.bin?x=1 HTTP/1.1\r\nHost: t\r\n\r\n"
        XCTAssertEqual(try client.write(Array(requests.utf8)), requests.utf8.count)
        var pending: [UInt8] = []
        let first = try XCTUnwrap(try readReply(client, pending: &pending))
        XCTAssertEqual(first.status, 200)
        XCTAssertEqual(first.body, Array("hello, world\n".utf8))
        XCTAssertEqual(first.headers["content-type"], "text/plain; charset=utf-8")
        XCTAssertEqual(first.headers["connection"], "keep-alive")
        let head = try XCTUnwrap(try readReply(client, pending: &pending, bodyless: true))
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.headers["content-length"], "300000")
        XCTAssertEqual(head.body, [])
        let big = try XCTUnwrap(try readReply(client, pending: &pending))
        XCTAssertEqual(big.status, 200)
        XCTAssertEqual(Fingerprint(big.body), Fingerprint(pattern(300_000, seed: 3)))
        XCTAssertEqual(pending, [], "HEAD sent no body")
        // Connection: close is honoured.
        let last = "GET /hello.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        XCTAssertEqual(try client.write(Array(last.utf8)), last.utf8.count)
        let closing = try XCTUnwrap(try readReply(client, pending: &pending))
        XCTAssertEqual(closing.headers["connection"], "close")
        XCTAssertEqual(try client.read(maxBytes: 1), [], "closed after Connection: close")
        XCTAssertEqual(server.counters.snapshot.requests, 4)
    }

    func testHTTPErrors() throws {
        let root = try makeRoot()
        let server = try serve("/errors", try HTTPServer(root: root).handle)
        _ = server
        let cases: [(String, Int, Bool)] = [
            ("GET /absent HTTP/1.1\r\nHost: t\r\n\r\n", 404, false),
            ("POST /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", 405, false),
            ("GET /hello.txt HTTP/1.1\r\n\r\n", 400, true),
            ("GET /hello.txt HTTP/2.0\r\nHost: t\r\n\r\n", 505, true),
            ("GET hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", 400, false),
            ("GET /a HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n", 400, true),
            ("GET /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n", 413, true),
            ("GET /hello.txt HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n", 501, true),
            ("GET /../etc/passwd HTTP/1.1\r\nHost: t\r\n\r\n", 403, false),
            ("GET /%2e%2e/etc/passwd HTTP/1.1\r\nHost: t\r\n\r\n", 403, false),
            ("GET /sub/..%2f..%2fetc/passwd HTTP/1.1\r\nHost: t\r\n\r\n", 403, false),
            ("GET /escape/passwd HTTP/1.1\r\nHost: t\r\n\r\n", 403, false),
            ("GET /%zz HTTP/1.1\r\nHost: t\r\n\r\n", 400, false),
            ("GET /a%00b HTTP/1.1\r\nHost: t\r\n\r\n", 400, false),
            ("GET /" + String(repeating: "a", count: 20000) + " HTTP/1.1\r\nHost: t\r\n\r\n", 431, true),
        ]
        for (raw, status, closes) in cases {
            let reply = try request("/errors", raw, closes: closes)
            XCTAssertEqual(reply?.status, status, raw.prefix(60).description)
            XCTAssertEqual(reply?.headers["connection"], closes ? "close" : "keep-alive", raw.prefix(60).description)
            if status == 405 { XCTAssertEqual(reply?.headers["allow"], "GET, HEAD") }
        }
    }

    func testHTTPClosesAConnectionThatStaysIdle() throws {
        let server = try serve("/idle", try HTTPServer(root: nil, idleTimeout: .milliseconds(200)).handle)
        let client = try connect("/idle")
        defer { client.close() }
        // A request answered, then nothing: the server closes the connection after its timeout.
        let raw = "GET / HTTP/1.1\r\nHost: t\r\n\r\n"
        // The server's idle time starts after its reply, so after this instant.
        let start = MonotonicTime.now
        XCTAssertEqual(try client.write(Array(raw.utf8)), raw.utf8.count)
        var pending: [UInt8] = []
        XCTAssertEqual(try readReply(client, pending: &pending)?.status, 200)
        XCTAssertEqual(try client.read(maxBytes: 1), [], "end of file: the server closed the idle connection")
        XCTAssertGreaterThanOrEqual(MonotonicTime.now - start, 200_000_000, "closed before the idle timeout")
        XCTAssertEqual(server.counters.snapshot.idleClosed, 1)
        XCTAssertEqual(server.counters.snapshot.requests, 1)
        // Half a request head does not keep a connection open either.
        let slow = try connect("/idle")
        defer { slow.close() }
        XCTAssertEqual(try slow.write(Array("GET / HTTP/1.1\r\n".utf8)), 16)
        XCTAssertEqual(try slow.read(maxBytes: 1), [])
        XCTAssertEqual(server.counters.snapshot.idleClosed, 2)
        XCTAssertThrowsError(try HTTPServer(root: nil, idleTimeout: .zero))
    }

    func testHTTPWithoutARootServesTheBuiltInPageAndHTTP10Closes() throws {
        _ = try serve("/page", try HTTPServer(root: nil).handle)
        let reply = try request("/page", "GET / HTTP/1.0\r\n\r\n", closes: true)
        XCTAssertEqual(reply?.status, 200)
        XCTAssertEqual(reply?.body, HTTPServer.builtInPage)
        XCTAssertEqual(reply?.headers["connection"], "close")
        XCTAssertEqual(try request("/page", "GET /other HTTP/1.1\r\nHost: t\r\n\r\n", closes: false)?.status, 404)
        XCTAssertThrowsError(try HTTPServer(root: "/netmp/no/such/dir"))
    }

    func testRequestHeadParsing() throws {
        let head = try HTTPRequestHead(
            parsing: Array("GET /x HTTP/1.1\r\nHost:  a \r\nConnection: Keep-Alive, close\r\n\r\n".utf8)[...])
        XCTAssertEqual(head.method, "GET")
        XCTAssertEqual(head.target, "/x")
        XCTAssertEqual(head.field("host"), "a")
        XCTAssertFalse(head.keepsAlive)
        let old = try HTTPRequestHead(parsing: Array("HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".utf8)[...])
        XCTAssertTrue(old.keepsAlive)
        for bad in [
            "GET /\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n", "G(T / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nx\r\n\r\n",
        ] {
            XCTAssertThrowsError(try HTTPRequestHead(parsing: Array(bad.utf8)[...]), bad)
        }
        XCTAssertThrowsError(try HTTPRequestHead(parsing: Array("GET / HTTP/1.2\r\n\r\n".utf8)[...])) { error in
            XCTAssertEqual(error as? HTTPRequestHead.Failure, .unsupportedVersion)
        }
        XCTAssertEqual(try HTTPServer.pathSegments(of: "http://host/a/./b/?q#f").get(), ["a", "b"])
        XCTAssertEqual(HTTPServer.pathSegments(of: "/a/%2E%2E/b"), .failure(.traversal))
    }

    // MARK: netcat pumps

    func testPumpsCopyBothWaysAndHalfCloseAtEndOfInput() throws {
        let (a, b) = try stack.socketPair(.stream)
        var input: [Int32] = [-1, -1]
        var output: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&input), 0)
        XCTAssertEqual(pipe(&output), 0)
        let (inputRead, inputWrite, outputRead, outputWrite) = (input[0], input[1], output[0], output[1])
        defer { for descriptor in [inputRead, outputRead] { close(descriptor) } }
        let data = pattern(500_000, seed: 4)
        let feeder = OSThread.start(name: "feeder") {
            data.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let count = write(inputWrite, raw.baseAddress! + offset, raw.count - offset)
                    if count <= 0 { break }
                    offset += count
                }
            }
            close(inputWrite)
        }
        let forward = OSThread.start(name: "forward") {
            let outcome = StreamPump.copy(from: inputRead, to: a)
            precondition(outcome == StreamPump.Outcome(bytes: 500_000, error: nil), "\(outcome)")
        }
        // b echoes what it gets back through the pump into the output pipe.
        b.receiveTimeout = .seconds(10)
        let received = try readToEnd(b)
        feeder.join()
        forward.join()
        XCTAssertEqual(Fingerprint(received), Fingerprint(data))
        XCTAssertEqual(try b.write(received), received.count)
        try b.shutdown(.write)
        let collector = OSThread.start(name: "collector") {
            let outcome = StreamPump.copy(from: a, to: outputWrite)
            precondition(outcome == StreamPump.Outcome(bytes: 500_000, error: nil), "\(outcome)")
            close(outputWrite)
        }
        var collected: [UInt8] = []
        var piece = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = piece.withUnsafeMutableBytes { read(outputRead, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            collected += piece[..<count]
        }
        collector.join()
        XCTAssertEqual(Fingerprint(collected), Fingerprint(data))
    }
}

/// A 64-bit FNV-1a digest and a length: what byte-exact checks compare.
struct Fingerprint: Equatable, CustomStringConvertible {
    let count: Int
    let hash: UInt64

    init(_ bytes: [UInt8]) {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        self.count = bytes.count
        self.hash = hash
    }

    var description: String { "\(count) bytes, fnv1a \(String(hash, radix: 16))" }
}
