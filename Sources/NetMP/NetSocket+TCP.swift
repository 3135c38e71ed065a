import NetMPInet
import NetMPRuntime
import NetMPSockets
import NetMPTCP
import NetMPWire

/// A TCP-level socket option (and SO_REUSEADDR / SO_KEEPALIVE, which TCP sockets honour).
public struct TCPSocketOption: Hashable, Sendable, CustomStringConvertible {
    let code: Int
    public let description: String

    private init(_ code: Int, _ name: String) {
        self.code = code
        self.description = name
    }

    /// TCP_NODELAY: 1 sends small segments at once instead of waiting for an ACK (no Nagle).
    public static let noDelay = TCPSocketOption(1, "noDelay")
    /// SO_KEEPALIVE: 1 probes an idle connection and drops it (`.timedOut`) when the peer stops
    /// answering.
    public static let keepAlive = TCPSocketOption(2, "keepAlive")
    /// SO_REUSEADDR: bind a port that connections or TIME_WAIT records still use.
    public static let reuseAddress = TCPSocketOption(3, "reuseAddress")
    /// TCP_MAXSEG: the largest segment announced and sent (0: from the route's MTU); set before
    /// connect or listen.
    public static let maximumSegment = TCPSocketOption(4, "maximumSegment")
    /// TCP_KEEPIDLE: seconds idle before the first keep-alive probe (1...32767; default 7200).
    public static let keepAliveIdle = TCPSocketOption(5, "keepAliveIdle")
    /// TCP_KEEPINTVL: seconds between unanswered probes (1...32767; default 75).
    public static let keepAliveInterval = TCPSocketOption(6, "keepAliveInterval")
    /// TCP_KEEPCNT: unanswered probes before the connection is dropped (1...127; default 9).
    public static let keepAliveCount = TCPSocketOption(7, "keepAliveCount")
    /// TCP_USER_TIMEOUT: milliseconds sent data may stay unacknowledged before the connection is
    /// dropped with `.timedOut` (RFC 5482); 0 leaves it to the retransmission count.
    public static let userTimeout = TCPSocketOption(8, "userTimeout")
    /// TCP_CONGESTION: the congestion control, a `TCPCongestionAlgorithm` raw value (CUBIC unless
    /// the stack's configuration says otherwise). A listen socket's connections inherit it; on a
    /// connected socket the connection switches at once, keeping cwnd and ssthresh.
    /// `congestionControl` is the typed form.
    public static let congestionControl = TCPSocketOption(9, "congestionControl")
    /// ECN (RFC 3168): 1 asks for it on connect and accepts it from a peer that asks (a listen
    /// socket's connections inherit it); off unless the stack's configuration turns it on. Set
    /// before connect or listen.
    public static let explicitCongestionNotification = TCPSocketOption(10, "explicitCongestionNotification")
    /// How far auto-tuning may grow the receive buffer, in bytes (the window scale is chosen for
    /// it); 0 takes the stack's `maximumReceiveBufferSize`. Set before connect or listen (a listen
    /// socket's connections inherit it). SO_RCVBUF turns the tuning off for the socket.
    public static let receiveBufferLimit = TCPSocketOption(40, "receiveBufferLimit")
    /// How far auto-sizing may grow the send buffer, in bytes; 0 takes the stack's
    /// `maximumSendBufferSize`. Set before connect or listen. SO_SNDBUF turns the sizing off.
    public static let sendBufferLimit = TCPSocketOption(41, "sendBufferLimit")
}

extension NetSocket {
    private var tcpBlock: TCPControlBlock? { core.controlBlock as? TCPControlBlock }

    /// setsockopt(2) for a TCP option; `.invalidArgument` for a value out of range, `.badOption`
    /// on a socket that is not TCP.
    public func setOption(_ option: TCPSocketOption, _ value: Int) throws(NetError) {
        try core.checkOpen()
        guard let block = tcpBlock else { throw .badOption }
        switch option {
        case .noDelay:
            let on = value != 0
            if core.state.containsAny([.connected, .connecting]) {
                try core.request { [core] () throws(NetError) in
                    guard let tcp = core.proto as? TCPProtocol else { return }
                    tcp.setNoDelay(core, on)
                }
            } else {
                block.options.noDelay.store(on, ordering: .relaxed)
            }
        case .keepAlive:
            block.options.keepAlive.store(value != 0, ordering: .relaxed)
            try updateLiveTimers()
        case .reuseAddress: block.options.reuseAddress.store(value != 0, ordering: .relaxed)
        case .maximumSegment:
            guard value == 0 || (88...65495).contains(value) else { throw .invalidArgument }
            block.options.maximumSegment.store(value, ordering: .relaxed)
        case .keepAliveIdle, .keepAliveInterval:
            guard (1...32767).contains(value) else { throw .invalidArgument }
            let nanoseconds = Int64(value) * 1_000_000_000
            if option == .keepAliveIdle {
                block.options.keepAliveIdle.store(nanoseconds, ordering: .relaxed)
            } else {
                block.options.keepAliveInterval.store(nanoseconds, ordering: .relaxed)
            }
            try updateLiveTimers()
        case .keepAliveCount:
            guard (1...127).contains(value) else { throw .invalidArgument }
            block.options.keepAliveCount.store(value, ordering: .relaxed)
            try updateLiveTimers()
        case .userTimeout:
            guard (0...Int(Int32.max)).contains(value) else { throw .invalidArgument }
            block.options.userTimeout.store(Int64(value) * 1_000_000, ordering: .relaxed)
            try updateLiveTimers()
        case .congestionControl:
            guard let algorithm = TCPCongestionAlgorithm(rawValue: value) else { throw .invalidArgument }
            if core.state.containsAny([.connected, .connecting]) {
                try core.request { [core] () throws(NetError) in
                    guard let tcp = core.proto as? TCPProtocol else { return }
                    tcp.setCongestionControl(core, algorithm)
                }
            } else {
                block.options.congestionControl.store(algorithm.rawValue, ordering: .relaxed)
            }
        case .explicitCongestionNotification:
            block.options.explicitCongestionNotification.store(value != 0, ordering: .relaxed)
        case .receiveBufferLimit, .sendBufferLimit:
            guard (0...SocketBuffer.maximumSize).contains(value) else { throw .invalidArgument }
            if option == .receiveBufferLimit {
                block.options.receiveBufferLimit.store(value, ordering: .relaxed)
            } else {
                block.options.sendBufferLimit.store(value, ordering: .relaxed)
            }
        default: throw .badOption
        }
    }

    /// A live connection takes the socket's keep-alive and user timeout choices at once.
    private func updateLiveTimers() throws(NetError) {
        guard core.state.containsAny([.connected, .connecting]) else { return }
        try core.request { [core] () throws(NetError) in
            guard let tcp = core.proto as? TCPProtocol else { return }
            tcp.updateTimers(core)
        }
    }

    /// getsockopt(2) for a TCP option.
    public func option(_ option: TCPSocketOption) throws(NetError) -> Int {
        try core.checkOpen()
        guard let block = tcpBlock else { throw .badOption }
        switch option {
        case .noDelay: return block.options.noDelay.load(ordering: .relaxed) ? 1 : 0
        case .keepAlive: return block.options.keepAlive.load(ordering: .relaxed) ? 1 : 0
        case .reuseAddress: return block.options.reuseAddress.load(ordering: .relaxed) ? 1 : 0
        case .maximumSegment: return block.options.maximumSegment.load(ordering: .relaxed)
        case .keepAliveIdle, .keepAliveInterval, .keepAliveCount, .userTimeout:
            // What the connection uses: the socket's choice, else the stack's setting.
            var settings = (core.proto as? TCPProtocol)?.configuration ?? TCPConfiguration()
            block.options.applyTimers(to: &settings)
            switch option {
            case .keepAliveIdle: return Int(settings.keepAliveIdle / 1_000_000_000)
            case .keepAliveInterval: return Int(settings.keepAliveInterval / 1_000_000_000)
            case .keepAliveCount: return settings.keepAliveCount
            default: return Int(settings.userTimeout / 1_000_000)
            }
        case .congestionControl: return block.options.congestionControl.load(ordering: .relaxed)
        case .explicitCongestionNotification:
            return block.options.explicitCongestionNotification.load(ordering: .relaxed) ? 1 : 0
        case .receiveBufferLimit, .sendBufferLimit:
            // What a connection made now would use: the socket's limit, else the stack's.
            let settings = (core.proto as? TCPProtocol)?.configuration ?? TCPConfiguration()
            if option == .receiveBufferLimit {
                let own = block.options.receiveBufferLimit.load(ordering: .relaxed)
                return own > 0 ? own : settings.maximumReceiveBufferSize
            }
            let own = block.options.sendBufferLimit.load(ordering: .relaxed)
            return own > 0 ? own : settings.maximumSendBufferSize
        default: throw .badOption
        }
    }

    /// TCP_INFO: a snapshot of the connection (state, RTT, RTO, windows, retransmissions,
    /// traffic); `.notConnected` when the socket has no connection (never connected, listening,
    /// or its connection ended).
    public func tcpInfo() throws(NetError) -> TCPInfo {
        try core.checkOpen()
        guard tcpBlock != nil else { throw .badOption }
        let info = try core.request { [core] () throws(NetError) -> TCPInfo? in
            (core.proto as? TCPProtocol)?.info(core)
        }
        guard let info else { throw .notConnected }
        return info
    }

    /// TCP_CONGESTION, typed: the socket's algorithm (nil on a socket that is not TCP). Setting it
    /// on a connected socket switches the live connection, keeping its window (as
    /// `setOption(.congestionControl, _)` does); setting nil changes nothing.
    public var congestionControl: TCPCongestionAlgorithm? {
        get {
            tcpBlock.flatMap { TCPCongestionAlgorithm(rawValue: $0.options.congestionControl.load(ordering: .relaxed)) }
        }
        set {
            guard let newValue else { return }
            try? setOption(.congestionControl, newValue.rawValue)
        }
    }

    /// SO_LINGER: nil is off (close returns at once and the connection closes gracefully);
    /// `.zero` makes close reset the connection (RST) and drop unsent data. A positive time makes
    /// a blocking close wait, up to that long, until the peer has acknowledged everything sent
    /// and the FIN; as on Linux, running out of time ends only the wait: the connection still
    /// closes gracefully behind it. (A close on a protocol thread never waits.)
    public var linger: Duration? {
        get {
            guard let value = tcpBlock?.options.linger.load(ordering: .relaxed), value >= 0 else { return nil }
            return .nanoseconds(value)
        }
        set {
            let value = newValue.map { Swift.max(0, $0.nanoseconds) } ?? -1
            tcpBlock?.options.linger.store(value, ordering: .relaxed)
        }
    }

    /// The wait of a close with a positive SO_LINGER: the FIN goes out behind the queued bytes
    /// (shutdown of the sending side), then the peer's acknowledgment of it is awaited. Unread
    /// data makes the close a reset instead, so there is nothing to wait for then.
    func lingerBeforeClose() {
        guard let block = tcpBlock, Socket.mayBlockCallingThread else { return }
        let linger = block.options.linger.load(ordering: .relaxed)
        guard linger > 0, core.state.contains(.connected),
            !core.state.containsAny([.noFileReference, .disconnected]),
            core.receiveBuffer.byteCount.load(ordering: .sequentiallyConsistent) == 0
        else { return }
        do { try core.shutdown(.write) } catch { return }
        try? core.wait(
            for: TCPLingerCondition.condition(block: block), on: core.sendBuffer,
            deadline: MonotonicTime.deadline(after: linger))
    }

    /// connect(2) that gives up after `timeout`: the attempt is aborted and `.timedOut` thrown.
    /// (Without a timeout a connect ends when the SYN retries run out, also with `.timedOut`.)
    public func connect(to address: SocketAddress, timeout: Duration) throws(NetError) {
        guard let blocked = try core.startConnect(to: address) else { return }
        guard core.mayWait([]) else { throw .inProgress }
        do {
            try core.wait(
                for: blocked.condition, on: blocked.buffer,
                deadline: MonotonicTime.deadline(after: Swift.max(1, timeout.nanoseconds)))
        } catch .wouldBlock {
            try? core.request { [core] () throws(NetError) in core.proto.abort(core) }
            throw .timedOut
        }
        try core.finishConnect()
    }
}
