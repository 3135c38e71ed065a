import NetMPRuntime
import Synchronization

/// A socket's receive or send buffer (DragonFly's `signalsockbuf`): a lock, the bytes, their
/// count, the water marks, and the calls waiting on it.
///
/// User threads and protocol threads both read and append under `lock`; neither allocates or
/// copies a large block while holding it. `byteCount` mirrors the bytes held so that a
/// condition can be read without the lock.
public final class SocketBuffer: @unchecked Sendable {
    /// The largest size a buffer may be set to.
    public static let maximumSize = 64 << 20

    @usableFromInline package let lock = NetLock()
    /// Stream bytes (under `lock`).
    @exclusivity(unchecked) @usableFromInline package var storedChain = BufferChain()
    /// The stream bytes (under `lock`), through accessors compiled here: a client module
    /// touching `storedChain` directly checks exclusivity at run time (the attribute does not
    /// reach it), about a hundred instructions per access.
    @inlinable package var chain: BufferChain {
        @inline(__always) _read { yield storedChain }
        @inline(__always) _modify { yield &storedChain }
    }
    /// Datagrams (under `lock`), on datagram sockets only: a stream socket's buffer carries no
    /// room for them (their queue is a hundred bytes even when empty).
    @usableFromInline let datagrams: DatagramQueue?
    /// The user set the size (SO_RCVBUF / SO_SNDBUF): auto-tuning leaves it alone, as Linux does.
    package let sizeSetByUser = Atomic<Bool>(false)
    /// The low water mark; 0 means automatic (1 byte to read, a quarter of the buffer to write).
    package let lowWaterSetting = Atomic<Int>(0)
    /// SO_RCVTIMEO / SO_SNDTIMEO in nanoseconds; 0 waits forever.
    package let timeout = Atomic<Int64>(0)
    @exclusivity(unchecked) private var waiters: [SocketWaiter] = []  // under lock
    /// The waiters registered (changed under `lock` only, so exact while it is held).
    @usableFromInline package let waiterCount = Atomic<Int>(0)
    /// The owning socket's readiness observers, told after every change: made by the socket's
    /// first poller registration and installed in both its buffers (most sockets never have one).
    private let observersReference = OnceReference<ReadinessObservers>()
    private let registry: SocketRegistry

    /// The counts a waiter spins on, on a line of their own: the holder of `lock` rewrites the
    /// chain's fields above several times per append or removal, and a spinning reader that
    /// polled the line they share moved it away between each of those writes.
    private let chainPad = CacheLinePad()
    /// Bytes held, stream or datagram (written under `lock`).
    package let byteCount = Atomic<Int>(0)
    /// Datagrams held (written under `lock`).
    package let recordCount = Atomic<Int>(0)
    /// The size limit (SO_RCVBUF / SO_SNDBUF).
    package let highWater: Atomic<Int>

    private let countsPad = CacheLinePad()
    /// How long the next waiter here spins before sleeping, in nanoseconds (adapted after each
    /// wait, by the waiting side: kept off the line of the counts the other side writes).
    package let spinBudget = Atomic<Int64>(SpinPolicy.waiterMaximumSpinNanoseconds)

    /// A reader that drains this buffer leaves a small last chunk's room in it for the next
    /// small write (`BufferChain.popFrontKeepingTailRoom`): set for local streams, whose writers
    /// copy small writes into the tail; others never append into a chunk they did not fill.
    package let keepsTailRoom: Bool

    init(registry: SocketRegistry, highWater: Int, holdsDatagrams: Bool, keepsTailRoom: Bool = false) {
        datagrams = holdsDatagrams ? DatagramQueue() : nil
        self.keepsTailRoom = keepsTailRoom
        self.registry = registry
        self.highWater = Atomic(highWater)
        registry.liveBuffers.add(1, ordering: .relaxed)
    }

    deinit { registry.liveBuffers.subtract(1, ordering: .relaxed) }

    /// The datagrams held (under `lock`); always empty on a stream socket, which never adds one.
    @inlinable package var records: RingQueue<DatagramRecord> {
        @inline(__always) _read {
            if let datagrams { yield datagrams.records } else { yield DatagramQueue.none }
        }
        @inline(__always) _modify {
            guard let datagrams else { preconditionFailure("a stream socket's buffer holds no datagrams") }
            yield &datagrams.records
        }
    }

    /// The owning socket's readiness observers, nil until a poller first registers the socket.
    @inline(__always) package var observers: ReadinessObservers? { observersReference.load() }

    /// Installs `made` unless observers are installed already; returns the ones installed.
    func installObservers(_ made: ReadinessObservers) -> ReadinessObservers {
        observersReference.storeIfNil(made)
    }

    /// Bytes that still fit.
    @inline(__always) package var room: Int {
        highWater.load(ordering: .relaxed) - byteCount.load(ordering: .sequentiallyConsistent)
    }

    /// The effective low water mark for writers: set, or a quarter of the buffer, which keeps
    /// big writers from waking once per freed byte.
    package var sendLowWater: Int {
        let setting = lowWaterSetting.load(ordering: .relaxed)
        return setting > 0 ? setting : Swift.max(1, highWater.load(ordering: .relaxed) / 4)
    }

    package var receiveLowWater: Int { Swift.max(1, lowWaterSetting.load(ordering: .relaxed)) }

    // MARK: Waiters (all under lock)

    func registerLocked(_ waiter: SocketWaiter) {
        waiters.append(waiter)
        waiterCount.add(1, ordering: .sequentiallyConsistent)
    }

    func unregisterLocked(_ waiter: SocketWaiter) {
        guard let index = waiters.firstIndex(where: { $0 === waiter }) else { return }
        waiters.remove(at: index)
        waiterCount.subtract(1, ordering: .sequentiallyConsistent)
    }

    /// Moves every waiter whose condition now holds (and drops cancelled ones) to `wakes`.
    package func collectSatisfiedLocked(into wakes: inout WakeList) {
        guard !waiters.isEmpty else { return }
        var index = 0
        while index < waiters.count {
            let waiter = waiters[index]
            if waiter.isClaimed {
                waiters.remove(at: index)
                waiterCount.subtract(1, ordering: .sequentiallyConsistent)
            } else if waiter.socket.isSatisfied(waiter.condition), waiter.claim() {
                waiters.remove(at: index)
                waiterCount.subtract(1, ordering: .sequentiallyConsistent)
                wakes.add(waiter)
            } else {
                index += 1
            }
        }
    }

    /// With `lock` held, after a change: drops the lock, then completes the waiters whose
    /// condition now holds. Inlined for the common case of nobody waiting (read under the lock,
    /// the count is exact): then it is the unlock alone.
    @inlinable @inline(__always) package func unlockWakingSatisfied() {
        if waiterCount.load(ordering: .relaxed) == 0 {
            lock.unlock()
        } else {
            unlockWakingSatisfiedWaiters()
        }
    }

    @usableFromInline func unlockWakingSatisfiedWaiters() {
        var wakes = WakeList()
        collectSatisfiedLocked(into: &wakes)
        lock.unlock()
        wakes.publishAll()
    }

    /// Re-checks the waiters after a change made outside the lock (a state bit, an error, a
    /// queue), and tells readiness observers. Cheap when nobody waits.
    package func wake() {
        if waiterCount.load(ordering: .sequentiallyConsistent) > 0 {
            var wakes = WakeList()
            lock.lock()
            collectSatisfiedLocked(into: &wakes)
            lock.unlock()
            wakes.publishAll()
        }
        observers?.notify()
    }

    /// Empties the buffer (shutdown of the read side, close).
    func flush() {
        lock.lock()
        chain.removeAll()
        datagrams?.records.removeAll()
        byteCount.store(0, ordering: .sequentiallyConsistent)
        recordCount.store(0, ordering: .sequentiallyConsistent)
        lock.unlock()
    }

    /// Ends every wait on this buffer (the socket is closing); their callers re-check state.
    func wakeAll() {
        var wakes = WakeList()
        lock.lock()
        for waiter in waiters where waiter.claim() { wakes.add(waiter) }
        waiters.removeAll()
        waiterCount.store(0, ordering: .sequentiallyConsistent)
        lock.unlock()
        wakes.publishAll()
        observers?.notify()
    }
}

/// A datagram socket buffer's queue of datagrams, with room for a few reserved.
@usableFromInline final class DatagramQueue {
    @exclusivity(unchecked) @usableFromInline var records = RingQueue<DatagramRecord>(capacity: 8)

    /// What a stream socket's buffer reads as its datagrams: empty, never written.
    @usableFromInline nonisolated(unsafe) static let none = RingQueue<DatagramRecord>()

    init() {}
}
