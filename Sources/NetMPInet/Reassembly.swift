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
    /// Sorted by start, never overlapping: a later fragment only fills what is still missing.
    var pieces: [FragmentPiece] = []
    var totalLength: Int?
    /// The fragment at offset 0 (its header starts the datagram and is quoted in errors).
    var first: InboundDatagram?
    var bytes = 0
    let deadline: Int64

    init(deadline: Int64) { self.deadline = deadline }

    var isComplete: Bool {
        guard let totalLength, first != nil else { return false }
        var covered = 0
        for piece in pieces {
            if piece.start > covered { return false }
            covered = Swift.max(covered, piece.end)
        }
        return covered >= totalLength
    }
}

/// IPv4 reassembly (RFC 791, RFC 815 holes): out-of-order, duplicate and overlapping fragments
/// (the first copy of a byte wins), limits on bytes, datagrams and fragments, and a timeout
/// that sends ICMP time exceeded when the first fragment was seen.
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
            while reassembly.count >= settings.reassemblyMaxDatagrams, let oldest = oldestReassembly() {
                dropReassembly(oldest)
            }
            entry = ReassemblyEntry(deadline: now &+ settings.reassemblyTimeout.nanoseconds)
            reassembly[key] = entry
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
        if start == 0 && entry.first == nil { entry.first = datagram }

        // What of [start, end) is still missing.
        var missing: [(Int, Int)] = [(start, end)]
        for piece in entry.pieces {
            var next: [(Int, Int)] = []
            for (low, high) in missing {
                if piece.end <= low || piece.start >= high {
                    next.append((low, high))
                    continue
                }
                if low < piece.start { next.append((low, piece.start)) }
                if piece.end < high { next.append((piece.end, high)) }
            }
            missing = next
            if missing.isEmpty { break }
        }
        if missing.isEmpty && length > 0 { count(.fragmentsDuplicate) }
        var added = 0
        for (low, high) in missing where high > low {
            entry.pieces.append(
                FragmentPiece(start: low, end: high, chunk: datagram.chunk, offset: datagram.payloadStart + low - start)
            )
            added += high - low
        }
        if added > 0 { entry.pieces.sort { $0.start < $1.start } }
        entry.bytes += added
        reassemblyBytes += added
        if entry.pieces.count > settings.reassemblyMaxFragments {
            dropReassembly(key)
            return
        }
        while reassemblyBytes > settings.reassemblyMaxBytes, let oldest = oldestReassembly() {
            dropReassembly(oldest)
        }
        guard reassembly[key] === entry, entry.isComplete, let first = entry.first, let total = entry.totalLength
        else { return }
        reassembly[key] = nil
        reassemblyBytes -= entry.bytes
        let chunk = ChunkPool.shared.take(atLeast: total, headroom: InetThread.headroom)
        for piece in entry.pieces where piece.start < total {
            let n = Swift.min(piece.end, total) - piece.start
            (chunk.base + InetThread.headroom + piece.start).copyMemory(
                from: piece.chunk.base + piece.offset, byteCount: n)
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
        deliver(
            InboundDatagram(
                header: whole, chunk: chunk, ipStart: InetThread.linkHeaderLength, payloadStart: InetThread.headroom,
                payloadEnd: InetThread.headroom + total, interfaceIndex: first.interfaceIndex,
                linkBroadcast: first.linkBroadcast, destinationIsBroadcast: first.destinationIsBroadcast))
    }

    /// The datagram that started first (ties broken by key, so a seed replays the same choice).
    private func oldestReassembly() -> FragmentKey? {
        reassembly.min {
            ($0.value.deadline, $0.key.identification, $0.key.source, $0.key.destination)
                < ($1.value.deadline, $1.key.identification, $1.key.source, $1.key.destination)
        }?.key
    }

    private func dropReassembly(_ key: FragmentKey) {
        guard let entry = reassembly.removeValue(forKey: key) else { return }
        reassemblyBytes -= entry.bytes
        count(.reassemblyDropped)
    }

    func reassemblyTimedOut() {
        let time = now
        // Sorted so that a seed replays the same order of ICMP errors.
        let expired = reassembly.filter { $0.value.deadline <= time }.sorted {
            ($0.value.deadline, $0.key.identification, $0.key.source) < (
                $1.value.deadline, $1.key.identification, $1.key.source
            )
        }
        for (key, entry) in expired {
            reassembly[key] = nil
            reassemblyBytes -= entry.bytes
            count(.reassemblyTimeouts)
            if let first = entry.first {
                sendICMPError(.timeExceeded(code: .fragmentReassemblyTimeExceeded), about: first)
            }
        }
        if let next = reassembly.values.map(\.deadline).min() { reassemblyTimer.arm(at: next) }
    }
}
