import XCTest

@testable import NetMP

final class LocalStreamTests: XCTestCase {
    var stack: NetworkStack!

    override func setUp() { stack = NetworkStack(.init(threadCount: 2)) }

    override func tearDown() {
        let stack = self.stack!
        self.stack = nil
        XCTAssertEqual(stack.liveSocketCount, 0, "sockets leaked")
        XCTAssertEqual(stack.liveBufferCount, 0, "buffers leaked")
        stack.shutdown()
    }

    func testSocketPairCarriesBytesBothWays() throws {
        try bounded {
            let (a, b) = try stack.socketPair(.stream)
            XCTAssertEqual(try a.write(Array("hello".utf8)), 5)
            XCTAssertEqual(try b.read(maxBytes: 100), Array("hello".utf8))
            XCTAssertEqual(try b.write([1, 2, 3]), 3)
            XCTAssertEqual(try a.read(maxBytes: 2), [1, 2])
            XCTAssertEqual(try a.read(maxBytes: 2), [3])
        }
    }

    func testLargeTransferAcrossThreadsIsExact() throws {
        try bounded {
            let (a, b) = try stack.socketPair(.stream)
            var generator = SeededGenerator(seed: 42)
            let payload = generator.bytes(5 << 20)
            var expected = StreamHash()
            expected.add(payload)
            let failures = FailureLog()
            let writer = OSThread.start(name: "writer") {
                do {
                    var offset = 0
                    while offset < payload.count {
                        let end = Swift.min(payload.count, offset + 65536 + offset % 1000)
                        try a.write(Array(payload[offset..<end]))
                        offset = end
                    }
                    try a.shutdown(.write)
                } catch {
                    failures.record("writer: \(error)")
                }
            }
            var received = StreamHash()
            while true {
                let chunk = try b.read(maxBytes: 50_000)
                if chunk.isEmpty { break }
                received.add(chunk)
            }
            writer.join()
            failures.check()
            XCTAssertEqual(received, expected)
        }
    }
}
