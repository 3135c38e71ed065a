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
