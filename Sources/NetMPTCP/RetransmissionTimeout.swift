/// The RTO estimator of RFC 6298: smoothed RTT and its variance, clamped, with exponential backoff.
public struct RetransmissionTimeout: Hashable, Sendable {
    public private(set) var smoothedRTT: Int64?
    public private(set) var rttVariance: Int64 = 0
    /// The current timeout including backoff.
    public private(set) var timeout: Int64
    /// Consecutive timeouts without a new measurement (the backoff exponent).
    public private(set) var backoffCount = 0
    let minimum: Int64
    let maximum: Int64
    /// The clock granularity G of RFC 6298 (1 ms: the timestamp tick).
    static let granularity: Int64 = 1_000_000

    public init(initial: Int64, minimum: Int64, maximum: Int64) {
        self.minimum = minimum
        self.maximum = maximum
        timeout = Swift.min(Swift.max(initial, minimum), maximum)
    }

    /// Takes an RTT sample (2.2 and 2.3) and recomputes the timeout, ending any backoff.
    @inline(__always) public mutating func sample(_ rtt: Int64) {
        let measured = Swift.max(0, rtt)
        if let srtt = smoothedRTT {
            let delta = srtt > measured ? srtt - measured : measured - srtt
            rttVariance = (3 * rttVariance + delta) / 4
            smoothedRTT = (7 * srtt + measured) / 8
        } else {
            smoothedRTT = measured
            rttVariance = measured / 2
        }
        backoffCount = 0
        timeout = clamp((smoothedRTT ?? measured) + Swift.max(RetransmissionTimeout.granularity, 4 * rttVariance))
    }

    /// The timeout data starts with when the SYN had to be retransmitted (RFC 6298 5.7).
    public static let fallback: Int64 = 3_000_000_000

    /// Ends any backoff and sets the timeout to `timeout` (clamped) until the first sample.
    public mutating func restart(at timeout: Int64) {
        backoffCount = 0
        self.timeout = clamp(timeout)
    }

    /// Doubles the timeout after it fired (5.5), up to the maximum.
    public mutating func backOff() {
        backoffCount += 1
        timeout = clamp(timeout > maximum / 2 ? maximum : timeout * 2)
    }

    private func clamp(_ value: Int64) -> Int64 { Swift.min(Swift.max(value, minimum), maximum) }
}
