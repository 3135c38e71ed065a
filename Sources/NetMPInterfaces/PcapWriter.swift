import Glibc
import NetMPRuntime
import NetMPWire

/// Writes frames in the classic libpcap format (LINKTYPE_ETHERNET, microsecond timestamps), to a
/// file or to memory. Timestamps are wall-clock time (the monotonic clock shifted by its offset
/// from CLOCK_REALTIME taken once), or the simulated time of a manual clock so that a seeded run
/// writes the same bytes. Thread-safe: records are stamped and written under one lock, so they
/// are in time order whichever threads share the writer. A failed write is kept in `failure`.
public final class PcapWriter: @unchecked Sendable {
    /// LINKTYPE_ETHERNET.
    public static let linkTypeEthernet: UInt32 = 1
    public static let snapLength: UInt32 = 65535

    private let lock = NetLock()
    private let clock: any NetClock
    private var file: UnsafeMutablePointer<FILE>?  // under lock
    private var memory: [UInt8]?  // under lock
    private var frameCount = 0  // under lock
    private var firstFailure: NetError?  // under lock
    /// Added to the clock to give wall-clock time (0 for a manual clock).
    private let wallOffset: Int64

    /// A writer to the file at `path` (created or truncated).
    public init(path: String, clock: any NetClock) throws(NetError) {
        self.clock = clock
        wallOffset = PcapWriter.wallOffset(for: clock)
        guard let handle = fopen(path, "wb") else { throw NetError(rawValue: errno) }
        file = handle
        writeHeader()
    }

    /// A writer that keeps the capture in memory (`bytes`).
    public init(clock: any NetClock) {
        self.clock = clock
        wallOffset = PcapWriter.wallOffset(for: clock)
        memory = []
        writeHeader()
    }

    deinit { close() }

    private static func wallOffset(for clock: any NetClock) -> Int64 {
        if clock.isManual { return 0 }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let wall = Int64(now.tv_sec) &* 1_000_000_000 &+ Int64(now.tv_nsec)
        return wall &- clock.nanoseconds
    }

    private func writeHeader() {
        var header: [UInt8] = []
        header.reserveCapacity(24)
        PcapWriter.appendLittleEndian(UInt32(0xA1B2_C3D4), to: &header)
        PcapWriter.appendLittleEndian(UInt16(2), to: &header)
        PcapWriter.appendLittleEndian(UInt16(4), to: &header)
        PcapWriter.appendLittleEndian(UInt32(0), to: &header)  // thiszone
        PcapWriter.appendLittleEndian(UInt32(0), to: &header)  // sigfigs
        PcapWriter.appendLittleEndian(PcapWriter.snapLength, to: &header)
        PcapWriter.appendLittleEndian(PcapWriter.linkTypeEthernet, to: &header)
        lock.withLock { emitLocked(header) }
    }

    private static func appendLittleEndian<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        var v = value.littleEndian
        withUnsafeBytes(of: &v) { bytes.append(contentsOf: $0) }
    }

    private func emitLocked(_ bytes: [UInt8]) {
        if let file {
            let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
            if written != bytes.count { noteFailureLocked() }
        } else if memory != nil {
            memory?.append(contentsOf: bytes)
        }
    }

    private func noteFailureLocked() {
        if firstFailure == nil { firstFailure = NetError(rawValue: errno == 0 ? 5 : errno) }
    }

    /// Records one frame, stamped with the time now (taken under the lock, so records are in order).
    public func write(_ frame: UnsafeRawBufferPointer) {
        let captured = Swift.min(frame.count, Int(PcapWriter.snapLength))
        var record: [UInt8] = []
        record.reserveCapacity(16 + captured)
        PcapWriter.appendLittleEndian(UInt64(0), to: &record)
        PcapWriter.appendLittleEndian(UInt32(captured), to: &record)
        PcapWriter.appendLittleEndian(UInt32(frame.count), to: &record)
        record.append(contentsOf: UnsafeRawBufferPointer(rebasing: frame[0..<captured]))
        lock.withLock {
            let nanoseconds = Swift.max(0, clock.nanoseconds &+ wallOffset)
            let seconds = UInt32(truncatingIfNeeded: nanoseconds / 1_000_000_000)
            let microseconds = UInt32(truncatingIfNeeded: (nanoseconds % 1_000_000_000) / 1000)
            for index in 0..<4 {
                record[index] = UInt8(truncatingIfNeeded: seconds >> UInt32(8 * index))
                record[4 + index] = UInt8(truncatingIfNeeded: microseconds >> UInt32(8 * index))
            }
            emitLocked(record)
            frameCount += 1
        }
    }

    /// The first write, flush or close that failed (a full disk, a closed descriptor), if any.
    public var failure: NetError? { lock.withLock { firstFailure } }

    /// Frames recorded so far.
    public var count: Int { lock.withLock { frameCount } }

    /// The capture so far (memory writers; empty for file writers).
    public var bytes: [UInt8] { lock.withLock { memory ?? [] } }

    /// Flushes a file writer's buffered bytes.
    public func flush() {
        lock.withLock {
            if let file, fflush(file) != 0 { noteFailureLocked() }
        }
    }

    /// Closes a file writer; later writes are dropped.
    public func close() {
        lock.withLock {
            if let file, fclose(file) != 0 { noteFailureLocked() }
            file = nil
        }
    }
}
