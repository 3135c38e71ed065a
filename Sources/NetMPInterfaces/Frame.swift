import NetMPRuntime
import NetMPWire

/// One link-layer frame: a contiguous slice of a pooled chunk (an mbuf with one cluster), and,
/// for a TCP segment larger than the link's MTU, the size of the segments it stands for. On an
/// interface with the `scatterGather` offload the slice may hold only the headers, the payload
/// following as `gathered` slices of the sender's buffers (an mbuf chain).
///
/// Frames are immutable once handed to an interface: a duplicated frame shares its chunk, and a
/// received datagram's payload is given to the socket as a slice of the same chunk (zero-copy).
public struct Frame: @unchecked Sendable {
    /// The frame's bytes from the link header on: all of them, or the headers of a gathered one.
    public var slice: ByteSlice
    /// The payload after `slice`, shared with the buffers it came from (scatter-gather); empty
    /// for a contiguous frame, the only kind an interface without `scatterGather` is given.
    public var gathered: [ByteSlice] {
        get { pieces ?? [] }
        set { pieces = newValue.isEmpty ? nil : newValue }
    }
    /// Nil, not an empty array, for a contiguous frame: copying a frame then retains one
    /// reference (the chunk's), not two.
    private var pieces: [ByteSlice]?
    /// Zero for an ordinary frame. Otherwise the frame is a large TCP/IPv4 segment (TCP
    /// segmentation offload, an skb's gso_size): it goes on the wire as segments of this many
    /// payload bytes each, cut by the interface or by its peer (a TAP device's kernel, told by the
    /// virtio-net header); loopback delivers it whole.
    public var segmentSize: Int

    public init(_ slice: ByteSlice, segmentSize: Int = 0) {
        self.slice = slice
        self.segmentSize = segmentSize
    }

    public init(chunk: ByteChunk, start: Int, end: Int, segmentSize: Int = 0) {
        self.init(ByteSlice(chunk: chunk, start: start, end: end), segmentSize: segmentSize)
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
    /// The payload follows in `gathered` slices.
    @inline(__always) public var isGathered: Bool { pieces != nil }

    /// The frame's length, gathered payload included.
    public var count: Int {
        var total = slice.count
        if let pieces { for piece in pieces { total += piece.count } }
        return total
    }

    /// True for a large TCP segment the interface is to cut (or deliver whole).
    @inline(__always) public var isLargeSegment: Bool { segmentSize > 0 }

    /// The same bytes as one contiguous frame (a copy when gathered), for a path that reads
    /// them in place.
    public func contiguous(pool: ChunkPool = .shared) -> Frame {
        guard isGathered else { return self }
        let total = count
        let chunk = pool.take(atLeast: total)
        var offset = chunk.filled
        let start = offset
        for piece in [slice] + gathered {
            (chunk.base + offset).copyMemory(from: piece.chunk.base + piece.start, byteCount: piece.count)
            offset += piece.count
        }
        chunk.filled = offset
        return Frame(chunk: chunk, start: start, end: offset, segmentSize: segmentSize)
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
