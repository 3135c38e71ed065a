import NetMPInet
import NetMPRuntime
import NetMPSockets
import NetMPWire

/// TCP on one protocol thread: the connections whose 4-tuples hash here, the TIME_WAIT records
/// left by those that closed, and the glue between the state machine and sockets: every event
/// runs the connection value, then applies its actions in the order the core asks (drop what was
/// acknowledged, deliver, send, report) and re-arms the connection's one callout. Its fields are
/// the owner's alone and skip the runtime exclusivity check (several accesses per packet).
package final class TCPThread: InetTransportHandler, @unchecked Sendable {
    unowned let tcp: TCPProtocol
    /// Unchecked: the protocol holds this thread and the stack, and so the stack's `InetThread`;
    /// each checked access cost an atomic on its header, a line every dispatching thread shares.
    unowned(unsafe) let inet: InetThread
    /// `inet` as a guaranteed reference for the per-event reads (a strong copy of the unowned
    /// field is a retain).
    private let inetReference: Unmanaged<InetThread>
    /// The shared chunk pool, not retained (it lives as long as the process): reading
    /// `ChunkPool.shared` each segment ran its lazy initialiser's check, and retained it.
    private let chunkPool = Unmanaged.passUnretained(ChunkPool.shared)
    /// Room to leave before a segment for the IP and link headers (a constant of the stack).
    private let transportHeadroom = InetThread.transportHeadroom
    @exclusivity(unchecked) var connections = TCPConnectionTable<TCPControlBlock>()
    @exclusivity(unchecked) var timeWaits: [TCPConnectionKey: TCPTimeWait] = [:]
    lazy var timeWaitCallout = Callout(on: inet.thread) { [unowned self] in
        self.expireTimeWaits()
        self.inet.transportFlush()
    }
    @exclusivity(unchecked) private var spareActions: [TCPActions<ByteSlice>] = []
    /// The actions of the outermost event, changed in place (a copy out of `spareActions` and
    /// back cost more than the rest of an event's bookkeeping), and how deep events nest now.
    @exclusivity(unchecked) private var outerActions = TCPActions<ByteSlice>()
    @exclusivity(unchecked) private var eventDepth = 0
    /// Send-queue pieces referenced under the buffer lock, each segment's in turn.
    @exclusivity(unchecked) private var gathered: [ByteSlice] = []
    @exclusivity(unchecked) var statistics = TCPStatistics()
    /// Events run so far: tells `event` whether what it applied ran another.
    @exclusivity(unchecked) private var eventCount = 0
    /// The settings box the last connection made here uses, for the next one to share.
    @exclusivity(unchecked) var sharedConfiguration: TCPSharedConfiguration?

    init(tcp: TCPProtocol, inet: InetThread) {
        self.tcp = tcp
        self.inet = inet
        inetReference = Unmanaged.passUnretained(inet)
    }

    var thread: ProtocolThread { inet.thread }
    /// The turn's time (`ProtocolThread.turnTime`): RTT samples and timers come out at most a
    /// batch's length (microseconds) off, the delayed ACK and the retransmission timer run on
    /// milliseconds.
    var now: Int64 { inetReference._withUnsafeGuaranteedRef { $0.nanoseconds } }

    // MARK: Events

    /// Runs one event on `block`'s connection and applies what it asks. (Inlined into each caller:
    /// as a call of its own it retained what the caller's closure captured, such as a payload's
    /// chunk, for the call's length.)
    @inline(__always) func event(
        _ block: TCPControlBlock,
        _ body: (inout TCPConnection<ByteSlice>, Int64, inout TCPActions<ByteSlice>) -> Void
    ) {
        // The outermost event uses the thread's own actions in place; one that an event's
        // actions start (an abort from `apply`) takes a spare, as the outer one is in use.
        if eventDepth == 0 {
            eventDepth = 1
            defer { eventDepth = 0 }
            event(block, body, actions: &outerActions)
        } else {
            eventDepth += 1
            defer { eventDepth -= 1 }
            var actions = spareActions.popLast() ?? TCPActions()
            event(block, body, actions: &actions)
            spareActions.append(actions)
        }
    }

    /// Runs one event with `actions` (empty, and left empty).
    private func event(
        _ block: TCPControlBlock,
        _ body: (inout TCPConnection<ByteSlice>, Int64, inout TCPActions<ByteSlice>) -> Void,
        actions: inout TCPActions<ByteSlice>
    ) {
        let time = now
        eventCount &+= 1
        let serial = eventCount
        var closing = false
        var record: TCPTimeWait?
        var finAcknowledged = false
        var deadline: Int64?
        var readsBeforeWindowUpdate = 1
        var sendBufferSizing: SendBufferSizing?
        // The connection is changed where it lives (a copy in and out costs more than the event):
        // the body is the state machine alone, and what runs after it sees the new value.
        let ran: Void? = block.connection?.update { connection in
            let outOfOrderBefore = connection.outOfOrder.byteCount
            defer { accountOutOfOrder(&connection, before: outOfOrderBefore, closing: closing) }
            // Reads are reported before anything else runs, so every segment sent carries the
            // window the reader opened (the *rcvd* message answered before output).
            let read = block.unreportedReads.exchange(0, ordering: .sequentiallyConsistent)
            if read > 0 {
                // A buffer grown by auto-tuning shows in the window this update advertises.
                autoTuneReceiveBuffer(block, &connection, read: read, now: time)
                connection.received(count: read, now: time, into: &actions)
            }
            body(&connection, time, &actions)
            closing = actions.closed || actions.enteredTimeWait
            if closing {
                record = actions.enteredTimeWait ? connection.timeWaitRecord() : nil
                statistics.add(connection, closing: true)
            }
            finAcknowledged = connection.finAcknowledged
            deadline = connection.nextDeadline
            readsBeforeWindowUpdate = connection.readsBeforeWindowUpdate
            if !closing {
                sendBufferSizing = SendBufferSizing(connection)
            }
        }
        guard ran != nil else { return }
        if closing { block.connection = nil }
        let sendFinished = !block.sendFinishedPublished && (closing || finAcknowledged)
        if sendFinished {
            block.sendFinishedPublished = true
            block.sendFinished.store(true, ordering: .sequentiallyConsistent)
        }
        // Data that neither ends the stream nor comes with an error or a close reaches the reader
        // last: its reader (a ping-pong's) answers at once, and an answer that finds this thread
        // still holding the owner's run token is queued behind the rest of this event instead of
        // running on its own CPU beside it.
        let deliverLast = !closing && !actions.endOfStream && actions.error == nil && !actions.delivered.isEmpty
        apply(&actions, to: block, timeWait: record, deliver: !deliverLast)
        // A lingering close waits on the send buffer (closing wakes it in `finish`).
        if sendFinished && !closing { block.socket.sendBuffer.wake() }
        if !closing {
            publishWindowUpdateThreshold(block, readsBeforeWindowUpdate)
            // An event `apply` ran (an abort) may have changed the connection: then it is read again.
            if eventCount == serial {
                if let sendBufferSizing { autoSizeSendBuffer(block, sendBufferSizing) }
            } else {
                block.connection?.update { connection in
                    if let sizing = SendBufferSizing(connection) { autoSizeSendBuffer(block, sizing) }
                }
            }
            rearm(block, deadline: eventCount == serial ? deadline : block.connection?.nextDeadline)
        }
        if deliverLast { deliver(&actions.delivered, block) }
        actions.clear()
    }

    /// Tells the block's readers how much to read before a *rcvd* message is worth sending. A
    /// reader that added its reads before it saw the new threshold did not post: checked here after
    /// the store (both sequentially consistent), so a due window update is never left waiting.
    /// Inlined: most events leave the threshold as it was, and the call cost more than the test.
    @inline(__always) private func publishWindowUpdateThreshold(_ block: TCPControlBlock, _ threshold: Int) {
        guard block.windowUpdateThreshold.load(ordering: .relaxed) != threshold else { return }
        block.windowUpdateThreshold.store(threshold, ordering: .sequentiallyConsistent)
        if block.unreportedReads.load(ordering: .sequentiallyConsistent) >= threshold {
            block.postOnce(block.received, pending: block.receivedPending, queued: true)
        }
    }

    /// Keeps the thread's count of out-of-order bytes after an event changed `connection`'s
    /// queue, and prunes that queue (the one that grew, never another) when the thread holds
    /// more than its share of the stack's bound. A closing connection's bytes leave the count.
    /// Inlined: most events leave the queue as it was, and the call cost more than the test.
    @inline(__always) private func accountOutOfOrder(
        _ connection: inout TCPConnection<ByteSlice>, before: Int, closing: Bool
    ) {
        let after = connection.outOfOrder.byteCount
        guard after != before || closing else { return }
        statistics.outOfOrderBytes += after - before
        if after > before {
            let share = connection.configuration.maximumOutOfOrderBytesPerStack / Swift.max(1, tcp.threads.count)
            let excess = statistics.outOfOrderBytes - share
            if excess > 0 {
                let dropped = connection.outOfOrder.prune(toAtMost: after - excess)
                statistics.outOfOrderBytes -= dropped
                statistics.outOfOrderPrunes += 1
                statistics.outOfOrderBytesPruned += dropped
            }
        }
        if closing { statistics.outOfOrderBytes -= connection.outOfOrder.byteCount }
    }

    /// The user appended bytes or read some (the embedded *output* and *rcvd* messages): the
    /// reads are reported first, so the window the output advertises is current.
    func userDataChanged(_ block: TCPControlBlock) {
        // Taken before the event, so that its body captures a count, not the block (a capture
        // was a retain of the block per message). A write after this posts the message again.
        let appended = block.unsentAppended.exchange(0, ordering: .sequentiallyConsistent)
        event(block) { connection, time, actions in
            if appended > 0 { connection.send(count: appended, now: time, into: &actions) }
        }
    }

    /// Receive-buffer auto-tuning (`TCPBufferAutoTuning`): the application read `read` bytes.
    private func autoTuneReceiveBuffer(
        _ block: TCPControlBlock, _ connection: inout TCPConnection<ByteSlice>, read: Int, now: Int64
    ) {
        guard connection.configuration.bufferAutoTuning else { return }
        let roundTrip = connection.retransmissionTimeout.smoothedRTT
        let limit = connection.configuration.maximumReceiveBufferSize
        // The buffer by the block's unretained reference (a strong one was a retain per read).
        let grown: Int? = block.withReceiveBuffer { buffer in
            guard !buffer.sizeSetByUser.load(ordering: .relaxed),
                let size = block.autoTuning.receiveBufferSize(
                    afterReading: read, now: now, roundTrip: roundTrip,
                    current: buffer.highWater.load(ordering: .relaxed),
                    limit: limit)
            else { return nil }
            buffer.highWater.store(size, ordering: .sequentiallyConsistent)
            return size
        }
        if let grown { connection.configuration.receiveBufferSize = grown }
    }

    /// What send-buffer auto-sizing needs of a connection, read while the event has it at hand (a
    /// second access to the block's connection after `apply` cost more than the reading).
    private struct SendBufferSizing {
        var congestionWindow: Int
        var limit: Int

        /// Nil when the connection does not auto-tune its buffers.
        init?(_ connection: borrowing TCPConnection<ByteSlice>) {
            guard connection.configuration.bufferAutoTuning else { return nil }
            congestionWindow = connection.congestionWindow
            limit = connection.configuration.maximumSendBufferSize
        }
    }

    /// Send-buffer auto-sizing (`TCPBufferAutoTuning`): room for twice the congestion window.
    private func autoSizeSendBuffer(_ block: TCPControlBlock, _ sizing: SendBufferSizing) {
        block.withSendBuffer { buffer in
            guard !buffer.sizeSetByUser.load(ordering: .relaxed),
                let size = TCPBufferAutoTuning.sendBufferSize(
                    congestionWindow: sizing.congestionWindow, current: buffer.highWater.load(ordering: .relaxed),
                    limit: sizing.limit)
            else { return }
            buffer.highWater.store(size, ordering: .sequentiallyConsistent)
            // Writers waiting for room may fit now.
            buffer.wake()
        }
    }

    /// Arms the connection's callout lazily: one armed earlier than `deadline`, or no longer
    /// needed, stays as it is, and when it fires the connection's own deadline decides
    /// (`calloutFired`). Most events only move the deadline later (an ACK restarts the
    /// retransmission timer, data restarts the delayed ACK), so this spares a heap push and a
    /// stale entry per event. (Inlined into `event`; the first arming is out of line.)
    @inline(__always)
    private func rearm(_ block: TCPControlBlock, deadline: Int64?) {
        guard let deadline else { return }
        if let callout = block.callout {
            callout.arm(notAfter: deadline)
            return
        }
        armFirstCallout(block, deadline: deadline)
    }

    /// Makes the block's callout, on its first deadline, and arms it.
    private func armFirstCallout(_ block: TCPControlBlock, deadline: Int64) {
        // The callout names its connection by tuple, not by a reference: a weak one would give
        // every block a side table, and so a slower retain and release on every packet.
        guard let key = block.key else { return }
        let callout = Callout(on: thread) { [unowned self] in
            if let block = self.connections[key] { self.calloutFired(block) }
        }
        block.callout = callout
        callout.arm(at: deadline)
    }

    /// The callout passed: the timers run if one is due now, else it is armed for the next.
    private func calloutFired(_ block: TCPControlBlock) {
        var due: Int64?
        guard block.connection?.update({ due = $0.nextDeadline }) != nil, let due else { return }
        if due > now {
            block.callout?.arm(at: due)
            return
        }
        event(block) { connection, time, actions in connection.timerFired(now: time, into: &actions) }
        // Timers run outside a message batch: send what they produced now.
        inet.transportFlush()
    }

    // MARK: Applying actions

    /// Applies one event's actions in the order the core asks (inlined into `event`, which runs
    /// it once per event).
    @inline(__always)
    private func apply(
        _ actions: inout TCPActions<ByteSlice>, to block: TCPControlBlock, timeWait: TCPTimeWait?, deliver: Bool = true
    ) {
        if actions.hasChallengeACK, let challenge = actions.challengeACK {
            // Sent last, and only while the stack's budget lasts (RFC 5961 7).
            if tcp.challengeACKs.allow(now: now) {
                actions.segments.append(challenge)
                statistics.challengeACKsSent += 1
            } else {
                statistics.challengeACKsSuppressed += 1
            }
        }
        if let reason = actions.dropped { statistics.drops[reason] &+= 1 }
        block.bytesAcknowledged &+= actions.acknowledgedBytes
        if actions.acknowledgedBytes > 0 { dropAcknowledged(actions.acknowledgedBytes, block) }
        if deliver, !actions.delivered.isEmpty { self.deliver(&actions.delivered, block) }
        if !actions.segments.isEmpty { transmit(actions.segments, block) }
        if actions.established { established(block) }
        if actions.endOfStream {
            block.socket.state.set(.cantReceiveMore)
            block.withReceiveBuffer { $0.wake() }
        }
        if let error = actions.error {
            statistics.errors += 1
            switch error {
            case .connectionReset, .connectionRefused: statistics.connectionsReset += 1
            case .timedOut: statistics.connectionsTimedOut += 1
            // What ICMP said (counted as `icmpErrors` where it arrived).
            case .hostUnreachable, .networkUnreachable: break
            }
            block.socket.setError(TCPThread.socketError(error))
        }
        if actions.enteredTimeWait, let key = block.key, let timeWait {
            timeWaits[key] = timeWait
            if !timeWaitCallout.isArmed || timeWaitCallout.deadline > timeWait.deadline {
                timeWaitCallout.arm(at: timeWait.deadline)
            }
            finish(block, releaseTuple: false)
        } else if actions.closed {
            finish(block, releaseTuple: true)
        }
    }

    static func socketError(_ error: TCPError) -> NetError {
        switch error {
        case .connectionRefused: return .connectionRefused
        case .connectionReset: return .connectionReset
        case .timedOut: return .timedOut
        case .hostUnreachable: return .hostUnreachable
        case .networkUnreachable: return .networkUnreachable
        }
    }

    private func dropAcknowledged(_ count: Int, _ block: TCPControlBlock) {
        if block.detached {
            block.detachedQueue.trimFront(count)
            return
        }
        block.withSendBuffer { buffer in
            var wakes = WakeList()
            buffer.lock.lock()
            buffer.chain.trimFront(count)
            // An emptied queue's grown storage is freed once the lock is dropped.
            let idleStorage = buffer.chain.isEmpty ? buffer.chain.takeIdleStorage() : nil
            buffer.byteCount.store(buffer.chain.count, ordering: .sequentiallyConsistent)
            buffer.collectSatisfiedLocked(into: &wakes)
            buffer.lock.unlock()
            withExtendedLifetime(idleStorage) {}
            wakes.publishAll()
            buffer.observers?.notify()
        }
    }

    /// Appends `payloads` to the receive buffer. A lone payload (most events) is moved out of the
    /// array, not copied: a copy retained its chunk, and the actions' clear released it again.
    private func deliver(_ payloads: inout [ByteSlice], _ block: TCPControlBlock) {
        var total = 0
        for index in payloads.indices { total += payloads[index].count }
        block.bytesReceived &+= total
        if block.detached || block.withSocket({ $0.state.containsAny([.cantReceiveMore, .noFileReference]) }) {
            // Nobody will read them: they count as read at once (the window stays open).
            block.unreportedReads.add(total, ordering: .sequentiallyConsistent)
            return
        }
        block.withReceiveBuffer { buffer in
            var wakes = WakeList()
            buffer.lock.lock()
            if payloads.count == 1 {
                let payload = payloads.removeLast()
                if payload.count > 0 { buffer.chain.append(payload) }
            } else {
                for payload in payloads where payload.count > 0 { buffer.chain.append(payload) }
            }
            buffer.byteCount.store(buffer.chain.count, ordering: .sequentiallyConsistent)
            buffer.collectSatisfiedLocked(into: &wakes)
            buffer.lock.unlock()
            wakes.publishAll()
            buffer.observers?.notify()
        }
        statistics.bytesReceived &+= total
    }

    /// Builds each segment in a pooled chunk with room for the IP and link headers: the header
    /// and options, then the named send-queue bytes (a retransmission copies the same queued
    /// bytes again). The queued bytes are referenced under the send buffer's lock and copied after
    /// it is dropped: filled bytes of a chunk never change while referenced. A large segment to an
    /// interface with scatter-gather is not copied: its frame carries the header, then the queued
    /// slices themselves.
    private func transmit(_ segments: [TCPOutboundSegment], _ block: TCPControlBlock) {
        inetReference._withUnsafeGuaranteedRef { transmit(segments, block, inet: $0) }
    }

    /// `transmit` with `inet` borrowed for the call: a strong copy of the unowned field was a
    /// retain on the state's header, which every CPU that dispatches here writes.
    private func transmit(_ segments: [TCPOutboundSegment], _ block: TCPControlBlock, inet: InetThread) {
        guard let hop = block.hop else { return }
        let headroom = transportHeadroom
        let skip = inet.transportChecksumsSkipped(hop.interfaceIndex)
        // Both facts in one pass over the fields (not two closures over whole segments).
        var anyLarge = false
        var anyPayload = false
        for index in segments.indices {
            anyLarge = anyLarge || segments[index].segmentSize > 0
            anyPayload = anyPayload || segments[index].payloadLength > 0
        }
        let scatter = !block.detached && anyLarge && inet.transportScatterGather(hop.interfaceIndex)
        // `gathered` is empty here: every pass empties it at its end.
        // The send queue's length when its pieces were gathered: which segments got theirs
        // follows from it (`TCPThread.covers`), so no count per segment is kept.
        var queued = 0
        if !block.detached, anyPayload {
            block.withSendBuffer { buffer in
                buffer.lock.lock()
                queued = buffer.chain.count
                for index in segments.indices {
                    gather(from: buffer, offset: segments[index].sendQueueOffset, length: segments[index].payloadLength)
                }
                buffer.lock.unlock()
            }
        }
        var cursor = 0
        for index in segments.indices {
            let segmentSize = segments[index].segmentSize
            let length = segments[index].payloadLength
            let hasPieces =
                !block.detached
                && TCPThread.covers(offset: segments[index].sendQueueOffset, length: length, queued: queued)
            if scatter, segmentSize > 0, hasPieces {
                let end = piecesEnd(from: cursor, covering: length)
                transmitGathered(
                    segments[index], pieces: Array(gathered[cursor..<end]), hop: hop, block: block, skip: skip)
                cursor = end
                continue
            }
            // One copy of the header for both calls below (an array element read for each call
            // was copied for each: the array could change under an opaque call).
            let header = segments[index].header
            let headerLength = header.encodedLength
            let chunk = takeChunk(atLeast: headerLength + length, headroom: headroom)
            let payloadStart = headroom + headerLength
            if length > 0 {
                var copied = 0
                if block.detached {
                    copied = block.detachedQueue.copyOut(
                        from: segments[index].sendQueueOffset, into: mutableRegion(chunk, payloadStart, length))
                } else if hasPieces {
                    // The pieces gathered for this segment cover exactly its bytes.
                    while copied < length, cursor < gathered.count {
                        let slice = gathered[cursor]
                        let n = Swift.min(slice.count, length - copied)
                        (chunk.base + payloadStart + copied).copyMemory(
                            from: slice.chunk.base + slice.start, byteCount: n)
                        copied += n
                        cursor += 1
                    }
                }
                guard copied == length else { continue }
            }
            chunk.filled = payloadStart + length
            let large = segmentSize > 0
            let region = mutableRegion(chunk, headroom, headerLength + length)
            guard
                (try? header.emit(
                    into: region, payloadLength: length, source: hop.source, destination: block.remoteAddress,
                    computeChecksum: !skip && !large)) != nil
            else { continue }
            if large && !skip {
                // The interface (or its peer) sums each segment it cuts: the field holds the
                // pseudo-header's sum, as for CHECKSUM_PARTIAL.
                let sum = InternetChecksum.pseudoHeaderSum(
                    source: hop.source, destination: block.remoteAddress, protocol: .tcp,
                    length: UInt16(truncatingIfNeeded: headerLength + length))
                region.storeBytes(of: sum.bigEndian, toByteOffset: 16, as: UInt16.self)
            }
            if header.flags.contains(.rst) { statistics.resetsSent += 1 }
            statistics.segmentsSent += 1
            block.segmentsOut &+= 1
            inet.transportOutput(
                chunk: chunk, payloadStart: headroom, payloadEnd: payloadStart + length, protocol: 6, hop: hop,
                destination: block.remoteAddress,
                ecn: segments[index].ecnCapable ? TCPExplicitCongestion.ect0Codepoint : 0,
                segmentSize: Int(segmentSize))
        }
        // Drop the references now, so the chunks can go back to the pool once acknowledged.
        gathered.clearKeepingCapacity()
    }

    /// Whether `gather` found `length` bytes at `offset` of a send queue `queued` bytes long (and
    /// so appended the pieces that cover them).
    @inline(__always)
    private static func covers(offset: Int, length: Int, queued: Int) -> Bool {
        length > 0 && offset >= 0 && offset <= queued - length
    }

    /// One past the last of the gathered pieces from `cursor` that together hold `length` bytes.
    private func piecesEnd(from cursor: Int, covering length: Int) -> Int {
        var end = cursor
        var covered = 0
        while covered < length, end < gathered.count {
            covered += gathered[end].count
            end += 1
        }
        return end
    }

    /// Sends a large segment as its header in a small chunk followed by `pieces`, the send
    /// queue's slices (shared, not copied); the checksum field holds the pseudo-header's sum for
    /// the interface or its peer to finish per segment (or nothing where checksums are skipped).
    private func transmitGathered(
        _ segment: TCPOutboundSegment, pieces: [ByteSlice], hop: NextHop, block: TCPControlBlock, skip: Bool
    ) {
        let headroom = transportHeadroom
        let headerLength = segment.header.encodedLength
        let chunk = takeChunk(atLeast: headerLength, headroom: headroom)
        chunk.filled = headroom + headerLength
        let region = mutableRegion(chunk, headroom, headerLength)
        guard
            (try? segment.header.emit(
                into: region, payloadLength: 0, source: hop.source, destination: block.remoteAddress,
                computeChecksum: false)) != nil
        else { return }
        if !skip {
            let sum = InternetChecksum.pseudoHeaderSum(
                source: hop.source, destination: block.remoteAddress, protocol: .tcp,
                length: UInt16(truncatingIfNeeded: headerLength + segment.payloadLength))
            region.storeBytes(of: sum.bigEndian, toByteOffset: 16, as: UInt16.self)
        }
        statistics.segmentsSent += 1
        block.segmentsOut &+= 1
        inet.transportOutput(
            chunk: chunk, payloadStart: headroom, payloadEnd: headroom + headerLength, protocol: 6, hop: hop,
            destination: block.remoteAddress, ecn: segment.ecnCapable ? TCPExplicitCongestion.ect0Codepoint : 0,
            segmentSize: Int(segment.segmentSize), gathered: pieces)
    }

    /// Appends to `gathered` the pieces of `buffer`'s chain covering `length` bytes from `offset`
    /// (none when the chain is shorter: see `covers`). The caller holds the buffer's lock; the
    /// chain is read where it lies (passing it as a value copied it, a retain and a release of
    /// its storage).
    private func gather(from buffer: SocketBuffer, offset: Int, length: Int) {
        guard TCPThread.covers(offset: offset, length: length, queued: buffer.chain.count) else { return }
        var skip = offset
        var wanted = length
        for index in 0..<buffer.chain.slices.count where wanted > 0 {
            let count = buffer.chain.slices[index].count
            if skip >= count {
                skip -= count
                continue
            }
            var slice = buffer.chain.slices[index]
            slice.start += skip
            skip = 0
            slice.end = slice.start + Swift.min(slice.count, wanted)
            wanted -= slice.count
            gathered.append(slice)
        }
    }

    /// A chunk from the shared pool for `size` bytes after `headroom`.
    @inline(__always)
    private func takeChunk(atLeast size: Int, headroom: Int) -> ByteChunk {
        chunkPool._withUnsafeGuaranteedRef { $0.take(atLeast: size, headroom: headroom) }
    }

    /// Sends a segment that belongs to no connection (a RST, a TIME_WAIT ACK).
    func transmitBare(_ header: TCPHeader, from source: IPv4Address, to destination: IPv4Address) {
        guard let hop = inet.transportRoute(to: destination, from: source) else { return }
        let headroom = transportHeadroom
        let length = header.encodedLength
        let chunk = takeChunk(atLeast: length, headroom: headroom)
        chunk.filled = headroom + length
        guard
            (try? header.emit(
                into: mutableRegion(chunk, headroom, length), payloadLength: 0, source: hop.source,
                destination: destination, computeChecksum: !inet.transportChecksumsSkipped(hop.interfaceIndex)))
                != nil
        else { return }
        if header.flags.contains(.rst) { statistics.resetsSent += 1 }
        statistics.segmentsSent += 1
        inet.transportOutput(
            chunk: chunk, payloadStart: headroom, payloadEnd: headroom + length, protocol: 6, hop: hop,
            destination: destination)
    }

    private func established(_ block: TCPControlBlock) {
        let socket = block.socket
        TCPThread.markEstablished(socket.state)
        if let parent = block.parent {
            block.parent = nil
            parent.removeIncomplete(block)
            // The peer address was stored at birth: accept never sees an unnamed child.
            guard let queue = parent.socket.listenQueue, queue.addComplete(socket) else {
                event(block) { connection, time, actions in connection.abort(now: time, into: &actions) }
                return
            }
            parent.socket.receiveBuffer.wake()
        }
        socket.receiveBuffer.wake()
        socket.sendBuffer.wake()
    }

    /// `connecting` becomes `connected` in one step: a connect waiter (spinning on the state,
    /// without the lock) that saw neither would end its wait and report a refusal.
    static func markEstablished(_ state: AtomicSocketState) {
        state.replace(clearing: .connecting, setting: .connected)
    }

    /// The connection is over (CLOSED, or TIME_WAIT with its record kept): the block leaves the
    /// tables, the socket becomes disconnected and every waiter re-checks.
    private func finish(_ block: TCPControlBlock, releaseTuple: Bool) {
        let socket = block.socket
        if let key = block.key {
            if connections[key] === block { connections[key] = nil }
            if releaseTuple { tcp.tables.release(key) }
        }
        if let parent = block.parent {
            block.parent = nil
            parent.removeIncomplete(block)
        }
        block.callout?.cancel()
        block.callout = nil
        if let connection = block.connection { statistics.outOfOrderBytes -= connection.outOfOrder.byteCount }
        block.connection = nil
        block.detachedQueue.removeAll()
        socket.state.replace(
            clearing: [.connected, .connecting], setting: [.disconnected, .cantReceiveMore, .cantSendMore])
        socket.receiveBuffer.wake()
        socket.sendBuffer.wake()
        if socket.state.contains(.noFileReference) {
            // Nobody reads it any more: free the buffered bytes now.
            let buffer = socket.sendBuffer
            buffer.lock.withLock {
                buffer.chain.removeAll()
                buffer.byteCount.store(0, ordering: .sequentiallyConsistent)
            }
        }
        block.hold = nil
    }

    // MARK: Stack shutdown

    func abortEveryConnection() {
        for block in Array(connections.values) {
            event(block) { connection, time, actions in connection.abort(now: time, into: &actions) }
        }
        inet.transportFlush()
    }

    func releaseEverything() {
        for block in connections.values {
            // Not cancelled (that is the owner's to do): the thread no longer runs its timers.
            block.callout = nil
            block.connection = nil
            block.parent = nil
            block.detachedQueue.removeAll()
            block.socket.state.replace(
                clearing: [.connected, .connecting], setting: [.disconnected, .cantReceiveMore, .cantSendMore])
            block.hold = nil
        }
        connections.removeAll()
        timeWaits.removeAll()
        statistics.outOfOrderBytes = 0
    }

    // MARK: TIME_WAIT

    /// Whether connect may end this thread's TIME_WAIT record for `key` and take its tuple
    /// (called under the tables' lock, on this thread): only a record that used timestamps, so
    /// the new connection's are newer and the peer's PAWS check keeps old duplicates out.
    func mayReclaimTimeWait(_ key: TCPConnectionKey) -> Bool {
        thread.isCurrent && timeWaits[key]?.recentTimestamp != nil
    }

    private func expireTimeWaits() {
        let time = now
        var next: Int64?
        for (key, record) in timeWaits {
            if record.deadline <= time {
                timeWaits[key] = nil
                tcp.tables.release(key)
            } else {
                next = Swift.min(next ?? record.deadline, record.deadline)
            }
        }
        if let next { timeWaitCallout.arm(at: next) }
    }

    // MARK: Input

    package func input(_ datagram: InetTransportDatagram) {
        let packet: TCPPacket
        do {
            packet = try TCPHeader.parseSegment(
                datagram.payload, source: datagram.source, destination: datagram.destination,
                verifyChecksum: !datagram.checksumsSkipped)
        } catch {
            statistics.malformed += 1
            return
        }
        statistics.segmentsReceived += 1
        let header = packet.header
        if header.flags.contains(.rst) { statistics.resetsReceived += 1 }
        if datagram.isBroadcast { return }
        let key = TCPConnectionKey(
            localAddress: .ipv4(datagram.destination), localPort: header.destinationPort,
            remoteAddress: .ipv4(datagram.source), remotePort: header.sourcePort)
        let start = datagram.payloadStart + packet.payloadRange.lowerBound
        let end = datagram.payloadStart + packet.payloadRange.upperBound
        // The chunk by an unretained reference (the datagram keeps it alive): retained from the
        // datagram as is, the optimizer copied the whole datagram (through its value witness).
        let chunk = Unmanaged.passUnretained(datagram.chunk)
        var joined: ByteSlice?
        if datagram.isGathered {
            if start == end, let block = connections[key] {
                block.segmentsIn &+= 1
                statistics.gatheredSegmentsReceived += 1
                receiveGathered(header, datagram.gathered, ecn: datagram.ecn, block)
                return
            }
            // Not for a connection's data path: the usual way, from one contiguous copy.
            joined = ByteSlice(chunk: chunk.takeUnretainedValue(), start: start, end: end).joined(
                with: datagram.gathered)
        }
        if let block = connections[key] {
            block.segmentsIn &+= 1
            let marked = datagram.ecn == TCPExplicitCongestion.congestionExperiencedCodepoint
            if let joined {
                receiveJoined(header, payload: joined, congestionExperienced: marked, block)
                return
            }
            event(block) { connection, time, actions in
                // The payload made where it is used: made before, it was retained once more for
                // this closure.
                let payload = ByteSlice(chunk: chunk.takeUnretainedValue(), start: start, end: end)
                connection.receive(header, payload: payload, congestionExperienced: marked, now: time, into: &actions)
            }
            return
        }
        let payload = joined ?? ByteSlice(chunk: chunk.takeUnretainedValue(), start: start, end: end)
        var reusing: TCPTimeWait?
        if let record = timeWaits[key] {
            if record.deadline > now && !record.admits(header) {
                if !header.flags.contains(.rst) {
                    // A retransmitted FIN (or anything else): ACK it again.
                    transmitBare(
                        TCPHeader(
                            sourcePort: key.localPort, destinationPort: key.remotePort,
                            sequenceNumber: record.sendNext.rawValue, acknowledgmentNumber: record.receiveNext.rawValue,
                            flags: .ack, window: 0),
                        from: datagram.destination, to: datagram.source)
                }
                return
            }
            timeWaits[key] = nil
            reusing = record
        }
        listenInput(header, payload: payload, key: key, datagram: datagram, reusing: reusing)
    }

    /// A segment for `block`'s connection whose gathered payload was joined into one slice.
    private func receiveJoined(
        _ header: TCPHeader, payload: ByteSlice, congestionExperienced: Bool, _ block: TCPControlBlock
    ) {
        event(block) { connection, time, actions in
            connection.receive(
                header, payload: payload, congestionExperienced: congestionExperienced, now: time, into: &actions)
        }
    }

    /// A segment whose payload came as slices of the sender's send buffer (loopback's
    /// scatter-gather): the connection takes each slice in turn as a segment of its own, with the
    /// sequence number moved on and PSH and FIN kept for the last, so each slice goes to the
    /// receive buffer as it is, in one event.
    private func receiveGathered(_ header: TCPHeader, _ pieces: [ByteSlice], ecn: UInt8, _ block: TCPControlBlock) {
        let marked = ecn == TCPExplicitCongestion.congestionExperiencedCodepoint
        event(block) { connection, time, actions in
            var piece = header
            piece.flags.remove([.fin, .psh])
            var sequence = header.sequenceNumber
            for (index, slice) in pieces.enumerated() {
                if index == pieces.count - 1 { piece.flags = header.flags }
                piece.sequenceNumber = sequence
                connection.receive(
                    piece, payload: slice, congestionExperienced: marked, now: time, into: &actions)
                if actions.closed || actions.enteredTimeWait { break }
                sequence = sequence &+ UInt32(truncatingIfNeeded: slice.count)
            }
        }
    }

    /// An ICMP error about a segment we sent: handed to the thread that owns its connection
    /// (the quoted tuple's), as an event there.
    package func controlInput(_ message: ICMPMessage, quote: ICMPQuotedDatagram, transport: UnsafeRawBufferPointer) {
        let error: TCPError
        switch message.transportError {
        case .connectionRefused?: error = .connectionRefused
        case .networkUnreachable?: error = .networkUnreachable
        case .hostUnreachable?: error = .hostUnreachable
        default: return
        }
        guard let sequence = try? transport.networkUInt32(at: 4) else { return }
        let key = TCPConnectionKey(
            localAddress: .ipv4(quote.header.source), localPort: quote.sourcePort,
            remoteAddress: .ipv4(quote.header.destination), remotePort: quote.destinationPort)
        let index = tcp.inet.threadIndex(
            source: quote.header.destination, destination: quote.header.source, sourcePort: quote.destinationPort,
            destinationPort: quote.sourcePort)
        let owner = tcp.threads[index % tcp.threads.count]
        if owner === self {
            icmpErrorArrived(error, key: key, sequence: sequence)
        } else {
            _ = owner.thread.send { owner.icmpErrorArrived(error, key: key, sequence: sequence) }
        }
    }

    private func icmpErrorArrived(_ error: TCPError, key: TCPConnectionKey, sequence: UInt32) {
        guard let block = connections[key] else {
            statistics.icmpErrorsUnmatched += 1
            return
        }
        statistics.icmpErrors += 1
        event(block) { connection, time, actions in
            connection.icmpError(error, sequence: SequenceNumber(sequence), now: time, into: &actions)
        }
    }

    private func listenInput(
        _ header: TCPHeader, payload: ByteSlice, key: TCPConnectionKey, datagram: InetTransportDatagram,
        reusing: TCPTimeWait?
    ) {
        let payloadLength = payload.count
        guard let listener = tcp.tables.listener(port: header.destinationPort, address: datagram.destination),
            !listener.socket.state.contains(.noFileReference)
        else {
            if reusing != nil { tcp.tables.release(key) }
            if let reset = TCPReset.forClosedPort(header, payloadLength: payloadLength) {
                transmitBare(reset, from: datagram.destination, to: datagram.source)
            }
            return
        }
        switch TCPListener.decide(header, payloadLength: payloadLength) {
        case .ignore:
            if reusing != nil { tcp.tables.release(key) }
        case .reset(let reset):
            if reusing != nil { tcp.tables.release(key) }
            if listener.mayHoldCookie(now: now) {
                if let decoded = tcp.synCookies.validate(header, on: key, now: now) {
                    statistics.cookiesValidated += 1
                    acceptCookie(header, payload: payload, decoded: decoded, key: key, listener: listener, datagram)
                    return
                }
                statistics.cookiesRejected += 1
            }
            transmitBare(reset, from: datagram.destination, to: datagram.source)
        case .accept:
            guard listener.acceptsMore else {
                // Accept queue full: drop the SYN, as Linux does; the peer retries.
                statistics.listenOverflows += 1
                if reusing != nil { tcp.tables.release(key) }
                return
            }
            if tcp.synCookiesEnabled.load(ordering: .relaxed), listener.incompleteIsFull {
                if reusing != nil { tcp.tables.release(key) }
                sendCookie(answering: header, key: key, listener: listener, datagram)
                return
            }
            guard reusing != nil || tcp.tables.reserve(key) else { return }
            tcp.acceptChild(
                of: listener, syn: header, key: key, source: datagram.source, destination: datagram.destination,
                on: self, reusing: reusing)
        }
    }

    /// Answers a SYN with a cookie SYN-ACK: nothing is kept (SYN flood defence).
    private func sendCookie(
        answering syn: TCPHeader, key: TCPConnectionKey, listener: TCPListenState, _ datagram: InetTransportDatagram
    ) {
        guard let hop = inet.transportRoute(to: datagram.source, from: datagram.destination) else { return }
        let (settings, mtu) = tcp.settings(listener.block, hop: hop)
        let time = now
        let cookie = tcp.synCookies.sequenceNumber(answering: syn, on: key, now: time)
        var actions = withActions { actions in
            TCPConnection.cookieSYNACK(
                answering: syn, cookie: cookie, configuration: settings, routeMTU: mtu, now: time, into: &actions)
        }
        if let answer = actions.segments.last {
            listener.lastCookieTime.store(time, ordering: .relaxed)
            statistics.cookiesSent += 1
            transmitBare(answer.header, from: datagram.destination, to: datagram.source)
        }
        actions.clear()
        spareActions.append(actions)
    }

    /// The handshake's ACK proved a cookie: the child is made from it, established by this ACK
    /// (and given any data it carries).
    private func acceptCookie(
        _ ack: TCPHeader, payload: ByteSlice, decoded: TCPSYNCookies.Decoded, key: TCPConnectionKey,
        listener: TCPListenState, _ datagram: InetTransportDatagram
    ) {
        guard listener.acceptsMore else {
            statistics.listenOverflows += 1
            return
        }
        guard tcp.tables.reserve(key) else { return }
        tcp.acceptChild(
            of: listener, syn: ack, key: key, source: datagram.source, destination: datagram.destination, on: self,
            reusing: nil, cookie: (ack, decoded))
        guard let block = connections[key] else { return }
        block.segmentsIn &+= 1
        event(block) { connection, time, actions in
            connection.receive(ack, payload: payload, now: time, into: &actions)
        }
    }

    /// Installs a block that moved here (connect's migration) or was born here.
    func adopt(_ block: TCPControlBlock) {
        block.home = self
        if let key = block.key { connections[key] = block }
    }

    // MARK: Requests run here

    /// A spare collector for an event that does not go through `event` (a child's SYN-ACK),
    /// given back emptied by `applyBirth` (or the cookie answer) for the next.
    func withActions(_ body: (inout TCPActions<ByteSlice>) -> Void) -> TCPActions<ByteSlice> {
        var actions = spareActions.popLast() ?? TCPActions()
        body(&actions)
        return actions
    }

    func applyBirth(_ actions: inout TCPActions<ByteSlice>, to block: TCPControlBlock) {
        apply(&actions, to: block, timeWait: nil)
        rearm(block, deadline: block.connection?.nextDeadline)
        actions.clear()
        spareActions.append(actions)
    }
}

extension TCPConnection {
    /// Runs `body` on this value in place (through optional chaining on its owner's property).
    fileprivate mutating func update(_ body: (inout TCPConnection) -> Void) { body(&self) }
}
