import NetMPInterfaces
import NetMPRuntime
import NetMPSockets
import NetMPWire

/// The ARP cache of one protocol thread (RFC 826): resolution with a bounded queue of packets
/// waiting for it, retransmission, expiry and re-resolution. Every thread sees every ARP packet
/// and learns from it; thread 0 alone answers requests and announces addresses.
extension InetThread {
    static let arpCacheLimit = 1024
    static let minimumFrameLength = 60

    func arpOutput(_ frame: Frame, key: ARPKey) {
        let time = now
        let entry: ARPEntry
        if let existing = arp[key] {
            entry = existing
            if let mac = entry.mac {
                if time < entry.expires {
                    storeMAC(mac, at: frame.chunk.base + frame.start)
                    enqueue(frame, interfaceIndex: key.interfaceIndex)
                    return
                }
                // Expired: resolve again; packets wait meanwhile.
                entry.mac = nil
                count(.arpExpired)
                startResolution(entry, key: key)
            }
        } else {
            // Full: evict the idle entry that expires first (ties by address, deterministic).
            if arp.count >= InetThread.arpCacheLimit,
                let victim = arp.filter({ $0.value.pending.isEmpty }).min(by: {
                    ($0.value.expires, $0.key.address, $0.key.interfaceIndex)
                        < ($1.value.expires, $1.key.address, $1.key.interfaceIndex)
                })?.key
            {
                arp[victim]?.timer?.cancel()
                arp[victim] = nil
            }
            entry = ARPEntry()
            arp[key] = entry
            startResolution(entry, key: key)
        }
        if entry.pending.count >= config.settings.arpQueueLimit {
            entry.pending.removeFirst()
            count(.arpQueueDrops)
        }
        entry.pending.append(frame)
    }

    private func startResolution(_ entry: ARPEntry, key: ARPKey) {
        entry.requests = 1
        sendARP(.request, to: key.address, hardware: .broadcast, interfaceIndex: key.interfaceIndex)
        let timer =
            entry.timer
            ?? Callout(on: thread) { [unowned self, weak entry] in
                guard let entry else { return }
                self.arpTimerFired(entry, key: key)
                self.flush()
            }
        entry.timer = timer
        timer.arm(after: config.settings.arpRetransmit.nanoseconds)
    }

    private func arpTimerFired(_ entry: ARPEntry, key: ARPKey) {
        guard arp[key] === entry, entry.mac == nil else { return }
        if entry.requests >= config.settings.arpMaxRequests {
            count(.arpResolutionFailures)
            count(.arpQueueDrops, entry.pending.count)
            entry.pending.removeAll()
            arp[key] = nil
            return
        }
        entry.requests += 1
        sendARP(.request, to: key.address, hardware: .broadcast, interfaceIndex: key.interfaceIndex)
        entry.timer?.arm(after: config.settings.arpRetransmit.nanoseconds)
    }

    /// Sends an ARP packet from this interface's address nearest `target`.
    func sendARP(
        _ operation: ARPOperation, to target: IPv4Address, hardware: MACAddress, interfaceIndex: Int,
        from source: IPv4Address? = nil
    ) {
        guard interfaceIndex < config.interfaces.count,
            let sender = source ?? config.address(on: interfaceIndex, near: target)
        else { return }
        let interface = config.interfaces[interfaceIndex]
        let packet = ARPPacket(
            operation: operation, senderHardwareAddress: interface.hardwareAddress, senderProtocolAddress: sender,
            targetHardwareAddress: operation == .request ? .zero : hardware, targetProtocolAddress: target)
        let length = InetThread.minimumFrameLength
        let chunk = ChunkPool.shared.take(atLeast: length)
        mutableRegion(chunk, 0, length).initializeMemory(as: UInt8.self, repeating: 0)
        chunk.filled = length
        let header = chunk.base
        storeMAC(operation == .request ? .broadcast : hardware, at: header)
        storeMAC(interface.hardwareAddress, at: header + 6)
        header.storeBytes(of: UInt8(0x08), toByteOffset: 12, as: UInt8.self)
        header.storeBytes(of: UInt8(0x06), toByteOffset: 13, as: UInt8.self)
        guard (try? packet.emit(into: mutableRegion(chunk, InetThread.linkHeaderLength, ARPPacket.length))) != nil
        else { return }
        if operation == .reply {
            count(.arpRepliesSent)
        } else {
            count(sender == target ? .arpAnnouncementsSent : .arpRequestsSent)
        }
        enqueue(Frame(chunk: chunk, start: 0, end: length), interfaceIndex: interfaceIndex)
    }

    /// Announces `address` (a gratuitous ARP request: sender and target are both it).
    func announce(_ address: IPv4Address, interfaceIndex: Int) {
        sendARP(.request, to: address, hardware: .broadcast, interfaceIndex: interfaceIndex, from: address)
    }

    func arpInput(_ region: UnsafeRawBufferPointer, interfaceIndex: Int) {
        guard case .success(let packet) = ARPPacket.parse(region) else {
            count(.arpMalformed)
            return
        }
        count(.arpIn)
        let senderMAC = packet.senderHardwareAddress
        let sender = packet.senderProtocolAddress
        guard senderMAC.isUnicast, senderMAC != .zero, !sender.isBroadcast, !sender.isMulticast else {
            count(.arpMalformed)
            return
        }
        if config.isLocal(sender) {
            count(.arpConflicts)
            return
        }
        let target = packet.targetProtocolAddress
        let targetIsOurs = config.addresses.contains { $0.interfaceIndex == interfaceIndex && $0.address == target }
        if !sender.isUnspecified {
            let key = ARPKey(interfaceIndex: interfaceIndex, address: sender)
            if let entry = arp[key] {
                resolved(entry, mac: senderMAC, key: key)
            } else if targetIsOurs {
                let entry = ARPEntry()
                arp[key] = entry
                resolved(entry, mac: senderMAC, key: key)
            }
        }
        if packet.operation == .request && targetIsOurs && index == 0 {
            sendARP(.reply, to: sender, hardware: senderMAC, interfaceIndex: interfaceIndex, from: target)
        }
    }

    private func resolved(_ entry: ARPEntry, mac: MACAddress, key: ARPKey) {
        entry.mac = mac
        entry.expires = now &+ config.settings.arpLifetime.nanoseconds
        entry.timer?.cancel()
        guard !entry.pending.isEmpty else { return }
        for frame in entry.pending {
            storeMAC(mac, at: frame.chunk.base + frame.start)
            enqueue(frame, interfaceIndex: key.interfaceIndex)
        }
        entry.pending.removeAll()
    }
}
