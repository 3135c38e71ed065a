import NetMPInterfaces
import NetMPRuntime
import NetMPSockets
import NetMPWire

/// Counters of the IPv4 layer, kept per protocol thread and summed on request.
public enum InetCounter: Int, CaseIterable, Sendable {
    // Link layer.
    case framesIn, framesRunt, framesNotForUs, unknownEtherType
    // ARP (gratuitous announcements counted apart from requests).
    case arpIn, arpMalformed, arpConflicts
    case arpRequestsSent, arpRepliesSent, arpAnnouncementsSent
    case arpExpired, arpQueueDrops, arpResolutionFailures
    case arpEvictions, arpDefences, neighbourLockedLookups
    // IPv4 input.
    case ipIn, ipMalformed, ipBadChecksum
    case ipMartianSource, ipMartianDestination
    case ipNotForUs, ipMulticastDropped, ipDelivered
    case ipLinkBroadcastUnicast, ipDirectedBroadcastDropped, ipMartianSourceOut
    // IPv4 output and forwarding.
    case ipOut, ipNoRoute, ipFragmentsOut, ipCannotFragment
    case ipForwarded, ipTTLExceeded
    // Reassembly.
    case fragmentsIn, fragmentsDuplicate, reassembled, reassemblyTimeouts, reassemblyDropped
    case fragmentsOverlapping, reassemblyRefused
    // ICMP.
    case icmpIn, icmpMalformed, icmpEchoRepliesSent
    case icmpErrorsSent, icmpErrorsRateLimited, icmpErrorsIn
    // UDP.
    case udpIn, udpMalformed, udpNoPort, udpBufferFull, udpDelivered, udpOut
    // Transports not handled here (TCP until its issue lands; others get protocol unreachable).
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
