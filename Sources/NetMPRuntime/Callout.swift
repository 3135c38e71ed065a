/// A timer owned by one protocol thread (DragonFly's callout). Arm, re-arm and cancel only on
/// the owner thread; the action runs there when the deadline passes.
///
/// Arming is O(log n) (a heap push); cancelling is O(1): the heap entry goes stale and is
/// skipped when it surfaces.
public final class Callout: @unchecked Sendable {
    /// Not counted: a callout is used only on its thread (`assertOnThread`), which is alive
    /// while it runs code; a counted unowned reference cost an atomic increment and decrement on
    /// every arm and cancel (a connection arms a dozen times).
    public unowned(unsafe) let thread: ProtocolThread
    private let action: () -> Void
    /// Matches the heap entry that is live; any other entry for this callout is stale. (These
    /// fields are the owner thread's, plain reads and stores: no runtime exclusivity check.)
    @exclusivity(unchecked) fileprivate(set) var generation: UInt64 = 0
    @exclusivity(unchecked) public private(set) var isArmed = false
    @exclusivity(unchecked) public private(set) var deadline: Int64 = 0

    /// Creates a timer on `thread`; `action` runs on that thread.
    public init(on thread: ProtocolThread, action: @escaping () -> Void) {
        self.thread = thread
        self.action = action
    }

    /// Arms (or re-arms) the timer for an absolute time on the thread's clock.
    public func arm(at deadline: Int64) {
        thread.assertOnThread()
        if isArmed { thread.timers.noteStale() }
        generation &+= 1
        isArmed = true
        self.deadline = deadline
        thread.timers.push(
            TimerEntry(deadline: deadline, sequence: thread.nextTimerSequence(), generation: generation, callout: self))
    }

    /// Arms the timer for `deadline` unless it is armed for then or earlier already (a lazy
    /// re-arm; here, where its fields are read without the runtime exclusivity check).
    public func arm(notAfter deadline: Int64) {
        if isArmed && self.deadline <= deadline { return }
        arm(at: deadline)
    }

    /// Arms (or re-arms) the timer `nanoseconds` from now.
    public func arm(after nanoseconds: Int64) {
        arm(at: thread.now &+ Swift.max(0, nanoseconds))
    }

    /// Cancels the timer if armed; it will not fire.
    public func cancel() {
        thread.assertOnThread()
        guard isArmed else { return }
        isArmed = false
        generation &+= 1
        thread.timers.noteStale()
    }

    func fireIfCurrent(_ entry: TimerEntry) {
        guard isArmed, entry.generation == generation else { return }
        isArmed = false
        action()
    }
}

package struct TimerEntry {
    var deadline: Int64
    var sequence: UInt64
    var generation: UInt64
    var callout: Callout

    @inline(__always) func precedes(_ other: TimerEntry) -> Bool {
        deadline != other.deadline ? deadline < other.deadline : sequence < other.sequence
    }

    var isLive: Bool { callout.isArmed && callout.generation == generation }
}

/// A binary min-heap of timer entries ordered by (deadline, arming order).
package struct TimerHeap {
    private var entries: [TimerEntry] = []
    private var staleCount = 0

    var isEmpty: Bool { entries.isEmpty }

    mutating func push(_ entry: TimerEntry) {
        entries.append(entry)
        siftUp(entries.count - 1)
        if staleCount > 64 && staleCount > entries.count / 2 { compact() }
    }

    mutating func noteStale() { staleCount += 1 }

    /// The earliest live deadline, dropping stale entries from the top.
    package mutating func nextDeadline() -> Int64? {
        while let top = entries.first {
            if top.isLive { return top.deadline }
            _ = popTop()
            staleCount = Swift.max(0, staleCount - 1)
        }
        return nil
    }

    /// Removes and returns the earliest entry due at `now`, live or not.
    mutating func popDue(now: Int64) -> TimerEntry? {
        guard let top = entries.first, top.deadline <= now else { return nil }
        return popTop()
    }

    private mutating func popTop() -> TimerEntry? {
        guard !entries.isEmpty else { return nil }
        let top = entries[0]
        let last = entries.removeLast()
        if !entries.isEmpty {
            entries[0] = last
            siftDown(0)
        }
        return top
    }

    private mutating func compact() {
        entries.removeAll { !$0.isLive }
        staleCount = 0
        if entries.count > 1 {
            for index in stride(from: entries.count / 2 - 1, through: 0, by: -1) { siftDown(index) }
        }
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child].precedes(entries[parent]) else { return }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < entries.count else { return }
            var smallest = left
            let right = left + 1
            if right < entries.count && entries[right].precedes(entries[left]) { smallest = right }
            guard entries[smallest].precedes(entries[parent]) else { return }
            entries.swapAt(smallest, parent)
            parent = smallest
        }
    }
}
