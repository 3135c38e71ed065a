import NetMPSockets

/// What close(2) with SO_LINGER waits for: the peer acknowledged our FIN, or the connection
/// ended (reset, timed out).
package enum TCPLingerCondition: WaitPredicate {
    package static func condition(block: TCPControlBlock) -> WaitCondition {
        .protocolDefined(ProtocolCondition(TCPLingerCondition.self, subject: block))
    }

    package static func isSatisfied(subject: AnyObject, amount: Int, for socket: Socket, state: SocketState) -> Bool {
        let block = unsafeDowncast(subject, to: TCPControlBlock.self)
        return block.sendFinished.load(ordering: .sequentiallyConsistent) || state.contains(.disconnected)
    }
}
