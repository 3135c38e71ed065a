import CNetMP
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
        // A wake-up dearer than the maximum raises the ceiling to the floor.
        XCTAssertEqual(SpinCalibration(pauseNanoseconds: 20, wakeNanoseconds: 40_000).waiterBounds, 60_000...60_000)
        XCTAssertEqual(twentyNanosecondPause.protocolThreadBounds, 24_000...24_000)
    }

    func testBudgetGrowsToTwiceWhatCaughtTheWakeUp() {
        let bounds: ClosedRange<Int64> = 24_000...50_000
        XCTAssertEqual(SpinCalibration.adaptedBudget(50_000, caughtAfter: 20_000, within: bounds), 41_000)
        XCTAssertEqual(SpinCalibration.adaptedBudget(24_000, caughtAfter: 600, within: bounds), 24_000)
        XCTAssertEqual(SpinCalibration.adaptedBudget(24_000, caughtAfter: 30_000, within: bounds), 50_000)
        XCTAssertEqual(SpinCalibration.adaptedBudget(24_000, caughtAfter: -7, within: bounds), 24_000)
        XCTAssertEqual(SpinCalibration.adaptedBudget(24_000, caughtAfter: Int64.max, within: bounds), 50_000)
        XCTAssertEqual(SpinCalibration.adaptedBudget(24_000, caughtAfter: Int64.max / 2, within: bounds), 50_000)
    }

    func testBudgetHalvesAfterAMissButNeverBelowAWakeUp() {
        let bounds: ClosedRange<Int64> = 24_000...50_000
        var budget: Int64 = 50_000
        budget = SpinCalibration.adaptedBudget(budget, caughtAfter: nil, within: bounds)
        XCTAssertEqual(budget, 25_000)
        // Long gaps in a row: the budget stays where it still catches a partner being woken.
        for _ in 0..<10 { budget = SpinCalibration.adaptedBudget(budget, caughtAfter: nil, within: bounds) }
        XCTAssertEqual(budget, 24_000)
        // One quick answer and it is back to what catches the partner.
        XCTAssertEqual(SpinCalibration.adaptedBudget(budget, caughtAfter: 400, within: bounds), 24_000)
    }

    func testParkResultsAdaptTheWaiterBudget() {
        let calibration = twentyNanosecondPause
        // Caught after 1,000 rounds of 20 ns: twice 20 µs plus 1 µs.
        XCTAssertEqual(calibration.adaptedWaiterBudget(50_000, afterPark: 1000), 41_000)
        XCTAssertEqual(calibration.adaptedWaiterBudget(50_000, afterPark: NETMP_PARK_SLEPT), 25_000)
        XCTAssertEqual(calibration.adaptedWaiterBudget(30_000, afterPark: NETMP_PARK_YIELDED), 24_000)
    }

    func testMeasuredCalibrationIsWithinItsRanges() {
        let measured = SpinCalibration.measured
        XCTAssertTrue(SpinCalibration.pauseRange.contains(measured.pauseNanoseconds))
        XCTAssertTrue(SpinCalibration.wakeRange.contains(measured.wakeNanoseconds))
        XCTAssertGreaterThanOrEqual(measured.waiterBounds.lowerBound, measured.wakeNanoseconds * 3 / 2)
    }

    func testAFailedSpinHalvesTheBufferBudgetDownToTheFloor() throws {
        let stack = NetworkStack()
        defer { stack.shutdown() }
        let (a, b) = try stack.socketPair(.stream)
        defer {
            a.close()
            b.close()
        }
        let buffer = a.core.receiveBuffer
        let bounds = SpinCalibration.measured.waiterBounds
        let before = buffer.spinBudget.load(ordering: .relaxed)
        XCTAssertEqual(before, SpinPolicy.waiterMaximumSpinNanoseconds)
        XCTAssertFalse(buffer.spinUntil { false })
        XCTAssertEqual(buffer.spinBudget.load(ordering: .relaxed), Swift.max(bounds.lowerBound, before / 2))
        XCTAssertTrue(buffer.spinUntil { true })
        XCTAssertTrue(bounds.contains(buffer.spinBudget.load(ordering: .relaxed)))
    }
}
