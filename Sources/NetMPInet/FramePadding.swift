import NetMPInterfaces
import NetMPRuntime
import NetMPSockets
import NetMPWire

/// Ethernet's minimum frame: 60 bytes before the FCS. Shorter frames are padded with zeros
/// (in place when the chunk has room after the frame, else in a copy).
extension InetThread {
    func paddedForEthernet(_ frame: Frame) -> Frame {
        let minimum = InetThread.minimumFrameLength
        guard frame.count < minimum else { return frame }
        let chunk = frame.chunk
        if frame.start + minimum <= chunk.capacity && chunk.filled <= frame.end {
            (chunk.base + frame.end).initializeMemory(
                as: UInt8.self, repeating: 0, count: frame.start + minimum - frame.end)
            chunk.filled = frame.start + minimum
            return Frame(chunk: chunk, start: frame.start, end: frame.start + minimum)
        }
        let copy = ChunkPool.shared.take(atLeast: minimum)
        mutableRegion(copy, 0, minimum).initializeMemory(as: UInt8.self, repeating: 0)
        if let source = frame.bytes.baseAddress { copy.base.copyMemory(from: source, byteCount: frame.count) }
        copy.filled = minimum
        return Frame(chunk: copy, start: 0, end: minimum)
    }
}
