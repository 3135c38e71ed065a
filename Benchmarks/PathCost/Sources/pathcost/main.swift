import Glibc
import NetMP

// Path cost without waiting: every call finds its data (or, for UDP, the driven mode runs the
// stack on this thread), so an instruction count measures code, not scheduling.
// Usage: pathcost dgram|stream|udp [iterations]
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
default:
    print("usage: pathcost dgram|stream|udp [iterations]")
    exit(64)
}
print(sink)
