import Glibc
import Metrics
import NetMP
import Synchronization

/// Reports a stack's counters through swift-metrics, so an application's own metrics backend
/// (Prometheus, StatsD, OpenTelemetry: whatever it bootstraps `MetricsSystem` with) sees them,
/// like `netstat -s`: TCP segments, retransmissions, resets, challenge ACKs, SYN cookies, drops by
/// reason, and every IPv4/ARP/ICMP/UDP counter; live connections and TIME_WAIT records as gauges.
///
/// The stack counts in plain per-thread integers (nothing on its hot paths calls into a metrics
/// backend); `report()` reads them and adds what changed since its last call. Call it yourself or
/// let `start(every:)` call it on a thread of its own. Labels are `netmp_tcp_<name>`,
/// `netmp_ip_<name>`, with the `dimensions` given (e.g. the stack's name).
public final class StackMetricsReporter: Sendable {
    private let stack: NetworkStack
    private let state: Mutex<State>
    private let stopFlag = Atomic<Bool>(false)

    private struct State: ~Copyable {
        var counters: [String: Counter] = [:]
        var gauges: [String: Gauge] = [:]
        var last: [String: Int] = [:]
        var thread: OSThread?
    }

    private let labelPrefix: String
    private let dimensions: [(String, String)]
    private let factory: any MetricsFactory

    /// - Parameters:
    ///   - factory: the metrics backend; by default the one `MetricsSystem` was bootstrapped with.
    public init(
        stack: NetworkStack, labelPrefix: String = "netmp", dimensions: [(String, String)] = [],
        factory: any MetricsFactory = MetricsSystem.factory
    ) {
        self.stack = stack
        self.labelPrefix = labelPrefix
        self.dimensions = dimensions
        self.factory = factory
        state = Mutex(State())
    }

    /// The counters as (label, value) now: what `report()` sends, for inspection.
    public func snapshot() -> (counters: [(String, Int)], gauges: [(String, Int)]) {
        let tcp = stack.tcpStatistics()
        var counters: [(String, Int)] = [
            ("tcp_segments_sent", tcp.segmentsSent), ("tcp_segments_received", tcp.segmentsReceived),
            ("tcp_segments_malformed", tcp.malformedSegments), ("tcp_resets_sent", tcp.resetsSent),
            ("tcp_resets_received", tcp.resetsReceived), ("tcp_retransmitted_segments", tcp.retransmittedSegments),
            ("tcp_retransmission_timeouts", tcp.retransmissionTimeouts), ("tcp_fast_retransmits", tcp.fastRetransmits),
            ("tcp_listen_overflows", tcp.listenOverflows), ("tcp_connections_reset", tcp.connectionsReset),
            ("tcp_connections_timed_out", tcp.connectionsTimedOut),
            ("tcp_challenge_acks_sent", tcp.challengeACKsSent),
            ("tcp_challenge_acks_suppressed", tcp.challengeACKsSuppressed), ("tcp_cookies_sent", tcp.cookiesSent),
            ("tcp_cookies_validated", tcp.cookiesValidated), ("tcp_cookies_rejected", tcp.cookiesRejected),
            ("tcp_out_of_order_prunes", tcp.outOfOrderPrunes),
            ("tcp_out_of_order_bytes_pruned", tcp.outOfOrderBytesPruned),
        ]
        for reason in TCPDropReason.allCases {
            counters.append(("tcp_drops_\(Self.snakeCase("\(reason)"))", tcp.drops[reason]))
        }
        let inet = stack.inetStatistics()
        for counter in InetCounter.allCases {
            counters.append(("ip_\(Self.snakeCase("\(counter)"))", inet[counter]))
        }
        let gauges = [
            ("tcp_live_connections", tcp.liveConnections), ("tcp_time_wait_records", tcp.timeWaitRecords),
            ("tcp_out_of_order_bytes", tcp.outOfOrderBytes), ("sockets_live", stack.liveSocketCount),
        ]
        return (counters, gauges)
    }

    /// Reads the stack's counters and reports what changed since the last call.
    public func report() {
        let (counters, gauges) = snapshot()
        state.withLock { state in
            for (name, value) in counters {
                let delta = value - (state.last[name] ?? 0)
                state.last[name] = value
                guard delta > 0 else { continue }
                Self.metric(name, in: &state.counters) {
                    Counter(label: "\(labelPrefix)_\(name)", dimensions: dimensions, factory: factory)
                }.increment(by: delta)
            }
            for (name, value) in gauges {
                Self.metric(name, in: &state.gauges) {
                    Gauge(label: "\(labelPrefix)_\(name)", dimensions: dimensions, factory: factory)
                }.record(value)
            }
        }
    }

    /// The metric made for `name` the first time it was reported.
    private static func metric<Metric>(_ name: String, in made: inout [String: Metric], make: () -> Metric) -> Metric {
        if let existing = made[name] { return existing }
        let metric = make()
        made[name] = metric
        return metric
    }

    /// Calls `report()` every `interval` on a thread of its own until `stop()`.
    public func start(every interval: Duration) {
        let nanoseconds = Swift.max(
            1_000_000,
            interval.components.seconds * 1_000_000_000
                + interval.components.attoseconds / 1_000_000_000)
        stopFlag.store(false, ordering: .sequentiallyConsistent)
        let thread = OSThread.start(name: "netmp-metrics") { [self] in
            while !stopFlag.load(ordering: .sequentiallyConsistent) {
                report()
                var remaining = nanoseconds
                // Sleep in short steps so that `stop()` returns soon.
                while remaining > 0 && !stopFlag.load(ordering: .sequentiallyConsistent) {
                    let step = Swift.min(remaining, 50_000_000)
                    var request = timespec(tv_sec: 0, tv_nsec: Int(step))
                    nanosleep(&request, nil)
                    remaining -= step
                }
            }
        }
        state.withLock { $0.thread = thread }
    }

    /// Stops the reporting thread (after a last report).
    public func stop() {
        stopFlag.store(true, ordering: .sequentiallyConsistent)
        let thread = state.withLock { state -> OSThread? in
            let thread = state.thread
            state.thread = nil
            return thread
        }
        thread?.join()
        report()
    }

    /// "retransmittedSegments" → "retransmitted_segments".
    static func snakeCase(_ name: String) -> String {
        var result = ""
        for character in name {
            if character.isUppercase {
                if !result.isEmpty { result.append("_") }
                result.append(contentsOf: character.lowercased())
            } else {
                result.append(character)
            }
        }
        return result
    }
}
