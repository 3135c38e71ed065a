/// A connection's settings in a box that connections made with equal settings share (changed by
/// replacing the box, never in place): a connection then carries one reference instead of its own
/// copy of some 180 bytes of settings.
public final class TCPSharedConfiguration: Sendable {
    public let value: TCPConfiguration

    init(_ value: TCPConfiguration) { self.value = value }
}

extension TCPConnection {
    /// Takes `cache`'s box when it holds settings equal to this connection's; otherwise this
    /// connection's box becomes the cache. The integration keeps one cache per thread.
    mutating func shareConfiguration(through cache: inout TCPSharedConfiguration?) {
        if let cache, cache !== sharedConfiguration, cache.value == sharedConfiguration.value {
            sharedConfiguration = cache
        } else {
            cache = sharedConfiguration
        }
    }
}
