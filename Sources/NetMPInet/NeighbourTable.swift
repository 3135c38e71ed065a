import NetMPInterfaces
import NetMPRuntime
import NetMPSockets
import NetMPWire
import Synchronization

/// One neighbour (ARP) entry. Touched only under its stripe's lock.
package final class NeighbourEntry {
    enum State {
        /// No hardware address yet: packets wait, broadcast requests are retried.
        case incomplete
        /// Confirmed until `expires`.
        case reachable
        /// Expired while in use: the old address is still used while unicast requests re-probe
        /// it (RFC 1122 2.3.2.1, Linux's STALE → PROBE), so a refresh never stalls a flow.
        case probe
    }

    var state = State.incomplete
    var mac = MACAddress.zero
    var expires: Int64 = 0
    /// When the sweep next retries (incomplete and probe entries).
    var nextAttempt: Int64 = 0
    var requests = 0
    var pending: [Frame] = []
    /// Matches the entry's live slot in its stripe's age order; older slots are stale.
    var stamp: UInt64 = 0

    var mappedAddress: MACAddress? { state == .incomplete ? nil : mac }
}

/// A protocol thread's lock-free view of reachable neighbours: a small direct-mapped copy of
/// mappings it used, each valid while its stripe's generation is unchanged and the mapping has
/// not expired. Any change in a stripe (learning, eviction, expiry) bumps the generation, so a
/// stale copy is never used; a miss takes the stripe's lock.
package struct NeighbourCache {
    struct Slot {
        var key: ARPKey
        var mac: MACAddress
        var expires: Int64
        var generation: UInt64
    }

    static let size = 256
    var slots = [Slot?](repeating: nil, count: NeighbourCache.size)
}

/// What `NeighbourTable.output` tells the sender to do.
package enum NeighbourOutput: Equatable {
    /// Write this address into the frame and send it.
    case send(MACAddress)
    /// Send with this (expired) address, and send a unicast ARP request to it.
    case sendAndProbe(MACAddress)
    /// The frame waits in the entry; `broadcastRequest`: send the first ARP request now.
    /// `dropped` frames were given up (the entry's queue overflowed, or an entry was evicted).
    case queued(broadcastRequest: Bool, dropped: Int, evicted: Int)
}

/// What a sweep found to do.
package struct NeighbourSweep {
    /// ARP requests to send, in a fixed order: `mac` nil broadcast, else unicast (a probe).
    var requests: [(key: ARPKey, mac: MACAddress?)] = []
    var failures = 0
    var droppedFrames = 0
    var removed = 0
}

/// The stack's one neighbour table (RFC 826), shared by every protocol thread.
///
/// Lock striping rather than an immutable snapshot behind an atomic reference: a snapshot costs
/// a copy of the whole table on every write, and an on-link attacker decides how often we write
/// (every request naming our address, every address we are made to resolve). With 16 stripes a
/// write is O(1) under one short lock and threads resolving different neighbours rarely meet.
/// Reads on the send path take no lock: each thread keeps a `NeighbourCache` validated by the
/// stripe's generation; only a miss takes the stripe's lock. One table per stack, not per thread:
/// per-thread copies multiply memory and ARP traffic by the core count.
///
/// Bounded on both learning paths (sending to a new neighbour; a request naming our address):
/// each stripe holds at most its share of `limit`; a full stripe evicts its oldest entry,
/// whatever its state, in O(1) amortized (an age-ordered ring with lazily dropped stale slots).
/// A periodic sweep retries resolutions, re-probes, and removes failed and long-unused entries.
/// Stripes are chosen by a seeded hash, so an attacker cannot aim at one stripe.
package final class NeighbourTable: @unchecked Sendable {
    static let stripeCount = 16

    private final class Stripe {
        let lock = NetLock()
        var entries: [ARPKey: NeighbourEntry] = [:]
        /// (key, stamp) oldest first; a slot whose stamp is not its entry's is stale.
        var order = RingQueue<(key: ARPKey, stamp: UInt64)>()
        var nextStamp: UInt64 = 0
        /// Bumped (under the lock) whenever a mapping in this stripe changes or goes.
        let generation = Atomic<UInt64>(0)

        func changed() { generation.add(1, ordering: .releasing) }

        func touch(_ entry: NeighbourEntry, key: ARPKey) {
            nextStamp &+= 1
            entry.stamp = nextStamp
            order.append((key, nextStamp))
            // Stale slots are dropped when they outnumber live ones: amortized O(1).
            if order.count > 2 * entries.count + 16 {
                order.removeAll { [entries] slot in entries[slot.key]?.stamp != slot.stamp }
            }
        }

        /// Removes the oldest live entry; returns how many frames it held.
        func evictOldest() -> Int? {
            while let slot = order.popFirst() {
                guard let entry = entries[slot.key], entry.stamp == slot.stamp else { continue }
                entries[slot.key] = nil
                changed()
                return entry.pending.count
            }
            return nil
        }
    }

    private let stripes: [Stripe]
    private let salt: UInt64
    /// The sweep's callout is armed (set by whoever first needs it, cleared by the sweep).
    let sweepArmed = Atomic<Bool>(false)
    /// The sweep's timer, on protocol thread 0; touched only there.
    var sweepTimer: Callout?
    /// When each of our addresses was last defended (RFC 5227); touched only on thread 0.
    var lastDefence: [IPv4Address: Int64] = [:]

    init(seed: UInt64) {
        stripes = (0..<NeighbourTable.stripeCount).map { _ in Stripe() }
        var random = SeededRandom(seed: seed ^ 0x0A7B_17AB_1E00_5EED)
        salt = random.next()
    }

    /// The key's stripe and its slot in a `NeighbourCache`, from one seeded hash.
    @inline(__always) private func positions(_ key: ARPKey) -> (stripe: Int, slot: Int) {
        var mixed = (UInt64(key.address.rawValue) | UInt64(truncatingIfNeeded: key.interfaceIndex) << 32) ^ salt
        mixed = (mixed ^ (mixed >> 31)) &* 0xBF58_476D_1CE4_E5B9
        mixed ^= mixed >> 29
        return (
            Int(truncatingIfNeeded: mixed % UInt64(NeighbourTable.stripeCount)),
            Int(truncatingIfNeeded: (mixed >> 16) % UInt64(NeighbourCache.size))
        )
    }

    @inline(__always) private func stripe(_ key: ARPKey) -> Stripe { stripes[positions(key).stripe] }

    /// The hardware address of a reachable neighbour from the thread's own cache, without a
    /// lock; nil when the cache cannot vouch for it (then `output` decides under the lock).
    @inline(__always) func cachedAddress(_ key: ARPKey, now: Int64, cache: inout NeighbourCache) -> MACAddress? {
        let (stripeIndex, slotIndex) = positions(key)
        guard let slot = cache.slots[slotIndex], slot.key == key, now < slot.expires,
            slot.generation == stripes[stripeIndex].generation.load(ordering: .acquiring)
        else { return nil }
        return slot.mac
    }

    /// Entries one stripe holds at most for a table `limit` (the table holds at most
    /// `stripeCount` times this).
    static func stripeLimit(_ limit: Int) -> Int {
        Swift.max(1, (limit + stripeCount - 1) / stripeCount)
    }

    /// Entries now (an instant's sum over the stripes).
    var count: Int { stripes.reduce(0) { total, stripe in total + stripe.lock.withLock { stripe.entries.count } } }

    /// Frames waiting for resolution now.
    var pendingFrames: Int {
        stripes.reduce(0) { total, stripe in
            total + stripe.lock.withLock { stripe.entries.values.reduce(0) { $0 + $1.pending.count } }
        }
    }

    /// The hardware address known for `key` (reachable or being re-probed).
    func lookup(_ key: ARPKey) -> MACAddress? {
        let stripe = stripe(key)
        return stripe.lock.withLock { stripe.entries[key]?.mappedAddress }
    }

    /// Makes room in `stripe` and enters a new entry; returns frames dropped by eviction.
    private func insert(_ entry: NeighbourEntry, key: ARPKey, in stripe: Stripe, limit: Int) -> (Int, Int) {
        var dropped = 0
        var evicted = 0
        while stripe.entries.count >= NeighbourTable.stripeLimit(limit), let frames = stripe.evictOldest() {
            dropped += frames
            evicted += 1
        }
        stripe.entries[key] = entry
        stripe.touch(entry, key: key)
        return (dropped, evicted)
    }

    /// A frame for the neighbour `key`: send it, or hold it while the address resolves.
    func output(
        _ frame: Frame, key: ARPKey, now: Int64, settings: InetSettings, cache: inout NeighbourCache
    ) -> NeighbourOutput {
        let (stripeIndex, slotIndex) = positions(key)
        let stripe = stripes[stripeIndex]
        stripe.lock.lock()
        defer { stripe.lock.unlock() }
        if let entry = stripe.entries[key] {
            switch entry.state {
            case .reachable where now < entry.expires:
                cache.slots[slotIndex] = NeighbourCache.Slot(
                    key: key, mac: entry.mac, expires: entry.expires,
                    generation: stripe.generation.load(ordering: .relaxed))
                return .send(entry.mac)
            case .reachable:
                stripe.changed()
                entry.state = .probe
                entry.requests = 1
                entry.nextAttempt = now &+ settings.arpRetransmit.nanoseconds
                return .sendAndProbe(entry.mac)
            case .probe:
                return .send(entry.mac)
            case .incomplete:
                guard settings.arpQueueLimit > 0 else {
                    return .queued(broadcastRequest: false, dropped: 1, evicted: 0)
                }
                var dropped = 0
                if entry.pending.count >= settings.arpQueueLimit, !entry.pending.isEmpty {
                    entry.pending.removeFirst()
                    dropped = 1
                }
                entry.pending.append(frame)
                return .queued(broadcastRequest: false, dropped: dropped, evicted: 0)
            }
        }
        let entry = NeighbourEntry()
        entry.requests = 1
        entry.nextAttempt = now &+ settings.arpRetransmit.nanoseconds
        entry.pending = settings.arpQueueLimit > 0 ? [frame] : []
        let (dropped, evicted) = insert(entry, key: key, in: stripe, limit: settings.arpCacheLimit)
        return .queued(
            broadcastRequest: true, dropped: dropped + (settings.arpQueueLimit > 0 ? 0 : 1), evicted: evicted)
    }

    /// What learning a mapping did.
    struct Learned {
        /// Frames that waited for it: to be sent with the new address.
        var released: [Frame] = []
        var dropped = 0
        var evicted = 0
        var created = false
    }

    /// `key` is at `mac` (RFC 826's merge): an existing entry is updated; a new one is made only
    /// when `create` (the packet was addressed to us).
    func learn(_ key: ARPKey, mac: MACAddress, create: Bool, now: Int64, settings: InetSettings) -> Learned {
        let stripe = stripe(key)
        stripe.lock.lock()
        defer { stripe.lock.unlock() }
        var result = Learned()
        let entry: NeighbourEntry
        if let existing = stripe.entries[key] {
            entry = existing
        } else {
            guard create else { return result }
            entry = NeighbourEntry()
            (result.dropped, result.evicted) = insert(entry, key: key, in: stripe, limit: settings.arpCacheLimit)
            result.created = true
        }
        entry.state = .reachable
        entry.mac = mac
        entry.requests = 0
        entry.expires = now &+ settings.arpLifetime.nanoseconds
        stripe.changed()
        if !result.created { stripe.touch(entry, key: key) }
        if !entry.pending.isEmpty {
            result.released = entry.pending
            entry.pending = []
        }
        return result
    }

    /// Retries, re-probes and expiry, due at `now`. Requests come out sorted by key so that a
    /// seed replays the same packets whatever the process's hash seed.
    func sweep(now: Int64, settings: InetSettings) -> NeighbourSweep {
        var result = NeighbourSweep()
        let retransmit = settings.arpRetransmit.nanoseconds
        let unusedLimit = settings.arpLifetime.nanoseconds
        for stripe in stripes {
            stripe.lock.lock()
            var gone: [ARPKey] = []
            for (key, entry) in stripe.entries {
                switch entry.state {
                case .incomplete, .probe:
                    guard now >= entry.nextAttempt else { continue }
                    if entry.requests >= settings.arpMaxRequests {
                        gone.append(key)
                        result.failures += 1
                        result.droppedFrames += entry.pending.count
                        continue
                    }
                    entry.requests += 1
                    entry.nextAttempt = now &+ retransmit
                    result.requests.append((key, entry.mappedAddress))
                    stripe.changed()
                case .reachable:
                    // Expired and not used since for another lifetime: nobody needs it.
                    if now >= entry.expires &+ unusedLimit { gone.append(key) }
                }
            }
            for key in gone { stripe.entries[key] = nil }
            if !gone.isEmpty { stripe.changed() }
            result.removed += gone.count
            stripe.lock.unlock()
        }
        result.requests.sort {
            ($0.key.interfaceIndex, $0.key.address) < ($1.key.interfaceIndex, $1.key.address)
        }
        return result
    }

    /// Removes every entry (tests, interface reset).
    func removeAll() {
        for stripe in stripes {
            stripe.lock.withLock {
                stripe.entries.removeAll()
                stripe.order = RingQueue()
                stripe.changed()
            }
        }
    }
}
