import CNetMP
import NetMPInet
import NetMPInterfaces
import NetMPLocal
import NetMPRuntime
import NetMPSockets
import NetMPWire
import Synchronization

/// Readiness for many sockets at once (like epoll, level-triggered), so that one thread can
/// serve thousands of sockets.
///
/// A socket's buffers tell the poller when its state may have changed; `wait` then checks only
/// those sockets, so a wait costs in proportion to the sockets that changed, not to all of them.
/// One thread at a time should call `wait`.
public final class SocketPoller: @unchecked Sendable {
    /// What a socket is ready for.
    public struct Events: OptionSet, Sendable, Hashable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// A read would not block (data, end-of-file, an error, or a connection to accept).
        public static let readable = Events(rawValue: 1)
        /// A write would not block.
        public static let writable = Events(rawValue: 2)
        /// Both directions are shut or the socket was closed (always reported).
        public static let hangup = Events(rawValue: 4)
    }

    /// One ready socket: the token it was registered with and what it is ready for.
    public struct Event: Sendable, Hashable {
        public var token: Int
        public var events: Events
    }

    final class Registration: ReadinessObserver, @unchecked Sendable {
        let socket: Socket
        let token: Int
        var interest: Events  // under the poller's lock
        var isQueued = false  // under the poller's lock
        var isRemoved = false  // under the poller's lock
        weak var poller: SocketPoller?

        init(socket: Socket, token: Int, interest: Events, poller: SocketPoller) {
            self.socket = socket
            self.token = token
            self.interest = interest
            self.poller = poller
        }

        func readinessChanged() { poller?.enqueue(self) }
    }

    private let lock = NetLock()
    private var registrations: [ObjectIdentifier: Registration] = [:]  // under lock
    private var ready: [Registration] = []  // under lock
    private var isSleeping = false  // under lock
    private let parker: UnsafeMutablePointer<netmp_parker>
    /// How long `wait` spins before it sleeps, in nanoseconds (adapted after each sleep).
    private let spinBudget = Atomic<Int64>(SpinPolicy.waiterMaximumSpinNanoseconds)

    public init() {
        parker = .allocate(capacity: 1)
        netmp_parker_init(parker)
    }

    deinit {
        for registration in registrations.values { registration.socket.observers?.remove(registration) }
        parker.deallocate()
    }

    /// Number of registered sockets.
    public var count: Int { lock.withLock { registrations.count } }

    /// Watches `socket` for `interest`, reporting `token`. Registering again replaces both.
    public func register(_ socket: NetSocket, interest: Events, token: Int) throws(NetError) {
        try socket.core.checkOpen()
        let key = ObjectIdentifier(socket.core)
        let (registration, isNew): (Registration, Bool) = lock.withLock {
            if let existing = registrations[key] {
                if existing.token == token { existing.interest = interest }
                return (existing, false)
            }
            let created = Registration(socket: socket.core, token: token, interest: interest, poller: self)
            registrations[key] = created
            return (created, true)
        }
        if registration.token != token {
            unregister(socket)
            try register(socket, interest: interest, token: token)
            return
        }
        if isNew { socket.core.madeObservers().add(registration) }
        enqueue(registration)
    }

    /// Stops watching `socket`: its registration leaves the ready queue at once, so the poller
    /// no longer holds the socket.
    public func unregister(_ socket: NetSocket) {
        let key = ObjectIdentifier(socket.core)
        guard
            let registration = lock.withLock({ () -> Registration? in
                guard let registration = registrations.removeValue(forKey: key) else { return nil }
                registration.isRemoved = true
                if registration.isQueued {
                    registration.isQueued = false
                    ready.removeAll { $0 === registration }
                }
                return registration
            })
        else { return }
        socket.core.observers?.remove(registration)
    }

    fileprivate func enqueue(_ registration: Registration) {
        lock.lock()
        var mustWake = false
        if !registration.isQueued && !registration.isRemoved {
            registration.isQueued = true
            ready.append(registration)
            mustWake = isSleeping
            isSleeping = false
        }
        lock.unlock()
        if mustWake { netmp_parker_unpark(parker) }
    }

    private func readiness(of socket: Socket) -> Events {
        let state = socket.state.value
        if state.contains(.noFileReference) { return .hangup }
        var events: Events = []
        if state.contains(.cantReceiveMore) && state.contains(.cantSendMore) { events.insert(.hangup) }
        if socket.hasError || state.contains(.cantReceiveMore) {
            events.insert(.readable)
        } else if state.contains(.listening) {
            if let queue = socket.listenQueue, queue.completeCount.load(ordering: .sequentiallyConsistent) > 0 {
                events.insert(.readable)
            }
        } else if socket.type == .datagram {
            if socket.receiveBuffer.recordCount.load(ordering: .sequentiallyConsistent) > 0 { events.insert(.readable) }
        } else if socket.receiveBuffer.byteCount.load(ordering: .sequentiallyConsistent)
            >= Swift.min(socket.receiveBuffer.receiveLowWater, socket.receiveBuffer.highWater.load(ordering: .relaxed))
        {
            events.insert(.readable)
        }
        if !state.contains(.listening) && socket.proto.isWritable(socket) { events.insert(.writable) }
        return events
    }

    /// Waits until at least one watched socket is ready or `timeout` passes (nil: forever;
    /// zero: just look). Returns at most `maximumEvents` events.
    public func wait(timeout: Duration? = nil, maximumEvents: Int = 1024) -> [Event] {
        let maximumEvents = Swift.max(1, maximumEvents)
        let deadline = timeout.map { MonotonicTime.deadline(after: Swift.max(1, $0.nanoseconds)) }.flatMap {
            $0 == 0 ? nil : $0
        }
        while true {
            let candidates: [Registration] = lock.withLock {
                let taken = ready
                ready.removeAll(keepingCapacity: true)
                for registration in taken { registration.isQueued = false }
                return taken
            }
            var events: [Event] = []
            var stillReady: [Registration] = []
            for (index, registration) in candidates.enumerated() {
                if events.count >= maximumEvents {
                    stillReady.append(contentsOf: candidates[index...])
                    break
                }
                let interest = lock.withLock { registration.isRemoved ? [] : registration.interest }
                if interest.isEmpty && registration.isRemoved { continue }
                let now = readiness(of: registration.socket)
                if registration.socket.state.contains(.noFileReference) {
                    // Closed: reported once, then forgotten (as epoll drops a closed descriptor).
                    lock.withLock {
                        registration.isRemoved = true
                        registrations[ObjectIdentifier(registration.socket)] = nil
                    }
                }
                let reported = now.intersection(interest.union(.hangup))
                if !reported.isEmpty {
                    events.append(Event(token: registration.token, events: reported))
                    // Level-triggered: still ready next time unless it changes.
                    if !now.contains(.hangup) || !registration.socket.state.contains(.noFileReference) {
                        stillReady.append(registration)
                    }
                }
            }
            for registration in stillReady { enqueue(registration) }
            if !events.isEmpty { return events }
            var remaining: Int64 = -1
            if let deadline {
                remaining = deadline - MonotonicTime.now
                if remaining <= 0 { return [] }
            }
            let sleep: Bool = lock.withLock {
                if ready.isEmpty { isSleeping = true }
                return ready.isEmpty
            }
            if sleep {
                // Spins first as a blocked read does, adapting the budget to what caught the
                // last wake-up, never past the timeout.
                let calibration = SpinCalibration.current
                let budget = spinBudget.load(ordering: .relaxed)
                let spin = remaining >= 0 ? Swift.min(budget, remaining) : budget
                let start = netmp_monotonic_ns()
                var yielded: Int64 = 0
                var wake: Int64 = -1
                let result = netmp_parker_park_measuring(
                    parker, calibration.rounds(for: spin), SpinPolicy.waiterYields, remaining, &yielded, &wake)
                SpinCalibration.recordWake(wake)
                let waited = netmp_monotonic_ns() &- start
                spinBudget.store(
                    calibration.adaptedWaiterBudget(budget, afterPark: result, waited: waited, yielded: yielded),
                    ordering: .relaxed)
                lock.withLock { isSleeping = false }
            }
        }
    }
}
