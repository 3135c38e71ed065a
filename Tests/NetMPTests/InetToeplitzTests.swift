import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// The Toeplitz key is a parameter; under Microsoft's key the hash gives the five published RSS
/// verification results ("Verifying the RSS Hash Calculation", IPv4 only and IPv4 with TCP).
final class InetToeplitzTests: XCTestCase {
    struct Vector {
        var source: String
        var sourcePort: UInt16
        var destination: String
        var destinationPort: UInt16
        var addressesOnly: UInt32
        var withPorts: UInt32
    }

    static let vectors = [
        Vector(
            source: "66.9.149.187", sourcePort: 2794, destination: "161.142.100.80", destinationPort: 1766,
            addressesOnly: 0x323E_8FC2, withPorts: 0x51CC_C178),
        Vector(
            source: "199.92.111.2", sourcePort: 14230, destination: "65.69.140.83", destinationPort: 4739,
            addressesOnly: 0xD718_262A, withPorts: 0xC626_B0EA),
        Vector(
            source: "24.19.198.95", sourcePort: 12898, destination: "12.22.207.184", destinationPort: 38024,
            addressesOnly: 0xD2D0_A5DE, withPorts: 0x5C2B_394A),
        Vector(
            source: "38.27.205.30", sourcePort: 48228, destination: "209.142.163.6", destinationPort: 2217,
            addressesOnly: 0x8298_9176, withPorts: 0xAFC7_327F),
        Vector(
            source: "153.39.163.191", sourcePort: 44251, destination: "202.188.127.2", destinationPort: 1303,
            addressesOnly: 0x5D18_09C5, withPorts: 0x10E8_28A2),
    ]

    func testMicrosoftVerificationVectors() throws {
        let hasher = try XCTUnwrap(ToeplitzHasher(key: Toeplitz.microsoftKey))
        for vector in InetToeplitzTests.vectors {
            let source = address(vector.source)
            let destination = address(vector.destination)
            XCTAssertEqual(hasher.hash(source: source, destination: destination), vector.addressesOnly, vector.source)
            XCTAssertEqual(
                hasher.hash(
                    source: source, destination: destination, sourcePort: vector.sourcePort,
                    destinationPort: vector.destinationPort),
                vector.withPorts, vector.source)
        }
    }

    func testKeysShorterThanTheWindowAreRefused() {
        XCTAssertNil(ToeplitzHasher(key: [UInt8](repeating: 1, count: 15)))
        XCTAssertNotNil(ToeplitzHasher(key: [UInt8](repeating: 1, count: 16)))
    }

    /// A stack dispatches by the key in its settings (it had one fixed key).
    func testStackDispatchesByItsKey() throws {
        var settings = InetSettings()
        settings.dispatchKey = Toeplitz.microsoftKey
        let stack = NetworkStack(.init(threadCount: 3, clock: ManualClock(), mode: .driven, seed: 1, inet: settings))
        defer { stack.shutdown() }
        let hasher = try XCTUnwrap(ToeplitzHasher(key: Toeplitz.microsoftKey))
        var differs = false
        for vector in InetToeplitzTests.vectors {
            let source = address(vector.source)
            let destination = address(vector.destination)
            let expected = Int(vector.withPorts % 3)
            XCTAssertEqual(
                stack.inet.threadIndex(
                    source: source, destination: destination, sourcePort: vector.sourcePort,
                    destinationPort: vector.destinationPort), expected)
            let symmetric = Int(
                Toeplitz.hash(
                    source: source, destination: destination, sourcePort: vector.sourcePort,
                    destinationPort: vector.destinationPort) % 3)
            if symmetric != expected { differs = true }
            XCTAssertEqual(
                hasher.hash(source: source, destination: destination, sourcePort: 0, destinationPort: 0),
                vector.addressesOnly)
        }
        XCTAssertTrue(differs, "the key made no difference to any vector")
    }
}
