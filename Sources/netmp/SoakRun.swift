import Glibc
import NetMP
import Synchronization

/// One second's figures.
struct SoakSample: Sendable {
    var second: Int
    var tcpFlows: Int
    var udpFlows: Int
    var failures: Int
    /// Sockets alive in both stacks (open or not yet freed).
    var liveSockets: Int
    var tcpConnections: Int
    var timeWait: Int
    /// Byte chunks alive in the process, pooled ones included.
    var chunks: Int
    var rssKiB: Int
}

/// The process's resident set, from /proc/self/statm (its second field, in pages).
func residentKiB() -> Int {
    guard let file = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(file) }
    var size = 0
    var resident = 0
    guard
        withUnsafeMutablePointer(
            to: &size,
            { sizePointer in
                withUnsafeMutablePointer(to: &resident) { residentPointer in
                    withVaList([sizePointer, residentPointer]) { vfscanf(file, "%ld %ld", $0) }
                }
            }) == 2
    else { return 0 }
    return resident * sysconf(Int32(_SC_PAGESIZE)) / 1024
}

/// Two stacks on one impaired switch, servers on one, client workers on the other.
final class SoakRun: Sendable {
    let plan: SoakPlan
    let printsProgress: Bool
    let tally = SoakTally()

    /// What the links do to frames: each probability per frame and direction.
    static let impairments = LinkImpairments(
        loss: 0.01, duplication: 0.005, reordering: 0.01, reorderDelay: .milliseconds(3),
        corruption: 0.005)

    init(plan: SoakPlan, printsProgress: Bool) {
        self.plan = plan
        self.printsProgress = printsProgress
    }

    func run() throws -> SoakReport {
        let network = SimulatedNetwork(threadedWithSeed: plan.seed)
        defer { network.shutdown() }
        let lan = network.makeSwitch(impairments: Self.impairments)
        let client = network.makeStack(threadCount: plan.threads)
        let server = network.makeStack(threadCount: plan.threads)
        try network.attach(client, to: lan, address: "198.18.0.1/24")
        try network.attach(server, to: lan, address: "198.18.0.2/24")
        for stack in [client, server] {
            // A LAN of no delay: a low RTO floor (as Linux's per-route rto_min) and a short
            // TIME_WAIT keep flows quick and the TIME_WAIT population at its plateau early.
            stack.tcpConfiguration.minimumRTO = 20_000_000
            stack.tcpConfiguration.initialRTO = 200_000_000
            stack.tcpConfiguration.maximumSegmentLifetime = 1_000_000_000
        }
        let serverAddress = IPv4Address(198, 18, 0, 2)
        let tcpAddress = SocketAddress.ipv4(serverAddress, port: 5000)
        let udpAddress = SocketAddress.ipv4(serverAddress, port: 7)
        startWatchdog()
        // The servers own their sockets and close them when they stop, so that once they are
        // back no socket is left in either stack.
        let servers = try startServers(on: server, tcp: tcpAddress, udp: udpAddress)
        var clients: [OSThread] = []
        for index in 0..<plan.tcpWorkers {
            clients.append(
                OSThread.start(name: "soak-tcp-\(index)") { [self] in
                    runTCPClient(index, stack: client, server: tcpAddress)
                })
        }
        for index in 0..<plan.udpWorkers {
            clients.append(
                OSThread.start(name: "soak-udp-\(index)") { [self] in
                    runUDPClient(index, stack: client, server: udpAddress)
                })
        }

        var samples: [SoakSample] = []
        let start = monotonicNanoseconds()
        var second = 0
        while monotonicNanoseconds() - start < plan.duration {
            second += 1
            let next = start + Int64(second) * 1_000_000_000
            let now = monotonicNanoseconds()
            if next > now { usleep(UInt32(Swift.min(1_000_000, (next - now) / 1000))) }
            let sample = takeSample(second: second, stacks: [client, server])
            samples.append(sample)
            if printsProgress { printProgress(sample) }
        }
        tally.stopping.store(true, ordering: .relaxed)
        for thread in clients { thread.join() }
        tally.serversStopping.store(true, ordering: .relaxed)
        for thread in servers { thread.join() }
        // Every flow is over: the sockets must all be freed once TIME_WAIT and the closes drain.
        let drainStart = monotonicNanoseconds()
        var leftover = 0
        repeat {
            usleep(50_000)
            leftover = client.liveSocketCount + server.liveSocketCount
            let connections = client.tcpStatistics().liveConnections + server.tcpStatistics().liveConnections
            if leftover == 0 && connections == 0 { break }
        } while monotonicNanoseconds() - drainStart < 15_000_000_000
        let end = takeSample(second: second + 1, stacks: [client, server])
        tally.finished.store(true, ordering: .relaxed)
        let verdict = SoakVerdict(samples: samples, tally: tally, socketsAfter: leftover)
        return SoakReport(
            plan: plan, samples: samples, final: end, tally: tally, verdict: verdict,
            drainSeconds: Double(monotonicNanoseconds() - drainStart) / 1e9, switchStats: lan.statistics,
            retransmitted: client.tcpStatistics().retransmittedSegments + server.tcpStatistics().retransmittedSegments)
    }

    /// The TCP servers (one thread per TCP worker, on one listener) and two UDP echo threads;
    /// the first of each closes the shared socket when the run stops.
    private func startServers(on stack: NetworkStack, tcp: SocketAddress, udp: SocketAddress) throws -> [OSThread] {
        let listener = try stack.socket(.inet, .stream)
        try listener.bind(to: tcp)
        try listener.listen(backlog: 256)
        listener.receiveTimeout = .milliseconds(100)
        let echo = try stack.socket(.inet, .datagram)
        try echo.bind(to: udp)
        try echo.setOption(.receiveBufferSize, 1 << 20)
        var threads: [OSThread] = []
        for index in 0..<plan.tcpWorkers {
            threads.append(
                OSThread.start(name: "soak-tcp-server-\(index)") { [self] in
                    serveTCP(listener)
                    if index == 0 { listener.close() }
                })
        }
        for index in 0..<(plan.udpWorkers > 0 ? 2 : 1) {
            threads.append(
                OSThread.start(name: "soak-udp-echo-\(index)") { [tally] in
                    soakUDPEcho(echo, tally: tally)
                    if index == 0 { echo.close() }
                })
        }
        return threads
    }

    /// Stops a hung run: when the workers are not back long after the last flow's deadline,
    /// the process exits with a failure instead of hanging.
    private func startWatchdog() {
        let limit = plan.duration + 2 * plan.flowDeadline + 60_000_000_000
        let start = monotonicNanoseconds()
        OSThread.start(name: "soak-watchdog") { [tally] in
            while !tally.finished.load(ordering: .relaxed) {
                if monotonicNanoseconds() - start > limit {
                    print("soak: FAIL: workers still running \(limit / 1_000_000_000) s after the start (a hang)")
                    fflush(nil)
                    _exit(1)
                }
                usleep(200_000)
            }
        }.detach()
    }

    private func takeSample(second: Int, stacks: [NetworkStack]) -> SoakSample {
        var sample = SoakSample(
            second: second, tcpFlows: tally.tcpFlows.load(ordering: .relaxed),
            udpFlows: tally.udpFlows.load(ordering: .relaxed), failures: tally.failures.load(ordering: .relaxed),
            liveSockets: 0, tcpConnections: 0, timeWait: 0, chunks: NetworkStack.liveChunkCount, rssKiB: residentKiB())
        for stack in stacks {
            let statistics = stack.tcpStatistics()
            sample.liveSockets += stack.liveSocketCount
            sample.tcpConnections += statistics.liveConnections
            sample.timeWait += statistics.timeWaitRecords
        }
        return sample
    }

    private func printProgress(_ sample: SoakSample) {
        print(
            "soak \(sample.second)s: tcp \(sample.tcpFlows) udp \(sample.udpFlows) flows,"
                + " \(tally.bytesChecked.load(ordering: .relaxed) >> 20) MiB checked, \(sample.failures) failed |"
                + " sockets \(sample.liveSockets) conns \(sample.tcpConnections) time-wait \(sample.timeWait) |"
                + " chunks \(sample.chunks) | rss \(sample.rssKiB / 1024) MiB")
        fflush(nil)
    }

    private func serveTCP(_ listener: NetSocket) {
        var buffers = SoakBuffers()
        while !tally.serversStopping.load(ordering: .relaxed) {
            let accepted = Result { () throws(NetError) in try listener.accept() }
            guard case .success(let socket) = accepted else { continue }
            do {
                try soakTCPServerFlow(socket, deadline: plan.flowDeadline, buffers: &buffers)
            } catch {
                tally.fail("\(error)")
            }
        }
    }

    private func runTCPClient(_ worker: Int, stack: NetworkStack, server: SocketAddress) {
        var buffers = SoakBuffers()
        var random = SeededRandom(seed: plan.seed ^ UInt64(worker + 1) &* 0xA24B_AED4_963E_E407)
        while !tally.isStopping {
            let header = SoakRequestHeader(
                seed: random.next(), requestLength: soakSize(&random, maximum: plan.maxTransfer),
                responseLength: soakSize(&random, maximum: plan.maxTransfer))
            let start = monotonicNanoseconds()
            do {
                let bytes = try soakTCPClientFlow(
                    stack: stack, server: server, header: header, deadline: plan.flowDeadline, buffers: &buffers)
                let took = monotonicNanoseconds() - start
                guard took <= plan.flowDeadline else {
                    throw SoakFailure(description: "tcp: a flow took \(took / 1_000_000) ms, past its deadline")
                }
                tally.bytesChecked.add(bytes, ordering: .relaxed)
                tally.tcpFlows.add(1, ordering: .relaxed)
            } catch {
                tally.fail(
                    "tcp flow seed \(header.seed) (\(header.requestLength)/\(header.responseLength) bytes): \(error)")
            }
        }
    }

    /// The client ports the UDP workers share out (below the ephemeral range, which TCP's
    /// clients and the servers' stacks draw from).
    static let udpClientPorts: ClosedRange<UInt16> = 16384...32767

    private func runUDPClient(_ worker: Int, stack: NetworkStack, server: SocketAddress) {
        var buffers = SoakBuffers()
        buffers.scratch = [UInt8](repeating: 0, count: 65536)
        var random = SeededRandom(seed: plan.seed ^ UInt64(worker + 1) &* 0xD6E8_FEB8_6659_FD93)
        // Each worker binds its flows to ports of a block of its own, in turn. With ephemeral
        // ports a new flow could get, within milliseconds, the port of a flow that had just ended,
        // and an echo of that flow's last datagram still on its way (one the server answered
        // late, after a resend was answered too) then reached the new flow, which took it for a
        // stack that delivered another socket's datagram (a CI soak failed so once).
        let block = Swift.max(1, SoakRun.udpClientPorts.count / Swift.max(1, plan.udpWorkers))
        let first = Int(SoakRun.udpClientPorts.lowerBound) + worker * block
        var flow = 0
        while !tally.isStopping {
            let seed = random.next()
            let port = UInt16(truncatingIfNeeded: first + flow % block)
            flow += 1
            do {
                let bytes = try soakUDPFlow(
                    stack: stack, server: server, localPort: port, seed: seed, deadline: plan.flowDeadline,
                    tally: tally, buffers: &buffers)
                tally.bytesChecked.add(bytes, ordering: .relaxed)
                tally.udpFlows.add(1, ordering: .relaxed)
            } catch {
                tally.fail("udp flow seed \(seed): \(error)")
            }
        }
    }
}
