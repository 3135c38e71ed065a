/// Socket-buffer auto-tuning, per connection: the receive buffer follows Linux's dynamic
/// right-sizing (Fisk and Feng's DRS, `tcp_rcv_space_adjust`) and the send buffer its
/// `tcp_sndbuf_expand`.
///
/// Once per round trip the receive buffer may grow to four times what the application read in
/// that round trip (twice for the reader's lag behind the window, twice for a sender in slow
/// start doubling its window each round): a window that limits the transfer is outgrown within a
/// few round trips, and a transfer the path or the reader limits stops it growing. The send buffer
/// grows to twice the congestion window, so the sender never starves its window. Neither passes
/// its limit, neither shrinks, and a size the user set (SO_RCVBUF, SO_SNDBUF) is left alone.
package struct TCPBufferAutoTuning: Sendable, Equatable {
    /// When the current round of measurement began (nil until the first read).
    private(set) var roundStart: Int64?
    /// Bytes the application read since `roundStart`.
    private(set) var readInRound = 0

    package init() {}

    /// The application read `count` bytes at `now`: the receive buffer size to take now (larger
    /// than `current`, at most `limit`), or nil to keep it. `roundTrip` is the connection's
    /// smoothed RTT (the handshake gives both ends a sample), nil before any.
    package mutating func receiveBufferSize(
        afterReading count: Int, now: Int64, roundTrip: Int64?, current: Int, limit: Int
    ) -> Int? {
        readInRound = readInRound &+ Swift.max(0, count)
        guard let start = roundStart else {
            roundStart = now
            return nil
        }
        guard let roundTrip, roundTrip > 0, now &- start >= roundTrip else { return nil }
        let read = readInRound
        roundStart = now
        readInRound = 0
        let wanted = read > limit / 4 ? limit : read &* 4
        return wanted > current ? wanted : nil
    }

    /// The send buffer size for a congestion window of `congestionWindow` bytes: twice it (and
    /// at least `current`), at most `limit`; nil to keep `current`.
    package static func sendBufferSize(congestionWindow: Int, current: Int, limit: Int) -> Int? {
        let wanted = congestionWindow > limit / 2 ? limit : congestionWindow &* 2
        return wanted > current ? wanted : nil
    }
}
