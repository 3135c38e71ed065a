import ArgumentParser
import Glibc
import NetMP
import NetMPServices
import Synchronization

/// `netmp nc`: netcat over a NetMP stack on a TAP device.
struct NetcatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nc",
        abstract: "Netcat over a NetMP stack: stdin to the connection, the connection to stdout.",
        discussion: """
            TCP: end of input half-closes the connection (shutdown of the write side); the command ends \
            when the peer has closed too. UDP: each read of stdin is one datagram; after end of input, \
            replies are printed until --wait seconds pass without one. With --listen, HOST is omitted \
            and the first peer is served.
            Example: netmp nc --tap tap0 --address 198.18.0.2/24 198.18.0.1 5000 < file

            \(ExitStatus.help)
            """)

    @OptionGroup var stackOptions: StackOptions

    @Flag(name: .shortAndLong, help: "Wait for one peer on PORT instead of connecting.")
    var listen = false

    @Flag(name: .shortAndLong, help: "UDP instead of TCP.")
    var udp = false

    @Option(help: "UDP: seconds to wait for replies after end of input, 0-600.")
    var wait: Double = 1

    @Argument(help: "HOST PORT to connect to, or PORT with --listen.")
    var endpoint: [String]

    func validate() throws {
        guard wait.isFinite, (0...600).contains(wait) else { throw ValidationError("--wait must be 0-600") }
        if listen {
            guard endpoint.count == 1, let port = UInt16(endpoint[0]), port != 0 else {
                throw ValidationError("with --listen give only PORT (1-65535)")
            }
        } else {
            guard endpoint.count == 2, IPv4Address(endpoint[0]) != nil, let port = UInt16(endpoint[1]), port != 0
            else { throw ValidationError("give HOST (an IPv4 address) and PORT (1-65535)") }
        }
    }

    func run() throws {
        try runReportingFailures { try netcat() }
    }

    private func netcat() throws {
        let running = try stackOptions.start(label: "nc")
        defer { running.close() }
        let stack = running.stack
        let port = UInt16(endpoint.last ?? "") ?? 0
        let peer = listen ? nil : IPv4Address(endpoint[0])
        do {
            if udp {
                try datagrams(stack, port: port, peer: peer)
            } else {
                try stream(stack, port: port, peer: peer)
            }
        } catch {
            throw CommandFailure.from(
                error, doing: listen ? "listen on \(port)" : "connect to \(endpoint.joined(separator: ":"))")
        }
    }

    private func stream(_ stack: NetworkStack, port: UInt16, peer: IPv4Address?) throws(NetError) {
        let connection: NetSocket
        if let peer {
            connection = try stack.socket(.inet, .stream)
            try connection.connect(to: .ipv4(peer, port: port))
        } else {
            let listener = try stack.socket(.inet, .stream)
            try listener.bind(to: .ipv4(.unspecified, port: port))
            try listener.listen(backlog: 1)
            connection = try listener.accept()
            listener.close()
        }
        defer { connection.close() }
        let progress = TransferProgress()
        let sender = OSThread.start(name: "nc-send") {
            let outcome = StreamPump.copy(from: 0, to: connection) { progress.sent.store($0, ordering: .relaxed) }
            progress.sendOutcome.withLock { $0 = outcome }
            progress.finished.add(1, ordering: .releasing)
        }
        let outcome = StreamPump.copy(from: connection, to: 1) { progress.received.store($0, ordering: .relaxed) }
        progress.finished.add(1, ordering: .releasing)
        sender.join()
        let sent = progress.sendOutcome.withLock { $0 }
        progress.stop()
        if let error = outcome.error ?? sent?.error { throw error }
    }

    private func datagrams(_ stack: NetworkStack, port: UInt16, peer: IPv4Address?) throws(NetError) {
        let socket = try stack.socket(.inet, .datagram)
        defer { socket.close() }
        let target: SocketAddress
        if let peer {
            target = .ipv4(peer, port: port)
        } else {
            try socket.bind(to: .ipv4(.unspecified, port: port))
            let (bytes, source, _) = try socket.receive(maxBytes: 65535)
            FileHandleOutput.standardOutput.write(String(decoding: bytes, as: UTF8.self))
            target = source
        }
        // The receiver wakes every 100 ms to see whether input has ended and replies have been
        // quiet for `wait` seconds.
        socket.receiveTimeout = .milliseconds(100)
        let inputEnded = Atomic<Bool>(false)
        let quietLimit = Duration.milliseconds(Int(wait * 1000))
        let receiver = OSThread.start(name: "nc-receive") {
            var lastHeard = ContinuousClock.now
            while true {
                do throws(NetError) {
                    let (bytes, source, _) = try socket.receive(maxBytes: 65535)
                    lastHeard = .now
                    if source == target { FileHandleOutput.standardOutput.writeBytes(bytes) }
                } catch .wouldBlock, .timedOut {
                    if !inputEnded.load(ordering: .acquiring) { lastHeard = .now }
                    if ContinuousClock.now - lastHeard >= quietLimit { return }
                } catch {
                    return
                }
            }
        }
        var piece = [UInt8](repeating: 0, count: 65507)
        while true {
            let count = piece.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            _ = try socket.send(Array(piece[..<count]), to: target)
        }
        inputEnded.store(true, ordering: .releasing)
        receiver.join()
    }
}

/// Bytes moved so far, shown on stderr once a second while a transfer runs.
final class TransferProgress: Sendable {
    let sent = Atomic<Int>(0)
    let received = Atomic<Int>(0)
    let finished = Atomic<Int>(0)
    let sendOutcome = Mutex<StreamPump.Outcome?>(nil)
    private let stopped = Atomic<Bool>(false)
    private let thread = Mutex<OSThread?>(nil)

    init() {
        guard FileHandleOutput.standardError.isTerminal else { return }
        thread.withLock {
            $0 = OSThread.start(name: "nc-progress") { [self] in
                var seconds = 0
                while !stopped.load(ordering: .acquiring) {
                    usleep(100_000)
                    seconds += 1
                    if seconds % 10 == 0 {
                        FileHandleOutput.standardError.write(
                            "\r\u{1B}[Ksent \(formatBytes(sent.load(ordering: .relaxed))), "
                                + "received \(formatBytes(received.load(ordering: .relaxed)))")
                    }
                }
                if seconds >= 10 { FileHandleOutput.standardError.write("\r\u{1B}[K") }
            }
        }
    }

    func stop() {
        stopped.store(true, ordering: .releasing)
        thread.withLock { $0?.join() }
    }
}
