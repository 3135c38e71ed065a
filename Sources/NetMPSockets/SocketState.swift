import NetMPRuntime

/// A socket's state bits (DragonFly's `so_state`), kept as one atomic word.
///
/// The protocol side sets most bits; the user side may set `cantReceiveMore`, `cantSendMore`
/// and `noFileReference` atomically and then tell the owner thread with a *checkstate* message.
public struct SocketState: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let connected = SocketState(rawValue: 1 << 0)
    public static let connecting = SocketState(rawValue: 1 << 1)
    public static let disconnecting = SocketState(rawValue: 1 << 2)
    /// Was connected and is no longer (so writes fail with brokenPipe, not notConnected).
    public static let disconnected = SocketState(rawValue: 1 << 3)
    public static let cantSendMore = SocketState(rawValue: 1 << 4)
    public static let cantReceiveMore = SocketState(rawValue: 1 << 5)
    /// The user closed the socket: no file reference is left.
    public static let noFileReference = SocketState(rawValue: 1 << 6)
    /// A child on its listen socket's incomplete queue (SS_INCOMP).
    public static let inIncompleteQueue = SocketState(rawValue: 1 << 7)
    /// A child on its listen socket's complete queue (SS_COMP).
    public static let inCompleteQueue = SocketState(rawValue: 1 << 8)
    public static let listening = SocketState(rawValue: 1 << 9)
    public static let bound = SocketState(rawValue: 1 << 10)

    /// True when any of `members` is set.
    @inline(__always) public func containsAny(_ members: SocketState) -> Bool { !isDisjoint(with: members) }
}

/// How a socket is shut down (shutdown(2)'s `how`).
public enum ShutdownHow: Sendable {
    case read, write, both
}

/// The kind of socket (socket(2)'s `type`).
public enum SocketType: Sendable, Hashable {
    /// A reliable byte stream (SOCK_STREAM).
    case stream
    /// Messages with their boundaries kept (SOCK_DGRAM).
    case datagram
}

/// The address family (socket(2)'s `domain`).
public enum SocketDomain: Sendable, Hashable {
    /// In-process sockets named in the stack's own namespace (AF_LOCAL / AF_UNIX).
    case local
    /// IPv4 over the stack's interfaces (AF_INET).
    case inet
}

/// Flags of one read or write (the MSG_* flags).
public struct MessageFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Look at the data without removing it (MSG_PEEK).
    public static let peek = MessageFlags(rawValue: 1 << 0)
    /// Do not wait, whatever the socket's mode (MSG_DONTWAIT).
    public static let dontWait = MessageFlags(rawValue: 1 << 1)
    /// Wait until the whole request is satisfied (MSG_WAITALL).
    public static let waitAll = MessageFlags(rawValue: 1 << 2)
    /// Reported on receive: the datagram was longer than the buffer (MSG_TRUNC).
    public static let truncated = MessageFlags(rawValue: 1 << 3)
}
