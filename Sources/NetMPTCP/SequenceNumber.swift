/// A TCP sequence number: arithmetic and comparisons modulo 2^32 (RFC 9293 3.4), so a connection
/// keeps working when its sequence space wraps.
public struct SequenceNumber: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: UInt32

    public init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    public init(_ rawValue: UInt32) {
        self.rawValue = rawValue
    }

    /// `lhs` comes before `rhs` when the signed distance from `lhs` to `rhs` is positive; the two
    /// must be within 2^31 of each other for the answer to mean anything.
    public static func < (lhs: SequenceNumber, rhs: SequenceNumber) -> Bool {
        Int32(bitPattern: lhs.rawValue &- rhs.rawValue) < 0
    }

    /// The number `count` octets later (wrapping).
    public static func + (lhs: SequenceNumber, rhs: Int) -> SequenceNumber {
        SequenceNumber(lhs.rawValue &+ UInt32(truncatingIfNeeded: rhs))
    }

    /// The number `count` octets earlier (wrapping).
    public static func - (lhs: SequenceNumber, rhs: Int) -> SequenceNumber {
        SequenceNumber(lhs.rawValue &- UInt32(truncatingIfNeeded: rhs))
    }

    public static func += (lhs: inout SequenceNumber, rhs: Int) {
        lhs = lhs + rhs
    }

    /// The signed distance `lhs - rhs` in octets (positive when `lhs` is later).
    public static func - (lhs: SequenceNumber, rhs: SequenceNumber) -> Int {
        Int(Int32(bitPattern: lhs.rawValue &- rhs.rawValue))
    }

    /// True when `lower <= self < upper` modulo 2^32.
    public func isIn(_ lower: SequenceNumber, _ upper: SequenceNumber) -> Bool {
        rawValue &- lower.rawValue < upper.rawValue &- lower.rawValue
    }

    public static func max(_ a: SequenceNumber, _ b: SequenceNumber) -> SequenceNumber { a < b ? b : a }
    public static func min(_ a: SequenceNumber, _ b: SequenceNumber) -> SequenceNumber { a < b ? a : b }

    public var description: String { String(rawValue) }
}
