import CNetMP
import Glibc

/// What objects really cost on the heap (the usable size malloc gave their blocks), and what the
/// process holds, for memory reports such as the bytes per idle connection.
package enum HeapFootprint {
    /// The bytes malloc gave the block of `object` (its instance, not what it points to).
    package static func of(_ object: AnyObject) -> Int {
        netmp_malloc_usable_size(UnsafeRawPointer(Unmanaged.passUnretained(object).toOpaque()))
    }

    /// The block of a contiguous array's storage: its elements plus the array header (two
    /// words of object header, count and capacity), or nothing when it has no storage.
    package static func of<Element>(_ array: ContiguousArray<Element>) -> Int {
        array.capacity == 0 ? 0 : 32 + array.capacity * MemoryLayout<Element>.stride
    }

    package static func of<Element>(_ array: [Element]) -> Int {
        array.capacity == 0 ? 0 : 32 + array.capacity * MemoryLayout<Element>.stride
    }

    /// Heap bytes the process has handed out and not had back.
    package static var inUse: Int { Int(truncatingIfNeeded: netmp_malloc_in_use()) }

    /// The resident set size in bytes (/proc/self/statm's second field), 0 when unreadable.
    package static var residentBytes: Int {
        guard let file = fopen("/proc/self/statm", "r") else { return 0 }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 256)
        guard fgets(&line, Int32(line.count), file) != nil else { return 0 }
        let fields = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .split(separator: " ")
        guard fields.count >= 2, let pages = Int(fields[1]) else { return 0 }
        return pages &* Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

extension NetLock {
    /// The lock object and its mutex.
    package var footprint: Int {
        HeapFootprint.of(self) + netmp_malloc_usable_size(UnsafeRawPointer(mutex))
    }
}

extension RingQueue {
    /// The ring's storage block (nothing while it keeps at most one element inline).
    package var storageFootprint: Int { HeapFootprint.of(storage) }
}

extension LockedValue {
    /// The object (with the value inside it) and its lock.
    package var footprint: Int { HeapFootprint.of(self) + lock.footprint }
}
