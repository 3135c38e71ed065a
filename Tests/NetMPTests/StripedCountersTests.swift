import Synchronization
import XCTest

@testable import NetMPInterfaces
@testable import NetMPRuntime

/// The per-thread counters the interfaces count with, and the interface's receiver, which
/// deliveries call without a lock.
final class StripedCountersTests: XCTestCase {
    func testAddsFromManyThreadsSumExactly() {
        bounded {
            let counters = StripedCounters(width: 3)
            let threads = 12
            let adds = 50_000
            let workers = (0..<threads).map { index in
                OSThread.start(name: "adder-\(index)") {
                    let stripe = StripedCounters.currentStripe
                    for _ in 0..<adds {
                        counters.add(1, to: 0, stripe: stripe)
                        counters.add(index, to: 2, stripe: stripe)
                    }
                }
            }
            for worker in workers { worker.join() }
            XCTAssertEqual(counters.sum(0), threads * adds)
            XCTAssertEqual(counters.sum(1), 0)
            XCTAssertEqual(counters.sum(2), (0..<threads).reduce(0, +) * adds)
        }
    }

    func testEachThreadKeepsItsStripe() {
        let first = StripedCounters.currentStripe
        XCTAssertEqual(StripedCounters.currentStripe, first)
        XCTAssertTrue((0..<StripedCounters.stripeCount).contains(first))
    }

    func testWaitForZeroWaitsForASectionThatBeganBefore() {
        bounded {
            let readers = StripedCounters(width: 1)
            let inside = Atomic<Bool>(false)
            let release = Atomic<Bool>(false)
            let left = Atomic<Bool>(false)
            let reader = OSThread.start(name: "reader") {
                let stripe = StripedCounters.currentStripe
                readers.addOrdered(1, to: 0, stripe: stripe)
                inside.store(true, ordering: .sequentiallyConsistent)
                while !release.load(ordering: .sequentiallyConsistent) {}
                left.store(true, ordering: .sequentiallyConsistent)
                readers.addOrdered(-1, to: 0, stripe: stripe)
            }
            while !inside.load(ordering: .sequentiallyConsistent) {}
            let releaser = OSThread.start(name: "releaser") {
                // The waiter below must still be waiting when this lets the reader go.
                release.store(true, ordering: .sequentiallyConsistent)
            }
            readers.waitForZero(0)
            XCTAssertTrue(left.load(ordering: .sequentiallyConsistent), "returned while a section was open")
            releaser.join()
            reader.join()
        }
    }

    private static func frame() -> Frame {
        [UInt8](repeating: 0, count: 14).withUnsafeBytes { Frame(copying: $0) }
    }

    /// A replaced receiver is never called after `setReceiver` returns, and the interface holds
    /// no receiver it no longer uses (the stack's receiver holds the stack: a kept one leaked it).
    func testAReplacedReceiverIsReleasedAndNoLongerCalled() {
        bounded {
            let interface = LoopbackInterface()
            weak var weakFirst: Sink?
            let second = Sink()
            do {
                let first = Sink()
                weakFirst = first
                interface.setReceiver { frames in first.frames.add(frames.count, ordering: .relaxed) }
                interface.transmit([StripedCountersTests.frame()])
                XCTAssertEqual(first.frames.load(ordering: .relaxed), 1)
                interface.setReceiver { frames in second.frames.add(frames.count, ordering: .relaxed) }
            }
            XCTAssertNil(weakFirst, "the replaced receiver is still held")
            interface.transmit([StripedCountersTests.frame()])
            XCTAssertEqual(second.frames.load(ordering: .relaxed), 1)
            interface.setReceiver(nil)
            interface.transmit([StripedCountersTests.frame()])
            XCTAssertEqual(second.frames.load(ordering: .relaxed), 1)
            XCTAssertEqual(interface.statistics.framesSent, 3)
            XCTAssertEqual(interface.statistics.framesReceived, 3)
        }
    }
}

/// Counts the frames a receiver was given.
private final class Sink: Sendable {
    let frames = Atomic<Int>(0)
}

/// `NetLock` (a futex word outside ThreadSanitizer): many threads on two CPUs contend, so the
/// spin, the sleep and the wake-up all run, and nothing is lost or doubled.
final class NetLockTests: XCTestCase {
    func testContendedIncrementsAreExact() {
        bounded {
            let lock = NetLock()
            let count = UnsafeCounter()
            let threads = 8
            let increments = 50_000
            let workers = (0..<threads).map { index in
                OSThread.start(name: "locker-\(index)") {
                    for _ in 0..<increments {
                        lock.lock()
                        count.value += 1
                        lock.unlock()
                    }
                }
            }
            for worker in workers { worker.join() }
            XCTAssertEqual(lock.withLock { count.value }, threads * increments)
        }
    }
}

/// A counter only ever touched under a lock.
private final class UnsafeCounter: @unchecked Sendable {
    var value = 0
}
