/// 64 bytes of nothing, put between fields that different threads write so that they never
/// share a cache line (a write by one then does not evict the other's line).
package struct CacheLinePad: Sendable {
    private let words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)

    package init() {}
}
