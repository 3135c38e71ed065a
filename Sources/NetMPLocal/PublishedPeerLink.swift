import Synchronization

/// A datagram socket's current peer link, read by senders without a lock and replaced (connect,
/// disconnect, close) under the control block's lock. A datagram socket may connect again, so
/// unlike a stream's link this one changes.
///
/// A sender counts itself in `readers` before it loads the link and out after its last use. A
/// replaced link is kept in `retired` until a replacement finds no sender in flight (or this
/// slot goes), so a link a sender loaded is never freed under it.
final class PublishedPeerLink: @unchecked Sendable {
    /// The current link's address, retained once, or 0 when not connected.
    private let current = Atomic<UInt>(0)
    private let readers = Atomic<Int>(0)
    /// Links replaced while a sender may still hold them (under the control block's lock).
    @exclusivity(unchecked) private var retired: [PeerLink] = []

    deinit {
        if let pointer = UnsafeRawPointer(bitPattern: current.load(ordering: .acquiring)) {
            Unmanaged<PeerLink>.fromOpaque(pointer).release()
        }
    }

    /// Whether a link is published now.
    var isLinked: Bool { current.load(ordering: .acquiring) != 0 }

    /// Runs `body` with the current link (nil when not connected), not retained for the call.
    @inline(__always) func withCurrent<T, E: Error>(_ body: (PeerLink?) throws(E) -> T) throws(E) -> T {
        // Sequentially consistent, both: a replacement that misses this count has stored its new
        // link first, so the load below finds that one, never the link it frees.
        readers.add(1, ordering: .sequentiallyConsistent)
        defer { readers.subtract(1, ordering: .releasing) }
        guard let pointer = UnsafeRawPointer(bitPattern: current.load(ordering: .sequentiallyConsistent)) else {
            return try body(nil)
        }
        // `_withUnsafeGuaranteedRef` rethrows untyped errors: the typed one is carried out.
        var failure: E?
        let value: T? = Unmanaged<PeerLink>.fromOpaque(pointer)._withUnsafeGuaranteedRef { link in
            do throws(E) {
                return try body(link)
            } catch {
                failure = error
                return nil
            }
        }
        guard let value else {
            guard let failure else { preconditionFailure("neither a value nor an error") }
            throw failure
        }
        return value
    }

    /// Publishes `link` (nil: not connected). Under the control block's lock.
    func replace(with link: PeerLink?) {
        let desired = link.map { UInt(bitPattern: Unmanaged.passRetained($0).toOpaque()) } ?? 0
        let old = current.exchange(desired, ordering: .sequentiallyConsistent)
        if let pointer = UnsafeRawPointer(bitPattern: old) {
            retired.append(Unmanaged<PeerLink>.fromOpaque(pointer).takeRetainedValue())
        }
        if !retired.isEmpty && readers.load(ordering: .sequentiallyConsistent) == 0 { retired.removeAll() }
    }
}
