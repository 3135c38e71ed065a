import NetMPWire

/// The receiver's half of SACK (RFC 2018 4, RFC 2883): which out-of-order blocks to report, most
/// recently received first, and a duplicate segment to report once in the first block (D-SACK).
/// Everything is inline: building the blocks of an ACK allocates nothing.
struct SACKReporter: Sendable {
    /// The first bytes of the latest out-of-order arrivals, most recent first.
    private var recent0: SequenceNumber?
    private var recent1: SequenceNumber?
    private var recent2: SequenceNumber?
    private var recent3: SequenceNumber?
    /// A duplicate received since the last ACK, reported once as the first block.
    private(set) var duplicate: SACKBlock?

    /// An out-of-order segment starting at `start` arrived.
    mutating func received(at start: SequenceNumber) {
        if recent0 == start {
            return
        }
        recent3 = recent2
        recent2 = recent1
        recent1 = recent0
        recent0 = start
    }

    /// Bytes `left ..< right` arrived again (RFC 2883): the first of them since the last ACK wins.
    mutating func duplicateReceived(_ left: SequenceNumber, _ right: SequenceNumber) {
        guard duplicate == nil, left < right else { return }
        duplicate = SACKBlock(left: left.rawValue, right: right.rawValue)
    }

    /// An ACK went out: a D-SACK is reported only once.
    mutating func acknowledgmentSent() {
        duplicate = nil
    }

    mutating func removeAll() {
        self = SACKReporter()
    }

    /// Whether an ACK now carries any block: the usual answer, no (nothing out of order, no
    /// duplicate), is then had without the call that builds them.
    @inline(__always)
    func hasBlocks<Payload>(for queue: OutOfOrderQueue<Payload>) -> Bool {
        !queue.entries.isEmpty || duplicate != nil
    }

    /// The blocks for an ACK: the D-SACK first, then the block holding each recent arrival, most
    /// recent first, then the remaining blocks in sequence order, at most `limit` and no repeats.
    func blocks<Payload>(
        for queue: OutOfOrderQueue<Payload>, receiveNext: SequenceNumber, limit: Int
    ) -> SACKBlocks {
        var blocks = SACKBlocks()
        guard hasBlocks(for: queue) else { return blocks }
        if let duplicate, limit > 0 {
            blocks.append(duplicate)
        }
        for position in 0..<4 {
            guard blocks.count < limit, let anchor = recent(position), !(anchor < receiveNext),
                let block = SACKReporter.block(containing: anchor, in: queue)
            else { continue }
            if !SACKReporter.holds(blocks, block, skippingFirst: duplicate != nil) {
                blocks.append(block)
            }
        }
        var index = 0
        while blocks.count < limit, index < queue.entries.count {
            let start = queue.entries[index].start
            var end = queue.entries[index].end
            index += 1
            while index < queue.entries.count, queue.entries[index].start == end {
                end = queue.entries[index].end
                index += 1
            }
            let block = SACKBlock(left: start.rawValue, right: end.rawValue)
            if !SACKReporter.holds(blocks, block, skippingFirst: duplicate != nil) {
                blocks.append(block)
            }
        }
        return blocks
    }

    private func recent(_ position: Int) -> SequenceNumber? {
        switch position {
        case 0: return recent0
        case 1: return recent1
        case 2: return recent2
        default: return recent3
        }
    }

    /// The contiguous run of queue entries that holds `sequence`, as a block.
    private static func block<Payload>(containing sequence: SequenceNumber, in queue: OutOfOrderQueue<Payload>)
        -> SACKBlock?
    {
        let entries = queue.entries
        guard let hit = entries.firstIndex(where: { sequence.isIn($0.start, $0.end) }) else { return nil }
        var low = hit
        while low > 0, entries[low - 1].end == entries[low].start {
            low -= 1
        }
        var high = hit
        while high + 1 < entries.count, entries[high + 1].start == entries[high].end {
            high += 1
        }
        return SACKBlock(left: entries[low].start.rawValue, right: entries[high].end.rawValue)
    }

    private static func holds(_ blocks: SACKBlocks, _ block: SACKBlock, skippingFirst: Bool) -> Bool {
        blocks.dropFirst(skippingFirst ? 1 : 0).contains(block)
    }
}
