import NetMPInterfaces
import NetMPRuntime
import NetMPSockets
import NetMPWire

/// ARP (RFC 826) over the stack's one `NeighbourTable`: resolution with a bounded queue of
/// packets waiting for it, retries and re-probes from a periodic sweep on thread 0. ARP packets
/// go to thread 0 alone, which learns, answers and defends our addresses.
extension InetThread {
    /// RFC 5227's DEFEND_INTERVAL.
    static let defendInterval: Int64 = 10_000_000_000
    static let minimumFrameLength = 60

    func arpOutput(_ frame: Frame, key: ARPKey) {
        let neighbours = stack.neighbours
        let time = now
        if let mac = neighbours.cachedAddress(key, now: time, cache: &neighbourCache) {
            storeMAC(mac, at: frame.chunk.base + frame.start)
            enqueue(frame, interfaceIndex: key.interfaceIndex)
            return
        }
        count(.neighbourLockedLookups)
        switch neighbours.output(frame, key: key, now: time, settings: config.settings, cache: &neighbourCache) {
        case .send(let mac):
            storeMAC(mac, at: frame.chunk.base + frame.start)
            enqueue(frame, interfaceIndex: key.interfaceIndex)
        case .sendAndProbe(let mac):
            count(.arpExpired)
            storeMAC(mac, at: frame.chunk.base + frame.start)
            enqueue(frame, interfaceIndex: key.interfaceIndex)
            sendARP(.request, to: key.address, hardware: mac, interfaceIndex: key.interfaceIndex)
            scheduleNeighbourSweep()
        case .queued(let broadcastRequest, let dropped, let evicted):
            count(.arpQueueDrops, dropped)
            count(.arpEvictions, evicted)
            if broadcastRequest {
                sendARP(.request, to: key.address, hardware: .broadcast, interfaceIndex: key.interfaceIndex)
                scheduleNeighbourSweep()
            }
        }
    }

    /// Makes sure the neighbour sweep runs (on protocol thread 0) while the table has entries.
    func scheduleNeighbourSweep() {
        guard !stack.neighbours.sweepArmed.exchange(true, ordering: .acquiringAndReleasing),
            let zero = stack.perThread.first
        else { return }
        if zero.thread.isCurrent {
            zero.armNeighbourSweep()
        } else if !zero.thread.send({ zero.armNeighbourSweep() }) {
            stack.neighbours.sweepArmed.store(false, ordering: .releasing)
        }
    }

    private func armNeighbourSweep() {
        let neighbours = stack.neighbours
        let timer =
            neighbours.sweepTimer
            ?? Callout(on: thread) { [unowned self] in
                self.neighbourSweep()
                self.flush()
            }
        neighbours.sweepTimer = timer
        timer.arm(after: config.settings.arpRetransmit.nanoseconds)
    }

    /// Retries resolutions, re-probes expired entries in use, removes failed and unused ones.
    private func neighbourSweep() {
        let neighbours = stack.neighbours
        let sweep = neighbours.sweep(now: now, settings: config.settings)
        count(.arpResolutionFailures, sweep.failures)
        count(.arpQueueDrops, sweep.droppedFrames)
        for (key, mac) in sweep.requests {
            sendARP(.request, to: key.address, hardware: mac ?? .broadcast, interfaceIndex: key.interfaceIndex)
        }
        if neighbours.count > 0 {
            neighbours.sweepTimer?.arm(after: config.settings.arpRetransmit.nanoseconds)
            return
        }
        neighbours.sweepArmed.store(false, ordering: .releasing)
        // An entry made since the count was read found the flag still set: arm for it.
        if neighbours.count > 0, !neighbours.sweepArmed.exchange(true, ordering: .acquiringAndReleasing) {
            neighbours.sweepTimer?.arm(after: config.settings.arpRetransmit.nanoseconds)
        }
    }

    /// Sends an ARP packet from this interface's address nearest `target`, to the link address
    /// `hardware` (broadcast for a resolving request, the known address for a re-probe or reply).
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
        storeMAC(hardware, at: header)
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

    /// An ARP packet (handled on protocol thread 0 only: the neighbour table is shared).
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
            // Our own announcement coming back is no conflict.
            if interfaceIndex < config.interfaces.count, config.interfaces[interfaceIndex].hardwareAddress == senderMAC
            {
                return
            }
            count(.arpConflicts)
            defend(sender, interfaceIndex: interfaceIndex)
            return
        }
        let target = packet.targetProtocolAddress
        let targetIsOurs = config.addresses.contains { $0.interfaceIndex == interfaceIndex && $0.address == target }
        if !sender.isUnspecified && !InetThread.isMartianSource(sender) {
            let key = ARPKey(interfaceIndex: interfaceIndex, address: sender)
            let learned = stack.neighbours.learn(
                key, mac: senderMAC, create: targetIsOurs, now: now, settings: config.settings)
            count(.arpQueueDrops, learned.dropped)
            count(.arpEvictions, learned.evicted)
            for frame in learned.released {
                storeMAC(senderMAC, at: frame.chunk.base + frame.start)
                enqueue(frame, interfaceIndex: interfaceIndex)
            }
            if learned.created { scheduleNeighbourSweep() }
        }
        if packet.operation == .request && targetIsOurs && index == 0 {
            sendARP(.reply, to: sender, hardware: senderMAC, interfaceIndex: interfaceIndex, from: target)
        }
    }

    /// Another host claims one of our addresses: defend it with one announcement, at most once
    /// per defence interval (RFC 5227 2.4 (b)); past that, keep the address and stay quiet.
    private func defend(_ address: IPv4Address, interfaceIndex: Int) {
        let neighbours = stack.neighbours
        let time = now
        if let last = neighbours.lastDefence[address], time &- last < InetThread.defendInterval { return }
        neighbours.lastDefence[address] = time
        count(.arpDefences)
        announce(address, interfaceIndex: interfaceIndex)
    }
}
