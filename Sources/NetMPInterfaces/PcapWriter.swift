import Glibc
import NetMPRuntime
import NetMPWire

/// Writes frames in the classic libpcap format (LINKTYPE_ETHERNET, microsecond timestamps from
/// the stack's clock), to a file or to memory. Thread-safe: interfaces on several threads may
/// share one writer.
public final class PcapWriter: @unchecked Sendable {
    /// LINKTYPE_ETHERNET.
    public static let linkTypeEthernet: UInt32 = 1
    public static let snapLength: UInt32 = 65535

    private let lock = NetLock()
    private let clock: any NetClock
    private var file: UnsafeMutablePointer<FILE>?  // under lock
    private var memory: [UInt8]?  // under lock
    private var frameCount = 0  // under lock

    /// A writer to the file at `path` (created or truncated).
    public init(path: String, clock: any NetClock) throws(NetError) {
        self.clock = clock
        guard let handle = fopen(path, "wb") else { throw NetError(rawValue: errno) }
        file = handle
        writeHeader()
    }

    /// A writer that keeps the capture in memory (`bytes`).
    public init(clock: any NetClock) {
        self.clock = clock
        memory = []
        writeHeader()
    }

    deinit { close() }

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
            _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        } else if memory != nil {
            memory?.append(contentsOf: bytes)
        }
    }

    /// Records one frame, stamped with the clock's time now.
    public func write(_ frame: UnsafeRawBufferPointer) {
        let nanoseconds = Swift.max(0, clock.nanoseconds)
        let seconds = UInt32(truncatingIfNeeded: nanoseconds / 1_000_000_000)
        let microseconds = UInt32(truncatingIfNeeded: (nanoseconds % 1_000_000_000) / 1000)
        let captured = Swift.min(frame.count, Int(PcapWriter.snapLength))
        var record: [UInt8] = []
        record.reserveCapacity(16 + captured)
        PcapWriter.appendLittleEndian(seconds, to: &record)
        PcapWriter.appendLittleEndian(microseconds, to: &record)
        PcapWriter.appendLittleEndian(UInt32(captured), to: &record)
        PcapWriter.appendLittleEndian(UInt32(frame.count), to: &record)
        record.append(contentsOf: UnsafeRawBufferPointer(rebasing: frame[0..<captured]))
        lock.withLock {
            emitLocked(record)
            frameCount += 1
        }
    }

    /// Frames recorded so far.
    public var count: Int { lock.withLock { frameCount } }

    /// The capture so far (memory writers; empty for file writers).
    public var bytes: [UInt8] { lock.withLock { memory ?? [] } }

    /// Flushes a file writer's buffered bytes.
    public func flush() {
        lock.withLock { if let file { fflush(file) } }
    }

    /// Closes a file writer; later writes are dropped.
    public func close() {
        lock.withLock {
            if let file { fclose(file) }
            file = nil
        }
    }
}
