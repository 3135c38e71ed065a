// swift-tools-version:6.0
import PackageDescription

// Instructions per operation on NetMP's hot paths, for scripts/path-cost.sh: a separate package
// so that the main build stays as it is.
let package = Package(
    name: "PathCost",
    dependencies: [.package(name: "NetMP", path: "../..")],
    targets: [
        .executableTarget(name: "pathcost", dependencies: [.product(name: "NetMP", package: "NetMP")])
    ],
    swiftLanguageModes: [.v6]
)
