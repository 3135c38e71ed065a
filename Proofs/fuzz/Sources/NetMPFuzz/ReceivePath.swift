import NetMP
import Synchronization

/// The receive path as it stands: frames into a deterministic stack with two interfaces,
/// forwarding on, bound UDP sockets (one connected), ARP, ICMP and fragment reassembly.
///
/// An input is a script of records, `[kind][length high][length low][bytes...]`:
/// kind 0 or 1 delivers the bytes as a frame on interface 0 or 1, kind 2 advances the clock by
/// `length` × 10 ms (timers: ARP, reassembly), anything else ends the script. An input that
/// is not such a script is delivered whole as one frame on interface 0. After each record the
/// stack runs until idle and every socket is drained without blocking.
///
/// One stack serves every input (making one costs far more than a run: its Toeplitz tables);
/// after each input the clock moves on two minutes, so reassembly queues and ARP entries
/// expire and the next input starts from a near-fresh stack.
///
/// TCP: a listening socket on 198.18.7.2:80 (its accepted connections closed at once). Still
/// to add: a connected socket, a half-closed one and one in TIME_WAIT (made through scripted
/// frames from 198.18.7.1), so that segments reach every state.
final class ReceivePath: @unchecked Sendable {
    static let ours = IPv4Address(198, 18, 7, 2)
    static let peer = IPv4Address(198, 18, 7, 1)
    static let ourMAC = MACAddress(rawValue: 0x0200_0000_0702)
    static let otherMAC = MACAddress(rawValue: 0x0200_0000_0801)

    nonisolated(unsafe) private static var shared: ReceivePath?

    let clock = ManualClock(startingAt: 1_000_000_000)
    let stack: NetworkStack
    let interfaces: [FuzzInterface]
    let sockets: [NetSocket]
    let listeners: [NetSocket]
    var scratch = [UInt8](repeating: 0, count: 2048)

    init() {
        var settings = InetSettings()
        settings.forwarding = true
        // Small limits so that the fuzzer reaches them.
        settings.reassemblyMaxDatagrams = 4
        settings.reassemblyMaxFragments = 8
        settings.arpQueueLimit = 4
        stack = NetworkStack(.init(threadCount: 2, clock: clock, mode: .driven, seed: 7, inet: settings))
        let first = FuzzInterface(name: "fuzz0", mac: ReceivePath.ourMAC)
        let second = FuzzInterface(name: "fuzz1", mac: ReceivePath.otherMAC)
        interfaces = [first, second]
        do {
            try stack.addAddress(ReceivePath.ours, prefixLength: 24, to: first)
            try stack.addAddress(IPv4Address(198, 18, 8, 1), prefixLength: 24, to: second)
            if let far = IPv4Prefix(address: IPv4Address(198, 19, 0, 0), length: 16) {
                try stack.addRoute(far, via: nil, interface: second)
            }
            // The kernel capture's UDP datagram goes to port 9; its ICMP error quotes it.
            let discard = try stack.socket(.inet, .datagram)
            try discard.bind(to: .ipv4(.unspecified, port: 9))
            let connected = try stack.socket(.inet, .datagram)
            try connected.bind(to: .ipv4(ReceivePath.ours, port: 40001))
            try connected.connect(to: .ipv4(ReceivePath.peer, port: 9))
            let other = try stack.socket(.inet, .datagram)
            try other.bind(to: .ipv4(.unspecified, port: 53))
            sockets = [discard, connected, other]
            // TCP: a listener on port 80; accepted connections are closed at once in `settle`.
            let listener = try stack.socket(.inet, .stream)
            try listener.bind(to: .ipv4(ReceivePath.ours, port: 80))
            try listener.listen(backlog: 4)
            listener.isNonBlocking = true
            listeners = [listener]
        } catch {
            fatalError("the fuzz stack could not be set up: \(error)")
        }
        for socket in sockets { socket.isNonBlocking = true }
        stack.runUntilIdle()
    }

    static func run(_ input: UnsafeRawBufferPointer) {
        let harness = shared ?? ReceivePath()
        shared = harness
        harness.run(input)
    }

    /// Runs the stack until idle, drains every socket and forgets what was sent.
    func settle() {
        stack.runUntilIdle()
        for socket in sockets {
            while true {
                let received = scratch.withUnsafeMutableBytes { buffer in
                    Result { () throws(NetError) in try socket.receive(into: buffer) }
                }
                guard case .success = received else { break }
            }
        }
        for listener in listeners {
            while case .success(let child) = Result(catching: { () throws(NetError) in try listener.accept() }) {
                child.close()
            }
        }
        stack.runUntilIdle()
        for interface in interfaces { interface.discardSent() }
    }

    func run(_ input: UnsafeRawBufferPointer) {
        var offset = 0
        var scripted = false
        while offset + 3 <= input.count {
            let kind = input[offset]
            let length = Int(input[offset + 1]) << 8 | Int(input[offset + 2])
            offset += 3
            switch kind {
            case 0, 1:
                let end = Swift.min(input.count, offset + length)
                interfaces[Int(kind)].inject(UnsafeRawBufferPointer(rebasing: input[offset..<end]))
                offset = end
            case 2:
                clock.advance(by: Int64(length) * 10_000_000)
            default:
                offset = input.count
            }
            scripted = true
            settle()
        }
        if !scripted {
            interfaces[0].inject(input)
            settle()
        }
        clock.advance(by: 120_000_000_000)
        settle()
    }
}

/// An interface the fuzzer drives: frames in from the input, frames out counted and dropped.
final class FuzzInterface: NetworkInterface, @unchecked Sendable {
    private let sentFrames = Atomic<Int>(0)

    init(name: String, mac: MACAddress) {
        super.init(name: name, mtu: 1500, hardwareAddress: mac, offloads: [], needsAddressResolution: true)
    }

    override func transmit(_ frames: [Frame]) {
        noteTransmitted(frames)
        sentFrames.add(frames.count, ordering: .relaxed)
    }

    func inject(_ bytes: UnsafeRawBufferPointer) {
        deliverInbound([Frame(copying: bytes)])
    }

    func discardSent() { sentFrames.store(0, ordering: .relaxed) }
}
