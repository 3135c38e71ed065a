import NetMPRuntime

/// Received bytes as the integration hands them to the state machine: slices of the frames they
/// arrived in, trimmed in place, so reassembly and delivery never copy.
extension ByteSlice: TCPPayload {
    public func droppingFirst(_ count: Int) -> ByteSlice {
        var slice = self
        slice.start = Swift.min(end, start + Swift.max(0, count))
        return slice
    }

    public func keepingFirst(_ count: Int) -> ByteSlice {
        var slice = self
        slice.end = start + Swift.min(self.count, Swift.max(0, count))
        return slice
    }
}
