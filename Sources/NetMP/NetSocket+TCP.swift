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
    /// SO_KEEPALIVE: the flag only (the keep-alive timer comes with part 2).
    public static let keepAlive = TCPSocketOption(2, "keepAlive")
    /// SO_REUSEADDR: bind a port that connections or TIME_WAIT records still use.
    public static let reuseAddress = TCPSocketOption(3, "reuseAddress")
    /// TCP_MAXSEG: the largest segment announced and sent (0: from the route's MTU); set before
    /// connect or listen.
    public static let maximumSegment = TCPSocketOption(4, "maximumSegment")
    /// TCP_CONGESTION: the congestion control, a `TCPCongestionAlgorithm` raw value (CUBIC unless
    /// the stack's configuration says otherwise). A listen socket's connections inherit it; on a
    /// connected socket the connection switches at once, keeping cwnd and ssthresh.
    /// `congestionControl` is the typed form.
    public static let congestionControl = TCPSocketOption(5, "congestionControl")
    /// ECN (RFC 3168): 1 asks for it on connect and accepts it from a peer that asks (a listen
    /// socket's connections inherit it); off unless the stack's configuration turns it on. Set
    /// before connect or listen.
    public static let explicitCongestionNotification = TCPSocketOption(6, "explicitCongestionNotification")
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
        case .keepAlive: block.options.keepAlive.store(value != 0, ordering: .relaxed)
        case .reuseAddress: block.options.reuseAddress.store(value != 0, ordering: .relaxed)
        case .maximumSegment:
            guard value == 0 || (88...65495).contains(value) else { throw .invalidArgument }
            block.options.maximumSegment.store(value, ordering: .relaxed)
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
        default: throw .badOption
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
        case .congestionControl: return block.options.congestionControl.load(ordering: .relaxed)
        case .explicitCongestionNotification:
            return block.options.explicitCongestionNotification.load(ordering: .relaxed) ? 1 : 0
        default: throw .badOption
        }
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
    /// `.zero` makes close reset the connection (RST) and drop unsent data. A positive time is
    /// recorded, but close does not wait for it.
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
