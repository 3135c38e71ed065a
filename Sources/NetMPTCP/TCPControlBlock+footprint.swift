import NetMPRuntime
import NetMPSockets

extension TCPControlBlock {
    /// The heap a TCP socket's protocol side costs, object by object: the control block (the
    /// connection value lives inside it), its owner port, names, options, embedded messages and
    /// callout, and the connection's own storage. Read it where the owner's state is safe to read:
    /// on the owner thread, or from the caller of a deterministic (stepped) stack between steps.
    package static func footprint(of socket: Socket) -> [FootprintItem] {
        guard let object = socket.controlBlock else { return [] }
        let block = unsafeDowncast(object, to: TCPControlBlock.self)
        var messages = 0
        if let message = block.outputMessage { messages += HeapFootprint.of(message) }
        if let message = block.receivedMessage { messages += HeapFootprint.of(message) }
        var connectionStorage = 0
        if let connection = block.connection {
            connectionStorage += HeapFootprint.of(connection.outOfOrder.entries)
            // An existential keeps a value of more than three words in a box of its own.
            let size = controllerSize(type(of: connection.congestionControl))
            if size > 3 * MemoryLayout<Int>.size { connectionStorage += 16 + size }
            // CUBIC's curve state, once the connection has made its own.
            if let cubic = connection.congestionControl as? Cubic, let state = cubic.ownedStateObject {
                connectionStorage += HeapFootprint.of(state)
            }
        }
        return [
            FootprintItem("TCP control block (with the connection value)", HeapFootprint.of(block)),
            FootprintItem("owner port", HeapFootprint.of(block.port) + block.port.lock.footprint),
            FootprintItem("socket options", HeapFootprint.of(block.options)),
            FootprintItem("embedded messages", messages),
            FootprintItem("callout", block.callout.map { HeapFootprint.of($0) } ?? 0),
            FootprintItem("connection storage", connectionStorage),
        ]
    }

    private static func controllerSize(_ controller: any TCPCongestionControl.Type) -> Int {
        func size<T: TCPCongestionControl>(_: T.Type) -> Int { MemoryLayout<T>.size }
        return size(controller)
    }
}
