import NetMPRuntime
import NetMPSockets
import Synchronization

/// The local domain's control block (DragonFly's `unpcb`).
///
/// `peer` is written under the domain lock and this block's lock together, and read on the
/// data path under this block's lock alone.
package final class LocalControlBlock: @unchecked Sendable {
    unowned let socket: Socket
    private let lock = NetLock()
    @exclusivity(unchecked) private var peerSocket: Socket?  // under lock
    /// The peer's address, saved when the connection was made (under lock), so that it can be
    /// reported after the peer has gone (the seed's accept-address race).
    @exclusivity(unchecked) private var savedPeerAddress: SocketAddress?
    /// The bound name and the source address it makes, set once (under the domain lock) and
    /// read without a lock: a socket binds at most once.
    private let bound = OnceReference<BoundName>()
    /// For an accepted child: the listener's name, reported as its local address.
    @exclusivity(unchecked) var inheritedName: String?  // set once, before the child is visible
    /// The payload size of this socket's last datagram: what "writable" promises room for.
    let lastDatagramSize = Atomic<Int>(0)
    /// Datagram sockets connected to this one (changed under the domain lock and `lock`, read
    /// under `lock`): a reader that drains tells their pollers, connected back or not.
    ///
    /// Unretained, not weak (a weak reference would slow every retain of the socket): a sender
    /// is removed, under `lock`, when it disconnects, reconnects elsewhere or is detached, which
    /// every socket is before it is freed; and when this socket is detached the list is emptied.
    @exclusivity(unchecked) private var senders: [Unmanaged<Socket>] = []

    /// A stream peer's receive buffer and state, kept from the moment the two are linked: a
    /// writer appends and a reader tells the writer's pollers of room without taking `lock`.
    let streamPeer = OnceReference<PeerLink>()

    /// A datagram socket's connected peer (its receive buffer and state), published whenever
    /// `peer` changes, so that a send reaches it without taking `lock`.
    let datagramPeer = PublishedPeerLink()

    /// The coalesced *rcvd* message (used when protocol threads own local sockets).
    let receivedNotice: ReceivedNotice

    init(socket: Socket, domain: LocalDomain) {
        self.socket = socket
        receivedNotice = ReceivedNotice(socket: socket, domain: domain)
    }

    var peer: Socket? { lock.withLock { peerSocket } }

    /// Adds (or with `adding` false, removes) a datagram socket connected to this one; dead
    /// entries go too.
    func updateSenders(_ sender: Socket, adding: Bool) {
        lock.withLock {
            senders.removeAll { $0.toOpaque() == Unmanaged.passUnretained(sender).toOpaque() }
            if adding { senders.append(.passUnretained(sender)) }
        }
    }

    func removeAllSenders() { lock.withLock { senders.removeAll() } }

    /// Tells the pollers of every datagram socket connected to this one. Under `lock`: the
    /// list is never handed to another thread; observers only queue themselves under their own
    /// locks, which never take this one.
    func notifySenders() {
        lock.withLock {
            for sender in senders { sender._withUnsafeGuaranteedRef { $0.observers?.notify() } }
        }
    }

    /// Links (or unlinks, with nil) the peer and saves the address to report for it.
    func setPeer(_ peer: Socket?, address: SocketAddress? = nil) {
        lock.withLock {
            peerSocket = peer
            if peer != nil { savedPeerAddress = address }
            if socket.type == .datagram { datagramPeer.replace(with: peer.map(PeerLink.init)) }
        }
    }

    /// Forgets the saved peer address too (a datagram socket's association dissolved).
    func forgetPeerAddress() { lock.withLock { savedPeerAddress = nil } }

    var peerAddress: SocketAddress? { lock.withLock { savedPeerAddress } }

    var boundName: String? { bound.load()?.name }

    /// Records the bound name (under the domain lock, once: `bind` refuses a second name).
    func setBoundName(_ value: String) { _ = bound.storeIfNil(BoundName(value)) }

    /// The address this socket's datagrams carry as their source (no lock: the name is set once
    /// and `inheritedName` before the socket is visible).
    @inline(__always) var sourceAddress: SocketAddress {
        if let address = bound.withLoaded({ $0.address }) { return address }
        return inheritedName.map(SocketAddress.local) ?? .unnamed
    }
}

/// A bound name and the source address it gives the socket's datagrams (made once, at bind).
final class BoundName: Sendable {
    let name: String
    let address: SocketAddress

    init(_ name: String) {
        self.name = name
        address = .local(name)
    }
}
