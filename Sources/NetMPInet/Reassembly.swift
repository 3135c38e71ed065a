import NetMPInterfaces
import NetMPRuntime
import NetMPSockets
import NetMPWire

package struct FragmentKey: Hashable {
    var source: IPv4Address
    var destination: IPv4Address
    var identification: UInt16
    var protocolNumber: UInt8
}

/// Bytes `start ..< end` of a datagram's payload, held at `offset` in `chunk` (zero-copy).
package struct FragmentPiece {
    var start: Int
    var end: Int
    var chunk: ByteChunk
    var offset: Int
}

package final class ReassemblyEntry {
    /// One per fragment, sorted by start, never overlapping (an overlap drops the datagram).
    var pieces: [FragmentPiece] = []
    var totalLength: Int?
    /// The fragment at offset 0 (its header starts the datagram and is quoted in errors).
    var first: InboundDatagram?
    /// Payload bytes held (the pieces do not overlap, so this is what is covered).
    var covered = 0
    /// Bytes of receive chunks held alive: what the limits count (Linux's truesize).
    var bytes = 0
    let deadline: Int64

    init(deadline: Int64) { self.deadline = deadline }

    var isComplete: Bool {
        guard let totalLength, first != nil else { return false }
        return covered == totalLength
    }
}

/// IPv4 reassembly (RFC 791): out-of-order and exactly duplicated fragments; any other overlap
/// drops the whole datagram (RFC 5722's rule, Linux since the 2018 fragment CVEs). Memory is
/// counted as the receive chunks fragments keep alive, with fair per-source limits
/// (`FragmentLimits.swift`), and a timeout that sends ICMP time exceeded when the first
/// fragment was seen. The whole datagram goes to the thread its 4-tuple hashes to.
extension InetThread {
    /// The largest IPv4 payload.
    static let maximumPayload = 65535 - 20

    func reassemble(_ datagram: InboundDatagram) {
        count(.fragmentsIn)
        let header = datagram.header
        let start = header.fragmentByteOffset
        let length = datagram.payloadEnd - datagram.payloadStart
        let end = start + length
        guard end <= InetThread.maximumPayload, length > 0 || !header.moreFragments,
            !header.moreFragments || length % 8 == 0
        else {
            count(.reassemblyDropped)
            return
        }
        let key = FragmentKey(
            source: header.source, destination: header.destination, identification: header.identification,
            protocolNumber: header.protocol.rawValue)
        let settings = config.settings
        let entry: ReassemblyEntry
        if let existing = reassembly[key] {
            entry = existing
        } else {
            guard admitReassembly(from: key.source) else { return }
            entry = ReassemblyEntry(deadline: now &+ settings.reassemblyTimeout.nanoseconds)
            reassembly[key] = entry
            chargeReassembly(key.source, datagrams: 1)
            if !reassemblyTimer.isArmed || reassemblyTimer.deadline > entry.deadline {
                reassemblyTimer.arm(at: entry.deadline)
            }
        }
        if !header.moreFragments {
            if let total = entry.totalLength, total != end {
                dropReassembly(key)
                return
            }
            if entry.pieces.contains(where: { $0.end > end }) {
                dropReassembly(key)
                return
            }
            entry.totalLength = end
        } else if let total = entry.totalLength, end > total {
            dropReassembly(key)
            return
        }
        // Where it goes among the sorted pieces; an exact duplicate is dropped alone, any other
        // overlap with a neighbour drops the datagram.
        var position = entry.pieces.count
        while position > 0 && entry.pieces[position - 1].start >= start { position -= 1 }
        if position < entry.pieces.count, entry.pieces[position].start == start, entry.pieces[position].end == end {
            count(.fragmentsDuplicate)
            return
        }
        let overlapsBefore = position > 0 && entry.pieces[position - 1].end > start
        let overlapsAfter = position < entry.pieces.count && entry.pieces[position].start < end
        if overlapsBefore || overlapsAfter {
            count(.fragmentsOverlapping)
            dropReassembly(key)
            return
        }
        if length > 0 {
            entry.pieces.insert(
                FragmentPiece(start: start, end: end, chunk: datagram.chunk, offset: datagram.payloadStart),
                at: position)
            entry.covered += length
            entry.bytes += datagram.chunk.capacity
            chargeReassembly(key.source, bytes: datagram.chunk.capacity)
        }
        if start == 0 && entry.first == nil { entry.first = datagram }
        if entry.pieces.count > settings.reassemblyMaxFragments {
            dropReassembly(key)
            return
        }
        enforceReassemblyBytes(after: key.source)
        guard reassembly[key] === entry, entry.isComplete, let first = entry.first, let total = entry.totalLength
        else { return }
        forgetReassembly(key, entry)
        let chunk = ChunkPool.shared.take(atLeast: total, headroom: InetThread.headroom)
        for piece in entry.pieces {
            (chunk.base + InetThread.headroom + piece.start).copyMemory(
                from: piece.chunk.base + piece.offset, byteCount: piece.end - piece.start)
        }
        chunk.filled = InetThread.headroom + total
        var whole = first.header
        whole.totalLength = UInt16(truncatingIfNeeded: InetThread.ipHeaderLength + total)
        whole.moreFragments = false
        whole.fragmentOffset = 0
        guard
            (try? whole.emit(into: mutableRegion(chunk, InetThread.linkHeaderLength, InetThread.ipHeaderLength)))
                != nil
        else { return }
        count(.reassembled)
        let assembled = InboundDatagram(
            header: whole, chunk: chunk, ipStart: InetThread.linkHeaderLength, payloadStart: InetThread.headroom,
            payloadEnd: InetThread.headroom + total, interfaceIndex: first.interfaceIndex,
            linkBroadcast: first.linkBroadcast, destinationIsBroadcast: first.destinationIsBroadcast)
        dispatchReassembled(assembled)
    }

    /// Delivers a reassembled datagram on the thread its full 4-tuple hashes to (fragments
    /// hash by addresses alone), so a flow reaches the thread that owns it.
    private func dispatchReassembled(_ datagram: InboundDatagram) {
        let target = stack.threadIndex(ipPacket: datagram.datagramBytes)
        guard target != index, target < stack.perThread.count else {
            deliver(datagram)
            return
        }
        let owner = stack.perThread[target]
        owner.thread.send {
            owner.deliver(datagram)
            owner.flushDeliveries()
        }
    }

    private func forgetReassembly(_ key: FragmentKey, _ entry: ReassemblyEntry) {
        reassembly[key] = nil
        chargeReassembly(key.source, datagrams: -1, bytes: -entry.bytes)
    }

    func dropReassembly(_ key: FragmentKey) {
        guard let entry = reassembly[key] else { return }
        forgetReassembly(key, entry)
        count(.reassemblyDropped)
    }

    func reassemblyTimedOut() {
        let time = now
        // Sorted by every key field so that a seed replays the same order of ICMP errors.
        let expired = reassembly.filter { $0.value.deadline <= time }.sorted {
            ReassemblyOrder($0.value.deadline, $0.key) < ReassemblyOrder($1.value.deadline, $1.key)
        }
        for (key, entry) in expired {
            forgetReassembly(key, entry)
            count(.reassemblyTimeouts)
            if let first = entry.first {
                sendICMPError(.timeExceeded(code: .fragmentReassemblyTimeExceeded), about: first)
            }
        }
        if let next = reassembly.values.map(\.deadline).min() { reassemblyTimer.arm(at: next) }
    }
}
