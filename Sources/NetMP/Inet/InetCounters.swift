/// Counters of the IPv4 layer, kept per protocol thread and summed on request.
public enum InetCounter: Int, CaseIterable, Sendable {
    case framesIn, framesRunt, framesNotForUs, unknownEtherType
    case arpIn, arpMalformed, arpConflicts, arpRequestsSent, arpRepliesSent, arpAnnouncementsSent, arpExpired,
        arpQueueDrops
    case arpResolutionFailures
    case ipIn, ipMalformed, ipBadChecksum, ipMartianSource, ipNotForUs, ipMulticastDropped, ipDelivered
    case ipOut, ipNoRoute, ipFragmentsOut, ipCannotFragment
    case ipForwarded, ipTTLExceeded
    case fragmentsIn, fragmentsDuplicate, reassembled, reassemblyTimeouts, reassemblyDropped
    case icmpIn, icmpMalformed, icmpEchoRepliesSent, icmpErrorsSent, icmpErrorsRateLimited, icmpErrorsIn
    case udpIn, udpMalformed, udpNoPort, udpBufferFull, udpDelivered, udpOut
    case protocolUnsupported
}

/// A sum of every protocol thread's counters.
public struct InetStatistics: Sendable, CustomStringConvertible {
    var values: [Int]

    init() { values = [Int](repeating: 0, count: InetCounter.allCases.count) }

    public subscript(_ counter: InetCounter) -> Int { values[counter.rawValue] }

    public var description: String {
        InetCounter.allCases.filter { values[$0.rawValue] != 0 }.map { "\($0)=\(values[$0.rawValue])" }
            .joined(separator: " ")
    }
}
