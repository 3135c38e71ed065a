// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets for NetMP, built apart from the main package (its own scratch path) because
// every module is compiled with -sanitize=fuzzer,address: `bash Proofs/fuzz/run.sh SECONDS`.
// One binary holds every target; NETMP_FUZZ_TARGET names the one to run.
let package = Package(
    name: "NetMPFuzz",
    dependencies: [.package(name: "NetMP", path: "../..")],
    targets: [
        .executableTarget(
            name: "NetMPFuzz",
            dependencies: [.product(name: "NetMP", package: "NetMP")]
        )
    ],
    swiftLanguageModes: [.v6]
)
