import NetMPRuntime
import NetMPWire

/// One link-layer frame: a contiguous slice of a pooled chunk (an mbuf with one cluster), and,
/// for a TCP segment larger than the link's MTU, the size of the segments it stands for. On an
/// interface with the `scatterGather` offload the slice may hold only the headers, the payload
/// following as `gathered` slices of the sender's buffers (an mbuf chain), which the chunk the
/// frame starts in holds (as a packet header mbuf heads its chain), so a frame is one reference.
///
/// Frames are immutable once handed to an interface: a duplicated frame shares its chunk, and a
/// received datagram's payload is given to the socket as a slice of the same chunk (zero-copy).
public struct Frame: @unchecked Sendable {
    /// The frame's bytes from the link header on: all of them, or the headers of a gathered one.
    public var slice: ByteSlice
    /// The segment size, and the byte count of the gathered payload (whose slices the chunk
    /// holds): plain integers, so a frame still holds one reference and an ordinary frame never
    /// reads its chunk's fields.
    private var segmentSize16: UInt16 = 0
    private var checksumFlags: UInt8 = 0
    private var gatheredBytes32: Int32 = 0

    public init(_ slice: ByteSlice) {
        self.slice = slice
    }

    public init(chunk: ByteChunk, start: Int, end: Int) {
        self.init(ByteSlice(chunk: chunk, start: start, end: end))
    }

    /// A frame built in `chunk` (taken for it, not yet seen by anyone else): a large segment of
    /// `segmentSize`, and the `gathered` payload that follows it, which the chunk keeps.
    public init(chunk: ByteChunk, start: Int, end: Int, segmentSize: Int, gathered: [ByteSlice] = []) {
        var bytes = 0
        for piece in gathered { bytes += piece.count }
        if bytes > 0 || chunk.trailing != nil { chunk.trailing = bytes > 0 ? gathered : nil }
        self.init(ByteSlice(chunk: chunk, start: start, end: end))
        segmentSize16 = UInt16(clamping: segmentSize)
        gatheredBytes32 = Int32(clamping: bytes)
    }

    /// A frame holding a copy of `bytes` in a chunk from `pool`.
    public init(copying bytes: UnsafeRawBufferPointer, pool: ChunkPool = .shared) {
        self.init(ByteSlice(copying: bytes, pool: pool))
    }

    public init(_ bytes: [UInt8]) {
        self.init(ByteSlice(bytes))
    }

    @inline(__always) public var chunk: ByteChunk { slice.chunk }
    @inline(__always) public var start: Int { slice.start }
    @inline(__always) public var end: Int { slice.end }
    /// The bytes of a contiguous frame; only the headers of a gathered one.
    @inline(__always) public var bytes: UnsafeRawBufferPointer { slice.bytes }

    /// Zero for an ordinary frame. Otherwise the frame is a large TCP/IPv4 segment (TCP
    /// segmentation offload, an skb's gso_size): it goes on the wire as segments of this many
    /// payload bytes each, cut by the interface or by its peer (a TAP device's kernel, told by the
    /// virtio-net header); loopback delivers it whole.
    @inline(__always) public var segmentSize: Int { Int(segmentSize16) }
    /// True for a large TCP segment the interface is to cut (or deliver whole).
    @inline(__always) public var isLargeSegment: Bool { segmentSize16 > 0 }

    /// The interface vouches for the transport checksum (Linux's CHECKSUM_UNNECESSARY or
    /// CHECKSUM_PARTIAL): the frame was made by the host's own kernel and crossed no wire, so
    /// summing it again would only cost a pass over the payload.
    @inline(__always) public var checksumTrusted: Bool {
        get { checksumFlags & Frame.trusted != 0 }
        set { checksumFlags = newValue ? checksumFlags | Frame.trusted : checksumFlags & ~Frame.trusted }
    }
    /// The transport checksum field holds only the pseudo-header's sum (VIRTIO_NET_HDR_F_NEEDS_CSUM,
    /// always from the IP payload's start): the sum must be finished before the frame leaves
    /// the stack (forwarding). A partial frame is trusted too.
    @inline(__always) public var checksumPartial: Bool {
        get { checksumFlags & Frame.partial != 0 }
        set { checksumFlags = newValue ? checksumFlags | Frame.partial : checksumFlags & ~Frame.partial }
    }
    private static let trusted: UInt8 = 1
    private static let partial: UInt8 = 2

    /// The payload after `slice`, shared with the buffers it came from (scatter-gather); empty
    /// for a contiguous frame, the only kind an interface without `scatterGather` is given.
    @inline(__always) public var gathered: [ByteSlice] { isGathered ? slice.chunk.trailing ?? [] : [] }
    /// The payload follows in `gathered` slices.
    @inline(__always) public var isGathered: Bool { gatheredBytes32 > 0 }

    /// The frame's length, gathered payload included.
    @inline(__always) public var count: Int { slice.count + Int(gatheredBytes32) }

    /// The same bytes as one contiguous frame (a copy when gathered), for a path that reads
    /// them in place.
    public func contiguous(pool: ChunkPool = .shared) -> Frame {
        guard isGathered else { return self }
        let joined = slice.joined(with: gathered, pool: pool)
        return Frame(chunk: joined.chunk, start: joined.start, end: joined.end, segmentSize: segmentSize)
    }

    /// A copy of the bytes, gathered payload included (tests, capture).
    public var array: [UInt8] {
        guard isGathered else { return slice.array }
        var bytes = slice.array
        bytes.reserveCapacity(count)
        for piece in gathered { bytes.append(contentsOf: piece.bytes) }
        return bytes
    }
}

extension ByteSlice {
    /// A slice holding a copy of `bytes` in a chunk from `pool`.
    public init(copying bytes: UnsafeRawBufferPointer, pool: ChunkPool = .shared) {
        let chunk = pool.take(atLeast: Swift.max(1, bytes.count))
        if let source = bytes.baseAddress, !bytes.isEmpty {
            (chunk.base + chunk.filled).copyMemory(from: source, byteCount: bytes.count)
        }
        let start = chunk.filled
        chunk.filled += bytes.count
        self.init(chunk: chunk, start: start, end: start + bytes.count)
    }

    public init(_ bytes: [UInt8]) {
        var slice: ByteSlice?
        bytes.withUnsafeBytes { slice = ByteSlice(copying: $0) }
        guard let slice else { preconditionFailure("unreachable") }
        self = slice
    }

    /// A copy of the bytes (tests, capture).
    public var array: [UInt8] { [UInt8](bytes) }
}
