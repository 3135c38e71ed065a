/// The head of an HTTP/1.x request (RFC 9112), parsed from bytes; pure and total.
public struct HTTPRequestHead: Sendable, Hashable {
    public var method: String
    /// The request target as sent ("/a/b?q").
    public var target: String
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion: Int
    /// Header fields in order, names lower-cased, values trimmed.
    public var fields: [(name: String, value: String)]

    public static func == (lhs: HTTPRequestHead, rhs: HTTPRequestHead) -> Bool {
        lhs.method == rhs.method && lhs.target == rhs.target && lhs.minorVersion == rhs.minorVersion
            && lhs.fields.map(\.name) == rhs.fields.map(\.name) && lhs.fields.map(\.value) == rhs.fields.map(\.value)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(method)
        hasher.combine(target)
    }

    /// The first value of a field (name in lower case).
    public func field(_ name: String) -> String? { fields.first { $0.name == name }?.value }

    /// Whether the connection stays open after the response (RFC 9112 9.3).
    public var keepsAlive: Bool {
        let tokens = (field("connection") ?? "").lowercased().split(separator: ",").map {
            $0.trimmingWhitespace()
        }
        if tokens.contains("close") { return false }
        return minorVersion >= 1 || tokens.contains("keep-alive")
    }

    /// Why a head could not be parsed.
    public enum Failure: Error, Sendable, Hashable {
        /// Not HTTP/1.x syntax: answered with 400.
        case malformed
        /// An HTTP version other than 1.0/1.1: 505.
        case unsupportedVersion
    }

    /// Where a head ends in `bytes` (the index after CR LF CR LF), or nil if not yet received.
    public static func end(in bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        var index = 3
        while index < bytes.count {
            if bytes[index] == 10 && bytes[index - 1] == 13 && bytes[index - 2] == 10 && bytes[index - 3] == 13 {
                return index + 1
            }
            index += 1
        }
        return nil
    }

    /// Parses a complete head (request line and fields, ending with an empty line).
    public init(parsing bytes: ArraySlice<UInt8>) throws(Failure) {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .malformed }
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)
        // A head ends with CR LF CR LF: two empty pieces after the split.
        while let last = lines.last, last.isEmpty { lines.removeLast() }
        guard let requestLine = lines.first else { throw .malformed }
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty,
            parts[0].utf8.allSatisfy(HTTPRequestHead.isTokenCharacter)
        else { throw .malformed }
        let version = parts[2]
        guard version.hasPrefix("HTTP/"), version.utf8.count == 8 else { throw .malformed }
        switch version {
        case "HTTP/1.1": minorVersion = 1
        case "HTTP/1.0": minorVersion = 0
        default: throw .unsupportedVersion
        }
        method = String(parts[0])
        target = String(parts[1])
        guard target.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else { throw .malformed }
        fields = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { throw .malformed }
            let name = line[..<colon]
            // No whitespace before the colon (RFC 9112 5.1), and a token for a name.
            guard !name.isEmpty, name.utf8.allSatisfy(HTTPRequestHead.isTokenCharacter) else { throw .malformed }
            let value = line[line.index(after: colon)...].trimmingWhitespace()
            guard value.utf8.allSatisfy({ $0 == 9 || ($0 >= 32 && $0 != 127) }) else { throw .malformed }
            fields.append((name.lowercased(), value))
        }
    }

    static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}

extension Substring {
    func trimmingWhitespace() -> String {
        var slice = self[...]
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}
