/// Ephemeral port selection per RFC 6056 algorithm 3 ("simple hash-based"): each destination gets
/// its own keyed starting offset into the range, and one shared counter moves every search on, so
/// ports are hard to guess yet reuse of a tuple stays rare.
public struct EphemeralPortSelector: Sendable {
    public let key: TCPSecretKey
    public let range: ClosedRange<UInt16>
    /// RFC 6056's next_ephemeral.
    public private(set) var next: UInt32 = 0

    /// The IANA range 49152–65535 unless told otherwise.
    public init(key: TCPSecretKey, range: ClosedRange<UInt16> = 49152...65535) {
        self.key = key
        self.range = range
    }

    /// Free ports a search passes over for one that `preferred` accepts before it takes the first
    /// free one.
    public static let preferenceTries = 32

    /// A port for a connection from `localAddress` to `remoteAddress`:`remotePort` that `inUse` says is
    /// free, or nil when every port in the range is taken.
    public mutating func choose(
        localAddress: TCPAddress, remoteAddress: TCPAddress, remotePort: UInt16, inUse: (UInt16) -> Bool
    ) -> UInt16? {
        choose(localAddress: localAddress, remoteAddress: remoteAddress, remotePort: remotePort, inUse: inUse) { _ in
            true
        }
    }

    /// As `choose`, but the first free port `preferred` accepts among the next
    /// `preferenceTries` free ones (connect's: a tuple that hashes to the connecting socket's
    /// own thread, so the control block need not move); else the first free port.
    public mutating func choose(
        localAddress: TCPAddress, remoteAddress: TCPAddress, remotePort: UInt16, inUse: (UInt16) -> Bool,
        preferred: (UInt16) -> Bool
    ) -> UInt16? {
        var hasher = SipHasher(key: key)
        localAddress.hash(into: &hasher)
        remoteAddress.hash(into: &hasher)
        hasher.append(remotePort)
        let offset = UInt32(truncatingIfNeeded: hasher.finalize())
        let count = UInt32(range.upperBound - range.lowerBound) + 1
        var firstFree: UInt16?
        var freeSeen = 0
        for _ in 0..<count {
            let port = range.lowerBound + UInt16(truncatingIfNeeded: (next &+ offset) % count)
            if !inUse(port) {
                if preferred(port) {
                    next &+= 1
                    return port
                }
                if firstFree == nil { firstFree = port }
                freeSeen += 1
                if freeSeen == EphemeralPortSelector.preferenceTries { break }
            }
            next &+= 1
        }
        return firstFree
    }
}
