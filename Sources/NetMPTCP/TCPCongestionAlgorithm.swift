/// The congestion control a connection uses, chosen per socket (Linux's TCP_CONGESTION).
public enum TCPCongestionAlgorithm: Int, CaseIterable, Hashable, Sendable, CustomStringConvertible {
    /// RFC 9438 CUBIC, the default (as on Linux, FreeBSD and Windows).
    case cubic = 0
    /// RFC 5681 / RFC 6582 NewReno.
    case newReno = 1

    /// A fresh controller of this kind; `hyStart` turns HyStart++ (RFC 9406) on for the initial
    /// slow start.
    public func make(maximumSegmentSize: Int, hyStart: Bool) -> any TCPCongestionControl {
        switch self {
        case .cubic: Cubic(maximumSegmentSize: maximumSegmentSize, hyStart: hyStart)
        case .newReno: NewReno(maximumSegmentSize: maximumSegmentSize, hyStart: hyStart)
        }
    }

    public var description: String {
        switch self {
        case .cubic: "cubic"
        case .newReno: "newReno"
        }
    }
}
