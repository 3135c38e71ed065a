import NetMPRuntime
import NetMPWire

/// The sender's record of what is in flight when SACK was negotiated (RFC 6675 2, RFC 8985 5): one
/// entry per transmitted segment from SND.UNA to SND.MAX, each with its last transmission time and
/// whether the peer SACKed it, it was deemed lost, or it is being retransmitted. Loss detection
/// (IsLost of RFC 6675 or RACK) marks entries lost; the sender retransmits lost entries first and
/// counts `pipe` from the flags. The entries live in one array that keeps its storage, so a
/// connection in steady state allocates nothing here.
struct SACKScoreboard: Sendable {
    struct Segment: Sendable, Equatable {
        var start: SequenceNumber
        var end: SequenceNumber
        /// When this segment was last (re)transmitted.
        var sentAt: Int64
        /// The number of that transmission: orders sends that share a clock reading.
        var transmission: Int
        var sacked = false
        /// Deemed lost and not yet delivered; `retransmitted` says whether a repair is in flight.
        var lost = false
        /// A retransmission of this segment is in flight (since it was last marked lost).
        var retransmitted = false
        /// Sent more than once: its ACK gives no RTT sample (Karn) and RACK treats it with care.
        var everRetransmitted = false
        /// The connection's delivery state when it was last sent, for rate samples.
        var rate = DeliveryRateSnapshot()

        var length: Int { end - start }
        /// Counts toward `pipe` (RFC 6675 SetPipe): sent, not SACKed, and not lost unless resent.
        var inFlight: Bool { !sacked && (!lost || retransmitted) }
        var needsRetransmission: Bool { lost && !sacked && !retransmitted }
    }

    /// Entries in sequence order, contiguous from the first unacknowledged byte: `storage[head...]`.
    /// Acknowledged entries are dropped by moving `head`, and the array is compacted only when half
    /// of it is dead, so a cumulative ACK costs no copy of the whole window.
    private var storage: [Segment] = []
    private var head = 0
    /// Where the array is compacted: dead entries at its front, at least this many and half of it.
    private static let compactionThreshold = 64
    /// Entries kept before new sends are merged into the last one (tiny segments on a huge window).
    static let capacity = 4096
    /// Entries whose storage an idle connection keeps, so request and response traffic reuses it.
    static let idleCapacity = 16
    /// Transmissions recorded so far.
    private var transmissions = 0

    var isEmpty: Bool { head == storage.count }
    /// Live entries.
    var count: Int { storage.count - head }
    /// Positions of the live entries, for `self[index]`, `markLost(at:)` and `limitEntry(at:to:)`.
    var indices: Range<Int> { head..<storage.count }
    subscript(index: Int) -> Segment { storage[index] }
    /// The live entries (for inspection).
    var segments: ArraySlice<Segment> { storage[head...] }
    /// Bytes SACKed and not yet cumulatively acknowledged.
    private(set) var sackedBytes = 0
    /// Bytes deemed lost and not yet repaired by a retransmission in flight.
    private(set) var lostBytes = 0
    /// Bytes the network holds by RFC 6675's SetPipe, kept up to date with every change.
    private(set) var pipe = 0
    /// Bytes of lost entries whose retransmission is in flight.
    private(set) var retransmittedBytes = 0
    /// Bytes ever marked lost (wrapping): a rate-based controller hears of each ACK's new losses.
    private(set) var markedLostBytes = 0
    /// Nothing SACKed, lost or resent: every entry is an original transmission in sequence order, so
    /// no loss can be inferred from it yet (detectors may skip the walk).
    var isInOrder: Bool { sackedBytes == 0 && lostBytes == 0 && retransmittedBytes == 0 }

    // MARK: Transmissions and acknowledgments

    /// Records a transmission of `start ..< end` at `now` with the delivery state `rate`: bytes
    /// beyond the last entry are a new entry; bytes inside entries mark them retransmitted.
    mutating func sent(
        _ start: SequenceNumber, _ end: SequenceNumber, now: Int64, rate: DeliveryRateSnapshot = DeliveryRateSnapshot()
    ) {
        guard start < end else { return }
        transmissions += 1
        let number = transmissions
        let tail = isEmpty ? start : storage[storage.count - 1].end
        // New data past every entry (the usual send) overlaps none: no search for entries to mark.
        var index = tail <= start ? storage.count : firstIndex(endingAfter: start)
        while index < storage.count, storage[index].start < end {
            modify(index) { segment in
                if segment.lost {
                    segment.retransmitted = true
                }
                segment.everRetransmitted = true
                segment.sentAt = now
                segment.transmission = number
                segment.rate = rate
            }
            index += 1
        }
        guard tail < end else { return }
        if count >= SACKScoreboard.capacity {
            // Bounded: the new bytes join the last entry and take its later time.
            modify(storage.count - 1) { last in
                last.end = end
                last.sentAt = now
                last.transmission = number
                last.rate = rate
            }
        } else {
            let segment = Segment(
                start: SequenceNumber.max(tail, start), end: end, sentAt: now, transmission: number, rate: rate)
            storage.append(segment)
            // `account` for an original transmission, which counts toward `pipe` only.
            pipe += segment.length
        }
    }

    /// Drops everything before the cumulative ACK `ack`, trimming an entry it splits.
    /// Calls `delivered` with each entry (or the acknowledged part of one) that was not SACKed before.
    mutating func acknowledge(through ack: SequenceNumber, _ delivered: (Segment) -> Void) {
        if isEmpty || !(ack < storage[storage.count - 1].end) {
            acknowledgeAll(delivered)
            return
        }
        var removed = 0
        for index in indices {
            let segment = storage[index]
            guard segment.start < ack else { break }
            if !segment.sacked {
                var part = segment
                part.end = SequenceNumber.min(segment.end, ack)
                delivered(part)
            }
            if ack < segment.end {
                modify(index) { $0.start = ack }
                break
            }
            account(segment, sign: -1)
            removed += 1
        }
        head += removed
        if head >= SACKScoreboard.compactionThreshold, head * 2 >= storage.count {
            storage.removeFirst(head)
            head = 0
        }
    }

    /// `acknowledge(through:_:)` with RACK told of each delivered entry (RFC 8985 6.2 steps 1–3).
    mutating func acknowledge(through ack: SequenceNumber, delivering rack: inout RACK, now: Int64) {
        acknowledge(through: ack) { rack.delivered($0, now: now) }
    }

    /// An ACK of everything outstanding (the usual one when a request's answer arrives): every
    /// entry goes, so the counts, which sum the live entries, are zero after it without a walk
    /// that takes each entry out of them.
    @inline(__always) private mutating func acknowledgeAll(_ delivered: (Segment) -> Void) {
        for index in indices where !storage[index].sacked {
            delivered(storage[index])
        }
        sackedBytes = 0
        lostBytes = 0
        pipe = 0
        retransmittedBytes = 0
        // An idle connection keeps no large board (a burst's storage goes).
        if storage.capacity > SACKScoreboard.idleCapacity {
            storage = []
        } else {
            storage.clearKeepingCapacity()
        }
        head = 0
    }

    /// Marks the entries inside `block` SACKed, splitting entries its edges fall in, and calls
    /// `delivered` with each newly SACKed entry. Returns the bytes newly SACKed.
    @discardableResult
    mutating func sack(_ left: SequenceNumber, _ right: SequenceNumber, _ delivered: (Segment) -> Void) -> Int {
        guard left < right else { return 0 }
        split(at: left)
        split(at: right)
        var newly = 0
        var index = firstIndex(endingAfter: left)
        while index < storage.count, !(right < storage[index].end) {
            // An entry straddling an edge stays unSACKed if it could not be split (at the bound).
            if !storage[index].sacked, !(storage[index].start < left) {
                modify(index) { $0.sacked = true }
                newly += storage[index].length
                delivered(storage[index])
            }
            index += 1
        }
        return newly
    }

    /// The receiver dropped data it had SACKed (RFC 2018 8): forget every SACK.
    mutating func forgetSACKs() {
        for index in indices where storage[index].sacked {
            modify(index) { $0.sacked = false }
        }
    }

    /// After a retransmission timeout every entry not SACKed is lost, none resent yet (RFC 6675 5.1).
    mutating func markAllLost() {
        for index in indices where !storage[index].sacked {
            markLost(at: index)
        }
    }

    mutating func removeAll() {
        storage.removeAll(keepingCapacity: true)
        head = 0
        sackedBytes = 0
        lostBytes = 0
        pipe = 0
        retransmittedBytes = 0
    }

    /// The first SACKed entry is the one at SND.UNA: the receiver reneged (it would have ACKed it).
    var headIsSACKed: Bool { !isEmpty && storage[head].sacked }

    // MARK: Loss marking

    /// Marks the entry at `index` lost (it needs a retransmission, none in flight for it now).
    mutating func markLost(at index: Int) {
        guard indices.contains(index), !storage[index].sacked else { return }
        if !storage[index].needsRetransmission {
            markedLostBytes &+= storage[index].length
        }
        modify(index) { segment in
            segment.lost = true
            segment.retransmitted = false
        }
    }

    /// RFC 6675 IsLost for every entry: lost when more than (DupThresh − 1) · SMSS bytes, or
    /// DupThresh discontiguous runs, are SACKed above it. Entries already lost stay as they are, so
    /// a retransmission is not repeated before a timeout (HighRxt's rule).
    mutating func markLostBySACKCount(maximumSegmentSize: Int, duplicateThreshold: Int = 3) {
        var sackedAbove = 0
        var runsAbove = 0
        var previousSACKed = false
        for index in indices.reversed() {
            let segment = storage[index]
            if segment.sacked {
                sackedAbove += segment.length
                if !previousSACKed {
                    runsAbove += 1
                }
                previousSACKed = true
                continue
            }
            previousSACKed = false
            let isLost = sackedAbove > (duplicateThreshold - 1) * maximumSegmentSize || runsAbove >= duplicateThreshold
            if isLost && !segment.lost {
                markLost(at: index)
            }
        }
    }

    /// The first entry waiting for a retransmission (RFC 6675 NextSeg rule 1), if any.
    var firstNeedingRetransmission: Int? {
        guard lostBytes > 0 else { return nil }
        return indices.first { storage[$0].needsRetransmission }
    }

    /// The first entry neither SACKed nor lost below the highest SACKed one (NextSeg rule 3).
    var firstUnSACKedBelowHighestSACKed: Int? {
        guard sackedBytes > 0, let last = indices.last(where: { storage[$0].sacked }) else { return nil }
        return (head..<last).first { !storage[$0].sacked && !storage[$0].lost }
    }

    /// The last entry, when it is neither SACKed nor lost: an unSACKed tail above everything the peer
    /// SACKed, which no loss rule can find (what a rescue retransmission resends).
    var unSACKedTail: Int? {
        guard let last = indices.last, !storage[last].sacked, !storage[last].lost else { return nil }
        return last
    }

    /// The last entry not SACKed: what a tail loss probe resends.
    var lastUnSACKed: Int? {
        indices.last { !storage[$0].sacked }
    }

    // MARK: Helpers

    /// The index of the first entry whose end is after `sequence` (binary search).
    func firstIndex(endingAfter sequence: SequenceNumber) -> Int {
        var low = head
        var high = storage.count
        while low < high {
            let middle = (low + high) / 2
            if sequence < storage[middle].end {
                high = middle
            } else {
                low = middle + 1
            }
        }
        return low
    }

    /// Cuts the entry at `index` to at most `length` bytes (the rest becomes an entry of its own), so
    /// a retransmission of it fits one segment.
    mutating func limitEntry(at index: Int, to length: Int) {
        guard indices.contains(index), length > 0, storage[index].length > length else { return }
        split(at: storage[index].start + length)
    }

    /// Cuts the last `length` bytes of the entry at `index` into an entry of their own (when it is
    /// longer) and returns the position of the entry holding them: what a rescue retransmission
    /// resends ends at the highest byte outstanding.
    mutating func limitEntryToItsEnd(at index: Int, length: Int) -> Int {
        guard indices.contains(index), length > 0, storage[index].length > length else { return index }
        let count = self.count
        split(at: storage[index].end - length)
        return self.count > count ? index + 1 : index
    }

    /// Splits the entry that `sequence` falls strictly inside into two with the same state.
    private mutating func split(at sequence: SequenceNumber) {
        let index = firstIndex(endingAfter: sequence)
        guard index < storage.count, storage[index].start < sequence, count < 2 * SACKScoreboard.capacity
        else { return }
        var tail = storage[index]
        tail.start = sequence
        storage[index].end = sequence
        storage.insert(tail, at: index + 1)
    }

    /// Changes the entry at `index`, keeping the byte counts in step.
    private mutating func modify(_ index: Int, _ change: (inout Segment) -> Void) {
        account(storage[index], sign: -1)
        change(&storage[index])
        account(storage[index], sign: 1)
    }

    /// Adds (`sign` 1) or removes (−1) an entry's bytes from the counts its state puts it in.
    private mutating func account(_ segment: Segment, sign: Int) {
        let bytes = segment.length * sign
        if segment.sacked {
            sackedBytes += bytes
        }
        if segment.needsRetransmission {
            lostBytes += bytes
        }
        if segment.inFlight {
            pipe += bytes
        }
        if segment.lost && segment.retransmitted && !segment.sacked {
            retransmittedBytes += bytes
        }
    }
}
