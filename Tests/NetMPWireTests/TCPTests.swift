import NetMPWire
import XCTest

final class TCPTests: XCTestCase {
    private var synSegment: [UInt8] { Array(KnownPackets.syn[20...]) }

    private func parse(_ bytes: [UInt8], verify: Bool = true) -> Result<TCPPacket, WireError> {
        TCPHeader.parse(bytes, source: KnownPackets.client, destination: KnownPackets.server, verifyChecksum: verify)
    }

    func testParseLinuxSYN() throws {
        let packet = try parse(synSegment).get()
        let header = packet.header
        XCTAssertEqual(header.sourcePort, 45678)
        XCTAssertEqual(header.destinationPort, 80)
        XCTAssertEqual(header.sequenceNumber, 0x5A1B_2C3D)
        XCTAssertEqual(header.acknowledgmentNumber, 0)
        XCTAssertEqual(header.flags, .syn)
        XCTAssertEqual(header.window, 64240)
        XCTAssertEqual(header.checksum, 0x71B8)
        XCTAssertEqual(header.urgentPointer, 0)
        XCTAssertEqual(header.options.maximumSegmentSize, 1460)
        XCTAssertTrue(header.options.sackPermitted)
        XCTAssertEqual(header.options.timestamps, TCPTimestamps(value: 0x0A0B_0C0D, echoReply: 0))
        XCTAssertEqual(header.options.windowScale, 7)
        XCTAssertTrue(header.options.sackBlocks.isEmpty)
        XCTAssertEqual(packet.headerLength, 40)
        XCTAssertEqual(packet.payloadRange, 40..<40)
    }

    func testRoundTripSYN() throws {
        let header = try parse(synSegment).get().header
        XCTAssertEqual(header.encodedLength, 40)
        XCTAssertEqual(header.bytes(source: KnownPackets.client, destination: KnownPackets.server), synSegment)
    }

    func testDataSegmentWithSACKRoundTrip() throws {
        let header = TCPHeader(
            sourcePort: 80, destinationPort: 45678, sequenceNumber: 1, acknowledgmentNumber: 0x5A1B_2C3E,
            flags: [.ack, .psh], window: 502,
            options: TCPOptions(
                sackBlocks: SACKBlocks([
                    SACKBlock(left: 100, right: 200), SACKBlock(left: 300, right: 400),
                    SACKBlock(left: 500, right: 600),
                ]),
                timestamps: TCPTimestamps(value: 7, echoReply: 0x0A0B_0C0D)))
        let payload = Array("GET / HTTP/1.1\r\n\r\n".utf8)
        let segment = header.bytes(payload: payload, source: KnownPackets.server, destination: KnownPackets.client)
        XCTAssertEqual(segment.count, 20 + 12 + 28 + payload.count)
        // NOP NOP TS, then NOP NOP SACK with three blocks, as Linux lays them out.
        XCTAssertEqual(Array(segment[20..<24]), [1, 1, 8, 10])
        XCTAssertEqual(Array(segment[32..<36]), [1, 1, 5, 26])
        let parsed = try TCPHeader.parse(segment, source: KnownPackets.server, destination: KnownPackets.client).get()
        var expected = header
        expected.checksum = parsed.header.checksum
        XCTAssertEqual(parsed.header, expected)
        XCTAssertEqual(Array(segment[parsed.payloadRange]), payload)
        XCTAssertEqual(parsed.header.options.sackBlocks.count, 3)
        XCTAssertEqual(parsed.header.options.sackBlocks[2], SACKBlock(left: 500, right: 600))
    }

    func testAllFlags() throws {
        let everything: TCPFlags = [.fin, .syn, .rst, .psh, .ack, .urg, .ece, .cwr]
        XCTAssertEqual(everything.rawValue, 0xFF)
        let segment = TCPHeader(
            sourcePort: 1, destinationPort: 2, sequenceNumber: 3, flags: [.syn, .ece, .cwr], window: 4
        )
        .bytes(source: KnownPackets.client, destination: KnownPackets.server)
        XCTAssertEqual(segment[13], 0xC2)
        XCTAssertEqual(parse(segment).success?.header.flags, [.syn, .ece, .cwr])
    }

    func testValidationErrors() {
        var segment = synSegment
        XCTAssertEqual(parse(Array(segment.prefix(19))).failure, .truncated)
        XCTAssertEqual(parse(Array(segment.prefix(39)), verify: false).failure, .truncated)
        segment[12] = 0x40  // Data offset 4.
        XCTAssertEqual(parse(segment, verify: false).failure, .badHeaderLength)
        segment = synSegment
        segment[4] ^= 0x80
        XCTAssertEqual(parse(segment).failure, .badChecksum)
    }

    /// A malformed option ends option parsing but the segment still counts (issue 9's wire rule).
    func testMalformedOptionKeepsTheSegment() throws {
        var segment = synSegment
        segment[21] = 0  // MSS option length 0: nothing after it is read.
        let packet = try parse(segment, verify: false).get()
        XCTAssertEqual(packet.header.options, TCPOptions())
        XCTAssertEqual(packet.header.flags, .syn)
        XCTAssertEqual(packet.headerLength, 40)

        // A RST whose options end in a bad timestamps option is still a RST, options before it kept.
        let options: [UInt8] = [1, 1, 4, 2] + [8, 9, 0, 0, 0, 0, 0, 0]
        var rst = TCPHeader(sourcePort: 80, destinationPort: 45678, sequenceNumber: 7, flags: .rst, window: 0)
            .bytes(source: KnownPackets.client, destination: KnownPackets.server)
        rst[12] = UInt8((20 + options.count) / 4) << 4
        rst += options
        let parsed = try parse(rst, verify: false).get()
        XCTAssertEqual(parsed.header.flags, .rst)
        XCTAssertEqual(parsed.header.options, TCPOptions(sackPermitted: true))
        XCTAssertEqual(parsed.payloadRange, 32..<32)
    }

    func testUnknownOptionsAreKeptAsRangesOfTheSegment() throws {
        // MSS, then kind 30 (MPTCP) of length 6, then kind 253 (experimental) of length 2.
        let options: [UInt8] = [2, 4, 5, 0xB4, 30, 6, 1, 2, 3, 4, 253, 2]
        var segment = TCPHeader(sourcePort: 1, destinationPort: 2, sequenceNumber: 3, flags: .syn, window: 4)
            .bytes(source: KnownPackets.client, destination: KnownPackets.server)
        segment[12] = UInt8((20 + options.count) / 4) << 4
        segment += options
        let header = try parse(segment, verify: false).get().header
        XCTAssertEqual(header.options.maximumSegmentSize, 1460)
        XCTAssertEqual(
            Array(header.options.unknownOptions),
            [TCPRawOption(kind: 30, range: 24..<30), TCPRawOption(kind: 253, range: 30..<32)])
        XCTAssertEqual(Array(segment[24..<30]), [30, 6, 1, 2, 3, 4])
        // They are not emitted.
        XCTAssertEqual(header.options.encodedLength, 4)
    }

    func testRobustness() {
        let data = TCPHeader(
            sourcePort: 80, destinationPort: 45678, sequenceNumber: 9, acknowledgmentNumber: 10, flags: .ack,
            window: 500,
            options: TCPOptions(
                sackBlocks: SACKBlocks([SACKBlock(left: 1, right: 2)]),
                timestamps: TCPTimestamps(value: 3, echoReply: 4))
        ).bytes(payload: [1, 2, 3, 4, 5], source: KnownPackets.client, destination: KnownPackets.server)
        for (index, segment) in [synSegment, data].enumerated() {
            for verify in [true, false] {
                let counts = robustness(
                    of: segment, fieldOffsets: [12, 20, 21, 22, 23, 24, 25, 32, 33], seed: 40 + UInt64(index),
                    mutations: 12_000, randomInputs: 3_000
                ) {
                    parse($0, verify: verify)
                } check: { input, packet in
                    assertRangesInside(packet, input)
                    XCTAssertGreaterThanOrEqual(packet.headerLength, 20)
                    XCTAssertLessThanOrEqual(packet.headerLength, 60)
                    XCTAssertEqual(packet.payloadRange.upperBound, input.count)
                    XCTAssertLessThanOrEqual(packet.header.options.sackBlocks.count, 4)
                }
                XCTAssertGreaterThan(counts.accepted, 0)
            }
        }
    }
}

final class TCPOptionsTests: XCTestCase {
    func testParseLinuxSYNOptions() throws {
        let options = try TCPOptions.parse(hex("02 04 05 b4 04 02 08 0a 0a 0b 0c 0d 00 00 00 00 01 03 03 07")).get()
        XCTAssertEqual(
            options,
            TCPOptions(
                maximumSegmentSize: 1460, windowScale: 7, sackPermitted: true,
                timestamps: TCPTimestamps(value: 0x0A0B_0C0D, echoReply: 0)))
    }

    func testEndOfListStopsAndUnknownOptionsAreKept() throws {
        // Unknown kind 30 (MPTCP) of length 4, then MSS, then EOL followed by garbage that is ignored.
        let options = try TCPOptions.parse(hex("1e 04 aa bb 02 04 02 18 00 ff ff ff")).get()
        var expected = TCPOptions(maximumSegmentSize: 536)
        expected.unknownOptions.append(TCPRawOption(kind: 30, range: 0..<4))
        XCTAssertEqual(options, expected)
        XCTAssertEqual(TCPOptions.parse([]).success, TCPOptions())
        XCTAssertEqual(TCPOptions.parse([1, 1, 1, 1]).success, TCPOptions())
    }

    func testMalformedOptionEndsParsingAndKeepsEarlierOptions() {
        let malformed = [
            "02",  // Kind without a length byte.
            "1e 00",  // Length 0.
            "1e 01 00 00",  // Length 1.
            "1e 10 00 00",  // Past the end.
            "02 03 05",  // MSS of the wrong size.
            "03 04 07 00",  // Window scale of the wrong size.
            "04 03 00 00",  // SACK-permitted of the wrong size.
            "08 08 00 00 00 00 00 00",  // Timestamps of the wrong size.
            "05 02",  // SACK with no blocks.
            "05 0b 00 00 00 01 00 00 00 02 00",  // SACK not a whole number of blocks.
            "05 2a" + String(repeating: " 00", count: 40),  // Five SACK blocks.
        ]
        for text in malformed {
            // A valid MSS before the bad option is kept; a window scale after it is not read.
            let options = TCPOptions.parse(hex("02 04 05 b4 " + text + " 01 03 03 07"))
            XCTAssertEqual(options.success, TCPOptions(maximumSegmentSize: 1460), text)
        }
    }

    func testWindowScaleIsClampedTo14() throws {
        XCTAssertEqual(try TCPOptions.parse(hex("03 03 0f")).get().windowScale, 14)
        XCTAssertEqual(try TCPOptions.parse(hex("03 03 ff")).get().windowScale, 14)
        XCTAssertEqual(try TCPOptions.parse(hex("03 03 0e")).get().windowScale, 14)
        XCTAssertEqual(try TCPOptions.parse(hex("03 03 07")).get().windowScale, 7)
        XCTAssertEqual(TCPOptions(windowScale: 20).bytes(), [1, 3, 3, 14])
    }

    func testSACKBlocksCapacity() {
        var blocks = SACKBlocks()
        for index in 0..<4 {
            XCTAssertTrue(blocks.append(SACKBlock(left: UInt32(index), right: UInt32(index + 1))))
        }
        XCTAssertFalse(blocks.append(SACKBlock(left: 9, right: 10)))
        XCTAssertEqual(blocks.count, 4)
        XCTAssertEqual(blocks.map(\.left), [0, 1, 2, 3])
        XCTAssertEqual(SACKBlocks(Array(repeating: SACKBlock(left: 1, right: 2), count: 6)).count, 4)
        let four = TCPOptions(sackBlocks: blocks)
        XCTAssertEqual(four.encodedLength, 36)
        XCTAssertEqual(TCPOptions.parse(four.bytes()).success, four)
    }

    /// A header stays small enough that the copies a segment's goes through are moves, not calls
    /// to memcpy (at 192 bytes they were); unknown options' bounds past 16 bits are clamped.
    func testHeaderStaysCompactAndRawOptionBoundsAreClamped() {
        XCTAssertLessThanOrEqual(MemoryLayout<TCPHeader>.size, 104)
        XCTAssertLessThanOrEqual(MemoryLayout<TCPPacket>.size, 128)
        var option = TCPRawOption(kind: 30, range: 24..<30)
        XCTAssertEqual(option.range, 24..<30)
        option.range = 70_000..<80_000
        XCTAssertEqual(option.range, 65_535..<65_535)
        XCTAssertEqual(TCPRawOption(kind: 30, range: -5..<3).range, 0..<3)
        var raw = TCPRawOptions()
        for kind in UInt8(30)..<35 {
            _ = raw.append(TCPRawOption(kind: kind, range: Int(kind)..<Int(kind) + 2))
        }
        XCTAssertEqual(raw.count, 4)
        XCTAssertEqual(raw.map(\.kind), [30, 31, 32, 33])
    }

    func testEmitPaddingAndSACKClamp() throws {
        XCTAssertEqual(TCPOptions(windowScale: 14).bytes(), [1, 3, 3, 14])
        XCTAssertEqual(TCPOptions(sackPermitted: true).bytes(), [1, 1, 4, 2])
        XCTAssertEqual(TCPOptions(maximumSegmentSize: 1460).bytes(), [2, 4, 5, 0xB4])
        // Timestamps plus four SACK blocks would need 48 bytes: the first three blocks are sent.
        var tooMany = TCPOptions(timestamps: TCPTimestamps(value: 1, echoReply: 2))
        tooMany.sackBlocks = SACKBlocks((0..<4).map { SACKBlock(left: $0, right: $0 + 1) })
        XCTAssertEqual(tooMany.encodedLength, 40)
        let bytes = tooMany.bytes()
        XCTAssertEqual(bytes.count, 40)
        XCTAssertEqual(Array(bytes[12..<16]), [1, 1, 5, 26])
        var clamped = tooMany
        clamped.sackBlocks = SACKBlocks((0..<3).map { SACKBlock(left: $0, right: $0 + 1) })
        XCTAssertEqual(tooMany.encodable, clamped)
        XCTAssertEqual(try TCPOptions.parse(bytes).get(), clamped)
        let header = TCPHeader(
            sourcePort: 1, destinationPort: 2, sequenceNumber: 0, flags: .ack, window: 0, options: tooMany)
        let segment = header.bytes(source: KnownPackets.client, destination: KnownPackets.server)
        XCTAssertEqual(segment.count, 60)
        XCTAssertEqual(
            try TCPHeader.parse(segment, source: KnownPackets.client, destination: KnownPackets.server).get().header
                .options, clamped)
        // Without timestamps all four fit.
        var four = TCPOptions()
        four.sackBlocks = tooMany.sackBlocks
        XCTAssertEqual(four.encodedLength, 36)
        for options in [TCPOptions(windowScale: 1), TCPOptions(sackPermitted: true), tooMany, four] {
            XCTAssertEqual(options.encodedLength % 4, 0)
        }
    }

    func testRobustness() {
        let options = hex("02 04 05 b4 04 02 08 0a 0a 0b 0c 0d 00 00 00 00 01 01 05 0a 00 00 00 01 00 00 00 02")
        let counts = robustness(
            of: options, fieldOffsets: [0, 1, 4, 5, 6, 7, 16, 17, 18, 19], seed: 50, mutations: 20_000,
            randomInputs: 10_000
        ) {
            TCPOptions.parse($0)
        } check: { input, parsed in
            XCTAssertLessThanOrEqual(parsed.sackBlocks.count, SACKBlocks.capacity)
            XCTAssertLessThanOrEqual(parsed.windowScale ?? 0, 14)
            XCTAssertLessThanOrEqual(parsed.encodedLength, TCPOptions.maximumLength)
            for option in parsed.unknownOptions {
                XCTAssertTrue(option.range.lowerBound >= 0 && option.range.upperBound <= input.count)
            }
        }
        XCTAssertGreaterThan(counts.accepted, 0)
        XCTAssertEqual(counts.rejected, 0, "option parsing never fails: a bad option only ends it")
    }
}

final class RandomRoundTripTests: XCTestCase {
    /// Random field values survive emit then parse unchanged, for every header with fields to get wrong.
    func testRandomHeadersRoundTrip() throws {
        var random = TestRandom(seed: 99)
        for _ in 0..<3_000 {
            let source = IPv4Address(rawValue: UInt32(truncatingIfNeeded: random.next()))
            let destination = IPv4Address(rawValue: UInt32(truncatingIfNeeded: random.next()))
            let payload = random.bytes(random.below(64))

            var ip = IPv4Header(
                dscp: UInt8(random.below(64)), ecn: UInt8(random.below(4)), totalLength: UInt16(20 + payload.count),
                identification: UInt16(truncatingIfNeeded: random.next()), dontFragment: random.below(2) == 0,
                moreFragments: random.below(2) == 0, fragmentOffset: UInt16(random.below(0x2000)),
                timeToLive: random.byte(), protocol: IPProtocol(rawValue: random.byte()), source: source,
                destination: destination)
            let parsedIP = try IPv4Header.parse(ip.bytes() + payload).get()
            ip.checksum = parsedIP.header.checksum
            XCTAssertEqual(parsedIP.header, ip)

            var options = TCPOptions()
            if random.below(2) == 0 { options.maximumSegmentSize = UInt16(truncatingIfNeeded: random.next()) }
            if random.below(2) == 0 { options.windowScale = UInt8(random.below(15)) }
            options.sackPermitted = random.below(2) == 0
            if random.below(2) == 0 {
                options.timestamps = TCPTimestamps(
                    value: UInt32(truncatingIfNeeded: random.next()),
                    echoReply: UInt32(truncatingIfNeeded: random.next()))
            }
            for _ in 0..<random.below(4) where options.encodedLength + 8 <= TCPOptions.maximumLength - 4 {
                let left = UInt32(truncatingIfNeeded: random.next())
                options.sackBlocks.append(SACKBlock(left: left, right: left &+ UInt32(random.below(5000))))
            }
            var tcp = TCPHeader(
                sourcePort: UInt16(truncatingIfNeeded: random.next()),
                destinationPort: UInt16(truncatingIfNeeded: random.next()),
                sequenceNumber: UInt32(truncatingIfNeeded: random.next()),
                acknowledgmentNumber: UInt32(truncatingIfNeeded: random.next()),
                flags: TCPFlags(rawValue: random.byte()),
                window: UInt16(truncatingIfNeeded: random.next()),
                urgentPointer: UInt16(truncatingIfNeeded: random.next()),
                options: options)
            let segment = tcp.bytes(payload: payload, source: source, destination: destination)
            let parsedTCP = try TCPHeader.parse(segment, source: source, destination: destination).get()
            tcp.checksum = parsedTCP.header.checksum
            XCTAssertEqual(parsedTCP.header, tcp)
            XCTAssertEqual(Array(segment[parsedTCP.payloadRange]), payload)

            let udp = UDPHeader(
                sourcePort: UInt16(truncatingIfNeeded: random.next()),
                destinationPort: UInt16(truncatingIfNeeded: random.next()))
            let datagram = udp.bytes(payload: payload, source: source, destination: destination)
            let parsedUDP = try UDPHeader.parse(datagram, source: source, destination: destination).get()
            XCTAssertEqual(parsedUDP.header.sourcePort, udp.sourcePort)
            XCTAssertEqual(parsedUDP.header.length, UInt16(8 + payload.count))
            XCTAssertTrue(parsedUDP.header.hasChecksum)
        }
    }
}
