import NetMPRuntime
import NetMPSockets

/// The local domain's write condition: room in the peer's receive buffer (a sender appends
/// straight into it), or a reason the write can no longer succeed.
package struct PeerRoom: WaitPredicate {
    let peer: Socket
    let bytes: Int

    package func isSatisfied(for socket: Socket, state: SocketState) -> Bool {
        if !state.isDisjoint(with: [.cantSendMore, .disconnected]) { return true }
        if peer.state.containsAny([.cantReceiveMore, .noFileReference]) { return true }
        let limit = Swift.max(1, peer.receiveBuffer.highWater.load(ordering: .relaxed))
        return peer.receiveBuffer.room >= Swift.min(bytes, limit)
    }
}
