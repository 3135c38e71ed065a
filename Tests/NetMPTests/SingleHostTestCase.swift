import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// An interface the test drives by hand: it records what the stack sends and injects frames.
final class TestInterface: NetworkInterface, @unchecked Sendable {
    let sent = LockedValue<[[UInt8]]>([])

    init(mac: MACAddress = MACAddress(0x02, 0, 0, 0, 0, 1), mtu: Int = 1500) {
        super.init(name: "test0", mtu: mtu, hardwareAddress: mac, offloads: [], needsAddressResolution: true)
    }

    override func transmit(_ frames: [Frame]) {
        noteTransmitted(frames)
        sent.withLock { $0 += frames.map(\.array) }
    }

    func inject(_ frames: [[UInt8]]) { deliverInbound(frames.map { Frame($0) }) }
}

/// One driven (deterministic) host at 198.18.0.1 on a `TestInterface`, with a UDP socket bound
/// to port 9000, and a peer at 198.18.0.2 whose frames the test writes by hand.
class SingleHostTestCase: XCTestCase {
    let peerMAC = MACAddress(0x02, 0, 0, 0, 0, 2)
    let local = address("198.18.0.1")
    let peer = address("198.18.0.2")
    var clock: ManualClock!
    var stack: NetworkStack!
    var interface: TestInterface!
    var receiver: NetSocket!

    func makeStack(_ settings: InetSettings = InetSettings()) throws {
        clock = ManualClock(startingAt: 1_000_000_000)
        stack = NetworkStack(.init(threadCount: 1, clock: clock, mode: .driven, seed: 1, inet: settings))
        interface = TestInterface()
        try stack.addAddress(local, prefixLength: 24, to: interface)
        receiver = try stack.socket(.inet, .datagram)
        try receiver.bind(to: .ipv4(.unspecified, port: 9000))
        stack.runUntilIdle()
    }

    override func tearDown() {
        receiver?.close()
        stack?.shutdown()
        super.tearDown()
    }
}
