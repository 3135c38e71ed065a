import NetMPRuntime

/// One object (with what it alone holds) in a memory report.
public struct FootprintItem: Sendable, Equatable {
    public var name: String
    public var bytes: Int

    package init(_ name: String, _ bytes: Int) {
        self.name = name
        self.bytes = bytes
    }
}

extension SocketBuffer {
    /// The buffer object, its lock, and the storage its queues hold now (nothing when empty and
    /// never grown: a chain of one slice keeps it inline). Chunks are counted apart.
    package var footprint: Int {
        let queues = lock.withLock {
            chain.slices.storageFootprint + (datagrams.map { HeapFootprint.of($0) + $0.records.storageFootprint } ?? 0)
        }
        return HeapFootprint.of(self) + lock.footprint + queues
    }

    /// Chunks this buffer references now (an idle socket's should be none).
    package var chunksHeld: Int {
        lock.withLock { chain.sliceCount }
    }
}

extension Socket {
    /// The heap this socket costs, object by object (the protocol's control block apart).
    package var footprint: [FootprintItem] {
        var items = [
            FootprintItem("socket", HeapFootprint.of(self) + HeapFootprint.of(state)),
            FootprintItem("receive buffer", receiveBuffer.footprint),
            FootprintItem("send buffer", sendBuffer.footprint),
        ]
        if let observers {
            items.append(FootprintItem("readiness observers", HeapFootprint.of(observers) + observers.lock.footprint))
        }
        if let waits = foreignWaits {
            items.append(FootprintItem("foreign waits", HeapFootprint.of(waits) + waits.lock.footprint))
        }
        if let queue = listenQueue {
            let queues = queue.lock.withLock {
                queue.incomplete.storageFootprint + queue.complete.storageFootprint
            }
            items.append(FootprintItem("listen queue", HeapFootprint.of(queue) + queue.lock.footprint + queues))
        }
        return items
    }
}
