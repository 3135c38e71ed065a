import NetMPWire

/// A protocol thread's connections by 4-tuple, looked up on every segment that arrives.
///
/// Open addressing with linear probing over a power-of-two array, at most half full. A key's home
/// slot is the top bits of a multilinear hash of its three words under 64-bit keys drawn at random
/// for each table (Lemire and Kaser's family): a peer that cannot learn the keys cannot choose
/// tuples that crowd one run of slots, and a lookup costs a few multiplications where `Dictionary`
/// ran SipHash over the tuple. Removal shifts the entries behind the hole back (no tombstones), so
/// a table that churns through connections never fills with dead slots.
struct TCPConnectionTable<Value: AnyObject> {
    private struct Slot {
        var key: TCPConnectionKey
        var value: Value?
    }

    private static var emptyKey: TCPConnectionKey {
        TCPConnectionKey(
            localAddress: .ipv4(IPv4Address(rawValue: 0)), localPort: 0, remoteAddress: .ipv4(IPv4Address(rawValue: 0)),
            remotePort: 0)
    }

    /// The smallest array a table with entries takes.
    private static var minimumCapacity: Int { 8 }

    private var slots: ContiguousArray<Slot> = []
    /// 64 less log2 of the slot count: the hash's top bits are the home slot.
    private var shift = 64
    private let hashKeys: (UInt64, UInt64, UInt64, UInt64)
    /// Entries held.
    private(set) var count = 0

    /// A table whose hash keys come from `generator` (the system's random source unless a test
    /// needs to pick them).
    init<Generator: RandomNumberGenerator>(using generator: inout Generator) {
        hashKeys = (generator.next(), generator.next(), generator.next(), generator.next())
    }

    init() {
        var generator = SystemRandomNumberGenerator()
        self.init(using: &generator)
    }

    var isEmpty: Bool { count == 0 }

    /// The entries' values, in no particular order (a snapshot: the table may change meanwhile).
    var values: [Value] {
        var values: [Value] = []
        values.reserveCapacity(count)
        for slot in slots {
            if let value = slot.value { values.append(value) }
        }
        return values
    }

    /// The entries' keys, in no particular order.
    var keys: [TCPConnectionKey] {
        var keys: [TCPConnectionKey] = []
        keys.reserveCapacity(count)
        for slot in slots where slot.value != nil {
            keys.append(slot.key)
        }
        return keys
    }

    subscript(key: TCPConnectionKey) -> Value? {
        @inline(__always) get {
            guard count > 0 else { return nil }
            let mask = slots.count - 1
            var index = home(of: key)
            while let value = slots[index].value {
                if slots[index].key == key { return value }
                index = (index + 1) & mask
            }
            return nil
        }
        set {
            if let newValue {
                insert(newValue, for: key)
            } else {
                remove(key)
            }
        }
    }

    mutating func removeAll() {
        slots = []
        shift = 64
        count = 0
    }

    /// The slot where `key`'s probe starts: the hash's top bits, as many as the slot count needs.
    private func home(of key: TCPConnectionKey) -> Int {
        switch (key.localAddress, key.remoteAddress) {
        case (.ipv4(let local), .ipv4(let remote)):
            let ports = UInt64(key.localPort) << 16 | UInt64(key.remotePort)
            let hash =
                hashKeys.0 &+ hashKeys.1 &* UInt64(local.rawValue) &+ hashKeys.2 &* UInt64(remote.rawValue)
                &+ hashKeys.3 &* ports
            // `shift` is 64 only while there are no slots, when no probe starts.
            return Int(truncatingIfNeeded: hash >> UInt64(shift & 63))
        }
    }

    private mutating func insert(_ value: Value, for key: TCPConnectionKey) {
        if (count + 1) * 2 > slots.count {
            grow()
        }
        let mask = slots.count - 1
        var index = home(of: key)
        while slots[index].value != nil {
            if slots[index].key == key {
                slots[index].value = value
                return
            }
            index = (index + 1) & mask
        }
        slots[index] = Slot(key: key, value: value)
        count += 1
    }

    private mutating func remove(_ key: TCPConnectionKey) {
        guard count > 0 else { return }
        let mask = slots.count - 1
        var hole = home(of: key)
        while slots[hole].value != nil, slots[hole].key != key {
            hole = (hole + 1) & mask
        }
        guard slots[hole].value != nil else { return }
        count -= 1
        // Backward shift: each entry after the hole whose probe started at or before the hole (on
        // the cyclic path to where it sits) moves into it, until an empty slot ends the run.
        var index = hole
        while true {
            index = (index + 1) & mask
            guard slots[index].value != nil else { break }
            let start = home(of: slots[index].key)
            if (index &- start) & mask >= (index &- hole) & mask {
                slots[hole] = slots[index]
                hole = index
            }
        }
        slots[hole] = Slot(key: Self.emptyKey, value: nil)
    }

    /// Doubles the slots (or makes the first ones) and places every entry again.
    private mutating func grow() {
        let capacity = Swift.max(Self.minimumCapacity, slots.count * 2)
        let old = slots
        slots = ContiguousArray(repeating: Slot(key: Self.emptyKey, value: nil), count: capacity)
        shift = 64 - capacity.trailingZeroBitCount
        let mask = capacity - 1
        for slot in old {
            guard let value = slot.value else { continue }
            var index = home(of: slot.key)
            while slots[index].value != nil {
                index = (index + 1) & mask
            }
            slots[index] = Slot(key: slot.key, value: value)
        }
    }
}
