/// Received segments that arrived ahead of a hole, kept sorted and never overlapping (the first copy
/// of a byte wins), bounded in segments and bytes; merged back when the hole fills.
struct OutOfOrderQueue<Payload: TCPPayload> {
    struct Entry {
        var start: SequenceNumber
        var payload: Payload
        var end: SequenceNumber { start + payload.count }
    }

    private(set) var entries: [Entry] = []
    private(set) var byteCount = 0
    /// The FIN's sequence number when it arrived out of order.
    var finSequence: SequenceNumber?

    var isEmpty: Bool { entries.isEmpty && finSequence == nil }

    /// Stores the bytes of `payload` (starting at `start`) that no entry holds yet, within the
    /// bounds; bytes over the bounds are dropped and will be retransmitted. Returns the first range
    /// of bytes that an entry already held (a duplicate, for D-SACK), if any.
    @discardableResult
    mutating func insert(
        _ payload: Payload, at start: SequenceNumber, maximumSegments: Int, maximumBytes: Int
    ) -> (left: SequenceNumber, right: SequenceNumber)? {
        var duplicate: (left: SequenceNumber, right: SequenceNumber)?
        var start = start
        var payload = payload
        var index = firstIndex(endingAfter: start)
        while payload.count > 0 {
            while index < entries.count, !(start < entries[index].end) {
                index += 1
            }
            var piece = payload
            if index < entries.count {
                let next = entries[index]
                if !(start < next.start) {
                    // Starts inside an entry: skip what it already holds.
                    let skip = next.end - start
                    if duplicate == nil {
                        duplicate = (start, start + Swift.min(skip, payload.count))
                    }
                    payload = payload.droppingFirst(skip)
                    start = next.end
                    continue
                }
                piece = payload.keepingFirst(next.start - start)
            }
            guard entries.count < maximumSegments, byteCount + piece.count <= maximumBytes else { return duplicate }
            entries.insert(Entry(start: start, payload: piece), at: index)
            byteCount += piece.count
            payload = payload.droppingFirst(piece.count)
            start += piece.count
            index += 1
        }
        return duplicate
    }

    /// The first entry that ends after `sequence` (entries are ordered and disjoint): a binary
    /// search, and for the usual arrival during recovery, after the last entry, one comparison.
    private func firstIndex(endingAfter sequence: SequenceNumber) -> Int {
        guard let last = entries.last, sequence < last.end else { return entries.count }
        var low = 0
        var high = entries.count - 1
        while low < high {
            let middle = low + (high - low) / 2
            if sequence < entries[middle].end { high = middle } else { low = middle + 1 }
        }
        return low
    }

    /// Drops the highest entries until at most `bytes` are held (Linux's `tcp_prune_ofo_queue`:
    /// what arrived last is the cheapest to lose, the peer sends it again). An out-of-order FIN
    /// is forgotten with them. Returns the bytes dropped.
    @discardableResult
    mutating func prune(toAtMost bytes: Int) -> Int {
        var dropped = 0
        while byteCount > Swift.max(0, bytes), let last = entries.popLast() {
            byteCount -= last.payload.count
            dropped += last.payload.count
        }
        if dropped > 0 { finSequence = nil }
        return dropped
    }

    /// Removes and passes to `deliver` the entries that now continue the stream at `next`, in order,
    /// none past `limit` (the FIN's sequence number), and returns the sequence number after the
    /// last byte delivered.
    mutating func drain(
        from next: SequenceNumber, upTo limit: SequenceNumber? = nil, _ deliver: (Payload) -> Void
    ) -> SequenceNumber {
        var next = next
        var removed = 0
        for entry in entries {
            guard !(next < entry.start) else { break }
            if let limit, !(next < limit) { break }
            removed += 1
            byteCount -= entry.payload.count
            if next < entry.end {
                var fresh = entry.payload.droppingFirst(next - entry.start)
                var end = entry.end
                if let limit, limit < end {
                    fresh = fresh.keepingFirst(limit - next)
                    end = limit
                }
                deliver(fresh)
                next = end
            }
        }
        if removed > 0 {
            entries.removeFirst(removed)
        }
        return next
    }

    mutating func removeAll() {
        entries.removeAll()
        byteCount = 0
        finSequence = nil
    }
}

extension OutOfOrderQueue: Sendable where Payload: Sendable {}
extension OutOfOrderQueue.Entry: Sendable where Payload: Sendable {}
