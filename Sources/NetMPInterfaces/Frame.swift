import NetMPRuntime
import NetMPWire

/// One link-layer frame: a contiguous slice of a pooled chunk (an mbuf with one cluster).
///
/// Frames are immutable once handed to an interface: a duplicated frame shares its chunk, and a
/// received datagram's payload is given to the socket as a slice of the same chunk (zero-copy).
public typealias Frame = ByteSlice

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
