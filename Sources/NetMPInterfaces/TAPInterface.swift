import CNetMP
import Glibc
import NetMPRuntime
import NetMPWire
import Synchronization

/// Counters of a TAP device beyond the interface's own.
public struct TAPStatistics: Sendable, Hashable {
    /// Frames whose partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM) was finished here.
    public var checksumsCompleted = 0
    /// Frames the kernel vouched for (VIRTIO_NET_HDR_F_DATA_VALID).
    public var checksumsVouched = 0
    /// Frames whose partial checksum was left for the stack to trust (TCP or UDP over IPv4;
    /// finished only if the frame is forwarded).
    public var checksumsLeftPartial = 0
    /// Frames dropped on receive: shorter than a header and an Ethernet header, too long for
    /// the buffer, or with offsets outside the frame / a large segment not asked for.
    public var receiveDrops = 0
    /// Frames dropped on transmit because the device's queue was full (or it failed). The
    /// interface's `framesSent` counts every frame handed to the device, these included.
    public var transmitDrops = 0
    /// Large TCP segments taken whole (with `largeReceive`).
    public var largeSegments = 0
    /// Large TCP segments written for the kernel to cut (GSO, with `largeSend`).
    public var largeSegmentsSent = 0
    /// Frames read by threads busy-polling (`busyPolling`) rather than by the queues' readers.
    public var busyPolledFrames = 0
}

/// A Linux TAP device (`/dev/net/tun`, Ethernet frames, no packet information).
///
/// With `queues` > 1 the device is multi-queue: protocol thread i transmits on queue
/// i % queues, and the kernel spreads inbound flows over the queues as RSS does on a NIC.
/// Each queue has a reader thread that waits in `poll`, then reads every frame ready (up to
/// `batchSize`) without blocking and hands the batch to the stack, which hashes each frame to
/// its owner protocol thread (one message per thread per batch). A reader thread, not the
/// protocol threads, waits in the kernel, so a protocol thread never sits in a system call
/// longer than a non-blocking write; the cost is one hand-off per batch, not per frame.
///
/// With the virtio-net header (the default), the kernel may give partial checksums, which are
/// finished before the stack sees the frame; transmitted frames carry complete checksums.
/// With `largeReceive` the kernel's TCP segments of up to 64 KiB (TSO4) are taken whole; with
/// `largeSend` NetMP's TCP sends segments of up to 64 KiB, which the kernel cuts into MSS-sized
/// ones (GSO, told by the virtio-net header), so a bulk transfer is one write per 64 KiB.
public final class TAPInterface: NetworkInterface, @unchecked Sendable {
    /// The device's name as the kernel knows it.
    public let deviceName: String
    public let usesVirtioHeader: Bool
    /// The kernel may send TCP segments of up to 64 KiB (TSO4), taken whole as GRO would.
    public let largeReceive: Bool
    /// NetMP's TCP may send segments of up to 64 KiB, cut by the kernel (GSO).
    public let largeSend: Bool
    public let batchSize: Int

    private let descriptors: [Int32]
    /// Each queue's receive side, shared by its reader thread and busy pollers.
    private let receiveQueues: [ReceiveQueue]
    /// Written to (closed) to end the readers' polls.
    private let stopPipe: (read: Int32, write: Int32)
    private let stopping = Atomic<Bool>(false)
    /// Whether threads waiting on sockets read the queues while they spin (`busyPoll`).
    public let busyPolling: Bool
    private var readers: [OSThread] = []  // set in init, joined in close (under closeLock)
    private let closeLock = NetLock()
    private var closed = false  // under closeLock
    private let zeroHeader: UnsafeMutableRawPointer
    private let pool: ChunkPool

    private let completed = Atomic<Int>(0)
    private let vouched = Atomic<Int>(0)
    private let partials = Atomic<Int>(0)
    private let receiveDropped = Atomic<Int>(0)
    private let transmitDropped = Atomic<Int>(0)
    private let largeSegments = Atomic<Int>(0)
    private let largeSegmentsSent = Atomic<Int>(0)
    private let busyPolled = Atomic<Int>(0)

    /// Opens (or creates) the TAP device `name` with `queues` queues.
    ///
    /// - Parameters:
    ///   - create: false refuses a device that does not exist (`.noSuchDevice`).
    ///   - namespacePath: a network namespace (e.g. "/run/netns/test") to find or make the
    ///     device in; the process stays in its own namespace.
    ///   - virtioHeader: use IFF_VNET_HDR with checksum offload.
    ///   - largeReceive: also accept large TCP segments (TUN_F_TSO4): the kernel then sends up to
    ///     64 KiB per frame instead of cutting its data into MTU-sized segments. Needs
    ///     `virtioHeader`; the stack must take IPv4 datagrams longer than the MTU (NetMP does).
    ///   - largeSend: offer TCP segmentation offload to the stack (with `virtioHeader`): large TCP
    ///     segments are written whole with a GSO virtio-net header and the kernel cuts them.
    ///   - busyPolling: a thread that spins waiting on one of the stack's sockets reads the queues
    ///     itself (as Linux's SO_BUSY_POLL), so an answer reaches it without a reader's wake-up.
    /// - Throws: `.permissionDenied` without CAP_NET_ADMIN, `.noSuchDevice`, `.deviceBusy`
    ///   when the queues are taken, `.invalidArgument` when the device exists with other flags
    ///   (not a multi-queue TAP), `.nameTooLong`.
    public init(
        name: String, queues: Int = 1, create: Bool = true, namespacePath: String? = nil, mtu: Int = 1500,
        hardwareAddress: MACAddress? = nil, virtioHeader: Bool = true, largeReceive: Bool = false,
        largeSend: Bool = true, busyPolling: Bool = true,
        batchSize: Int = 64,
        pool: ChunkPool = .shared
    ) throws(NetError) {
        guard queues >= 1, queues <= 256, (68...65521).contains(mtu), batchSize >= 1, virtioHeader || !largeReceive
        else {
            throw .invalidArgument
        }
        var namespaceDescriptor: Int32 = -1
        if let namespacePath {
            namespaceDescriptor = Glibc.open(namespacePath, O_RDONLY | O_CLOEXEC)
            if namespaceDescriptor < 0 { throw TAPInterface.error(errno: errno == ENOENT ? ENODEV : errno) }
        }
        defer { if namespaceDescriptor >= 0 { _ = Glibc.close(namespaceDescriptor) } }
        var opened: [Int32] = []
        var actualName = name
        for queue in 0..<queues {
            var nameOut = [CChar](repeating: 0, count: 16)
            let result = netmp_tap_open(
                name, create && queue == 0 ? 1 : 0, virtioHeader ? 1 : 0,
                virtioHeader ? UInt32(NETMP_TAP_OFFLOAD_CSUM) | (largeReceive ? UInt32(NETMP_TAP_OFFLOAD_TSO4) : 0) : 0,
                namespaceDescriptor, &nameOut)
            guard result >= 0 else {
                for descriptor in opened { _ = Glibc.close(descriptor) }
                throw TAPInterface.error(errno: -result)
            }
            opened.append(result)
            if queue == 0 {
                actualName = String(decoding: nameOut.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        }
        var pipeEnds: [Int32] = [-1, -1]
        guard pipe(&pipeEnds) == 0 else {
            let error = errno
            for descriptor in opened { _ = Glibc.close(descriptor) }
            throw TAPInterface.error(errno: error)
        }
        descriptors = opened
        receiveQueues = opened.map { ReceiveQueue(descriptor: $0, batchSize: batchSize) }
        self.busyPolling = busyPolling
        stopPipe = (pipeEnds[0], pipeEnds[1])
        deviceName = actualName
        usesVirtioHeader = virtioHeader
        self.largeReceive = largeReceive
        self.largeSend = virtioHeader && largeSend
        self.batchSize = batchSize
        self.pool = pool
        zeroHeader = UnsafeMutableRawPointer.allocate(byteCount: VirtioNetHeader.size, alignment: 8)
        zeroHeader.initializeMemory(as: UInt8.self, repeating: 0, count: VirtioNetHeader.size)
        super.init(
            name: actualName, mtu: mtu, hardwareAddress: hardwareAddress ?? TAPInterface.randomHardwareAddress(),
            offloads: virtioHeader && largeSend ? [.tcpSegmentation, .scatterGather] : .scatterGather,
            needsAddressResolution: true)
        readers = receiveQueues.enumerated().map { index, queue in
            // The reader holds the interface until `close()` joins it.
            OSThread.start(name: "tap-\(index)") { self.readLoop(queue) }
        }
    }

    deinit {
        zeroHeader.deallocate()
        for queue in receiveQueues { queue.release(to: pool) }
    }

    public override var description: String {
        "\(deviceName) (tap, \(descriptors.count) queue\(descriptors.count == 1 ? "" : "s"), \(hardwareAddress), "
            + "mtu \(mtu))"
    }

    public var queueCount: Int { descriptors.count }

    public var tapStatistics: TAPStatistics {
        TAPStatistics(
            checksumsCompleted: completed.load(ordering: .relaxed), checksumsVouched: vouched.load(ordering: .relaxed),
            checksumsLeftPartial: partials.load(ordering: .relaxed),
            receiveDrops: receiveDropped.load(ordering: .relaxed),
            transmitDrops: transmitDropped.load(ordering: .relaxed),
            largeSegments: largeSegments.load(ordering: .relaxed),
            largeSegmentsSent: largeSegmentsSent.load(ordering: .relaxed),
            busyPolledFrames: busyPolled.load(ordering: .relaxed))
    }

    /// Stops the readers and closes the queues (a device the kernel made for this process
    /// goes away with them). The readers keep the interface alive until this is called. Safe to
    /// call more than once; not from a reader (a receiver).
    public func close() {
        let threads = closeLock.withLock { () -> [OSThread]? in
            guard !closed else { return nil }
            closed = true
            stopping.store(true, ordering: .sequentiallyConsistent)
            _ = Glibc.close(stopPipe.write)
            for queue in receiveQueues { netmp_parker_unpark(queue.parker) }
            return readers
        }
        guard let threads else { return }
        for thread in threads { thread.join() }
        // A busy poller between its check of `stopping` and its read holds the queue's token:
        // the descriptor is closed (and its number free for reuse) only once the token is ours.
        for queue in receiveQueues {
            while !queue.reading.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
                OSThread.yieldNow()
            }
        }
        for descriptor in descriptors { _ = Glibc.close(descriptor) }
        _ = Glibc.close(stopPipe.read)
    }

    static func error(errno value: Int32) -> NetError {
        switch value {
        case EPERM, EACCES: NetError(rawValue: EACCES)  // `permissionDenied`
        case ENODEV, ENXIO, ENOENT: .noSuchDevice
        case EBUSY: .deviceBusy
        default: NetError(rawValue: value)
        }
    }

    /// A random locally administered unicast address.
    static func randomHardwareAddress() -> MACAddress {
        var generator = SystemRandomNumberGenerator()
        let random = generator.next() as UInt64
        return MACAddress(
            0x02, UInt8(truncatingIfNeeded: random), UInt8(truncatingIfNeeded: random >> 8),
            UInt8(truncatingIfNeeded: random >> 16), UInt8(truncatingIfNeeded: random >> 24),
            UInt8(truncatingIfNeeded: random >> 32))
    }

    // MARK: Transmit

    /// Writes each frame to the queue of the calling protocol thread, never blocking: a full
    /// queue drops the frame (counted), as a NIC's full ring would.
    public override func transmit(_ frames: [Frame]) {
        guard !frames.isEmpty else { return }
        let queue = (ProtocolThread.current?.index ?? 0) % descriptors.count
        let descriptor = descriptors[queue]
        var dropped = 0
        var large = 0
        for frame in frames {
            let written: Int
            if frame.isLargeSegment {
                // Cut by the kernel into MSS-sized segments (GSO); without the header it cannot go.
                guard usesVirtioHeader,
                    let gso = VirtioNetHeader.largeTCPSegment(frame.bytes, segmentSize: frame.segmentSize)
                else {
                    dropped += 1
                    continue
                }
                large += 1
                var storage = (UInt64(0), UInt64(0))
                written = withUnsafeMutableBytes(of: &storage) { buffer in
                    gso.emit(into: buffer)
                    return TAPInterface.write(descriptor, header: buffer.baseAddress, VirtioNetHeader.size, frame)
                }
            } else {
                written = TAPInterface.write(
                    descriptor, header: zeroHeader, usesVirtioHeader ? VirtioNetHeader.size : 0, frame)
            }
            if written < 0 { dropped += 1 }
        }
        if dropped > 0 { transmitDropped.add(dropped, ordering: .relaxed) }
        if large > 0 { largeSegmentsSent.add(large, ordering: .relaxed) }
        noteTransmitted(frames)
    }

    /// One frame, after `headerLength` bytes of virtio-net header, in one write: a gathered
    /// frame's payload slices go straight from the sender's buffers (the kernel copies them once).
    private static func write(
        _ descriptor: Int32, header: UnsafeMutableRawPointer?, _ headerLength: Int, _ frame: Frame
    ) -> Int {
        let bytes = frame.bytes
        guard frame.isGathered else {
            var vectors = (
                iovec(iov_base: header, iov_len: headerLength),
                iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count)
            )
            return withUnsafeMutablePointer(to: &vectors) {
                $0.withMemoryRebound(to: iovec.self, capacity: 2) { writev(descriptor, $0, 2) }
            }
        }
        let count = 2 + frame.gathered.count
        // UIO_MAXIOV: more pieces than the kernel takes in one write (never for 64 KiB of chunks).
        guard count <= 1024 else { return -1 }
        return withUnsafeTemporaryAllocation(of: iovec.self, capacity: count) { vectors in
            vectors[0] = iovec(iov_base: header, iov_len: headerLength)
            vectors[1] = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count)
            for (index, piece) in frame.gathered.enumerated() {
                vectors[2 + index] = iovec(iov_base: piece.chunk.base + piece.start, iov_len: piece.count)
            }
            return writev(descriptor, vectors.baseAddress, Int32(count))
        }
    }

    // MARK: Receive

    /// How long a queue's reader stands aside after a busy poller got what it waited for: the
    /// poller (a ping-pong's reader, say) is likely back within it, and a reader that resumed
    /// its poll would be woken for every frame the poller then takes.
    static let busyPollGrace: Int64 = 200_000

    private func readLoop(_ queue: ReceiveQueue) {
        var polled = [
            pollfd(fd: queue.descriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: stopPipe.read, events: Int16(POLLIN), revents: 0),
        ]
        while !stopping.load(ordering: .acquiring) {
            // Stand aside while a thread busy-polls the queue, or did within the grace period;
            // a poller that goes to sleep unparks this reader.
            if queue.pollers.load(ordering: .acquiring) > 0 {
                _ = netmp_parker_park(queue.parker, 0, TAPInterface.busyPollGrace)
                continue
            }
            let since = netmp_monotonic_ns() &- queue.lastSatisfied.load(ordering: .acquiring)
            if since >= 0 && since < TAPInterface.busyPollGrace {
                _ = netmp_parker_park(queue.parker, 0, TAPInterface.busyPollGrace &- since)
                continue
            }
            polled[0].revents = 0
            polled[1].revents = 0
            let ready = poll(&polled, 2, -1)
            if ready < 0 {
                if errno == EINTR { continue }
                return
            }
            if polled[1].revents != 0 { return }
            if polled[0].revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 && polled[0].revents & Int16(POLLIN) == 0 {
                return
            }
            // A busy poller that began meanwhile takes what is ready (and the token orders
            // who reads, so frames reach the stack in the device's order).
            if queue.pollers.load(ordering: .acquiring) > 0 { continue }
            guard queue.reading.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
                continue
            }
            // The reader waited for the device: like a socket call that waited, its next batch
            // may run on it as the owner (direct dispatch) instead of waking a parked owner.
            ProtocolThread.callerWaited()
            _ = drain(queue)
            queue.reading.store(false, ordering: .releasing)
        }
    }

    /// Reads every frame ready on `queue` (up to `batchSize`) without blocking and hands the
    /// batch to the stack. The caller holds `queue.reading`. Returns the frames delivered.
    private func drain(_ queue: ReceiveQueue) -> Int {
        let headerSize = usesVirtioHeader ? VirtioNetHeader.size : 0
        // The longest frame: a large segment (the kernel's 64 KiB GSO limit, which fills the
        // largest pooled chunk exactly), or else the MTU's, with a byte of room more so that a
        // longer frame shows as filling the chunk.
        let longest = largeReceive ? 65536 : 14 + 4 + mtu
        let room = largeReceive ? longest : longest + 1
        let header = queue.header
        while queue.batch.count < batchSize {
            // A chunk read into but not kept (the frame was dropped or copied out): read into next.
            let chunk = queue.spare ?? pool.take(atLeast: room)
            queue.spare = nil
            // The virtio-net header apart, so the frame starts the chunk and fills it at most.
            var vectors = (
                iovec(iov_base: header, iov_len: headerSize),
                iovec(iov_base: chunk.base, iov_len: Swift.min(chunk.capacity, room))
            )
            let count = withUnsafeMutablePointer(to: &vectors) {
                $0.withMemoryRebound(to: iovec.self, capacity: 2) { readv(queue.descriptor, $0, 2) }
            }
            if count < 0 {
                queue.spare = chunk
                break
            }
            guard
                let frame = admit(
                    chunk, header: UnsafeRawBufferPointer(start: header, count: headerSize),
                    frameLength: count - headerSize, longest: longest)
            else {
                receiveDropped.add(1, ordering: .relaxed)
                queue.spare = chunk
                continue
            }
            if frame.chunk !== chunk { queue.spare = chunk }
            queue.batch.append(frame)
        }
        let delivered = queue.batch.count
        if delivered > 0 {
            deliverInbound(queue.batch)
            queue.batch.clearKeepingCapacity()
        }
        return delivered
    }

    // MARK: Busy polling

    public override var supportsBusyPolling: Bool { busyPolling }

    public override func beginBusyPoll() {
        for queue in receiveQueues { queue.pollers.add(1, ordering: .sequentiallyConsistent) }
    }

    /// Reads each queue whose token is free (another poller or the reader has the others).
    public override func busyPoll() -> Bool {
        var delivered = 0
        for queue in receiveQueues
        where queue.reading.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
            // Checked under the token: `close()` takes every token before it closes the queues.
            if !stopping.load(ordering: .acquiring) {
                ProtocolThread.callerWaited()
                delivered &+= drain(queue)
            }
            queue.reading.store(false, ordering: .releasing)
        }
        if delivered > 0 { busyPolled.add(delivered, ordering: .relaxed) }
        return delivered > 0
    }

    public override func endBusyPoll(blocking: Bool) {
        let now = netmp_monotonic_ns()
        for queue in receiveQueues {
            // Stamped before the count drops, so a reader that sees no poller sees the stamp.
            queue.lastSatisfied.store(blocking ? 0 : now, ordering: .sequentiallyConsistent)
            let left = queue.pollers.subtract(1, ordering: .sequentiallyConsistent).newValue
            // The poller goes to sleep: whatever comes next is the reader's to take at once
            // (a system call only if the reader sleeps).
            if blocking && left == 0 { netmp_parker_unpark(queue.parker) }
        }
    }

    /// Frames up to this long are copied out of a 64 KiB chunk (large receive) into a small
    /// one, so that an ACK queued somewhere does not pin 64 KiB; the big chunk is read into again.
    static let copyBreak = 1536

    /// Checks one frame read into `chunk` and finishes its checksum; nil drops it.
    private func admit(_ chunk: ByteChunk, header: UnsafeRawBufferPointer, frameLength: Int, longest: Int) -> Frame? {
        guard frameLength >= 14, frameLength <= longest else { return nil }
        let frame = UnsafeMutableRawBufferPointer(start: chunk.base, count: frameLength)
        var trusted = false
        var partial = false
        if let header = VirtioNetHeader(parsing: header) {
            // The kernel's own frames: a partial sum is left for the stack to trust (finished
            // only if the frame is forwarded), as Linux takes CHECKSUM_PARTIAL from virtio.
            switch header.prepare(frame, acceptingLargeSegments: largeReceive, leavingPartialChecksums: true) {
            case .ready:
                if header.flags & VirtioNetHeader.dataValid != 0 {
                    vouched.add(1, ordering: .relaxed)
                    trusted = true
                }
            case .checksumCompleted: completed.add(1, ordering: .relaxed)
            case .checksumPartial:
                partials.add(1, ordering: .relaxed)
                trusted = true
                partial = true
            case .malformed: return nil
            }
            if header.segmentation != VirtioNetHeader.SegmentationType.none.rawValue {
                largeSegments.add(1, ordering: .relaxed)
            }
        }
        var admitted: Frame
        if largeReceive && frameLength <= TAPInterface.copyBreak {
            admitted = Frame(copying: UnsafeRawBufferPointer(frame), pool: pool)
        } else {
            chunk.filled = frameLength
            admitted = Frame(chunk: chunk, start: 0, end: frameLength)
        }
        admitted.checksumTrusted = trusted
        admitted.checksumPartial = partial
        return admitted
    }
}

/// One queue's receive side: its descriptor, the token that orders who reads it, and the
/// busy pollers that stand in for its reader thread.
private final class ReceiveQueue: @unchecked Sendable {
    let descriptor: Int32
    /// Held by whoever reads the queue, until the frames read are delivered: one reader at a
    /// time keeps the device's order. The scratch below is used only by the holder.
    let reading = Atomic<Bool>(false)
    /// Threads busy-polling this queue now.
    let pollers = Atomic<Int>(0)
    /// When a busy poller last ended with what it waited for (monotonic ns; 0 after one went
    /// to sleep): the reader stands aside for `TAPInterface.busyPollGrace` after it.
    let lastSatisfied = Atomic<Int64>(0)
    /// Where the reader thread sleeps while pollers stand in for it.
    let parker: UnsafeMutablePointer<netmp_parker>

    // Under `reading`:
    let header: UnsafeMutableRawPointer
    var spare: ByteChunk?
    var batch: [Frame] = []

    init(descriptor: Int32, batchSize: Int) {
        self.descriptor = descriptor
        parker = .allocate(capacity: 1)
        netmp_parker_init(parker)
        header = UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 8)
        batch.reserveCapacity(batchSize)
    }

    /// Gives the spare chunk back (when the interface goes).
    func release(to pool: ChunkPool) { pool.recycle(&spare) }

    deinit {
        parker.deallocate()
        header.deallocate()
    }
}
