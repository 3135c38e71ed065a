/// The ARP operation code.
public struct ARPOperation: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt16

    public init(rawValue: UInt16) {
        self.rawValue = rawValue
    }

    /// 1: who has `targetProtocolAddress`?
    public static let request = ARPOperation(rawValue: 1)
    /// 2: `senderProtocolAddress` is at `senderHardwareAddress`.
    public static let reply = ARPOperation(rawValue: 2)
}

/// An ARP packet for Ethernet hardware and IPv4 protocol addresses (RFC 826), the only pairing
/// an IPv4-over-Ethernet stack needs; other pairings parse as `.unsupported`.
public struct ARPPacket: Hashable, Sendable {
    /// Bytes of an Ethernet/IPv4 ARP packet (frames are usually padded past this).
    public static let length = 28

    public var operation: ARPOperation
    public var senderHardwareAddress: MACAddress
    public var senderProtocolAddress: IPv4Address
    public var targetHardwareAddress: MACAddress
    public var targetProtocolAddress: IPv4Address

    public init(
        operation: ARPOperation, senderHardwareAddress: MACAddress, senderProtocolAddress: IPv4Address,
        targetHardwareAddress: MACAddress, targetProtocolAddress: IPv4Address
    ) {
        self.operation = operation
        self.senderHardwareAddress = senderHardwareAddress
        self.senderProtocolAddress = senderProtocolAddress
        self.targetHardwareAddress = targetHardwareAddress
        self.targetProtocolAddress = targetProtocolAddress
    }

    /// Parses an ARP packet at the start of `bytes`; trailing padding is ignored.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> Result<ARPPacket, WireError> {
        Result { () throws(WireError) -> ARPPacket in
            guard bytes.count >= 8 else { throw .truncated }
            let hardwareType = try bytes.networkUInt16(at: 0)
            let protocolType = try bytes.networkUInt16(at: 2)
            let hardwareLength = try bytes.networkUInt8(at: 4)
            let protocolLength = try bytes.networkUInt8(at: 5)
            guard hardwareType == 1, protocolType == EtherType.ipv4.rawValue, hardwareLength == 6,
                protocolLength == 4
            else { throw .unsupported }
            guard bytes.count >= length else { throw .truncated }
            return ARPPacket(
                operation: ARPOperation(rawValue: try bytes.networkUInt16(at: 6)),
                senderHardwareAddress: try MACAddress.read(from: bytes, at: 8),
                senderProtocolAddress: try IPv4Address.read(from: bytes, at: 14),
                targetHardwareAddress: try MACAddress.read(from: bytes, at: 18),
                targetProtocolAddress: try IPv4Address.read(from: bytes, at: 24))
        }
    }

    /// Parses an ARP packet held in an array.
    public static func parse(_ bytes: [UInt8]) -> Result<ARPPacket, WireError> {
        bytes.withUnsafeBytes { parse($0) }
    }

    /// Writes the 28-byte packet at the start of `buffer` and returns the bytes written.
    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer) throws(WireError) -> Int {
        guard buffer.count >= ARPPacket.length else { throw .bufferTooSmall }
        try buffer.storeNetwork(UInt16(1), at: 0)
        try buffer.storeNetwork(EtherType.ipv4.rawValue, at: 2)
        try buffer.storeNetwork(UInt8(6), at: 4)
        try buffer.storeNetwork(UInt8(4), at: 5)
        try buffer.storeNetwork(operation.rawValue, at: 6)
        try senderHardwareAddress.write(to: buffer, at: 8)
        try senderProtocolAddress.write(to: buffer, at: 14)
        try targetHardwareAddress.write(to: buffer, at: 18)
        try targetProtocolAddress.write(to: buffer, at: 24)
        return ARPPacket.length
    }

    /// The packet as 28 bytes.
    public func bytes() -> [UInt8] {
        (try? emitToArray(capacity: ARPPacket.length) { (buffer) throws(WireError) in try emit(into: buffer) }) ?? []
    }

    /// The reply a host owning `targetProtocolAddress` sends to this request, from `hardwareAddress`.
    public func reply(from hardwareAddress: MACAddress) -> ARPPacket {
        ARPPacket(
            operation: .reply, senderHardwareAddress: hardwareAddress, senderProtocolAddress: targetProtocolAddress,
            targetHardwareAddress: senderHardwareAddress, targetProtocolAddress: senderProtocolAddress)
    }
}
