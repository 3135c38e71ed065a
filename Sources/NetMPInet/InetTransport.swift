import NetMPInterfaces
import NetMPRuntime
import NetMPWire

/// A transport protocol living above IPv4 in another target (TCP): Inet hands it the datagrams
/// of its protocol number on the thread they hash to, and knows nothing else about it, so Inet
/// never imports the transport.
package protocol InetTransportHandler: AnyObject {
    /// A whole (reassembled) datagram for this stack arrived on its owner thread.
    func input(_ datagram: InetTransportDatagram)
    /// An ICMP error quoting a datagram of this protocol that we sent arrived (on whichever
    /// thread the ICMP message hashed to); `transport` holds the quoted transport bytes (at
    /// least 8).
    func controlInput(_ message: ICMPMessage, quote: ICMPQuotedDatagram, transport: UnsafeRawBufferPointer)
}

extension ICMPMessage {
    /// What a transport socket reports for this ICMP error about a datagram it sent, as Linux
    /// converts them (icmp_err_convert): port or protocol unreachable is a refusal; TTL exceeded
    /// and the other unreachable codes are an unreachable host. Nil for what names no failure of
    /// the socket's own: fragmentation needed (path MTU discovery's), non-errors.
    package var transportError: NetError? {
        switch self {
        case .destinationUnreachable(let code, _):
            switch code {
            case .portUnreachable, .protocolUnreachable: return .connectionRefused
            case .networkUnreachable: return .networkUnreachable
            case .fragmentationNeeded: return nil
            default: return .hostUnreachable
            }
        case .timeExceeded:
            return .hostUnreachable
        default:
            return nil
        }
    }
}

/// A registered handler reached without a retain: its dynamic type and its address, the object
/// kept alive by `InetThread.transportHandlers`. A handler read from that array was retained and
/// released per datagram, atomics on the header of an object every CPU that runs as this
/// thread's owner touches.
struct TransportHandlerReference {
    private let handlerType: any InetTransportHandler.Type
    private let object: Unmanaged<AnyObject>

    init(_ handler: any InetTransportHandler) {
        handlerType = Swift.type(of: handler)
        object = Unmanaged.passUnretained(handler as AnyObject)
    }

    @inline(__always) func input(_ datagram: InetTransportDatagram) {
        TransportHandlerReference.input(handlerType, object, datagram)
    }

    private static func input<Handler: InetTransportHandler>(
        _: Handler.Type, _ object: Unmanaged<AnyObject>, _ datagram: InetTransportDatagram
    ) {
        Unmanaged<Handler>.fromOpaque(object.toOpaque())._withUnsafeGuaranteedRef { $0.input(datagram) }
    }
}

extension InetTransportHandler {
    package func controlInput(_ message: ICMPMessage, quote: ICMPQuotedDatagram, transport: UnsafeRawBufferPointer) {}
}

/// What a transport sees of an inbound datagram: addresses and where its payload lies in the
/// frame's chunk (slices of it may be kept without a copy).
package struct InetTransportDatagram {
    package var source: IPv4Address
    package var destination: IPv4Address
    /// Unowned: a transport datagram lives only for its handler's `input` call, while the frame
    /// or datagram it was made from holds the chunk (a counted copy was a retain and a release
    /// per segment). What the handler keeps it takes as a `ByteSlice`, which counts.
    package unowned(unsafe) var chunk: ByteChunk
    package var payloadStart: Int
    package var payloadEnd: Int
    /// The interface skipped checksums (loopback or an offload): do not verify them.
    package var checksumsSkipped: Bool
    /// Sent to a broadcast address (at the IP or link layer): never answered.
    package var isBroadcast: Bool
    /// The IP header's ECN field (RFC 3168: 3 is CE, congestion experienced).
    package var ecn: UInt8 = 0
    /// The transport payload's bytes after those in the chunk, as slices of the sender's buffers
    /// (a scatter-gather frame over loopback, recorded in its chunk): kept, never copied.
    package var gathered: [ByteSlice] { isGathered ? chunk.trailing ?? [] : [] }
    package var isGathered = false

    @inline(__always) package var payload: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: chunk.base + payloadStart, count: payloadEnd - payloadStart)
    }

    /// `chunk` is borrowed from the caller, which holds it for the datagram's life.
    @inline(__always) package init(
        source: IPv4Address, destination: IPv4Address, chunk: __shared ByteChunk, payloadStart: Int, payloadEnd: Int,
        checksumsSkipped: Bool, isBroadcast: Bool, ecn: UInt8 = 0, isGathered: Bool = false
    ) {
        self.source = source
        self.destination = destination
        self.chunk = chunk
        self.payloadStart = payloadStart
        self.payloadEnd = payloadEnd
        self.checksumsSkipped = checksumsSkipped
        self.isBroadcast = isBroadcast
        self.ecn = ecn
        self.isGathered = isGathered
    }
}

extension InetStack {
    /// Registers the handler of IP protocol `number` on every protocol thread (made on, and
    /// installed by, each thread). Called once, when the stack is made.
    package func installTransport(
        protocol number: UInt8, _ make: @escaping @Sendable (InetThread) -> any InetTransportHandler
    ) {
        for state in perThread {
            let install: @Sendable () -> Void = {
                let handler = make(state)
                state.transportHandlers[Int(number)] = handler
                state.transportInputs[Int(number)] = TransportHandlerReference(handler)
            }
            if state.thread.isCurrent {
                install()
            } else {
                _ = try? state.thread.call { () throws(NetError) in install() }
            }
        }
    }
}

/// What a transport on a protocol thread may ask of IPv4 there.
extension InetThread {
    /// The index of this thread (the owner of the flows that hash to it).
    package var threadIndex: Int { index }

    package var nanoseconds: Int64 { now }

    package func transportRoute(to destination: IPv4Address, from source: IPv4Address?) -> NextHop? {
        config.route(to: destination, from: source)
    }

    /// Whether `address` is one of this stack's (loopback included).
    package func isOwnAddress(_ address: IPv4Address) -> Bool { isLocalDestination(address) }

    /// The MTU of interface `index` (0 when there is none).
    package func mtu(ofInterface index: Int) -> Int {
        index < links.count ? links[index].mtu : 0
    }

    package func transportChecksumsSkipped(_ interfaceIndex: Int) -> Bool { checksumsSkipped(interfaceIndex) }

    /// Sends the transport payload at `chunk[payloadStart ..< payloadEnd]` (with at least
    /// `InetThread.headroom` bytes before it) from `hop.source` to `destination`, with `ecn` in the
    /// IP header's ECN field (the transport decides ECT, RFC 3168 6.1.5). A large TCP segment
    /// names its `segmentSize` (payload bytes per segment on the wire; `outputIP`); `gathered`
    /// slices follow the payload without a copy (scatter-gather). `chunk` is consumed: a caller
    /// that took it for this datagram hands its reference on to the frame.
    @discardableResult
    package func transportOutput(
        chunk: consuming ByteChunk, payloadStart: Int, payloadEnd: Int, protocol number: UInt8, hop: NextHop,
        destination: IPv4Address, ecn: UInt8 = 0, segmentSize: Int = 0, gathered: [ByteSlice]? = nil
    ) -> NetError? {
        outputIP(
            chunk: chunk, payloadStart: payloadStart, payloadEnd: payloadEnd, protocol: IPProtocol(rawValue: number),
            hop: hop, destination: destination, ecn: ecn, segmentSize: segmentSize, gathered: gathered)
    }

    /// Whether interface `index` takes frames whose payload follows as slices (scatter-gather).
    package func transportScatterGather(_ index: Int) -> Bool {
        index < links.count && links[index].offloads.contains(.scatterGather)
    }

    /// The longest IPv4 datagram one TCP segment may be on interface `index`: its MTU, or more
    /// with TCP segmentation offload (0 when there is no such interface).
    package func largeSegmentLimit(ofInterface index: Int) -> Int {
        index < links.count ? links[index].largeSegmentLimit : 0
    }

    /// The room every outbound packet needs in front of its transport header.
    package static var transportHeadroom: Int { headroom }

    func transportInput(_ datagram: InboundDatagram, handler: TransportHandlerReference) {
        handler.input(
            InetTransportDatagram(
                source: datagram.header.source, destination: datagram.header.destination, chunk: datagram.chunk,
                payloadStart: datagram.payloadStart, payloadEnd: datagram.payloadEnd,
                checksumsSkipped: transportChecksumSkipped(datagram),
                isBroadcast: datagram.destinationIsBroadcast || datagram.linkBroadcast, ecn: datagram.header.ecn))
    }
}

extension InetThread {
    /// Hands queued frames to the interfaces (after a timer outside a message batch).
    package func transportFlush() { flush() }
}
