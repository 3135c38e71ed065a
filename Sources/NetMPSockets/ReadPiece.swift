import NetMPRuntime

/// Bytes read into an array made for them: sized by what the socket holds when they are taken
/// (never by the caller's maximum alone) and not zeroed first, so a read of up to a megabyte
/// that finds a hundred bytes allocates a hundred.
package struct ReadPiece {
    package var bytes: [UInt8]
    /// The stream ended (end-of-file, or closed) and nothing was taken.
    package var ended: Bool

    /// Copies a datagram (at most `maxBytes` of it) into an array of its size.
    package static func copy(_ data: BufferChain, maxBytes: Int) -> ([UInt8], Int) {
        let bytes = [UInt8](unsafeUninitializedCapacity: Swift.min(Swift.max(0, maxBytes), data.count)) { raw, count in
            count = data.copyOut(into: UnsafeMutableRawBufferPointer(raw))
        }
        return (bytes, bytes.count)
    }
}

extension Socket {
    /// Takes the next datagram (at most `maxBytes` of it) into an array of its size. Not
    /// generic, so that callers in other modules get the code specialised here.
    package func attemptDatagramReceive(upTo maxBytes: Int, flags: MessageFlags) throws(NetError)
        -> (output: [UInt8], receipt: DatagramReceipt)?
    {
        try attemptDatagramReceive(flags: flags) { ReadPiece.copy($0, maxBytes: maxBytes) }
    }

    /// Takes, without waiting, up to `maxBytes` of what the receive buffer holds now into a new
    /// array (at least one byte's room, to learn of the end). Wait-all is the caller's loop.
    package func readPiece(upTo maxBytes: Int, flags: MessageFlags) throws(NetError) -> ReadPiece {
        let available = receiveBuffer.byteCount.load(ordering: .sequentiallyConsistent)
        let size = Swift.min(maxBytes, Swift.max(1, available))
        var failure: NetError?
        var blocked = false
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { raw, count in
            var copied = 0
            do throws(NetError) {
                blocked =
                    try attemptStreamReceive(
                        into: UnsafeMutableRawBufferPointer(raw), flags: flags.subtracting(.waitAll), copied: &copied)
                    != nil
            } catch {
                failure = error
            }
            count = copied
        }
        if let failure { throw failure }
        // Nothing taken and nothing to wait for: the end. (Nothing taken but blocked: another
        // reader took the bytes first; the caller waits again.)
        return ReadPiece(bytes: bytes, ended: bytes.isEmpty && !blocked)
    }
}
