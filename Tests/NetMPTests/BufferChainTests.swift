import Synchronization
import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

final class BufferChainTests: XCTestCase {
    func testAppendCopyOutAndTrimFrontInPlace() {
        var chain = BufferChain()
        chain.append(copying: UnsafeRawBufferPointer(start: nil, count: 0))
        XCTAssertEqual(chain.count, 0)
        let first: [UInt8] = Array(0..<100)
        first.withUnsafeBytes { chain.append(copying: $0) }
        XCTAssertEqual(chain.count, 100)
        XCTAssertEqual(chain.sliceCount, 1)
        // A small append lands in the same chunk's room.
        [UInt8](100..<110).withUnsafeBytes { chain.append(copying: $0) }
        XCTAssertEqual(chain.sliceCount, 1)
        XCTAssertEqual(chain.bytes, Array(0..<110))
        let chunk = chain.slices.first?.chunk
        chain.trimFront(30)
        XCTAssertEqual(chain.count, 80)
        XCTAssertEqual(chain.bytes, Array(30..<110))
        XCTAssertTrue(chain.slices.first?.chunk === chunk, "a partly consumed head is trimmed in place")
        chain.trimBack(10)
        XCTAssertEqual(chain.bytes, Array(30..<100))
        chain.trimFront(1000)
        XCTAssertTrue(chain.isEmpty)
    }

    func testLargeAppendSpansChunksAndCopiesOutExactly() {
        var generator = SeededGenerator(seed: 7)
        let payload = generator.bytes(300_000)
        var chain = BufferChain(payload)
        XCTAssertEqual(chain.count, payload.count)
        XCTAssertGreaterThan(chain.sliceCount, 1)
        XCTAssertEqual(chain.bytes, payload)
        var out = [UInt8](repeating: 0, count: 1000)
        let n = out.withUnsafeMutableBytes { chain.copyOut(from: 65_000, into: $0) }
        XCTAssertEqual(n, 1000)
        XCTAssertEqual(out, Array(payload[65_000..<66_000]))
        XCTAssertEqual(out.withUnsafeMutableBytes { chain.copyOut(from: 300_000, into: $0) }, 0)
        chain.trimFront(70_000)
        XCTAssertEqual(chain.bytes, Array(payload[70_000...]))
    }

    func testSliceSharesBytesWithoutCopying() {
        let payload = [UInt8](0..<200)
        let chain = BufferChain(payload)
        let part = chain.slice(from: 50, length: 100)
        XCTAssertEqual(part.bytes, Array(payload[50..<150]))
        XCTAssertTrue(part.slices.first?.chunk === chain.slices.first?.chunk)
        XCTAssertEqual(chain.slice(from: 190, length: 100).bytes, Array(payload[190...]))
        XCTAssertTrue(chain.slice(from: 500, length: 1).isEmpty)
        XCTAssertTrue(chain.slice(from: -1, length: 5).isEmpty)
    }

    func testSharedTailChunkIsNeverWrittenThrough() {
        var chain = BufferChain([1, 2, 3])
        let shared = chain.slice(from: 0, length: 3)
        // The chunk is shared now: the append must go to a new chunk.
        [UInt8]([4]).withUnsafeBytes { chain.append(copying: $0) }
        XCTAssertEqual(chain.sliceCount, 2)
        XCTAssertEqual(shared.bytes, [1, 2, 3])
        XCTAssertEqual(chain.bytes, [1, 2, 3, 4])
    }

    func testPrependUsesHeadroomThenNewChunk() {
        var chain = BufferChain()
        [UInt8](repeating: 9, count: 10).withUnsafeBytes { chain.append(copying: $0, headroom: 64) }
        let chunk = chain.slices.first.map { ObjectIdentifier($0.chunk) }
        [UInt8]([1, 2, 3, 4]).withUnsafeBytes { chain.prepend(copying: $0) }
        XCTAssertEqual(chain.slices.first.map { ObjectIdentifier($0.chunk) }, chunk, "header went into the headroom")
        XCTAssertEqual(chain.sliceCount, 1)
        XCTAssertEqual(chain.bytes, [1, 2, 3, 4] + [UInt8](repeating: 9, count: 10))
        var bare = BufferChain([5])
        [UInt8]([6]).withUnsafeBytes { bare.prepend(copying: $0) }
        XCTAssertEqual(bare.sliceCount, 2)
        XCTAssertEqual(bare.bytes, [6, 5])
    }

    func testPopFrontSplitsHeadWithoutAllocatingChunks() {
        var chain = BufferChain([UInt8](0..<10))
        let live = NetworkStack.liveChunkCount
        let first = chain.popFront(maxBytes: 4)
        XCTAssertEqual(first?.count, 4)
        XCTAssertEqual(first.map { Array($0.bytes) }, [0, 1, 2, 3])
        XCTAssertEqual(chain.bytes, [4, 5, 6, 7, 8, 9])
        XCTAssertEqual(NetworkStack.liveChunkCount, live)
        let rest = chain.popFront(maxBytes: 100)
        XCTAssertEqual(rest?.count, 6)
        XCTAssertTrue(chain.isEmpty)
        XCTAssertNil(chain.popFront(maxBytes: 1))
    }

    /// A drained chain keeps its small last chunk, emptied, for the next small append; the
    /// room is written only once the reader has let go of the bytes it took.
    func testPopFrontKeepingTailRoomLeavesTheLastChunkForTheNextAppend() {
        var chain = BufferChain()
        [UInt8](1...3).withUnsafeBytes { chain.append(copying: $0) }
        let chunk = chain.slices.first.map { ObjectIdentifier($0.chunk) }
        var taken = chain.popFrontKeepingTailRoom(maxBytes: 10, tailCapacity: 2048)
        XCTAssertEqual(
            taken.map { Array(UnsafeRawBufferPointer(start: $0.chunk.base + $0.start, count: $0.count)) }, [1, 2, 3])
        XCTAssertEqual(chain.count, 0)
        XCTAssertEqual(chain.sliceCount, 1, "the emptied slice stays")
        XCTAssertNil(chain.popFrontKeepingTailRoom(maxBytes: 10, tailCapacity: 2048), "nothing more to take")
        XCTAssertEqual([UInt8](4...5).withUnsafeBytes { chain.appendIntoTailRoom($0) }, 0, "the reader still holds it")
        taken = nil
        XCTAssertEqual([UInt8](4...5).withUnsafeBytes { chain.appendIntoTailRoom($0) }, 2)
        XCTAssertEqual(chain.slices.first.map { ObjectIdentifier($0.chunk) }, chunk, "the same chunk took the append")
        XCTAssertEqual(chain.bytes, [4, 5])
        // Bytes in a chunk of their own after the emptied slice: it is handed out empty, then them.
        var big = BufferChain()
        [UInt8](repeating: 9, count: 3000).withUnsafeBytes { big.append(copying: $0) }
        XCTAssertEqual(chain.popFrontKeepingTailRoom(maxBytes: 10, tailCapacity: 2048)?.count, 2)
        chain.append(big)
        XCTAssertEqual(chain.popFrontKeepingTailRoom(maxBytes: 4000, tailCapacity: 2048)?.count, 0)
        XCTAssertEqual(chain.count, 3000)
        var rest = 0
        while let slice = chain.popFrontKeepingTailRoom(maxBytes: 4000, tailCapacity: 2048) { rest += slice.count }
        XCTAssertEqual(rest, 3000)
        XCTAssertEqual(chain.count, 0)
        // A chunk larger than the bound is not kept.
        XCTAssertEqual(chain.sliceCount, 0, "a 16 KiB last chunk is not kept")
    }

    func testPoolRecyclesUniqueChunksOnly() {
        let pool = ChunkPool()
        var chunk: ByteChunk? = pool.take(atLeast: 100)
        XCTAssertEqual(chunk?.capacity, 2048)
        let keep = chunk
        pool.recycle(&chunk)
        XCTAssertEqual(pool.cachedCount, 0, "a chunk someone still holds is not recycled")
        chunk = keep
        _ = consume keep
        pool.recycle(&chunk)
        XCTAssertEqual(pool.cachedCount, 1)
        let again = pool.take(atLeast: 2000)
        XCTAssertEqual(pool.cachedCount, 0)
        XCTAssertEqual(again.filled, 0)
        XCTAssertEqual(pool.take(atLeast: 100_000).capacity, 100_000, "oversized requests get their own chunk")
    }

    func testRecycleAllEmptiesTheChainAndReturnsOnlyUnsharedChunks() {
        let pool = ChunkPool()
        let bytes = [UInt8](repeating: 9, count: 1000)
        var chain = bytes.withUnsafeBytes { BufferChain(copying: $0, pool: pool) }
        let shared = bytes.withUnsafeBytes { BufferChain(copying: $0, pool: pool) }
        chain.append(shared)
        chain.append(bytes.withUnsafeBytes { BufferChain(copying: $0, pool: pool) })
        XCTAssertEqual(chain.sliceCount, 3)
        chain.recycleAll(to: pool)
        XCTAssertTrue(chain.isEmpty)
        XCTAssertEqual(chain.sliceCount, 0)
        XCTAssertEqual(pool.cachedCount, 2, "the chunk another chain still holds is not recycled")
        XCTAssertEqual(shared.bytes, bytes)
    }

    func testAChainCopiedIntoTheSharedPoolHoldsTheBytesAndGoesBackToIt() {
        let bytes = [UInt8]((0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        var chain = bytes.withUnsafeBytes { BufferChain(copyingIntoSharedPool: $0) }
        XCTAssertEqual(chain.count, bytes.count)
        XCTAssertEqual(chain.bytes, bytes)
        let cached = ChunkPool.shared.cachedCount
        let chunks = chain.sliceCount
        chain.recycleAll()
        XCTAssertTrue(chain.isEmpty)
        XCTAssertEqual(ChunkPool.shared.cachedCount, cached + chunks, "its chunks went back to the shared pool")
        XCTAssertEqual(bytes.withUnsafeBytes { BufferChain(copyingIntoSharedPool: $0) }.count, 3000)
        XCTAssertTrue(BufferChain(copyingIntoSharedPool: UnsafeRawBufferPointer(start: nil, count: 0)).isEmpty)
    }

    func testTrimFrontReturnsTheChunksItConsumesToThePool() {
        let pool = ChunkPool()
        let bytes = [UInt8](repeating: 9, count: 1000)
        var chain = bytes.withUnsafeBytes { BufferChain(copying: $0, pool: pool) }
        chain.append(bytes.withUnsafeBytes { BufferChain(copying: $0, pool: pool) })
        XCTAssertEqual(pool.cachedCount, 0)
        chain.trimFront(1500, pool: pool)
        XCTAssertEqual(pool.cachedCount, 1, "the consumed head chunk went back to the pool")
        XCTAssertEqual(chain.count, 500)
        chain.trimFront(500, pool: pool)
        XCTAssertEqual(pool.cachedCount, 2)
        XCTAssertTrue(chain.isEmpty)
    }

    func testEachThreadKeepsItsOwnChunksAndSpillsHalfWhenFull() {
        let pool = ChunkPool()
        let limit = ChunkPool.threadLimits[0]
        var taken = (0...limit).map { _ in pool.take(atLeast: 100) }
        let identities = taken.map(ObjectIdentifier.init)
        for index in taken.indices.reversed() {
            var chunk: ByteChunk? = taken.remove(at: index)
            pool.recycle(&chunk)
        }
        // limit + 1 returned: the thread kept `limit`, spilled half of them once it was full.
        XCTAssertEqual(pool.cachedCount, limit + 1)
        let otherThreadSees = LockedValue(-1)
        let done = DispatchSemaphore(value: 0)
        Thread {
            // Another thread's cache is empty; it refills from the shared stack (half spilled).
            let chunk = pool.take(atLeast: 100)
            otherThreadSees.withLock { $0 = identities.contains(ObjectIdentifier(chunk)) ? 1 : 0 }
            done.signal()
        }.start()
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(otherThreadSees.withLock { $0 }, 1, "a spilled chunk is reused by another thread")
        // This thread takes back what it kept, newest first, without the shared stack.
        let again = pool.take(atLeast: 100)
        XCTAssertEqual(ObjectIdentifier(again), identities[0])
    }

    func testRingQueueWrapsAndGrows() {
        var ring = RingQueue<Int>(capacity: 2)
        for value in 0..<5 { ring.append(value) }
        XCTAssertEqual(ring.popFirst(), 0)
        ring.prepend(-1)
        ring.append(5)
        var seen: [Int] = []
        while let value = ring.popFirst() { seen.append(value) }
        XCTAssertEqual(seen, [-1, 1, 2, 3, 4, 5])
        for value in 0..<10 { ring.append(value) }
        ring.removeAll { $0 % 2 == 0 }
        XCTAssertEqual((0..<ring.count).map { ring[$0] }, [1, 3, 5, 7, 9])
        XCTAssertEqual(ring.popLast(), 9)
        XCTAssertEqual(ring.last, 7)
    }

    func testRingQueueKeepsOneElementInlineAndMovesItWhenItGrows() {
        var ring = RingQueue<Int>()
        XCTAssertNil(ring.first)
        ring.append(1)
        XCTAssertEqual(ring.capacity, 1, "one element needs no storage")
        XCTAssertEqual(
            ring.withFirst { value -> Int in
                value += 10
                return value
            }, 11)
        XCTAssertEqual(ring.last, 11)
        ring.prepend(0)
        ring.append(12)
        XCTAssertEqual((0..<ring.count).map { ring[$0] }, [0, 11, 12])
        XCTAssertEqual(ring.popLast(), 12)
        XCTAssertEqual(ring.popFirst(), 0)
        XCTAssertEqual(ring.popFirst(), 11)
        XCTAssertNil(ring.popFirst())
        var single = RingQueue<Int>()
        single.prepend(5)
        single.removeAll { $0 == 4 }
        XCTAssertEqual(single.count, 1)
        single.removeAll { $0 == 5 }
        XCTAssertTrue(single.isEmpty)
        single.append(6)
        XCTAssertEqual(single.popLast(), 6)
        single.reserve(3)
        XCTAssertGreaterThanOrEqual(single.capacity, 3)
    }

    /// Elements that count their deinits: a ring of references neither leaks nor frees twice
    /// as it appends into emptied slots, wraps and grows (`Optional.fill(with:)`).
    func testRingQueueOfReferencesFreesEachElementOnce() {
        final class Counted {
            static let freed = Atomic<Int>(0)
            let value: Int
            init(_ value: Int) { self.value = value }
            deinit { Counted.freed.add(1, ordering: .relaxed) }
        }
        do {
            var ring = RingQueue<Counted>(capacity: 4)
            var popped: [Int] = []
            for round in 0..<50 {
                for index in 0..<(round % 7) { ring.append(Counted(round * 10 + index)) }
                for _ in 0..<(round % 5) { if let element = ring.popFirst() { popped.append(element.value) } }
            }
            XCTAssertEqual(popped, popped.sorted(), "first in, first out")
            XCTAssertEqual(Counted.freed.load(ordering: .relaxed), popped.count, "popped elements are freed once")
            XCTAssertEqual(ring.count + popped.count, (0..<50).reduce(0) { $0 + $1 % 7 })
        }
        XCTAssertEqual(
            Counted.freed.load(ordering: .relaxed), (0..<50).reduce(0) { $0 + $1 % 7 }, "the rest with the ring")
        var slot: Counted? = nil
        slot.fill(with: Counted(1))
        XCTAssertEqual(slot?.value, 1)
        let before = Counted.freed.load(ordering: .relaxed)
        slot.fill(with: Counted(2))
        XCTAssertEqual(slot?.value, 2)
        XCTAssertEqual(Counted.freed.load(ordering: .relaxed), before + 1, "a value filled over is freed")
    }
}
