import Synchronization
import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// A value only a protocol thread's messages touch.
final class OwnedBox<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}

final class RuntimeTests: XCTestCase {
    private func scaled(_ count: Int) -> Int {
        guard let text = getenv("NETMP_STRESS_SCALE"), let value = Double(String(cString: text)) else { return count }
        return Swift.max(1, Int(Double(count) * value))
    }

    func testEachSendersMessagesArriveInOrderUnderManyConcurrentSenders() {
        bounded(60) {
            let thread = ProtocolThread(index: 0, clock: SystemClock())
            defer { thread.stop() }
            let senders = 6
            let perSender = scaled(50_000)
            let lastSeen = OwnedBox([Int](repeating: -1, count: senders))
            let outOfOrder = OwnedBox(0)
            let total = OwnedBox(0)
            onThreads(senders) { sender in
                for sequence in 0..<perSender {
                    thread.send {
                        if lastSeen.value[sender] != sequence - 1 { outOfOrder.value += 1 }
                        lastSeen.value[sender] = sequence
                        total.value += 1
                    }
                }
            }
            let (count, errors, last) = try! thread.call { () throws(NetError) in
                (total.value, outOfOrder.value, lastSeen.value)
            }
            XCTAssertEqual(count, senders * perSender)
            XCTAssertEqual(errors, 0)
            XCTAssertEqual(last, [Int](repeating: perSender - 1, count: senders))
        }
    }

    func testNoWakeUpIsLostWhileTheThreadParksAndWakes() {
        bounded(120) {
            // The thread parks as soon as its port is empty (no idle spin, no yields), so that it
            // parks between bursts however busy the machine is; restored after it stopped.
            let saved = (
                SpinPolicy.protocolThreadSpinNanoseconds, SpinPolicy.protocolThreadMinimumSpinNanoseconds,
                SpinPolicy.waiterYields
            )
            SpinPolicy.protocolThreadSpinNanoseconds = 0
            SpinPolicy.protocolThreadMinimumSpinNanoseconds = 0
            SpinPolicy.waiterYields = 0
            defer {
                SpinPolicy.protocolThreadSpinNanoseconds = saved.0
                SpinPolicy.protocolThreadMinimumSpinNanoseconds = saved.1
                SpinPolicy.waiterYields = saved.2
            }
            let thread = ProtocolThread(index: 0, clock: SystemClock())
            defer { thread.stop() }
            let handled = OwnedBox(0)
            let senders = 2
            let bursts = scaled(20_000)
            // Short bursts with pauses in between make the thread park between many bursts, so
            // each such burst's first message must wake it; before every seventh burst the
            // sender waits until the thread has parked, so parking is certain.
            onThreads(senders) { sender in
                var spin = UInt64(sender)
                for burst in 0..<bursts {
                    if burst % 7 == 3 { while !thread.isParked_forTesting { sched_yield() } }
                    for _ in 0..<(1 + burst % 50) { thread.send { handled.value += 1 } }
                    for _ in 0..<(burst % 7 == 0 ? 20_000 : 10) { spin = spin &* 6_364_136_223_846_793_005 &+ 1 }
                }
                XCTAssertNotEqual(spin, 42)
            }
            let expected = senders * (0..<bursts).reduce(0) { $0 + 1 + $1 % 50 }
            XCTAssertEqual(try! thread.call { () throws(NetError) in handled.value }, expected)
            XCTAssertGreaterThanOrEqual(expected, senders * bursts)
            XCTAssertGreaterThan(thread.parkWakeups.load(ordering: .relaxed), 0, "the thread did park")
        }
    }

    func testMillionsOfSendAndWaitsComplete() {
        bounded(120) {
            let thread = ProtocolThread(index: 0, clock: SystemClock())
            defer { thread.stop() }
            let perThread = scaled(200_000)
            let sums = OwnedBox([0, 0])
            onThreads(2) { index in
                var sum = 0
                for value in 0..<perThread { sum &+= try! thread.call { () throws(NetError) in value } }
                let total = sum
                thread.send { sums.value[index] = total }
            }
            let result = try! thread.call { () throws(NetError) in sums.value }
            XCTAssertEqual(result, [perThread * (perThread - 1) / 2, perThread * (perThread - 1) / 2])
        }
    }

    func testSendAndWaitToOwnThreadRunsInline() {
        bounded {
            let thread = ProtocolThread(index: 0, clock: SystemClock())
            defer { thread.stop() }
            let result = try! thread.call { () throws(NetError) -> [Bool] in
                // A synchronous call from the thread to itself must not deadlock.
                let inner = try thread.call { () throws(NetError) in thread.isCurrent }
                return [thread.isCurrent, inner]
            }
            XCTAssertEqual(result, [true, true])
            XCTAssertFalse(thread.isCurrent)
        }
    }

    func testRepliesCarryErrors() {
        bounded {
            let thread = ProtocolThread(index: 0, clock: SystemClock())
            defer { thread.stop() }
            assertThrows(.addressInUse) { () throws(NetError) in
                try thread.call { () throws(NetError) -> Int in throw .addressInUse }
            }
        }
    }

    func testSendAndAwaitSuspendsWithoutBlocking() async throws {
        let watchdog = Watchdog(seconds: 30, name: #function)
        defer { watchdog.finish() }
        let thread = ProtocolThread(index: 0, clock: SystemClock())
        defer { thread.stop() }
        var total = 0
        for value in 0..<1000 {
            total += try await thread.callAsync { () throws(NetError) in value * 2 }
        }
        XCTAssertEqual(total, 999 * 1000)
        do {
            _ = try await thread.callAsync { () throws(NetError) -> Int in throw .timedOut }
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error, .timedOut)
        }
    }

    func testStoppedThreadRefusesMessages() {
        let thread = ProtocolThread(index: 0, clock: SystemClock())
        thread.stop()
        XCTAssertFalse(thread.send {})
        assertThrows(.shutdown) { () throws(NetError) in try thread.call { () throws(NetError) in 1 } }
    }

    // MARK: Timers

    func testTimersFireInDeadlineOrderAndRearmAndCancelExactly() {
        let clock = ManualClock()
        let thread = ProtocolThread(index: 0, clock: clock, mode: .driven)
        let fired = OwnedBox<[String]>([])
        var made: [String: Callout] = [:]
        for (name, delay) in [("c", 30), ("a", 10), ("b", 20), ("d", 40), ("e", 20)] {
            let timer = Callout(on: thread) { fired.value.append(name) }
            made[name] = timer
            thread.send { timer.arm(after: Int64(delay)) }
        }
        let timers = made
        thread.runUntilIdle()
        XCTAssertEqual(fired.value, [])
        clock.advance(by: 9)
        thread.runUntilIdle()
        XCTAssertEqual(fired.value, [])
        clock.advance(by: 1)
        thread.runUntilIdle()
        XCTAssertEqual(fired.value, ["a"])
        // Re-arm d earlier, cancel c, then pass every deadline: b and e tie, armed in that order.
        thread.send {
            timers["d"]?.arm(after: 5)
            timers["c"]?.cancel()
            XCTAssertEqual(timers["c"]?.isArmed, false)
        }
        thread.runUntilIdle()
        clock.advance(by: 5)
        thread.runUntilIdle()
        XCTAssertEqual(fired.value, ["a", "d"])
        clock.advance(by: 100)
        thread.runUntilIdle()
        XCTAssertEqual(fired.value, ["a", "d", "b", "e"])
        // A timer fires once per arming.
        clock.advance(by: 1000)
        thread.runUntilIdle()
        XCTAssertEqual(fired.value, ["a", "d", "b", "e"])
        thread.send { timers["a"]?.arm(after: 1) }
        thread.runUntilIdle()
        clock.advance(by: 1)
        thread.runUntilIdle()
        XCTAssertEqual(fired.value, ["a", "d", "b", "e", "a"])
        thread.stop()
    }

    func testTimersFireOnTheOwnerThreadDrivenByTheManualClock() {
        bounded {
            let clock = ManualClock()
            let thread = ProtocolThread(index: 3, clock: clock)
            defer { thread.stop() }
            let fired = OwnedBox<[Int64]>([])
            let onOwner = OwnedBox(true)
            let timers = (1...50).map { index in
                Callout(on: thread) {
                    fired.value.append(clock.nanoseconds)
                    if !thread.isCurrent { onOwner.value = false }
                    _ = index
                }
            }
            try! thread.call { () throws(NetError) in
                for (index, timer) in timers.enumerated() { timer.arm(at: Int64((index * 37) % 50 + 1) * 1000) }
            }
            for step in 1...50 {
                clock.advance(by: 1000)
                // Time moved before this message was queued, so the timers due now ran first.
                let count = try! thread.call { () throws(NetError) in fired.value.count }
                XCTAssertEqual(count, step)
            }
            let times = try! thread.call { () throws(NetError) in fired.value }
            XCTAssertEqual(times, (1...50).map { Int64($0) * 1000 })
            XCTAssertTrue(try! thread.call { () throws(NetError) in onOwner.value })
        }
    }

    func testHeavyRearmingKeepsOneLiveEntry() {
        let clock = ManualClock()
        let thread = ProtocolThread(index: 0, clock: clock, mode: .driven)
        let fires = OwnedBox(0)
        let timer = Callout(on: thread) { fires.value += 1 }
        thread.send {
            for step in 0..<100_000 { timer.arm(after: Int64(1000 + step)) }
        }
        thread.runUntilIdle()
        clock.advance(by: 200_000)
        thread.runUntilIdle()
        XCTAssertEqual(fires.value, 1)
        thread.stop()
    }

    func testDrivenModeRunsOnlyWhenStepped() {
        let thread = ProtocolThread(index: 0, clock: ManualClock(), mode: .driven)
        let ran = OwnedBox(0)
        thread.send { ran.value += 1 }
        thread.send { ran.value += 1 }
        XCTAssertEqual(ran.value, 0)
        thread.runUntilIdle()
        XCTAssertEqual(ran.value, 2)
        XCTAssertEqual(try! thread.call { () throws(NetError) in ran.value * 10 }, 20)
        thread.stop()
    }
}
