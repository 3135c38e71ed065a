/// A growable FIFO ring: O(1) push at either end and pop at the front, storage reused.
///
/// A ring that never holds more than one element keeps it inline and allocates nothing: most
/// chains (one slice) and most queues between batches are that small.
///
/// Public only so that code in NetMP's other modules can inline and specialise it (Swift does
/// not inline members of `package` types across modules); its members are `package`, not API.
public struct RingQueue<Element> {
    @usableFromInline var storage: ContiguousArray<Element?>
    /// The element of a ring without storage (count 0 or 1).
    @usableFromInline var single: Element?
    @usableFromInline var head = 0
    @usableFromInline package internal(set) var count = 0

    /// A ring with room for `capacity` elements; 0 allocates nothing until a second element.
    @inlinable package init(capacity: Int = 0) {
        storage = ContiguousArray(repeating: nil, count: Swift.max(0, capacity))
    }

    @inlinable package var isEmpty: Bool { count == 0 }

    @inlinable package var capacity: Int { Swift.max(1, storage.count) }

    @inlinable @inline(__always) var isInline: Bool { storage.isEmpty }

    @inlinable @inline(__always) func physical(_ index: Int) -> Int {
        let position = head + index
        return position >= storage.count ? position - storage.count : position
    }

    @inlinable package subscript(index: Int) -> Element {
        get {
            precondition(index >= 0 && index < count)
            let element = isInline ? single : storage[physical(index)]
            guard let element else { preconditionFailure("empty ring slot") }
            return element
        }
        set {
            precondition(index >= 0 && index < count)
            if isInline { single = newValue } else { storage[physical(index)] = newValue }
        }
    }

    @inlinable package var first: Element? {
        guard count > 0 else { return nil }
        return isInline ? single : storage[head]
    }

    @inlinable package var last: Element? {
        guard count > 0 else { return nil }
        return isInline ? single : storage[physical(count - 1)]
    }

    /// Makes room for `extra` more elements now, so later pushes do not allocate.
    @inlinable package mutating func reserve(_ extra: Int) {
        if count + extra > capacity { grow(to: count + extra) }
    }

    @inlinable mutating func grow(to minimum: Int) {
        var newCapacity = Swift.max(4, storage.count * 2)
        while newCapacity < minimum { newCapacity *= 2 }
        var newStorage = ContiguousArray<Element?>(repeating: nil, count: newCapacity)
        if isInline {
            newStorage[0] = single.take()
        } else {
            for index in 0..<count { newStorage[index] = storage[physical(index)].take() }
        }
        storage = newStorage
        head = 0
    }

    @inlinable package mutating func append(_ element: consuming Element) {
        if isInline && count == 0 {
            single = element
            count = 1
            return
        }
        if count == capacity || isInline { grow(to: count + 1) }
        storage[physical(count)].fill(with: element)
        count += 1
    }

    @inlinable package mutating func prepend(_ element: consuming Element) {
        if isInline && count == 0 {
            single = element
            count = 1
            return
        }
        if count == capacity || isInline { grow(to: count + 1) }
        head = head == 0 ? storage.count - 1 : head - 1
        storage[head] = element
        count += 1
    }

    @discardableResult
    @inlinable package mutating func popFirst() -> Element? {
        guard count > 0 else { return nil }
        count -= 1
        // Moved out with `take()`, not copied then cleared: a copy retains every reference the
        // element holds and the clearing releases them again.
        if isInline { return single.take() }
        return popFirstStored()
    }

    /// The out-of-line half of `popFirst`: inlined, its array mutation lets the optimizer hoist
    /// a uniqueness check (and a copy of the shared empty array) out of the caller's loop even
    /// for a ring that keeps its one element inline.
    @inlinable @inline(never) mutating func popFirstStored() -> Element? {
        let element = storage[head].take()
        head = head + 1 == storage.count ? 0 : head + 1
        return element
    }

    @discardableResult
    @inlinable package mutating func popLast() -> Element? {
        guard count > 0 else { return nil }
        count -= 1
        if isInline { return single.take() }
        return storage[physical(count)].take()
    }

    /// Applies `body` to the last element in place (for unique-reference checks on class
    /// payloads: the element is moved out of the ring while `body` runs).
    @inlinable mutating func withLast<T>(_ body: (inout Element) -> T) -> T? {
        guard count > 0 else { return nil }
        if isInline { return withInline(body) }
        let index = physical(count - 1)
        guard var element = storage[index].take() else { return nil }
        let result = body(&element)
        storage[index] = element
        return result
    }

    /// Applies `body` to the first element in place.
    @inlinable package mutating func withFirst<T>(_ body: (inout Element) -> T) -> T? {
        guard count > 0 else { return nil }
        if isInline { return withInline(body) }
        guard var element = storage[head].take() else { return nil }
        let result = body(&element)
        storage[head] = element
        return result
    }

    @inlinable mutating func withInline<T>(_ body: (inout Element) -> T) -> T? {
        guard var element = single.take() else { return nil }
        let result = body(&element)
        single = element
        return result
    }

    /// Takes the storage of an empty ring that has grown past `keep` elements (the ring goes
    /// back to keeping one element inline), for the caller to free where it likes: an idle
    /// queue then holds no memory, while a small ring is kept because refilling it would allocate.
    @inlinable package mutating func takeStorageIfEmpty(keeping keep: Int) -> ContiguousArray<Element?>? {
        guard count == 0, storage.count > keep else { return nil }
        let taken = storage
        storage = []
        single = nil
        head = 0
        return taken
    }

    @inlinable package mutating func removeAll() {
        while popFirst() != nil {}
        head = 0
    }

    /// Removes the elements for which `shouldRemove` is true, keeping order.
    @inlinable package mutating func removeAll(where shouldRemove: (Element) -> Bool) {
        if isInline {
            if let element = single, shouldRemove(element) {
                single = nil
                count = 0
            }
            return
        }
        var kept = 0
        let total = count
        for index in 0..<total {
            guard let element = storage[physical(index)] else { continue }
            if !shouldRemove(element) {
                storage[physical(kept)] = element
                kept += 1
            }
        }
        for index in kept..<total { storage[physical(index)] = nil }
        count = kept
    }
}

extension Optional {
    /// Stores `value` in what is normally an empty slot: the old value is consumed and matched,
    /// so storing over nil destroys nothing (an assignment destroys the old value first, for
    /// some types through their value witnesses even when it is nil).
    @inlinable @inline(__always) mutating func fill(with value: consuming Wrapped) {
        switch consume self {
        case .none:
            self = .some(value)
        case .some(let old):
            self = .some(value)
            _ = consume old
        }
    }
}
