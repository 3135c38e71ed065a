/// The EtherType field: which protocol an Ethernet II frame carries.
public struct EtherType: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt16

    @inlinable public init(rawValue: UInt16) {
        self.rawValue = rawValue
    }

    // Inlinable constants rather than stored statics, which cost a call from other modules.
    /// 0x0800.
    @inlinable public static var ipv4: EtherType { EtherType(rawValue: 0x0800) }
    /// 0x0806.
    @inlinable public static var arp: EtherType { EtherType(rawValue: 0x0806) }
    /// 0x86DD.
    @inlinable public static var ipv6: EtherType { EtherType(rawValue: 0x86DD) }
    /// 0x8100, an 802.1Q VLAN tag (not decoded here).
    @inlinable public static var vlan: EtherType { EtherType(rawValue: 0x8100) }
}

/// An Ethernet II header: destination, source, EtherType (14 bytes, no FCS, no VLAN tag).
public struct EthernetHeader: Hashable, Sendable {
    /// Bytes an Ethernet II header takes.
    public static let length = 14

    public var destination: MACAddress
    public var source: MACAddress
    public var etherType: EtherType

    public init(destination: MACAddress, source: MACAddress, etherType: EtherType) {
        self.destination = destination
        self.source = source
        self.etherType = etherType
    }

    /// Parses the header at the start of `frame`; the payload is the rest of the frame (it may
    /// include padding up to the 60-byte minimum, which the inner protocol's length trims).
    ///
    /// Values below 0x0600 are 802.3 lengths, not EtherTypes, and are refused as `.unsupported`.
    public static func parse(_ frame: UnsafeRawBufferPointer) -> Result<EthernetFrame, WireError> {
        Result { () throws(WireError) -> EthernetFrame in try parseHeader(frame) }
    }

    /// As `parse`, throwing: the input path's form (no `Result` to build and take apart a frame).
    @inlinable
    package static func parseHeader(_ frame: UnsafeRawBufferPointer) throws(WireError) -> EthernetFrame {
        guard frame.count >= length else { throw .truncated }
        let header = EthernetHeader(
            destination: try MACAddress.read(from: frame, at: 0),
            source: try MACAddress.read(from: frame, at: 6),
            etherType: EtherType(rawValue: try frame.networkUInt16(at: 12)))
        guard header.etherType.rawValue >= 0x0600 else { throw .unsupported }
        return EthernetFrame(header: header, headerLength: length, payloadRange: length..<frame.count)
    }

    /// Parses a frame held in an array (tests, tools).
    public static func parse(_ frame: [UInt8]) -> Result<EthernetFrame, WireError> {
        frame.withUnsafeBytes { parse($0) }
    }

    /// Writes the 14-byte header at the start of `buffer` and returns the bytes written.
    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer) throws(WireError) -> Int {
        guard buffer.count >= EthernetHeader.length else { throw .bufferTooSmall }
        try destination.write(to: buffer, at: 0)
        try source.write(to: buffer, at: 6)
        try buffer.storeNetwork(etherType.rawValue, at: 12)
        return EthernetHeader.length
    }

    /// The header as 14 bytes.
    public func bytes() -> [UInt8] {
        (try? emitToArray(capacity: EthernetHeader.length) { (buffer) throws(WireError) in try emit(into: buffer) })
            ?? []
    }
}

/// A parsed Ethernet II frame.
public typealias EthernetFrame = Parsed<EthernetHeader>
