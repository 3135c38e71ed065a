/// The largest sample of the last `WindowedMaxFilter.window` rounds: BBR's bottleneck-bandwidth
/// estimate (BtlBw). One slot per round holds that round's largest sample, so the result is exact
/// (Linux keeps an approximate three-sample running max; ten words buy the exact one).
public struct WindowedMaxFilter: Hashable, Sendable {
    /// Rounds a sample counts for: a sample of round r is forgotten from round r + window on.
    public static let window = 10

    private var values = [Int](repeating: 0, count: WindowedMaxFilter.window)
    private var rounds = [Int](repeating: -1, count: WindowedMaxFilter.window)
    /// The latest round seen.
    public private(set) var round = 0

    public init() {}

    /// Takes `value` as a sample of round `round` (rounds never go backwards; an older one is
    /// counted as the latest).
    public mutating func update(_ value: Int, round: Int) {
        let round = Swift.max(round, self.round)
        self.round = round
        let slot = WindowedMaxFilter.slot(round)
        if rounds[slot] != round {
            rounds[slot] = round
            values[slot] = value
        } else {
            values[slot] = Swift.max(values[slot], value)
        }
    }

    /// The largest sample of rounds `round − window + 1 ... round` (0 when none).
    public var maximum: Int {
        var best = 0
        for slot in 0..<WindowedMaxFilter.window where rounds[slot] > round - WindowedMaxFilter.window {
            best = Swift.max(best, values[slot])
        }
        return best
    }

    /// The slot of `round` (never out of range, whatever the round).
    private static func slot(_ round: Int) -> Int {
        let remainder = round % window
        return remainder < 0 ? remainder + window : remainder
    }

    /// Forgets every sample.
    public mutating func reset() {
        self = WindowedMaxFilter()
    }
}
