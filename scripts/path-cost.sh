#!/usr/bin/env bash
# Instructions per operation on the hot paths (valgrind's callgrind counts instructions, so the
# figure repeats to the instruction whatever else the machine does): runs each workload for N
# and 2N operations and prints the difference divided by N, so start-up cancels out.
# Usage: scripts/path-cost.sh [N]   (default 2000; PATH_COST_WORKLOADS="tcp.rtt ..." picks some)
set -euo pipefail
cd "$(dirname "$0")/../Benchmarks/PathCost"
command -v valgrind >/dev/null || { echo "path-cost: needs valgrind (apt-get install -y valgrind)"; exit 69; }
n=${1:-2000}
swift build -c release >/dev/null
# valgrind 3.19 cannot read the DWARF this toolchain emits: count on a copy without it.
binary=$(mktemp)
trap 'rm -f "$binary"' EXIT
strip --strip-debug -o "$binary" .build/release/pathcost
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$binary" "$1" "$2" 2>&1 \
        | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
for workload in ${PATH_COST_WORKLOADS:-dgram stream udp tcp.rtt tcp.bulk tcp.connect}; do
    one=$(count "$workload" "$n")
    two=$(count "$workload" $((2 * n)))
    echo "$workload: $(( (two - one) / n )) instructions per operation"
done
