import NetMP

/// One benchmark line: NetMP and the kernel measured in the same run.
struct BenchResult {
    var benchmark: String
    var unit: String
    var netmp: Double
    var kernel: Double?
    /// "higher" or "lower": which direction is better.
    var better: String

    var ratio: Double? { kernel.map { $0 > 0 ? netmp / $0 : 0 } }

    var json: String {
        func number(_ value: Double?) -> String {
            guard let value, value.isFinite else { return "null" }
            return String(format3(value))
        }
        return "{\"benchmark\":\"\(benchmark)\",\"unit\":\"\(unit)\",\"netmp\":\(number(netmp)),"
            + "\"kernel\":\(number(kernel)),\"ratio\":\(number(ratio)),\"better\":\"\(better)\"}"
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

func printResults(_ results: [BenchResult], json: Bool) {
    if json {
        for result in results { print(result.json) }
        return
    }
    func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }
    print(pad("benchmark", 24) + pad("unit", 10) + pad("netmp", 14) + pad("kernel", 14) + pad("ratio", 10) + "better")
    for result in results {
        print(
            pad(result.benchmark, 24) + pad(result.unit, 10) + pad(format3(result.netmp), 14)
                + pad(result.kernel.map(format3) ?? "-", 14) + pad(result.ratio.map(format3) ?? "-", 10)
                + result.better)
    }
}

/// Monotonic seconds.
func now() -> Double { Double(SystemClock().nanoseconds) / 1e9 }
