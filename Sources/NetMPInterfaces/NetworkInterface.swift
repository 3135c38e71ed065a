import NetMPRuntime
import NetMPWire
import Synchronization

/// What an interface does in place of the stack (offloads).
public struct InterfaceOffloads: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Checksums are neither computed on output (UDP sends 0, "none") nor verified on input, as
    /// Linux does on loopback. Only for links that cannot corrupt.
    @inlinable public static var checksumsSkipped: InterfaceOffloads { InterfaceOffloads(rawValue: 1 << 0) }
    /// TCP segmentation offload: the interface takes TCP/IPv4 segments larger than its MTU, up
    /// to `NetworkInterface.largeSegmentLimit` (frames with a `segmentSize`), and cuts them into
    /// segments of that size, has its peer cut them (TAP: GSO through the virtio-net header), or
    /// delivers them whole (loopback, as Linux's lo with its 64 KiB MTU).
    @inlinable public static var tcpSegmentation: InterfaceOffloads { InterfaceOffloads(rawValue: 1 << 1) }
    /// Scatter-gather: the interface takes frames whose payload follows the headers as slices
    /// of the sender's buffers (`Frame.gathered`), so a segment's data is not copied to be sent.
    @inlinable public static var scatterGather: InterfaceOffloads { InterfaceOffloads(rawValue: 1 << 2) }
}

/// Which frames a capture records.
public enum CaptureDirection: Sendable, Hashable {
    case transmit, receive, both
}

/// Counters of one interface.
public struct InterfaceStatistics: Sendable, Hashable {
    public var framesSent = 0
    public var framesReceived = 0
    public var bytesSent = 0
    public var bytesReceived = 0
}

/// A network interface: frames go out in batches through `transmit`, and come in in batches
/// through the receiver the stack installs.
///
/// Subclasses provide `transmit` and hand what arrives to `deliverInbound`; the base keeps the
/// receiver, the capture and the counters. Subclass it (outside NetMP too) for other links.
open class NetworkInterface: @unchecked Sendable, CustomStringConvertible {
    public let name: String
    public let mtu: Int
    public let hardwareAddress: MACAddress
    public let offloads: InterfaceOffloads
    /// False for loopback: frames need no link-layer resolution.
    public let needsAddressResolution: Bool
    /// The longest IPv4 datagram carrying one TCP segment the interface takes: its MTU, or more
    /// with `tcpSegmentation`.
    public let largeSegmentLimit: Int

    /// The longest IPv4 datagram a large segment may be: with the Ethernet header it fills the
    /// largest pooled chunk and the capture's snap length exactly (Linux's GSO limit is 64 KiB).
    public static let largestOffloadedDatagram = 65521

    private let lock = NetLock()
    private var capture: PcapWriter?  // under lock
    private var captureDirection: CaptureDirection = .both  // under lock
    /// Whether `capture` is set: the per-batch paths read it instead of taking `lock`.
    private let capturing = Atomic<Bool>(false)
    /// The installed receiver (a `ReceiverBox`'s address, or 0), read per batch without a lock
    /// or a retain: a lock and a retained closure were atomics on lines every thread that
    /// receives here shares. `receiverBox` holds it.
    private let receiverBits = Atomic<UInt>(0)
    private var receiverBox: ReceiverBox?  // under lock
    /// Deliveries running now, counted per OS thread (`StripedCounters`, each thread's count
    /// on a line of its own): a replaced receiver is released once each count was seen at zero.
    private let deliveriesRunning = StripedCounters(width: 1)
    /// Frames and bytes sent and received, per OS thread (`Counter`): the interface is shared by
    /// every thread that sends or receives on it.
    private let counters = StripedCounters(width: 4)

    private enum Counter {
        static let framesSent = 0
        static let bytesSent = 1
        static let framesReceived = 2
        static let bytesReceived = 3
    }

    private final class ReceiverBox: Sendable {
        let receive: @Sendable ([Frame]) -> Void
        init(_ receive: @escaping @Sendable ([Frame]) -> Void) { self.receive = receive }
    }

    public init(
        name: String, mtu: Int, hardwareAddress: MACAddress, offloads: InterfaceOffloads, needsAddressResolution: Bool
    ) {
        self.name = name
        self.mtu = mtu
        self.hardwareAddress = hardwareAddress
        self.offloads = offloads
        self.needsAddressResolution = needsAddressResolution
        largeSegmentLimit =
            offloads.contains(.tcpSegmentation) ? Swift.max(mtu, NetworkInterface.largestOffloadedDatagram) : mtu
    }

    open var description: String { "\(name) (\(hardwareAddress), mtu \(mtu))" }

    /// Sends a batch of complete Ethernet frames. Called from protocol threads; must not block
    /// on them. Call `noteTransmitted` for what was sent (counters and capture).
    open func transmit(_ frames: [Frame]) {
        fatalError("NetworkInterface.transmit must be overridden")
    }

    // MARK: Busy polling

    /// Whether a thread waiting on a socket may read this interface itself while it spins (a
    /// device that a reader thread otherwise reads; see `BusyPolling` in the socket layer).
    open var supportsBusyPolling: Bool { false }

    /// A thread starts spinning on this interface: its readers stand aside until `endBusyPoll`.
    open func beginBusyPoll() {}

    /// Reads and delivers (`deliverInbound`) what is ready now, without blocking; true if a
    /// frame was delivered.
    open func busyPoll() -> Bool { false }

    /// The spin began by `beginBusyPoll` is over; `blocking`: the thread goes to sleep, the
    /// readers must take over at once.
    open func endBusyPoll(blocking: Bool) {}

    /// Installs (or removes) the consumer of inbound batches.
    /// Not from inside a receiver (it waits for the deliveries running now to end).
    public func setReceiver(_ receiver: (@Sendable ([Frame]) -> Void)?) {
        let box = receiver.map { ReceiverBox($0) }
        let replaced: ReceiverBox? = lock.withLock {
            let replaced = receiverBox
            receiverBox = box
            let bits = box.map { UInt(bitPattern: Unmanaged.passUnretained($0).toOpaque()) } ?? 0
            receiverBits.store(bits, ordering: .sequentiallyConsistent)
            return replaced
        }
        // A delivery that read the old address before the store may still be calling it.
        if replaced != nil { deliveriesRunning.waitForZero(0) }
        withExtendedLifetime(replaced) {}
    }

    /// Records frames to `writer` (nil stops).
    public func setCapture(_ writer: PcapWriter?, direction: CaptureDirection = .both) {
        lock.withLock {
            capture = writer
            captureDirection = direction
            capturing.store(writer != nil, ordering: .relaxed)
        }
    }

    public var statistics: InterfaceStatistics {
        InterfaceStatistics(
            framesSent: counters.sum(Counter.framesSent), framesReceived: counters.sum(Counter.framesReceived),
            bytesSent: counters.sum(Counter.bytesSent), bytesReceived: counters.sum(Counter.bytesReceived))
    }

    /// Subclasses call this for what they send.
    public func noteTransmitted(_ frames: [Frame]) {
        var bytes = 0
        for frame in frames { bytes += frame.count }
        let stripe = StripedCounters.currentStripe
        counters.add(frames.count, to: Counter.framesSent, stripe: stripe)
        counters.add(bytes, to: Counter.bytesSent, stripe: stripe)
        guard capturing.load(ordering: .relaxed) else { return }
        lock.lock()
        let writer: PcapWriter? = captureDirection == .receive ? nil : capture
        lock.unlock()
        if let writer {
            for frame in frames {
                if frame.isGathered {
                    frame.array.withUnsafeBytes { writer.write($0) }
                } else {
                    writer.write(frame.bytes)
                }
            }
        }
    }

    /// Subclasses call this to hand inbound frames to the stack (and the capture, if
    /// `recording`).
    public func deliverInbound(_ frames: [Frame], recording: Bool = true) {
        guard !frames.isEmpty else { return }
        var bytes = 0
        for frame in frames { bytes += frame.count }
        let stripe = StripedCounters.currentStripe
        counters.add(frames.count, to: Counter.framesReceived, stripe: stripe)
        counters.add(bytes, to: Counter.bytesReceived, stripe: stripe)
        if recording && capturing.load(ordering: .relaxed) {
            lock.lock()
            let writer: PcapWriter? = captureDirection == .transmit ? nil : capture
            lock.unlock()
            if let writer { for frame in frames { writer.write(frame.bytes) } }
        }
        // Counted in before the address is read (both sequentially consistent), so a
        // `setReceiver` that replaced it waits for this call to end before releasing it.
        deliveriesRunning.addOrdered(1, to: 0, stripe: stripe)
        if let box = UnsafeRawPointer(bitPattern: receiverBits.load(ordering: .sequentiallyConsistent)) {
            Unmanaged<ReceiverBox>.fromOpaque(box)._withUnsafeGuaranteedRef { $0.receive(frames) }
        }
        deliveriesRunning.addOrdered(-1, to: 0, stripe: stripe)
    }
}

/// The loopback interface: what it sends it receives, in the same batch. Checksums are
/// skipped (the `checksumsSkipped` offload), frames carry zero MAC addresses, and a capture
/// records each frame once. TCP segments of up to 64 KiB are taken whole (`tcpSegmentation`),
/// as Linux's lo takes them: the receiver gets one large segment, as GRO would give it, its
/// payload still the sender's send-buffer slices (`scatterGather`), which the receive buffer
/// appends as they are: the data is copied only in by the writer and out by the reader.
public final class LoopbackInterface: NetworkInterface, @unchecked Sendable {
    public init(name: String = "lo", mtu: Int = 16384, largeSegments: Bool = true) {
        super.init(
            name: name, mtu: mtu, hardwareAddress: .zero,
            offloads: largeSegments ? [.checksumsSkipped, .tcpSegmentation, .scatterGather] : .checksumsSkipped,
            needsAddressResolution: false)
    }

    public override func transmit(_ frames: [Frame]) {
        guard !frames.isEmpty else { return }
        noteTransmitted(frames)
        deliverInbound(frames, recording: false)
    }
}
