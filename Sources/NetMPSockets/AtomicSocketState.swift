import NetMPRuntime
import Synchronization

/// `SocketState` in one atomic word: set and cleared with atomic or/and, read anywhere.
///
/// Public only so that code in NetMP's other modules can inline and specialise it (Swift does
/// not inline members of `package` types across modules); its members are `package`, not API.
public final class AtomicSocketState: Sendable {
    @usableFromInline let bits = Atomic<UInt32>(0)

    @inlinable @inline(__always) package var value: SocketState {
        SocketState(rawValue: bits.load(ordering: .sequentiallyConsistent))
    }

    @inlinable @inline(__always) package func contains(_ member: SocketState) -> Bool { value.contains(member) }

    @inlinable @inline(__always) package func containsAny(_ members: SocketState) -> Bool {
        !value.isDisjoint(with: members)
    }

    /// Sets bits; returns the state before.
    @discardableResult
    @inlinable @inline(__always) package func set(_ members: SocketState) -> SocketState {
        SocketState(rawValue: bits.bitwiseOr(members.rawValue, ordering: .sequentiallyConsistent).oldValue)
    }

    /// Clears bits; returns the state before.
    @discardableResult
    @inlinable @inline(__always) package func clear(_ members: SocketState) -> SocketState {
        SocketState(rawValue: bits.bitwiseAnd(~members.rawValue, ordering: .sequentiallyConsistent).oldValue)
    }

    /// Clears `clearing` and sets `setting` in one step, so no reader sees the state between
    /// (a connect waiter that saw `connecting` gone before `connected` came would report a
    /// refusal); returns the state before.
    @discardableResult
    @inlinable package func replace(clearing: SocketState, setting: SocketState) -> SocketState {
        var current = bits.load(ordering: .relaxed)
        while true {
            let next = (current & ~clearing.rawValue) | setting.rawValue
            let (exchanged, original) = bits.compareExchange(
                expected: current, desired: next, ordering: .sequentiallyConsistent)
            if exchanged { return SocketState(rawValue: current) }
            current = original
        }
    }
}
