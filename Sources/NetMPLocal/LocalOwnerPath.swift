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
        notice.retainSocket()
        if !socket.owner.post(notice) {
            notice.isQueued.store(false, ordering: .releasing)
            notice.releaseSocket()
        }
    }
}

/// A send's arguments on their way to the owner. Safe to carry across threads: the sender
/// waits for the reply, so the bytes stay valid and unchanged until the owner is done.
struct OwnerSendRequest: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
    let address: SocketAddress?
}

/// One local socket's *rcvd* message, embedded in its control block so that posting it
/// allocates nothing. It keeps its socket alive only while it is queued (one retain taken when
/// it is posted, given back when it has run), not by a weak reference: a weak reference would
/// give the socket a side table, and every retain and release of it would take the slow path.
final class ReceivedNotice: EmbeddedMessage, @unchecked Sendable {
    let isQueued = Atomic<Bool>(false)
    private unowned(unsafe) let socket: Socket
    private weak var domain: LocalDomain?

    init(socket: Socket, domain: LocalDomain) {
        self.socket = socket
        self.domain = domain
    }

    /// Called by the poster, which holds the socket, before the notice is queued.
    func retainSocket() { _ = Unmanaged.passUnretained(socket).retain() }

    func releaseSocket() { Unmanaged.passUnretained(socket).release() }

    func handle() {
        // Re-armed before it acts: a read that comes meanwhile posts it again (and takes its own
        // retain, so the one this run gives back below is its own).
        isQueued.store(false, ordering: .releasing)
        if let domain { domain.tellWritersOfRoom(socket) }
        releaseSocket()
    }
}
