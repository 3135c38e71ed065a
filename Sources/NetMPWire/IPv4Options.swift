/// IPv4 options (RFC 791 3.1): validated on parse, and the copied ones (the copy bit, 0x80 of
/// the type) chosen for fragments after the first.
public enum IPv4Options {
    /// End of option list and no-operation: one byte each, no length.
    static let endOfList: UInt8 = 0
    static let noOperation: UInt8 = 1

    /// Checks that every option's length is at least 2 and stays inside `options` (the header
    /// bytes after the first 20).
    public static func validate(_ options: UnsafeRawBufferPointer) throws(WireError) {
        var offset = 0
        while offset < options.count {
            let type = options[offset]
            if type == endOfList { return }
            if type == noOperation {
                offset += 1
                continue
            }
            guard offset + 1 < options.count else { throw .badOption }
            let length = Int(options[offset + 1])
            guard length >= 2, offset + length <= options.count else { throw .badOption }
            offset += length
        }
    }

    /// The options a fragment other than the first carries: those with the copy bit, in order,
    /// padded with end-of-list to a multiple of 4 bytes. Malformed options give none.
    public static func copiedOnFragmentation(_ options: UnsafeRawBufferPointer) -> [UInt8] {
        guard (try? validate(options)) != nil else { return [] }
        var copied: [UInt8] = []
        var offset = 0
        while offset < options.count {
            let type = options[offset]
            if type == endOfList { break }
            if type == noOperation {
                offset += 1
                continue
            }
            let length = Int(options[offset + 1])
            if type & 0x80 != 0 { copied += options[offset..<(offset + length)] }
            offset += length
        }
        while copied.count % 4 != 0 { copied.append(endOfList) }
        return copied
    }
}

extension IPv4Header {
    /// Writes the header with `options` (a multiple of 4 bytes, at most 40) and a freshly computed
    /// checksum at the start of `buffer`. Returns the header length.
    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer, options: UnsafeRawBufferPointer) throws(WireError)
        -> Int
    {
        guard options.count % 4 == 0, options.count <= 40 else { throw .badOption }
        let length = IPv4Header.minimumLength + options.count
        guard buffer.count >= length, Int(totalLength) >= length else { throw .bufferTooSmall }
        try emit(into: buffer)
        guard !options.isEmpty else { return length }
        try buffer.storeNetwork(UInt8(0x40 | length / 4), at: 0)
        for index in 0..<options.count {
            try buffer.storeNetwork(options[index], at: IPv4Header.minimumLength + index)
        }
        try buffer.storeNetwork(UInt16(0), at: 10)
        let headerBytes = UnsafeRawBufferPointer(try buffer.networkSlice(0..<length))
        try buffer.storeNetwork(InternetChecksum.checksum(headerBytes), at: 10)
        return length
    }
}
