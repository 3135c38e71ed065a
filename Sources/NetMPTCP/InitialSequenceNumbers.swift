/// Initial sequence numbers per RFC 6528: ISN = M + F(4-tuple, secret), with M a clock ticking every
/// 4 µs and F SipHash-2-4 keyed by the stack's secret. Each 4-tuple gets its own sequence space that
/// still advances with time, so a new incarnation of a tuple starts above the old one.
public struct InitialSequenceNumbers: Sendable {
    public let key: TCPSecretKey

    public init(key: TCPSecretKey) {
        self.key = key
    }

    public func initialSequenceNumber(for connection: TCPConnectionKey, now: Int64) -> SequenceNumber {
        var hasher = SipHasher(key: key)
        connection.localAddress.hash(into: &hasher)
        hasher.append(connection.localPort)
        connection.remoteAddress.hash(into: &hasher)
        hasher.append(connection.remotePort)
        let offset = UInt32(truncatingIfNeeded: hasher.finalize())
        let ticks = UInt32(truncatingIfNeeded: now / 4_000)
        return SequenceNumber(ticks &+ offset)
    }
}
