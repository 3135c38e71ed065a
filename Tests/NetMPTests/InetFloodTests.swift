import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// The receive path under a hostile flood: 100,000 ARP requests from random sources and 100,000
/// random fragments. The stack's own accounting (neighbour entries, reassembly bytes and
/// datagrams, per source) stays under its limits after every batch, and the chunks alive stay
/// bounded.
final class InetFloodTests: XCTestCase {
    static let frames = 100_000
    static let batch = 1000

    /// Rewrites an IPv4 header checksum in place.
    static func fixChecksum(_ frame: inout [UInt8]) {
        frame[24] = 0
        frame[25] = 0
        var sum: UInt32 = 0
        for index in stride(from: 14, to: 34, by: 2) { sum += UInt32(frame[index]) << 8 | UInt32(frame[index + 1]) }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        frame[24] = UInt8(truncatingIfNeeded: ~sum >> 8)
        frame[25] = UInt8(truncatingIfNeeded: ~sum)
    }

    func testFloodOfARPAndFragmentsStaysWithinLimits() throws {
        let clock = ManualClock(startingAt: 1_000_000_000)
        let stack = NetworkStack(.init(threadCount: 2, clock: clock, mode: .driven, seed: 3))
        defer { stack.shutdown() }
        let interface = TestInterface()
        let local = address("198.18.0.1")
        try stack.addAddress(local, prefixLength: 15, to: interface)
        stack.runUntilIdle()
        let settings = stack.inetSettings
        let inet = stack.inet
        let chunksBefore = ByteChunk.liveCount.load(ordering: .relaxed)
        var random = SeededRandom(seed: 77)

        func check(_ label: String) {
            XCTAssertLessThanOrEqual(inet.neighbours.count, settings.arpCacheLimit, label)
            for state in inet.perThread {
                XCTAssertLessThanOrEqual(state.reassemblyBytes, settings.reassemblyMaxBytes, label)
                XCTAssertLessThanOrEqual(state.reassembly.count, settings.reassemblyMaxDatagrams, label)
                XCTAssertEqual(state.reassemblyBytes, state.reassembly.values.reduce(0) { $0 + $1.bytes }, label)
                for usage in state.reassemblySources.values {
                    XCTAssertLessThanOrEqual(usage.bytes, settings.reassemblyMaxBytesPerSource, label)
                    XCTAssertLessThanOrEqual(usage.datagrams, settings.reassemblyMaxDatagramsPerSource, label)
                }
            }
            // What is alive: what reassembly may hold, what the pool keeps, one batch in flight.
            let held = inet.perThread.count * settings.reassemblyMaxBytes / ChunkPool.sizeClasses[0]
            let bound = held + 1024 + 256 + 64 + InetFloodTests.batch
            XCTAssertLessThanOrEqual(ByteChunk.liveCount.load(ordering: .relaxed) - chunksBefore, bound, label)
        }

        // ARP requests for our address from random senders in 198.18.0.0/15.
        let request = ARPPacket(
            operation: .request, senderHardwareAddress: MACAddress(0x02, 0, 0, 0, 0, 2),
            senderProtocolAddress: address("198.18.0.2"), targetHardwareAddress: .zero, targetProtocolAddress: local)
        let arpTemplate =
            EthernetHeader(destination: .broadcast, source: MACAddress(0x02, 0, 0, 0, 0, 2), etherType: .arp).bytes()
            + request.bytes()
        for start in stride(from: 0, to: InetFloodTests.frames, by: InetFloodTests.batch) {
            var frames: [[UInt8]] = []
            frames.reserveCapacity(InetFloodTests.batch)
            for _ in 0..<InetFloodTests.batch {
                var frame = arpTemplate
                let bits = random.next()
                let host = 0xC612_0000 | UInt32(truncatingIfNeeded: bits & 0x1_FFFF)
                for index in 0..<4 { frame[28 + index] = UInt8(truncatingIfNeeded: host >> UInt32(24 - 8 * index)) }
                for index in 0..<5 {
                    let byte = UInt8(truncatingIfNeeded: bits >> UInt64(20 + 8 * index))
                    frame[7 + index] = byte
                    frame[23 + index] = byte
                }
                frames.append(frame)
            }
            interface.inject(frames)
            stack.runUntilIdle()
            if start % 10_000 == 0 { check("arp \(start)") }
        }
        check("arp done")
        XCTAssertEqual(stack.inetStatistics()[.arpIn], InetFloodTests.frames)

        // Random fragments: random sources, identifications, offsets, lengths and MF bits.
        let payload = [UInt8](repeating: 0xEE, count: 1480)
        let header = IPv4Header(
            totalLength: 28, identification: 0, dontFragment: false, moreFragments: true, protocol: .udp,
            source: address("198.18.0.2"), destination: local)
        let ipTemplate =
            EthernetHeader(
                destination: interface.hardwareAddress, source: MACAddress(0x02, 0, 0, 0, 0, 2), etherType: .ipv4
            )
            .bytes() + header.bytes()
        for start in stride(from: 0, to: InetFloodTests.frames, by: InetFloodTests.batch) {
            var frames: [[UInt8]] = []
            frames.reserveCapacity(InetFloodTests.batch)
            for _ in 0..<InetFloodTests.batch {
                let bits = random.next()
                let more = random.next()
                let length = 8 * Int(1 + more % 185)
                var frame = ipTemplate + payload[0..<length]
                let total = 20 + length
                frame[16] = UInt8(total >> 8)
                frame[17] = UInt8(total & 0xFF)
                frame[18] = UInt8(truncatingIfNeeded: bits)
                frame[19] = UInt8(truncatingIfNeeded: bits >> 8)
                let offset = UInt16(truncatingIfNeeded: bits >> 16) & 0x1FFF
                let flags: UInt16 = (bits >> 40) & 3 == 0 ? 0 : 0x2000
                frame[20] = UInt8((flags | offset) >> 8)
                frame[21] = UInt8((flags | offset) & 0xFF)
                // Sources from a few hundred hosts, so some send many fragments.
                let host = 0xC612_0000 | UInt32(truncatingIfNeeded: (bits >> 44) & 0x1FF) + 2
                for index in 0..<4 { frame[26 + index] = UInt8(truncatingIfNeeded: host >> UInt32(24 - 8 * index)) }
                InetFloodTests.fixChecksum(&frame)
                frames.append(frame)
            }
            interface.inject(frames)
            stack.runUntilIdle()
            clock.advance(by: .milliseconds(5))
            stack.runUntilIdle()
            if start % 10_000 == 0 { check("fragments \(start)") }
        }
        check("fragments done")
        let stats = stack.inetStatistics()
        XCTAssertEqual(stats[.ipIn], InetFloodTests.frames)
        // Offset 0 without MF is a whole datagram, not a fragment.
        XCTAssertEqual(
            stats[.fragmentsIn] + stats[.ipDelivered] - stats[.reassembled], InetFloodTests.frames, "\(stats)")
        XCTAssertGreaterThan(stats[.reassemblyRefused] + stats[.reassemblyDropped], 0, "\(stats)")
        // Once the flood stops, the timeout empties reassembly and the sweep the neighbour table.
        clock.advance(by: settings.reassemblyTimeout + .seconds(1))
        stack.runUntilIdle()
        for _ in 0..<Int(2 * settings.arpLifetime.components.seconds + 4) {
            clock.advance(by: .seconds(1))
            stack.runUntilIdle()
        }
        for state in inet.perThread {
            XCTAssertEqual(state.reassemblyBytes, 0)
            XCTAssertEqual(state.reassembly.count, 0)
            XCTAssertTrue(state.reassemblySources.isEmpty)
        }
        XCTAssertEqual(inet.neighbours.count, 0)
    }
}
