// Network byte order reads and writes, bounds-checked, over raw byte views.

extension UnsafeRawBufferPointer {
    /// Reads one byte at `offset`, or `.truncated` if it lies outside the view.
    @inlinable
    public func networkUInt8(at offset: Int) throws(WireError) -> UInt8 {
        guard offset >= 0, offset < count else { throw .truncated }
        return load(fromByteOffset: offset, as: UInt8.self)
    }

    /// Reads a big-endian 16-bit value at `offset` (any alignment), or `.truncated`.
    @inlinable
    public func networkUInt16(at offset: Int) throws(WireError) -> UInt16 {
        guard offset >= 0, offset <= count - 2 else { throw .truncated }
        return UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    /// Reads a big-endian 32-bit value at `offset` (any alignment), or `.truncated`.
    @inlinable
    public func networkUInt32(at offset: Int) throws(WireError) -> UInt32 {
        guard offset >= 0, offset <= count - 4 else { throw .truncated }
        return UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// A sub-view of `range`, or `.truncated` if the range is not inside this view.
    @inlinable
    public func networkSlice(_ range: Range<Int>) throws(WireError) -> UnsafeRawBufferPointer {
        guard range.lowerBound >= 0, range.upperBound <= count else { throw .truncated }
        return UnsafeRawBufferPointer(rebasing: self[range])
    }
}

extension UnsafeMutableRawBufferPointer {
    /// Writes one byte at `offset`, or `.bufferTooSmall` if it lies outside the view.
    @inlinable
    public func storeNetwork(_ value: UInt8, at offset: Int) throws(WireError) {
        guard offset >= 0, offset < count else { throw .bufferTooSmall }
        storeBytes(of: value, toByteOffset: offset, as: UInt8.self)
    }

    /// Writes `value` big-endian at `offset` (any alignment), or `.bufferTooSmall`.
    @inlinable
    public func storeNetwork(_ value: UInt16, at offset: Int) throws(WireError) {
        guard offset >= 0, offset <= count - 2 else { throw .bufferTooSmall }
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt16.self)
    }

    /// Writes `value` big-endian at `offset` (any alignment), or `.bufferTooSmall`.
    @inlinable
    public func storeNetwork(_ value: UInt32, at offset: Int) throws(WireError) {
        guard offset >= 0, offset <= count - 4 else { throw .bufferTooSmall }
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
    }

    /// A mutable sub-view of `range`, or `.bufferTooSmall` if the range is not inside this view.
    @inlinable
    public func networkSlice(_ range: Range<Int>) throws(WireError) -> UnsafeMutableRawBufferPointer {
        guard range.lowerBound >= 0, range.upperBound <= count else { throw .bufferTooSmall }
        return UnsafeMutableRawBufferPointer(rebasing: self[range])
    }
}

/// Emits into a fresh `[UInt8]` of `capacity` bytes and trims it to what was written.
///
/// The `[UInt8]` conveniences for tests and tools share this so each protocol needs one line.
func emitToArray(
    capacity: Int,
    _ body: (UnsafeMutableRawBufferPointer) throws(WireError) -> Int
) throws(WireError) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: capacity)
    let outcome = bytes.withUnsafeMutableBytes { buffer in
        Result { () throws(WireError) -> Int in try body(buffer) }
    }
    let written = try outcome.get()
    bytes.removeLast(Swift.max(0, capacity - written))
    return bytes
}
