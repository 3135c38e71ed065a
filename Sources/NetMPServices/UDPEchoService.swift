import NetMP

/// UDP echo (RFC 862): each datagram goes back to its sender, on a thread of its own that
/// blocks in `receive`; `stop()` closes the socket, which ends the thread.
public final class UDPEchoService: Sendable {
    public let socket: NetSocket
    public let counters = ServiceCounters(name: "udp-echo")
    private let thread: OSThread

    /// Echoes datagrams arriving on `socket` (bound by the caller).
    public init(socket: NetSocket) {
        self.socket = socket
        let counters = self.counters
        thread = OSThread.start(name: "udp-echo") {
            while true {
                do throws(NetError) {
                    let (bytes, source, _) = try socket.receive(maxBytes: 65535)
                    counters.accepted.add(1, ordering: .relaxed)
                    counters.received.add(bytes.count, ordering: .relaxed)
                    counters.sent.add(try socket.send(bytes, to: source), ordering: .relaxed)
                } catch .wouldBlock {
                    continue
                } catch .shutdown {
                    return
                } catch .badDescriptor {
                    return
                } catch {
                    // An ICMP error reported on the socket, a full buffer: the service goes on.
                    counters.failures.add(1, ordering: .relaxed)
                    if socket.state.contains(.noFileReference) { return }
                }
            }
        }
    }

    /// Closes the socket and waits for the thread.
    public func stop() {
        socket.close()
        thread.join()
    }
}
