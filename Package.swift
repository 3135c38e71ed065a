// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "NetMP",
    products: [
        .library(name: "NetMP", targets: ["NetMP"]),
        .executable(name: "netmp", targets: ["netmp"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
    ],
    targets: [
        // The Linux calls Glibc does not import: futex, CPU affinity, thread-local current port.
        .target(name: "CNetMP"),
        // Packet views: parse and emit, no state.
        .target(name: "NetMPWire"),
        // TCP's pure core: the connection state machine as a value, no I/O.
        .target(name: "NetMPTCP", dependencies: ["NetMPWire"]),
        .target(name: "NetMP", dependencies: ["CNetMP", "NetMPWire"]),
        .executableTarget(
            name: "netmp",
            dependencies: [
                "NetMP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "NetMPTests", dependencies: ["NetMP", "CNetMP"]),
        .testTarget(name: "NetMPWireTests", dependencies: ["NetMPWire"]),
        .testTarget(name: "NetMPTCPTests", dependencies: ["NetMPTCP", "NetMPWire"]),
    ],
    swiftLanguageModes: [.v6]
)
