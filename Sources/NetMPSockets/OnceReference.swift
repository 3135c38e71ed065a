import Synchronization

/// A reference installed at most once and read without a lock: what the standard library's
/// `AtomicLazyReference` does, written here so the compiler specializes it. That type's `load`
/// is not inlinable, so every read looked up `Unmanaged<Instance>`'s metadata at run time
/// (about 600 instructions; a socket buffer reads its observers on every wake).
struct OnceReference<Instance: AnyObject>: ~Copyable {
    /// The installed instance, retained once by this slot, or nil.
    private let slot = Atomic<UnsafeRawPointer?>(nil)

    init() {}

    deinit {
        if let raw = slot.load(ordering: .acquiring) {
            Unmanaged<Instance>.fromOpaque(raw).release()
        }
    }

    /// The installed instance, or nil before the first `storeIfNil`.
    @inline(__always) func load() -> Instance? {
        guard let raw = slot.load(ordering: .acquiring) else { return nil }
        return Unmanaged<Instance>.fromOpaque(raw).takeUnretainedValue()
    }

    /// Installs `desired` unless an instance is installed already; returns the installed one.
    func storeIfNil(_ desired: Instance) -> Instance {
        let retained = UnsafeRawPointer(Unmanaged.passRetained(desired).toOpaque())
        let (exchanged, original) = slot.compareExchange(
            expected: nil, desired: retained, ordering: .acquiringAndReleasing)
        if exchanged { return desired }
        Unmanaged<Instance>.fromOpaque(retained).release()
        guard let original else { return desired }  // unreachable: the exchange failed on a non-nil slot
        return Unmanaged<Instance>.fromOpaque(original).takeUnretainedValue()
    }
}
