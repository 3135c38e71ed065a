import NetMPWire

/// The virtio-net header a TAP device with IFF_VNET_HDR puts before every frame (struct
/// virtio_net_hdr, 10 bytes, little-endian on the hosts NetMP runs on): checksum and
/// segmentation offload between the kernel and the reader.
public struct VirtioNetHeader: Sendable, Hashable {
    public static let size = 10

    /// VIRTIO_NET_HDR_F_NEEDS_CSUM: the checksum at `checksumStart + checksumOffset` holds
    /// only the pseudo-header sum; the rest is to be summed from `checksumStart` to the end.
    public static let needsChecksum: UInt8 = 1
    /// VIRTIO_NET_HDR_F_DATA_VALID: the sender vouches for the checksums.
    public static let dataValid: UInt8 = 2

    /// VIRTIO_NET_HDR_GSO_*: what kind of large segment the frame is, if any.
    public enum SegmentationType: UInt8, Sendable {
        case none = 0, tcpIPv4 = 1, udp = 3, tcpIPv6 = 4
    }

    public var flags: UInt8
    public var segmentation: UInt8
    public var headerLength: UInt16
    public var segmentSize: UInt16
    public var checksumStart: UInt16
    public var checksumOffset: UInt16

    public init(
        flags: UInt8 = 0, segmentation: UInt8 = 0, headerLength: UInt16 = 0, segmentSize: UInt16 = 0,
        checksumStart: UInt16 = 0, checksumOffset: UInt16 = 0
    ) {
        self.flags = flags
        self.segmentation = segmentation
        self.headerLength = headerLength
        self.segmentSize = segmentSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
    }

    /// The header that hands the kernel `frame`, an Ethernet frame holding a TCP/IPv4 segment
    /// larger than the MTU, to cut into segments of `segmentSize` payload bytes (GSO, as a
    /// virtio-net driver passes TSO frames): VIRTIO_NET_HDR_GSO_TCPV4, the headers' length, and
    /// NEEDS_CSUM from the TCP header on, whose checksum field holds the pseudo-header's sum.
    /// Nil when the frame is not such a segment (not IPv4/TCP, headers cut short).
    public static func largeTCPSegment(_ frame: UnsafeRawBufferPointer, segmentSize: Int) -> VirtioNetHeader? {
        let ethernetLength = 14
        guard segmentSize > 0, segmentSize <= Int(UInt16.max), frame.count >= ethernetLength + 20,
            frame[12] == 0x08, frame[13] == 0x00, frame[ethernetLength] >> 4 == 4,
            frame[ethernetLength + 9] == 6
        else { return nil }
        let ipLength = Int(frame[ethernetLength] & 0x0F) * 4
        let tcpStart = ethernetLength + ipLength
        guard ipLength >= 20, frame.count >= tcpStart + 20 else { return nil }
        let tcpLength = Int(frame[tcpStart + 12] >> 4) * 4
        guard tcpLength >= 20, frame.count >= tcpStart + tcpLength else { return nil }
        return VirtioNetHeader(
            flags: VirtioNetHeader.needsChecksum, segmentation: SegmentationType.tcpIPv4.rawValue,
            headerLength: UInt16(tcpStart + tcpLength), segmentSize: UInt16(segmentSize),
            checksumStart: UInt16(tcpStart), checksumOffset: 16)
    }

    /// True when the partial sum is an unfragmented IPv4 datagram's TCP (field at 16) or UDP
    /// (field at 6) checksum starting at its payload: the one shape a forwarder knows how to
    /// finish from the IP header alone.
    static func isTransportPartial(_ frame: UnsafeMutableRawBufferPointer, start: Int, offset: Int) -> Bool {
        let ethernetLength = 14
        guard frame.count >= ethernetLength + 20, frame[12] == 0x08, frame[13] == 0x00,
            frame[ethernetLength] >> 4 == 4
        else { return false }
        let ipLength = Int(frame[ethernetLength] & 0x0F) * 4
        // Not a fragment: MF clear and a zero offset.
        let fragment = (UInt16(frame[ethernetLength + 6]) << 8 | UInt16(frame[ethernetLength + 7])) & 0x3FFF
        guard ipLength >= 20, start == ethernetLength + ipLength, fragment == 0 else { return false }
        switch frame[ethernetLength + 9] {
        case 6: return offset == 16
        case 17: return offset == 6
        default: return false
        }
    }

    /// Reads the header at the start of `bytes`; nil when they are too short.
    public init?(parsing bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= VirtioNetHeader.size else { return nil }
        func word(_ offset: Int) -> UInt16 { UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8 }
        self.init(
            flags: bytes[0], segmentation: bytes[1], headerLength: word(2), segmentSize: word(4),
            checksumStart: word(6), checksumOffset: word(8))
    }

    /// Writes the header into the first `size` bytes of `bytes` (which must hold them).
    public func emit(into bytes: UnsafeMutableRawBufferPointer) {
        guard bytes.count >= VirtioNetHeader.size else { return }
        func put(_ value: UInt16, _ offset: Int) {
            bytes[offset] = UInt8(truncatingIfNeeded: value)
            bytes[offset + 1] = UInt8(truncatingIfNeeded: value >> 8)
        }
        bytes[0] = flags
        bytes[1] = segmentation
        put(headerLength, 2)
        put(segmentSize, 4)
        put(checksumStart, 6)
        put(checksumOffset, 8)
    }

    /// What a reader does with a frame that came with this header.
    public enum Disposition: Sendable, Hashable {
        /// Checksums are as on the wire (complete, or vouched for).
        case ready
        /// The partial checksum was finished in place.
        case checksumCompleted
        /// The partial checksum was left as it is (`leavingPartialChecksums`): an unfragmented
        /// IPv4 TCP or UDP datagram whose sum starts at its payload, to be trusted on receive and
        /// finished only if the frame is forwarded (`InternetChecksum.finishPartial`).
        case checksumPartial
        /// A large segment this reader did not ask for, or offsets outside the frame: dropped.
        case malformed
    }

    /// Finishes a partial checksum in `frame` (the Ethernet frame after the header), as a NIC
    /// would on transmit: the one's-complement sum from `checksumStart` to the end, with the
    /// pseudo-header sum already in the field, is complemented into the field.
    /// A large TCP/IPv4 segment (`acceptingLargeSegments`) is kept whole, as GRO would pass it up.
    public func prepare(
        _ frame: UnsafeMutableRawBufferPointer, acceptingLargeSegments: Bool = false,
        leavingPartialChecksums: Bool = false
    ) -> Disposition {
        switch segmentation {
        case SegmentationType.none.rawValue: break
        case SegmentationType.tcpIPv4.rawValue where acceptingLargeSegments: break
        default: return .malformed
        }
        guard flags & VirtioNetHeader.needsChecksum != 0 else { return .ready }
        let start = Int(checksumStart)
        let field = start + Int(checksumOffset)
        guard start < frame.count, field >= start, field + 2 <= frame.count else { return .malformed }
        if leavingPartialChecksums, VirtioNetHeader.isTransportPartial(frame, start: start, offset: Int(checksumOffset))
        {
            return .checksumPartial
        }
        let sum = InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: frame[start...]))
        let value = ~sum
        // A UDP checksum that comes out as zero is sent as all ones (RFC 768).
        let stored = value == 0 ? 0xFFFF : value
        frame[field] = UInt8(truncatingIfNeeded: stored >> 8)
        frame[field + 1] = UInt8(truncatingIfNeeded: stored)
        return .checksumCompleted
    }
}
