import NetMPWire

/// A structure-aware fuzzer for one `TCPConnection`: sequences of events (the peer's segments
/// with valid headers but adversarial sequence and acknowledgment numbers, flags, options,
/// windows and lengths; the application's sends, reads, shutdowns, closes and aborts; time
/// passing) driven into one connection, active or passive, with the invariants checked after
/// every step. Used by `netmp fuzz --tcp` (seeded), the test suite, and the libFuzzer target
/// `tcp-connection` in Proofs/fuzz, which feeds it bytes instead of a generator.
///
/// The peer's stream is a fixed function of the byte's position in it (`streamByte`), so any
/// segment, however it overlaps others, carries the true bytes for its sequence numbers, and what
/// the connection delivers must be exactly the stream's prefix.
public enum TCPFuzz {
    /// What a run covered.
    public struct Counts: Sendable, Hashable {
        public var sequences = 0
        public var steps = 0
        public var segmentsIn = 0
        public var segmentsOut = 0
        public var bytesDelivered = 0
        /// States some connection was in after some step.
        public var statesReached: Set<TCPState> = []
    }

    /// A broken invariant: which, at which step, after which events (for a regression test).
    public struct Violation: Error, CustomStringConvertible, Sendable {
        public var message: String
        public var step: Int
        /// The events of the sequence, oldest first (the last 16 are kept).
        public var trace: [String]
        public var description: String {
            "step \(step): \(message)\n" + trace.map { "  \($0)" }.joined(separator: "\n")
        }
    }

    /// Runs `iterations` sequences of up to `steps` events each from `seed`; stops at the first
    /// broken invariant (the same seed replays it).
    public static func run(iterations: Int, seed: UInt64, steps: Int = 64) -> Result<Counts, Violation> {
        var counts = Counts()
        for iteration in 0..<Swift.max(0, iterations) {
            var choices = Choices(seed: seed &+ UInt64(iteration) &* 0x9E37_79B9_7F4A_7C15)
            var sequence = Run(choices: &choices)
            if let violation = sequence.run(&choices, maximumSteps: steps, counts: &counts) {
                var described = violation
                described.message = "sequence \(iteration) of seed \(seed): " + violation.message
                return .failure(described)
            }
        }
        return .success(counts)
    }

    /// Runs the one sequence `bytes` choose (libFuzzer); it ends when the bytes do.
    public static func run(bytes: UnsafeRawBufferPointer) -> Result<Counts, Violation> {
        var counts = Counts()
        var choices = Choices(bytes: Array(bytes))
        var sequence = Run(choices: &choices)
        if let violation = sequence.run(&choices, maximumSteps: 4096, counts: &counts) {
            return .failure(violation)
        }
        return .success(counts)
    }

    /// The peer's byte at `position` in its stream (0 is the byte after its SYN).
    @inline(__always)
    static func streamByte(_ position: UInt32) -> UInt8 {
        UInt8(truncatingIfNeeded: (position &* 2_654_435_761) >> 24 ^ position)
    }

    /// Where decisions come from: a generator, or the fuzzer's bytes (nil once they run out).
    struct Choices {
        private var state: UInt64
        private var bytes: [UInt8]?
        private var offset = 0

        init(seed: UInt64) {
            state = seed
            bytes = nil
        }

        init(bytes: [UInt8]) {
            state = 0
            self.bytes = bytes
        }

        /// A value in 0..<bound (bound ≥ 1), or nil when the input is used up.
        mutating func below(_ bound: Int) -> Int? {
            let bound = UInt64(Swift.max(1, bound))
            guard let bytes else {
                // SplitMix64.
                state &+= 0x9E37_79B9_7F4A_7C15
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                return Int(truncatingIfNeeded: (z ^ (z >> 31)) % bound)
            }
            let width = bound <= 0x100 ? 1 : bound <= 0x1_0000 ? 2 : 4
            guard offset + width <= bytes.count else { return nil }
            var value: UInt64 = 0
            for index in 0..<width { value = value << 8 | UInt64(bytes[offset + index]) }
            offset += width
            return Int(truncatingIfNeeded: value % bound)
        }

        /// A value for a choice that has a default when the input is used up.
        mutating func pick(_ bound: Int, default fallback: Int = 0) -> Int { below(bound) ?? fallback }

        mutating func word() -> UInt32 { UInt32(truncatingIfNeeded: pick(1 << 32)) }
    }

    /// One connection and the model of its peer and application.
    struct Run {
        var connection: TCPConnection<ArraySlice<UInt8>>
        var actions = TCPActions<ArraySlice<UInt8>>()
        var now: Int64 = 0
        /// The peer's ISN until the connection has learned one.
        let peerISN: UInt32
        /// Stream positions the peer has sent up to (the end of its furthest data).
        var peerSentEnd: UInt32 = 0
        /// Stream positions at which the peer sent a FIN.
        var peerFINs: Set<UInt32> = []
        var delivered: UInt32 = 0
        var endOfStream = false
        /// Bytes the application queued that the connection took, less those acknowledged.
        var queued = 0
        var step = 0
        /// Events, described only when an invariant breaks (formatting each costs more than the step).
        var trace: [Event] = []

        init(choices: inout Choices) {
            var configuration = TCPConfiguration()
            configuration.receiveBufferSize = [4096, 16384, 60000, 262_144][choices.pick(4, default: 2)]
            configuration.windowScaling = choices.pick(2) == 1
            configuration.timestamps = choices.pick(2) == 1
            configuration.sackPermitted = choices.pick(2) == 1
            configuration.noDelay = choices.pick(2) == 1
            configuration.maximumOutOfOrderSegments = 1 + choices.pick(16, default: 7)
            configuration.maximumOutOfOrderBytes = 1024 << choices.pick(8, default: 4)
            configuration.maximumRetransmissions = 1 + choices.pick(6, default: 5)
            peerISN = choices.word()
            let ourISN = SequenceNumber(choices.word())
            let routeMTU = [1500, 576, 68, 9000][choices.pick(4)]
            if choices.pick(2) == 0 {
                connection = TCPConnection(
                    configuration: configuration, localPort: 40000, remotePort: 80, initialSequenceNumber: ourISN,
                    routeMTU: routeMTU)
                connection.connect(now: 0, into: &actions)
                trace.append(.connect(ourISN: ourISN.rawValue))
            } else {
                let syn = TCPHeader(
                    sourcePort: 80, destinationPort: 40000, sequenceNumber: peerISN, flags: .syn,
                    window: UInt16(truncatingIfNeeded: choices.pick(1 << 16, default: 65535)),
                    options: Self.options(&choices, connection: nil, handshake: true))
                connection = TCPConnection(
                    acceptingSYN: syn, configuration: configuration, initialSequenceNumber: ourISN, routeMTU: routeMTU,
                    now: 0, into: &actions)
                trace.append(.accept(peerISN: peerISN, options: syn.options))
            }
        }

        /// The peer's sequence number of its stream position 0 as the connection knows it.
        var streamOrigin: UInt32 {
            switch connection.state {
            case .closed, .listen, .synSent: return peerISN &+ 1
            default: return connection.initialReceiveSequence.rawValue &+ 1
            }
        }

        mutating func run(_ choices: inout Choices, maximumSteps: Int, counts: inout Counts) -> Violation? {
            counts.sequences += 1
            if let violation = check() { return violation }
            while step < maximumSteps, let event = choices.below(16) {
                step += 1
                actions.clear()
                switch event {
                case 0..<9: peerSegment(&choices, counts: &counts)
                case 9, 10:
                    let count = 1 + choices.pick(20000, default: 100)
                    let before = connection.sendQueueCount
                    connection.send(count: Swift.min(count, 262_144 - queued), now: now, into: &actions)
                    queued += connection.sendQueueCount - before + actions.acknowledgedBytes
                    trace.append(.send(count))
                case 11:
                    let count = choices.pick(connection.unreadCount + 1)
                    connection.received(count: count, now: now, into: &actions)
                    trace.append(.read(count))
                case 12:
                    let call = choices.pick(8)
                    switch call {
                    case 0: connection.close(now: now, into: &actions)
                    case 1: connection.abort(now: now, into: &actions)
                    default: connection.shutdownWrite(now: now, into: &actions)
                    }
                    trace.append(call == 0 ? .close : call == 1 ? .abort : .shutdownWrite)
                default:
                    let jump: Int64
                    switch choices.pick(4) {
                    case 0: jump = Int64(choices.pick(50)) * 1_000_000
                    case 1: jump = Int64(choices.pick(300)) * 1_000_000_000
                    default: jump = Swift.max(0, (connection.nextDeadline ?? now) - now)
                    }
                    now &+= jump
                    connection.timerFired(now: now, into: &actions)
                    trace.append(.time(milliseconds: jump / 1_000_000))
                }
                counts.steps += 1
                counts.segmentsOut += actions.segments.count
                counts.statesReached.insert(connection.state)
                // A connection that closed (reset, abort, timeout) drops its queue unacknowledged.
                if connection.state == .closed { queued = connection.sendQueueCount + actions.acknowledgedBytes }
                if let violation = absorb(counts: &counts) ?? check() { return violation }
            }
            return nil
        }

        /// A segment from the peer, built from the connection's own numbers so that it lands
        /// near the edges that matter, or anywhere.
        mutating func peerSegment(_ choices: inout Choices, counts: inout Counts) {
            let flagSets: [TCPFlags] = [
                .ack, [.ack, .psh], [.ack, .fin], .syn, [.syn, .ack], .rst, [.rst, .ack], [.fin], [.ack, .urg],
            ]
            let flagChoice = choices.pick(flagSets.count + 1)
            let flags =
                flagChoice < flagSets.count
                ? flagSets[flagChoice] : TCPFlags(rawValue: UInt8(truncatingIfNeeded: choices.pick(256)))
            let next = connection.receiveNext.rawValue
            let sequence: UInt32
            switch choices.pick(8) {
            case 0, 1, 2: sequence = flags.contains(.syn) ? streamOrigin &- 1 : next
            case 3: sequence = next &+ UInt32(truncatingIfNeeded: choices.pick(70000))
            case 4: sequence = next &- UInt32(truncatingIfNeeded: choices.pick(3000))
            case 5: sequence = streamOrigin &- 1
            default: sequence = choices.word()
            }
            let una = connection.sendUnacknowledged.rawValue
            let flight = UInt32(truncatingIfNeeded: Swift.max(0, connection.sendMax - connection.sendUnacknowledged))
            let acknowledgment: UInt32
            switch choices.pick(8) {
            case 0, 1: acknowledgment = connection.sendMax.rawValue
            case 2: acknowledgment = connection.sendNext.rawValue
            case 3: acknowledgment = una &+ UInt32(truncatingIfNeeded: choices.pick(Int(flight) + 1))
            case 4: acknowledgment = una
            case 5: acknowledgment = una &- UInt32(truncatingIfNeeded: choices.pick(3000))
            case 6: acknowledgment = connection.sendMax.rawValue &+ UInt32(truncatingIfNeeded: 1 + choices.pick(3000))
            default: acknowledgment = choices.word()
            }
            let window: UInt16
            switch choices.pick(4) {
            case 0: window = 0
            case 1: window = UInt16(truncatingIfNeeded: choices.pick(2000))
            case 2: window = 65535
            default: window = UInt16(truncatingIfNeeded: choices.pick(1 << 16))
            }
            let length: Int
            switch choices.pick(4) {
            case 0: length = 0
            case 1: length = 1 + choices.pick(1460)
            case 2: length = choices.pick(9000)
            default: length = 1 + choices.pick(16)
            }
            let header = TCPHeader(
                sourcePort: 80, destinationPort: 40000, sequenceNumber: sequence, acknowledgmentNumber: acknowledgment,
                flags: flags, window: window,
                options: Self.options(&choices, connection: connection, handshake: flags.contains(.syn)))
            // The payload carries the stream's true bytes for its sequence numbers.
            let dataStart = sequence &+ (flags.contains(.syn) ? 1 : 0)
            let origin = flags.contains(.syn) && !connection.state.isSynchronized ? sequence &+ 1 : streamOrigin
            let position = dataStart &- origin
            var payload = [UInt8](repeating: 0, count: length)
            for index in 0..<length {
                payload[index] = TCPFuzz.streamByte(position &+ UInt32(truncatingIfNeeded: index))
            }
            // What the peer has "sent", for the delivered ≤ sent check: positions in the first
            // half of the space count as ahead of the origin, and a segment may start behind it.
            let end = position &+ UInt32(truncatingIfNeeded: length)
            let reachesAhead = end < 1 << 31 && (position < 1 << 31 || end < position)
            if length > 0, reachesAhead, end > peerSentEnd { peerSentEnd = end }
            if flags.contains(.fin), end < 1 << 31 { peerFINs.insert(end) }
            trace.append(
                .segment(
                    header, sequenceFromNext: Int32(bitPattern: sequence &- next),
                    acknowledgmentFromUna: Int32(bitPattern: acknowledgment &- una), length: length,
                    state: connection.state))
            counts.segmentsIn += 1
            connection.receive(header, payload: payload[...], now: now, into: &actions)
        }

        /// Options valid in form, adversarial in value.
        static func options(
            _ choices: inout Choices, connection: TCPConnection<ArraySlice<UInt8>>?, handshake: Bool
        ) -> TCPOptions {
            var options = TCPOptions()
            let mask = choices.pick(32, default: handshake ? 0b0111 : 0)
            if mask & 1 != 0 {
                options.maximumSegmentSize = UInt16(truncatingIfNeeded: [0, 1, 48, 536, 1460, 65535][choices.pick(6)])
            }
            if mask & 2 != 0 { options.windowScale = UInt8(truncatingIfNeeded: choices.pick(20)) }
            if mask & 4 != 0 { options.sackPermitted = true }
            if mask & 8 != 0 {
                options.timestamps = TCPTimestamps(value: choices.word(), echoReply: choices.word())
            }
            if mask & 16 != 0, let connection {
                let una = connection.sendUnacknowledged.rawValue
                let flight = Swift.max(0, connection.sendMax - connection.sendUnacknowledged)
                for _ in 0..<(1 + choices.pick(4)) {
                    let left = una &+ UInt32(truncatingIfNeeded: choices.pick(flight + 2000) - 1000)
                    let right = left &+ UInt32(truncatingIfNeeded: choices.pick(4000))
                    _ = options.sackBlocks.append(SACKBlock(left: left, right: right))
                }
            }
            return options
        }

        /// Takes in what the step produced: delivered bytes (checked against the stream),
        /// acknowledged bytes, the end of the stream.
        mutating func absorb(counts: inout Counts) -> Violation? {
            for piece in actions.delivered {
                if endOfStream { return violation("\(piece.count) bytes delivered after end of stream") }
                for byte in piece {
                    guard byte == TCPFuzz.streamByte(delivered) else {
                        return violation(
                            "delivered byte at stream position \(delivered) is \(byte), the peer sent"
                                + " \(TCPFuzz.streamByte(delivered))")
                    }
                    delivered &+= 1
                }
                counts.bytesDelivered += piece.count
            }
            if actions.deliveredByteCount > 0, delivered > peerSentEnd {
                return violation("\(delivered) bytes delivered, the peer sent \(peerSentEnd)")
            }
            if actions.endOfStream {
                guard peerFINs.contains(delivered) else {
                    return violation("end of stream after \(delivered) bytes, no FIN there (\(peerFINs.sorted()))")
                }
                endOfStream = true
            }
            queued -= actions.acknowledgedBytes
            return nil
        }

        /// The invariants every state must keep.
        func check() -> Violation? {
            let c = connection
            guard !(c.sendNext < c.sendUnacknowledged), !(c.sendMax < c.sendNext) else {
                return violation(
                    "snd_una \(c.sendUnacknowledged) ≤ snd_nxt \(c.sendNext) ≤ snd_max \(c.sendMax) broken")
            }
            // SYN and FIN take a sequence number each; everything else in flight is queued data.
            guard c.sendMax - c.sendUnacknowledged <= c.sendQueueCount + 2 else {
                return violation(
                    "\(c.sendMax - c.sendUnacknowledged) in flight with \(c.sendQueueCount) bytes queued")
            }
            guard c.sendQueueCount >= 0, c.sendQueueCount == queued else {
                return violation("send queue \(c.sendQueueCount), the application queued \(queued) unacknowledged")
            }
            for segment in actions.segments where segment.payloadLength > 0 {
                guard segment.sendQueueOffset >= 0,
                    segment.sendQueueOffset + segment.payloadLength <= c.sendQueueCount
                else {
                    return violation(
                        "a segment sends queue bytes \(segment.sendQueueOffset)..+\(segment.payloadLength)"
                            + " of \(c.sendQueueCount)")
                }
                guard segment.payloadLength <= c.maximumSegmentSize else {
                    return violation("a \(segment.payloadLength)-byte segment, MSS \(c.maximumSegmentSize)")
                }
            }
            let queue = c.outOfOrder
            guard queue.entries.count <= c.configuration.maximumOutOfOrderSegments,
                queue.byteCount <= c.configuration.maximumOutOfOrderBytes
            else {
                return violation("out-of-order queue \(queue.entries.count) segments, \(queue.byteCount) bytes")
            }
            guard c.unreadCount >= 0, c.unreadCount <= c.configuration.receiveBufferSize + (1 << c.receiveScale) else {
                return violation("\(c.unreadCount) unread bytes, buffer \(c.configuration.receiveBufferSize)")
            }
            return nil
        }

        func violation(_ message: String) -> Violation {
            Violation(
                message: message + " (state \(connection.state))", step: step,
                trace: trace.suffix(16).map(\.description))
        }
    }

    /// One event of a sequence, for the report of a broken invariant.
    enum Event: CustomStringConvertible {
        case connect(ourISN: UInt32)
        case accept(peerISN: UInt32, options: TCPOptions)
        case segment(
            TCPHeader, sequenceFromNext: Int32, acknowledgmentFromUna: Int32, length: Int, state: TCPState)
        case send(Int)
        case read(Int)
        case close, abort, shutdownWrite
        case time(milliseconds: Int64)

        var description: String {
            switch self {
            case .connect(let isn): return "connect, ISN \(isn)"
            case .accept(let isn, let options): return "accept SYN \(isn) \(Self.describe(options))"
            case .segment(let header, let fromNext, let fromUna, let length, let state):
                let names = [(TCPFlags.syn, "S"), (.fin, "F"), (.rst, "R"), (.psh, "P"), (.ack, "."), (.urg, "U")]
                let flags = names.filter { header.flags.contains($0.0) }.map(\.1).joined()
                return "peer [\(flags)] seq \(header.sequenceNumber) (rcv_nxt\(fromNext >= 0 ? "+" : "")\(fromNext))"
                    + " ack \(header.acknowledgmentNumber) (snd_una\(fromUna >= 0 ? "+" : "")\(fromUna))"
                    + " win \(header.window) len \(length) \(Self.describe(header.options)) in \(state)"
            case .send(let count): return "send \(count)"
            case .read(let count): return "read \(count)"
            case .close: return "close"
            case .abort: return "abort"
            case .shutdownWrite: return "shutdown(write)"
            case .time(let milliseconds): return "time +\(milliseconds) ms, timers"
            }
        }

        static func describe(_ options: TCPOptions) -> String {
            var parts: [String] = []
            if let mss = options.maximumSegmentSize { parts.append("mss \(mss)") }
            if let scale = options.windowScale { parts.append("wscale \(scale)") }
            if options.sackPermitted { parts.append("sackOK") }
            if let stamps = options.timestamps { parts.append("ts \(stamps.value)/\(stamps.echoReply)") }
            for block in options.sackBlocks { parts.append("sack \(block.left)-\(block.right)") }
            return "<" + parts.joined(separator: " ") + ">"
        }
    }
}
