import Dispatch
import Glibc
import Synchronization
import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// A clock that moves one microsecond every time it is read.
private final class TickingClock: NetClock {
    private let now = Atomic<Int64>(0)
    var nanoseconds: Int64 { now.add(1000, ordering: .relaxed).newValue }
    var isManual: Bool { false }
    func addAdvanceObserver(_ observer: @escaping @Sendable () -> Void) {}
}

/// The pcap writer: wall-clock timestamps, records in order under one lock, failures reported.
final class InterfacePcapTests: XCTestCase {
    /// (seconds, microseconds) of each record of a capture.
    func timestamps(_ capture: [UInt8]) -> [(UInt32, UInt32)] {
        func word(_ offset: Int) -> UInt32 {
            (0..<4).reduce(UInt32(0)) { $0 | UInt32(capture[offset + $1]) << UInt32(8 * $1) }
        }
        var result: [(UInt32, UInt32)] = []
        var offset = 24
        while offset + 16 <= capture.count {
            result.append((word(offset), word(offset + 4)))
            offset += 16 + Int(word(offset + 8))
        }
        return result
    }

    /// Stamped from the monotonic clock, a capture said 1970 plus the uptime.
    func testTimestampsAreWallClockTime() {
        let writer = PcapWriter(clock: SystemClock())
        [UInt8](repeating: 1, count: 60).withUnsafeBytes { writer.write($0) }
        let stamps = timestamps(writer.bytes)
        XCTAssertEqual(stamps.count, 1)
        let wall = UInt32(truncatingIfNeeded: time(nil))
        if let first = stamps.first { XCTAssertLessThanOrEqual(Swift.max(first.0, wall) - Swift.min(first.0, wall), 2) }
    }

    /// A manual clock's time is written as is: a seeded run gives the same bytes.
    func testManualClockTimeIsWrittenAsIs() {
        let clock = ManualClock(startingAt: 5_000_250_000)
        let writer = PcapWriter(clock: clock)
        [UInt8](repeating: 1, count: 60).withUnsafeBytes { writer.write($0) }
        XCTAssertEqual(timestamps(writer.bytes).map { [$0.0, $0.1] }, [[5, 250]])
    }

    /// Stamped outside the lock, records from several threads could go out of time order.
    func testRecordsFromManyThreadsAreInTimeOrder() {
        let writer = PcapWriter(clock: TickingClock())
        let frame = [UInt8](repeating: 2, count: 64)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<500 { frame.withUnsafeBytes { writer.write($0) } }
        }
        let stamps = timestamps(writer.bytes).map { UInt64($0.0) * 1_000_000 + UInt64($0.1) }
        XCTAssertEqual(stamps.count, 2000)
        XCTAssertEqual(stamps, stamps.sorted())
        XCTAssertEqual(Set(stamps).count, 2000)
    }

    /// A failed write was ignored; now it is kept (ENOSPC from /dev/full).
    func testFailedWriteIsReported() throws {
        let writer = try PcapWriter(path: "/dev/full", clock: ManualClock())
        XCTAssertNil(writer.failure)
        [UInt8](repeating: 3, count: 60).withUnsafeBytes { writer.write($0) }
        writer.flush()
        XCTAssertEqual(writer.failure, NetError(rawValue: ENOSPC))
        writer.close()
    }
}
