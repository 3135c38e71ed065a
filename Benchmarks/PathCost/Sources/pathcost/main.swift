import Glibc
import NetMP

// Path cost without waiting: every call finds its data (or, for UDP, the driven mode runs the
// stack on this thread), so an instruction count measures code, not scheduling.
// The TCP workloads run over the loopback interface in the driven mode with a manual clock.
// Usage: pathcost dgram|dgram.into|stream|stream.into|udp|tcp.rtt|tcp.bulk|tcp.connect [iterations]
let args = CommandLine.arguments
let n = Int(args.count > 2 ? args[2] : "10000") ?? 10000
let which = args.count > 1 ? args[1] : "dgram"
var sink = 0
switch which {
case "dgram":
    let stack = NetworkStack(.init(threadCount: 1))
    let (a, b) = try stack.socketPair(.datagram)
    let payload = [UInt8](repeating: 7, count: 1024)
    for _ in 0..<n {
        _ = try a.send(payload, to: nil, flags: .dontWait)
        sink &+= try b.receive(maxBytes: 2048, flags: .dontWait).bytes.count
    }
    stack.shutdown()
case "dgram.into":
    // The benchmark's calls: a write of the datagram and a read into the caller's buffer.
    let stack = NetworkStack(.init(threadCount: 1))
    let (a, b) = try stack.socketPair(.datagram)
    let payload = [UInt8](repeating: 7, count: 1024)
    var buffer = [UInt8](repeating: 0, count: 2048)
    try payload.withUnsafeBytes { message in
        try buffer.withUnsafeMutableBytes { into in
            for _ in 0..<n {
                _ = try a.write(message)
                sink &+= try b.read(into: into)
            }
        }
    }
    stack.shutdown()
case "stream.into":
    // The ping-pong benchmark's calls: a one-byte write and a read into the caller's buffer.
    let stack = NetworkStack(.init(threadCount: 1))
    let (a, b) = try stack.socketPair(.stream)
    var byte: [UInt8] = [7]
    try byte.withUnsafeMutableBytes { raw in
        for _ in 0..<n {
            _ = try a.write(UnsafeRawBufferPointer(raw))
            sink &+= try b.read(into: raw)
        }
    }
    stack.shutdown()
case "stream":
    let stack = NetworkStack(.init(threadCount: 1))
    let (a, b) = try stack.socketPair(.stream)
    let payload = [UInt8](repeating: 7, count: 64)
    for _ in 0..<n {
        _ = try a.write(payload)
        sink &+= try b.read(maxBytes: 64).count
    }
    stack.shutdown()
case "udp":
    let stack = NetworkStack(.init(threadCount: 1, clock: ManualClock(startingAt: 1), mode: .driven))
    let server = try stack.socket(.inet, .datagram)
    try server.bind(to: .ipv4(IPv4Address(127, 0, 0, 1), port: 7000))
    let client = try stack.socket(.inet, .datagram)
    let payload = [UInt8](repeating: 7, count: 64)
    for _ in 0..<n {
        _ = try client.send(payload, to: .ipv4(IPv4Address(127, 0, 0, 1), port: 7000))
        stack.runUntilIdle()
        sink &+= try server.receive(maxBytes: 2048, flags: .dontWait).bytes.count
    }
    stack.shutdown()
case "tcp.rtt":
    // One byte there and back over an established connection (no-delay on both ends).
    let (stack, clock) = drivenStack()
    let (client, server) = try connectedPair(stack, clock)
    try client.setOption(.noDelay, 1)
    try server.setOption(.noDelay, 1)
    // The benchmark's calls: a write from the caller's byte and a read into it.
    var byte: [UInt8] = [7]
    try byte.withUnsafeMutableBytes { raw in
        for _ in 0..<n {
            _ = try client.write(UnsafeRawBufferPointer(raw))
            stack.runUntilIdle()
            sink &+= try server.read(into: raw)
            _ = try server.write(UnsafeRawBufferPointer(raw))
            stack.runUntilIdle()
            sink &+= try client.read(into: raw)
        }
    }
    stack.shutdown()
case "tcp.bulk":
    // 64 KiB written and read back whole; the clock moves only when nothing else can (a delayed ACK).
    let (stack, clock) = drivenStack()
    let (client, server) = try connectedPair(stack, clock)
    let message = [UInt8](repeating: 7, count: 65536)
    var buffer = [UInt8](repeating: 0, count: 65536)
    for _ in 0..<n {
        var written = 0
        var read = 0
        while read < message.count {
            if written < message.count {
                written += try message.withUnsafeBytes { bytes throws(NetError) in
                    try client.write(UnsafeRawBufferPointer(rebasing: bytes[written...]))
                }
            }
            stack.runUntilIdle()
            let got = try buffer.withUnsafeMutableBytes { bytes throws(NetError) in
                try server.read(into: UnsafeMutableRawBufferPointer(rebasing: bytes[read...]))
            }
            read += got
            if got == 0 {
                clock.advance(by: 40_000_000)
                stack.runUntilIdle()
            }
        }
        sink &+= read
    }
    stack.shutdown()
case "tcp.connect":
    // Connect, accept, close both ends (the client first); TIME_WAIT lasts 2 ms and the clock
    // moves 3 ms a connection, so the records do not pile up.
    let (stack, clock) = drivenStack()
    stack.tcpConfiguration.maximumSegmentLifetime = 1_000_000
    let listener = try stack.socket(.inet, .stream)
    try listener.bind(to: .ipv4(IPv4Address(127, 0, 0, 1), port: 7000))
    try listener.listen(backlog: 16)
    listener.isNonBlocking = true
    for _ in 0..<n {
        let (client, server) = try accepted(stack, listener)
        client.close()
        server.close()
        stack.runUntilIdle()
        clock.advance(by: 3_000_000)
        stack.runUntilIdle()
        sink &+= 1
    }
    listener.close()
    stack.shutdown()
default:
    print("usage: pathcost dgram|dgram.into|stream|stream.into|udp|tcp.rtt|tcp.bulk|tcp.connect [iterations]")
    exit(64)
}
print(sink)

func drivenStack() -> (NetworkStack, ManualClock) {
    let clock = ManualClock(startingAt: 1)
    return (NetworkStack(.init(threadCount: 1, clock: clock, mode: .driven)), clock)
}

/// A client connected to the listener's port 7000 and the child accepted for it.
func accepted(_ stack: NetworkStack, _ listener: NetSocket) throws(NetError) -> (NetSocket, NetSocket) {
    let client = try stack.socket(.inet, .stream)
    client.isNonBlocking = true
    do {
        try client.connect(to: .ipv4(IPv4Address(127, 0, 0, 1), port: 7000))
    } catch .inProgress {}
    stack.runUntilIdle()
    let server = try listener.accept()
    client.isNonBlocking = true
    server.isNonBlocking = true
    return (client, server)
}

func connectedPair(_ stack: NetworkStack, _ clock: ManualClock) throws(NetError) -> (NetSocket, NetSocket) {
    let listener = try stack.socket(.inet, .stream)
    try listener.bind(to: .ipv4(IPv4Address(127, 0, 0, 1), port: 7000))
    try listener.listen(backlog: 4)
    listener.isNonBlocking = true
    let pair = try accepted(stack, listener)
    listener.close()
    return pair
}
