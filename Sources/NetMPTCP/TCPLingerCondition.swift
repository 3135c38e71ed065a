import NetMPSockets

/// What close(2) with SO_LINGER waits for: the peer acknowledged our FIN, or the connection
/// ended (reset, timed out). One reference: stored inline in the wait condition.
package struct TCPLingerCondition: WaitPredicate {
    let block: TCPControlBlock

    package init(block: TCPControlBlock) { self.block = block }

    package func isSatisfied(for socket: Socket, state: SocketState) -> Bool {
        block.sendFinished.load(ordering: .sequentiallyConsistent) || state.contains(.disconnected)
    }
}
