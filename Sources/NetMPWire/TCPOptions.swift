/// One SACK block (RFC 2018): the receiver holds sequence numbers `left ..< right` out of order.
public struct SACKBlock: Hashable, Sendable {
    public var left: UInt32
    public var right: UInt32

    public init(left: UInt32, right: UInt32) {
        self.left = left
        self.right = right
    }
}

/// Up to four SACK blocks, stored inline so parsing a segment allocates nothing.
public struct SACKBlocks: RandomAccessCollection, Hashable, Sendable {
    /// The most blocks one option can carry in 40 bytes of TCP options.
    public static let capacity = 4

    private var first = SACKBlock(left: 0, right: 0)
    private var second = SACKBlock(left: 0, right: 0)
    private var third = SACKBlock(left: 0, right: 0)
    private var fourth = SACKBlock(left: 0, right: 0)
    /// One byte, not an `Int`: with `TCPRawOptions`' it keeps a `TCPHeader` small enough that the
    /// copies a segment's header goes through are a few moves, not calls to memcpy.
    private var storedCount: UInt8 = 0
    public var count: Int { Int(storedCount) }

    /// No blocks.
    public init() {}

    /// The first `capacity` blocks of `blocks`, in order; later ones are dropped.
    public init(_ blocks: some Sequence<SACKBlock>) {
        for block in blocks where !append(block) {
            break
        }
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    /// The block at `position`; positions past `count` read as an empty block rather than trap.
    public subscript(position: Int) -> SACKBlock {
        switch position {
        case 0: return first
        case 1: return second
        case 2: return third
        case 3: return fourth
        default: return SACKBlock(left: 0, right: 0)
        }
    }

    /// Adds a block; false (and nothing added) when four are already held.
    @discardableResult
    public mutating func append(_ block: SACKBlock) -> Bool {
        switch count {
        case 0: first = block
        case 1: second = block
        case 2: third = block
        case 3: fourth = block
        default: return false
        }
        storedCount += 1
        return true
    }

    public static func == (lhs: SACKBlocks, rhs: SACKBlocks) -> Bool {
        lhs.elementsEqual(rhs)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(count)
        for block in self {
            hasher.combine(block)
        }
    }
}

/// The TCP timestamps option (RFC 7323).
public struct TCPTimestamps: Hashable, Sendable {
    /// TSval: the sender's clock.
    public var value: UInt32
    /// TSecr: the most recent TSval received from the peer.
    public var echoReply: UInt32

    public init(value: UInt32, echoReply: UInt32) {
        self.value = value
        self.echoReply = echoReply
    }
}

/// An option this module does not interpret, kept as where it lies: `range` covers its kind, length
/// and body, counted in the buffer handed to the parser (the segment for `TCPHeader.parse`).
public struct TCPRawOption: Hashable, Sendable {
    public var kind: UInt8
    /// The range's bounds in 16 bits (a segment is at most 65,535 bytes; larger bounds are clamped
    /// to that), which keeps the four a header holds in 24 bytes rather than 96.
    private var start: UInt16
    private var end: UInt16

    public var range: Range<Int> {
        get { Int(start)..<Int(end) }
        set {
            start = UInt16(clamping: newValue.lowerBound)
            end = UInt16(clamping: newValue.upperBound)
        }
    }

    public init(kind: UInt8, range: Range<Int>) {
        self.kind = kind
        start = UInt16(clamping: range.lowerBound)
        end = UInt16(clamping: range.upperBound)
    }
}

/// Up to four unknown options, stored inline so parsing allocates nothing; more are not recorded.
public struct TCPRawOptions: RandomAccessCollection, Hashable, Sendable {
    public static let capacity = 4

    private var first = TCPRawOption(kind: 0, range: 0..<0)
    private var second = TCPRawOption(kind: 0, range: 0..<0)
    private var third = TCPRawOption(kind: 0, range: 0..<0)
    private var fourth = TCPRawOption(kind: 0, range: 0..<0)
    /// One byte, as `SACKBlocks`' count.
    private var storedCount: UInt8 = 0
    public var count: Int { Int(storedCount) }

    public init() {}

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    /// The option at `position`; positions past `count` read as an empty option rather than trap.
    public subscript(position: Int) -> TCPRawOption {
        switch position {
        case 0: return first
        case 1: return second
        case 2: return third
        case 3: return fourth
        default: return TCPRawOption(kind: 0, range: 0..<0)
        }
    }

    /// Adds an option; false (and nothing added) when four are already held.
    @discardableResult
    public mutating func append(_ option: TCPRawOption) -> Bool {
        switch count {
        case 0: first = option
        case 1: second = option
        case 2: third = option
        case 3: fourth = option
        default: return false
        }
        storedCount += 1
        return true
    }

    public static func == (lhs: TCPRawOptions, rhs: TCPRawOptions) -> Bool {
        lhs.elementsEqual(rhs)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(count)
        for option in self {
            hasher.combine(option)
        }
    }
}

/// The TCP options a stack negotiates and uses, plus the unknown ones as raw ranges.
public struct TCPOptions: Hashable, Sendable {
    /// The most bytes of options a header can carry (data offset 15 minus the fixed 20 bytes).
    public static let maximumLength = 40
    /// The largest window scale shift RFC 7323 allows; larger values are read and written as this.
    public static let maximumWindowScale: UInt8 = 14

    /// MSS (kind 2), SYN only.
    public var maximumSegmentSize: UInt16?
    /// Window scale shift (kind 3), SYN only; clamped to 14 on parse and emit (RFC 7323 2.3).
    public var windowScale: UInt8?
    /// SACK-permitted (kind 4), SYN only.
    public var sackPermitted: Bool
    /// SACK blocks (kind 5).
    public var sackBlocks: SACKBlocks
    /// Timestamps (kind 8).
    public var timestamps: TCPTimestamps?
    /// Options of other kinds, as ranges of the parsed buffer; never emitted.
    public var unknownOptions: TCPRawOptions

    public init(
        maximumSegmentSize: UInt16? = nil, windowScale: UInt8? = nil, sackPermitted: Bool = false,
        sackBlocks: SACKBlocks = SACKBlocks(), timestamps: TCPTimestamps? = nil,
        unknownOptions: TCPRawOptions = TCPRawOptions()
    ) {
        self.maximumSegmentSize = maximumSegmentSize
        self.windowScale = windowScale
        self.sackPermitted = sackPermitted
        self.sackBlocks = sackBlocks
        self.timestamps = timestamps
        self.unknownOptions = unknownOptions
    }

    private enum Kind {
        static let endOfList: UInt8 = 0
        static let noOperation: UInt8 = 1
        static let maximumSegmentSize: UInt8 = 2
        static let windowScale: UInt8 = 3
        static let sackPermitted: UInt8 = 4
        static let sack: UInt8 = 5
        static let timestamps: UInt8 = 8
    }

    /// Parses the options area (the bytes between the fixed header and the data offset).
    ///
    /// EOL ends the list; NOP is skipped; every other option needs a length byte of at least 2 that
    /// stays inside the area, and known kinds their exact size. A malformed option ends parsing: the
    /// options before it are returned and the segment still counts (a RST or FIN with a bad option
    /// is still a RST or FIN), so this never fails. Unknown options are kept as ranges of `bytes`.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> Result<TCPOptions, WireError> {
        .success(parseOptions(bytes))
    }

    /// Parses an options area held in an array.
    public static func parse(_ bytes: [UInt8]) -> Result<TCPOptions, WireError> {
        bytes.withUnsafeBytes { parse($0) }
    }

    /// Parses `bytes`; raw option ranges are offset by `base` (the area's position in the segment).
    @usableFromInline
    static func parseOptions(_ bytes: UnsafeRawBufferPointer, base: Int = 0) -> TCPOptions {
        var options = TCPOptions()
        var offset = 0
        func byte(_ at: Int) -> UInt8 { (try? bytes.networkUInt8(at: at)) ?? 0 }
        func word(_ at: Int) -> UInt32 { (try? bytes.networkUInt32(at: at)) ?? 0 }
        // What nearly every segment of a connection carries, as RFC 7323 appendix A lays it out
        // (NOP, NOP, timestamps): read at once, as Linux's tcp_fast_parse_options does.
        if bytes.count == 12, word(0) == 0x0101_080A {
            options.timestamps = TCPTimestamps(value: word(4), echoReply: word(8))
            return options
        }
        parsing: while offset < bytes.count {
            let kind = byte(offset)
            if kind == Kind.endOfList {
                break
            }
            if kind == Kind.noOperation {
                offset += 1
                continue
            }
            guard offset + 1 < bytes.count else { break }
            let length = Int(byte(offset + 1))
            guard length >= 2, length <= bytes.count - offset else { break }
            let body = offset + 2
            switch kind {
            case Kind.maximumSegmentSize:
                guard length == 4 else { break parsing }
                options.maximumSegmentSize = (try? bytes.networkUInt16(at: body)) ?? 0
            case Kind.windowScale:
                guard length == 3 else { break parsing }
                options.windowScale = Swift.min(byte(body), maximumWindowScale)
            case Kind.sackPermitted:
                guard length == 2 else { break parsing }
                options.sackPermitted = true
            case Kind.sack:
                let blockCount = (length - 2) / 8
                guard (length - 2) % 8 == 0, blockCount >= 1, blockCount <= SACKBlocks.capacity else {
                    break parsing
                }
                var blocks = SACKBlocks()
                for index in 0..<blockCount {
                    let blockOffset = body + index * 8
                    blocks.append(SACKBlock(left: word(blockOffset), right: word(blockOffset + 4)))
                }
                options.sackBlocks = blocks
            case Kind.timestamps:
                guard length == 10 else { break parsing }
                options.timestamps = TCPTimestamps(value: word(body), echoReply: word(body + 4))
            default:
                options.unknownOptions.append(
                    TCPRawOption(kind: kind, range: (base + offset)..<(base + offset + length)))
            }
            offset += length
        }
        return options
    }

    /// The options as `emit` writes them: window scale clamped to 14, only the SACK blocks that fit
    /// beside the other options (three with timestamps), unknown options dropped.
    public var encodable: TCPOptions {
        var options = self
        options.windowScale = windowScale.map { Swift.min($0, TCPOptions.maximumWindowScale) }
        options.sackBlocks = SACKBlocks(sackBlocks.prefix(emittedSACKBlockCount))
        options.unknownOptions = TCPRawOptions()
        return options
    }

    /// Bytes taken by everything but SACK blocks.
    @usableFromInline var fixedLength: Int {
        var length = 0
        if maximumSegmentSize != nil {
            length += 4
        }
        if timestamps != nil {
            length += 12  // SACK-permitted (or two NOPs) then timestamps.
        } else if sackPermitted {
            length += 4  // Two NOPs then SACK-permitted.
        }
        if windowScale != nil {
            length += 4
        }
        return length
    }

    /// SACK blocks that fit after `fixed` bytes of other options: the first ones, which RFC 2018
    /// says are the most recent, so clamping drops the oldest news.
    @usableFromInline func emittedSACKBlockCount(after fixed: Int) -> Int {
        let room = TCPOptions.maximumLength - fixed - 4
        return room < 8 ? 0 : Swift.min(sackBlocks.count, room / 8)
    }

    private var emittedSACKBlockCount: Int { emittedSACKBlockCount(after: fixedLength) }

    /// Bytes `emit` writes: each option aligned with NOPs the way Linux lays them out, a multiple of 4,
    /// never more than 40.
    @inlinable public var encodedLength: Int {
        let fixed = fixedLength
        let blocks = emittedSACKBlockCount(after: fixed)
        return fixed + (blocks > 0 ? 4 + 8 * blocks : 0)
    }

    /// Writes the options at the start of `buffer` in Linux's order (MSS, SACK-permitted +
    /// timestamps, window scale, SACK), padded with NOPs to a multiple of 4 bytes, and returns the
    /// bytes written: `encodable`'s options, so SACK blocks that do not fit are left out (three
    /// with timestamps) rather than refused.
    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer) throws(WireError) -> Int {
        let length = encodedLength
        guard length <= TCPOptions.maximumLength else { throw .badOption }
        guard buffer.count >= length else { throw .bufferTooSmall }
        guard length > 0, let base = buffer.baseAddress else { return 0 }
        return store(at: base)
    }

    /// Writes the options at `base`, which the caller has checked holds `encodedLength` bytes, and
    /// returns that length. Every option takes whole 32-bit words (NOP padding included), so each
    /// word is stored at once, big-endian: the bytes are those of one option byte at a time.
    @inline(__always)
    func store(at base: UnsafeMutableRawPointer) -> Int {
        var offset = 0
        @inline(__always) func word(_ value: UInt32) {
            base.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
            offset += 4
        }
        let nop = UInt32(Kind.noOperation)
        if let maximumSegmentSize {
            word(UInt32(Kind.maximumSegmentSize) << 24 | 4 << 16 | UInt32(maximumSegmentSize))
        }
        if let timestamps {
            // SACK-permitted in place of the two NOPs before the timestamps.
            let lead = sackPermitted ? UInt32(Kind.sackPermitted) << 8 | 2 : nop << 8 | nop
            word(lead << 16 | UInt32(Kind.timestamps) << 8 | 10)
            word(timestamps.value)
            word(timestamps.echoReply)
        } else if sackPermitted {
            word(nop << 24 | nop << 16 | UInt32(Kind.sackPermitted) << 8 | 2)
        }
        if let windowScale {
            word(
                nop << 24 | UInt32(Kind.windowScale) << 16 | 3 << 8
                    | UInt32(Swift.min(windowScale, TCPOptions.maximumWindowScale)))
        }
        let blockCount = emittedSACKBlockCount(after: offset)
        if blockCount > 0 {
            word(nop << 24 | nop << 16 | UInt32(Kind.sack) << 8 | UInt32(2 + 8 * blockCount))
            for index in 0..<blockCount {
                let block = sackBlocks[index]
                word(block.left)
                word(block.right)
            }
        }
        return offset
    }

    /// The encoded options as bytes.
    public func bytes() -> [UInt8] {
        (try? emitToArray(capacity: encodedLength) { (buffer) throws(WireError) in try emit(into: buffer) }) ?? []
    }
}
