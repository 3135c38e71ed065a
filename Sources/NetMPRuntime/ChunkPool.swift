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
    /// `shared` without reference counting (it lives as long as the process): a retain per use
    /// was an atomic on a header that every thread writes.
    @usableFromInline static let sharedUnretained = Unmanaged.passUnretained(shared)

    /// Runs `body` with the shared pool, not retained.
    @inlinable @inline(__always) public static func withShared<Result>(_ body: (ChunkPool) -> Result) -> Result {
        sharedUnretained._withUnsafeGuaranteedRef(body)
    }

    private final class SharedList: @unchecked Sendable {
        let lock = NetLock()
        @exclusivity(unchecked) var chunks: [ByteChunk] = []  // under lock
        let limit: Int
        init(limit: Int) {
            self.limit = limit
            // Room for the whole stack up front: a spill never grows the array (an allocation).
            chunks.reserveCapacity(limit)
        }
    }

    /// One thread's free chunks, per class; released (chunks freed) when the thread exits.
    /// Fixed stacks of references moved in and out: no array bookkeeping on the hot path, and
    /// no retain and release per push (a chunk's reference passes from the caller to its slot).
    private final class ThreadCache {
        private let slots: UnsafeMutablePointer<ByteChunk?>
        /// (Unchecked exclusivity: one thread, and each access is a plain read or store.)
        @exclusivity(unchecked) private var counts = (0, 0, 0)
        private static let starts = [
            0, ChunkPool.threadLimits[0], ChunkPool.threadLimits[0] + ChunkPool.threadLimits[1],
        ]

        private static let capacity = ChunkPool.threadLimits.reduce(0, +)

        init() {
            slots = .allocate(capacity: ThreadCache.capacity)
            slots.initialize(repeating: nil, count: ThreadCache.capacity)
        }

        deinit {
            slots.deinitialize(count: ThreadCache.capacity)
            slots.deallocate()
        }

        @inline(__always) func count(_ index: Int) -> Int {
            switch index {
            case 0: return counts.0
            case 1: return counts.1
            default: return counts.2
            }
        }

        @inline(__always) private func setCount(_ index: Int, _ value: Int) {
            switch index {
            case 0: counts.0 = value
            case 1: counts.1 = value
            default: counts.2 = value
            }
        }

        @inline(__always) func pop(_ index: Int) -> ByteChunk? {
            let count = count(index)
            guard count > 0 else { return nil }
            setCount(index, count - 1)
            return slots[ThreadCache.starts[index] + count - 1].take()
        }

        /// Pushes if there is room (taking `chunk`'s reference, which is left nil); false when
        /// full (`chunk` untouched).
        @inline(__always) func push(_ chunk: inout ByteChunk?, _ index: Int) -> Bool {
            let count = count(index)
            guard count < ChunkPool.threadLimits[index] else { return false }
            swap(&slots[ThreadCache.starts[index] + count], &chunk)
            setCount(index, count + 1)
            return true
        }
    }

    private let lists = ChunkPool.sharedLimits.map { SharedList(limit: $0) }
    private let caches = ThreadLocal { ThreadCache() }

    public init() {}

    /// The classes as constants (`sizeClasses`' values): the per-chunk paths read no global array.
    @inline(__always) private static func classIndex(forAtLeast size: Int) -> Int? {
        if size <= 2048 { return 0 }
        if size <= 16384 { return 1 }
        if size <= 65536 { return 2 }
        return nil
    }

    @inline(__always) private static func classIndex(ofCapacity capacity: Int) -> Int? {
        switch capacity {
        case 2048: return 0
        case 16384: return 1
        case 65536: return 2
        default: return nil
        }
    }

    /// A chunk of at least `size` bytes with `headroom` bytes reserved in front (filled is set
    /// to the headroom, so appends start after it and prepends can use it).
    public func take(atLeast size: Int, headroom: Int = 0) -> ByteChunk {
        let needed = size + headroom
        let chunk: ByteChunk
        if let index = ChunkPool.classIndex(forAtLeast: needed) {
            chunk = caches.withValue { cache in
                cache.pop(index) ?? refill(cache, index) ?? ByteChunk(capacity: ChunkPool.sizeClasses[index])
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
            var chunk = list.chunks.popLast()
            if chunk == nil { break }
            _ = cache.push(&chunk, index)
        }
        return taken
    }

    /// Returns a chunk nobody else references.
    public func recycle(_ chunk: inout ByteChunk?) {
        // Checked in place: a local copy of the reference was a retain and a release.
        guard isKnownUniquelyReferenced(&chunk), let capacity = chunk?.capacity,
            let index = ChunkPool.classIndex(ofCapacity: capacity)
        else {
            chunk = nil
            return
        }
        chunk?.filled = 0
        if chunk?.trailing != nil { chunk?.trailing = nil }
        caches.withValue { cache in
            if !cache.push(&chunk, index) {
                spill(cache, index)
                _ = cache.push(&chunk, index)
            }
        }
        // Only a cache that kept nothing after a spill leaves it (then it is freed here).
        chunk = nil
    }

    /// Moves half of a full thread cache to the shared stack (dropping what it cannot keep).
    private func spill(_ cache: ThreadCache, _ index: Int) {
        let list = lists[index]
        let count = ChunkPool.threadLimits[index] / 2
        list.lock.lock()
        for _ in 0..<count {
            guard let chunk = cache.pop(index) else { break }
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
        let cache = caches.value
        var total = ChunkPool.threadLimits.indices.reduce(0) { $0 + cache.count($1) }
        for list in lists { total += list.lock.withLock { list.chunks.count } }
        return total
    }

    /// Frees every chunk in the shared stacks and the calling thread's cache.
    public func drain() {
        let cache = caches.value
        for index in lists.indices { while cache.pop(index) != nil {} }
        for list in lists { list.lock.withLock { list.chunks.removeAll() } }
    }
}
