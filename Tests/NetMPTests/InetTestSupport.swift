import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// An address from its text (tests only).
func address(_ text: String) -> IPv4Address {
    guard let address = IPv4Address(text) else { preconditionFailure("bad address \(text)") }
    return address
}

func prefix(_ text: String) -> IPv4Prefix {
    guard let prefix = IPv4Prefix(text) else { preconditionFailure("bad prefix \(text)") }
    return prefix
}

/// The error a finished ping ended with, if any.
func failure(_ ping: PingRequest) -> NetError? {
    guard case .failure(let error)? = ping.result else { return nil }
    return error
}

/// a (198.18.1.10) -- lan1 -- router -- lan2 -- b (198.18.2.20)
func makeRoutedNetwork(forwarding: Bool, seed: UInt64 = 11) throws -> (
    SimulatedNetwork, NetworkStack, NetworkStack, NetworkStack
) {
    let network = SimulatedNetwork(seed: seed)
    let lan1 = network.makeSwitch(name: "lan1")
    let lan2 = network.makeSwitch(name: "lan2")
    let a = network.makeStack(threadCount: 3)
    let b = network.makeStack(threadCount: 2)
    var routerSettings = InetSettings()
    routerSettings.forwarding = forwarding
    let router = network.makeStack(threadCount: 2, settings: routerSettings)
    try network.attach(a, to: lan1, address: "198.18.1.10/24")
    try network.attach(router, to: lan1, address: "198.18.1.1/24")
    try network.attach(router, to: lan2, address: "198.18.2.1/24")
    try network.attach(b, to: lan2, address: "198.18.2.20/24")
    try a.setDefaultGateway(address("198.18.1.1"))
    try b.setDefaultGateway(address("198.18.2.1"))
    network.runUntilIdle()
    return (network, a, b, router)
}
