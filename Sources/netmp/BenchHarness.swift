import Glibc
import NetMP

/// One measured pass of a leg: operations done, and the wall and process CPU time between the
/// same two instants.
struct Pass {
    var operations: Int
    var seconds: Double
    /// CPU time of every thread of this process in the pass (user and system): the benchmark's
    /// own threads, NetMP's protocol threads, spinning included. Kernel work done in interrupt
    /// context on another task's account is not in it.
    var cpuSeconds: Double

    var cpuPerOperationMicroseconds: Double {
        operations > 0 ? cpuSeconds * 1e6 / Double(operations) : .nan
    }
}

/// The start of a pass: wall and CPU clocks read together.
struct PassClock {
    private let wall = now()
    private let cpu = processCPUSeconds()

    func stop(operations: Int) -> Pass {
        let cpuNow = processCPUSeconds()
        return Pass(operations: operations, seconds: now() - wall, cpuSeconds: cpuNow - cpu)
    }
}

/// CPU seconds the whole process has used (all threads).
func processCPUSeconds() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

func monotonicNanoseconds() -> Int64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
}

/// One side of a row: NetMP, the kernel blocking, or the kernel spinning then blocking. `run`
/// does the given number of operations and times them.
struct Leg {
    var name: String
    var run: (Int) throws -> Pass
}

/// What a row measures: its unit, which way is better, and how a pass becomes its figure.
struct RowKind {
    var unit: String
    var better: String
    /// Operations of the short pass that sizes the measured ones.
    var probeOperations: Int
    var figure: (Pass) -> Double

    static func throughput(unit: String, scale: Double, probe: Int) -> RowKind {
        RowKind(unit: unit, better: "higher", probeOperations: probe) { Double($0.operations) * scale / $0.seconds }
    }

    static func latency(probe: Int) -> RowKind {
        RowKind(unit: "us", better: "lower", probeOperations: probe) { $0.seconds * 1e6 / Double($0.operations) }
    }
}

/// Measured passes per leg.
let passesPerLeg = 2

/// Runs every leg of one row and summarises it.
///
/// Each leg first runs a short probe that sizes its passes (about `seconds / rounds` each); then
/// the legs take turns, `rounds` rounds (`passesPerLeg` unless a row asks for more), the order
/// rotated each round and by `row`, so that no leg always runs right after the same (hot) one. A leg's figure is its best pass;
/// its CPU per operation is that pass's.
func measureRow(
    _ benchmark: String, _ kind: RowKind, legs: [Leg], seconds: Double, row: Int, passes rounds: Int = passesPerLeg
) throws -> BenchResult {
    var counts: [Int] = []
    for leg in legs {
        let probe = try leg.run(kind.probeOperations)
        let rate = Double(probe.operations) / Swift.max(probe.seconds, 1e-9)
        let wanted = rate * seconds / Double(rounds)
        counts.append(Swift.max(kind.probeOperations, wanted.isFinite ? Int(Swift.min(wanted, 1e12)) : 0))
    }
    var passes: [[Pass]] = Array(repeating: [], count: legs.count)
    for round in 0..<rounds {
        for offset in 0..<legs.count {
            let index = (offset + round + row) % legs.count
            passes[index].append(try legs[index].run(counts[index]))
        }
    }
    let higher = kind.better == "higher"
    let summaries = legs.indices.map { index in
        let figures = passes[index].map { (figure: kind.figure($0), cpu: $0.cpuPerOperationMicroseconds) }
        let best = figures.max { higher ? $0.figure < $1.figure : $0.figure > $1.figure } ?? (.nan, .nan)
        return LegSummary(name: legs[index].name, figure: best.figure, cpuPerOperation: best.cpu, passes: figures)
    }
    let netmp = summaries.first { $0.name == "netmp" }
    let kernel = summaries.filter { $0.name.hasPrefix("kernel") }.max {
        higher ? $0.figure < $1.figure : $0.figure > $1.figure
    }
    return BenchResult(
        benchmark: benchmark, unit: kind.unit, netmp: netmp?.figure ?? .nan, kernel: kernel?.figure,
        better: kind.better, cpuNetmp: netmp?.cpuPerOperation, cpuKernel: kernel?.cpuPerOperation, legs: summaries)
}

// MARK: Kernel sockets at their best

/// Spin-then-block for kernel socket calls, as NetMP's blocked calls wait: after a call that
/// would block, it retries with MSG_DONTWAIT until the call goes through or the budget runs out,
/// then yields the CPU a few times (trying after each yield), then makes the blocking call. The
/// budget (nanoseconds) adapts by NetMP's rule within NetMP's bounds (`SpinCalibration`), as a
/// NetMP socket buffer's does. One per thread and direction.
struct KernelSpinner {
    private var budget = SpinPolicy.waiterMaximumSpinNanoseconds
    /// NetMP's bounds as they are now (its wake-up figure follows what its sleepers measure).
    private var bounds: ClosedRange<Int64> { SpinCalibration.current.waiterBounds }

    /// `attempt(flags)` makes the call with `flags` (0 or MSG_DONTWAIT) and returns its result.
    mutating func call(_ attempt: (Int32) -> Int) -> Int {
        let dontWait = Int32(MSG_DONTWAIT)
        var result = attempt(dontWait)
        if result >= 0 || !KernelSpinner.wouldBlock() { return result }
        let start = monotonicNanoseconds()
        while true {
            result = attempt(dontWait)
            let spent = monotonicNanoseconds() - start
            if result >= 0 || !KernelSpinner.wouldBlock() {
                adapt(.caught(afterNanoseconds: spent))
                return result
            }
            if spent >= budget { break }
        }
        var yielded: Int64 = 0
        for _ in 0..<SpinPolicy.waiterYields {
            let before = monotonicNanoseconds()
            sched_yield()
            yielded += monotonicNanoseconds() - before
            result = attempt(dontWait)
            if result >= 0 || !KernelSpinner.wouldBlock() {
                let waited = monotonicNanoseconds() - start
                adapt(
                    yielded > SpinPolicy.yieldRanOthersNanoseconds
                        ? .yieldedToOthers : .caught(afterNanoseconds: waited))
                return result
            }
        }
        adapt(.slept)
        return attempt(0)
    }

    private mutating func adapt(_ outcome: SpinOutcome) {
        budget = SpinCalibration.adaptedBudget(budget, after: outcome, within: bounds)
    }

    private static func wouldBlock() -> Bool { errno == EAGAIN || errno == EWOULDBLOCK }
}

/// Socket buffer sizes of one socket (SO_SNDBUF, SO_RCVBUF).
struct BufferSizes: Equatable {
    var send: Int
    var receive: Int

    init(send: Int, receive: Int) {
        self.send = send
        self.receive = receive
    }

    /// What a NetMP socket has.
    init(_ socket: NetSocket) throws {
        send = try socket.option(.sendBufferSize)
        receive = try socket.option(.receiveBufferSize)
    }
}

/// Gives a kernel socket NetMP's buffer sizes: SO_SNDBUF / SO_RCVBUF, and the FORCE variants
/// (root only) where the sysctl limits cap the plain ones. Notes once per `label` what the kernel
/// granted (Linux reports twice the size asked, the other half being its bookkeeping).
func applyBufferSizes(_ sizes: BufferSizes, to fd: Int32, label: String) {
    func set(_ option: Int32, force: Int32, _ size: Int) -> Int32 {
        var value = Int32(clamping: size)
        let length = socklen_t(MemoryLayout<Int32>.size)
        _ = setsockopt(fd, SOL_SOCKET, option, &value, length)
        var granted: Int32 = 0
        var grantedLength = length
        _ = getsockopt(fd, SOL_SOCKET, option, &granted, &grantedLength)
        if granted < value {
            _ = setsockopt(fd, SOL_SOCKET, force, &value, length)
            _ = getsockopt(fd, SOL_SOCKET, option, &granted, &grantedLength)
        }
        return granted
    }
    let send = set(SO_SNDBUF, force: 32 /* SO_SNDBUFFORCE */, sizes.send)
    let receive = set(SO_RCVBUF, force: 33 /* SO_RCVBUFFORCE */, sizes.receive)
    let note =
        "kernel buffers \(label): SO_SNDBUF asked \(sizes.send) granted \(send),"
        + " SO_RCVBUF asked \(sizes.receive) granted \(receive)"
    if !benchNotes.contains(note) { benchNotes.append(note) }
}

// MARK: Pinning

/// With `--pin`: the two threads of every leg run on CPUs 0 and 1, so that they never share a
/// CPU (which the scheduler does on a busy machine, and which then dominates a round trip).
nonisolated(unsafe) var pinLegThreads = false

/// Pins the calling thread to `cpu` when `--pin` was given.
func pinIfAsked(_ cpu: Int) {
    guard pinLegThreads else { return }
    OSThread.pinCurrent(toCPU: cpu)
}
