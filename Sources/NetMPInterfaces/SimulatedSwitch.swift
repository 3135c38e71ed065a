import NetMPRuntime
import NetMPWire

/// Impairments applied to frames a switch delivers to one port, each drawn from the switch's
/// seeded generator so that a seed replays them exactly.
public struct LinkImpairments: Sendable, Hashable {
    /// Probability a frame is dropped.
    public var loss: Double
    /// Probability a frame is delivered twice.
    public var duplication: Double
    /// Probability a frame is held back by `reorderDelay`, so later frames overtake it.
    public var reordering: Double
    public var reorderDelay: Duration
    /// Fixed one-way delay, plus up to `jitter` more (uniform).
    public var delay: Duration
    public var jitter: Duration
    /// Probability one bit of a frame is flipped (the frame is copied first).
    public var corruption: Double
    /// Bits per second the port drains at; nil is unlimited.
    public var bandwidth: Int?
    /// Frames that may wait at the port (in flight or queued); more are dropped. nil: no limit.
    public var queueLimit: Int?
    /// Frames waiting at the port from which an ECN-capable IPv4 packet (ECT(0) or ECT(1)) is marked
    /// CE instead of queued unmarked (RFC 3168 step marking, as DCTCP's K); set below `queueLimit`,
    /// so ECN senders slow down before the queue drops. nil: never mark.
    public var ecnMarkingThreshold: Int?

    public init(
        loss: Double = 0, duplication: Double = 0, reordering: Double = 0,
        reorderDelay: Duration = .milliseconds(5), delay: Duration = .zero, jitter: Duration = .zero,
        corruption: Double = 0, bandwidth: Int? = nil, queueLimit: Int? = nil, ecnMarkingThreshold: Int? = nil
    ) {
        self.loss = loss
        self.duplication = duplication
        self.reordering = reordering
        self.reorderDelay = reorderDelay
        self.delay = delay
        self.jitter = jitter
        self.corruption = corruption
        self.bandwidth = bandwidth
        self.queueLimit = queueLimit
        self.ecnMarkingThreshold = ecnMarkingThreshold
    }

    /// A perfect link.
    public static let none = LinkImpairments()
}

/// What a switch did to the frames it carried.
public struct SwitchStatistics: Sendable, Hashable {
    public var received = 0
    public var delivered = 0
    public var lost = 0
    public var duplicated = 0
    public var corrupted = 0
    public var reordered = 0
    public var queueDrops = 0
    /// ECN-capable packets marked CE at a queue past its marking threshold.
    public var congestionMarks = 0
    public var partitionDrops = 0
    public var runts = 0
}

/// A port of a simulated switch, seen by a stack as its Ethernet interface.
public final class SwitchPort: NetworkInterface, @unchecked Sendable {
    public let index: Int
    weak var owner: SimulatedSwitch?

    package init(
        owner: SimulatedSwitch, index: Int, name: String, mtu: Int, hardwareAddress: MACAddress,
        offloads: InterfaceOffloads = []
    ) {
        self.owner = owner
        self.index = index
        super.init(
            name: name, mtu: mtu, hardwareAddress: hardwareAddress, offloads: offloads, needsAddressResolution: true)
    }

    public override func transmit(_ frames: [Frame]) {
        guard !frames.isEmpty, let owner else { return }
        noteTransmitted(frames)
        owner.thread.send { [owner, index] in owner.forward(frames, from: index) }
    }
}

/// A learning Ethernet switch joining any number of stacks in one process, with seeded
/// impairments per port and partitions that can be cut and healed at run time.
///
/// It runs on its own protocol thread (driven in the deterministic mode): frames are forwarded
/// there, and delays are callouts on its clock.
public final class SimulatedSwitch: @unchecked Sendable {
    public let name: String
    public let thread: ProtocolThread
    let switchNumber: UInt8

    // Switch-thread state.
    private var ports: [SwitchPort] = []
    private var portImpairments: [LinkImpairments] = []
    private var busyUntil: [Int64] = []
    private var queued: [Int] = []
    private var macTable: [MACAddress: Int] = [:]
    private var random: SeededRandom
    private var cuts: Set<Int> = []  // pair keys
    private var isolated: Set<Int> = []
    private var pending: [PendingFrame] = []  // sorted by (time, sequence)
    private var sequence: UInt64 = 0
    private var stats = SwitchStatistics()
    private var defaultImpairments: LinkImpairments
    private lazy var timer = Callout(on: thread) { [unowned self] in self.deliverDue() }

    private struct PendingFrame {
        var time: Int64
        var sequence: UInt64
        var port: Int
        var frame: Frame
    }

    public init(
        name: String = "switch", number: UInt8 = 0, clock: any NetClock, mode: ProtocolThread.Mode, seed: UInt64,
        impairments: LinkImpairments = .none
    ) {
        self.name = name
        self.switchNumber = number
        thread = ProtocolThread(index: 1000 + Int(number), clock: clock, mode: mode)
        random = SeededRandom(seed: seed)
        defaultImpairments = impairments
    }

    /// Adds a port; the stack uses it as an interface. `offloads: .checksumsSkipped` makes the
    /// stack on it skip checksums as on loopback (then corruption goes undetected, as it would).
    public func addPort(mtu: Int = 1500, name: String? = nil, offloads: InterfaceOffloads = []) -> SwitchPort {
        let result: SwitchPort? = try? thread.call { [self] () throws(NetError) -> SwitchPort in
            let index = ports.count
            let mac = MACAddress(
                0x02, 0x00, 0x5E, switchNumber, UInt8(truncatingIfNeeded: index >> 8), UInt8(truncatingIfNeeded: index))
            let port = SwitchPort(
                owner: self, index: index, name: name ?? "\(self.name).\(index)", mtu: mtu, hardwareAddress: mac,
                offloads: offloads)
            ports.append(port)
            portImpairments.append(defaultImpairments)
            busyUntil.append(0)
            queued.append(0)
            return port
        }
        guard let result else { preconditionFailure("switch thread stopped") }
        return result
    }

    /// Sets the impairments of frames delivered to `port` (nil: every port).
    public func setImpairments(_ impairments: LinkImpairments, for port: SwitchPort? = nil) {
        _ = try? thread.call { [self] () throws(NetError) in
            if let port {
                portImpairments[port.index] = impairments
            } else {
                defaultImpairments = impairments
                for index in portImpairments.indices { portImpairments[index] = impairments }
            }
        }
    }

    private static func pairKey(_ a: Int, _ b: Int) -> Int { Swift.min(a, b) << 20 | Swift.max(a, b) }

    /// Cuts the path between two ports (both directions).
    public func cut(_ a: SwitchPort, _ b: SwitchPort) {
        _ = try? thread.call { [self] () throws(NetError) in _ = cuts.insert(SimulatedSwitch.pairKey(a.index, b.index))
        }
    }

    /// Cuts a port off from every other.
    public func isolate(_ port: SwitchPort) {
        _ = try? thread.call { [self] () throws(NetError) in _ = isolated.insert(port.index) }
    }

    /// Heals every cut.
    public func heal() {
        _ = try? thread.call { [self] () throws(NetError) in
            cuts.removeAll()
            isolated.removeAll()
        }
    }

    public var statistics: SwitchStatistics {
        (try? thread.call { [self] () throws(NetError) in stats }) ?? SwitchStatistics()
    }

    /// Stops the switch thread.
    public func shutdown() { thread.stop() }

    // MARK: Switch thread

    func forward(_ frames: [Frame], from source: Int) {
        let now = thread.clock.nanoseconds
        for frame in frames {
            stats.received += 1
            guard frame.count >= EthernetHeader.length else {
                stats.runts += 1
                continue
            }
            let bytes = frame.bytes
            var destination: UInt64 = 0
            var sender: UInt64 = 0
            for offset in 0..<6 {
                destination = destination << 8 | UInt64(bytes[offset])
                sender = sender << 8 | UInt64(bytes[6 + offset])
            }
            let senderMAC = MACAddress(rawValue: sender)
            if senderMAC.isUnicast && senderMAC != .zero { macTable[senderMAC] = source }
            let destinationMAC = MACAddress(rawValue: destination)
            if destinationMAC.isUnicast, let port = macTable[destinationMAC] {
                if port != source { schedule(frame, from: source, to: port, now: now) }
            } else {
                for port in ports.indices where port != source { schedule(frame, from: source, to: port, now: now) }
            }
        }
        deliverDue()
    }

    private func schedule(_ frame: Frame, from source: Int, to port: Int, now: Int64) {
        if isolated.contains(source) || isolated.contains(port)
            || cuts.contains(SimulatedSwitch.pairKey(source, port))
        {
            stats.partitionDrops += 1
            return
        }
        let impairments = portImpairments[port]
        if random.chance(impairments.loss) {
            stats.lost += 1
            return
        }
        var copies = 1
        if random.chance(impairments.duplication) {
            copies = 2
            stats.duplicated += 1
        }
        for _ in 0..<copies {
            var out = frame
            if random.chance(impairments.corruption), frame.count > 0 {
                out = Frame(copying: frame.bytes)
                let position = Int(random.next() % UInt64(out.count))
                let bit = UInt8(1) << UInt8(random.next() % 8)
                let pointer = out.chunk.base + out.start + position
                pointer.storeBytes(of: pointer.load(as: UInt8.self) ^ bit, as: UInt8.self)
                stats.corrupted += 1
            }
            if let limit = impairments.queueLimit, queued[port] >= limit {
                stats.queueDrops += 1
                continue
            }
            if let threshold = impairments.ecnMarkingThreshold, queued[port] >= threshold,
                let marked = SimulatedSwitch.markingCongestion(out)
            {
                out = marked
                stats.congestionMarks += 1
            }
            var time = now
            if let bandwidth = impairments.bandwidth, bandwidth > 0 {
                let start = Swift.max(now, busyUntil[port])
                let bits = Int64(out.count) * 8
                busyUntil[port] = start &+ bits * 1_000_000_000 / Int64(bandwidth)
                time = busyUntil[port]
            }
            time &+= impairments.delay.nanoseconds
            let jitter = impairments.jitter.nanoseconds
            if jitter > 0 { time &+= Int64(random.next() % UInt64(jitter + 1)) }
            if random.chance(impairments.reordering) {
                time &+= impairments.reorderDelay.nanoseconds
                stats.reordered += 1
            }
            queued[port] += 1
            insert(PendingFrame(time: time, sequence: sequence, port: port, frame: out))
            sequence &+= 1
        }
    }

    private func insert(_ entry: PendingFrame) {
        var low = 0
        var high = pending.count
        while low < high {
            let middle = (low + high) / 2
            let other = pending[middle]
            if other.time < entry.time || (other.time == entry.time && other.sequence < entry.sequence) {
                low = middle + 1
            } else {
                high = middle
            }
        }
        pending.insert(entry, at: low)
    }

    private func deliverDue() {
        let now = thread.clock.nanoseconds
        var due = 0
        while due < pending.count && pending[due].time <= now { due += 1 }
        if due > 0 {
            var batches = [[Frame]](repeating: [], count: ports.count)
            for index in 0..<due {
                let entry = pending[index]
                batches[entry.port].append(entry.frame)
                queued[entry.port] -= 1
            }
            pending.removeFirst(due)
            for (port, batch) in batches.enumerated() where !batch.isEmpty {
                stats.delivered += batch.count
                ports[port].deliverInbound(batch)
            }
        }
        if let first = pending.first {
            timer.arm(at: first.time)
        } else {
            timer.cancel()
        }
    }

    /// A copy of `frame` with CE in its IPv4 ECN field and the header checksum updated (RFC 1624),
    /// or nil when it is not an ECN-capable IPv4 packet (not IPv4, too short, Not-ECT or already CE).
    static func markingCongestion(_ frame: Frame) -> Frame? {
        let bytes = frame.bytes
        let ip = 14
        guard bytes.count >= ip + 20, bytes[12] == 0x08, bytes[13] == 0x00, bytes[ip] >> 4 == 4 else { return nil }
        let codepoint = bytes[ip + 1] & 0x3
        guard codepoint == 0b01 || codepoint == 0b10 else { return nil }
        let marked = Frame(copying: bytes)
        let pointer = marked.chunk.base + marked.start
        let oldWord = UInt16(bytes[ip]) << 8 | UInt16(bytes[ip + 1])
        let newWord = oldWord | 0b11
        let oldChecksum = UInt16(bytes[ip + 10]) << 8 | UInt16(bytes[ip + 11])
        let newChecksum = InternetChecksum.update(checksum: oldChecksum, old16: oldWord, new16: newWord)
        (pointer + ip + 1).storeBytes(of: UInt8(truncatingIfNeeded: newWord), as: UInt8.self)
        (pointer + ip + 10).storeBytes(of: UInt8(truncatingIfNeeded: newChecksum >> 8), as: UInt8.self)
        (pointer + ip + 11).storeBytes(of: UInt8(truncatingIfNeeded: newChecksum), as: UInt8.self)
        return marked
    }
}
