import NetMPInterfaces
import NetMPRuntime
import NetMPSockets
import NetMPWire

/// One ICMP echo request and its outcome: the round-trip time, or why there was none.
public final class PingRequest: @unchecked Sendable {
    public let destination: IPv4Address
    public let identifier: UInt16
    public let sequence: UInt16
    let payloadSize: Int
    let ttl: UInt8?
    let timeout: Duration

    private let lock = NetLock()
    private var outcome: Result<Duration, NetError>?  // under lock
    private var error: (message: ICMPMessage, source: IPv4Address)?  // under lock
    private let reply = ThreadReply<Duration>()
    private var continuation: UnsafeContinuation<Result<Duration, NetError>, Never>?  // under lock
    // Owner-thread state.
    var sentAt: Int64 = 0
    var timer: Callout?

    package init(
        destination: IPv4Address, identifier: UInt16, sequence: UInt16, payloadSize: Int, ttl: UInt8?, timeout: Duration
    ) {
        self.destination = destination
        self.identifier = identifier
        self.sequence = sequence
        self.payloadSize = payloadSize
        self.ttl = ttl
        self.timeout = timeout
    }

    var key: UInt32 { UInt32(identifier) << 16 | UInt32(sequence) }

    /// The round-trip time, or the failure; nil while waiting.
    public var result: Result<Duration, NetError>? { lock.withLock { outcome } }

    public var isComplete: Bool { result != nil }

    /// The ICMP error that ended it (e.g. time exceeded from a router), and who sent it.
    public var icmpError: (message: ICMPMessage, source: IPv4Address)? { lock.withLock { error } }

    package func complete(_ result: Result<Duration, NetError>, error: (ICMPMessage, IPv4Address)? = nil) {
        let (first, waiting) = lock.withLock {
            () -> (Bool, UnsafeContinuation<Result<Duration, NetError>, Never>?) in
            guard outcome == nil else { return (false, nil) }
            outcome = result
            self.error = error
            let waiting = continuation
            continuation = nil
            return (true, waiting)
        }
        if first {
            reply.complete(result)
            waiting?.resume(returning: result)
        }
    }

    /// Blocks until the reply, an error or the timeout (not in the deterministic mode).
    public func wait() throws(NetError) -> Duration { try reply.wait().get() }

    /// Suspends until the reply, an error or the timeout; no thread is blocked.
    public func value() async throws(NetError) -> Duration {
        let result: Result<Duration, NetError> = await withUnsafeContinuation { continuation in
            let done = lock.withLock { () -> Result<Duration, NetError>? in
                if let outcome { return outcome }
                self.continuation = continuation
                return nil
            }
            if let done { continuation.resume(returning: done) }
        }
        return try result.get()
    }
}

extension InetThread {
    package func startPing(_ request: PingRequest) {
        guard config.route(to: request.destination) != nil else {
            request.complete(.failure(.networkUnreachable))
            return
        }
        let key = request.key
        pings[key]?.complete(.failure(.cancelled))
        pings[key] = request
        // The clock itself, not the turn's time: a loopback echo can come back in the same turn.
        request.sentAt = thread.now
        let timer = Callout(on: thread) { [unowned self, weak request] in
            guard let request, self.pings[key] === request else { return }
            self.pings[key] = nil
            request.complete(.failure(.timedOut))
        }
        request.timer = timer
        timer.arm(after: request.timeout.nanoseconds)
        var data = [UInt8](repeating: 0, count: request.payloadSize)
        for index in data.indices { data[index] = UInt8(truncatingIfNeeded: index) }
        let error = data.withUnsafeBytes {
            sendEcho(
                .echoRequest(identifier: request.identifier, sequenceNumber: request.sequence), data: $0,
                to: request.destination, from: nil, ttl: request.ttl)
        }
        if let error {
            pings[key] = nil
            timer.cancel()
            request.complete(.failure(error))
        }
    }

    func pingReplied(identifier: UInt16, sequence: UInt16, from source: IPv4Address) {
        let key = UInt32(identifier) << 16 | UInt32(sequence)
        guard let request = pings[key], request.destination == source || request.destination.isBroadcast else { return }
        pings[key] = nil
        request.timer?.cancel()
        request.complete(.success(.nanoseconds(thread.now - request.sentAt)))
    }

    func pingFailed(identifier: UInt16, sequence: UInt16, message: ICMPMessage, from source: IPv4Address) {
        let key = UInt32(identifier) << 16 | UInt32(sequence)
        guard let request = pings.removeValue(forKey: key) else { return }
        request.timer?.cancel()
        let error: NetError
        if case .destinationUnreachable(.networkUnreachable, _) = message {
            error = .networkUnreachable
        } else {
            error = .hostUnreachable
        }
        request.complete(.failure(error), error: (message, source))
    }
}

extension InetThread {
    /// The stack shut down: every ping still waiting fails with `.shutdown` (its timer will
    /// never fire). Called once the thread has stopped, so nothing else touches `pings`.
    package func failPendingPings() {
        let pending = pings
        pings = [:]
        for request in pending.values { request.complete(.failure(.shutdown)) }
    }
}
