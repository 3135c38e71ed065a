import Synchronization

/// A reference set at most once and read without a lock, as Synchronization's
/// `AtomicLazyReference` is; that one's `load` is not inlined into client modules and, generic,
/// looks up its type's metadata on every call (about 570 instructions, twice per local send).
/// This one is specialised where it is used: a `load` is one acquiring load.
///
/// Public only so that code in NetMP's other modules can inline and specialise it (Swift does
/// not inline members of `package` types across modules); its members are `package`, not API.
public struct OnceReference<Instance: AnyObject>: ~Copyable, @unchecked Sendable {
    /// The instance's address, retained once, or 0 while none is stored.
    @usableFromInline let storage = Atomic<UInt>(0)

    package init() {}

    deinit {
        if let pointer = UnsafeRawPointer(bitPattern: storage.load(ordering: .acquiring)) {
            Unmanaged<Instance>.fromOpaque(pointer).release()
        }
    }

    /// The stored instance, nil until one is stored.
    @inlinable @inline(__always) package func load() -> Instance? {
        guard let pointer = UnsafeRawPointer(bitPattern: storage.load(ordering: .acquiring)) else { return nil }
        return Unmanaged<Instance>.fromOpaque(pointer).takeUnretainedValue()
    }

    /// Runs `body` with the stored instance, not retained for the call (it lives as long as this
    /// reference does, which the caller holds); nil, without calling it, while none is stored.
    @inlinable @inline(__always) package func withLoaded<T>(_ body: (Instance) -> T) -> T? {
        guard let pointer = UnsafeRawPointer(bitPattern: storage.load(ordering: .acquiring)) else { return nil }
        return Unmanaged<Instance>.fromOpaque(pointer)._withUnsafeGuaranteedRef(body)
    }

    /// Stores `desired` unless an instance is stored already; returns the one stored.
    @inlinable package func storeIfNil(_ desired: Instance) -> Instance {
        let made = Unmanaged.passRetained(desired)
        let (exchanged, original) = storage.compareExchange(
            expected: 0, desired: UInt(bitPattern: made.toOpaque()), ordering: .acquiringAndReleasing)
        guard !exchanged, let pointer = UnsafeRawPointer(bitPattern: original) else { return desired }
        made.release()
        return Unmanaged<Instance>.fromOpaque(pointer).takeUnretainedValue()
    }
}
