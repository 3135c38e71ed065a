import ArgumentParser
import Glibc
import NetMP

/// `netmp ping`: ICMP echo from a NetMP stack on a TAP device.
struct PingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ping",
        abstract: "Send ICMP echo requests from a NetMP stack on a TAP device.",
        discussion: """
            Prints a line per reply and a summary. Example: netmp ping --tap tap0 --address 198.18.0.2/24 198.18.0.1

            \(ExitStatus.help) Ping exits 0 when at least one reply came, 1 when none did.
            """)

    @OptionGroup var stackOptions: StackOptions

    @Argument(help: "The address to ping.")
    var host: String

    @Option(name: .shortAndLong, help: "Requests to send, 1-100000.")
    var count: Int = 4

    @Option(name: .shortAndLong, help: "Seconds between requests, 0.01-60.")
    var interval: Double = 1

    @Option(name: .shortAndLong, help: "Payload bytes, 0-65507.")
    var size: Int = 56

    @Option(name: [.customShort("W"), .long], help: "Seconds to wait for each reply, 0.01-60.")
    var timeout: Double = 2

    func validate() throws {
        guard IPv4Address(host) != nil else { throw ValidationError("HOST must be an IPv4 address") }
        guard (1...100_000).contains(count) else { throw ValidationError("--count must be 1-100000") }
        guard interval.isFinite, (0.01...60).contains(interval) else { throw ValidationError("--interval: 0.01-60") }
        guard timeout.isFinite, (0.01...60).contains(timeout) else { throw ValidationError("--timeout: 0.01-60") }
        guard (0...65507).contains(size) else { throw ValidationError("--size must be 0-65507") }
    }

    func run() throws {
        try runReportingFailures { try ping() }
    }

    private func ping() throws {
        guard let destination = IPv4Address(host) else { throw ExitCode(ExitStatus.usage) }
        let running = try stackOptions.start(label: "ping")
        defer { running.close() }
        let out = FileHandleOutput.standardOutput
        out.write("PING \(destination) from \(stackOptions.address) on \(running.tap.deviceName): \(size) data bytes\n")
        var times: [Duration] = []
        var failures: [NetError: Int] = [:]
        for sequence in 1...count {
            let started = ContinuousClock.now
            do throws(NetError) {
                let rtt: Duration = try running.stack.ping(
                    destination, sequence: UInt16(truncatingIfNeeded: sequence), payloadSize: size,
                    timeout: .milliseconds(Int(timeout * 1000)))
                times.append(rtt)
                out.write("\(size + 8) bytes from \(destination): icmp_seq=\(sequence) time=\(milliseconds(rtt)) ms\n")
            } catch {
                failures[error, default: 0] += 1
                out.write("from \(destination): icmp_seq=\(sequence) \(error)\n")
            }
            if sequence < count {
                let next = started + .milliseconds(Int(interval * 1000))
                let wait = next - ContinuousClock.now
                if wait > .zero {
                    usleep(
                        UInt32(wait.components.seconds * 1_000_000 + wait.components.attoseconds / 1_000_000_000_000))
                }
            }
        }
        let loss = (count - times.count) * 100 / count
        out.write("--- \(destination) ping statistics ---\n")
        out.write("\(count) packets transmitted, \(times.count) received, \(loss)% packet loss\n")
        if let minimum = times.min(), let maximum = times.max() {
            let total = times.reduce(Duration.zero, +)
            out.write(
                "rtt min/avg/max = \(milliseconds(minimum))/\(milliseconds(total / times.count))/\(milliseconds(maximum)) ms\n"
            )
        }
        if times.isEmpty { throw ExitCode(ExitStatus.networkFailure) }
    }

    private func milliseconds(_ duration: Duration) -> String {
        let microseconds =
            Int(duration.components.seconds) * 1_000_000 + Int(duration.components.attoseconds / 1_000_000_000_000)
        let thousandths = microseconds % 1000
        return "\(microseconds / 1000)."
            + String(repeating: "0", count: thousandths < 10 ? 2 : thousandths < 100 ? 1 : 0) + "\(thousandths)"
    }
}
