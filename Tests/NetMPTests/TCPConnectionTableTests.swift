import NetMPWire
import XCTest

@testable import NetMPTCP

/// The connection table against a `Dictionary` model: every insert, overwrite, removal and lookup of
/// a seeded random run answers as the model does, with random hash keys and with all-zero keys
/// (every tuple in one probe run, so removals shift entries back across the array's end).
final class TCPConnectionTableTests: XCTestCase {
    private final class Entry {
        let serial: Int
        init(_ serial: Int) { self.serial = serial }
    }

    /// Hash keys of zero: every key's home is slot 0.
    private struct ZeroGenerator: RandomNumberGenerator {
        mutating func next() -> UInt64 { 0 }
    }

    private func key(_ number: Int) -> TCPConnectionKey {
        TCPConnectionKey(
            localAddress: .ipv4(IPv4Address(rawValue: 0xC612_0001)), localPort: 80,
            remoteAddress: .ipv4(IPv4Address(rawValue: 0xC612_0100 &+ UInt32(number / 7))),
            remotePort: UInt16(truncatingIfNeeded: 40_000 + number % 7))
    }

    private func runAgainstModel(_ table: inout TCPConnectionTable<Entry>, seed: UInt64, keySpace: Int) {
        var random = SeededGenerator(seed: seed)
        var model: [TCPConnectionKey: Entry] = [:]
        var serial = 0
        for step in 0..<20_000 {
            let candidate = key(Int(random.next() % UInt64(keySpace)))
            switch random.next() % 3 {
            case 0, 1:
                serial += 1
                let entry = Entry(serial)
                table[candidate] = entry
                model[candidate] = entry
            default:
                table[candidate] = nil
                model[candidate] = nil
            }
            XCTAssertEqual(table.count, model.count, "step \(step)")
            if step % 97 == 0 {
                for number in 0..<keySpace {
                    let probe = key(number)
                    XCTAssertTrue(table[probe] === model[probe], "step \(step), key \(number)")
                }
            }
        }
        XCTAssertEqual(table.values.map(\.serial).sorted(), model.values.map(\.serial).sorted())
        XCTAssertEqual(Set(table.keys), Set(model.keys))
        XCTAssertEqual(table.keys.count, model.count)
    }

    func testRandomOperationsMatchADictionary() {
        var random = SeededGenerator(seed: 41)
        var table = TCPConnectionTable<Entry>(using: &random)
        runAgainstModel(&table, seed: 7, keySpace: 600)
    }

    func testEveryKeyInOneProbeRunStillMatchesADictionary() {
        var zero = ZeroGenerator()
        var table = TCPConnectionTable<Entry>(using: &zero)
        runAgainstModel(&table, seed: 8, keySpace: 40)
    }

    func testRemoveAllAndLookupsOfAnEmptyTable() {
        var table = TCPConnectionTable<Entry>()
        XCTAssertNil(table[key(1)])
        table[key(1)] = nil
        XCTAssertEqual(table.count, 0)
        for number in 0..<100 {
            table[key(number)] = Entry(number)
        }
        XCTAssertEqual(table.count, 100)
        XCTAssertEqual(table[key(42)]?.serial, 42)
        table.removeAll()
        XCTAssertTrue(table.isEmpty)
        XCTAssertNil(table[key(42)])
        XCTAssertEqual(table.values.count, 0)
        table[key(3)] = Entry(3)
        XCTAssertEqual(table[key(3)]?.serial, 3)
        XCTAssertEqual(table.count, 1)
    }
}
