#!/usr/bin/env bash
# The test command: installs what the tests need beyond the Swift toolchain, then runs them.
# Tests that need something it could not install say why they are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v tshark >/dev/null 2>&1 || need+=(tshark)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
# The kernel's side of the TAP interop tests.
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
command -v ping >/dev/null 2>&1 || need+=(iputils-ping)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing: ${need[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    else
        echo "not root or no apt-get: tests that need ${need[*]} will be skipped and say so"
    fi
fi

swift build --build-tests -Xswiftc -warnings-as-errors --explicit-target-dependency-import-check error
swift test --skip-build "$@"
if [ $# -eq 0 ]; then
    # Allocation counts hold for the optimised build, so that suite runs again with -O.
    swift test -c release -Xswiftc -enable-testing --filter AllocationTests
    # The socket suites again, with every local socket owned by a protocol thread: requests
    # and waits then travel by message, the path thread-owned protocols take.
    NETMP_LOCAL_ON_PROTOCOL_THREADS=1 swift test --skip-build \
        --filter 'LocalStreamTests|LocalDatagramTests|RaceTests|AsyncTests|PollerTests|SocketSemanticsTests|PublicAPIFindingsTests'
fi
