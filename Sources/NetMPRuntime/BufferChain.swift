/// A chain of slices over reference-counted chunks: the byte queue of a socket buffer and the
/// body of a packet (an mbuf chain).
///
/// Removing from the front trims a partly consumed head in place; slicing shares chunks; only
/// appends of new bytes copy.
public struct BufferChain: @unchecked Sendable {
    package var slices = RingQueue<ByteSlice>()
    public private(set) var count = 0

    public init() {}

    /// A chain holding a copy of `bytes`.
    public init(copying bytes: UnsafeRawBufferPointer, pool: ChunkPool = .shared, headroom: Int = 0) {
        appendInNewChunks(copying: bytes, from: 0, pool: pool, headroom: headroom)
    }

    /// A chain holding a copy of `bytes` in chunks of the shared pool, reached here rather than
    /// passed by the caller (which retains and releases it around the call).
    public init(copyingIntoSharedPool bytes: UnsafeRawBufferPointer) {
        appendInNewChunks(copying: bytes, from: 0, pool: ChunkPool.shared, headroom: 0)
    }

    public init(_ bytes: [UInt8], pool: ChunkPool = .shared) {
        bytes.withUnsafeBytes { append(copying: $0, pool: pool) }
    }

    public var isEmpty: Bool { count == 0 }

    public var sliceCount: Int { slices.count }

    // MARK: Adding

    /// Appends a slice without copying its bytes (taken over: a caller's last use of it moves it
    /// in, with no retain).
    public mutating func append(_ slice: consuming ByteSlice) {
        let length = slice.count
        guard length > 0 else { return }
        slices.append(slice)
        count += length
    }

    /// Appends another chain without copying.
    public mutating func append(_ other: BufferChain) {
        for index in 0..<other.slices.count { append(other.slices[index]) }
    }

    /// Copies as much of `bytes` as fits into the tail chunk's free room, when this chain is the
    /// only user of that chunk. Returns the bytes taken. Never allocates.
    public mutating func appendIntoTailRoom(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard !bytes.isEmpty else { return 0 }
        let taken =
            slices.withLast { tail -> Int in
                guard tail.endsAtFill, isKnownUniquelyReferenced(&tail.chunk) else { return 0 }
                let n = Swift.min(tail.chunk.room, bytes.count)
                guard n > 0, let source = bytes.baseAddress else { return 0 }
                (tail.chunk.base + tail.end).copyMemory(from: source, byteCount: n)
                tail.chunk.filled += n
                tail.end += n
                return n
            } ?? 0
        count += taken
        return taken
    }

    /// Appends a copy of `bytes`, filling the tail chunk's room first, then new chunks.
    public mutating func append(copying bytes: UnsafeRawBufferPointer, pool: ChunkPool = .shared, headroom: Int = 0) {
        appendInNewChunks(copying: bytes, from: appendIntoTailRoom(bytes), pool: pool, headroom: headroom)
    }

    /// Appends a copy of `bytes[first...]` in new chunks (a new chain skips the tail's room).
    private mutating func appendInNewChunks(
        copying bytes: UnsafeRawBufferPointer, from first: Int, pool: ChunkPool, headroom: Int
    ) {
        var offset = first
        while offset < bytes.count {
            let remaining = bytes.count - offset
            let chunk = pool.take(
                atLeast: Swift.min(remaining, ChunkPool.sizeClasses[ChunkPool.sizeClasses.count - 1]),
                headroom: headroom)
            let n = Swift.min(chunk.room, remaining)
            guard let source = bytes.baseAddress else { return }
            (chunk.base + chunk.filled).copyMemory(from: source + offset, byteCount: n)
            let start = chunk.filled
            chunk.filled += n
            append(ByteSlice(chunk: chunk, start: start, end: start + n))
            offset += n
        }
    }

    /// Prepends a copy of `bytes` (a header), using the head chunk's headroom when this chain
    /// is its only user, else a new chunk.
    public mutating func prepend(copying bytes: UnsafeRawBufferPointer, pool: ChunkPool = .shared) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        let n = bytes.count
        let usedHeadroom =
            slices.withFirst { head -> Bool in
                guard head.start >= n, isKnownUniquelyReferenced(&head.chunk) else { return false }
                head.start -= n
                (head.chunk.base + head.start).copyMemory(from: source, byteCount: n)
                return true
            } ?? false
        if usedHeadroom {
            count += n
            return
        }
        let chunk = pool.take(atLeast: n)
        (chunk.base + chunk.filled).copyMemory(from: source, byteCount: n)
        let start = chunk.filled
        chunk.filled += n
        slices.prepend(ByteSlice(chunk: chunk, start: start, end: start + n))
        count += n
    }

    // MARK: Removing

    /// Drops `n` bytes from the front (all if fewer), trimming the head in place.
    public mutating func trimFront(_ n: Int) {
        ChunkPool.withShared { trimFront(n, pool: $0) }
    }

    /// Drops `n` bytes from the front, giving emptied chunks to `pool` (nil: to nobody).
    public mutating func trimFront(_ n: Int, pool: ChunkPool?) {
        var remaining = Swift.min(Swift.max(0, n), count)
        // Only the head's length is kept across the pop: a copy of the slice would hold its
        // chunk, and the pool recycles only chunks nobody else references.
        while remaining > 0, let headCount = slices.first?.count {
            if headCount <= remaining {
                remaining -= headCount
                count -= headCount
                // `pool?.` on the borrowed argument: binding it with `if let` was a retain. The
                // slice is consumed, or its copy would keep the chunk from being recycled.
                if let slice = slices.popFirst() { pool?.recycle(consume slice) }
            } else {
                _ = slices.withFirst { $0.start += remaining }
                count -= remaining
                remaining = 0
            }
        }
    }

    /// Empties the chain, giving its chunks back to `pool` (those nobody else references): for
    /// the chain's last user, such as a datagram just read.
    public mutating func recycleAll(to pool: ChunkPool) {
        while let slice = slices.popFirst() { pool.recycle(slice) }
        count = 0
    }

    /// `recycleAll(to: .shared)`, the shared pool reached here rather than passed by the caller
    /// (which retains and releases it around the call).
    public mutating func recycleAll() {
        ChunkPool.withShared { pool in
            while let slice = slices.popFirst() { pool.recycle(slice) }
        }
        count = 0
    }

    /// Drops `n` bytes from the back (all if fewer).
    public mutating func trimBack(_ n: Int) {
        var remaining = Swift.min(Swift.max(0, n), count)
        while remaining > 0, let tail = slices.last {
            if tail.count <= remaining {
                remaining -= tail.count
                count -= tail.count
                slices.popLast()
            } else {
                _ = slices.withLast { $0.end -= remaining }
                count -= remaining
                remaining = 0
            }
        }
    }

    /// Removes and returns up to `maxBytes` from the front as one slice: the whole head slice if
    /// it fits, else a slice sharing the head chunk while the head is trimmed in place (no
    /// allocation).
    public mutating func popFront(maxBytes: Int) -> ByteSlice? {
        guard maxBytes > 0, let head = slices.first else { return nil }
        if head.count <= maxBytes {
            count -= head.count
            return slices.popFirst()
        }
        let taken = ByteSlice(chunk: head.chunk, start: head.start, end: head.start + maxBytes)
        _ = slices.withFirst { $0.start += maxBytes }
        count -= maxBytes
        return taken
    }

    /// As `popFront`, except that a last slice taken whole stays behind emptied (start = end)
    /// when its chunk, of at most `tailCapacity` bytes, has room after it: the next small append
    /// copies into that room (`appendIntoTailRoom`) rather than taking a chunk from the pool,
    /// and the reader does not give this one back. (A ping-pong then reuses one chunk.) An
    /// emptied slice with bytes after it is removed and returned, empty, for its chunk to be
    /// recycled outside the caller's lock; one that is last is left and nil returned.
    public mutating func popFrontKeepingTailRoom(maxBytes: Int, tailCapacity: Int) -> ByteSlice? {
        guard maxBytes > 0, let head = slices.first else { return nil }
        if head.count == 0 {
            return slices.count > 1 ? slices.popFirst() : nil
        }
        guard head.count <= maxBytes, slices.count == 1, head.endsAtFill, head.chunk.capacity <= tailCapacity,
            head.chunk.room > 0
        else { return popFront(maxBytes: maxBytes) }
        count -= head.count
        _ = slices.withFirst { $0.start = $0.end }
        return head
    }

    /// Takes the slice ring's storage once the chain is empty, if it grew past a few slices,
    /// for the caller to drop after releasing its lock: a socket buffer that carried a bulk
    /// transfer (hundreds of slices) holds nothing once idle.
    public mutating func takeIdleStorage() -> ContiguousArray<ByteSlice?>? {
        slices.takeStorageIfEmpty(keeping: 4)
    }

    public mutating func removeAll() {
        slices.removeAll()
        count = 0
    }

    // MARK: Reading

    /// Copies up to `destination.count` bytes starting at `offset` without removing them;
    /// returns the bytes copied.
    @discardableResult
    public func copyOut(from offset: Int = 0, into destination: UnsafeMutableRawBufferPointer) -> Int {
        guard offset >= 0, offset < count, let target = destination.baseAddress else { return 0 }
        var skip = offset
        var written = 0
        for index in 0..<slices.count {
            let slice = slices[index]
            if skip >= slice.count {
                skip -= slice.count
                continue
            }
            let n = Swift.min(slice.count - skip, destination.count - written)
            (target + written).copyMemory(from: slice.chunk.base + slice.start + skip, byteCount: n)
            written += n
            skip = 0
            if written == destination.count { break }
        }
        return written
    }

    /// A chain sharing the bytes in `offset ..< offset + length` (zero-copy).
    public func slice(from offset: Int, length: Int) -> BufferChain {
        var result = BufferChain()
        guard offset >= 0, length > 0, offset < count else { return result }
        var skip = offset
        var remaining = Swift.min(length, count - offset)
        for index in 0..<slices.count where remaining > 0 {
            let slice = slices[index]
            if skip >= slice.count {
                skip -= slice.count
                continue
            }
            let n = Swift.min(slice.count - skip, remaining)
            result.append(ByteSlice(chunk: slice.chunk, start: slice.start + skip, end: slice.start + skip + n))
            remaining -= n
            skip = 0
        }
        return result
    }

    /// The bytes as an array (a copy; for tests and small payloads).
    public var bytes: [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            initialized = copyOut(into: UnsafeMutableRawBufferPointer(buffer))
        }
    }

    /// Calls `body` with each contiguous region in order.
    public func forEachRegion(_ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        for index in 0..<slices.count { try body(slices[index].bytes) }
    }
}
