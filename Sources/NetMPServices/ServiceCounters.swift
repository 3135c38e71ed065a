import NetMP
import Synchronization

/// Counters of one service, updated by its connections and read at any time.
public final class ServiceCounters: Sendable {
    public let name: String
    let accepted = Atomic<Int>(0)
    let active = Atomic<Int>(0)
    let received = Atomic<Int>(0)
    let sent = Atomic<Int>(0)
    let requests = Atomic<Int>(0)
    let failures = Atomic<Int>(0)
    let idleClosed = Atomic<Int>(0)

    public init(name: String) { self.name = name }

    public var snapshot: ServiceStatistics {
        ServiceStatistics(
            name: name, accepted: accepted.load(ordering: .relaxed), active: active.load(ordering: .relaxed),
            bytesReceived: received.load(ordering: .relaxed), bytesSent: sent.load(ordering: .relaxed),
            requests: requests.load(ordering: .relaxed), failures: failures.load(ordering: .relaxed),
            idleClosed: idleClosed.load(ordering: .relaxed))
    }
}

/// A copy of a service's counters.
public struct ServiceStatistics: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    /// Connections accepted (datagrams, for UDP echo).
    public var accepted: Int
    public var active: Int
    public var bytesReceived: Int
    public var bytesSent: Int
    /// Requests answered (HTTP).
    public var requests: Int
    /// Connections that ended with an error (reset, broken pipe).
    public var failures: Int
    /// Connections the server closed because no request came within its idle timeout (HTTP).
    public var idleClosed: Int = 0

    public var description: String {
        "\(name): accepted=\(accepted) active=\(active) in=\(bytesReceived) out=\(bytesSent) "
            + "requests=\(requests) failures=\(failures) idle-closed=\(idleClosed)"
    }
}
