import Glibc
import NetMP
import Synchronization

/// The `tcp.syn.flood` row of `netmp bench tcp`: legitimate connections per second to a listen
/// socket while 100,000 spoofed SYNs per second arrive at it, against the same connections
/// without the flood measured in the same run (the `kernel` column holds that reference).
///
/// One threaded stack (its own, one protocol thread per CPU) with two ways in to one listener
/// bound to the wildcard address: its loopback, where a client thread connects to 127.0.0.1,
/// writes 64 bytes, reads the 64 a server thread echoes after accepting, and closes, as the server
/// does (connect + accept + exchange + close, both blocking); and a `DiscardInterface` holding
/// 198.18.0.1/15, where an injector thread hands the stack `SpoofedSYNs` (sources in
/// 198.18.0.0/15) paced at the flood rate by the monotonic clock, every SYN due delivered once
/// per `deliveryInterval` (1 ms by default: 100 per batch), and where the SYN-ACKs go out and
/// vanish. The listener's incomplete queue fills with the flood, so every SYN past it, the
/// legitimate ones too, is answered with a cookie. The flood leg starts its injector 20 ms (2,000
/// SYNs) before its clock, so the queue is full when it measures.
///
/// The two legs take turns by `measureRow`'s rule, `passes` rounds. CPU per operation is process
/// CPU µs per legitimate connection, the flood's cost (injector and stack) included in the flood
/// leg's. A note gives the SYN rate the injector reached in each flood pass and the cookies.
struct SYNFloodRow {
    static let name = "tcp.syn.flood"
    static let synsPerSecond = 100_000
    static let exchangeBytes = 64
    /// Rounds of the two legs: more than other rows take, as this row's ratio is between two
    /// NetMP runs that each swing with the load of the shared machine.
    static let passes = 4
    /// The longest any call of the row waits (connect, accept, read).
    static let waitLimit: Duration = .seconds(10)

    var threadCount: Int
    /// Nanoseconds between the injector's deliveries.
    var deliveryInterval: Int64

    func measure(seconds: Double, row: Int) throws -> BenchResult {
        let stack = NetworkStack(.init(threadCount: threadCount))
        defer { stack.shutdown() }
        let wire = DiscardInterface()
        try stack.addAddress("198.18.0.1/15", to: wire)
        let listener = try stack.socket(.inet, .stream)
        defer { listener.close() }
        try listener.bind(to: .ipv4(.unspecified, port: 0))
        try listener.listen(backlog: 1024)
        // No wait in the row is unbounded: a failed side ends the pass with an error, not a hang.
        listener.receiveTimeout = SYNFloodRow.waitLimit
        guard case .ipv4(_, let port) = listener.localAddress else { throw BenchFailure(description: "no port") }
        let rates = LockedRates()
        var seed: UInt64 = 1
        let flood = Leg(name: "netmp") { count in
            seed &+= 1
            let injector = SYNInjector(
                syns: SpoofedSYNs(
                    to: IPv4Address(198, 18, 0, 1), port: port, interfaceAddress: wire.hardwareAddress, seed: seed),
                wire: wire, rate: SYNFloodRow.synsPerSecond, interval: deliveryInterval)
            injector.start()
            defer { _ = injector.stop() }
            injector.waitUntilSent(2 * SYNFloodRow.synsPerSecond / 100)  // 20 ms of flood first
            let before = injector.sent
            let wallBefore = now()
            let pass = try connections(stack: stack, listener: listener, port: port, count: count)
            rates.add(Double(injector.sent - before) / (now() - wallBefore))
            return pass
        }
        let quiet = Leg(name: "netmp.no-flood") { count in
            try connections(stack: stack, listener: listener, port: port, count: count)
        }
        var result = try measureRow(
            SYNFloodRow.name, .throughput(unit: "conn/s", scale: 1, probe: 200), legs: [flood, quiet],
            seconds: seconds, row: row, passes: SYNFloodRow.passes)
        let reference = result.legs.first { $0.name == quiet.name }
        result.kernel = reference?.figure
        result.cpuKernel = reference?.cpuPerOperation
        let statistics = stack.tcpStatistics()
        let achieved = rates.all.map { format3($0 / 1000) + "k" }.joined(separator: ", ")
        rowNotes.append(
            "\(SYNFloodRow.name): spoofed SYNs per second reached in the flood passes (probe first): \(achieved)"
                + " (asked \(SYNFloodRow.synsPerSecond / 1000)k, delivered every \(deliveryInterval / 1000) us);"
                + " cookies sent \(statistics.cookiesSent), validated"
                + " \(statistics.cookiesValidated), rejected \(statistics.cookiesRejected); SYN-ACKs out"
                + " \(wire.statistics.framesSent); kernel column: the same connections without the flood")
        return result
    }

    /// `count` connections, one after another: connect, write, read the echo, close; a server
    /// thread accepts, echoes and closes each.
    private func connections(stack: NetworkStack, listener: NetSocket, port: UInt16, count: Int) throws -> Pass {
        let failures = Atomic<Int>(0)
        let clock = PassClock()
        let server = OSThread.start(name: "bench-flood-server") {
            var buffer = [UInt8](repeating: 0, count: SYNFloodRow.exchangeBytes)
            for _ in 0..<count {
                guard let child = try? listener.accept() else {
                    failures.add(1, ordering: .relaxed)
                    return
                }
                child.receiveTimeout = SYNFloodRow.waitLimit
                let echoed = buffer.withUnsafeMutableBytes { raw -> Bool in
                    var got = 0
                    while got < raw.count {
                        guard let n = try? child.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[got...])), n > 0
                        else { return false }
                        got += n
                    }
                    return (try? child.write(UnsafeRawBufferPointer(raw))) == raw.count
                }
                if !echoed { failures.add(1, ordering: .relaxed) }
                child.close()
            }
        }
        defer { server.join() }
        let request = [UInt8](repeating: 0x42, count: SYNFloodRow.exchangeBytes)
        var reply = [UInt8](repeating: 0, count: SYNFloodRow.exchangeBytes)
        for _ in 0..<count {
            let client = try stack.socket(.inet, .stream)
            defer { client.close() }
            client.receiveTimeout = SYNFloodRow.waitLimit
            client.sendTimeout = SYNFloodRow.waitLimit
            try client.connect(to: .ipv4(.loopback, port: port))
            guard try client.write(request) == request.count else { throw BenchFailure(description: "short write") }
            try reply.withUnsafeMutableBytes { raw in
                var got = 0
                while got < raw.count {
                    let n = try client.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[got...]))
                    guard n > 0 else { throw BenchFailure(description: "tcp.syn.flood: the echo ended early") }
                    got += n
                }
            }
            guard reply == request else { throw BenchFailure(description: "tcp.syn.flood: the echo differs") }
        }
        let pass = clock.stop(operations: count)
        guard failures.load(ordering: .relaxed) == 0 else {
            throw BenchFailure(description: "tcp.syn.flood: the server side failed")
        }
        return pass
    }
}

/// The rates the injector reached, one per flood pass.
private final class LockedRates: @unchecked Sendable {
    private let lock = NetLock()
    private var rates: [Double] = []

    func add(_ rate: Double) { lock.withLock { rates.append(rate) } }
    var all: [Double] { lock.withLock { rates } }
}

/// A thread handing the interface spoofed SYNs at `rate` per second by the monotonic clock: once
/// per `interval` (nanoseconds) it delivers every SYN due by then in one batch, as a NIC that
/// coalesces its interrupts hands its driver what came in since the last one, and sleeps between.
private final class SYNInjector: @unchecked Sendable {
    private var syns: SpoofedSYNs  // injector thread only
    private let wire: NetworkInterface
    private let rate: Int
    private let interval: Int64
    private let running = Atomic<Bool>(true)
    private let sentCount = Atomic<Int>(0)
    private var thread: OSThread?

    init(syns: SpoofedSYNs, wire: NetworkInterface, rate: Int, interval: Int64) {
        self.syns = syns
        self.wire = wire
        self.rate = rate
        self.interval = Swift.max(1000, interval)
    }

    var sent: Int { sentCount.load(ordering: .relaxed) }

    func start() {
        thread = OSThread.start(name: "bench-syn-injector") { [self] in run() }
    }

    /// Stops the thread; returns the SYNs it sent.
    func stop() -> Int {
        running.store(false, ordering: .relaxed)
        thread?.join()
        thread = nil
        return sent
    }

    /// Waits (yielding) until `count` SYNs have gone in.
    func waitUntilSent(_ count: Int) {
        while sent < count { sched_yield() }
    }

    private func run() {
        let start = monotonicNanoseconds()
        var frames: [Frame] = []
        var total = 0
        var nextDelivery = start
        while running.load(ordering: .relaxed) {
            let now = monotonicNanoseconds()
            if now < nextDelivery {
                var pause = timespec(tv_sec: 0, tv_nsec: Int(nextDelivery - now))
                nanosleep(&pause, nil)
                continue
            }
            // Behind by more than an interval (the thread lost its CPU): the schedule moves on
            // from now, and the SYNs due meanwhile still go in.
            nextDelivery = Swift.max(nextDelivery &+ interval, now)
            let due = Int((now - start) * Int64(rate) / 1_000_000_000)
            while total < due {
                frames.removeAll(keepingCapacity: true)
                for _ in 0..<Swift.min(1024, due - total) { frames.append(syns.next()) }
                wire.deliverInbound(frames)
                total += frames.count
                sentCount.store(total, ordering: .relaxed)
            }
        }
    }
}
