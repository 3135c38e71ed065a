import NetMPRuntime
import NetMPWire

/// The address of a socket.
public enum SocketAddress: Sendable, Hashable, CustomStringConvertible {
    /// A name in the stack's local namespace (like an AF_UNIX path); at most 107 bytes.
    case local(String)
    /// A local socket that has no name.
    case unnamed
    /// An IPv4 address and port (AF_INET).
    case ipv4(IPv4Address, port: UInt16)

    /// The longest local name, as AF_UNIX's `sun_path`.
    public static let maximumLocalNameLength = 107

    public var description: String {
        switch self {
        case .local(let name): return name
        case .unnamed: return "(unnamed)"
        case .ipv4(let address, let port): return "\(address):\(port)"
        }
    }
}

/// A received datagram: the bytes copied, the sender, and `.truncated` in `flags` when the
/// buffer was shorter than the datagram (the rest is dropped, as recvmsg does).
public struct DatagramReceipt: Sendable, Hashable {
    public var count: Int
    public var source: SocketAddress
    public var flags: MessageFlags

    public init(count: Int, source: SocketAddress, flags: MessageFlags) {
        self.count = count
        self.source = source
        self.flags = flags
    }
}
