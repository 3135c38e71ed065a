import Glibc
import NetMP

/// Whether a soak passed, and why not.
///
/// Flat, precisely: the first quarter of the samples (at least 5 s) is warm-up and not judged;
/// the rest is cut into an earlier and a later half, and a figure is flat when the later half's
/// maximum is at most the earlier half's maximum plus the larger of 10 % of it and a fixed
/// slack (8 sockets, 256 chunks, 16 MiB of RSS). A leak of any steady rate grows the later
/// maximum past that; a plateau does not. Runs with fewer than 8 samples after warm-up are not
/// judged for flatness (and say so).
struct SoakVerdict: Sendable {
    static let rules = """
        Flat: after a warm-up of the first quarter of the run (at least 5 s), the samples are cut \
        into an earlier and a later half; live sockets, chunks and RSS are flat when the later \
        half's maximum is at most the earlier half's maximum plus max(10 %, slack) with slack 8 \
        sockets, 256 chunks, 16 MiB. It also fails on any flow failure (a byte that differs, a \
        flow past its deadline), on no flow finishing in the later half, and on a socket still \
        alive once every flow and server is over (15 s allowed to drain). Exit status 1 on failure.
        """

    struct Check: Sendable {
        var name: String
        var passed: Bool
        var detail: String
    }

    var checks: [Check] = []
    var passed: Bool { checks.allSatisfy(\.passed) }

    init(samples: [SoakSample], tally: SoakTally, socketsAfter: Int) {
        let failures = tally.failures.load(ordering: .relaxed)
        checks.append(Check(name: "every flow checked", passed: failures == 0, detail: "\(failures) failed"))
        let warmUp = Swift.max(5, samples.count / 4)
        let judged = Array(samples.dropFirst(warmUp))
        if judged.count >= 8 {
            let earlier = judged.prefix(judged.count / 2)
            let later = judged.suffix(judged.count - judged.count / 2)
            let figures: [(String, KeyPath<SoakSample, Int>, Int, String)] = [
                ("live sockets flat", \.liveSockets, 8, ""), ("chunks flat", \.chunks, 256, ""),
                ("RSS flat", \.rssKiB, 16 * 1024, " KiB"),
            ]
            for (name, path, slack, unit) in figures {
                let before = earlier.map { $0[keyPath: path] }.max() ?? 0
                let after = later.map { $0[keyPath: path] }.max() ?? 0
                let allowed = before + Swift.max(slack, before / 10)
                checks.append(
                    Check(
                        name: name, passed: after <= allowed,
                        detail: "later max \(after)\(unit) vs earlier max \(before)\(unit), allowed \(allowed)\(unit)"))
            }
            let flowsBefore = (later.first?.tcpFlows ?? 0) + (later.first?.udpFlows ?? 0)
            let flowsAfter = (later.last?.tcpFlows ?? 0) + (later.last?.udpFlows ?? 0)
            checks.append(
                Check(
                    name: "flows still finishing", passed: flowsAfter > flowsBefore,
                    detail: "\(flowsAfter - flowsBefore) in the later half"))
        } else {
            checks.append(
                Check(
                    name: "flatness", passed: true,
                    detail: "not judged: \(judged.count) samples after warm-up, 8 needed"))
        }
        checks.append(
            Check(
                name: "no socket left", passed: socketsAfter == 0,
                detail: "\(socketsAfter) alive once every flow and server is over"))
    }
}

/// What a soak run found: counts, the sampled curve and the verdict.
struct SoakReport {
    var plan: SoakPlan
    var samples: [SoakSample]
    var final: SoakSample
    var tally: SoakTally
    var verdict: SoakVerdict
    var drainSeconds: Double
    var switchStats: SwitchStatistics
    var retransmitted: Int

    func printText() {
        print("")
        print(
            "soak: \(plan.duration / 1_000_000_000) s, seed \(plan.seed), \(plan.threads) protocol threads per stack,"
                + " \(plan.tcpWorkers) TCP and \(plan.udpWorkers) UDP workers")
        print(
            "flows: \(final.tcpFlows) TCP, \(final.udpFlows) UDP; \(tally.bytesChecked.load(ordering: .relaxed)) bytes"
                + " and \(tally.datagramsChecked.load(ordering: .relaxed)) datagrams checked by hash;"
                + " \(tally.udpRetries.load(ordering: .relaxed)) UDP resends, \(retransmitted) TCP retransmissions")
        print(
            "links: \(switchStats.received) frames, \(switchStats.lost) lost, \(switchStats.duplicated) duplicated,"
                + " \(switchStats.reordered) reordered, \(switchStats.corrupted) corrupted")
        print("curve (s, flows, live sockets, TCP connections, TIME_WAIT, chunks, RSS MiB):")
        let step = Swift.max(1, samples.count / 30)
        for (index, sample) in samples.enumerated() where index % step == 0 || index == samples.count - 1 {
            print(
                "  \(pad(sample.second, 5)) \(pad(sample.tcpFlows + sample.udpFlows, 8)) \(pad(sample.liveSockets, 6))"
                    + " \(pad(sample.tcpConnections, 6)) \(pad(sample.timeWait, 6)) \(pad(sample.chunks, 8))"
                    + " \(pad(sample.rssKiB / 1024, 6)).\(sample.rssKiB % 1024 * 10 / 1024)")
        }
        print(
            "after the run (\(Int(drainSeconds * 10) / 10).\(Int(drainSeconds * 10) % 10) s to drain): sockets \(final.liveSockets),"
                + " connections \(final.tcpConnections), TIME_WAIT \(final.timeWait), chunks \(final.chunks),"
                + " rss \(final.rssKiB / 1024) MiB")
        for message in tally.failureMessages { print("failure: \(message)") }
        for check in verdict.checks { print("\(check.passed ? "ok  " : "FAIL") \(check.name): \(check.detail)") }
        print("verdict: \(verdict.passed ? "PASS" : "FAIL")")
    }

    func json() -> String {
        let curve = samples.map {
            "{\"s\":\($0.second),\"tcpFlows\":\($0.tcpFlows),\"udpFlows\":\($0.udpFlows),\"failures\":\($0.failures),"
                + "\"sockets\":\($0.liveSockets),\"connections\":\($0.tcpConnections),\"timeWait\":\($0.timeWait),"
                + "\"chunks\":\($0.chunks),\"rssKiB\":\($0.rssKiB)}"
        }
        let checks = verdict.checks.map {
            "{\"name\":\"\($0.name)\",\"passed\":\($0.passed),\"detail\":\"\($0.detail)\"}"
        }
        let failures = tally.failureMessages.map { "\"\(jsonEscaped($0))\"" }
        return "{\"seed\":\(plan.seed),\"seconds\":\(plan.duration / 1_000_000_000),\"tcpFlows\":\(final.tcpFlows),"
            + "\"udpFlows\":\(final.udpFlows),\"bytesChecked\":\(tally.bytesChecked.load(ordering: .relaxed)),"
            + "\"failures\":[\(failures.joined(separator: ","))],\"checks\":[\(checks.joined(separator: ","))],"
            + "\"samples\":[\(curve.joined(separator: ","))],\"passed\":\(verdict.passed)}"
    }

    private func pad(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: " ", count: Swift.max(0, width - text.count)) + text
    }

    private func jsonEscaped(_ text: String) -> String {
        var out = ""
        for character in text {
            if character == "\\" || character == "\"" { out.append("\\") }
            out.append(character)
        }
        return out
    }
}
