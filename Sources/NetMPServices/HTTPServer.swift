import Glibc
import NetMP

/// A small HTTP/1.1 server over any stream socket: GET and HEAD of files under a directory (or
/// a built-in page), keep-alive and pipelining, and the errors a client can rely on: 400 bad
/// syntax or a missing Host, 403 a path that leaves the root, 404, 405 other methods, 413 a
/// body over 1 MiB, 431 a head over 16 KiB, 501 a transfer coding, 505 other versions. A
/// connection on which no request (or no whole request head) arrives for `idleTimeout` is
/// closed, so idle keep-alive clients do not hold connections forever.
public struct HTTPServer: Sendable {
    /// The directory served, resolved (no symbolic links); nil serves only the built-in page.
    public let root: String?
    /// How long a connection may wait for its next request's head; nil waits forever.
    public let idleTimeout: Duration?
    public static let maximumHeadSize = 16 << 10
    public static let maximumBodySize = 1 << 20
    public static let builtInPage = Array(
        """
        <!DOCTYPE html>
        <html><head><title>NetMP</title></head>
        <body><h1>NetMP</h1><p>Served by a user-space TCP/IP stack in Swift.</p></body></html>

        """.utf8)

    /// - Parameter idleTimeout: 60 s unless told otherwise (nginx's keep-alive timeout is 75 s).
    /// - Throws: `.invalidArgument` when `root` is not a directory or the timeout is not positive.
    public init(root: String?, idleTimeout: Duration? = .seconds(60)) throws(NetError) {
        if let idleTimeout, idleTimeout <= .zero { throw .invalidArgument }
        self.idleTimeout = idleTimeout
        guard let root else {
            self.root = nil
            return
        }
        guard let resolved = HTTPServer.resolve(root), HTTPServer.isDirectory(resolved) else {
            throw .invalidArgument
        }
        self.root = resolved
    }

    /// What a response carries after its head.
    public enum Body: Sendable, Hashable {
        case bytes([UInt8])
        case file(path: String, size: Int)
    }

    public struct Response: Sendable, Hashable {
        public var status: Int
        public var reason: String
        public var headers: [String]
        public var body: Body
        /// The server closes the connection after it.
        public var closes: Bool

        public var contentLength: Int {
            switch body {
            case .bytes(let bytes): bytes.count
            case .file(_, let size): size
            }
        }

        /// The status line and fields, with Content-Length and Connection.
        public func head(keepAlive: Bool) -> [UInt8] {
            var text = "HTTP/1.1 \(status) \(reason)\r\nServer: netmp\r\nContent-Length: \(contentLength)\r\n"
            for header in headers { text += header + "\r\n" }
            text += keepAlive && !closes ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n"
            return Array(text.utf8)
        }
    }

    public static func error(_ status: Int, closes: Bool = false, headers: [String] = []) -> Response {
        let reason: String
        switch status {
        case 400: reason = "Bad Request"
        case 403: reason = "Forbidden"
        case 404: reason = "Not Found"
        case 405: reason = "Method Not Allowed"
        case 413: reason = "Content Too Large"
        case 431: reason = "Request Header Fields Too Large"
        case 501: reason = "Not Implemented"
        case 505: reason = "HTTP Version Not Supported"
        default: reason = "Error"
        }
        return Response(
            status: status, reason: reason, headers: ["Content-Type: text/plain; charset=utf-8"] + headers,
            body: .bytes(Array("\(status) \(reason)\n".utf8)), closes: closes)
    }

    /// The response to a parsed head (no I/O but looking at the file system).
    public func respond(to head: HTTPRequestHead) -> Response {
        if head.minorVersion >= 1 && head.field("host") == nil { return HTTPServer.error(400, closes: true) }
        guard head.method == "GET" || head.method == "HEAD" else {
            return HTTPServer.error(405, headers: ["Allow: GET, HEAD"])
        }
        let segments: [String]
        switch HTTPServer.pathSegments(of: head.target) {
        case .success(let found): segments = found
        case .failure(let failure): return HTTPServer.error(failure.status)
        }
        guard let root else {
            guard segments.isEmpty || segments == ["index.html"] else { return HTTPServer.error(404) }
            return Response(
                status: 200, reason: "OK", headers: ["Content-Type: text/html; charset=utf-8"],
                body: .bytes(HTTPServer.builtInPage), closes: false)
        }
        var path = root + (segments.isEmpty ? "" : "/" + segments.joined(separator: "/"))
        guard var resolved = HTTPServer.resolve(path) else {
            if segments.isEmpty { return builtIn() }
            return HTTPServer.error(404)
        }
        guard resolved == root || resolved.hasPrefix(root + "/") else { return HTTPServer.error(403) }
        if HTTPServer.isDirectory(resolved) {
            path = resolved + "/index.html"
            guard let index = HTTPServer.resolve(path) else {
                return segments.isEmpty ? builtIn() : HTTPServer.error(404)
            }
            guard index.hasPrefix(root + "/") else { return HTTPServer.error(403) }
            resolved = index
        }
        guard let status = HTTPServer.fileStatus(resolved), status.st_mode & S_IFMT == S_IFREG else {
            return HTTPServer.error(404)
        }
        guard access(resolved, R_OK) == 0 else { return HTTPServer.error(403) }
        return Response(
            status: 200, reason: "OK", headers: ["Content-Type: \(HTTPServer.contentType(of: resolved))"],
            body: .file(path: resolved, size: Int(status.st_size)), closes: false)
    }

    private func builtIn() -> Response {
        Response(
            status: 200, reason: "OK", headers: ["Content-Type: text/html; charset=utf-8"],
            body: .bytes(HTTPServer.builtInPage), closes: false)
    }

    /// Why a target was refused, with its status.
    public enum TargetFailure: Error, Sendable, Hashable {
        case malformed, traversal
        var status: Int { self == .malformed ? 400 : 403 }
    }

    /// The decoded path segments of an origin-form (or absolute-form) target, without "." and
    /// empty ones; ".." anywhere is refused, as are bad escapes, NUL and invalid UTF-8.
    public static func pathSegments(of target: String) -> Result<[String], TargetFailure> {
        var path = Substring(target)
        for scheme in ["http://", "https://"] where path.lowercased().hasPrefix(scheme) {
            path = path.dropFirst(scheme.count)
            guard let slash = path.firstIndex(of: "/") else { return .success([]) }
            path = path[slash...]
        }
        guard path.first == "/" else { return .failure(.malformed) }
        if let end = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { path = path[..<end] }
        var segments: [String] = []
        for piece in path.split(separator: "/", omittingEmptySubsequences: true) {
            guard let decoded = percentDecoded(piece) else { return .failure(.malformed) }
            if decoded == "." { continue }
            if decoded == ".." || decoded.contains("/") { return .failure(.traversal) }
            segments.append(decoded)
        }
        return .success(segments)
    }

    static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        func hex(_ byte: UInt8?) -> UInt8? {
            guard let byte else { return nil }
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = hex(iterator.next()), let low = hex(iterator.next()) else { return nil }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        guard !bytes.contains(0) else { return nil }
        return String(validating: bytes, as: UTF8.self)
    }

    static func resolve(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func isDirectory(_ path: String) -> Bool {
        guard let status = fileStatus(path) else { return false }
        return status.st_mode & S_IFMT == S_IFDIR
    }

    static func fileStatus(_ path: String) -> stat? {
        var buffer = stat()
        return stat(path, &buffer) == 0 ? buffer : nil
    }

    static func contentType(of path: String) -> String {
        let suffix = path.split(separator: ".").last.map { $0.lowercased() } ?? ""
        switch suffix {
        case "html", "htm": return "text/html; charset=utf-8"
        case "txt": return "text/plain; charset=utf-8"
        case "css": return "text/css"
        case "js": return "text/javascript"
        case "json": return "application/json"
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "svg": return "image/svg+xml"
        default: return "application/octet-stream"
        }
    }

    // MARK: Connections

    /// Serves requests on `connection` until the client closes, asks to close, or errs.
    public func handle(_ connection: NetSocket, counters: ServiceCounters) async {
        var buffer: [UInt8] = []
        do {
            while true {
                var headEnd = HTTPRequestHead.end(in: buffer)
                while headEnd == nil {
                    if buffer.count > HTTPServer.maximumHeadSize {
                        try await send(HTTPServer.error(431, closes: true), head: nil, on: connection, counters)
                        return
                    }
                    guard let bytes = try await readHead(from: connection) else {
                        // Idle too long: a graceful close, as servers do (no response).
                        counters.idleClosed.add(1, ordering: .relaxed)
                        try? connection.shutdown(.write)
                        return
                    }
                    if bytes.isEmpty { return }
                    counters.received.add(bytes.count, ordering: .relaxed)
                    buffer += bytes
                    headEnd = HTTPRequestHead.end(in: buffer)
                }
                guard let end = headEnd, end <= HTTPServer.maximumHeadSize + 4 else {
                    try await send(HTTPServer.error(431, closes: true), head: nil, on: connection, counters)
                    return
                }
                let head: HTTPRequestHead
                do {
                    head = try HTTPRequestHead(parsing: buffer[..<end])
                } catch {
                    let status = error == .unsupportedVersion ? 505 : 400
                    try await send(HTTPServer.error(status, closes: true), head: nil, on: connection, counters)
                    return
                }
                buffer.removeFirst(end)
                counters.requests.add(1, ordering: .relaxed)
                if head.field("transfer-encoding") != nil {
                    try await send(HTTPServer.error(501, closes: true), head: head, on: connection, counters)
                    return
                }
                var bodyLength = 0
                if let text = head.field("content-length") {
                    guard !text.isEmpty, text.utf8.count <= 12, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                        let length = Int(text)
                    else {
                        try await send(HTTPServer.error(400, closes: true), head: head, on: connection, counters)
                        return
                    }
                    bodyLength = length
                }
                if bodyLength > HTTPServer.maximumBodySize {
                    try await send(HTTPServer.error(413, closes: true), head: head, on: connection, counters)
                    return
                }
                // A body (unusual on GET) is read and dropped.
                while buffer.count < bodyLength {
                    let bytes = try await connection.read(maxBytes: bodyLength - buffer.count)
                    if bytes.isEmpty { return }
                    counters.received.add(bytes.count, ordering: .relaxed)
                    buffer += bytes
                }
                buffer.removeFirst(bodyLength)
                let response = respond(to: head)
                try await send(response, head: head, on: connection, counters)
                if response.closes || !head.keepsAlive { return }
            }
        } catch {
            counters.failures.add(1, ordering: .relaxed)
        }
    }

    /// Reads what comes of a request head; nil when nothing came within `idleTimeout`. The read
    /// races a timer: whichever ends first cancels the other, and bytes the read took as the
    /// timer fired are still returned (nothing read is dropped).
    private func readHead(from connection: NetSocket) async throws(NetError) -> [UInt8]? {
        guard let idleTimeout else { return try await connection.read(maxBytes: 64 << 10) }
        let outcomes = await withTaskGroup(of: Result<[UInt8], NetError>?.self) { group in
            group.addTask {
                do throws(NetError) {
                    return .success(try await connection.read(maxBytes: 64 << 10))
                } catch {
                    return .failure(error)
                }
            }
            group.addTask {
                try? await Task.sleep(for: idleTimeout)
                return nil
            }
            var outcomes: [Result<[UInt8], NetError>?] = []
            for await outcome in group {
                if outcomes.isEmpty { group.cancelAll() }
                outcomes.append(outcome)
            }
            return outcomes
        }
        for case .some(let outcome) in outcomes {
            switch outcome {
            case .success(let bytes): return bytes
            case .failure(let error) where error != .cancelled: throw error
            case .failure: continue
            }
        }
        return nil
    }

    /// Sends a response (its body only when the request was not HEAD); a closing response
    /// half-closes the connection after it.
    private func send(
        _ response: Response, head: HTTPRequestHead?, on connection: NetSocket, _ counters: ServiceCounters
    )
        async throws(NetError)
    {
        let keepAlive = head?.keepsAlive ?? false
        let withBody = head?.method != "HEAD"
        var out = response.head(keepAlive: keepAlive)
        switch response.body {
        case .bytes(let bytes):
            if withBody { out += bytes }
            try await write(out, on: connection, counters)
        case .file(let path, let size):
            try await write(out, on: connection, counters)
            if withBody { try await sendFile(path, size: size, on: connection, counters) }
        }
        if response.closes || !keepAlive { try? connection.shutdown(.write) }
    }

    private func write(_ bytes: [UInt8], on connection: NetSocket, _ counters: ServiceCounters) async throws(NetError) {
        let sent = try await connection.write(bytes)
        counters.sent.add(sent, ordering: .relaxed)
        if sent < bytes.count { throw .brokenPipe }
    }

    /// Streams a file in 64 KiB pieces; a file that shrank under us ends the connection (the
    /// promised length cannot be kept).
    private func sendFile(_ path: String, size: Int, on connection: NetSocket, _ counters: ServiceCounters)
        async throws(NetError)
    {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .brokenPipe }
        defer { _ = close(descriptor) }
        var remaining = size
        var piece = [UInt8](repeating: 0, count: 64 << 10)
        while remaining > 0 {
            let wanted = Swift.min(piece.count, remaining)
            let count = piece.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, wanted) }
            guard count > 0 else { throw .brokenPipe }
            try await write(Array(piece[..<count]), on: connection, counters)
            remaining -= count
        }
    }
}
