/// A growable FIFO ring: O(1) push at either end and pop at the front, storage reused.
struct RingQueue<Element> {
    private var storage: ContiguousArray<Element?>
    private var head = 0
    private(set) var count = 0

    /// A ring with room for `capacity` elements; 0 allocates nothing until the first push.
    init(capacity: Int = 0) {
        storage = ContiguousArray(repeating: nil, count: Swift.max(0, capacity))
    }

    var isEmpty: Bool { count == 0 }

    var capacity: Int { storage.count }

    @inline(__always) private func physical(_ index: Int) -> Int {
        let position = head + index
        return position >= storage.count ? position - storage.count : position
    }

    subscript(index: Int) -> Element {
        get {
            precondition(index >= 0 && index < count)
            guard let element = storage[physical(index)] else { preconditionFailure("empty ring slot") }
            return element
        }
        set {
            precondition(index >= 0 && index < count)
            storage[physical(index)] = newValue
        }
    }

    var first: Element? { count == 0 ? nil : storage[head] }

    var last: Element? { count == 0 ? nil : storage[physical(count - 1)] }

    /// Makes room for `extra` more elements now, so later pushes do not allocate.
    mutating func reserve(_ extra: Int) {
        if count + extra > storage.count { grow(to: count + extra) }
    }

    private mutating func grow(to minimum: Int) {
        var newCapacity = Swift.max(4, storage.count * 2)
        while newCapacity < minimum { newCapacity *= 2 }
        var newStorage = ContiguousArray<Element?>(repeating: nil, count: newCapacity)
        for index in 0..<count { newStorage[index] = storage[physical(index)] }
        storage = newStorage
        head = 0
    }

    mutating func append(_ element: Element) {
        if count == storage.count { grow(to: count + 1) }
        storage[physical(count)] = element
        count += 1
    }

    mutating func prepend(_ element: Element) {
        if count == storage.count { grow(to: count + 1) }
        head = head == 0 ? storage.count - 1 : head - 1
        storage[head] = element
        count += 1
    }

    @discardableResult
    mutating func popFirst() -> Element? {
        guard count > 0 else { return nil }
        let element = storage[head]
        storage[head] = nil
        head = head + 1 == storage.count ? 0 : head + 1
        count -= 1
        return element
    }

    @discardableResult
    mutating func popLast() -> Element? {
        guard count > 0 else { return nil }
        let index = physical(count - 1)
        let element = storage[index]
        storage[index] = nil
        count -= 1
        return element
    }

    /// Applies `body` to the element in place (for unique-reference checks on class payloads).
    mutating func withLast<T>(_ body: (inout Element) -> T) -> T? {
        guard count > 0 else { return nil }
        let index = physical(count - 1)
        guard var element = storage[index] else { return nil }
        storage[index] = nil
        let result = body(&element)
        storage[index] = element
        return result
    }

    mutating func withFirst<T>(_ body: (inout Element) -> T) -> T? {
        guard count > 0 else { return nil }
        guard var element = storage[head] else { return nil }
        storage[head] = nil
        let result = body(&element)
        storage[head] = element
        return result
    }

    mutating func removeAll() {
        while popFirst() != nil {}
        head = 0
    }

    /// Removes the elements for which `shouldRemove` is true, keeping order.
    mutating func removeAll(where shouldRemove: (Element) -> Bool) {
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
