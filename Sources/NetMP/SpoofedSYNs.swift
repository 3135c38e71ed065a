import NetMPRuntime
import NetMPWire

/// SYN segments from forged sources, as Ethernet frames ready to hand to an interface's
/// `deliverInbound`: the flood of the `tcp.syn.flood` benchmark row and its test.
///
/// Sources are drawn from a seeded generator inside 198.18.0.0/15 (the benchmarking range),
/// leaving out its first and last 256 addresses (ours and the directed broadcast live there), with
/// random ports, sequence numbers and timestamps; every SYN offers MSS, window scale, SACK and
/// timestamps, as a Linux client's does. Each frame is written into a pooled chunk of its own,
/// checksums included, with no other allocation.
package struct SpoofedSYNs {
    package let destination: IPv4Address
    package let port: UInt16
    private var random: SeededRandom
    /// Ethernet and IPv4 headers with the source and the IPv4 checksum still to fill, then room
    /// for the TCP header.
    private var template: [UInt8]
    private static let ipOffset = EthernetHeader.length
    private static let tcpOffset = EthernetHeader.length + IPv4Header.minimumLength
    private static let options: TCPOptions = {
        var options = TCPOptions(maximumSegmentSize: 1460, windowScale: 7, sackPermitted: true)
        options.timestamps = TCPTimestamps(value: 0, echoReply: 0)
        return options
    }()
    /// Bytes of one frame.
    package static let frameLength = tcpOffset + TCPHeader.minimumLength + options.encodedLength

    /// SYNs to `destination`:`port` on an interface whose hardware address is `interfaceAddress`.
    package init(to destination: IPv4Address, port: UInt16, interfaceAddress: MACAddress, seed: UInt64) {
        self.destination = destination
        self.port = port
        random = SeededRandom(seed: seed)
        let segmentLength = TCPHeader.minimumLength + SpoofedSYNs.options.encodedLength
        template =
            EthernetHeader(
                destination: interfaceAddress, source: MACAddress(0x02, 0x00, 0x5E, 0xFF, 0x00, 0x01), etherType: .ipv4
            ).bytes()
            + IPv4Header(
                totalLength: UInt16(IPv4Header.minimumLength + segmentLength), protocol: .tcp, source: .unspecified,
                destination: destination
            ).bytes() + [UInt8](repeating: 0, count: segmentLength)
    }

    /// The source address of a draw: inside 198.18.0.0/15, not in its first or last 256.
    package static func source(_ draw: UInt64) -> IPv4Address {
        let span: UInt64 = (1 << 17) - 512
        return IPv4Address(rawValue: IPv4Address(198, 18, 1, 0).rawValue &+ UInt32(truncatingIfNeeded: draw % span))
    }

    /// The next SYN as a frame.
    package mutating func next() -> Frame {
        let bits = random.next()
        let more = random.next()
        let source = SpoofedSYNs.source(bits)
        var options = SpoofedSYNs.options
        options.timestamps = TCPTimestamps(value: UInt32(truncatingIfNeeded: more >> 32), echoReply: 0)
        let syn = TCPHeader(
            sourcePort: 1024 &+ UInt16(truncatingIfNeeded: bits >> 32) % 64_000, destinationPort: port,
            sequenceNumber: UInt32(truncatingIfNeeded: more), flags: .syn, window: 65535, options: options)
        return template.withUnsafeMutableBytes { raw in
            let ip = UnsafeMutableRawBufferPointer(rebasing: raw[SpoofedSYNs.ipOffset..<SpoofedSYNs.tcpOffset])
            ip.storeBytes(of: source.rawValue.bigEndian, toByteOffset: 12, as: UInt32.self)
            ip.storeBytes(of: UInt16(0), toByteOffset: 10, as: UInt16.self)
            let checksum = InternetChecksum.checksum(UnsafeRawBufferPointer(ip))
            ip.storeBytes(of: checksum.bigEndian, toByteOffset: 10, as: UInt16.self)
            let segment = UnsafeMutableRawBufferPointer(rebasing: raw[SpoofedSYNs.tcpOffset...])
            _ = try? syn.emit(into: segment, payloadLength: 0, source: source, destination: destination)
            return Frame(copying: UnsafeRawBufferPointer(raw))
        }
    }
}

/// A point-to-point link to a world that never answers: what the stack sends on it is counted
/// and dropped, and nothing needs address resolution. The SYN flood's SYN-ACKs leave through it.
package final class DiscardInterface: NetworkInterface, @unchecked Sendable {
    package init(name: String = "discard0", mtu: Int = 1500) {
        super.init(
            name: name, mtu: mtu, hardwareAddress: MACAddress(0x02, 0x00, 0x5E, 0xFE, 0x00, 0x01), offloads: [],
            needsAddressResolution: false)
    }

    package override func transmit(_ frames: [Frame]) {
        noteTransmitted(frames)
    }
}
