import NetMPRuntime
import NetMPSockets

/// The local domain's write condition: room in the peer's receive buffer (a sender appends
/// straight into it), or a reason the write can no longer succeed.
package enum PeerRoom: WaitPredicate {
    /// Room for `bytes` (at most the buffer's size) in the receive buffer of `peer`.
    static func condition(peer: PeerLink, bytes: Int) -> WaitCondition {
        .protocolDefined(ProtocolCondition(PeerRoom.self, subject: peer, amount: bytes))
    }

    package static func isSatisfied(subject: AnyObject, amount bytes: Int, for socket: Socket, state: SocketState)
        -> Bool
    {
        let peer = unsafeDowncast(subject, to: PeerLink.self)
        if !state.isDisjoint(with: [.cantSendMore, .disconnected]) { return true }
        if peer.state.containsAny([.cantReceiveMore, .noFileReference]) { return true }
        let limit = Swift.max(1, peer.receiveBuffer.highWater.load(ordering: .relaxed))
        return peer.receiveBuffer.room >= Swift.min(bytes, limit)
    }
}
