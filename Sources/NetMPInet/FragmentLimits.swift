import NetMPInterfaces
import NetMPRuntime
import NetMPSockets
import NetMPWire

/// What one source holds in reassembly on one protocol thread.
package struct FragmentSourceUsage {
    var datagrams = 0
    /// Bytes of receive chunks its fragments keep alive.
    var bytes = 0
}

/// Fair limits on reassembly (Linux's per-peer accounting, max-min fair): one source holds at
/// most a share of the datagrams and bytes, and makes room only at its own expense; when the
/// table is full a newcomer takes a slot only from a source holding strictly more than it would,
/// else the newcomer is dropped. So spoofed fragments, from one source or from many, cannot
/// flush the partial datagrams of others: at worst they wait for the timeout, as on Linux.
extension InetThread {
    /// Whether a new datagram from `source` may start; evicts to make room when fair.
    func admitReassembly(from source: IPv4Address) -> Bool {
        let settings = config.settings
        let own = reassemblySources[source] ?? FragmentSourceUsage()
        if own.datagrams >= Swift.max(1, settings.reassemblyMaxDatagramsPerSource) {
            guard let oldest = oldestReassembly(from: source) else { return false }
            dropReassembly(oldest)
        }
        while reassembly.count >= settings.reassemblyMaxDatagrams {
            let mine = reassemblySources[source]?.datagrams ?? 0
            guard let (richest, usage) = richestSource(by: \.datagrams), usage.datagrams > mine + 1,
                let victim = oldestReassembly(from: richest)
            else {
                count(.reassemblyRefused)
                return false
            }
            dropReassembly(victim)
        }
        return true
    }

    /// Brings bytes under the per-source and the per-thread limits after `source` added some:
    /// first at `source`'s expense, then the richest source's.
    func enforceReassemblyBytes(after source: IPv4Address) {
        let settings = config.settings
        while let usage = reassemblySources[source], usage.bytes > settings.reassemblyMaxBytesPerSource,
            let oldest = oldestReassembly(from: source)
        {
            dropReassembly(oldest)
        }
        while reassemblyBytes > settings.reassemblyMaxBytes, let (richest, _) = richestSource(by: \.bytes),
            let oldest = oldestReassembly(from: richest)
        {
            dropReassembly(oldest)
        }
    }

    /// The source holding the most (ties: the lowest address, so a seed replays the choice).
    private func richestSource(by measure: KeyPath<FragmentSourceUsage, Int>) -> (IPv4Address, FragmentSourceUsage)? {
        reassemblySources.max {
            ($0.value[keyPath: measure], $1.key) < ($1.value[keyPath: measure], $0.key)
        }.map { ($0.key, $0.value) }
    }

    /// The datagram of `source` that started first; every key field breaks ties.
    private func oldestReassembly(from source: IPv4Address) -> FragmentKey? {
        reassembly.filter { $0.key.source == source }.min {
            ReassemblyOrder($0.value.deadline, $0.key) < ReassemblyOrder($1.value.deadline, $1.key)
        }?.key
    }

    /// Charges or refunds `source` for a datagram or for bytes.
    func chargeReassembly(_ source: IPv4Address, datagrams: Int = 0, bytes: Int = 0) {
        var usage = reassemblySources[source] ?? FragmentSourceUsage()
        usage.datagrams += datagrams
        usage.bytes += bytes
        reassemblyBytes += bytes
        reassemblySources[source] = usage.datagrams > 0 || usage.bytes > 0 ? usage : nil
    }
}

/// A total order on reassembly entries: deadline, then every field of the key.
package struct ReassemblyOrder: Comparable {
    var deadline: Int64
    var key: FragmentKey

    init(_ deadline: Int64, _ key: FragmentKey) {
        self.deadline = deadline
        self.key = key
    }

    package static func < (a: ReassemblyOrder, b: ReassemblyOrder) -> Bool {
        (a.deadline, a.key.identification, a.key.source, a.key.destination, a.key.protocolNumber)
            < (b.deadline, b.key.identification, b.key.source, b.key.destination, b.key.protocolNumber)
    }
}
