extension Array {
    /// Empties the array and keeps its storage. `removeAll(keepingCapacity:)` goes through the
    /// generic range replacement (about 150 instructions however few the elements); the per-
    /// packet lists emptied this way mostly hold one or two, which a few pops remove for less.
    @inlinable @inline(__always) package mutating func clearKeepingCapacity() {
        if count > 4 {
            removeAll(keepingCapacity: true)
            return
        }
        while !isEmpty { removeLast() }
    }
}

extension ContiguousArray {
    /// As `Array.clearKeepingCapacity()`.
    @inlinable @inline(__always) package mutating func clearKeepingCapacity() {
        if count > 4 {
            removeAll(keepingCapacity: true)
            return
        }
        while !isEmpty { removeLast() }
    }
}
