/// A UDP header (RFC 768).
public struct UDPHeader: Hashable, Sendable {
    /// Bytes of the header.
    public static let length = 8

    public var sourcePort: UInt16
    public var destinationPort: UInt16
    /// Header plus payload in bytes, as read; `emit` writes its own from the payload length.
    public var length: UInt16
    /// The checksum as read; zero means the sender computed none. `emit` computes its own.
    public var checksum: UInt16

    public init(sourcePort: UInt16, destinationPort: UInt16, length: UInt16 = 0, checksum: UInt16 = 0) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.length = length
        self.checksum = checksum
    }

    /// True when the sender left the checksum out (allowed over IPv4).
    public var hasChecksum: Bool { checksum != 0 }

    /// Parses a datagram that fills `bytes` (the IPv4 payload) sent from `source` to `destination`.
    ///
    /// The length field must be at least 8 and at most the buffer; bytes past it are ignored. A
    /// non-zero checksum is verified with the pseudo-header unless `verifyChecksum` is false.
    public static func parse(
        _ bytes: UnsafeRawBufferPointer, source: IPv4Address, destination: IPv4Address, verifyChecksum: Bool = true
    ) -> Result<UDPPacket, WireError> {
        Result { () throws(WireError) -> UDPPacket in
            guard bytes.count >= length else { throw .truncated }
            let header = UDPHeader(
                sourcePort: try bytes.networkUInt16(at: 0),
                destinationPort: try bytes.networkUInt16(at: 2),
                length: try bytes.networkUInt16(at: 4),
                checksum: try bytes.networkUInt16(at: 6))
            let datagramLength = Int(header.length)
            guard datagramLength >= length else { throw .badLength }
            guard datagramLength <= bytes.count else { throw .truncated }
            if verifyChecksum, header.hasChecksum {
                let pseudoHeader = InternetChecksum.pseudoHeaderSum(
                    source: source, destination: destination, protocol: .udp, length: header.length)
                let datagram = try bytes.networkSlice(0..<datagramLength)
                guard InternetChecksum.verify(datagram, initial: pseudoHeader) else { throw .badChecksum }
            }
            return UDPPacket(header: header, headerLength: length, payloadRange: length..<datagramLength)
        }
    }

    /// Parses a datagram held in an array.
    public static func parse(
        _ bytes: [UInt8], source: IPv4Address, destination: IPv4Address, verifyChecksum: Bool = true
    ) -> Result<UDPPacket, WireError> {
        bytes.withUnsafeBytes {
            parse($0, source: source, destination: destination, verifyChecksum: verifyChecksum)
        }
    }

    /// Writes the 8-byte header at the start of `buffer` for the `payloadLength` bytes the caller
    /// already placed after it: the length field from `payloadLength`, and the checksum with the
    /// pseudo-header unless `computeChecksum` is false (then zero). Returns the header length.
    @discardableResult
    public func emit(
        into buffer: UnsafeMutableRawBufferPointer, payloadLength: Int, source: IPv4Address,
        destination: IPv4Address, computeChecksum: Bool = true
    ) throws(WireError) -> Int {
        guard payloadLength >= 0, payloadLength <= Int(UInt16.max) - UDPHeader.length else { throw .badLength }
        let datagramLength = UDPHeader.length + payloadLength
        guard buffer.count >= datagramLength else { throw .bufferTooSmall }
        try buffer.storeNetwork(sourcePort, at: 0)
        try buffer.storeNetwork(destinationPort, at: 2)
        try buffer.storeNetwork(UInt16(datagramLength), at: 4)
        try buffer.storeNetwork(UInt16(0), at: 6)
        if computeChecksum {
            let pseudoHeader = InternetChecksum.pseudoHeaderSum(
                source: source, destination: destination, protocol: .udp, length: UInt16(datagramLength))
            let datagram = UnsafeRawBufferPointer(try buffer.networkSlice(0..<datagramLength))
            var checksum = InternetChecksum.checksum(datagram, initial: pseudoHeader)
            // A computed zero is sent as all ones, since zero on the wire means "no checksum".
            if checksum == 0 {
                checksum = 0xFFFF
            }
            try buffer.storeNetwork(checksum, at: 6)
        }
        return UDPHeader.length
    }

    /// The whole datagram (header, then `payload`) as bytes.
    public func bytes(
        payload: [UInt8] = [], source: IPv4Address, destination: IPv4Address, computeChecksum: Bool = true
    ) -> [UInt8] {
        let emitted = try? emitToArray(capacity: UDPHeader.length + payload.count) {
            (buffer) throws(WireError) -> Int in
            for (index, byte) in payload.enumerated() {
                try buffer.storeNetwork(byte, at: UDPHeader.length + index)
            }
            let headerLength = try emit(
                into: buffer, payloadLength: payload.count, source: source, destination: destination,
                computeChecksum: computeChecksum)
            return headerLength + payload.count
        }
        return emitted ?? []
    }
}

/// A parsed UDP datagram; the payload range ends at the UDP length field.
public typealias UDPPacket = Parsed<UDPHeader>
