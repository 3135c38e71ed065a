/// Recycles chunks in a few size classes, so that buffer paths do not allocate per chunk.
///
/// Each class is a short lock around a stack of free chunks with a bound on what it keeps.
public final class ChunkPool: @unchecked Sendable {
    /// Sizes of the classes, smallest first: a frame-sized one, a middle one and one large
    /// enough for a 64 KiB write.
    public static let sizeClasses = [2048, 16384, 65536]
    private static let keepLimits = [1024, 256, 64]

    public static let shared = ChunkPool()

    private final class FreeList: @unchecked Sendable {
        let lock = NetLock()
        var chunks: [ByteChunk] = []  // under lock
        let keepLimit: Int
        init(keepLimit: Int) { self.keepLimit = keepLimit }
    }

    private let lists = ChunkPool.keepLimits.map { FreeList(keepLimit: $0) }

    public init() {}

    @inline(__always) private static func classIndex(forAtLeast size: Int) -> Int? {
        for (index, classSize) in sizeClasses.enumerated() where size <= classSize { return index }
        return nil
    }

    /// A chunk of at least `size` bytes with `headroom` bytes reserved in front (filled is set
    /// to the headroom, so appends start after it and prepends can use it).
    public func take(atLeast size: Int, headroom: Int = 0) -> ByteChunk {
        let needed = size + headroom
        let chunk: ByteChunk
        if let index = ChunkPool.classIndex(forAtLeast: needed) {
            let list = lists[index]
            list.lock.lock()
            let recycled = list.chunks.popLast()
            list.lock.unlock()
            chunk = recycled ?? ByteChunk(capacity: ChunkPool.sizeClasses[index])
        } else {
            chunk = ByteChunk(capacity: needed)
        }
        chunk.filled = headroom
        return chunk
    }

    /// Returns a chunk nobody else references.
    public func recycle(_ chunk: inout ByteChunk?) {
        guard var owned = chunk else { return }
        chunk = nil
        guard isKnownUniquelyReferenced(&owned),
            let index = ChunkPool.sizeClasses.firstIndex(of: owned.capacity)
        else { return }
        owned.filled = 0
        let list = lists[index]
        list.lock.lock()
        if list.chunks.count < list.keepLimit { list.chunks.append(owned) }
        list.lock.unlock()
    }

    /// Returns the chunk of a slice that has been fully consumed, if it was the last user.
    @inline(__always) public func recycle(_ slice: consuming ByteSlice) {
        var chunk: ByteChunk? = slice.chunk
        _ = consume slice
        recycle(&chunk)
    }

    /// Chunks held for reuse (for tests and statistics).
    public var cachedCount: Int {
        var total = 0
        for list in lists { total += list.lock.withLock { list.chunks.count } }
        return total
    }

    /// Frees every cached chunk.
    public func drain() {
        for list in lists { list.lock.withLock { list.chunks.removeAll() } }
    }
}
