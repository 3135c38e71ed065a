import NetMPInterfaces
import NetMPRuntime
import NetMPSockets
import NetMPWire
import Synchronization

/// A received IPv4 datagram: its header and where its bytes are in a chunk.
package struct InboundDatagram: @unchecked Sendable {
    var header: IPv4Header
    var chunk: ByteChunk
    var ipStart: Int
    var payloadStart: Int
    var payloadEnd: Int
    var interfaceIndex: Int
    /// Arrived as a link-layer broadcast or multicast.
    var linkBroadcast: Bool
    /// Addressed to an IP broadcast address.
    var destinationIsBroadcast: Bool
    /// The interface vouched for the transport checksum (`Frame.checksumTrusted`), and whether
    /// that checksum is still the partial pseudo-header sum (`Frame.checksumPartial`).
    var checksumTrusted = false
    var checksumPartial = false

    @inline(__always) var payload: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: chunk.base + payloadStart, count: payloadEnd - payloadStart)
    }

    @inline(__always) var datagramBytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: chunk.base + ipStart, count: payloadEnd - ipStart)
    }
}

package struct ARPKey: Hashable {
    var interfaceIndex: Int
    var address: IPv4Address
}

@inline(__always) package func mutableRegion(_ chunk: ByteChunk, _ offset: Int, _ count: Int)
    -> UnsafeMutableRawBufferPointer
{
    UnsafeMutableRawBufferPointer(start: chunk.base + offset, count: count)
}

@inline(__always) package func storeMAC(_ mac: MACAddress, at pointer: UnsafeMutableRawPointer) {
    for index in 0..<6 {
        pointer.storeBytes(
            of: UInt8(truncatingIfNeeded: mac.rawValue >> UInt64(40 - 8 * index)), toByteOffset: index, as: UInt8.self)
    }
}

/// The IPv4 layer's state on one protocol thread: its copy of the configuration, its reassembly
/// queues, its UDP tables and its pending pings. Touched only on that thread.
package final class InetThread: @unchecked Sendable {
    /// Link header, IPv4 header, and both together (the headroom of every outbound packet).
    static let linkHeaderLength = 14
    static let ipHeaderLength = 20
    static let headroom = 34
    /// The largest ICMP error datagram (RFC 1812 4.3.2.3).
    static let icmpErrorLimit = 576
    /// Precedence 6, internetwork control (TOS 0xc0), for ICMP errors (RFC 1812 4.3.2.5; Linux).
    static let internetworkControl: UInt8 = 0x30

    unowned let stack: InetStack
    /// The stack's identification counters, held here so a datagram's draw does not go through
    /// the unowned `stack` (a strong retain and release of it per packet).
    private let identifiers: IPIdentifiers
    /// The last flow an identification was drawn for, with its hash (`nextIdentification`).
    @exclusivity(unchecked) private var lastIdentificationFlow = (
        valid: false, addresses: UInt64(0), proto: UInt8(0), hash: UInt64(0)
    )
    package let thread: ProtocolThread
    /// `thread` unretained, for the per-packet reads of its time (`thread` holds it): a retain
    /// was an atomic on a header every CPU that dispatches here writes.
    private let threadReference: Unmanaged<ProtocolThread>
    let index: Int
    var config: InetConfiguration {
        // A copy of its own: the shared array's buffer would be retained by every thread.
        didSet { links = config.links.map { $0 } }
    }
    /// `config.links` in this thread's own array (read per packet).
    private(set) var links: [LinkFacts]
    /// The generation of `config` (newer snapshots only replace it).
    var configGeneration: UInt64 = 0
    // The per-packet fields skip the runtime exclusivity check: owner thread only, no access
    // held across a call that could reach them again.
    /// The counters, by `InetCounter`, in storage of their own: an increment is one add, where an
    /// array held here checked its buffer was unique on every one (several a packet).
    private let counterStorage: UnsafeMutableBufferPointer<Int>
    /// A copy of the counters (read on the owner thread).
    package var counters: [Int] { Array(counterStorage) }
    @exclusivity(unchecked) private var outQueues: [[Frame]] = []
    /// An emptied output queue, swapped in for the one being sent: the queues keep their capacity.
    @exclusivity(unchecked) private var spareOutQueue: [Frame] = []
    /// An inbound batch that has run, retained, for the next sender to fill (`InboundBatch`);
    /// senders are any thread, so it is taken and put back atomically.
    let spareInbound = Atomic<UnsafeMutableRawPointer?>(nil)
    var reassembly: [FragmentKey: ReassemblyEntry] = [:]
    var reassemblyBytes = 0
    var reassemblySources: [IPv4Address: FragmentSourceUsage] = [:]
    /// This thread's lock-free view of reachable neighbours.
    var neighbourCache = NeighbourCache()
    lazy var reassemblyTimer = Callout(on: thread) { [unowned self] in
        self.reassemblyTimedOut()
        self.flush()
    }
    var udpConnected: [UDPFlowKey: UDPBinding] = [:]
    var udpBound: [UInt16: [UDPBinding]] = [:]
    var udpBySocket: [ObjectIdentifier: UDPBinding] = [:]
    var pings: [UInt32: PingRequest] = [:]
    /// Transports registered from other targets (TCP), by IP protocol number.
    @exclusivity(unchecked) var transportHandlers = [(any InetTransportHandler)?](repeating: nil, count: 256)
    /// `transportHandlers` unretained, for the per-datagram input.
    @exclusivity(unchecked) var transportInputs = [TransportHandlerReference?](repeating: nil, count: 256)
    @exclusivity(unchecked) var pendingDeliveries: [PendingDelivery] = []
    @exclusivity(unchecked) var deliveriesInFlight: [PendingDelivery] = []
    private var icmpTokens: Double
    private var icmpRefill: Int64 = 0

    init(stack: InetStack, thread: ProtocolThread, config: InetConfiguration, seed: UInt64) {
        self.stack = stack
        identifiers = stack.identifiers
        self.thread = thread
        threadReference = Unmanaged.passUnretained(thread)
        self.index = thread.index
        self.config = config
        links = config.links.map { $0 }
        icmpTokens = Double(config.settings.icmpErrorBurst)
        counterStorage = .allocate(capacity: InetCounter.allCases.count)
        counterStorage.initialize(repeating: 0)
    }

    deinit {
        counterStorage.deallocate()
        if let spare = spareInbound.exchange(nil, ordering: .acquiring) {
            Unmanaged<InboundBatch>.fromOpaque(spare).release()
        }
    }

    @inline(__always) func count(_ counter: InetCounter, _ n: Int = 1) { counterStorage[counter.rawValue] &+= n }

    /// The turn's time (`ProtocolThread.turnTime`): what this layer times (identifiers per
    /// millisecond, reassembly and neighbour timeouts) runs on milliseconds or more.
    var now: Int64 { threadReference._withUnsafeGuaranteedRef { $0.turnTime } }

    /// The transport checksum of `datagram` need not be verified: its interface skips them,
    /// or vouched for this frame.
    @inline(__always) func transportChecksumSkipped(_ datagram: InboundDatagram) -> Bool {
        datagram.checksumTrusted || checksumsSkipped(datagram.interfaceIndex)
    }

    @inline(__always) func checksumsSkipped(_ interfaceIndex: Int) -> Bool {
        interfaceIndex < links.count && links[interfaceIndex].offloads.contains(.checksumsSkipped)
    }

    func isLocalDestination(_ address: IPv4Address) -> Bool { config.isLocal(address) || address.isLoopback }

    // MARK: Output queue

    /// `frame` is consumed: a sender that built it for this hands its reference on to the queue
    /// (a borrowed frame took a retain here and a release in the caller).
    func enqueue(_ frame: consuming Frame, interfaceIndex: Int) {
        while outQueues.count <= interfaceIndex { outQueues.append([]) }
        outQueues[interfaceIndex].append(frame)
    }

    /// Hands each interface its batch (after every batch of messages and after timers).
    func flush() {
        flushDeliveries()
        for index in outQueues.indices where !outQueues[index].isEmpty {
            // The queue goes out whole and an empty one takes its place (frames a transmit
            // might queue meanwhile land there); once sent, its buffer is the next spare.
            var batch = spareOutQueue
            spareOutQueue = []
            swap(&batch, &outQueues[index])
            if index < links.count { links[index].transmit(batch) }
            batch.clearKeepingCapacity()
            spareOutQueue = batch
        }
    }

    // MARK: Input

    func input(_ frames: [Frame], interfaceIndex: Int) {
        for frame in frames { inputFrame(frame, interfaceIndex: interfaceIndex) }
        flushDeliveries()
    }

    func input(_ frame: Frame, interfaceIndex: Int) {
        inputFrame(frame, interfaceIndex: interfaceIndex)
        flushDeliveries()
    }

    private func inputFrame(_ frame: Frame, interfaceIndex: Int) {
        if frame.isGathered {
            if !inputGathered(frame, interfaceIndex: interfaceIndex) {
                inputFrame(frame.contiguous(), interfaceIndex: interfaceIndex)
            }
            return
        }
        count(.framesIn)
        guard interfaceIndex < links.count else { return }
        let interface = links[interfaceIndex]
        let bytes = frame.bytes
        let ethernet: EthernetFrame
        do {
            ethernet = try EthernetHeader.parseHeader(bytes)
        } catch {
            count(.framesRunt)
            return
        }
        let destination = ethernet.header.destination
        let linkBroadcast = destination.isBroadcast || destination.isMulticast
        if interface.needsAddressResolution && !linkBroadcast && destination != interface.hardwareAddress {
            count(.framesNotForUs)
            return
        }
        let payloadStart = frame.start + ethernet.payloadRange.lowerBound
        let region = UnsafeRawBufferPointer(start: frame.chunk.base + payloadStart, count: ethernet.payloadRange.count)
        switch ethernet.header.etherType {
        case .arp: arpInput(region, interfaceIndex: interfaceIndex)
        case .ipv4:
            ipInput(
                region, chunk: frame.chunk, ipStart: payloadStart, interfaceIndex: interfaceIndex,
                linkBroadcast: linkBroadcast, checksumTrusted: frame.checksumTrusted,
                checksumPartial: frame.checksumPartial)
        default: count(.unknownEtherType)
        }
    }

    /// A frame whose payload came as slices of the sender's buffers (loopback's scatter-gather):
    /// a whole TCP/IPv4 datagram for this stack, on an interface that skips checksums, goes to
    /// TCP with its slices, so its payload reaches the receive buffer without a copy. False for
    /// anything else, which is then made contiguous and taken the usual way.
    private func inputGathered(_ frame: Frame, interfaceIndex: Int) -> Bool {
        guard interfaceIndex < links.count, checksumsSkipped(interfaceIndex),
            let handler = transportInputs[Int(IPProtocol.tcp.rawValue)]
        else { return false }
        let bytes = frame.bytes
        guard bytes.count >= InetThread.linkHeaderLength + InetThread.ipHeaderLength, bytes[12] == 0x08,
            bytes[13] == 0x00
        else { return false }
        let ipStart = frame.start + InetThread.linkHeaderLength
        let region = UnsafeRawBufferPointer(rebasing: bytes[InetThread.linkHeaderLength...])
        guard
            let packet = try? IPv4Header.parseHeader(region, verifyChecksum: false, allowTruncatedPayload: true),
            packet.header.protocol == .tcp, !packet.header.isFragment,
            Int(packet.header.totalLength) == frame.count - InetThread.linkHeaderLength
        else { return false }
        let header = packet.header
        let destination = header.destination
        guard config.isLocal(destination) || destination.isLoopback,
            !config.isMartianSource(
                header.source, destination: destination, protocol: header.protocol, interfaceIndex: interfaceIndex)
        else { return false }
        count(.framesIn)
        count(.ipIn)
        count(.ipDelivered)
        handler.input(
            InetTransportDatagram(
                source: header.source, destination: destination, chunk: frame.chunk,
                payloadStart: ipStart + packet.headerLength, payloadEnd: frame.end, checksumsSkipped: true,
                isBroadcast: false, ecn: header.ecn, isGathered: true))
        return true
    }

    static func isMartianSource(_ source: IPv4Address) -> Bool {
        source.isUnspecified || source.isBroadcast || source.isMulticast || source.rawValue >> 28 == 0xF
            || source.rawValue >> 24 == 0
    }

    private func ipInput(
        _ region: UnsafeRawBufferPointer, chunk: ByteChunk, ipStart: Int, interfaceIndex: Int, linkBroadcast: Bool,
        checksumTrusted: Bool = false, checksumPartial: Bool = false
    ) {
        count(.ipIn)
        let packet: IPv4Packet
        do {
            packet = try IPv4Header.parseHeader(
                region, verifyChecksum: !checksumsSkipped(interfaceIndex), allowTruncatedPayload: false)
        } catch .badChecksum {
            count(.ipBadChecksum)
            return
        } catch {
            count(.ipMalformed)
            return
        }
        let header = packet.header
        let source = header.source
        if config.isMartianSource(
            source, destination: header.destination, protocol: header.protocol, interfaceIndex: interfaceIndex)
        {
            count(.ipMartianSource)
            return
        }
        var datagram = InboundDatagram(
            header: header, chunk: chunk, ipStart: ipStart, payloadStart: ipStart + packet.payloadRange.lowerBound,
            payloadEnd: ipStart + packet.payloadRange.upperBound, interfaceIndex: interfaceIndex,
            linkBroadcast: linkBroadcast, destinationIsBroadcast: false)
        // Trust is for the transport checksum of a whole datagram: a fragment's is checked
        // once it is reassembled.
        if !header.isFragment {
            datagram.checksumTrusted = checksumTrusted
            datagram.checksumPartial = checksumPartial
        }
        let destination = header.destination
        if destination.isLoopback && interfaceIndex != 0 {
            count(.ipMartianDestination)
            return
        }
        // A link-layer broadcast carrying a unicast destination (RFC 1122 3.3.6).
        if linkBroadcast && !destination.isMulticast && !config.isBroadcast(destination, on: interfaceIndex) {
            count(.ipLinkBroadcastUnicast)
            return
        }
        if config.isLocal(destination) || destination.isLoopback {
            // Ours.
        } else if config.isBroadcast(destination, on: interfaceIndex) {
            datagram.destinationIsBroadcast = true
        } else if destination.isMulticast {
            count(.ipMulticastDropped)
            return
        } else if destination.isLoopback || destination.rawValue >> 24 == 0 || destination.rawValue >> 28 == 0xF {
            // 127/8 from outside, 0/8 and 240/4 are never forwarded (RFC 1812 5.3.7).
            count(.ipMartianDestination)
            return
        } else {
            forward(datagram)
            return
        }
        if header.isFragment {
            reassemble(datagram)
            return
        }
        deliver(datagram)
    }

    /// Hands a whole datagram addressed to this stack to its transport.
    func deliver(_ datagram: InboundDatagram) {
        count(.ipDelivered)
        switch datagram.header.protocol {
        case .icmp: icmpInput(datagram)
        case .udp: udpInput(datagram)
        default:
            if let handler = transportInputs[Int(datagram.header.protocol.rawValue)] {
                transportInput(datagram, handler: handler)
                return
            }
            count(.protocolUnsupported)
            sendICMPError(.destinationUnreachable(code: .protocolUnreachable, nextHopMTU: 0), about: datagram)
        }
    }

    // MARK: IPv4 output

    /// Per-destination counters (`IPIdentification.swift`): consecutive to one destination.
    /// The flow hash is kept for the last flow: most datagrams go where the one before went.
    private func nextIdentification(_ hop: NextHop, _ destination: IPv4Address, _ proto: IPProtocol) -> UInt16 {
        let flow = UInt64(destination.rawValue) << 32 | UInt64(hop.source.rawValue)
        if !lastIdentificationFlow.valid || lastIdentificationFlow.addresses != flow
            || lastIdentificationFlow.proto != proto.rawValue
        {
            lastIdentificationFlow = (
                true, flow, proto.rawValue,
                identifiers.flowHash(source: hop.source, destination: destination, protocol: proto.rawValue)
            )
        }
        return identifiers.next(flowHash: lastIdentificationFlow.hash, now: now)
    }

    /// Sends the IP payload at `chunk[payloadStart ..< payloadEnd]` (with at least `headroom`
    /// bytes free before it), fragmenting if it does not fit the interface. A TCP segment with a
    /// `segmentSize` (its payload per segment on the wire) goes whole, as one large frame, to an
    /// interface with TCP segmentation offload that takes that long a datagram. `gathered` slices
    /// follow the payload in the chunk (scatter-gather, for an interface that takes them).
    /// `chunk` is consumed, so that the frame made of it takes over the caller's reference.
    @discardableResult
    func outputIP(
        chunk: consuming ByteChunk, payloadStart: Int, payloadEnd: Int, protocol proto: IPProtocol, hop: NextHop,
        destination: IPv4Address, ttl: UInt8? = nil, dontFragment: Bool = false, dscp: UInt8 = 0, ecn: UInt8 = 0,
        segmentSize: Int = 0, gathered: [ByteSlice]? = nil
    ) -> NetError? {
        guard hop.interfaceIndex < links.count, payloadStart >= InetThread.headroom else {
            count(.ipNoRoute)
            return .networkUnreachable
        }
        let interface = links[hop.interfaceIndex]
        var gatheredLength = 0
        if let gathered { for piece in gathered { gatheredLength += piece.count } }
        let whole = InetThread.ipHeaderLength + payloadEnd - payloadStart + gatheredLength
        if gatheredLength > 0
            && !(interface.offloads.contains(.scatterGather)
                && (whole <= interface.mtu
                    || (segmentSize > 0 && proto == .tcp && interface.offloads.contains(.tcpSegmentation)
                        && whole <= interface.largeSegmentLimit)))
        {
            // The interface cannot take the pieces, or they are to be fragmented: one contiguous copy.
            let length = payloadEnd - payloadStart + gatheredLength
            let copy = ChunkPool.shared.take(atLeast: length, headroom: InetThread.headroom)
            (copy.base + InetThread.headroom).copyMemory(
                from: chunk.base + payloadStart, byteCount: payloadEnd - payloadStart)
            var offset = InetThread.headroom + payloadEnd - payloadStart
            for piece in gathered ?? [] {
                (copy.base + offset).copyMemory(from: piece.chunk.base + piece.start, byteCount: piece.count)
                offset += piece.count
            }
            copy.filled = offset
            withExtendedLifetime(chunk) {}  // Owned here: kept until its bytes were copied.
            return outputIP(
                chunk: copy, payloadStart: InetThread.headroom, payloadEnd: offset, protocol: proto, hop: hop,
                destination: destination, ttl: ttl, dontFragment: dontFragment, dscp: dscp, ecn: ecn,
                segmentSize: segmentSize)
        }
        let payloadLength = payloadEnd - payloadStart + gatheredLength
        let total = InetThread.ipHeaderLength + payloadLength
        guard total <= Int(UInt16.max) else { return .messageTooLong }
        var header = IPv4Header(
            dscp: dscp, ecn: ecn & 0x3, totalLength: UInt16(total),
            identification: nextIdentification(hop, destination, proto),
            dontFragment: dontFragment,
            timeToLive: ttl ?? config.settings.defaultTTL, protocol: proto, source: hop.source,
            destination: destination)
        count(.ipOut)
        let large =
            total > interface.mtu && segmentSize > 0 && proto == .tcp
            && interface.offloads.contains(.tcpSegmentation) && total <= interface.largeSegmentLimit
        if total <= interface.mtu || large {
            guard
                (try? header.emit(
                    into: mutableRegion(chunk, payloadStart - InetThread.ipHeaderLength, InetThread.ipHeaderLength)))
                    != nil
            else { return .invalidArgument }
            let start = payloadStart - InetThread.headroom
            let frame =
                large || gatheredLength > 0
                ? Frame(
                    chunk: chunk, start: start, end: payloadEnd, segmentSize: large ? segmentSize : 0,
                    gathered: gathered ?? [])
                : Frame(chunk: chunk, start: start, end: payloadEnd)
            sendFrame(frame, etherType: 0x0800, hop: hop)
            return nil
        }
        if dontFragment {
            count(.ipCannotFragment)
            return .messageTooLong
        }
        header.dontFragment = false
        let payload = UnsafeRawBufferPointer(start: chunk.base + payloadStart, count: payloadLength)
        let outcome = fragment(
            header, payload: payload, baseOffset: 0, moreAfter: false, hop: hop, mtu: interface.mtu)
        // The fragments were copied out of `chunk`, which this function owns: kept until they were.
        withExtendedLifetime(chunk) {}
        return outcome
    }

    /// Sends `payload` as fragments of `template`, starting at byte `baseOffset` of the original.
    /// The fragment at offset 0 carries all of `options`; later ones only those with the copy
    /// bit (RFC 791 3.2).
    func fragment(
        _ template: IPv4Header, payload: UnsafeRawBufferPointer, baseOffset: Int, moreAfter: Bool, hop: NextHop,
        mtu: Int, options: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
    ) -> NetError? {
        let copied = options.isEmpty ? [] : IPv4Options.copiedOnFragmentation(options)
        guard let source = payload.baseAddress else {
            count(.ipCannotFragment)
            return .messageTooLong
        }
        var offset = 0
        while offset < payload.count {
            let first = baseOffset + offset == 0
            let optionCount = first ? options.count : copied.count
            let headerLength = InetThread.ipHeaderLength + optionCount
            let maxPiece = (mtu - headerLength) & ~7
            guard maxPiece >= 8 else {
                count(.ipCannotFragment)
                return .messageTooLong
            }
            let piece = Swift.min(maxPiece, payload.count - offset)
            let more = offset + piece < payload.count || moreAfter
            let linkAndIP = InetThread.linkHeaderLength + headerLength
            let chunk = ChunkPool.shared.take(atLeast: piece, headroom: linkAndIP)
            (chunk.base + linkAndIP).copyMemory(from: source + offset, byteCount: piece)
            chunk.filled = linkAndIP + piece
            var header = template
            header.totalLength = UInt16(truncatingIfNeeded: headerLength + piece)
            header.moreFragments = more
            header.fragmentOffset = UInt16(truncatingIfNeeded: (baseOffset + offset) / 8)
            let region = mutableRegion(chunk, InetThread.linkHeaderLength, headerLength)
            let emitted =
                first
                ? (try? header.emit(into: region, options: options))
                : copied.withUnsafeBytes { try? header.emit(into: region, options: $0) }
            guard emitted != nil else {
                count(.ipCannotFragment)
                return .messageTooLong
            }
            count(.ipFragmentsOut)
            sendFrame(Frame(chunk: chunk, start: 0, end: linkAndIP + piece), etherType: 0x0800, hop: hop)
            offset += piece
        }
        return nil
    }

    /// Writes the link header and queues the frame, resolving the next hop's hardware address.
    func sendFrame(_ unpadded: consuming Frame, etherType: UInt16, hop: NextHop) {
        guard hop.interfaceIndex < links.count, unpadded.count >= InetThread.linkHeaderLength else {
            return
        }
        let interface = links[hop.interfaceIndex]
        guard interface.needsAddressResolution else {
            // No neighbour to find and no minimum length: the frame goes as built, its reference
            // handed on to the queue (`unpadded` is consumed).
            storeLinkHeader(of: unpadded, destination: .zero, interface: interface, etherType: etherType)
            enqueue(unpadded, interfaceIndex: hop.interfaceIndex)
            return
        }
        let frame = paddedForEthernet(unpadded)
        storeLinkHeader(of: frame, destination: .zero, interface: interface, etherType: etherType)
        let header = frame.chunk.base + frame.start
        if hop.isBroadcast || hop.nextHop.isBroadcast {
            storeMAC(.broadcast, at: header)
            enqueue(frame, interfaceIndex: hop.interfaceIndex)
        } else if hop.nextHop.isMulticast {
            storeMAC(MACAddress(rawValue: 0x0100_5E00_0000 | UInt64(hop.nextHop.rawValue & 0x7F_FFFF)), at: header)
            enqueue(frame, interfaceIndex: hop.interfaceIndex)
        } else {
            arpOutput(frame, key: ARPKey(interfaceIndex: hop.interfaceIndex, address: hop.nextHop))
        }
    }

    /// Writes the Ethernet header at the start of `frame`: `destination`, the interface's own
    /// address, `etherType`.
    @inline(__always)
    private func storeLinkHeader(
        of frame: borrowing Frame, destination: MACAddress, interface: LinkFacts, etherType: UInt16
    ) {
        let header = frame.chunk.base + frame.start
        storeMAC(destination, at: header)
        storeMAC(interface.hardwareAddress, at: header + 6)
        header.storeBytes(of: UInt8(etherType >> 8), toByteOffset: 12, as: UInt8.self)
        header.storeBytes(of: UInt8(etherType & 0xFF), toByteOffset: 13, as: UInt8.self)
    }

    // MARK: Forwarding

    /// Finishes the partial TCP or UDP checksum of `datagram` in place (its chunk is this
    /// stack's own, read from the device): the sum from the payload's start to its end, over the
    /// pseudo-header sum already in the field, complemented into the field.
    private func finishPartialChecksum(_ datagram: InboundDatagram) {
        let field: Int
        switch datagram.header.protocol {
        case .tcp: field = 16
        case .udp: field = 6
        default: return
        }
        let length = datagram.payloadEnd - datagram.payloadStart
        guard length >= field + 2 else { return }
        let payload = UnsafeMutableRawBufferPointer(start: datagram.chunk.base + datagram.payloadStart, count: length)
        let value = ~InternetChecksum.sum(UnsafeRawBufferPointer(payload))
        // A UDP checksum that comes out as zero is sent as all ones (RFC 768).
        let stored = value == 0 && datagram.header.protocol == .udp ? 0xFFFF : value
        payload[field] = UInt8(truncatingIfNeeded: stored >> 8)
        payload[field + 1] = UInt8(truncatingIfNeeded: stored)
    }

    private func forward(_ datagram: InboundDatagram) {
        let header = datagram.header
        // A partial sum leaves the stack finished, as a NIC finishes CHECKSUM_PARTIAL.
        if datagram.checksumPartial { finishPartialChecksum(datagram) }
        guard config.settings.forwarding, !datagram.linkBroadcast else {
            count(.ipNotForUs)
            return
        }
        // Directed broadcasts are not forwarded unless configured (RFC 2644).
        if config.isDirectedBroadcast(header.destination) && !config.settings.forwardsDirectedBroadcasts {
            count(.ipDirectedBroadcastDropped)
            return
        }
        if header.timeToLive <= 1 {
            count(.ipTTLExceeded)
            sendICMPError(.timeExceeded(code: .timeToLiveExceeded), about: datagram)
            return
        }
        guard let hop = config.route(to: header.destination), hop.interfaceIndex != 0 else {
            count(.ipNoRoute)
            sendICMPError(.destinationUnreachable(code: .networkUnreachable, nextHopMTU: 0), about: datagram)
            return
        }
        let interface = config.interfaces[hop.interfaceIndex]
        let length = datagram.payloadEnd - datagram.ipStart
        if length > interface.mtu {
            if header.dontFragment {
                sendICMPError(
                    .destinationUnreachable(
                        code: .fragmentationNeeded, nextHopMTU: UInt16(truncatingIfNeeded: interface.mtu)),
                    about: datagram)
                count(.ipCannotFragment)
                return
            }
            var template = header
            template.timeToLive = header.timeToLive - 1
            count(.ipForwarded)
            let options = UnsafeRawBufferPointer(
                start: datagram.chunk.base + datagram.ipStart + InetThread.ipHeaderLength,
                count: datagram.payloadStart - datagram.ipStart - InetThread.ipHeaderLength)
            _ = fragment(
                template, payload: datagram.payload, baseOffset: header.fragmentByteOffset,
                moreAfter: header.moreFragments, hop: hop, mtu: interface.mtu, options: options)
            return
        }
        let chunk = ChunkPool.shared.take(atLeast: length, headroom: InetThread.linkHeaderLength)
        if let source = datagram.datagramBytes.baseAddress {
            (chunk.base + InetThread.linkHeaderLength).copyMemory(from: source, byteCount: length)
        }
        chunk.filled = InetThread.linkHeaderLength + length
        // TTL is byte 8; the checksum (bytes 10-11) is updated incrementally (RFC 1624).
        let ip = chunk.base + InetThread.linkHeaderLength
        let oldWord = UInt16(header.timeToLive) << 8 | UInt16(header.protocol.rawValue)
        let newWord = UInt16(header.timeToLive - 1) << 8 | UInt16(header.protocol.rawValue)
        ip.storeBytes(of: header.timeToLive - 1, toByteOffset: 8, as: UInt8.self)
        let oldChecksum =
            UInt16(ip.load(fromByteOffset: 10, as: UInt8.self)) << 8
            | UInt16(ip.load(fromByteOffset: 11, as: UInt8.self))
        let newChecksum = InternetChecksum.update(checksum: oldChecksum, old16: oldWord, new16: newWord)
        ip.storeBytes(of: UInt8(newChecksum >> 8), toByteOffset: 10, as: UInt8.self)
        ip.storeBytes(of: UInt8(newChecksum & 0xFF), toByteOffset: 11, as: UInt8.self)
        count(.ipForwarded)
        sendFrame(
            Frame(chunk: chunk, start: 0, end: InetThread.linkHeaderLength + length), etherType: 0x0800, hop: hop)
    }

    // MARK: ICMP

    private func icmpInput(_ datagram: InboundDatagram) {
        let payload = datagram.payload
        guard
            case .success(let icmp) = ICMPHeader.parse(
                payload, verifyChecksum: !transportChecksumSkipped(datagram))
        else {
            count(.icmpMalformed)
            return
        }
        count(.icmpIn)
        switch icmp.header.message {
        case .echoRequest(let identifier, let sequence):
            if datagram.destinationIsBroadcast { return }
            let data = UnsafeRawBufferPointer(rebasing: payload[icmp.payloadRange])
            sendEcho(
                .echoReply(identifier: identifier, sequenceNumber: sequence), data: data,
                to: datagram.header.source, from: datagram.header.destination)
            count(.icmpEchoRepliesSent)
        case .echoReply(let identifier, let sequence):
            pingReplied(identifier: identifier, sequence: sequence, from: datagram.header.source)
        case .destinationUnreachable, .timeExceeded:
            count(.icmpErrorsIn)
            icmpErrorInput(icmp, payload: payload, from: datagram.header.source)
        case .other:
            break
        }
    }

    /// Sends an echo request or reply carrying `data`.
    @discardableResult
    func sendEcho(
        _ message: ICMPMessage, data: UnsafeRawBufferPointer, to destination: IPv4Address, from source: IPv4Address?,
        ttl: UInt8? = nil
    ) -> NetError? {
        guard let hop = config.route(to: destination, from: source) else {
            count(.ipNoRoute)
            return .networkUnreachable
        }
        let length = ICMPHeader.length + data.count
        let chunk = ChunkPool.shared.take(atLeast: length, headroom: InetThread.headroom)
        if let base = data.baseAddress, !data.isEmpty {
            (chunk.base + InetThread.headroom + ICMPHeader.length).copyMemory(from: base, byteCount: data.count)
        }
        chunk.filled = InetThread.headroom + length
        guard
            (try? ICMPHeader(message: message).emit(
                into: mutableRegion(chunk, InetThread.headroom, length), payloadLength: data.count)) != nil
        else { return .invalidArgument }
        return outputIP(
            chunk: chunk, payloadStart: InetThread.headroom, payloadEnd: InetThread.headroom + length,
            protocol: .icmp, hop: hop, destination: destination, ttl: ttl)
    }

    private func takeICMPToken() -> Bool {
        let time = now
        let rate = Double(config.settings.icmpErrorsPerSecond)
        let burst = Double(config.settings.icmpErrorBurst)
        let elapsed = Double(Swift.max(0, time - icmpRefill)) / 1e9
        icmpTokens = Swift.min(burst, icmpTokens + elapsed * rate)
        icmpRefill = time
        if icmpTokens >= 1 {
            icmpTokens -= 1
            return true
        }
        return false
    }

    /// Sends an ICMP error about `datagram` to its source (RFC 1122 3.2.2: never about an ICMP
    /// error, a broadcast, a non-initial fragment or a martian source), rate-limited.
    func sendICMPError(_ message: ICMPMessage, about datagram: InboundDatagram) {
        let header = datagram.header
        if datagram.linkBroadcast || datagram.destinationIsBroadcast || header.destination.isMulticast { return }
        if header.fragmentOffset != 0 { return }
        let source = header.source
        if source.isUnspecified
            || config.isMartianSource(
                source, destination: header.destination, protocol: header.protocol,
                interfaceIndex: datagram.interfaceIndex)
        {
            return
        }
        if header.protocol == .icmp {
            guard datagram.payloadEnd > datagram.payloadStart else { return }
            let type = datagram.chunk.base.load(fromByteOffset: datagram.payloadStart, as: UInt8.self)
            if type == 3 || type == 4 || type == 5 || type == 11 || type == 12 { return }
        }
        guard takeICMPToken() else {
            count(.icmpErrorsRateLimited)
            return
        }
        let headerLength = datagram.payloadStart - datagram.ipStart
        // As much of the datagram as fits in 576 bytes (RFC 1812 4.3.2.3).
        let quoteLength = Swift.min(
            Swift.max(headerLength + 8, InetThread.icmpErrorLimit - InetThread.ipHeaderLength - ICMPHeader.length),
            datagram.payloadEnd - datagram.ipStart)
        let length = ICMPHeader.length + quoteLength
        let from =
            isLocalDestination(header.destination)
            ? header.destination : config.address(on: datagram.interfaceIndex, near: source)
        guard let from, let hop = config.route(to: source, from: from) else { return }
        let chunk = ChunkPool.shared.take(atLeast: length, headroom: InetThread.headroom)
        (chunk.base + InetThread.headroom + ICMPHeader.length).copyMemory(
            from: datagram.chunk.base + datagram.ipStart, byteCount: quoteLength)
        chunk.filled = InetThread.headroom + length
        guard
            (try? ICMPHeader(message: message).emit(
                into: mutableRegion(chunk, InetThread.headroom, length), payloadLength: quoteLength)) != nil
        else { return }
        count(.icmpErrorsSent)
        outputIP(
            chunk: chunk, payloadStart: InetThread.headroom, payloadEnd: InetThread.headroom + length,
            protocol: .icmp, hop: hop, destination: source, dscp: InetThread.internetworkControl)
    }

    private func icmpErrorInput(_ icmp: ICMPPacket, payload: UnsafeRawBufferPointer, from sender: IPv4Address) {
        guard case .success(let quote) = icmp.quotedDatagram(in: payload) else {
            count(.icmpMalformed)
            return
        }
        switch quote.header.protocol {
        case .udp:
            udpError(icmp.header.message, quote: quote)
        case .tcp:
            transportHandlers[Int(IPProtocol.tcp.rawValue)]?.controlInput(
                icmp.header.message, quote: quote,
                transport: UnsafeRawBufferPointer(rebasing: payload[quote.transportRange]))
        case .icmp:
            // Our echo request: identifier and sequence are bytes 4..<8 of the quote.
            let start = quote.transportRange.lowerBound
            guard let identifier = try? payload.networkUInt16(at: start + 4),
                let sequence = try? payload.networkUInt16(at: start + 6)
            else { return }
            pingFailed(identifier: identifier, sequence: sequence, message: icmp.header.message, from: sender)
        default:
            break
        }
    }
}
