/// One link-layer frame: a contiguous region of a pooled chunk (an mbuf with one cluster).
///
/// Frames are immutable once handed to an interface: a duplicated frame shares its chunk, and a
/// received datagram's payload is given to the socket as a slice of the same chunk (zero-copy).
public struct Frame: @unchecked Sendable {
    public var chunk: ByteChunk
    public var start: Int
    public var end: Int

    public init(chunk: ByteChunk, start: Int, end: Int) {
        self.chunk = chunk
        self.start = start
        self.end = end
    }

    /// A frame holding a copy of `bytes`.
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
        var frame: Frame?
        bytes.withUnsafeBytes { frame = Frame(copying: $0) }
        guard let frame else { preconditionFailure("unreachable") }
        self = frame
    }

    @inline(__always) public var count: Int { end - start }

    /// The frame's bytes (valid while the frame is alive).
    @inline(__always) public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: chunk.base + start, count: end - start)
    }

    /// A copy of the bytes (tests, capture).
    public var array: [UInt8] { [UInt8](bytes) }
}
