import NetMPInet
import NetMPInterfaces
import NetMPLocal
import NetMPRuntime
import NetMPSockets
import NetMPWire

/// A socket option (setsockopt(2)/getsockopt(2) at SOL_SOCKET).
public struct SocketOption: Hashable, Sendable, CustomStringConvertible {
    let code: Int
    public let description: String

    private init(_ code: Int, _ name: String) {
        self.code = code
        self.description = name
    }

    /// SO_RCVBUF: receive buffer size in bytes (1 ... 64 MiB).
    public static let receiveBufferSize = SocketOption(1, "receiveBufferSize")
    /// SO_SNDBUF: send buffer size in bytes (1 ... 64 MiB).
    public static let sendBufferSize = SocketOption(2, "sendBufferSize")
    /// SO_RCVLOWAT: bytes a read waits for (default 1).
    public static let receiveLowWater = SocketOption(3, "receiveLowWater")
    /// SO_SNDLOWAT: room a blocked write waits for (0: automatic, a quarter of the buffer).
    public static let sendLowWater = SocketOption(4, "sendLowWater")
    /// SO_RCVTIMEO in nanoseconds; 0 waits forever. A read that times out throws `.wouldBlock`.
    public static let receiveTimeout = SocketOption(5, "receiveTimeout")
    /// SO_SNDTIMEO in nanoseconds; 0 waits forever.
    public static let sendTimeout = SocketOption(6, "sendTimeout")
    /// SO_ERROR (read only): the pending error's errno, cleared by reading it.
    public static let error = SocketOption(7, "error")
    /// SO_ACCEPTCONN (read only): 1 when listening.
    public static let acceptsConnections = SocketOption(8, "acceptsConnections")
    /// FIONREAD (read only): bytes waiting to be read (on a datagram socket: the next
    /// datagram's length).
    public static let bytesToRead = SocketOption(9, "bytesToRead")
}

extension NetSocket {
    /// setsockopt(2). Values out of range throw `.invalidArgument`; read-only options
    /// `.badOption`.
    public func setOption(_ option: SocketOption, _ value: Int) throws(NetError) {
        try core.checkOpen()
        switch option {
        case .receiveBufferSize, .sendBufferSize:
            guard value > 0, value <= SocketBuffer.maximumSize else { throw .invalidArgument }
            let buffer = option == .receiveBufferSize ? core.receiveBuffer : core.sendBuffer
            buffer.highWater.store(value, ordering: .sequentiallyConsistent)
            // A size the user chose is not auto-tuned.
            buffer.sizeSetByUser.store(true, ordering: .relaxed)
            // Writers waiting for room may fit now.
            buffer.wake()
        case .receiveLowWater, .sendLowWater:
            guard value >= 0, value <= SocketBuffer.maximumSize else { throw .invalidArgument }
            let buffer = option == .receiveLowWater ? core.receiveBuffer : core.sendBuffer
            buffer.lowWaterSetting.store(value, ordering: .sequentiallyConsistent)
            buffer.wake()
        case .receiveTimeout, .sendTimeout:
            guard value >= 0 else { throw .invalidArgument }
            let buffer = option == .receiveTimeout ? core.receiveBuffer : core.sendBuffer
            buffer.timeout.store(Int64(value), ordering: .relaxed)
        default:
            throw .badOption
        }
    }

    /// getsockopt(2).
    public func option(_ option: SocketOption) throws(NetError) -> Int {
        try core.checkOpen()
        switch option {
        case .receiveBufferSize: return core.receiveBuffer.highWater.load(ordering: .relaxed)
        case .sendBufferSize: return core.sendBuffer.highWater.load(ordering: .relaxed)
        case .receiveLowWater: return core.receiveBuffer.receiveLowWater
        case .sendLowWater: return core.sendBuffer.lowWaterSetting.load(ordering: .relaxed)
        case .receiveTimeout: return Int(core.receiveBuffer.timeout.load(ordering: .relaxed))
        case .sendTimeout: return Int(core.sendBuffer.timeout.load(ordering: .relaxed))
        case .error: return Int(core.takeError()?.rawValue ?? 0)
        case .acceptsConnections: return core.state.contains(.listening) ? 1 : 0
        case .bytesToRead:
            let buffer = core.receiveBuffer
            // As FIONREAD: bytes queued on a stream, the next datagram's length on a datagram socket.
            guard core.type == .datagram else { return buffer.byteCount.load(ordering: .sequentiallyConsistent) }
            return buffer.lock.withLock { buffer.records.first?.data.count ?? 0 }
        default: throw .badOption
        }
    }

    /// SO_RCVTIMEO as a duration; nil waits forever.
    public var receiveTimeout: Duration? {
        get { timeoutValue(core.receiveBuffer) }
        set { core.receiveBuffer.timeout.store(Self.nanoseconds(newValue), ordering: .relaxed) }
    }

    /// SO_SNDTIMEO as a duration; nil waits forever.
    public var sendTimeout: Duration? {
        get { timeoutValue(core.sendBuffer) }
        set { core.sendBuffer.timeout.store(Self.nanoseconds(newValue), ordering: .relaxed) }
    }

    private func timeoutValue(_ buffer: SocketBuffer) -> Duration? {
        let value = buffer.timeout.load(ordering: .relaxed)
        return value > 0 ? .nanoseconds(value) : nil
    }

    private static func nanoseconds(_ duration: Duration?) -> Int64 {
        guard let duration else { return 0 }
        return Swift.max(1, duration.nanoseconds)
    }
}
