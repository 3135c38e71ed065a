import Foundation
import Synchronization
import XCTest

@testable import NetMP
@testable import NetMPInterfaces

/// Busy polling of a TAP device (root only): threads blocked on NetMP sockets read the device
/// themselves while they spin, and the device's reader thread stands aside meanwhile.
final class TAPBusyPollTests: XCTestCase {
    /// A blocking echo on a NetMP thread, 8 MiB from a kernel client: byte-exact, and some of
    /// the frames were read by the echo thread's own busy polls.
    func testABlockingEchoIsByteExactAndItsReaderBusyPolls() throws {
        let frames = try blockingEcho(bytes: 8 << 20, busyPolling: true)
        XCTAssertGreaterThan(frames, 0, "no frame was read by a busy-polling thread")
    }

    /// The same with busy polling off: every frame comes through the reader thread.
    func testWithoutBusyPollingTheReaderTakesEveryFrame() throws {
        XCTAssertEqual(try blockingEcho(bytes: 2 << 20, busyPolling: false), 0)
    }

    /// A poller that goes to sleep hands the queue back at once, and one that got its answer
    /// hands it back after the grace period: the kernel's pings are answered after either.
    func testTheReaderTakesOverAfterAPollerEnds() throws {
        let namespace = try TAPNamespace.make(for: self)
        let stack = NetworkStack(NetworkStack.Configuration(threadCount: 1))
        defer { stack.shutdown() }
        let tap = try namespace.attach(stack)
        for blocking in [true, false] {
            tap.beginBusyPoll()
            tap.endBusyPoll(blocking: blocking)
            let ping = try namespace.run(["ping", "-c", "3", "-i", "0.2", "-W", "2", TAPNamespace.netmpAddress])
            XCTAssertTrue(
                ping.output.contains("3 packets transmitted, 3 received"), "blocking \(blocking): \(ping.output)")
        }
        XCTAssertEqual(tap.tapStatistics.busyPolledFrames, 0)
    }

    /// Closing the device while a thread is between begin and end of a busy poll: the parked
    /// reader ends, the close returns, and polls after it read nothing (the descriptors are gone).
    func testClosingTheDeviceWhileAThreadBusyPolls() throws {
        let namespace = try TAPNamespace.make(for: self)
        let stack = NetworkStack(NetworkStack.Configuration(threadCount: 1))
        defer { stack.shutdown() }
        let tap = try namespace.attach(stack)
        tap.beginBusyPoll()
        let closed = expectation(description: "close returned")
        let closer = Thread {
            tap.close()
            closed.fulfill()
        }
        closer.start()
        wait(for: [closed], timeout: 10)
        XCTAssertFalse(tap.busyPoll())
        tap.endBusyPoll(blocking: true)
    }

    /// Returns the frames read by busy polls.
    private func blockingEcho(bytes: Int, busyPolling: Bool) throws -> Int {
        let stack = NetworkStack(NetworkStack.Configuration(threadCount: 1))
        defer { stack.shutdown() }
        let listener = try tcpSocketOrSkip(stack)
        defer { listener.close() }
        let namespace = try TAPNamespace.make(for: self)
        let tap = try namespace.attach(stack, busyPolling: busyPolling)
        try listener.bind(to: .ipv4(.unspecified, port: 7))
        try listener.listen(backlog: 4)
        let echoed = Atomic<Int>(0)
        let failure = Mutex<String?>(nil)
        let echoer = Thread {
            do {
                let connection = try listener.accept()
                defer { connection.close() }
                try connection.setOption(.receiveTimeout, 60_000_000_000)
                var buffer = [UInt8](repeating: 0, count: 64 << 10)
                while true {
                    let count = try buffer.withUnsafeMutableBytes { raw in
                        try connection.read(into: raw)
                    }
                    if count == 0 { break }
                    var done = 0
                    while done < count {
                        done += try buffer.withUnsafeBytes { raw in
                            try connection.write(UnsafeRawBufferPointer(rebasing: raw[done..<count]))
                        }
                    }
                    echoed.add(count, ordering: .relaxed)
                }
                try connection.shutdown(.write)
            } catch {
                failure.withLock { $0 = "\(error)" }
            }
        }
        echoer.start()
        try checkKernelEchoClient(namespace, port: 7, bytes: bytes, timeout: .seconds(120))
        XCTAssertNil(failure.withLock { $0 })
        XCTAssertEqual(echoed.load(ordering: .relaxed), bytes)
        return tap.tapStatistics.busyPolledFrames
    }
}
