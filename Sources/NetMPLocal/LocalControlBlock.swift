import NetMPRuntime
import NetMPSockets

/// The local domain's control block (DragonFly's `unpcb`).
///
/// `peer` is written under the domain lock and this block's lock together, and read on the
/// data path under this block's lock alone.
package final class LocalControlBlock: @unchecked Sendable {
    unowned let socket: Socket
    private let lock = NetLock()
    private var peerSocket: Socket?  // under lock
    /// The bound name (under the domain lock for writes; read under `lock`).
    private var name: String?
    /// For an accepted child: the listener's name, reported as its local address.
    var inheritedName: String?

    init(socket: Socket) { self.socket = socket }

    var peer: Socket? { lock.withLock { peerSocket } }

    func setPeer(_ peer: Socket?) { lock.withLock { peerSocket = peer } }

    var boundName: String? { lock.withLock { name } }

    func setBoundName(_ value: String?) { lock.withLock { name = value } }

    /// The address this socket's datagrams carry as their source.
    var sourceAddress: SocketAddress { lock.withLock { sourceAddressLocked } }

    private var sourceAddressLocked: SocketAddress {
        name.map(SocketAddress.local) ?? inheritedName.map(SocketAddress.local) ?? .unnamed
    }

    /// The peer and the source address together, in one trip through the lock (the datagram
    /// send path needs both).
    var peerAndSource: (peer: Socket?, source: SocketAddress) {
        lock.withLock { (peerSocket, sourceAddressLocked) }
    }
}
