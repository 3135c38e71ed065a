import XCTest

@testable import NetMPWire

final class WirePlaceholderTests: XCTestCase { func testBuilds() {} }
