/// What a loss-based congestion control can deliver through a path with random loss: the
/// steady-state response functions the lossy benchmark rows are measured against.
///
/// Each treats every loss as one congestion event (random losses are rarely two in one window at
/// these rates), and gives bytes per second for a segment size in bytes, a round trip in
/// nanoseconds and a loss probability in (0, 1]; a non-positive input gives 0.
package enum TCPResponseFunction {
    /// Mathis, Semke, Mahdavi and Ott (1997): Reno's throughput, (MSS / RTT) · 1.22 / √p, the
    /// constant being √(3/2) for a sawtooth that halves once per 1/p segments.
    package static func mathisReno(maximumSegmentSize: Int, roundTrip: Int64, loss: Double) -> Double {
        guard maximumSegmentSize > 0, roundTrip > 0, loss > 0, loss <= 1 else { return 0 }
        return Double(maximumSegmentSize) / (Double(roundTrip) / 1e9) * 1.22 / loss.squareRoot()
    }

    /// An AIMD controller that adds `increase` segments per round trip and multiplies its window
    /// by `decrease` on a loss: its mean window is √(a(1 + β) / (2(1 − β)p)) segments.
    package static func aimd(
        maximumSegmentSize: Int, roundTrip: Int64, loss: Double, increase: Double, decrease: Double
    ) -> Double {
        guard maximumSegmentSize > 0, roundTrip > 0, loss > 0, loss <= 1, decrease < 1 else { return 0 }
        let window = (increase * (1 + decrease) / (2 * (1 - decrease) * loss)).squareRoot()
        return window * Double(maximumSegmentSize) / (Double(roundTrip) / 1e9)
    }

    /// RFC 9438 section 5.1: CUBIC's mean window is the larger of its cubic curve's,
    /// ∜(C(3 + β) / (4(1 − β))) · RTT^¾ / p^¾ segments (RTT in seconds, C = 0.4, β = 0.7), and
    /// its Reno-friendly estimate's (AIMD with α = 3(1 − β) / (1 + β), β = 0.7: Reno's √(3/2p)).
    package static func cubic(maximumSegmentSize: Int, roundTrip: Int64, loss: Double) -> Double {
        guard maximumSegmentSize > 0, roundTrip > 0, loss > 0, loss <= 1 else { return 0 }
        let c = 0.4
        let beta = 0.7
        let seconds = Double(roundTrip) / 1e9
        let factor = (c * (3 + beta) / (4 * (1 - beta))).squareRoot().squareRoot()
        let cubicWindow = factor * pow34(seconds) / pow34(loss)
        let cubicRate = cubicWindow * Double(maximumSegmentSize) / seconds
        let friendly = aimd(
            maximumSegmentSize: maximumSegmentSize, roundTrip: roundTrip, loss: loss,
            increase: 3 * (1 - beta) / (1 + beta), decrease: beta)
        return Swift.max(cubicRate, friendly)
    }

    /// x^(3/4) for x ≥ 0, without Foundation.
    private static func pow34(_ x: Double) -> Double {
        let root = x.squareRoot().squareRoot()
        return root * root * root
    }
}
