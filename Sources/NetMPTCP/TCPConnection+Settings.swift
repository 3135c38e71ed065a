/// Options the user may change on a live connection.
extension TCPConnection {
    /// TCP_NODELAY set or cleared after the connection was made; setting it sends what Nagle held.
    public mutating func setNoDelay(_ noDelay: Bool, now: Int64, into actions: inout TCPActions<Payload>) {
        configuration.noDelay = noDelay
        if noDelay {
            output(now: now, &actions)
        }
    }
}
