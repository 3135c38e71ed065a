import NetMPInterfaces
import NetMPRuntime
import Synchronization

/// One interface's batch of inbound frames on its way to a protocol thread: an embedded message
/// the thread keeps for the next batch once it has run, so a batch costs neither a closure
/// context nor an array (each batch is still its own message: the port's order holds).
final class InboundBatch: EmbeddedMessage, @unchecked Sendable {
    /// Unretained: the state keeps its batches, so it outlives each (a counted reference cost
    /// an atomic on the state's header per batch, a line every dispatching thread shares).
    private let stateReference: Unmanaged<InetThread>
    /// A batch of one frame (most are: a loopback segment, a TAP read) holds it here...
    @exclusivity(unchecked) var single: Frame?
    /// ...and a larger one here. Filled by the sender before the post, emptied by the owner.
    @exclusivity(unchecked) var frames: [Frame] = []
    @exclusivity(unchecked) var interfaceIndex = 0
    /// The pool the frames' chunks go back to, held here so a batch reads no global for it.
    private let pool = ChunkPool.shared

    init(state: InetThread) { stateReference = Unmanaged.passUnretained(state) }

    func handle() {
        stateReference._withUnsafeGuaranteedRef { state in
            // Taken out, not copied and cleared: no retain and release of its chunk.
            if let frame = single.take() {
                state.input(frame, interfaceIndex: interfaceIndex)
                recycleChunk(of: frame)
            } else {
                state.input(frames, interfaceIndex: interfaceIndex)
                while let frame = frames.popLast() { recycleChunk(of: frame) }
            }
            state.recycle(self)
        }
    }

    /// Gives a frame's chunk back to the pool when input kept nothing of it (a control segment,
    /// a loopback segment's header chunk, an ACK): without this every such chunk was freed and
    /// the sender's next one allocated afresh. A chunk input kept (data queued, a fragment
    /// held) is still referenced and stays where it is.
    @inline(__always) private func recycleChunk(of frame: consuming Frame) {
        var chunk: ByteChunk? = frame.chunk
        _ = consume frame
        pool.recycle(&chunk)
    }
}

extension InetThread {
    /// A batch to fill and post to this thread (from any thread): the spare, or a new one.
    func takeInboundBatch() -> InboundBatch {
        if let spare = spareInbound.exchange(nil, ordering: .acquiring) {
            return Unmanaged<InboundBatch>.fromOpaque(spare).takeRetainedValue()
        }
        return InboundBatch(state: self)
    }

    /// Keeps a batch that has run (or could not be posted; its frames are dropped) as the
    /// spare, unless there is one already.
    func recycle(_ batch: InboundBatch) {
        batch.single = nil
        if !batch.frames.isEmpty { batch.frames.removeAll(keepingCapacity: true) }
        let retained = Unmanaged.passRetained(batch).toOpaque()
        if !spareInbound.compareExchange(expected: nil, desired: retained, ordering: .releasing).exchanged {
            Unmanaged<InboundBatch>.fromOpaque(retained).release()
        }
    }
}
