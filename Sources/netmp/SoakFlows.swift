import Glibc
import NetMP
import Synchronization

/// What one soak run does: sizes, workers and limits.
struct SoakPlan: Sendable {
    var seed: UInt64
    var threads: Int
    var tcpWorkers: Int
    var udpWorkers: Int
    var duration: Int64
    var flowDeadline: Int64
    var maxTransfer: Int
}

/// FNV-1a, 64 bits: the hash every stream and datagram is checked with.
struct SoakHash: Equatable {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    private(set) var count = 0

    mutating func add(_ bytes: UnsafeRawBufferPointer) {
        var hash = value
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        value = hash
        count += bytes.count
    }
}

/// The bytes of a flow: `count` bytes drawn from `seed`, the same on both ends.
func soakBytes(seed: UInt64, count: Int, into buffer: inout [UInt8]) {
    var random = SeededRandom(seed: seed)
    if buffer.count < count { buffer = [UInt8](repeating: 0, count: count) }
    buffer.withUnsafeMutableBytes { raw in
        var index = 0
        while index < count {
            var word = random.next()
            for _ in 0..<Swift.min(8, count - index) {
                raw[index] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                index += 1
            }
        }
    }
}

/// The hash of `soakBytes(seed:count:)`, without keeping them.
func soakHash(seed: UInt64, count: Int, scratch: inout [UInt8]) -> SoakHash {
    soakBytes(seed: seed, count: count, into: &scratch)
    var hash = SoakHash()
    scratch.withUnsafeBytes { hash.add(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
    return hash
}

/// A flow's size: mostly small, some medium, a few up to `maximum` (web-like).
func soakSize(_ random: inout SeededRandom, maximum: Int) -> Int {
    let roll = random.next() % 100
    let limit = roll < 70 ? Swift.min(4096, maximum) : roll < 95 ? Swift.min(65536, maximum) : maximum
    return Int(random.next() % UInt64(limit + 1))
}

/// Counts and failures every worker adds to; read by the sampler each second.
final class SoakTally: Sendable {
    let tcpFlows = Atomic<Int>(0)
    let udpFlows = Atomic<Int>(0)
    let bytesChecked = Atomic<Int>(0)
    let datagramsChecked = Atomic<Int>(0)
    let udpRetries = Atomic<Int>(0)
    let failures = Atomic<Int>(0)
    let stopping = Atomic<Bool>(false)
    /// Set once every client is back: the servers stop (before, a flow in flight would fail).
    let serversStopping = Atomic<Bool>(false)
    /// Set when the run is over, so that the watchdog stands down.
    let finished = Atomic<Bool>(false)
    private let messages = LockedValue<[String]>([])

    /// Records a failed flow; the first 20 messages are kept for the report.
    func fail(_ message: String) {
        failures.add(1, ordering: .relaxed)
        messages.withLock { if $0.count < 20 { $0.append(message) } }
    }

    var failureMessages: [String] { messages.withLock { $0 } }
    var isStopping: Bool { stopping.load(ordering: .relaxed) }
}

/// A flow that went wrong: what, on which flow.
struct SoakFailure: Error, CustomStringConvertible {
    var description: String
}

// MARK: TCP

/// The TCP request header: the flow's seed, request and response lengths (16 bytes).
struct SoakRequestHeader {
    static let size = 16
    var seed: UInt64
    var requestLength: Int
    var responseLength: Int

    var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(Self.size)
        for shift in stride(from: 56, through: 0, by: -8) {
            out.append(UInt8(truncatingIfNeeded: seed >> UInt64(shift)))
        }
        for value in [requestLength, responseLength] {
            for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: value >> shift)) }
        }
        return out
    }

    init(seed: UInt64, requestLength: Int, responseLength: Int) {
        self.seed = seed
        self.requestLength = requestLength
        self.responseLength = responseLength
    }

    init(_ bytes: ArraySlice<UInt8>) {
        var values = bytes.makeIterator()
        var seed: UInt64 = 0
        for _ in 0..<8 { seed = seed << 8 | UInt64(values.next() ?? 0) }
        var lengths = [0, 0]
        for index in 0..<2 {
            for _ in 0..<4 { lengths[index] = lengths[index] << 8 | Int(values.next() ?? 0) }
        }
        self.init(seed: seed, requestLength: lengths[0], responseLength: lengths[1])
    }
}

/// Reads until `count` bytes or end of file; returns what was read.
func soakReadExactly(_ socket: NetSocket, _ count: Int, into buffer: inout [UInt8]) throws -> Int {
    if buffer.count < count { buffer = [UInt8](repeating: 0, count: count) }
    var total = 0
    while total < count {
        let n = try buffer.withUnsafeMutableBytes { raw in
            try socket.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[total..<count]))
        }
        if n == 0 { break }
        total += n
    }
    return total
}

/// Reads to end of file in `scratch`-sized pieces, hashing everything.
func soakReadToEnd(_ socket: NetSocket, scratch: inout [UInt8]) throws -> SoakHash {
    var hash = SoakHash()
    while true {
        let n = try scratch.withUnsafeMutableBytes { raw in try socket.read(into: raw) }
        if n == 0 { return hash }
        scratch.withUnsafeBytes { hash.add(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
    }
}

/// Writes all of `bytes[0..<count]`; a short count (a timeout) throws.
func soakWriteAll(_ socket: NetSocket, _ bytes: [UInt8], count: Int) throws {
    var offset = 0
    while offset < count {
        let n = try bytes.withUnsafeBytes { raw in
            try socket.write(UnsafeRawBufferPointer(rebasing: raw[offset..<count]))
        }
        guard n > 0 else { throw NetError.timedOut }
        offset += n
    }
}

/// One TCP flow from the client's side: connect, send the header and the request, half-close,
/// read the server's hash of what it got and the response to the end, and check both.
func soakTCPClientFlow(
    stack: NetworkStack, server: SocketAddress, header: SoakRequestHeader, deadline: Int64,
    buffers: inout SoakBuffers
) throws -> Int {
    let socket = try stack.socket(.inet, .stream)
    defer { socket.close() }
    let timeout = Duration.nanoseconds(deadline)
    socket.receiveTimeout = timeout
    socket.sendTimeout = timeout
    let start = monotonicNanoseconds()
    do {
        try socket.connect(to: server, timeout: timeout)
    } catch {
        // Which port and how long: enough to find the flow in a capture or the server's side.
        throw SoakFailure(
            description: "tcp client: connect from \(socket.localAddress) failed after"
                + " \((monotonicNanoseconds() - start) / 1_000_000) ms: \(error)")
    }
    try soakWriteAll(socket, header.bytes, count: SoakRequestHeader.size)
    soakBytes(seed: header.seed, count: header.requestLength, into: &buffers.data)
    var sent = SoakHash()
    buffers.data.withUnsafeBytes { sent.add(UnsafeRawBufferPointer(rebasing: $0[0..<header.requestLength])) }
    try soakWriteAll(socket, buffers.data, count: header.requestLength)
    try socket.shutdown(.write)
    guard try soakReadExactly(socket, 8, into: &buffers.small) == 8 else {
        throw SoakFailure(description: "tcp client: end of file before the server's hash")
    }
    let echoed = buffers.small[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    guard echoed == sent.value else {
        throw SoakFailure(description: "tcp: the server hashed \(header.requestLength) bytes differently")
    }
    let response = try soakReadToEnd(socket, scratch: &buffers.scratch)
    let expected = soakHash(seed: ~header.seed, count: header.responseLength, scratch: &buffers.data)
    guard response == expected else {
        throw SoakFailure(
            description: "tcp client: response of \(response.count) bytes, expected \(header.responseLength),"
                + " hash \(response.value == expected.value ? "equal" : "different")")
    }
    return header.requestLength + header.responseLength
}

/// One TCP flow from the server's side: read the header and the request to end of file, check
/// them, send back the request's hash and the response, close.
func soakTCPServerFlow(_ socket: NetSocket, deadline: Int64, buffers: inout SoakBuffers) throws {
    defer { socket.close() }
    let timeout = Duration.nanoseconds(deadline)
    socket.receiveTimeout = timeout
    socket.sendTimeout = timeout
    guard try soakReadExactly(socket, SoakRequestHeader.size, into: &buffers.small) == SoakRequestHeader.size else {
        throw SoakFailure(
            description: "tcp server: end of file inside the request header from"
                + " \((try? socket.peerAddress()) ?? .unnamed)")
    }
    let header = SoakRequestHeader(buffers.small[0..<SoakRequestHeader.size])
    let received = try soakReadToEnd(socket, scratch: &buffers.scratch)
    let expected = soakHash(seed: header.seed, count: header.requestLength, scratch: &buffers.data)
    guard received == expected else {
        throw SoakFailure(
            description: "tcp server: request of \(received.count) bytes, expected \(header.requestLength),"
                + " hash \(received.value == expected.value ? "equal" : "different")")
    }
    var reply = [UInt8]()
    for shift in stride(from: 56, through: 0, by: -8) {
        reply.append(UInt8(truncatingIfNeeded: received.value >> UInt64(shift)))
    }
    try soakWriteAll(socket, reply, count: 8)
    soakBytes(seed: ~header.seed, count: header.responseLength, into: &buffers.data)
    try soakWriteAll(socket, buffers.data, count: header.responseLength)
}

/// A worker's reusable buffers (no allocation per flow once they have grown).
struct SoakBuffers {
    var data = [UInt8]()
    var scratch = [UInt8](repeating: 0, count: 16384)
    var small = [UInt8](repeating: 0, count: 64)
}

// MARK: UDP

/// One UDP flow: `count` datagrams sent one at a time to the echo server, each resent (up to
/// `attempts` times) until its echo comes back byte for byte. Late or duplicated echoes of
/// earlier datagrams must be intact too.
func soakUDPFlow(
    stack: NetworkStack, server: SocketAddress, localPort: UInt16, seed: UInt64, deadline: Int64, tally: SoakTally,
    buffers: inout SoakBuffers
) throws -> Int {
    var random = SeededRandom(seed: seed)
    let count = 1 + Int(random.next() % 32)
    let socket = try stack.socket(.inet, .datagram)
    defer { socket.close() }
    try socket.bind(to: .ipv4(.unspecified, port: localPort))
    try socket.connect(to: server)
    let start = monotonicNanoseconds()
    let attempts = 12
    var checked = 0
    for index in 0..<count {
        // 12 bytes of index and seed, then bytes from the datagram's own seed; some are fragmented.
        let size = 12 + Int(random.next() % (random.next() % 8 == 0 ? 3000 : 1400))
        let datagramSeed = seed &+ UInt64(index) &* 0x9E37_79B9
        let datagram = soakDatagram(seed: datagramSeed, index: index, size: size, into: &buffers.data)
        var answered = false
        var attempt = 0
        while !answered {
            guard attempt < attempts else {
                throw SoakFailure(description: "udp: datagram \(index) of \(size) bytes unanswered \(attempts) times")
            }
            guard monotonicNanoseconds() - start < deadline else {
                throw SoakFailure(description: "udp: flow past its deadline at datagram \(index)")
            }
            if attempt > 0 { tally.udpRetries.add(1, ordering: .relaxed) }
            _ = try datagram.withUnsafeBytes { raw in try socket.write(raw) }
            // Waits grow with each attempt: 20 ms, 40 ms, ... at most 640 ms.
            socket.receiveTimeout = .milliseconds(20 << Swift.min(attempt, 5))
            attempt += 1
            waiting: while true {
                let received = buffers.scratch.withUnsafeMutableBytes { raw in
                    Result { () throws(NetError) in try socket.receive(into: raw).count }
                }
                let got: Int
                switch received {
                case .success(let count): got = count
                case .failure(let error) where error == .wouldBlock || error == .timedOut: break waiting
                case .failure(let error): throw error
                }
                let echo = buffers.scratch[0..<got]
                guard got >= 12 else { throw SoakFailure(description: "udp: a \(got)-byte echo") }
                let echoedIndex = echo.prefix(4).reduce(0) { $0 << 8 | Int($1) }
                guard echoedIndex <= index else {
                    throw SoakFailure(description: "udp: an echo of datagram \(echoedIndex) never sent")
                }
                if echoedIndex == index {
                    guard echo.elementsEqual(datagram) else {
                        throw SoakFailure(description: "udp: the echo of datagram \(index) differs")
                    }
                    answered = true
                    checked += got
                    break waiting
                }
                // A late or duplicated echo of an earlier datagram: still intact.
                var earlier = [UInt8]()
                let earlierSeed = seed &+ UInt64(echoedIndex) &* 0x9E37_79B9
                let expected = soakDatagram(seed: earlierSeed, index: echoedIndex, size: got, into: &earlier)
                guard echo.elementsEqual(expected) else {
                    throw SoakFailure(description: "udp: a late echo of datagram \(echoedIndex) differs")
                }
            }
        }
        tally.datagramsChecked.add(1, ordering: .relaxed)
    }
    return checked
}

/// A datagram: its index (4 bytes), the low 8 bytes of its seed, then seeded bytes.
func soakDatagram(seed: UInt64, index: Int, size: Int, into buffer: inout [UInt8]) -> [UInt8] {
    soakBytes(seed: seed, count: size, into: &buffer)
    var datagram = Array(buffer[0..<size])
    for shift in 0..<4 { datagram[shift] = UInt8(truncatingIfNeeded: index >> (24 - 8 * shift)) }
    for shift in 0..<8 { datagram[4 + shift] = UInt8(truncatingIfNeeded: seed >> UInt64(56 - 8 * shift)) }
    return datagram
}

/// The echo server: every datagram back to its sender, until the run stops.
func soakUDPEcho(_ socket: NetSocket, tally: SoakTally) {
    var buffer = [UInt8](repeating: 0, count: 65536)
    socket.receiveTimeout = .milliseconds(100)
    while !tally.serversStopping.load(ordering: .relaxed) {
        let receipt = buffer.withUnsafeMutableBytes { raw in
            Result { () throws(NetError) in try socket.receive(into: raw) }
        }
        guard case .success(let got) = receipt else { continue }
        _ = buffer.withUnsafeBytes { raw in
            try? socket.send(UnsafeRawBufferPointer(rebasing: raw[0..<got.count]), to: got.source)
        }
    }
}
