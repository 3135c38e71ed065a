import CNetMP
import Synchronization
import XCTest

@testable import NetMP

final class SpinCalibrationTests: XCTestCase {
    private let twentyNanosecondPause = SpinCalibration(pauseNanoseconds: 20, wakeNanoseconds: 16_000)

    func testNanosecondsTurnIntoPauseRoundsAndBack() {
        let calibration = twentyNanosecondPause
        XCTAssertEqual(calibration.rounds(for: 1000), 50)
        XCTAssertEqual(calibration.rounds(for: 30), 2)  // 1.5 rounds, rounded
        XCTAssertEqual(calibration.rounds(for: 0), 0)
        XCTAssertEqual(calibration.rounds(for: -5), 0)
        XCTAssertEqual(calibration.rounds(for: Int64.max), Int32.max)
        XCTAssertEqual(calibration.nanoseconds(forRounds: 50), 1000)
        XCTAssertEqual(calibration.nanoseconds(forRounds: 0), 0)
        XCTAssertEqual(calibration.nanoseconds(forRounds: -2), 0)
    }

    func testMeasurementsOutsideTheirRangeAreClamped() {
        let tiny = SpinCalibration(pauseNanoseconds: 0.01, wakeNanoseconds: 10)
        XCTAssertEqual(tiny.pauseNanoseconds, 0.25)
        XCTAssertEqual(tiny.wakeNanoseconds, 1000)
        let huge = SpinCalibration(pauseNanoseconds: 5000, wakeNanoseconds: 5_000_000)
        XCTAssertEqual(huge.pauseNanoseconds, 1000)
        XCTAssertEqual(huge.wakeNanoseconds, 100_000)
        XCTAssertEqual(SpinCalibration(pauseNanoseconds: .nan, wakeNanoseconds: 16_000).pauseNanoseconds, 40)
    }

    func testWaiterSpinsAtLeastHalfAgainAWakeUp() {
        // Defaults: 5 µs minimum, 50 µs maximum.
        XCTAssertEqual(twentyNanosecondPause.waiterBounds, 24_000...50_000)
        XCTAssertEqual(SpinCalibration(pauseNanoseconds: 20, wakeNanoseconds: 2000).waiterBounds, 5000...50_000)
        // Half again a wake-up just fits under the maximum: it is the floor.
        XCTAssertEqual(SpinCalibration(pauseNanoseconds: 20, wakeNanoseconds: 33_333).waiterBounds, 49_999...50_000)
        XCTAssertEqual(SpinCalibration(pauseNanoseconds: 20, wakeNanoseconds: 33_334).waiterBounds, 5000...50_000)
        // A wake-up too dear for any affordable spin to catch: the floor falls back to the minimum.
        XCTAssertEqual(SpinCalibration(pauseNanoseconds: 20, wakeNanoseconds: 40_000).waiterBounds, 5000...50_000)
        // A protocol thread spins 5 to 10 µs whatever a wake-up costs.
        XCTAssertEqual(twentyNanosecondPause.protocolThreadBounds, 5000...10_000)
    }

    private let bounds: ClosedRange<Int64> = 24_000...50_000

    private func adapted(_ budget: Int64, _ outcome: SpinOutcome) -> Int64 {
        SpinCalibration.adaptedBudget(budget, after: outcome, within: bounds)
    }

    func testBudgetGrowsToTwiceWhatCaughtTheWakeUp() {
        XCTAssertEqual(adapted(50_000, .caught(afterNanoseconds: 20_000)), 41_000)
        XCTAssertEqual(adapted(24_000, .caught(afterNanoseconds: 600)), 24_000)
        XCTAssertEqual(adapted(24_000, .caught(afterNanoseconds: 30_000)), 50_000)
        XCTAssertEqual(adapted(24_000, .caught(afterNanoseconds: -7)), 24_000)
        XCTAssertEqual(adapted(24_000, .caught(afterNanoseconds: Int64.max)), 50_000)
        XCTAssertEqual(adapted(24_000, .caught(afterNanoseconds: Int64.max / 2)), 50_000)
    }

    func testBudgetHalvesAfterASleepButNeverBelowAWakeUp() {
        var budget: Int64 = 50_000
        budget = adapted(budget, .slept)
        XCTAssertEqual(budget, 25_000)
        // Long gaps in a row: the budget stays where it still catches a partner being woken.
        for _ in 0..<10 { budget = adapted(budget, .slept) }
        XCTAssertEqual(budget, 24_000)
        // One quick answer and it is back to what catches the partner.
        XCTAssertEqual(adapted(budget, .caught(afterNanoseconds: 400)), 24_000)
    }

    func testAWakeUpInAYieldThatRanOthersMeansThePartnerNeedsThisCPU() {
        // The partner ran on this CPU: spinning only delays it, so the next wait yields at once.
        XCTAssertEqual(adapted(24_000, .yieldedToOthers), 0)
        XCTAssertEqual(adapted(50_000, .yieldedToOthers), 0)
        // From no spin, a sleep (the partner is elsewhere after all) brings back the floor.
        XCTAssertEqual(adapted(0, .slept), 24_000)
        XCTAssertEqual(adapted(0, .caught(afterNanoseconds: 1500)), 24_000)
    }

    func testParkResultsAdaptTheWaiterBudget() {
        let calibration = twentyNanosecondPause
        // Caught after 1,000 rounds of 20 ns: twice 20 µs plus 1 µs.
        XCTAssertEqual(calibration.adaptedWaiterBudget(50_000, afterPark: 1000, waited: 99_999, yielded: 0), 41_000)
        XCTAssertEqual(
            calibration.adaptedWaiterBudget(50_000, afterPark: NETMP_PARK_SLEPT, waited: 99_999, yielded: 500), 25_000)
        // Woken in yields that switched to other threads (more than 2 µs): no spin next time.
        XCTAssertEqual(
            calibration.adaptedWaiterBudget(30_000, afterPark: NETMP_PARK_YIELDED, waited: 60_000, yielded: 2001), 0)
        // Woken in yields that ran no one: the partner was just late, 23 µs after the wait began.
        XCTAssertEqual(
            calibration.adaptedWaiterBudget(30_000, afterPark: NETMP_PARK_YIELDED, waited: 23_000, yielded: 2000),
            47_000)
        // A timeout says nothing about the partner: the budget stays.
        XCTAssertEqual(
            calibration.adaptedWaiterBudget(30_000, afterPark: NETMP_PARK_TIMED_OUT, waited: 1, yielded: 0), 30_000)
        XCTAssertEqual(calibration.outcome(ofPark: 7, waited: 5, yielded: 0), .caught(afterNanoseconds: 140))
        XCTAssertNil(calibration.outcome(ofPark: NETMP_PARK_TIMED_OUT, waited: 5, yielded: 0))
    }

    func testYieldsAreTimedByTheParker() {
        // Notified before the park: no yield is made, none is timed.
        let parker = UnsafeMutablePointer<netmp_parker>.allocate(capacity: 1)
        defer { parker.deallocate() }
        netmp_parker_init(parker)
        netmp_parker_unpark(parker)
        var yielded: Int64 = -1
        XCTAssertEqual(netmp_parker_park_measuring(parker, 0, 3, -1, &yielded, nil), NETMP_PARK_YIELDED)
        XCTAssertEqual(yielded, 0)
        // Not notified: three timed yields, then a timeout.
        XCTAssertEqual(netmp_parker_park_measuring(parker, 0, 3, 0, &yielded, nil), NETMP_PARK_TIMED_OUT)
        XCTAssertGreaterThan(yielded, 0)
    }

    func testTheWakeUpAverageMovesAnEighthTowardEachSample() {
        XCTAssertEqual(SpinCalibration.blendedWake(0, sample: 16_000), 16_000)
        XCTAssertEqual(SpinCalibration.blendedWake(16_000, sample: 24_000), 17_000)
        // A long preemption counts as twice the average, a tiny wake as 1 µs.
        XCTAssertEqual(SpinCalibration.blendedWake(16_000, sample: 5_000_000), 18_000)
        XCTAssertEqual(SpinCalibration.blendedWake(16_000, sample: 0), 14_125)
        XCTAssertEqual(SpinCalibration.blendedWake(0, sample: 0), 1000)
        XCTAssertEqual(SpinCalibration.blendedWake(0, sample: 5_000_000), 100_000)
        // Ten long gaps in a row from 16 µs: 18000, 20250, 22781, 25628, 28831, 32434, 36488, ...
        var average: Int64 = 16_000
        for _ in 0..<10 { average = SpinCalibration.blendedWake(average, sample: 5_000_000) }
        XCTAssertEqual(average, 51_952)
    }

    func testASleeperMeasuresItsWakeUp() {
        bounded(30) {
            let sleep = MeasuredSleep()
            let sleeper = OSThread.start(name: "sleeper") { sleep.run() }
            while !netmp_parker_is_sleeping(sleep.parker) { OSThread.yieldNow() }
            netmp_parker_unpark(sleep.parker)
            sleeper.join()
            XCTAssertEqual(sleep.result.load(ordering: .acquiring), NETMP_PARK_SLEPT)
            XCTAssertGreaterThanOrEqual(sleep.wake.load(ordering: .acquiring), 0)
        }
    }

    func testALongSpinChecksItsConditionLessOftenAfterTheFirstMicroseconds() throws {
        let stack = NetworkStack()
        defer { stack.shutdown() }
        let (a, b) = try stack.socketPair(.stream)
        defer {
            a.close()
            b.close()
        }
        let pause = SpinCalibration.measured.pauseNanoseconds
        let budget: Int64 = 40_000
        var checks = 0
        XCTAssertNil(
            a.core.receiveBuffer.spin(upTo: budget) {
                checks += 1
                return false
            })
        // Dense for 2 µs, then one check per 8 pauses; preemption only makes fewer. Checking after
        // every pause would make about budget / pause (some 1,800 at 22 ns).
        let dense = Double(SpinPolicy.densePollNanoseconds) / pause
        let sparse = Double(budget) / (Double(SpinPolicy.sparsePollPauses) * pause)
        XCTAssertLessThanOrEqual(Double(checks), 2 * (dense + sparse) + 16)
        XCTAssertGreaterThan(checks, 1)
    }

    func testMeasuredCalibrationIsWithinItsRanges() {
        let measured = SpinCalibration.measured
        XCTAssertTrue(SpinCalibration.pauseRange.contains(measured.pauseNanoseconds))
        XCTAssertTrue(SpinCalibration.wakeRange.contains(measured.wakeNanoseconds))
        let catchesAWakeUp = measured.wakeNanoseconds * 3 / 2
        XCTAssertEqual(
            measured.waiterBounds.lowerBound,
            catchesAWakeUp <= SpinPolicy.waiterMaximumSpinNanoseconds
                ? max(SpinPolicy.waiterMinimumSpinNanoseconds, catchesAWakeUp) : SpinPolicy.waiterMinimumSpinNanoseconds
        )
    }

    func testASocketBufferSpinReportsWhatItSpentOrNil() throws {
        let stack = NetworkStack()
        defer { stack.shutdown() }
        let (a, b) = try stack.socketPair(.stream)
        defer {
            a.close()
            b.close()
        }
        let buffer = a.core.receiveBuffer
        XCTAssertEqual(buffer.spinBudget.load(ordering: .relaxed), SpinPolicy.waiterMaximumSpinNanoseconds)
        XCTAssertNil(buffer.spin(upTo: 0) { false })
        XCTAssertNil(buffer.spin(upTo: 2000) { false })
        var checks = 0
        let spent = buffer.spin(upTo: Int64.max) {
            checks += 1
            return checks == 3
        }
        XCTAssertEqual(checks, 3)
        XCTAssertNotNil(spent)
        // No spin: one check, then a check after each of the yields, then nil (the caller sleeps).
        checks = 0
        XCTAssertNil(
            buffer.waitBriefly(spinning: 0) {
                checks += 1
                return false
            })
        XCTAssertEqual(checks, 1 + Int(SpinPolicy.waiterYields))
        // Caught after the first yield: as caught, or as yielded to others if others ran.
        checks = 0
        let ended = buffer.waitBriefly(spinning: 0) {
            checks += 1
            return checks == 2
        }
        XCTAssertEqual(checks, 2)
        switch ended {
        case .caught, .yieldedToOthers: break
        case .slept, nil: XCTFail("a wait that was caught ended as \(String(describing: ended))")
        }
    }
}

/// A parker one thread sleeps on, with what its wake-up measured.
private final class MeasuredSleep: @unchecked Sendable {
    let parker = UnsafeMutablePointer<netmp_parker>.allocate(capacity: 1)
    let result = Atomic<Int32>(0)
    let wake = Atomic<Int64>(-7)

    init() { netmp_parker_init(parker) }
    deinit { parker.deallocate() }

    /// Sleeps at once (no spin, no yield); the timeout only bounds a broken test.
    func run() {
        var measured: Int64 = -7
        let outcome = netmp_parker_park_measuring(parker, 0, 0, 20_000_000_000, nil, &measured)
        wake.store(measured, ordering: .releasing)
        result.store(outcome, ordering: .releasing)
    }
}
