import NetMPWire
import XCTest

final class WireFuzzTests: XCTestCase {
    func testRunIsDeterministicAndExercisesBothOutcomes() {
        let first = WireFuzz.run(iterations: 20_000, seed: 0x5EED)
        XCTAssertGreaterThan(first.accepted, 0)
        XCTAssertGreaterThan(first.rejected, 0)
        let again = WireFuzz.run(iterations: 20_000, seed: 0x5EED)
        XCTAssertEqual(first.accepted, again.accepted)
        XCTAssertEqual(first.rejected, again.rejected)
    }

    func testOtherSeeds() {
        for seed: UInt64 in [1, 2, 3] {
            let counts = WireFuzz.run(iterations: 10_000, seed: seed)
            XCTAssertGreaterThan(counts.accepted + counts.rejected, 10_000)
        }
    }

    func testZeroIterations() {
        let counts = WireFuzz.run(iterations: 0, seed: 1)
        XCTAssertEqual(counts.accepted, 0)
        XCTAssertEqual(counts.rejected, 0)
    }
}
