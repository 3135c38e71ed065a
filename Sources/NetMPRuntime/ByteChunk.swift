import Glibc
import Synchronization

/// Reference-counted byte storage: the unit of every buffer chain (an mbuf cluster).
///
/// A chunk is filled once, front to back (`filled`), and then only read; slices that share it
/// never see each other's bytes change. Chunks come from `ChunkPool` and go back to it when the
/// last slice that uses them is consumed, so hot paths do not call malloc per chunk.
public final class ByteChunk: @unchecked Sendable {
    public let base: UnsafeMutableRawPointer
    public let capacity: Int
    /// Bytes written so far, from the start. Only the chunk's single writer moves it.
    public package(set) var filled: Int {
        @inlinable @inline(__always) get { storedFilled }
        @inlinable @inline(__always) set { storedFilled = newValue }
    }
    /// `filled`'s storage, behind accessors compiled here: a stored property touched from
    /// another module is checked for exclusivity at run time (`@exclusivity(unchecked)` does not
    /// reach other modules), which costs more than the copy it guards for a small write.
    @exclusivity(unchecked) @usableFromInline var storedFilled: Int = 0
    /// Payload slices that follow the frame built in this chunk (scatter-gather), as the mbufs
    /// chained after a packet header mbuf: kept here so a frame stays one reference to copy.
    /// Set by the frame's builder before anyone else sees the chunk; dropped when it goes back
    /// to the pool.
    package var trailing: [ByteSlice]? {
        @inlinable @inline(__always) get { storedTrailing }
        @inlinable @inline(__always) set { storedTrailing = newValue }
    }
    /// `trailing`'s storage, behind accessors compiled here (as `storedFilled`).
    @exclusivity(unchecked) @usableFromInline var storedTrailing: [ByteSlice]?

    /// Chunks alive now, when `countsLive` (a global atomic each allocation and free would
    /// otherwise touch from every core).
    package static let liveCount = Atomic<Int>(0)
    /// On in debug builds, or when the environment has NETMP_COUNT_LIVE_CHUNKS.
    package static let countsLive: Bool = {
        #if DEBUG
            return true
        #else
            return getenv("NETMP_COUNT_LIVE_CHUNKS") != nil
        #endif
    }()

    init(capacity: Int) {
        self.capacity = capacity
        base = .allocate(byteCount: capacity, alignment: 64)
        if ByteChunk.countsLive { ByteChunk.liveCount.add(1, ordering: .relaxed) }
    }

    deinit {
        base.deallocate()
        if ByteChunk.countsLive { ByteChunk.liveCount.subtract(1, ordering: .relaxed) }
    }

    /// Room left after `filled`.
    @inline(__always) public var room: Int { capacity - filled }
}

/// A view of part of a chunk. Copying a slice shares the bytes (zero-copy).
public struct ByteSlice: @unchecked Sendable {
    public var chunk: ByteChunk
    public var start: Int
    public var end: Int

    public init(chunk: ByteChunk, start: Int, end: Int) {
        self.chunk = chunk
        self.start = start
        self.end = end
    }

    @inline(__always) public var count: Int { end - start }

    @inline(__always) public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: chunk.base + start, count: end - start)
    }

    /// True when this slice's bytes run up to the chunk's fill point, so more can be appended
    /// to the chunk and to this slice together.
    @inline(__always) var endsAtFill: Bool { end == chunk.filled }

    /// This slice followed by `pieces`, copied into one slice of a chunk from `pool` (for a path
    /// that must read gathered bytes in place; the data paths keep them apart).
    public func joined(with pieces: [ByteSlice], pool: ChunkPool = .shared) -> ByteSlice {
        var total = count
        for piece in pieces { total += piece.count }
        let target = pool.take(atLeast: total)
        let first = target.filled
        var offset = first
        (target.base + offset).copyMemory(from: chunk.base + start, byteCount: count)
        offset += count
        for piece in pieces {
            (target.base + offset).copyMemory(from: piece.chunk.base + piece.start, byteCount: piece.count)
            offset += piece.count
        }
        target.filled = offset
        return ByteSlice(chunk: target, start: first, end: offset)
    }
}
