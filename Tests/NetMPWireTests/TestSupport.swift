import NetMPWire
import XCTest

/// Bytes from hex text with spaces, e.g. "45 00 00 54"; the tests' packets are written this way.
func hex(_ text: String) -> [UInt8] {
    let digits = text.filter { !$0.isWhitespace }
    var bytes: [UInt8] = []
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        bytes.append(UInt8(digits[index..<next], radix: 16) ?? 0)
        index = next
    }
    return bytes
}

/// xorshift64*: the tests' own seeded generator, so failures replay from the printed seed.
struct TestRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed
    }

    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }

    mutating func below(_ bound: Int) -> Int {
        bound <= 0 ? 0 : Int(next() % UInt64(bound))
    }

    mutating func byte() -> UInt8 {
        UInt8(truncatingIfNeeded: next())
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in byte() }
    }
}

/// Mutations the robustness tests apply to valid packets: bit flips, byte overwrites, truncation,
/// extension, and random values in `fieldOffsets` (length and offset fields), one to three at a time.
func mutate(_ packet: [UInt8], fieldOffsets: [Int] = [], using random: inout TestRandom) -> [UInt8] {
    var bytes = packet
    for _ in 0...random.below(3) {
        switch random.below(6) {
        case 4:
            let offset = fieldOffsets.isEmpty ? 0 : fieldOffsets[random.below(fieldOffsets.count)]
            if offset < bytes.count {
                bytes[offset] = random.byte()
            }
        case 0, 1:
            if !bytes.isEmpty {
                bytes[random.below(bytes.count)] ^= 1 << UInt8(random.below(8))
            }
        case 2:
            if !bytes.isEmpty {
                bytes[random.below(bytes.count)] = random.byte()
            }
        case 3:
            bytes.removeLast(random.below(bytes.count + 1))
        default:
            bytes += random.bytes(random.below(12))
        }
    }
    return bytes
}

/// Runs `parse` on every truncation of `packet`, `mutations` mutated copies and `randomInputs`
/// random buffers, calling `check` on successes; returns (accepted, rejected).
@discardableResult
func robustness<Value>(
    of packet: [UInt8], fieldOffsets: [Int] = [], seed: UInt64, mutations: Int, randomInputs: Int,
    parse: ([UInt8]) -> Result<Value, WireError>,
    check: ([UInt8], Value) -> Void
) -> (accepted: Int, rejected: Int) {
    var random = TestRandom(seed: seed)
    var accepted = 0
    var rejected = 0
    func run(_ input: [UInt8]) {
        switch parse(input) {
        case .success(let value):
            accepted += 1
            check(input, value)
        case .failure:
            rejected += 1
        }
    }
    for length in 0...packet.count {
        run(Array(packet.prefix(length)))
    }
    for _ in 0..<mutations {
        run(mutate(packet, fieldOffsets: fieldOffsets, using: &random))
    }
    for _ in 0..<randomInputs {
        run(random.bytes(random.below(80)))
    }
    return (accepted, rejected)
}

/// Asserts the ranges of a parse result lie inside the parsed buffer.
func assertRangesInside<Header>(
    _ parsed: Parsed<Header>, _ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertGreaterThan(parsed.headerLength, 0, file: file, line: line)
    XCTAssertLessThanOrEqual(parsed.headerLength, parsed.payloadRange.lowerBound, file: file, line: line)
    XCTAssertLessThanOrEqual(parsed.payloadRange.upperBound, bytes.count, file: file, line: line)
}

extension Result {
    /// The success value, or nil (with the error in a failure message when `file` is given).
    var success: Success? {
        if case .success(let value) = self { return value }
        return nil
    }

    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
