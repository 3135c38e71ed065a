import NetMPRuntime

/// The data path: reads, writes, accept and connect. Each is an *attempt* that does what it can
/// now and otherwise names the condition to wait for; the blocking and `async` faces only differ
/// in how they wait.
extension Socket {
    /// What an attempt that could not finish waits for.
    package struct Blocked {
        package let buffer: SocketBuffer
        package let condition: WaitCondition
    }

    // MARK: Stream receive

    /// How many bytes a stream read waits for before it takes any. A wait-all read takes what
    /// is there as it goes and waits, with the buffer empty, for half of it: a writer blocked
    /// for room (a quarter of the buffer) has then always made enough progress to wake it, so
    /// the two can never wait for each other.
    @inline(__always) private func streamReadNeed(want: Int, waitAll: Bool) -> Int {
        let highWater = Swift.max(1, receiveBuffer.highWater.load(ordering: .relaxed))
        if waitAll { return Swift.min(want, Swift.max(1, highWater / 2)) }
        // Never wait for more than the buffer can hold (a low-water mark above it, or a buffer
        // shrunk meanwhile, would wait forever).
        return Swift.min(receiveBuffer.receiveLowWater, want, highWater)
    }

    /// Without taking anything: nil when a stream read of up to `want` bytes would find data
    /// (or its end, or an error) now, else what it waits for. Lets a caller wait before it
    /// allocates, then size its array by what is there.
    package func streamReadBlocked(flags: MessageFlags, want: Int) -> Blocked? {
        ProtocolThread.callerWaited()  // a reading thread (see `attemptStreamReceive`)
        let waitAll = flags.contains(.waitAll) && !flags.contains(.peek)
        let needed = streamReadNeed(want: Swift.max(1, want), waitAll: waitAll)
        let held = receiveBuffer.byteCount.load(ordering: .sequentiallyConsistent)
        // Wait-all takes what is there as it goes.
        if held >= needed || (waitAll && held > 0) { return nil }
        let now = state.value
        if now.containsAny([.cantReceiveMore, .noFileReference]) || hasError { return nil }
        if !now.containsAny([.connected, .connecting, .disconnected]) { return nil }
        return Blocked(buffer: receiveBuffer, condition: .readable(minimum: needed))
    }

    /// Reads stream bytes into `destination`, adding to `copied`. Returns nil when the read is
    /// finished (return `copied`), else what to wait for. One call takes everything there is,
    /// up to `destination`, however many slices it spans.
    package func attemptStreamReceive(
        into destination: UnsafeMutableRawBufferPointer, flags: MessageFlags, copied: inout Int
    ) throws(NetError) -> Blocked? {
        // A thread that reads answers or requests, it does not stream: its next post may run
        // as the owner (a reply that came before the read waited counts as well).
        ProtocolThread.callerWaited()
        // The buffer passed as an argument is borrowed from this socket; a local copy of it
        // was a retain and a release per read.
        guard
            let condition = try attemptStreamReceive(
                from: receiveBuffer, into: destination, flags: flags, copied: &copied)
        else { return nil }
        return Blocked(buffer: receiveBuffer, condition: condition)
    }

    /// `wait(for:on:deadline:)` on `receiveBuffer`, passed from here without a retain.
    package func waitToRead(for condition: WaitCondition, deadline: Int64) throws(NetError) {
        try wait(for: condition, on: receiveBuffer, deadline: deadline)
    }

    /// `attemptStreamReceive`, answering only what to wait for: the wait is on
    /// `receiveBuffer` (a `Blocked` holding it was a retain and a release of the buffer per
    /// read that waits, on the line the writer's deliveries write).
    package func attemptStreamRead(
        into destination: UnsafeMutableRawBufferPointer, flags: MessageFlags, copied: inout Int
    ) throws(NetError) -> WaitCondition? {
        ProtocolThread.callerWaited()
        return try attemptStreamReceive(from: receiveBuffer, into: destination, flags: flags, copied: &copied)
    }

    private func attemptStreamReceive(
        from buffer: SocketBuffer, into destination: UnsafeMutableRawBufferPointer, flags: MessageFlags,
        copied: inout Int
    ) throws(NetError) -> WaitCondition? {
        let peek = flags.contains(.peek)
        let waitAll = flags.contains(.waitAll) && !peek
        while true {
            let want = destination.count - copied
            if want == 0 { return nil }
            let needed = streamReadNeed(want: want, waitAll: waitAll)
            let now = state.value
            let ending = now.contains(.cantReceiveMore) || hasError
            // An empty buffer is seen without its lock (the count is written under it with the
            // bytes): a read that will wait takes no lock, whose line the writer is about to
            // take. Bytes that land just after this are what the wait then finds.
            let mayHold = buffer.byteCount.load(ordering: .sequentiallyConsistent) > 0
            if mayHold { buffer.lock.lock() }
            let available = mayHold ? buffer.chain.count : 0
            if available > 0 && (waitAll || available >= needed || ending || copied > 0) {
                let target = UnsafeMutableRawBufferPointer(rebasing: destination[copied...])
                if peek {
                    copied += peekAndCopyOutLocked(buffer, into: target)  // unlocks
                    return nil
                }
                let (n, drained) = removeAndCopyOutLocked(buffer, into: target)  // unlocks
                copied += n
                proto.received(self, count: n)
                // Done when full; a plain read also when it took all there was.
                if copied == destination.count || (drained && !waitAll) { return nil }
                continue
            }
            if mayHold { buffer.lock.unlock() }
            if copied > 0 && !waitAll { return nil }
            if let error = takeError() {
                if copied > 0 {
                    setError(error)
                    return nil
                }
                throw error
            }
            if now.contains(.noFileReference) { throw .badDescriptor }
            if now.contains(.cantReceiveMore) { return nil }
            if !now.containsAny([.connected, .connecting, .disconnected]) { throw .notConnected }
            return .readable(minimum: needed)
        }
    }

    /// With `buffer.lock` held: removes up to `target.count` bytes, drops the lock, then copies
    /// them out and recycles the chunks. A partly read head is trimmed in place.
    /// Returns the bytes taken and whether that emptied the buffer.
    private func removeAndCopyOutLocked(_ buffer: SocketBuffer, into target: UnsafeMutableRawBufferPointer) -> (
        Int, drained: Bool
    ) {
        var wakes = WakeList()
        var drained = false
        // Freed after the lock is dropped.
        var idleStorage: ContiguousArray<ByteSlice?>?
        let keepsTailRoom = buffer.keepsTailRoom
        let total = copyOutsideLock(buffer, into: target, recycling: true) { remaining in
            keepsTailRoom
                ? buffer.chain.popFrontKeepingTailRoom(maxBytes: remaining, tailCapacity: ChunkPool.sizeClasses[0])
                : buffer.chain.popFront(maxBytes: remaining)
        } whileLocked: {
            let left = buffer.chain.count
            drained = left == 0
            if drained { idleStorage = buffer.chain.takeIdleStorage() }
            buffer.byteCount.store(left, ordering: .sequentiallyConsistent)
            buffer.collectSatisfiedLocked(into: &wakes)
        }
        wakes.publishAll()
        withExtendedLifetime(idleStorage) {}
        return (total, drained)
    }

    /// With `buffer.lock` held: takes references to the first bytes, drops the lock, then
    /// copies them out. The bytes of a filled chunk never change while referenced, so the copy
    /// needs no lock.
    private func peekAndCopyOutLocked(_ buffer: SocketBuffer, into target: UnsafeMutableRawBufferPointer) -> Int {
        let slices = buffer.chain.slices
        var next = 0
        return copyOutsideLock(buffer, into: target, recycling: false) { remaining in
            guard next < slices.count else { return nil }
            var slice = slices[next]
            next += 1
            slice.end = slice.start + Swift.min(slice.count, remaining)
            return slice
        } whileLocked: {
        }
    }

    /// The shared shape of both: with `buffer.lock` held, gathers up to 8 slices (`take` gets
    /// the bytes still wanted) on the stack, runs `whileLocked`, unlocks, then copies the
    /// slices into `target` (returning spent chunks to the pool when `recycling`).
    private func copyOutsideLock(
        _ buffer: SocketBuffer, into target: UnsafeMutableRawBufferPointer, recycling: Bool,
        take: (Int) -> ByteSlice?, whileLocked: () -> Void
    ) -> Int {
        withUnsafeTemporaryAllocation(of: ByteSlice.self, capacity: 8) { taken -> Int in
            guard let slots = taken.baseAddress, let out = target.baseAddress else {
                buffer.lock.unlock()
                return 0
            }
            var sliceCount = 0
            var total = 0
            while sliceCount < 8, total < target.count, let slice = take(target.count - total) {
                (slots + sliceCount).initialize(to: slice)
                sliceCount += 1
                total += slice.count
            }
            whileLocked()
            buffer.lock.unlock()
            var offset = 0
            for index in 0..<sliceCount {
                let slice = (slots + index).move()
                (out + offset).copyMemory(from: slice.chunk.base + slice.start, byteCount: slice.count)
                offset += slice.count
                if recycling {
                    // Moved into the pool: a closure capturing the slice would hold the chunk
                    // too, and the pool takes only chunks nobody else references.
                    var chunk: ByteChunk? = slice.chunk
                    _ = consume slice
                    ChunkPool.withShared { $0.recycle(&chunk) }
                }
            }
            return total
        }
    }

    // MARK: Datagram receive

    /// Takes (or with `.peek` looks at) the next datagram into `destination`; nil when there is
    /// none yet (wait for `datagramReadable`).
    package func attemptDatagramReceive(into destination: UnsafeMutableRawBufferPointer, flags: MessageFlags)
        throws(NetError) -> DatagramReceipt?
    {
        try attemptDatagramReceive(flags: flags) { data in ((), data.copyOut(into: destination)) }?.receipt
    }

    /// What a datagram read that found nothing waits for.
    package var datagramReadable: Blocked { Blocked(buffer: receiveBuffer, condition: .readable(minimum: 1)) }

    /// Takes (or with `.peek` looks at) the next datagram; `copyOut` runs after the buffer's
    /// lock is dropped, so it may allocate a destination sized by the datagram, and returns
    /// what it made with the bytes it copied. Nil when there is none yet (wait for
    /// `datagramReadable`): not a `Result` carrying the wait, which the compiler destroys
    /// through value witnesses on every datagram.
    package func attemptDatagramReceive<Output>(
        flags: MessageFlags, copyOut: (BufferChain) -> (Output, Int)
    ) throws(NetError) -> (output: Output, receipt: DatagramReceipt)? {
        ProtocolThread.callerWaited()  // as for a stream read
        let buffer = receiveBuffer
        buffer.lock.lock()
        if flags.contains(.peek), let first = buffer.records.first {
            // The record's chunks are shared, not copied; the bytes are copied after unlocking.
            buffer.lock.unlock()
            let (output, n) = copyOut(first.data)
            let receipt = DatagramReceipt(
                count: n, source: first.source, flags: first.data.count > n ? .truncated : [])
            return (output, receipt)
        }
        if var record = buffer.records.popFirst() {
            buffer.recordCount.subtract(1, ordering: .sequentiallyConsistent)
            buffer.byteCount.subtract(record.charge, ordering: .sequentiallyConsistent)
            buffer.unlockWakingSatisfied()
            let (output, n) = copyOut(record.data)
            let length = record.data.count
            // The record is the chunks' last user now: they go back to the pool.
            record.data.recycleAll()
            proto.received(self, count: length)
            let receipt = DatagramReceipt(count: n, source: record.source, flags: length > n ? .truncated : [])
            return (output, receipt)
        }
        buffer.lock.unlock()
        if let error = takeError() { throw error }
        let now = state.value
        if now.contains(.noFileReference) { throw .badDescriptor }
        if now.contains(.cantReceiveMore) {
            let (output, _) = copyOut(BufferChain())
            return (output, DatagramReceipt(count: 0, source: .unnamed, flags: []))
        }
        return nil
    }

    /// Carries `Blocked` through a `Result`.
    package struct BlockedError: Error {
        package let blocked: Blocked
    }

    // MARK: Send

    /// Sends from `bytes[sent...]`, adding to `sent`. Returns nil when done, else what to wait
    /// for. A datagram goes whole or not at all.
    package func attemptSend(_ bytes: UnsafeRawBufferPointer, to address: SocketAddress?, sent: inout Int)
        throws(NetError) -> Blocked?
    {
        repeat {
            if hasError {
                // What was sent stays sent: report the count and leave the error in its slot for
                // the next call (not taken and put back: a reader could miss it in between).
                if sent > 0 { return nil }
                if let error = takeError() { throw error }
            }
            let rest = UnsafeRawBufferPointer(rebasing: bytes[sent...])
            let progress: SendProgress
            do {
                progress = try proto.send(self, rest, to: address)
            } catch {
                // What was sent stays sent: report the count; the error comes with the next call.
                if sent > 0 { return nil }
                // A send racing its own socket's close finds the links already undone: it is
                // the close the caller must hear about.
                if state.contains(.noFileReference) { throw .badDescriptor }
                throw error
            }
            switch progress {
            case .sent(let n):
                sent += n
                if type == .datagram { return nil }
            case .mustWait(let buffer, let condition):
                return Blocked(buffer: buffer, condition: condition)
            }
        } while sent < bytes.count
        return nil
    }

    // MARK: Accept and connect

    /// Takes a connection from the complete queue (the caller then runs `finishAccept`), or
    /// names the wait.
    package func attemptAccept() throws(NetError) -> Result<Socket, BlockedError> {
        guard type == .stream else { throw .notSupported }
        let now = state.value
        if now.contains(.noFileReference) { throw .badDescriptor }
        guard now.contains(.listening), let queue = listenQueue else { throw .invalidArgument }
        if let child = queue.takeComplete() { return .success(child) }
        if let error = takeError() { throw error }
        return .failure(BlockedError(blocked: Blocked(buffer: receiveBuffer, condition: .acceptable)))
    }

    /// The protocol's accept request for a child taken off the queue; a child whose request
    /// fails is closed, so its peer is not left waiting.
    package func finishAccept(_ child: Socket) throws(NetError) {
        guard child.proto.acceptRunsOnOwner else { return }
        do {
            try child.request { () throws(NetError) in try child.proto.accept(child) }
        } catch {
            child.close()
            throw error
        }
    }

    package func finishAcceptAsync(_ child: Socket) async throws(NetError) {
        guard child.proto.acceptRunsOnOwner else { return }
        do {
            try await child.owner.callAsync { () throws(NetError) in try child.proto.accept(child) }
        } catch {
            child.close()
            throw error
        }
    }

    /// Checks that a connect may start now.
    func checkConnect() throws(NetError) {
        try checkOpen()
        let now = state.value
        if now.contains(.listening) { throw .invalidArgument }
        if now.contains(.connecting) { throw .alreadyInProgress }
        if now.contains(.connected) && type == .stream { throw .alreadyConnected }
    }

    /// What a connect that was started waits for, if it is still in progress.
    var connectInProgress: Blocked? {
        get throws(NetError) {
            if state.contains(.connecting) { return Blocked(buffer: receiveBuffer, condition: .connected) }
            // A protocol thread may have failed the connect (a RST) before the caller looked.
            if !state.contains(.connected), let error = takeError() { throw error }
            return nil
        }
    }

    /// Starts a connect; returns what to wait for if it is still in progress.
    package func startConnect(to address: SocketAddress) throws(NetError) -> Blocked? {
        try checkConnect()
        try request { [self] () throws(NetError) in try proto.connect(self, to: address) }
        return try connectInProgress
    }

    /// Starts a connect without blocking the calling task's thread.
    package func startConnectAsync(to address: SocketAddress) async throws(NetError) -> Blocked? {
        try checkConnect()
        try await owner.callAsync { [self] () throws(NetError) in try proto.connect(self, to: address) }
        return try connectInProgress
    }

    /// After a connect wait: its result.
    package func finishConnect() throws(NetError) {
        if let error = takeError() { throw error }
        if state.contains(.noFileReference) { throw .badDescriptor }
        if !state.contains(.connected) { throw .connectionRefused }
    }
}
