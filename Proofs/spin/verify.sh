#!/usr/bin/env bash
# Model-checks the wait/wake protocol (waitwake.pml) and the listen queues (listen.pml) with
# SPIN, exhaustively, then checks that SPIN finds a counter-example for each seeded bug.
# SPIN_FULL=1 adds the largest configuration (3 readers with the owner thread: ~40M states).
# Fails on any error in the real model, on a search that did not finish (memory or depth
# bound), and on a seeded bug SPIN does not catch. Prints the states explored per run.
#
# Needs spin and gcc (`apt-get install -y spin`; installed here when root and missing).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if ! command -v spin >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing spin"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends spin >/dev/null
    else
        echo "spin is not installed (apt-get install spin)" >&2
        exit 1
    fi
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here"/*.pml "$work"/
cd "$work"

MEMLIM="${SPIN_MEMLIM:-2048}"   # MB per run
LIMIT="${SPIN_TIME_LIMIT:-150}" # seconds per run
failures=0
total_states=0

# run NAME MODEL KIND EXPECT [-D...]: KIND is safety (assertions, invalid end states) or an LTL
# property name (acceptance cycles under weak fairness); EXPECT is pass or bug.
run() {
    local name="$1" model="$2" kind="$3" expect="$4"
    shift 4
    local log="$work/$name.log" started=$SECONDS
    spin -a "$@" "$model" >"$log" 2>&1 || {
        echo "FAIL $name: spin -a failed"
        cat "$log"
        failures=$((failures + 1))
        return
    }
    if [ "$kind" = safety ]; then
        gcc -O2 -w -DSAFETY -DNOCLAIM -DCOLLAPSE -DMEMLIM="$MEMLIM" -o pan pan.c
        timeout "$LIMIT" ./pan -m200000 >"$log" 2>&1 || true
    else
        gcc -O2 -w -DNFAIR=4 -DCOLLAPSE -DMEMLIM="$MEMLIM" -o pan pan.c
        timeout "$LIMIT" ./pan -a -f -N "$kind" -m200000 >"$log" 2>&1 || true
    fi
    local errors states seconds=$((SECONDS - started))
    errors="$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$log" | head -1)"
    states="$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$log" | head -1)"
    local incomplete=""
    if grep -q "reached -DMEMLIM bound\|max search depth too small" "$log"; then incomplete=yes; fi
    if [ -z "$errors" ]; then
        echo "FAIL $name: no verdict (time limit ${LIMIT}s?)"
        tail -5 "$log"
        failures=$((failures + 1))
        return
    fi
    if [ "$expect" = pass ]; then
        if [ "$errors" != 0 ] || [ -n "$incomplete" ]; then
            echo "FAIL $name: errors $errors${incomplete:+, search incomplete} ($states states)"
            grep -E "pan:|violated|cycle" "$log" | head -5
            if [ -f "$model.trail" ]; then spin -t -p -g "$@" "$model" | tail -40; fi
            failures=$((failures + 1))
        else
            echo "ok   $name: $states states, no errors (${seconds}s)"
            total_states=$(awk -v a="$total_states" -v b="$states" 'BEGIN { printf "%d", a + b }')
        fi
    else
        if [ "$errors" = 0 ]; then
            echo "FAIL $name: SPIN found no counter-example for a seeded bug ($states states)"
            failures=$((failures + 1))
        else
            local what
            what="$(grep -oE "assertion violated|acceptance cycle|invalid end state" "$log" | head -1)"
            echo "ok   $name: seeded bug caught: $what after $states states (${seconds}s)"
        fi
    fi
    rm -f "$model.trail"
}

echo "--- the real protocol: safety (use after free, leaks, invalid end states, lost wake-ups at the end)"
run close-2-owner waitwake.pml safety pass -DNR=2 -DWITH_CLOSE
run shutdown-2-owner waitwake.pml safety pass -DNR=2 -DWITH_SHUTDOWN
run error-2-owner waitwake.pml safety pass -DNR=2 -DWITH_ERROR
run close-2-owner-2bytes waitwake.pml safety pass -DNR=2 -DNB=2 -DWITH_CLOSE
run close-2-owner-cancel waitwake.pml safety pass -DNR=2 -DWITH_CLOSE -DCANCEL
run close-2-inline-cancel waitwake.pml safety pass -DNR=2 -DWITH_CLOSE -DCANCEL -DINLINE_PORT
run error-3-owner waitwake.pml safety pass -DNR=3 -DWITH_ERROR
if [ -n "${SPIN_FULL:-}" ]; then
    # About 40 million states and 1.5 GB (4 GB allowed): not in CI's time budget.
    MEMLIM=4096 run close-3-owner waitwake.pml safety pass -DNR=3 -DWITH_CLOSE
fi
run close-3-inline waitwake.pml safety pass -DNR=3 -DWITH_CLOSE -DINLINE_PORT
run shutdown-3-inline waitwake.pml safety pass -DNR=3 -DWITH_SHUTDOWN -DINLINE_PORT
run listen-1x2-owner listen.pml safety pass -DNA=1 -DNC=2 -DWITH_RESET
run listen-2x1-owner listen.pml safety pass -DNA=2 -DNC=1 -DWITH_RESET
run listen-1x2-backlog2 listen.pml safety pass -DNA=1 -DNC=2 -DBACKLOG=2 -DWITH_RESET
run listen-2x1-inline listen.pml safety pass -DNA=2 -DNC=1 -DWITH_RESET -DINLINE_PORT

echo "--- the real protocol: LTL under weak fairness"
run nolost-close-2 waitwake.pml nolost pass -DNR=2 -DWITH_CLOSE
run nolost-shutdown-2 waitwake.pml nolost pass -DNR=2 -DWITH_SHUTDOWN
run nolost-error-2 waitwake.pml nolost pass -DNR=2 -DWITH_ERROR
run ends-after-close-2 waitwake.pml closeends pass -DNR=2 -DWITH_CLOSE
run ends-after-shutdown-2 waitwake.pml closeends pass -DNR=2 -DWITH_SHUTDOWN
if [ -n "${SPIN_FULL:-}" ]; then
    # About 16 million states (57 million visited) and 90 s.
    run nolost-close-3-inline waitwake.pml nolost pass -DNR=3 -DWITH_CLOSE -DINLINE_PORT
fi
run nolost-accept-2 listen.pml nolost pass -DNA=2 -DNC=1 -DWITH_RESET
run accept-ends-after-close-2 listen.pml closeends pass -DNA=2 -DNC=1 -DWITH_RESET

echo "--- seeded bugs: SPIN must report a counter-example"
run bug-check-before-register waitwake.pml safety bug -DNR=2 -DWITH_CLOSE -DBUG_CHECK_BEFORE_REGISTER
run bug-check-before-register-ltl waitwake.pml nolost bug -DNR=2 -DWITH_CLOSE -DNO_EPILOGUE \
    -DBUG_CHECK_BEFORE_REGISTER
run bug-drop-wake waitwake.pml safety bug -DNR=2 -DWITH_CLOSE -DBUG_DROP_WAKE
run bug-drop-wake-ltl waitwake.pml nolost bug -DNR=2 -DWITH_CLOSE -DNO_EPILOGUE -DBUG_DROP_WAKE
run bug-waiter-without-reference waitwake.pml safety bug -DNR=2 -DWITH_CLOSE -DCANCEL -DBUG_WAITER_NO_REF
run bug-accept-check-before-register listen.pml safety bug -DNA=1 -DNC=2 -DBUG_CHECK_BEFORE_REGISTER
run bug-abort-without-queue-lock listen.pml safety bug -DNA=1 -DNC=2 -DBUG_ABORT_UNLOCKED

echo "states explored by the passing runs: $total_states"
if [ "$failures" -gt 0 ]; then
    echo "spin verification: $failures failure(s)"
    exit 1
fi
echo "spin verification: all properties hold and every seeded bug is caught"
