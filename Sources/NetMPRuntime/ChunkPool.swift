/// Recycles chunks in a few size classes, so that buffer paths do not allocate per chunk.
///
/// Each thread keeps a few free chunks of each class of its own (no lock to take or return
/// one); behind them each class has a shared stack under a short lock, which threads refill
/// from and spill to half a cache at a time. Everything held is bounded.
public final class ChunkPool: @unchecked Sendable {
    /// Sizes of the classes, smallest first: a frame-sized one, a middle one and one large
    /// enough for a 64 KiB write.
    public static let sizeClasses = [2048, 16384, 65536]
    /// Chunks the shared stacks keep, per class.
    private static let sharedLimits = [1024, 256, 64]
    /// Chunks each thread keeps, per class (at most 64 + 128 + 256 KiB per thread).
    static let threadLimits = [32, 8, 4]

    public static let shared = ChunkPool()

    private final class SharedList: @unchecked Sendable {
        let lock = NetLock()
        var chunks: [ByteChunk] = []  // under lock
        let limit: Int
        init(limit: Int) { self.limit = limit }
    }

    /// One thread's free chunks, per class; released (chunks freed) when the thread exits.
    private final class ThreadCache {
        var lists: [[ByteChunk]] = ChunkPool.threadLimits.map { limit in
            var list: [ByteChunk] = []
            list.reserveCapacity(limit)
            return list
        }
    }

    private let lists = ChunkPool.sharedLimits.map { SharedList(limit: $0) }
    private let caches = ThreadLocal { ThreadCache() }

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
            let cache = caches.value
            if let cached = cache.lists[index].popLast() {
                chunk = cached
            } else {
                chunk = refill(cache, index) ?? ByteChunk(capacity: ChunkPool.sizeClasses[index])
            }
        } else {
            chunk = ByteChunk(capacity: needed)
        }
        chunk.filled = headroom
        return chunk
    }

    /// Takes a chunk from the shared stack, and up to half a thread cache more into `cache`.
    private func refill(_ cache: ThreadCache, _ index: Int) -> ByteChunk? {
        let list = lists[index]
        list.lock.lock()
        defer { list.lock.unlock() }
        guard let taken = list.chunks.popLast() else { return nil }
        for _ in 0..<ChunkPool.threadLimits[index] / 2 {
            guard let chunk = list.chunks.popLast() else { break }
            cache.lists[index].append(chunk)
        }
        return taken
    }

    /// Returns a chunk nobody else references.
    public func recycle(_ chunk: inout ByteChunk?) {
        guard var owned = chunk else { return }
        chunk = nil
        guard isKnownUniquelyReferenced(&owned),
            let index = ChunkPool.sizeClasses.firstIndex(of: owned.capacity)
        else { return }
        owned.filled = 0
        let cache = caches.value
        if cache.lists[index].count >= ChunkPool.threadLimits[index] { spill(cache, index) }
        cache.lists[index].append(owned)
    }

    /// Moves half of a full thread cache to the shared stack (dropping what it cannot keep).
    private func spill(_ cache: ThreadCache, _ index: Int) {
        let list = lists[index]
        let count = ChunkPool.threadLimits[index] / 2
        list.lock.lock()
        for _ in 0..<count {
            guard let chunk = cache.lists[index].popLast() else { break }
            if list.chunks.count < list.limit { list.chunks.append(chunk) }
        }
        list.lock.unlock()
    }

    /// Returns the chunk of a slice that has been fully consumed, if it was the last user.
    @inline(__always) public func recycle(_ slice: consuming ByteSlice) {
        var chunk: ByteChunk? = slice.chunk
        _ = consume slice
        recycle(&chunk)
    }

    /// Chunks held for reuse by the shared stacks and the calling thread (for tests and
    /// statistics).
    public var cachedCount: Int {
        var total = caches.value.lists.reduce(0) { $0 + $1.count }
        for list in lists { total += list.lock.withLock { list.chunks.count } }
        return total
    }

    /// Frees every chunk in the shared stacks and the calling thread's cache.
    public func drain() {
        for index in lists.indices { caches.value.lists[index].removeAll(keepingCapacity: true) }
        for list in lists { list.lock.withLock { list.chunks.removeAll() } }
    }
}
