import NetMP
import Synchronization

/// The receive path: frames into a deterministic stack with two interfaces, forwarding on,
/// bound UDP sockets (one connected), ARP, ICMP, fragment reassembly, a TCP listener and TCP
/// connections in ESTABLISHED, CLOSE_WAIT, FIN_WAIT_2 and TIME_WAIT (`TCPFixtures`).
///
/// An input is a script of records, `[kind][length high][length low][bytes...]`:
/// kind 0 or 1 delivers the bytes as a frame on interface 0 or 1, kind 2 advances the clock by
/// `length` × 10 ms (timers: ARP, reassembly, TCP), kind 3 sends a TCP segment to one of the
/// TCP connections (`tcpRecord`), anything else ends the script. An input that is not such a
/// script is delivered whole as one frame on interface 0. After each record the stack runs until
/// idle and every socket is drained without blocking.
///
/// One stack serves every input (making one costs far more than a run: its Toeplitz tables);
/// after each input the clock moves on two minutes, so reassembly queues and ARP entries
/// expire and the next input starts from a near-fresh stack. The TCP connections are rebuilt
/// before an input when the last one moved any out of its state, and when TIME_WAIT (two hours
/// here, so that it outlives many inputs) has run out.
final class ReceivePath: @unchecked Sendable {
    static let ours = IPv4Address(198, 18, 7, 2)
    static let peer = IPv4Address(198, 18, 7, 1)
    static let ourMAC = MACAddress(rawValue: 0x0200_0000_0702)
    static let otherMAC = MACAddress(rawValue: 0x0200_0000_0801)
    static let peerMAC = MACAddress(rawValue: 0x0200_0000_0701)

    nonisolated(unsafe) private static var shared: ReceivePath?

    let clock = ManualClock(startingAt: 1_000_000_000)
    let stack: NetworkStack
    let interfaces: [FuzzInterface]
    let sockets: [NetSocket]
    let listener: NetSocket
    let tcp = TCPFixtures()
    var scratch = [UInt8](repeating: 0, count: 2048)

    init() {
        var settings = InetSettings()
        settings.forwarding = true
        // Small limits so that the fuzzer reaches them.
        settings.reassemblyMaxDatagrams = 4
        settings.reassemblyMaxFragments = 8
        settings.arpQueueLimit = 4
        stack = NetworkStack(.init(threadCount: 2, clock: clock, mode: .driven, seed: 7, inet: settings))
        stack.tcpConfiguration.maximumSegmentLifetime = 3_600_000_000_000
        stack.tcpConfiguration.finWait2Timeout = 7_200_000_000_000
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
            // TCP: a listener on port 80; connections the input makes are closed at once in
            // `settle`, the fixtures' are accepted as they are made.
            listener = try stack.socket(.inet, .stream)
            try listener.bind(to: .ipv4(ReceivePath.ours, port: 80))
            try listener.listen(backlog: 4)
            listener.isNonBlocking = true
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
        for socket in tcp.sockets {
            while true {
                let read = scratch.withUnsafeMutableBytes { buffer in
                    Result { () throws(NetError) in try socket.read(into: buffer) }
                }
                guard case .success(let count) = read, count > 0 else { break }
            }
        }
        while case .success(let child) = Result(catching: { () throws(NetError) in try listener.accept() }) {
            child.close()
        }
        stack.runUntilIdle()
        for interface in interfaces { interface.discardSent() }
    }

    func run(_ input: UnsafeRawBufferPointer) {
        if !tcp.intact(stack) {
            tcp.rebuild(self)
            // A set-up that fails would leave the states untested: it stops the run.
            require(tcp.intact(stack), "the TCP fixtures could not be set up: \(tcp.connections)")
        }
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
            case 3:
                let end = Swift.min(input.count, offset + length)
                tcpRecord(UnsafeRawBufferPointer(rebasing: input[offset..<end]))
                offset = end
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

    // MARK: TCP segments

    /// Record kind 3: `[role][flags][sequence offset: 2][acknowledgment offset: 2][window: 2]
    /// [options length in words][options...][payload...]`, a segment from the role's peer port
    /// (role 4 and above: from port 40000 + role, to the listener) with sequence and
    /// acknowledgment numbers the role's next ones plus the signed offsets, checksums right.
    func tcpRecord(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= 9 else { return }
        let roleNumber = Int(bytes[0])
        let flags = TCPFlags(rawValue: bytes[1])
        let sequenceOffset = UInt32(bitPattern: Int32(Int16(bitPattern: UInt16(bytes[2]) << 8 | UInt16(bytes[3]))))
        let ackOffset = UInt32(bitPattern: Int32(Int16(bitPattern: UInt16(bytes[4]) << 8 | UInt16(bytes[5]))))
        let window = UInt16(bytes[6]) << 8 | UInt16(bytes[7])
        let optionsLength = Swift.min(Int(bytes[8] & 0x0F) * 4, TCPOptions.maximumLength, bytes.count - 9)
        let options = [UInt8](bytes[9..<(9 + optionsLength)])
        let payload = [UInt8](bytes[(9 + optionsLength)...])
        if let role = TCPFixtures.Role(rawValue: roleNumber), let connection = tcp.connections[role] {
            injectSegment(
                peerPort: role.peerPort, sequence: connection.peerNext &+ sequenceOffset,
                acknowledgment: connection.ourNext &+ ackOffset, flags: flags, window: window, rawOptions: options,
                payload: payload)
        } else {
            injectSegment(
                peerPort: 40000 &+ UInt16(truncatingIfNeeded: roleNumber), sequence: sequenceOffset,
                acknowledgment: ackOffset, flags: flags, window: window, rawOptions: options, payload: payload)
        }
    }

    /// A segment from the peer to our port 80 on interface 0, and the stack run until idle. The
    /// options are raw (padded to whole words) so that malformed ones get through too.
    func injectSegment(
        peerPort: UInt16, sequence: UInt32, acknowledgment: UInt32, flags: TCPFlags, window: UInt16 = 65535,
        rawOptions: [UInt8] = [], payload: [UInt8] = []
    ) {
        var options = rawOptions
        while options.count % 4 != 0 { options.append(0) }
        let headerLength = 20 + options.count
        var segment = [UInt8](repeating: 0, count: headerLength)
        func store16(_ value: UInt16, at index: Int) {
            segment[index] = UInt8(truncatingIfNeeded: value >> 8)
            segment[index + 1] = UInt8(truncatingIfNeeded: value)
        }
        func store32(_ value: UInt32, at index: Int) {
            store16(UInt16(truncatingIfNeeded: value >> 16), at: index)
            store16(UInt16(truncatingIfNeeded: value), at: index + 2)
        }
        store16(peerPort, at: 0)
        store16(80, at: 2)
        store32(sequence, at: 4)
        store32(acknowledgment, at: 8)
        segment[12] = UInt8(headerLength / 4) << 4
        segment[13] = flags.rawValue
        store16(window, at: 14)
        segment.replaceSubrange(20..<headerLength, with: options)
        segment += payload
        let pseudo = InternetChecksum.pseudoHeaderSum(
            source: ReceivePath.peer, destination: ReceivePath.ours, protocol: .tcp,
            length: UInt16(truncatingIfNeeded: segment.count))
        store16(segment.withUnsafeBytes { InternetChecksum.checksum($0, initial: pseudo) }, at: 16)
        let ip = IPv4Header(
            totalLength: UInt16(truncatingIfNeeded: 20 + segment.count), protocol: .tcp, source: ReceivePath.peer,
            destination: ReceivePath.ours)
        let frame =
            EthernetHeader(destination: ReceivePath.ourMAC, source: ReceivePath.peerMAC, etherType: .ipv4).bytes()
            + ip.bytes() + segment
        frame.withUnsafeBytes { interfaces[0].inject($0) }
        stack.runUntilIdle()
        answerARP()
    }

    /// The peer asks for our address (an ARP request): the stack learns the peer's, whatever
    /// state its neighbour entry was left in (an unanswered request within its retry interval
    /// would otherwise keep the SYN-ACK queued).
    func announcePeer() {
        let request = ARPPacket(
            operation: .request, senderHardwareAddress: ReceivePath.peerMAC, senderProtocolAddress: ReceivePath.peer,
            targetHardwareAddress: .zero, targetProtocolAddress: ReceivePath.ours)
        let frame =
            EthernetHeader(destination: .broadcast, source: ReceivePath.peerMAC, etherType: .arp).bytes()
            + request.bytes()
        frame.withUnsafeBytes { interfaces[0].inject($0) }
        stack.runUntilIdle()
    }

    /// Answers the stack's ARP requests for the peer (so that what it sends can be read).
    func answerARP() {
        let asked = interfaces[0].captured.contains { frame in
            guard case .success(let ethernet) = EthernetHeader.parse(frame), ethernet.header.etherType == .arp,
                case .success(let arp) = ARPPacket.parse([UInt8](frame[ethernet.payloadRange]))
            else { return false }
            return arp.operation == .request && arp.targetProtocolAddress == ReceivePath.peer
        }
        guard asked else { return }
        let reply = ARPPacket(
            operation: .reply, senderHardwareAddress: ReceivePath.peerMAC, senderProtocolAddress: ReceivePath.peer,
            targetHardwareAddress: ReceivePath.ourMAC, targetProtocolAddress: ReceivePath.ours)
        let frame =
            EthernetHeader(destination: ReceivePath.ourMAC, source: ReceivePath.peerMAC, etherType: .arp).bytes()
            + reply.bytes()
        frame.withUnsafeBytes { interfaces[0].inject($0) }
        stack.runUntilIdle()
    }

    /// The last TCP segment captured on interface 0 to `peerPort` with exactly `flags`.
    func sentSegment(to peerPort: UInt16, flags: TCPFlags) -> TCPHeader? {
        for frame in interfaces[0].captured.reversed() {
            guard case .success(let ethernet) = EthernetHeader.parse(frame), ethernet.header.etherType == .ipv4
            else { continue }
            let packet = [UInt8](frame[ethernet.payloadRange])
            guard case .success(let ip) = IPv4Header.parse(packet), ip.header.protocol == .tcp else { continue }
            let bytes = [UInt8](packet[ip.payloadRange])
            let parsed = bytes.withUnsafeBytes {
                TCPHeader.parse($0, source: ip.header.source, destination: ip.header.destination, verifyChecksum: false)
            }
            guard case .success(let tcp) = parsed, tcp.header.destinationPort == peerPort,
                tcp.header.flags.rawValue & 0x17 == flags.rawValue
            else { continue }
            return tcp.header
        }
        return nil
    }
}

/// An interface the fuzzer drives: frames in from the input, frames out counted and dropped.
final class FuzzInterface: NetworkInterface, @unchecked Sendable {
    private let sentFrames = Atomic<Int>(0)
    /// Frames sent while capturing (the TCP fixtures' set-up reads our numbers from them).
    private let capture = Mutex<[[UInt8]]?>(nil)

    init(name: String, mac: MACAddress) {
        super.init(name: name, mtu: 1500, hardwareAddress: mac, offloads: [], needsAddressResolution: true)
    }

    override func transmit(_ frames: [Frame]) {
        noteTransmitted(frames)
        sentFrames.add(frames.count, ordering: .relaxed)
        capture.withLock { captured in
            if captured != nil { captured?.append(contentsOf: frames.map { [UInt8]($0.bytes) }) }
        }
    }

    func inject(_ bytes: UnsafeRawBufferPointer) {
        deliverInbound([Frame(copying: bytes)])
    }

    func discardSent() { sentFrames.store(0, ordering: .relaxed) }

    func startCapturing() { capture.withLock { $0 = [] } }
    func stopCapturing() { capture.withLock { $0 = nil } }
    var captured: [[UInt8]] { capture.withLock { $0 ?? [] } }
}
