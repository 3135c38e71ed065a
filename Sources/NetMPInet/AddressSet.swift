import NetMPWire

/// A fixed set of IPv4 addresses asked about on every packet (our own addresses, our subnets'
/// broadcasts): while it is small, a scan of a dozen integers costs less than hashing the
/// address (the standard library's seeded hash, about 200 instructions a look-up).
struct AddressSet: Sendable {
    /// Up to this many addresses are scanned; a larger set is hashed.
    static let scannedLimit = 16

    private let scanned: [UInt32]
    private let hashed: Set<IPv4Address>

    init(_ addresses: some Sequence<IPv4Address>) {
        let all = Array(addresses)
        if all.count <= AddressSet.scannedLimit {
            scanned = all.map(\.rawValue)
            hashed = []
        } else {
            scanned = []
            hashed = Set(all)
        }
    }

    @inline(__always) func contains(_ address: IPv4Address) -> Bool {
        guard hashed.isEmpty else { return hashed.contains(address) }
        for candidate in scanned where candidate == address.rawValue { return true }
        return false
    }
}
