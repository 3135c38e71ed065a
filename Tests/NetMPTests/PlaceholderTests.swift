import XCTest
@testable import NetMP
final class PlaceholderTests: XCTestCase { func testBuilds() { XCTAssertEqual(NetMPVersion.string, "0.1.0") } }
