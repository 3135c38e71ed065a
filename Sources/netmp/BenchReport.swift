import NetMP

/// One leg of a row, summarised over its measured passes: the best figure and the CPU per
/// operation of the pass that gave it.
struct LegSummary {
    var name: String
    var figure: Double
    var cpuPerOperation: Double
    /// Every measured pass, in the order run: figure and CPU µs per operation.
    var passes: [(figure: Double, cpu: Double)]
}

/// One benchmark line: NetMP and the kernel measured in the same run.
struct BenchResult {
    var benchmark: String
    var unit: String
    var netmp: Double
    /// The better of the kernel's legs (blocking, and spinning then blocking).
    var kernel: Double?
    /// "higher" or "lower": which direction is better.
    var better: String
    /// Process CPU µs per operation over NetMP's best pass, and over the chosen kernel leg's.
    var cpuNetmp: Double? = nil
    var cpuKernel: Double? = nil
    /// Every leg, NetMP's and each kernel variant's (empty for rows without legs).
    var legs: [LegSummary] = []

    var ratio: Double? { kernel.map { $0 > 0 ? netmp / $0 : 0 } }

    var json: String {
        func number(_ value: Double?) -> String {
            guard let value, value.isFinite else { return "null" }
            return String(format3(value))
        }
        var text =
            "{\"benchmark\":\"\(benchmark)\",\"unit\":\"\(unit)\",\"netmp\":\(number(netmp)),"
            + "\"kernel\":\(number(kernel)),\"ratio\":\(number(ratio)),\"better\":\"\(better)\","
            + "\"cpu_netmp_us\":\(number(cpuNetmp)),\"cpu_kernel_us\":\(number(cpuKernel))"
        for leg in legs where leg.name.hasPrefix("kernel.") {
            let key = leg.name.replacingOccurrences(of: ".", with: "_")
            text += ",\"\(key)\":\(number(leg.figure)),\"cpu_\(key)_us\":\(number(leg.cpuPerOperation))"
        }
        return text + "}"
    }
}

extension String {
    /// Replaces every `target` with `replacement` (without Foundation).
    fileprivate func replacingOccurrences(of target: Character, with replacement: Character) -> String {
        String(map { $0 == target ? replacement : $0 })
    }
}

/// Formats with three significant decimals, without Foundation.
func format3(_ value: Double) -> String {
    if !value.isFinite { return "nan" }
    let scaled = (value * 1000).rounded()
    let whole = Int64(scaled / 1000)
    let fraction = Int64(abs(scaled.truncatingRemainder(dividingBy: 1000)))
    let sign = value < 0 && whole == 0 ? "-" : ""
    let digits = String(fraction)
    return "\(sign)\(whole).\(String(repeating: "0", count: 3 - digits.count))\(digits)"
}

private func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}

func printResults(_ results: [BenchResult], json: Bool, verbose: Bool = false) {
    if json {
        for result in results { print(result.json) }
        return
    }
    print(
        pad("benchmark", 24) + pad("unit", 10) + pad("netmp", 14) + pad("kernel", 14) + pad("ratio", 10)
            + pad("cpu/op netmp", 14) + pad("cpu/op kernel", 15) + "better")
    for result in results {
        print(
            pad(result.benchmark, 24) + pad(result.unit, 10) + pad(format3(result.netmp), 14)
                + pad(result.kernel.map(format3) ?? "-", 14) + pad(result.ratio.map(format3) ?? "-", 10)
                + pad(result.cpuNetmp.map { format3($0) + " us" } ?? "-", 14)
                + pad(result.cpuKernel.map { format3($0) + " us" } ?? "-", 15) + result.better)
    }
    guard verbose else { return }
    let calibration = SpinCalibration.current
    let bounds = calibration.waiterBounds
    print(
        "spin calibration: pause \(format3(calibration.pauseNanoseconds)) ns, wake-up at start-up"
            + " \(format3(Double(SpinCalibration.measured.wakeNanoseconds) / 1000)) us, lately"
            + " \(format3(Double(calibration.wakeNanoseconds) / 1000)) us; waiter spin"
            + " \(format3(Double(bounds.lowerBound) / 1000))...\(format3(Double(bounds.upperBound) / 1000)) us")
    print("legs (best pass; every pass in run order as figure / cpu us per op):")
    for result in results {
        for leg in result.legs {
            let passes = leg.passes.map { "\(format3($0.figure)) / \(format3($0.cpu))" }.joined(separator: ", ")
            print(
                "  " + pad(result.benchmark, 22) + pad(leg.name, 14) + pad(format3(leg.figure) + " " + result.unit, 24)
                    + pad("cpu " + format3(leg.cpuPerOperation) + " us/op", 22) + "[\(passes)]")
        }
    }
    for note in benchNotes { print(note) }
}

/// Lines printed under --verbose after the table (kernel buffer sizes granted, and such).
nonisolated(unsafe) var benchNotes: [String] = []

/// What a row says about its run beside its figure (simulated and wall time, what it saw, what
/// its reference is): printed after the table, or to standard error under --json so that
/// standard output stays one JSON object per line.
nonisolated(unsafe) var rowNotes: [String] = []

func printRowNotes(json: Bool) {
    for note in rowNotes {
        if json {
            FileHandleOutput.standardError.write(note + "\n")
        } else {
            print(note)
        }
    }
}

/// Monotonic seconds.
func now() -> Double { Double(SystemClock().nanoseconds) / 1e9 }
