import NetMPRuntime

/// A socket's state bits (DragonFly's `so_state`), kept as one atomic word.
///
/// The protocol side sets most bits; the user side may set `cantReceiveMore`, `cantSendMore`
/// and `noFileReference` atomically and then tell the owner thread with a *checkstate* message.
///
/// The bits are inlinable constants, not stored statics: every read and write tests some, and a
/// stored static read from another module is a call to its lazy global's accessor.
public struct SocketState: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }

    @inlinable public static var connected: SocketState { SocketState(rawValue: 1 << 0) }
    @inlinable public static var connecting: SocketState { SocketState(rawValue: 1 << 1) }
    @inlinable public static var disconnecting: SocketState { SocketState(rawValue: 1 << 2) }
    /// Was connected and is no longer (so writes fail with brokenPipe, not notConnected).
    @inlinable public static var disconnected: SocketState { SocketState(rawValue: 1 << 3) }
    @inlinable public static var cantSendMore: SocketState { SocketState(rawValue: 1 << 4) }
    @inlinable public static var cantReceiveMore: SocketState { SocketState(rawValue: 1 << 5) }
    /// The user closed the socket: no file reference is left.
    @inlinable public static var noFileReference: SocketState { SocketState(rawValue: 1 << 6) }
    /// A child on its listen socket's incomplete queue (SS_INCOMP).
    @inlinable public static var inIncompleteQueue: SocketState { SocketState(rawValue: 1 << 7) }
    /// A child on its listen socket's complete queue (SS_COMP).
    @inlinable public static var inCompleteQueue: SocketState { SocketState(rawValue: 1 << 8) }
    @inlinable public static var listening: SocketState { SocketState(rawValue: 1 << 9) }
    @inlinable public static var bound: SocketState { SocketState(rawValue: 1 << 10) }

    /// True when any of `members` is set.
    @inlinable public func containsAny(_ members: SocketState) -> Bool { !isDisjoint(with: members) }
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
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Look at the data without removing it (MSG_PEEK).
    @inlinable public static var peek: MessageFlags { MessageFlags(rawValue: 1 << 0) }
    /// Do not wait, whatever the socket's mode (MSG_DONTWAIT).
    @inlinable public static var dontWait: MessageFlags { MessageFlags(rawValue: 1 << 1) }
    /// Wait until the whole request is satisfied (MSG_WAITALL).
    @inlinable public static var waitAll: MessageFlags { MessageFlags(rawValue: 1 << 2) }
    /// Reported on receive: the datagram was longer than the buffer (MSG_TRUNC).
    @inlinable public static var truncated: MessageFlags { MessageFlags(rawValue: 1 << 3) }
}
