import ArgumentParser
import Glibc
import Logging
import NetMP

/// Exit codes a script can rely on (sysexits.h where one fits).
enum ExitStatus {
    /// Everything asked for was done.
    static let success: Int32 = 0
    /// The network said no: no ping reply, connection refused, reset or timed out.
    static let networkFailure: Int32 = 1
    /// Bad arguments (ArgumentParser's validation errors use this too).
    static let usage: Int32 = 64
    /// The TAP device is unavailable (absent, busy, or not a multi-queue TAP), or the stack does
    /// not support the protocol asked for.
    static let unavailable: Int32 = 69
    /// Anything else that went wrong inside NetMP.
    static let software: Int32 = 70
    /// Not permitted: opening a TAP device needs CAP_NET_ADMIN (or the device's owner).
    static let noPermission: Int32 = 77

    /// The --help text that lists them.
    static let help = """
        Exit status: 0 success; 1 the network said no (no reply, refused, reset, timed out); \
        64 bad arguments; 69 TAP device or protocol unavailable; 70 internal error; 77 permission denied.
        """
}

/// A failure the command reports and exits with.
struct CommandFailure: Error, CustomStringConvertible {
    var message: String
    var status: Int32
    var description: String { message }

    /// Maps an error from opening or configuring the stack to its exit status.
    static func from(_ error: NetError, doing what: String) -> CommandFailure {
        let status: Int32
        switch error {
        case NetError(rawValue: EACCES): status = ExitStatus.noPermission
        case .noSuchDevice, .deviceBusy, .protocolNotSupported: status = ExitStatus.unavailable
        case .invalidArgument where what.hasPrefix("open"): status = ExitStatus.unavailable
        case .connectionRefused, .connectionReset, .timedOut, .hostUnreachable, .networkUnreachable:
            status = ExitStatus.networkFailure
        default: status = ExitStatus.software
        }
        var message = "netmp: \(what): \(error)"
        if status == ExitStatus.noPermission { message += " (needs root or CAP_NET_ADMIN)" }
        if error == .invalidArgument && what.hasPrefix("open") {
            message += " (the device exists but is not a multi-queue TAP device)"
        }
        return CommandFailure(message: message, status: status)
    }
}

/// Runs `body`, turning failures into a message on stderr and an exit status.
func runReportingFailures(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let failure as CommandFailure {
        FileHandleOutput.standardError.write(failure.message + "\n")
        throw ExitCode(failure.status)
    }
}

/// The log level option, shared by every command that runs a stack.
enum LogLevelOption: String, ExpressibleByArgument, CaseIterable {
    case trace, debug, info, notice, warning, error, critical

    var level: Logger.Level { Logger.Level(rawValue: rawValue) ?? .info }
}

/// Options of every command that runs a stack on a TAP device.
struct StackOptions: ParsableArguments {
    @Option(help: "The TAP device to attach to (made if absent; needs CAP_NET_ADMIN).")
    var tap: String

    @Option(help: "NetMP's address and prefix length, e.g. 198.18.0.2/24.")
    var address: String

    @Option(help: "The default gateway (an address on the --address network).")
    var gateway: String?

    @Option(help: "Protocol threads, 1-64; with more than one, the TAP device is multi-queue, one queue each.")
    var threads: Int = 1

    @Flag(
        inversion: .prefixedNo,
        help: "Take the kernel's TCP segments of up to 64 KiB whole (TSO on the TAP device), as GRO would.")
    var largeReceive = true

    @Option(help: "Record every frame on the device to this pcap file.")
    var pcap: String?

    @Option(help: "Log level: \(LogLevelOption.allCases.map(\.rawValue).joined(separator: ", ")).")
    var logLevel: LogLevelOption = .notice

    func validate() throws {
        guard (1...64).contains(threads) else { throw ValidationError("--threads must be between 1 and 64") }
        guard !tap.isEmpty, tap.utf8.count < 16 else { throw ValidationError("--tap must be 1 to 15 characters") }
        let parts = address.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, IPv4Address(String(parts[0])) != nil, let length = Int(parts[1]),
            (0...32).contains(length)
        else { throw ValidationError("--address must be an IPv4 address and prefix length, e.g. 198.18.0.2/24") }
        if let gateway, IPv4Address(gateway) == nil { throw ValidationError("--gateway must be an IPv4 address") }
    }

    /// The stack, attached and addressed, with its capture.
    struct Running {
        let stack: NetworkStack
        let tap: TAPInterface
        let capture: PcapWriter?
        let logger: Logger

        func close() {
            stack.shutdown()
            tap.close()
            capture?.close()
        }
    }

    func start(label: String) throws -> Running {
        let level = logLevel.level
        LoggingSystem.bootstrap { name in
            var handler = StreamLogHandler.standardError(label: name)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "netmp.\(label)")
        let tap: TAPInterface
        do {
            tap = try TAPInterface(name: self.tap, queues: threads, largeReceive: largeReceive)
        } catch {
            throw CommandFailure.from(error, doing: "open TAP device \(self.tap)")
        }
        logger.info("attached", metadata: ["device": "\(tap)"])
        let stack = NetworkStack(NetworkStack.Configuration(threadCount: threads))
        var capture: PcapWriter?
        do {
            if let pcap {
                let writer = try PcapWriter(path: pcap, clock: stack.clock)
                tap.setCapture(writer)
                capture = writer
            }
            try stack.addAddress(address, to: tap)
            if let gateway, let router = IPv4Address(gateway) { try stack.setDefaultGateway(router) }
        } catch {
            stack.shutdown()
            tap.close()
            throw CommandFailure.from(error, doing: "configure \(address) on \(self.tap)")
        }
        logger.info("address", metadata: ["address": "\(address)", "gateway": "\(gateway ?? "none")"])
        return Running(stack: stack, tap: tap, capture: capture, logger: logger)
    }
}

/// Unbuffered writes to a descriptor (stdout is the data path of `netmp nc`).
struct FileHandleOutput {
    let descriptor: Int32
    static let standardError = FileHandleOutput(descriptor: 2)
    static let standardOutput = FileHandleOutput(descriptor: 1)

    func write(_ text: String) { writeBytes(Array(text.utf8)) }

    /// Writes all of `bytes` (stopping early only if the descriptor fails).
    func writeBytes(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return Glibc.write(descriptor, base + offset, raw.count - offset)
            }
            if count <= 0 { return }
            offset += count
        }
    }

    var isTerminal: Bool { isatty(descriptor) == 1 }
}

/// Formats a byte count for progress lines.
func formatBytes(_ count: Int) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] where count >= 1 << shift {
        let tenths = count / ((1 << shift) / 10)
        return "\(tenths / 10).\(tenths % 10) \(unit)"
    }
    return "\(count) B"
}
