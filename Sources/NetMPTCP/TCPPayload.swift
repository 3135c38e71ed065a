/// What the state machine needs from received bytes: their count and cheap trims. The tests use
/// arrays; the integration uses its zero-copy buffer slices, so a trim never copies.
public protocol TCPPayload {
    /// Bytes held.
    var count: Int { get }
    /// The bytes after the first `count` (all of them gone when `count >= self.count`).
    func droppingFirst(_ count: Int) -> Self
    /// The first `count` bytes (all of them when `count >= self.count`).
    func keepingFirst(_ count: Int) -> Self
}

extension ArraySlice: TCPPayload where Element == UInt8 {
    public func droppingFirst(_ count: Int) -> ArraySlice<UInt8> { dropFirst(Swift.max(0, count)) }
    public func keepingFirst(_ count: Int) -> ArraySlice<UInt8> { prefix(Swift.max(0, count)) }
}

extension Array: TCPPayload where Element == UInt8 {
    public func droppingFirst(_ count: Int) -> [UInt8] { Array(dropFirst(Swift.max(0, count))) }
    public func keepingFirst(_ count: Int) -> [UInt8] { Array(prefix(Swift.max(0, count))) }
}
