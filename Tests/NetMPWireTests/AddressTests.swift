import NetMPWire
import XCTest

final class IPv4AddressTests: XCTestCase {
    func testParseAndPrint() {
        let address = IPv4Address("198.18.0.1")
        XCTAssertEqual(address?.rawValue, 0xC612_0001)
        XCTAssertEqual(address?.description, "198.18.0.1")
        XCTAssertEqual(IPv4Address("0.0.0.0"), .unspecified)
        XCTAssertEqual(IPv4Address("255.255.255.255"), .broadcast)
        XCTAssertEqual(IPv4Address(10, 1, 2, 3).description, "10.1.2.3")
    }

    func testStrictParsingRejectsSloppyText() {
        let bad = [
            "", ".", "1.2.3", "1.2.3.4.5", "1.2.3.", ".1.2.3", "1..2.3", "256.0.0.1", "1.2.3.04", "01.2.3.4",
            "1.2.3.4 ", " 1.2.3.4", "1.2.3.-4", "1.2.3.4/24", "0x1.2.3.4", "1.2.3.1000", "127.1", "a.b.c.d",
            "1.2.3.4\u{0}", "١.2.3.4",
        ]
        for text in bad {
            XCTAssertNil(IPv4Address(text), "accepted \(text.debugDescription)")
        }
        XCTAssertNotNil(IPv4Address("0.10.100.255"))
    }

    func testClassification() {
        XCTAssertTrue(IPv4Address.broadcast.isBroadcast)
        XCTAssertTrue(IPv4Address(224, 0, 0, 1).isMulticast)
        XCTAssertTrue(IPv4Address(239, 255, 255, 255).isMulticast)
        XCTAssertFalse(IPv4Address(240, 0, 0, 1).isMulticast)
        XCTAssertTrue(IPv4Address(127, 9, 9, 9).isLoopback)
        XCTAssertTrue(IPv4Address.unspecified.isUnspecified)
        XCTAssertFalse(IPv4Address(198, 18, 0, 1).isLoopback)
        XCTAssertLessThan(IPv4Address(10, 0, 0, 1), IPv4Address(10, 0, 0, 2))
    }

    func testPrefix() throws {
        let benchmark = try XCTUnwrap(IPv4Prefix("198.18.0.0/15"))
        XCTAssertEqual(benchmark.length, 15)
        XCTAssertEqual(benchmark.netmask.description, "255.254.0.0")
        XCTAssertEqual(benchmark.broadcastAddress.description, "198.19.255.255")
        XCTAssertTrue(benchmark.contains(IPv4Address(198, 19, 200, 1)))
        XCTAssertFalse(benchmark.contains(IPv4Address(198, 20, 0, 1)))
        XCTAssertTrue(benchmark.contains(try XCTUnwrap(IPv4Prefix("198.18.4.0/24"))))
        XCTAssertFalse(benchmark.contains(try XCTUnwrap(IPv4Prefix("198.0.0.0/8"))))
        XCTAssertEqual(benchmark.description, "198.18.0.0/15")
        XCTAssertEqual(IPv4Prefix("0.0.0.0/0")?.contains(IPv4Address(8, 8, 8, 8)), true)
        XCTAssertEqual(IPv4Prefix("10.0.0.1/32")?.netmask, .broadcast)
        XCTAssertEqual(IPv4Prefix(address: IPv4Address(198, 18, 0, 1), length: 15), benchmark)
        for text in [
            "198.18.0.1/15", "198.18.0.0/33", "198.18.0.0/", "198.18.0.0", "198.18.0.0/015", "/15", "1.2.3.0/2 4",
        ] {
            XCTAssertNil(IPv4Prefix(text), "accepted \(text)")
        }
        XCTAssertNil(IPv4Prefix(address: .unspecified, length: -1))
    }
}

final class MACAddressTests: XCTestCase {
    func testParseAndPrint() throws {
        let address = try XCTUnwrap(MACAddress("02:00:00:00:00:01"))
        XCTAssertEqual(address.rawValue, 0x0200_0000_0001)
        XCTAssertEqual(address.description, "02:00:00:00:00:01")
        XCTAssertEqual(MACAddress("AA:bb:CC:dd:EE:ff")?.description, "aa:bb:cc:dd:ee:ff")
        XCTAssertEqual(address.octets, [2, 0, 0, 0, 0, 1])
        XCTAssertEqual(MACAddress(2, 0, 0, 0, 0, 1), address)
        XCTAssertTrue(address.isLocallyAdministered)
        XCTAssertTrue(address.isUnicast)
    }

    func testBroadcastAndMulticast() {
        XCTAssertEqual(MACAddress("ff:ff:ff:ff:ff:ff"), .broadcast)
        XCTAssertTrue(MACAddress.broadcast.isBroadcast)
        XCTAssertTrue(MACAddress.broadcast.isMulticast)
        XCTAssertTrue(MACAddress("01:00:5e:00:00:01")?.isMulticast ?? false)
        XCTAssertFalse(MACAddress.zero.isBroadcast)
    }

    func testRejectsMalformedText() {
        for text in [
            "", "02:00:00:00:00", "02:00:00:00:00:01:02", "02-00-00-00-00-01", "2:0:0:0:0:1", "02:00:00:00:00:0g",
            "0200.0000.0001", "02:00:00:00:00:01 ", "02::00:00:00:00:01",
        ] {
            XCTAssertNil(MACAddress(text), "accepted \(text)")
        }
    }
}
