#!/usr/bin/env bash
# Builds the libFuzzer targets (every module with -sanitize=fuzzer,address, scratch path
# .build-fuzz) and fuzzes each for SECONDS (default 20) from the committed seed corpus.
# Fails on a crash, a broken parser contract, a leak or a timeout, printing the input (hex) and
# keeping it in .build-fuzz/crashes/. Prints executions per target.
#   bash Proofs/fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
seconds="${1:-20}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=(ethernet arp ipv4 icmp udp tcp receive tcp-connection); fi

scratch="$root/.build-fuzz"
started=$SECONDS
build_log="$(mktemp)"
if ! (cd "$here" && swift build -c release --scratch-path "$scratch" -Xswiftc -sanitize=fuzzer,address) \
    >"$build_log" 2>&1; then
    grep -v "ld.gold: warning: Cannot export local symbol" "$build_log" | tail -40
    rm -f "$build_log"
    echo "the fuzz build failed" >&2
    exit 1
fi
rm -f "$build_log"
binary="$scratch/release/NetMPFuzz"
echo "built in $((SECONDS - started)) s"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
crashes="$scratch/crashes"
mkdir -p "$crashes"
# The Swift runtime's own backtracer would race libFuzzer's crash handler.
export SWIFT_BACKTRACE=enable=no
failed=0
for target in "${targets[@]}"; do
    corpus="$work/$target"
    mkdir -p "$corpus"
    cp "$here/corpus/$target/"* "$corpus/"
    log="$work/$target.log"
    status=0
    NETMP_FUZZ_TARGET="$target" "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len=4096 -print_final_stats=1 -artifact_prefix="$crashes/$target-" "$corpus" >"$log" 2>&1 ||
        status=$?
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
    coverage="$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | sed 's/cov: //' || true)"
    if [ "$status" -ne 0 ]; then
        cp "$log" "$crashes/$target.log"
        echo "FAIL $target: exit $status after ${runs:-?} executions (log: $crashes/$target.log)"
        grep -E "ERROR|contract broken|Fatal error|SUMMARY|Test unit written" "$log" | head -8
        for artifact in $(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log"); do
            echo "input ($artifact):"
            od -An -tx1 -v "$artifact" | head -20
        done
        failed=$((failed + 1))
    else
        echo "ok   $target: ${runs:-?} executions in ${seconds} s, coverage ${coverage:-?} edges"
    fi
done
if [ "$failed" -gt 0 ]; then
    echo "fuzzing: $failed target(s) failed"
    exit 1
fi
echo "fuzzing: no crash in ${#targets[@]} targets"
