import NetMPInterfaces
import NetMPRuntime
import NetMPSockets
import NetMPTCP
import NetMPWire

/// Goodput of one TCP connection through a long, lossy simulated link, in the deterministic mode:
/// the `tcp.lossy.*` rows of `netmp bench tcp` and their tests run it.
///
/// Two stacks on a switch whose ports drain at the link rate, each adding half the round trip and
/// dropping frames at random with the loss probability (so both directions lose: data and ACKs),
/// behind a queue of one bandwidth-delay product. The stacks run with their defaults (CUBIC, RACK,
/// SACK, timestamps, buffer auto-tuning). The application writes whenever there is room and reads
/// whatever arrived, once per millisecond of simulated time; the bytes are a `StampedStream`,
/// checked at every position as they are read. Goodput is the bytes the receiving application
/// read in `duration` of simulated time from the moment the handshake completed, over `duration`.
package enum LossyLinkGoodput {
    package struct Parameters: Sendable, Hashable {
        /// Probability each frame is dropped, in each direction.
        package var loss: Double
        package var linkBitsPerSecond = 1_000_000_000
        package var roundTrip: Duration = .milliseconds(10)
        /// Simulated time measured after the handshake.
        package var duration: Duration = .seconds(30)
        package var seed: UInt64 = 1
        /// The congestion control of both stacks (nil: the stack's default).
        package var congestionControl: TCPCongestionAlgorithm?
        /// The receiver's bound on segments held out of order (nil: the stack's default, 1024). A
        /// flight of more segments than this beyond a hole loses the excess at the receiver.
        package var maximumOutOfOrderSegments: Int?

        package init(loss: Double, duration: Duration = .seconds(30), seed: UInt64 = 1) {
            self.loss = loss
            self.duration = duration
            self.seed = seed
        }
    }

    package struct Report: Sendable, Hashable {
        /// Bytes the receiving application read in the measured time.
        package var delivered = 0
        /// Bytes the sending application wrote (some still in flight or buffered at the end).
        package var written = 0
        /// Simulated nanoseconds measured (the duration asked) and the handshake before them.
        package var measuredNanoseconds: Int64 = 0
        package var handshakeNanoseconds: Int64 = 0
        /// Stream position of the first byte read that was not the one sent there (nil: all exact).
        package var firstMismatch: Int?
        /// The sender's connection at the end of the measured time.
        package var sender = TCPInfo()
        /// The congestion window sampled once per step (1 ms) over the measured time, averaged,
        /// in bytes.
        package var meanCongestionWindow = 0.0
        /// What the switch did (frames lost on purpose, queue drops).
        package var link: SwitchStatistics?

        /// Bytes per second of simulated time.
        package var goodput: Double {
            measuredNanoseconds > 0 ? Double(delivered) * 1e9 / Double(measuredNanoseconds) : 0
        }
    }

    /// The step of the application's loop: it writes and reads once per step.
    package static let step: Duration = .milliseconds(1)

    /// Runs one measurement. `observeReceived`, when given, sees every byte the receiving
    /// application reads, in order (the tests hash them); `observeSender` sees the sender's
    /// `TCPInfo` once per step with the simulated nanoseconds since the handshake (to trace a run).
    package static func run(
        _ parameters: Parameters, observeReceived: ((UnsafeRawBufferPointer) -> Void)? = nil,
        observeSender: ((Int64, TCPInfo) -> Void)? = nil
    ) throws(NetError) -> Report {
        let network = SimulatedNetwork(seed: parameters.seed)
        defer { network.shutdown() }
        let oneWay = Duration.nanoseconds(parameters.roundTrip.nanoseconds / 2)
        // One bandwidth-delay product of full-sized frames, the classic router buffer.
        let frameBits = 1514 * 8
        let bdpFrames = Int(
            Double(parameters.linkBitsPerSecond) * Double(parameters.roundTrip.nanoseconds) / 1e9 / Double(frameBits))
        let lan = network.makeSwitch(
            impairments: LinkImpairments(
                loss: parameters.loss, delay: oneWay, bandwidth: parameters.linkBitsPerSecond,
                queueLimit: Swift.max(64, bdpFrames)))
        let sending = network.makeStack()
        let receiving = network.makeStack()
        try network.attach(sending, to: lan, address: "198.18.0.1/24")
        try network.attach(receiving, to: lan, address: "198.18.0.2/24")
        if let segments = parameters.maximumOutOfOrderSegments {
            for stack in [sending, receiving] { stack.tcpConfiguration.maximumOutOfOrderSegments = segments }
        }
        if let algorithm = parameters.congestionControl {
            for stack in [sending, receiving] { stack.tcpConfiguration.congestionControl = algorithm }
        }
        let target = SocketAddress.ipv4(IPv4Address(198, 18, 0, 2), port: 5000)
        let listener = try receiving.socket(.inet, .stream)
        defer { listener.close() }
        try listener.bind(to: target)
        try listener.listen()
        listener.isNonBlocking = true
        let client = try sending.socket(.inet, .stream)
        defer { client.close() }
        client.isNonBlocking = true
        let connectStart = network.clock.nanoseconds
        do {
            try client.connect(to: target)
        } catch .inProgress {
            // Finished by the steps below.
        }
        var server: NetSocket?
        defer { server?.close() }
        let connected = network.run(
            until: {
                if server == nil { server = try? listener.accept() }
                return server != nil && client.state.contains(.connected)
            }, limit: .seconds(60))
        guard connected, let server else { throw .timedOut }
        server.isNonBlocking = true

        var report = Report()
        let start = network.clock.nanoseconds
        report.handshakeNanoseconds = start - connectStart
        let end = start &+ parameters.duration.nanoseconds
        var outgoing = StampedStream(seed: parameters.seed)
        var incoming = StampedStream(seed: parameters.seed)
        var scratch = [UInt8](repeating: 0, count: StampedStream.blockSize)
        var windowSum = 0.0
        var samples = 0
        while true {
            report.written += write(from: &outgoing, to: client)
            report.delivered += read(
                server, into: &scratch, checking: &incoming, mismatch: &report.firstMismatch, observe: observeReceived)
            let now = network.clock.nanoseconds
            if now >= end { break }
            if let info = try? client.tcpInfo() {
                windowSum += Double(info.congestionWindow)
                samples += 1
                observeSender?(now - start, info)
            }
            network.run(for: .nanoseconds(Swift.min(step.nanoseconds, end - now)))
        }
        report.measuredNanoseconds = network.clock.nanoseconds - start
        report.sender = try client.tcpInfo()
        report.meanCongestionWindow = samples > 0 ? windowSum / Double(samples) : 0
        report.link = lan.statistics
        return report
    }

    /// Writes as much of `stream` as the socket takes; returns the bytes written.
    private static func write(from stream: inout StampedStream, to socket: NetSocket) -> Int {
        var written = 0
        while true {
            var full = false
            written += stream.withNextBytes { bytes in
                let n = (try? socket.write(bytes)) ?? 0
                full = n < bytes.count
                return n
            }
            if full { return written }
        }
    }

    /// Reads everything there is, checking it against `stream`; returns the bytes read.
    private static func read(
        _ socket: NetSocket, into scratch: inout [UInt8], checking stream: inout StampedStream, mismatch: inout Int?,
        observe: ((UnsafeRawBufferPointer) -> Void)?
    ) -> Int {
        var total = 0
        while true {
            let n = scratch.withUnsafeMutableBytes { raw in (try? socket.read(into: raw)) ?? 0 }
            if n <= 0 { return total }
            scratch.withUnsafeBytes { raw in
                let got = UnsafeRawBufferPointer(rebasing: raw[0..<n])
                observe?(got)
                if let position = stream.check(got), mismatch == nil { mismatch = position }
            }
            total += n
        }
    }
}
