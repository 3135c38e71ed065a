import NetMPTCP
import NetMPWire
import XCTest

typealias Connection = TCPConnection<ArraySlice<UInt8>>
typealias Actions = TCPActions<ArraySlice<UInt8>>

let milliseconds: Int64 = 1_000_000
let seconds: Int64 = 1_000_000_000

/// A segment reduced to what the tables compare: flags, sequence, acknowledgment, data length.
struct Wire: Hashable, CustomStringConvertible {
    var flags: TCPFlags
    var sequence: UInt32
    var acknowledgment: UInt32
    var length: Int

    init(_ flags: TCPFlags, _ sequence: UInt32, _ acknowledgment: UInt32 = 0, length: Int = 0) {
        self.flags = flags
        self.sequence = sequence
        self.acknowledgment = acknowledgment
        self.length = length
    }

    init(_ segment: TCPOutboundSegment) {
        self.init(
            segment.header.flags, segment.header.sequenceNumber, segment.header.acknowledgmentNumber,
            length: segment.payloadLength)
    }

    var description: String {
        var names = ""
        for (flag, name) in [(TCPFlags.syn, "S"), (.fin, "F"), (.rst, "R"), (.psh, "P"), (.ack, ".")]
        where flags.contains(flag) {
            names += name
        }
        return "[\(names) \(sequence):\(acknowledgment) len \(length)]"
    }
}

/// A test configuration with small, round numbers: no window scaling or timestamps unless asked.
func plainConfiguration() -> TCPConfiguration {
    var configuration = TCPConfiguration()
    configuration.receiveBufferSize = 60_000
    configuration.windowScaling = false
    configuration.timestamps = false
    return configuration
}

/// A header from the peer (port 80) to the connection under test (port 40000).
func peer(
    _ flags: TCPFlags, _ sequence: UInt32, _ acknowledgment: UInt32 = 0, window: UInt16 = 60_000,
    options: TCPOptions = TCPOptions()
) -> TCPHeader {
    TCPHeader(
        sourcePort: 80, destinationPort: 40000, sequenceNumber: sequence, acknowledgmentNumber: acknowledgment,
        flags: flags, window: window, options: options)
}

/// The peer's SYN as a listen socket sees it (the connection under test is then port 80's child).
func incomingSYN(_ sequence: UInt32, options: TCPOptions = TCPOptions(maximumSegmentSize: 1460)) -> TCPHeader {
    TCPHeader(
        sourcePort: 40000, destinationPort: 80, sequenceNumber: sequence, flags: .syn, window: 60_000,
        options: options)
}

/// 64-bit FNV-1a, for byte-exact checks of streams.
struct FNV1a: Equatable {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ bytes: some Sequence<UInt8>) {
        for byte in bytes {
            value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
    }
}

/// xorshift64*: seeded, so a failing simulation replays from its printed seed.
struct SeededRandom {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    }

    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }

    mutating func below(_ bound: Int) -> Int { bound <= 0 ? 0 : Int(next() % UInt64(bound)) }

    /// True with probability `permille` / 1000.
    mutating func chance(_ permille: Int) -> Bool { below(1000) < permille }
}

/// One end under test: the connection, its manual clock, and the segments and actions it produced.
struct Harness {
    var connection: Connection
    var now: Int64 = 0
    var actions = Actions()

    init(_ connection: Connection) {
        self.connection = connection
    }

    /// An active opener from port 40000 to port 80 with ISN 1000, after `connect`.
    static func connecting(_ configuration: TCPConfiguration = plainConfiguration()) -> Harness {
        var harness = Harness(
            Connection(
                configuration: configuration, localPort: 40000, remotePort: 80,
                initialSequenceNumber: SequenceNumber(1000)))
        harness.run { $0.connect(now: $1, into: &$2) }
        return harness
    }

    /// A listen socket's child (port 80) for a SYN with ISN 5000; our ISN is 1000.
    static func accepting(
        _ configuration: TCPConfiguration = plainConfiguration(), syn: TCPHeader = incomingSYN(5000)
    ) -> Harness {
        var actions = Actions()
        var harness = Harness(
            Connection(
                acceptingSYN: syn, configuration: configuration, initialSequenceNumber: SequenceNumber(1000), now: 0,
                into: &actions))
        harness.actions = actions
        return harness
    }

    var state: TCPState { connection.state }
    /// What the event sent, a challenge ACK last (as the integration sends it when its rate limit allows).
    var sent: [Wire] { (actions.segments + (actions.challengeACK.map { [$0] } ?? [])).map(Wire.init) }

    /// Clears the last actions and runs one event at the current time.
    mutating func run(_ event: (inout Connection, Int64, inout Actions) -> Void) {
        actions.clear()
        event(&connection, now, &actions)
    }

    mutating func receive(_ header: TCPHeader, payload: [UInt8] = []) {
        run { $0.receive(header, payload: payload[...], now: $1, into: &$2) }
    }

    /// Advances the clock to `time` and fires the timers due.
    mutating func advance(to time: Int64) {
        now = time
        run { $0.timerFired(now: $1, into: &$2) }
    }

    /// Jumps to the next deadline and fires it; returns the time it fired at.
    @discardableResult
    mutating func fireNext() -> Int64? {
        guard let deadline = connection.nextDeadline else { return nil }
        advance(to: Swift.max(now, deadline))
        return deadline
    }
}
