import ArgumentParser
import Dispatch
import Glibc
import Logging
import NetMP
import NetMPServices
import Synchronization

/// `netmp serve`: a NetMP stack on a TAP device serving echo, discard, HTTP and UDP echo.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Attach to a TAP device and serve echo, discard, HTTP and UDP echo; answers ARP and ping.",
        discussion: """
            Runs until SIGINT or SIGTERM, then closes its connections and prints statistics; SIGUSR1 \
            prints them while it runs. On a terminal, a status line is updated every second.
            Example: netmp serve --tap tap0 --address 198.18.0.2/24 --echo 7 --http 80 --udp-echo 7

            \(ExitStatus.help)
            """)

    @OptionGroup var stackOptions: StackOptions

    @Option(help: "Serve TCP echo (RFC 862) on this port.")
    var echo: UInt16?

    @Option(help: "Serve TCP discard (RFC 863) on this port.")
    var discard: UInt16?

    @Option(help: "Serve HTTP/1.1 (GET, HEAD) on this port.")
    var http: UInt16?

    @Option(help: "The directory --http serves (default: a built-in page).")
    var root: String?

    @Option(help: "Seconds an HTTP connection may wait for its next request before it is closed (1-86400).")
    var httpIdleTimeout = 60

    @Option(help: "Serve UDP echo (RFC 862) on this port.")
    var udpEcho: UInt16?

    func validate() throws {
        if root != nil && http == nil { throw ValidationError("--root needs --http") }
        if !(1...86400).contains(httpIdleTimeout) { throw ValidationError("--http-idle-timeout must be 1-86400") }
        for port in [echo, discard, http, udpEcho] where port == 0 {
            throw ValidationError("ports must be 1-65535")
        }
    }

    func run() throws {
        try runReportingFailures { try serve() }
    }

    private func serve() throws {
        SignalWatcher.block()
        let running = try stackOptions.start(label: "serve")
        let logger = running.logger
        var servers: [StreamServer] = []
        var udp: UDPEchoService?
        let stack = running.stack
        func tcpServer(
            _ port: UInt16, _ name: String, _ handler: @escaping @Sendable (NetSocket, ServiceCounters) async -> Void
        )
            throws -> StreamServer
        {
            do {
                let listener = try stack.socket(.inet, .stream)
                try listener.bind(to: .ipv4(.unspecified, port: port))
                try listener.listen(backlog: 1024)
                return StreamServer(listener: listener, name: name, handler: handler)
            } catch {
                throw CommandFailure.from(error, doing: "listen for \(name) on port \(port)")
            }
        }
        do {
            if let echo { servers.append(try tcpServer(echo, "echo", EchoService.handle)) }
            if let discard { servers.append(try tcpServer(discard, "discard", DiscardService.handle)) }
            if let http {
                let server: HTTPServer
                do {
                    server = try HTTPServer(root: root, idleTimeout: .seconds(httpIdleTimeout))
                } catch {
                    throw CommandFailure(
                        message: "netmp: --root \(root ?? ""): not a directory", status: ExitStatus.usage)
                }
                servers.append(try tcpServer(http, "http", server.handle))
            }
            if let udpEcho {
                do {
                    let socket = try stack.socket(.inet, .datagram)
                    try socket.bind(to: .ipv4(.unspecified, port: udpEcho))
                    udp = UDPEchoService(socket: socket)
                } catch {
                    throw CommandFailure.from(error, doing: "bind UDP echo on port \(udpEcho)")
                }
            }
        } catch {
            for server in servers { server.stop() }
            running.close()
            throw error
        }
        let done = ThreadCountdown(count: servers.count)
        for server in servers {
            Task {
                await server.run()
                done.arrive()
            }
        }
        logger.notice(
            "serving",
            metadata: [
                "address": "\(stackOptions.address)", "device": "\(running.tap.deviceName)",
                "services":
                    "\((servers.map(\.counters.name) + (udp == nil ? [] : ["udp-echo"])).joined(separator: ","))",
            ])
        let terminal = FileHandleOutput.standardError.isTerminal
        var stopSignal: Int32 = 0
        while stopSignal == 0 {
            switch SignalWatcher.next(within: 1) {
            case .stop(let signal): stopSignal = signal
            case .report:
                FileHandleOutput.standardOutput.write(report(running, servers, udp))
            case .tick:
                if terminal { FileHandleOutput.standardError.write("\r\u{1B}[K" + statusLine(running, servers, udp)) }
            }
        }
        if terminal { FileHandleOutput.standardError.write("\r\u{1B}[K") }
        logger.notice("stopping", metadata: ["signal": "\(stopSignal)"])
        for server in servers { server.stop() }
        udp?.stop()
        if !done.wait(seconds: 5) { logger.warning("some connections did not end within 5 s") }
        FileHandleOutput.standardOutput.write(report(running, servers, udp))
        running.close()
    }

    private func statusLine(_ running: StackOptions.Running, _ servers: [StreamServer], _ udp: UDPEchoService?)
        -> String
    {
        let interface = running.tap.statistics
        let active = servers.reduce(0) { $0 + $1.counters.snapshot.active }
        let accepted = servers.reduce(0) { $0 + $1.counters.snapshot.accepted }
        return
            "\(running.tap.deviceName): rx \(interface.framesReceived) frames \(formatBytes(interface.bytesReceived)), "
            + "tx \(interface.framesSent) frames \(formatBytes(interface.bytesSent)); connections \(active) open, "
            + "\(accepted) accepted; udp echoes \(udp?.counters.snapshot.accepted ?? 0)"
    }

    /// netstat-like counters: the device, IPv4/ICMP/UDP by counter (drops by reason), services.
    private func report(_ running: StackOptions.Running, _ servers: [StreamServer], _ udp: UDPEchoService?) -> String {
        let interface = running.tap.statistics
        let tap = running.tap.tapStatistics
        var lines = [
            "\(running.tap):",
            "  frames in \(interface.framesReceived) (\(interface.bytesReceived) bytes), "
                + "out \(interface.framesSent) (\(interface.bytesSent) bytes)",
            "  checksums completed \(tap.checksumsCompleted), vouched \(tap.checksumsVouched), "
                + "left partial \(tap.checksumsLeftPartial); "
                + "drops: receive \(tap.receiveDrops), transmit \(tap.transmitDrops)",
        ]
        let statistics = running.stack.inetStatistics()
        var groups: [(String, [InetCounter])] = [
            ("link", [.framesIn, .framesRunt, .framesNotForUs, .unknownEtherType]),
            ("arp", InetCounter.allCases.filter { "\($0)".hasPrefix("arp") || "\($0)".hasPrefix("neighbour") }),
            ("ip", InetCounter.allCases.filter { "\($0)".hasPrefix("ip") || "\($0)".hasPrefix("fragment") }),
            ("icmp", InetCounter.allCases.filter { "\($0)".hasPrefix("icmp") }),
            ("udp", InetCounter.allCases.filter { "\($0)".hasPrefix("udp") }),
        ]
        groups.append(("other", [.protocolUnsupported, .reassembled, .reassemblyTimeouts, .reassemblyDropped]))
        for (name, counters) in groups {
            let values = counters.filter { statistics[$0] != 0 }.map { "\($0)=\(statistics[$0])" }
            lines.append("\(name): " + (values.isEmpty ? "-" : values.joined(separator: " ")))
        }
        for server in servers { lines.append(server.counters.snapshot.description) }
        if let udp { lines.append(udp.counters.snapshot.description) }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Counts arrivals; a thread waits (bounded) until all have come.
final class ThreadCountdown: Sendable {
    private let remaining: Mutex<Int>
    private let allArrived = DispatchSemaphore(value: 0)

    init(count: Int) {
        remaining = Mutex(count)
        if count == 0 { allArrived.signal() }
    }

    func arrive() {
        let last = remaining.withLock { value -> Bool in
            value -= 1
            return value == 0
        }
        if last { allArrived.signal() }
    }

    /// True when everyone arrived within `seconds`.
    func wait(seconds: Int) -> Bool { allArrived.wait(timeout: .now() + .seconds(seconds)) == .success }
}
