/// The congestion control a connection uses, chosen per socket (Linux's TCP_CONGESTION).
public enum TCPCongestionAlgorithm: Int, CaseIterable, Hashable, Sendable, CustomStringConvertible {
    /// RFC 9438 CUBIC, the default (as on Linux, FreeBSD and Windows).
    case cubic = 0
    /// RFC 5681 / RFC 6582 NewReno.
    case newReno = 1
    /// BBR v1 (draft-cardwell-iccrg-bbr-congestion-control): rate-based, for lossy paths.
    case bbr = 2

    /// A fresh controller of this kind; `hyStart` turns HyStart++ (RFC 9406) on for the initial
    /// slow start (BBR has its own Startup and ignores it).
    public func make(maximumSegmentSize: Int, hyStart: Bool) -> any TCPCongestionControl {
        switch self {
        case .cubic: Cubic(maximumSegmentSize: maximumSegmentSize, hyStart: hyStart)
        case .newReno: NewReno(maximumSegmentSize: maximumSegmentSize, hyStart: hyStart)
        case .bbr: BBR(maximumSegmentSize: maximumSegmentSize)
        }
    }

    public var description: String {
        switch self {
        case .cubic: "cubic"
        case .newReno: "newReno"
        case .bbr: "bbr"
        }
    }
}
