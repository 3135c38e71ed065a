import NetMPRuntime
import NetMPSockets
import Synchronization

/// The path local sockets take when protocol threads own them (`localSocketsOnProtocolThreads`):
/// each send is a request run on the sender's owner, and each read's window update is one
/// coalesced *rcvd* message to the reader's owner, as TCP's will travel. Requests, closes and
/// waits go there by message already, so in that mode every step but the reader's removal of
/// bytes (done under the buffer lock, as TCP's user side does it) crosses to the owner.
extension LocalDomain {
    /// Runs a send on the socket's owner and waits for it.
    func sendOnOwner(
        _ socket: Socket, _ bytes: UnsafeRawBufferPointer, to address: SocketAddress?
    ) throws(NetError) -> SendProgress {
        let request = OwnerSendRequest(bytes: bytes, address: address)
        return try socket.owner.call { () throws(NetError) -> SendProgress in
            self.sendsRunOnOwners.add(1, ordering: .relaxed)
            return try self.sendHere(socket, request.bytes, to: request.address)
        }
    }

    /// Posts the reader's coalesced *rcvd* message, unless one is queued already.
    func postReceived(_ socket: Socket) {
        let notice = block(socket).receivedNotice
        guard !notice.isQueued.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if !socket.owner.post(notice) { notice.isQueued.store(false, ordering: .releasing) }
    }
}

/// A send's arguments on their way to the owner. Safe to carry across threads: the sender
/// waits for the reply, so the bytes stay valid and unchanged until the owner is done.
struct OwnerSendRequest: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
    let address: SocketAddress?
}

/// One local socket's *rcvd* message, embedded in its control block so that posting it
/// allocates nothing. It holds the socket weakly: a socket freed while the message is queued
/// is simply skipped.
final class ReceivedNotice: EmbeddedMessage, @unchecked Sendable {
    let isQueued = Atomic<Bool>(false)
    private weak var socket: Socket?
    private weak var domain: LocalDomain?

    init(socket: Socket, domain: LocalDomain) {
        self.socket = socket
        self.domain = domain
    }

    func handle() {
        // Re-armed before it acts: a read that comes meanwhile posts it again.
        isQueued.store(false, ordering: .releasing)
        guard let socket, let domain else { return }
        domain.tellWritersOfRoom(socket)
    }
}
