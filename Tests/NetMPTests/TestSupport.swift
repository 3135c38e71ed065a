import CNetMP
import Synchronization
import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// FNV-1a, 64 bits: the hash every transfer is checked with.
struct StreamHash: Equatable, CustomStringConvertible {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    private(set) var count = 0

    mutating func add(_ bytes: UnsafeRawBufferPointer) {
        var hash = value
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        value = hash
        count += bytes.count
    }

    mutating func add(_ bytes: [UInt8]) { bytes.withUnsafeBytes { add($0) } }

    var description: String { "hash \(String(value, radix: 16)) over \(count) bytes" }
}

/// A seeded generator (SplitMix64): the same seed gives the same bytes.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: count)
        var index = 0
        while index < count {
            var word = next()
            for _ in 0..<8 where index < count {
                result[index] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                index += 1
            }
        }
        return result
    }
}

/// Runs `body` with a deadline; if it is not done in time the process stops with a message
/// naming the test, so a hang fails clearly instead of stalling CI.
func bounded<T>(_ seconds: Int = 30, _ name: String = #function, _ body: () throws -> T) rethrows -> T {
    let watchdog = Watchdog(seconds: seconds, name: name)
    defer { watchdog.finish() }
    return try body()
}

final class Watchdog: @unchecked Sendable {
    private let parker: UnsafeMutablePointer<netmp_parker>
    private let finished = Atomic<Bool>(false)
    private var thread: OSThread?

    init(seconds: Int, name: String) {
        parker = .allocate(capacity: 1)
        netmp_parker_init(parker)
        thread = OSThread.start(name: "watchdog") { [self] in
            let deadline = netmp_monotonic_ns() + Int64(seconds) * 1_000_000_000
            while !self.finished.load(ordering: .acquiring) {
                let remaining = deadline - netmp_monotonic_ns()
                if remaining <= 0 {
                    fatalError("\(name) did not finish within \(seconds) s: hung")
                }
                _ = netmp_parker_park(self.parker, 0, remaining)
            }
        }
    }

    func finish() {
        finished.store(true, ordering: .releasing)
        netmp_parker_unpark(parker)
        thread?.join()
        parker.deallocate()
    }
}

/// Runs `body` on `count` OS threads at once and waits for all of them.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let threads = (0..<count).map { index in OSThread.start(name: "test-\(index)") { body(index) } }
    for thread in threads { thread.join() }
}

/// Collects failures from other threads for the test thread to report.
final class FailureLog: @unchecked Sendable {
    private let lock = NetLock()
    private var messages: [String] = []

    func record(_ message: String) { lock.withLock { messages.append(message) } }

    func check(file: StaticString = #filePath, line: UInt = #line) {
        for message in lock.withLock({ messages }) { XCTFail(message, file: file, line: line) }
    }

    var isEmpty: Bool { lock.withLock { messages.isEmpty } }
}

extension XCTestCase {
    /// Asserts that `body` throws exactly `expected`.
    func assertThrows<T>(
        _ expected: NetError, file: StaticString = #filePath, line: UInt = #line, _ body: () throws(NetError) -> T
    ) {
        do {
            _ = try body()
            XCTFail("expected \(expected), got success", file: file, line: line)
        } catch {
            XCTAssertEqual(error, expected, file: file, line: line)
        }
    }
}
