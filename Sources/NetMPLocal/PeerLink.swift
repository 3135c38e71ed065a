import NetMPSockets

/// What a connected local socket needs of its peer on the data path: the receive buffer its
/// writes go into and the peer's state bits (both objects of their own, kept alive here without
/// the peer socket, so a link holds no socket and makes no cycle).
///
/// A stream's link is kept by the control block from the moment the two are linked (a stream is
/// linked once) and never cleared, so it can be read without a lock: the writer and reader learn
/// that the link is gone from their own state (`disconnected`, set before the links are
/// dropped), as they would from the link itself. A datagram socket's link changes with its
/// connects; it is published in a `PublishedPeerLink`.
final class PeerLink: Sendable {
    let receiveBuffer: SocketBuffer
    let state: AtomicSocketState

    init(_ peer: Socket) {
        receiveBuffer = peer.receiveBuffer
        state = peer.state
    }
}
