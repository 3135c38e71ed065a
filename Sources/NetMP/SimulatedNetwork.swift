import NetMPInet
import NetMPInterfaces
import NetMPLocal
import NetMPRuntime
import NetMPSockets
import NetMPWire

/// Many stacks joined by simulated switches in one process.
///
/// In the deterministic mode (the default) every protocol thread of every stack and switch is
/// driven: the caller steps the whole network on its own thread with a manual clock, and the
/// same seed gives the same packets byte for byte. In the threaded mode the same code runs on
/// dedicated threads with the system clock.
public final class SimulatedNetwork: @unchecked Sendable {
    public let clock: any NetClock
    public let mode: ProtocolThread.Mode
    public let seed: UInt64
    private let lock = NetLock()
    private var stacks: [NetworkStack] = []  // under lock
    private var switches: [SimulatedSwitch] = []  // under lock

    /// A deterministic network on a manual clock.
    public init(seed: UInt64 = 1) {
        self.clock = ManualClock(startingAt: 1_000_000_000)
        self.mode = .driven
        self.seed = seed
    }

    /// A threaded network on `clock`.
    public init(threadedWithSeed seed: UInt64, clock: any NetClock = SystemClock()) {
        self.clock = clock
        self.mode = .dedicated
        self.seed = seed
    }

    public var isDeterministic: Bool { mode == .driven }

    private func derivedSeed(_ salt: Int) -> UInt64 {
        var random = SeededRandom(seed: seed ^ UInt64(truncatingIfNeeded: salt) &* 0x9E37_79B9_7F4A_7C15)
        return random.next()
    }

    /// A new switch; its impairments apply to every port unless set per port.
    public func makeSwitch(name: String? = nil, impairments: LinkImpairments = .none) -> SimulatedSwitch {
        lock.withLock {
            let number = switches.count
            let made = SimulatedSwitch(
                name: name ?? "sw\(number)", number: UInt8(truncatingIfNeeded: number), clock: clock, mode: mode,
                seed: derivedSeed(1000 + number), impairments: impairments)
            switches.append(made)
            return made
        }
    }

    /// A new stack on this network's clock and mode.
    public func makeStack(threadCount: Int = 1, settings: InetSettings = InetSettings()) -> NetworkStack {
        let number = lock.withLock { stacks.count }
        let stack = NetworkStack(
            .init(threadCount: threadCount, clock: clock, mode: mode, seed: derivedSeed(number), inet: settings))
        lock.withLock { stacks.append(stack) }
        return stack
    }

    /// Gives `stack` a port on `attached` with the address "198.18.x.y/len"; returns the port.
    @discardableResult
    public func attach(
        _ stack: NetworkStack, to attached: SimulatedSwitch, address: String, mtu: Int = 1500,
        offloads: InterfaceOffloads = []
    ) throws(NetError) -> SwitchPort {
        let port = attached.addPort(mtu: mtu, offloads: offloads)
        try stack.addAddress(address, to: port)
        return port
    }

    // MARK: Stepping (deterministic mode)

    private var allThreads: [ProtocolThread] {
        lock.withLock { stacks.flatMap(\.threads) + switches.map(\.thread) }
    }

    private var handled: Int {
        allThreads.reduce(0) { $0 + $1.messagesHandled.load(ordering: .relaxed) }
    }

    /// Runs every thread until none has anything to do at the current time. Returns false when
    /// it gave up after `maxRounds` rounds with work still coming (threads messaging each other
    /// without end): a run that looks finished but is not must say so. The threaded mode
    /// returns true.
    @discardableResult
    public func runUntilIdle(maxRounds: Int = 100_000) -> Bool {
        guard mode == .driven else { return true }
        var rounds = 0
        while rounds < maxRounds {
            let before = handled
            for thread in allThreads { thread.runUntilIdle() }
            if handled == before { return true }
            rounds += 1
        }
        return false
    }

    /// The earliest timer deadline of any thread.
    private func nextDeadline() -> Int64? {
        var earliest: Int64?
        for thread in allThreads {
            if let deadline = thread.timers.nextDeadline() { earliest = Swift.min(earliest ?? deadline, deadline) }
        }
        return earliest
    }

    private func advance(to time: Int64) {
        guard let manual = clock as? ManualClock else { return }
        let now = manual.nanoseconds
        if time > now { manual.advance(by: time - now) }
    }

    /// Runs the network for `duration` of simulated time, jumping from timer to timer.
    public func run(for duration: Duration) {
        guard mode == .driven else { return }
        let end = clock.nanoseconds &+ duration.nanoseconds
        runUntilIdle()
        while let next = nextDeadline(), next <= end {
            advance(to: next)
            runUntilIdle()
        }
        advance(to: end)
        runUntilIdle()
    }

    /// Runs until `condition` holds or `limit` of simulated time passes; returns whether it held.
    @discardableResult
    public func run(until condition: () -> Bool, limit: Duration = .seconds(60)) -> Bool {
        guard mode == .driven else { return condition() }
        let end = clock.nanoseconds &+ limit.nanoseconds
        runUntilIdle()
        while !condition() {
            guard let next = nextDeadline(), next <= end else {
                advance(to: end)
                runUntilIdle()
                return condition()
            }
            advance(to: next)
            runUntilIdle()
        }
        return true
    }

    /// Stops every stack and switch.
    public func shutdown() {
        let (allStacks, allSwitches) = lock.withLock { (stacks, switches) }
        for stack in allStacks { stack.shutdown() }
        for each in allSwitches { each.shutdown() }
    }
}
