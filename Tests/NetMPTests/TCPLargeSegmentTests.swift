import NetMPWire
import Synchronization
import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPRuntime
@testable import NetMPSockets
@testable import NetMPTCP

/// TCP segmentation offload: over loopback and over an interface that offers it, TCP sends
/// segments of several MSS (as many as fit 64 KiB), byte-exact; the virtio-net header that tells
/// a TAP device's kernel to cut them; links without the offload keep MSS-sized segments.
final class TCPLargeSegmentTests: XCTestCase {
    /// The TCP payload lengths of the IPv4 frames in a pcap capture, and whether any record was
    /// cut short by the snap length.
    static func tcpPayloadLengths(_ capture: [UInt8]) -> (lengths: [Int], truncated: Bool) {
        var lengths: [Int] = []
        var truncated = false
        var offset = 24
        func word(_ at: Int) -> Int { (0..<4).reduce(0) { $0 | Int(capture[at + $1]) << (8 * $1) } }
        while offset + 16 <= capture.count {
            let captured = word(offset + 8)
            let original = word(offset + 12)
            if captured != original { truncated = true }
            let frame = offset + 16
            offset = frame + captured
            guard offset <= capture.count, captured >= 54, capture[frame + 12] == 0x08, capture[frame + 13] == 0,
                capture[frame + 23] == 6
            else { continue }
            let ipLength = Int(capture[frame + 14] & 0x0F) * 4
            let total = Int(capture[frame + 16]) << 8 | Int(capture[frame + 17])
            let tcpLength = Int(capture[frame + 14 + ipLength + 12] >> 4) * 4
            lengths.append(total - ipLength - tcpLength)
        }
        return (lengths, truncated)
    }

    /// Writes `total` seeded bytes from `client` in 64 KiB writes on a thread, reads them at
    /// `server`, and checks both hashes.
    static func transfer(_ total: Int, from client: NetSocket, to server: NetSocket, seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        let data = generator.bytes(total)
        var sent = StreamHash()
        sent.add(data)
        let writer = OSThread.start(name: "tcp-large-writer") {
            data.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let end = Swift.min(raw.count, offset + 65536)
                    offset += (try? client.write(UnsafeRawBufferPointer(rebasing: raw[offset..<end]))) ?? raw.count
                }
            }
            try? client.shutdown(.write)
        }
        var received = StreamHash()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = try buffer.withUnsafeMutableBytes { try server.read(into: $0) }
            if n == 0 { break }
            buffer.withUnsafeBytes { received.add(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        writer.join()
        XCTAssertEqual(received, sent)
    }

    /// Loopback (MTU 16,384) carries segments of four MSS: 4 × 16,332 bytes (the MSS less the
    /// timestamps), recorded whole in the capture, their payload handed over as the sender's
    /// send-buffer slices, and the bytes arrive exact.
    func testLoopbackSendsSegmentsOfSeveralMSSByteExact() throws {
        let stack = NetworkStack(.init(threadCount: 2))
        defer { stack.shutdown() }
        XCTAssertTrue(stack.loopback.offloads.contains(.tcpSegmentation))
        XCTAssertEqual(stack.loopback.largeSegmentLimit, NetworkInterface.largestOffloadedDatagram)
        let capture = PcapWriter(clock: SystemClock())
        stack.loopback.setCapture(capture)
        try bounded(60) {
            let listener = try stack.socket(.inet, .stream)
            try listener.bind(to: .ipv4(.loopback, port: 0))
            try listener.listen()
            let client = try stack.socket(.inet, .stream)
            try client.connect(to: listener.localAddress)
            let server = try listener.accept()
            listener.close()
            try TCPLargeSegmentTests.transfer(4 << 20, from: client, to: server, seed: 21)
            client.close()
            server.close()
        }
        // The large segments' payloads reached the receive buffer as the sender's slices.
        XCTAssertGreaterThan(stack.tcp.statistics().gatheredSegmentsReceived, 32)
        stack.loopback.setCapture(nil)
        let (lengths, truncated) = TCPLargeSegmentTests.tcpPayloadLengths(capture.bytes)
        XCTAssertFalse(truncated, "a large segment was cut short in the capture")
        let mss = 16384 - 40 - 12
        XCTAssertEqual(lengths.max(), 4 * mss)
        let large = lengths.filter { $0 > 16384 }
        XCTAssertGreaterThan(large.count, 32, "4 MiB should go mostly in 64 KiB segments")
        XCTAssertTrue(large.allSatisfy { $0 % mss == 0 }, "a large segment carries whole MSS: \(large)")
        // Every byte went (a tail loss probe on a busy machine may send one again).
        XCTAssertGreaterThanOrEqual(lengths.reduce(0, +), 4 << 20)
    }

    /// Without the offload (a loopback made without it) segments stay one MSS at most.
    func testWithoutTheOffloadSegmentsStayOneMSS() throws {
        let interface = LoopbackInterface(name: "lo1", largeSegments: false)
        XCTAssertFalse(interface.offloads.contains(.tcpSegmentation))
        XCTAssertEqual(interface.largeSegmentLimit, interface.mtu)
        var configuration = TCPConfiguration()
        configuration.largeSegmentLimit = 0
        var connection = TCPConnection<[UInt8]>(
            configuration: configuration, localPort: 1, remotePort: 2, initialSequenceNumber: SequenceNumber(0),
            routeMTU: 1500)
        connection.maximumSegmentSize = 1448
        XCTAssertEqual(connection.sendSegmentLimit, 1448)
        configuration.largeSegmentLimit = NetworkInterface.largestOffloadedDatagram
        connection.configuration = configuration
        // 65,521 less 20 of IPv4 and 60 of the longest TCP header: 45 whole MSS.
        XCTAssertEqual(connection.sendSegmentLimit, 45 * 1448)
    }

    /// Two stacks joined by a link that offers segmentation offload and scatter-gather (as a TAP
    /// device with the virtio-net header does): TCP sends large segments naming the MSS, their
    /// payload the send buffer's slices, with the pseudo-header's sum in the checksum field; the
    /// link finishes each as the kernel would (from the GSO header) and delivers it whole; the
    /// receiver verifies every checksum, and the bytes arrive exact.
    func testAnOffloadingLinkCarriesLargeSegmentsWithPartialChecksums() throws {
        let a = NetworkStack(.init(threadCount: 1))
        let b = NetworkStack(.init(threadCount: 1))
        defer {
            a.shutdown()
            b.shutdown()
        }
        let portA = OffloadingLinkPort(name: "gso0", mac: MACAddress(2, 0, 0, 0, 0, 1))
        let portB = OffloadingLinkPort(name: "gso1", mac: MACAddress(2, 0, 0, 0, 0, 2))
        portA.peer = portB
        portB.peer = portA
        _ = a.addInterface(portA)
        _ = b.addInterface(portB)
        try a.addAddress("198.18.7.1/24", to: portA)
        try b.addAddress("198.18.7.2/24", to: portB)
        try bounded(60) {
            let listener = try b.socket(.inet, .stream)
            try listener.bind(to: .ipv4(IPv4Address(198, 18, 7, 2), port: 5000))
            try listener.listen()
            let client = try a.socket(.inet, .stream)
            try client.connect(to: .ipv4(IPv4Address(198, 18, 7, 2), port: 5000))
            let server = try listener.accept()
            listener.close()
            try TCPLargeSegmentTests.transfer(4 << 20, from: client, to: server, seed: 22)
            client.close()
            server.close()
        }
        let seen = portA.seen.withLock { $0 }
        XCTAssertGreaterThan(seen.largeSegments, 0)
        XCTAssertEqual(seen.gathered, seen.largeSegments, "every large segment's payload is the send buffer's")
        XCTAssertEqual(seen.malformed, 0)
        XCTAssertEqual(seen.segmentSizes, [1448], "the wire MSS: 1,500 less 40 of headers and 12 of timestamps")
        XCTAssertEqual(seen.largestPayload, 45 * 1448)
        XCTAssertEqual(b.inetStatistics()[.ipBadChecksum], 0)
        XCTAssertEqual(b.tcpStatistics().malformedSegments, 0, "every finished checksum verified")
    }

    /// A gathered frame: its count and bytes include the slices after its header, which stay
    /// shared (not copied) until a path asks for one contiguous copy.
    func testAGatheredFrameCountsItsSlicesAndCopiesThemOnlyWhenAsked() {
        let head = ByteSlice([1, 2, 3])
        let first = ByteSlice([4, 5])
        let second = ByteSlice([6, 7, 8, 9])
        let frame = Frame(
            chunk: head.chunk, start: head.start, end: head.end, segmentSize: 1448, gathered: [first, second])
        XCTAssertTrue(frame.isGathered)
        XCTAssertTrue(frame.isLargeSegment)
        XCTAssertEqual(frame.count, 9)
        XCTAssertEqual(frame.array, [1, 2, 3, 4, 5, 6, 7, 8, 9])
        XCTAssertTrue(frame.gathered[0].chunk === first.chunk, "the slice itself, not a copy")
        let copy = frame.contiguous()
        XCTAssertFalse(copy.isGathered)
        XCTAssertEqual(copy.segmentSize, 1448)
        XCTAssertEqual(copy.array, [1, 2, 3, 4, 5, 6, 7, 8, 9])
        XCTAssertFalse(copy.chunk === frame.chunk)
        let plain = Frame([1, 2, 3])
        XCTAssertFalse(plain.isGathered)
        XCTAssertEqual(plain.count, 3)
        XCTAssertEqual(plain.segmentSize, 0)
    }

    /// The GSO header for a 3,000-byte segment with timestamps (a 32-byte TCP header) and an MSS
    /// of 1,448: exact bytes, little-endian; nil for what is not a TCP/IPv4 segment.
    func testTheVirtioHeaderOfALargeSegmentIsExact() {
        var frame = [UInt8](repeating: 0, count: 14 + 20 + 32 + 3000)
        frame[12] = 0x08
        frame[14] = 0x45
        frame[14 + 2] = UInt8((20 + 32 + 3000) >> 8)
        frame[14 + 3] = UInt8((20 + 32 + 3000) & 0xFF)
        frame[14 + 9] = 6
        frame[34 + 12] = 8 << 4
        let header = frame.withUnsafeBytes { VirtioNetHeader.largeTCPSegment($0, segmentSize: 1448) }
        var bytes = [UInt8](repeating: 0xEE, count: VirtioNetHeader.size)
        bytes.withUnsafeMutableBytes { header?.emit(into: $0) }
        // NEEDS_CSUM, GSO_TCPV4, hdr_len 66, gso_size 1448, csum_start 34, csum_offset 16.
        XCTAssertEqual(bytes, [1, 1, 66, 0, 0xA8, 0x05, 34, 0, 16, 0])
        var udp = frame
        udp[14 + 9] = 17
        XCTAssertNil(udp.withUnsafeBytes { VirtioNetHeader.largeTCPSegment($0, segmentSize: 1448) })
        XCTAssertNil(frame.withUnsafeBytes { VirtioNetHeader.largeTCPSegment($0, segmentSize: 0) })
        XCTAssertNil(Array(frame[0..<50]).withUnsafeBytes { VirtioNetHeader.largeTCPSegment($0, segmentSize: 1448) })
        var badOffset = frame
        badOffset[34 + 12] = 2 << 4
        XCTAssertNil(badOffset.withUnsafeBytes { VirtioNetHeader.largeTCPSegment($0, segmentSize: 1448) })
    }
}

/// One end of a two-port link with TCP segmentation offload and scatter-gather: a large frame
/// is gathered into one buffer, its checksum finished from the virtio-net GSO header as the
/// kernel does, and it is delivered whole.
final class OffloadingLinkPort: NetworkInterface, @unchecked Sendable {
    struct Seen {
        var largeSegments = 0
        var malformed = 0
        var segmentSizes: Set<Int> = []
        var largestPayload = 0
        /// Large frames whose payload came as slices of the send buffer.
        var gathered = 0
    }

    weak var peer: OffloadingLinkPort?
    let seen = Mutex(Seen())

    init(name: String, mac: MACAddress) {
        super.init(
            name: name, mtu: 1500, hardwareAddress: mac, offloads: [.tcpSegmentation, .scatterGather],
            needsAddressResolution: true)
    }

    override func transmit(_ frames: [Frame]) {
        noteTransmitted(frames)
        var out: [Frame] = []
        for frame in frames {
            guard frame.isLargeSegment else {
                out.append(frame)
                continue
            }
            var bytes = frame.array
            let finished = bytes.withUnsafeMutableBytes { raw -> Bool in
                guard
                    let header = VirtioNetHeader.largeTCPSegment(
                        UnsafeRawBufferPointer(raw), segmentSize: frame.segmentSize)
                else { return false }
                return header.prepare(raw, acceptingLargeSegments: true) == .checksumCompleted
            }
            let headers = 14 + Int(bytes[14] & 0x0F) * 4 + Int(bytes[14 + 20 + 12] >> 4) * 4
            seen.withLock {
                $0.largeSegments += 1
                if !finished { $0.malformed += 1 }
                $0.segmentSizes.insert(frame.segmentSize)
                if frame.isGathered { $0.gathered += 1 }
                $0.largestPayload = Swift.max($0.largestPayload, bytes.count - headers)
            }
            out.append(Frame(bytes))
        }
        peer?.deliverInbound(out)
    }
}
