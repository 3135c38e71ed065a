import Glibc

/// An error from a NetMP socket call: an errno value with a Swift name.
///
/// The names say what happened (`.wouldBlock`, `.connectionReset`); the C names are aliases for
/// readers who think in errno (`.EAGAIN`, `.ECONNRESET`).
public struct NetError: Error, RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32

    public init(rawValue: Int32) { self.rawValue = rawValue }

    private init(_ raw: Int32) { self.rawValue = raw }

    /// The operation would block and the socket is non-blocking, or a timeout ran out (EAGAIN).
    public static let wouldBlock = NetError(Glibc.EAGAIN)
    /// The socket was closed, or is not a socket of this stack (EBADF).
    public static let badDescriptor = NetError(Glibc.EBADF)
    /// A bad argument or an operation in the wrong state (EINVAL).
    public static let invalidArgument = NetError(Glibc.EINVAL)
    /// Writing after the connection was shut down for sending or the peer went away (EPIPE).
    public static let brokenPipe = NetError(Glibc.EPIPE)
    /// The peer reset the connection (ECONNRESET).
    public static let connectionReset = NetError(Glibc.ECONNRESET)
    /// Nobody listens at the address (ECONNREFUSED).
    public static let connectionRefused = NetError(Glibc.ECONNREFUSED)
    /// The connection was aborted locally, e.g. the listen socket closed (ECONNABORTED).
    public static let connectionAborted = NetError(Glibc.ECONNABORTED)
    /// The address is bound already (EADDRINUSE).
    public static let addressInUse = NetError(Glibc.EADDRINUSE)
    /// The address is not available here (EADDRNOTAVAIL).
    public static let addressNotAvailable = NetError(Glibc.EADDRNOTAVAIL)
    /// The socket is not connected (ENOTCONN).
    public static let notConnected = NetError(Glibc.ENOTCONN)
    /// The socket is connected already (EISCONN).
    public static let alreadyConnected = NetError(Glibc.EISCONN)
    /// A connect is in progress on a non-blocking socket (EINPROGRESS).
    public static let inProgress = NetError(Glibc.EINPROGRESS)
    /// A connect is in progress already (EALREADY).
    public static let alreadyInProgress = NetError(Glibc.EALREADY)
    /// The message is larger than the socket can ever hold (EMSGSIZE).
    public static let messageTooLong = NetError(Glibc.EMSGSIZE)
    /// The operation is not supported by this socket type (EOPNOTSUPP).
    public static let notSupported = NetError(Glibc.EOPNOTSUPP)
    /// The address family is not supported (EAFNOSUPPORT).
    public static let addressFamilyNotSupported = NetError(Glibc.EAFNOSUPPORT)
    /// The protocol or socket type is not supported (EPROTONOSUPPORT).
    public static let protocolNotSupported = NetError(Glibc.EPROTONOSUPPORT)
    /// A destination address is required (EDESTADDRREQ).
    public static let destinationRequired = NetError(Glibc.EDESTADDRREQ)
    /// The operation timed out (ETIMEDOUT).
    public static let timedOut = NetError(Glibc.ETIMEDOUT)
    /// The stack was shut down (ESHUTDOWN).
    public static let shutdown = NetError(Glibc.ESHUTDOWN)
    /// No buffer space or memory for the operation (ENOBUFS).
    public static let noBufferSpace = NetError(Glibc.ENOBUFS)
    /// The wait was cancelled (ECANCELED).
    public static let cancelled = NetError(Glibc.ECANCELED)
    /// The option is unknown at this level (ENOPROTOOPT).
    public static let badOption = NetError(Glibc.ENOPROTOOPT)
    /// The host or network is unreachable (EHOSTUNREACH / ENETUNREACH).
    public static let hostUnreachable = NetError(Glibc.EHOSTUNREACH)
    public static let networkUnreachable = NetError(Glibc.ENETUNREACH)
    /// An address or path is too long (ENAMETOOLONG).
    public static let nameTooLong = NetError(Glibc.ENAMETOOLONG)
    /// A device (a TAP interface) does not exist (ENODEV).
    public static let noSuchDevice = NetError(Glibc.ENODEV)
    /// A device is in use and cannot be attached (EBUSY).
    public static let deviceBusy = NetError(Glibc.EBUSY)

    public static var EAGAIN: NetError { .wouldBlock }
    public static var EBADF: NetError { .badDescriptor }
    public static var EINVAL: NetError { .invalidArgument }
    public static var EPIPE: NetError { .brokenPipe }
    public static var ECONNRESET: NetError { .connectionReset }
    public static var ECONNREFUSED: NetError { .connectionRefused }
    public static var ECONNABORTED: NetError { .connectionAborted }
    public static var EADDRINUSE: NetError { .addressInUse }
    public static var ENOTCONN: NetError { .notConnected }
    public static var EISCONN: NetError { .alreadyConnected }
    public static var EMSGSIZE: NetError { .messageTooLong }
    public static var EOPNOTSUPP: NetError { .notSupported }
    public static var ETIMEDOUT: NetError { .timedOut }

    public var description: String {
        let name: String
        switch self {
        case .wouldBlock: name = "wouldBlock"
        case .badDescriptor: name = "badDescriptor"
        case .invalidArgument: name = "invalidArgument"
        case .brokenPipe: name = "brokenPipe"
        case .connectionReset: name = "connectionReset"
        case .connectionRefused: name = "connectionRefused"
        case .connectionAborted: name = "connectionAborted"
        case .addressInUse: name = "addressInUse"
        case .addressNotAvailable: name = "addressNotAvailable"
        case .notConnected: name = "notConnected"
        case .alreadyConnected: name = "alreadyConnected"
        case .inProgress: name = "inProgress"
        case .alreadyInProgress: name = "alreadyInProgress"
        case .messageTooLong: name = "messageTooLong"
        case .notSupported: name = "notSupported"
        case .destinationRequired: name = "destinationRequired"
        case .timedOut: name = "timedOut"
        case .shutdown: name = "shutdown"
        case .cancelled: name = "cancelled"
        case .badOption: name = "badOption"
        // EACCES is named `permissionDenied` where UDP defines it (a broadcast without SO_BROADCAST).
        case NetError(Glibc.EACCES): name = "permissionDenied"
        case .networkUnreachable: name = "networkUnreachable"
        case .hostUnreachable: name = "hostUnreachable"
        case .addressFamilyNotSupported: name = "addressFamilyNotSupported"
        case .protocolNotSupported: name = "protocolNotSupported"
        case .noBufferSpace: name = "noBufferSpace"
        case .nameTooLong: name = "nameTooLong"
        case .noSuchDevice: name = "noSuchDevice"
        case .deviceBusy: name = "deviceBusy"
        default: name = "errno"
        }
        return "\(name) (\(rawValue))"
    }
}
