import XCTest

@testable import NetMPInterfaces
@testable import NetMPRuntime
@testable import NetMPWire

/// The virtio-net header a TAP device adds: its layout, and finishing partial checksums.
final class VirtioNetHeaderTests: XCTestCase {
    func testParseAndEmitAreInverseAndLittleEndian() {
        let header = VirtioNetHeader(
            flags: VirtioNetHeader.needsChecksum, segmentation: 1, headerLength: 0x0102, segmentSize: 0x0304,
            checksumStart: 0x0506, checksumOffset: 0x0708)
        var bytes = [UInt8](repeating: 0xEE, count: 12)
        bytes.withUnsafeMutableBytes { header.emit(into: $0) }
        XCTAssertEqual(bytes, [1, 1, 0x02, 0x01, 0x04, 0x03, 0x06, 0x05, 0x08, 0x07, 0xEE, 0xEE])
        XCTAssertEqual(bytes.withUnsafeBytes { VirtioNetHeader(parsing: $0) }, header)
        XCTAssertNil([UInt8](repeating: 0, count: 9).withUnsafeBytes { VirtioNetHeader(parsing: $0) })
    }

    /// An Ethernet + IPv4 + UDP frame with `payload`, its UDP checksum field holding `field`.
    private func udpFrame(payload: [UInt8], field: UInt16) -> [UInt8] {
        let udpLength = 8 + payload.count
        var frame = [UInt8](repeating: 0, count: 14 + 20 + udpLength)
        frame[12] = 0x08
        frame[14] = 0x45
        frame[14 + 2] = UInt8((20 + udpLength) >> 8)
        frame[14 + 3] = UInt8((20 + udpLength) & 0xFF)
        frame[14 + 8] = 64
        frame[14 + 9] = 17
        frame.replaceSubrange(14 + 12..<14 + 20, with: [198, 18, 0, 1, 198, 18, 0, 2])
        frame.replaceSubrange(34..<38, with: [0x9C, 0x40, 0, 7])
        frame[38] = UInt8(udpLength >> 8)
        frame[39] = UInt8(udpLength & 0xFF)
        frame[40] = UInt8(field >> 8)
        frame[41] = UInt8(field & 0xFF)
        frame.replaceSubrange(42..., with: payload)
        return frame
    }

    func testAPartialChecksumIsFinishedToWhatTheWireNeeds() {
        for size in [0, 1, 2, 3, 17, 1000, 1471] {
            let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 5) }
            let pseudo = InternetChecksum.pseudoHeaderSum(
                source: IPv4Address(198, 18, 0, 1), destination: IPv4Address(198, 18, 0, 2), protocol: .udp,
                length: UInt16(8 + size))
            // What a full computation gives: the checksum over the datagram with the field zero.
            let zeroed = udpFrame(payload: payload, field: 0)
            var expected = zeroed[34...].withUnsafeBytes { InternetChecksum.checksum($0, initial: pseudo) }
            if expected == 0 { expected = 0xFFFF }
            // What the kernel hands over with NEEDS_CSUM: the pseudo-header sum in the field.
            var partial = udpFrame(payload: payload, field: pseudo)
            let header = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: 34, checksumOffset: 6)
            let disposition = partial.withUnsafeMutableBytes { header.prepare($0) }
            XCTAssertEqual(disposition, .checksumCompleted)
            XCTAssertEqual(UInt16(partial[40]) << 8 | UInt16(partial[41]), expected, "size \(size)")
            XCTAssertTrue(partial[34...].withUnsafeBytes { InternetChecksum.verify($0, initial: pseudo) })
        }
    }

    func testAPartialTransportChecksumIsLeftOnlyWhereAForwarderCanFinishIt() {
        let pseudo: UInt16 = 0x5A5A
        let frame = udpFrame(payload: (0..<20).map { UInt8($0) }, field: pseudo)  // room for a TCP field too
        let udp = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: 34, checksumOffset: 6)
        var copy = frame
        XCTAssertEqual(copy.withUnsafeMutableBytes { udp.prepare($0, leavingPartialChecksums: true) }, .checksumPartial)
        XCTAssertEqual(copy, frame, "left as it came")
        var tcp = frame
        tcp[14 + 9] = 6
        let tcpHeader = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: 34, checksumOffset: 16)
        XCTAssertEqual(
            tcp.withUnsafeMutableBytes { tcpHeader.prepare($0, leavingPartialChecksums: true) }, .checksumPartial)
        // Finished instead: a fragment, a sum not at the payload's start, a field not the protocol's.
        var fragment = frame
        fragment[14 + 6] = 0x20  // more fragments
        let notAtPayload = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: 36, checksumOffset: 4)
        let wrongField = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: 34, checksumOffset: 4)
        for (header, bytes) in [(udp, fragment), (notAtPayload, frame), (wrongField, frame)] {
            var copy = bytes
            XCTAssertEqual(
                copy.withUnsafeMutableBytes { header.prepare($0, leavingPartialChecksums: true) }, .checksumCompleted,
                "\(header)")
        }
    }

    func testFramesWithoutAPartialChecksumAreLeftAlone() {
        let frame = udpFrame(payload: [1, 2, 3], field: 0x1234)
        for flags in [0, VirtioNetHeader.dataValid] {
            var copy = frame
            let header = VirtioNetHeader(flags: flags, checksumStart: 34, checksumOffset: 6)
            XCTAssertEqual(copy.withUnsafeMutableBytes { header.prepare($0) }, .ready)
            XCTAssertEqual(copy, frame)
        }
    }

    func testOffsetsOutsideTheFrameAndUnaskedLargeSegmentsAreDropped() {
        var frame = udpFrame(payload: [1, 2, 3], field: 0)
        let cases: [VirtioNetHeader] = [
            VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: 44, checksumOffset: 6),
            VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: 34, checksumOffset: 10),
            VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: 65535, checksumOffset: 65535),
            VirtioNetHeader(segmentation: VirtioNetHeader.SegmentationType.tcpIPv4.rawValue, segmentSize: 1448),
        ]
        let before = frame
        for header in cases {
            XCTAssertEqual(frame.withUnsafeMutableBytes { header.prepare($0) }, .malformed, "\(header)")
        }
        XCTAssertEqual(frame, before)
    }

    func testALargeTCPSegmentIsKeptWholeOnlyWhenAskedFor() {
        var frame = udpFrame(payload: [UInt8](repeating: 9, count: 3000), field: 0)
        frame[14 + 9] = 6  // TCP: the checksum field sits 16 bytes in; here it starts at zero.
        frame[50] = 0
        frame[51] = 0
        let header = VirtioNetHeader(
            flags: VirtioNetHeader.needsChecksum, segmentation: VirtioNetHeader.SegmentationType.tcpIPv4.rawValue,
            headerLength: 54, segmentSize: 1448, checksumStart: 34, checksumOffset: 16)
        var copy = frame
        XCTAssertEqual(copy.withUnsafeMutableBytes { header.prepare($0) }, .malformed)
        XCTAssertEqual(
            copy.withUnsafeMutableBytes { header.prepare($0, acceptingLargeSegments: true) }, .checksumCompleted)
        XCTAssertTrue(copy[34...].withUnsafeBytes { InternetChecksum.verify($0) })
        var udp = VirtioNetHeader(segmentation: VirtioNetHeader.SegmentationType.udp.rawValue)
        udp.segmentSize = 1000
        XCTAssertEqual(frame.withUnsafeMutableBytes { udp.prepare($0, acceptingLargeSegments: true) }, .malformed)
    }

    func testOpenErrorsHaveClearNames() {
        XCTAssertEqual(TAPInterface.error(errno: EPERM), NetError(rawValue: EACCES))
        XCTAssertEqual(TAPInterface.error(errno: EPERM).description, "permissionDenied (13)")
        XCTAssertEqual(TAPInterface.error(errno: ENODEV), .noSuchDevice)
        XCTAssertEqual(TAPInterface.error(errno: ENOENT), .noSuchDevice)
        XCTAssertEqual(TAPInterface.error(errno: EBUSY).description, "deviceBusy (16)")
        XCTAssertEqual(TAPInterface.error(errno: EINVAL), .invalidArgument)
    }
}
