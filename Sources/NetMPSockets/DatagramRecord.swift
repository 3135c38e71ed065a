import NetMPRuntime

/// One datagram held in a buffer, with its sender (or, queued for output, its destination).
///
/// Public only so that code in NetMP's other modules can inline and specialise it (Swift does
/// not inline members of `package` types across modules); its members are `package`, not API.
public struct DatagramRecord {
    @usableFromInline package var data: BufferChain
    @usableFromInline package var source: SocketAddress

    @inlinable package init(data: BufferChain, source: SocketAddress) {
        self.data = data
        self.source = source
    }

    /// What a datagram costs its buffer beyond its payload (record, slices, chunk slack), so
    /// that a flood of empty or tiny datagrams cannot hold unbounded memory.
    @inlinable package static var overhead: Int { 256 }

    /// The bytes a datagram of `length` is charged against its buffer's limit.
    @inlinable @inline(__always) package static func charge(forPayload length: Int) -> Int { length + overhead }

    @inlinable @inline(__always) package var charge: Int { DatagramRecord.charge(forPayload: data.count) }
}
