// swift-tools-version:6.0
import PackageDescription

// One target per layer of ../shared/DESIGN.md, each importing only the targets it lists, all of
// them lower layers (the build checks this with --explicit-target-dependency-import-check error).
// From the bottom: CNetMP, NetMPWire, NetMPRuntime, NetMPSockets, NetMPLocal, NetMPInterfaces,
// NetMPInet, NetMPTCP, NetMP (the public face).
let package = Package(
    name: "NetMP",
    products: [
        .library(name: "NetMP", targets: ["NetMP"]),
        .library(name: "NetMPMetrics", targets: ["NetMPMetrics"]),
        .executable(name: "netmp", targets: ["netmp"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // Logging for the command only; the library core has no dependencies.
        .package(url: "https://github.com/apple/swift-log", "1.16.0"..<"1.17.0"),
        // Counters for an application's metrics backend, in a product of their own (NetMPMetrics).
        .package(url: "https://github.com/apple/swift-metrics", "2.4.0"..<"3.0.0"),
    ],
    targets: [
        // The Linux calls Glibc does not import: futex, CPU affinity, thread-local current port.
        .target(name: "CNetMP"),
        // Packet views: parse and emit, no state.
        .target(name: "NetMPWire"),
        // Protocol threads, ports, timers, clocks, parking, locks, byte chunks and chains, errors.
        .target(name: "NetMPRuntime", dependencies: ["CNetMP"]),
        // The socket, its buffers and waiters, listen queues, the protocol-request interface.
        .target(name: "NetMPSockets", dependencies: ["NetMPRuntime", "NetMPWire", "CNetMP"]),
        // In-process stream and datagram sockets.
        .target(name: "NetMPLocal", dependencies: ["NetMPSockets", "NetMPRuntime"]),
        // Links: the interface base, loopback, simulated switches, pcap, TAP devices.
        .target(name: "NetMPInterfaces", dependencies: ["NetMPRuntime", "NetMPWire", "CNetMP"]),
        // Addresses, routes, ARP, IPv4, fragments, ICMP, UDP.
        .target(
            name: "NetMPInet",
            dependencies: ["NetMPInterfaces", "NetMPSockets", "NetMPRuntime", "NetMPWire"]
        ),
        // TCP: the connection state machine as a value (no I/O), sequence numbers, options,
        // timers, congestion control, initial sequence numbers and ports; and, in files of their
        // own, its integration with sockets and IPv4 on the protocol threads.
        .target(name: "NetMPTCP", dependencies: ["NetMPInet", "NetMPSockets", "NetMPRuntime", "NetMPWire"]),
        // The public face: NetworkStack, NetSocket, the poller, the simulated network.
        .target(
            name: "NetMP",
            dependencies: [
                "NetMPInet", "NetMPInterfaces", "NetMPLocal", "NetMPSockets", "NetMPRuntime", "NetMPTCP", "NetMPWire",
                "CNetMP",
            ]
        ),
        // Services over the generic socket API (echo, discard, HTTP, UDP echo, stream pumps): the
        // command serves them, the tests run them over local and TAP sockets.
        .target(name: "NetMPServices", dependencies: ["NetMP"]),
        // The stack's counters through swift-metrics, for the user's own backend; apart from the
        // library core so that NetMP itself depends on the toolchain alone.
        .target(
            name: "NetMPMetrics",
            dependencies: ["NetMP", .product(name: "Metrics", package: "swift-metrics")]
        ),
        .executableTarget(
            name: "netmp",
            dependencies: [
                "NetMP", "NetMPServices", "CNetMP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Counts heap allocations in the test process (tests that a path allocates nothing).
        .target(name: "CAllocationCounter", path: "Tests/CAllocationCounter"),
        .testTarget(
            name: "NetMPTests",
            dependencies: [
                "NetMP", "NetMPInet", "NetMPInterfaces", "NetMPLocal", "NetMPSockets", "NetMPRuntime", "NetMPTCP",
                "CNetMP", "CAllocationCounter", "NetMPServices",
            ]
        ),
        .testTarget(name: "NetMPWireTests", dependencies: ["NetMPWire"]),
        .testTarget(
            name: "NetMPMetricsTests",
            dependencies: ["NetMPMetrics", "NetMP", .product(name: "MetricsTestKit", package: "swift-metrics")]
        ),
        .testTarget(name: "NetMPTCPTests", dependencies: ["NetMPTCP", "NetMPWire"]),
    ],
    swiftLanguageModes: [.v6]
)
