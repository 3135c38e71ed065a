import NetMPRuntime
import NetMPSockets

/// The local domain's names (the filesystem paths of AF_UNIX, here a flat namespace per stack).
/// A value kept under the domain lock.
package struct LocalNamespace {
    private var names: [String: Socket] = [:]

    /// The name an address gives, if it is a well-formed local name.
    static func validName(_ address: SocketAddress) throws(NetError) -> String {
        guard case .local(let name) = address else { throw .invalidArgument }
        if name.isEmpty || name.utf8.contains(0) { throw .invalidArgument }
        if name.utf8.count > SocketAddress.maximumLocalNameLength { throw .nameTooLong }
        return name
    }

    func socket(named name: String) -> Socket? { names[name] }

    mutating func bind(_ name: String, to socket: Socket) throws(NetError) {
        if names[name] != nil { throw .addressInUse }
        names[name] = socket
    }

    /// Frees `name` if `socket` still holds it.
    mutating func unbind(_ name: String, from socket: Socket) {
        if names[name] === socket { names[name] = nil }
    }
}
