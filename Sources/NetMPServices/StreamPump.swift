import Glibc
import NetMP

/// The two directions of netcat over a stream socket, each a blocking loop on its own thread:
/// a file descriptor (stdin) into the socket, half-closing it at end of input, and the socket
/// into a file descriptor (stdout) until the peer's end of stream.
public enum StreamPump {
    /// What one direction moved, and how it ended.
    public struct Outcome: Sendable, Hashable {
        public var bytes: Int
        /// nil: a clean end of input (end of file, or the peer's end of stream).
        public var error: NetError?

        public init(bytes: Int, error: NetError?) {
            self.bytes = bytes
            self.error = error
        }
    }

    /// Copies `descriptor` into `socket` until end of file, then `shutdown(.write)`.
    public static func copy(from descriptor: Int32, to socket: NetSocket, progress: ((Int) -> Void)? = nil) -> Outcome {
        var piece = [UInt8](repeating: 0, count: 64 << 10)
        var total = 0
        while true {
            let count = piece.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return Outcome(bytes: total, error: NetError(rawValue: errno))
            }
            if count == 0 { break }
            do throws(NetError) {
                let sent = try piece.withUnsafeBytes { raw in
                    Result { () throws(NetError) in try socket.write(UnsafeRawBufferPointer(rebasing: raw[..<count])) }
                }.get()
                total += sent
                progress?(total)
                if sent < count { return Outcome(bytes: total, error: .brokenPipe) }
            } catch {
                return Outcome(bytes: total, error: error)
            }
        }
        do {
            try socket.shutdown(.write)
        } catch {
            return Outcome(bytes: total, error: error)
        }
        return Outcome(bytes: total, error: nil)
    }

    /// Copies `socket` into `descriptor` until the peer ends its stream.
    public static func copy(from socket: NetSocket, to descriptor: Int32, progress: ((Int) -> Void)? = nil) -> Outcome {
        var piece = [UInt8](repeating: 0, count: 64 << 10)
        var total = 0
        while true {
            let count: Int
            do throws(NetError) {
                count = try piece.withUnsafeMutableBytes { raw in
                    Result { () throws(NetError) in try socket.read(into: raw) }
                }.get()
            } catch {
                return Outcome(bytes: total, error: error)
            }
            if count == 0 { return Outcome(bytes: total, error: nil) }
            var offset = 0
            while offset < count {
                let written = piece.withUnsafeBytes {
                    write(descriptor, $0.baseAddress.map { $0 + offset }, count - offset)
                }
                if written < 0 {
                    if errno == EINTR { continue }
                    return Outcome(bytes: total, error: NetError(rawValue: errno))
                }
                offset += written
            }
            total += count
            progress?(total)
        }
    }
}
