import NetMP

/// The `tcp.lossy.*` rows of `netmp bench tcp`: goodput of one connection through a simulated
/// 1 Gbit/s link with a 10 ms round trip and random loss each way (`LossyLinkGoodput`, the
/// deterministic mode, seed 1), in MB/s (10^6 bytes per second of simulated time). The `kernel`
/// column holds the row's named reference, not a kernel measurement:
///
/// - `tcp.lossy.1pct` (1 % loss): the Mathis bound for Reno at the connection's MSS, the 10 ms
///   round trip and the loss, (MSS / RTT) · 1.22 / √p. Target ≥ 2.
/// - `tcp.lossy.0.1pct` (0.1 % loss): the link rate, 125 MB/s. Target ≥ 0.8.
/// - `tcp.lossy.1pct.bbr` and `tcp.lossy.0.1pct.bbr`: the same links and references, both stacks
///   using BBR instead of their default (CUBIC).
///
/// The run is one deterministic pass: its figure repeats to the byte for a seed, so it is not
/// taken twice. CPU per operation is process CPU µs per MB delivered (the whole simulation, both
/// stacks and the switch, runs on the calling thread). A note per row gives the simulated time,
/// the wall time, the sender's loss-recovery counters and mean window, and what CUBIC's and
/// Reno's response functions predict for the same path.
struct LossyRow {
    var name: String
    var loss: Double
    var referenceIsLinkRate: Bool
    /// nil: the stacks' default.
    var congestionControl: TCPCongestionAlgorithm?

    static let rows = [
        LossyRow(name: "tcp.lossy.1pct", loss: 0.01, referenceIsLinkRate: false),
        LossyRow(name: "tcp.lossy.0.1pct", loss: 0.001, referenceIsLinkRate: true),
        LossyRow(name: "tcp.lossy.1pct.bbr", loss: 0.01, referenceIsLinkRate: false, congestionControl: .bbr),
        LossyRow(name: "tcp.lossy.0.1pct.bbr", loss: 0.001, referenceIsLinkRate: true, congestionControl: .bbr),
    ]

    /// `outOfOrderSegments`, when given, replaces the stacks' bound on segments held out of order
    /// (an experiment: the rows run with the default).
    func measure(simulatedSeconds: Double, outOfOrderSegments: Int? = nil) throws -> BenchResult {
        var parameters = LossyLinkGoodput.Parameters(
            loss: loss, duration: .nanoseconds(Int64(simulatedSeconds * 1e9)), seed: 1)
        parameters.maximumOutOfOrderSegments = outOfOrderSegments
        parameters.linkBitsPerSecond = 1_000_000_000
        parameters.roundTrip = .milliseconds(10)
        parameters.congestionControl = congestionControl
        let clock = PassClock()
        let report = try LossyLinkGoodput.run(parameters)
        guard report.firstMismatch == nil else {
            throw BenchFailure(
                description: "\(name): byte \(report.firstMismatch ?? -1) of the stream arrived wrong")
        }
        let megabytes = Double(report.delivered) / 1e6
        let pass = clock.stop(operations: Swift.max(1, Int(megabytes.rounded())))
        let cpuPerMegabyte = megabytes > 0 ? pass.cpuSeconds * 1e6 / megabytes : .nan
        let roundTrip = parameters.roundTrip.nanoseconds
        let segment = report.sender.sendMaximumSegmentSize
        let mathis = TCPResponseFunction.mathisReno(maximumSegmentSize: segment, roundTrip: roundTrip, loss: loss)
        let cubic = TCPResponseFunction.cubic(maximumSegmentSize: segment, roundTrip: roundTrip, loss: loss)
        let linkRate = Double(parameters.linkBitsPerSecond) / 8
        let reference = referenceIsLinkRate ? linkRate : mathis
        let goodput = report.goodput / 1e6
        let info = report.sender
        rowNotes.append(
            "\(name): \(format3(Double(report.measuredNanoseconds) / 1e9)) s simulated (after a "
                + "\(format3(Double(report.handshakeNanoseconds) / 1e6)) ms handshake) in \(format3(pass.seconds)) s"
                + " wall, \(format3(pass.cpuSeconds)) s CPU; \(report.delivered) bytes read, checked at every position;"
                + " MSS \(segment), srtt \(format3(Double(info.smoothedRTT) / 1e6)) ms, mean cwnd"
                + " \(format3(report.meanCongestionWindow / Double(Swift.max(1, segment)))) segments; retransmitted"
                + " \(info.retransmittedSegments), fast retransmits \(info.fastRetransmits), SACK recoveries"
                + " \(info.sackRecoveries), RTOs \(info.retransmissionTimeouts), TLPs \(info.tailLossProbes);"
                + " frames lost by the link \(report.link?.lost ?? 0), queue drops \(report.link?.queueDrops ?? 0);"
                + " models for this path: Reno (Mathis) \(format3(mathis / 1e6)) MB/s, CUBIC (RFC 9438 5.1)"
                + " \(format3(cubic / 1e6)) MB/s, link \(format3(linkRate / 1e6)) MB/s"
                + (outOfOrderSegments.map { "; receiver's out-of-order bound \($0) segments (not the default)" } ?? ""))
        return BenchResult(
            benchmark: name, unit: "MB/s", netmp: goodput, kernel: reference / 1e6, better: "higher",
            cpuNetmp: cpuPerMegabyte, cpuKernel: nil,
            legs: [
                LegSummary(
                    name: "netmp", figure: goodput, cpuPerOperation: cpuPerMegabyte, passes: [(goodput, cpuPerMegabyte)]
                )
            ])
    }
}
