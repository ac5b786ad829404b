#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every benchmark, one command. Each prints its baseline, measured in the same run,
# beside its own figure, and the ratio. Release build in build-bench/.
#
#   bash bench/run.sh           # everything, with the probe's 1 GB files (~8-10 minutes)
#   bash bench/run.sh --quick   # the probe on the samples only, no big files (~3-4 minutes)
#
# Runs, in order:
#   bench/probe_vs_ffprobe.sh   cm-probe vs ffprobe per file: time and bytes read
#   bench/probe_scan_rate.sh    the oracle's MB/s vs ffmpeg's and ffprobe's full demux
#                               (not with --quick: it makes a ~300 MB TS)
#   bench_probe_throughput      files/s through the library, 1 and 2 threads, vs libavformat
#   bench_ledger                reserve+commit pairs/s vs plain SQLite (if it builds)
#   bench_plugin                the plugin hooks' share of real transcode jobs (if it builds)
#   bench_keepalive             lease renewals/s: one transaction per tick vs one per job
#   bench/plugin_pool.sh        jobs/s through one plugin handle from 1-8 threads on
#                               PostgreSQL, pool of 4 ledger connections vs pool of 1
#                               (if it builds and a PostgreSQL server is installed)
# The whole output is also saved to build-bench/bench-results.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=$ROOT/build-bench
JOBS=$(( $(nproc) < 2 ? $(nproc) : 2 ))
QUICK=()
[[ ${1:-} == --quick ]] && QUICK=(--quick)

mkdir -p "$BUILD"
exec > >(tee "$BUILD/bench-results.txt") 2>&1

echo "== creditmeter benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "== machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ { printf "%.1f GB RAM", $2 / 1e6 }' /proc/meminfo), $(uname -sr)"
echo "== commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

# shellcheck disable=SC2086
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCM_SANITIZE=OFF -DCM_FUZZ=OFF \
    -DCM_BUILD_TESTS=OFF -DCM_BUILD_BENCH=ON -DCM_BUILD_LEDGER=ON -DCM_BUILD_PLUGIN=ON \
    ${CM_BENCH_CMAKE_ARGS:-} >/dev/null
# Build each benchmark on its own: one module that does not build skips its benchmark only.
built=()
for t in cm-probe bench_probe_bytes bench_probe_throughput bench_ledger bench_plugin bench_keepalive \
    bench_plugin_pool; do
    if cmake --build "$BUILD" -j"$JOBS" --target "$t" >"$BUILD/build-$t.log" 2>&1; then
        built+=("$t")
    else
        echo "== $t: not built (see $BUILD/build-$t.log), skipped"
    fi
done
has() { [[ " ${built[*]} " == *" $1 "* ]]; }

echo
echo "== probe vs ffprobe, per file"
bash bench/probe_vs_ffprobe.sh "${QUICK[@]}"

if [[ ${#QUICK[@]} -eq 0 ]]; then
    echo
    echo "== probe oracle scan rate (cm-probe --full-scan vs ffmpeg/ffprobe full demux)"
    bash bench/probe_scan_rate.sh
fi

echo
echo "== probe throughput, in-process"
if has bench_probe_throughput; then
    "$BUILD/bench/bench_probe_throughput" --min-seconds 3
fi

if has bench_ledger; then
    echo
    echo "== ledger"
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/cm-bench-ledger.XXXXXX")
    "$BUILD/bench/bench_ledger" 2000 "$tmp" || echo "== bench_ledger failed (exit $?)"
    rm -rf "$tmp"
fi

if has bench_plugin; then
    echo
    echo "== plugin"
    "$BUILD/bench/bench_plugin" || echo "== bench_plugin failed (exit $?)"
fi

if has bench_keepalive; then
    echo
    echo "== plugin keepalive"
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/cm-bench-keepalive.XXXXXX")
    "$BUILD/bench/bench_keepalive" 1000 5 "$tmp" || echo "== bench_keepalive failed (exit $?)"
    rm -rf "$tmp"
fi
if has bench_plugin_pool; then
    echo
    echo "== plugin ledger pool (PostgreSQL)"
    set +e
    sh bench/plugin_pool.sh "$BUILD" 400
    rc=$?
    set -e
    if [[ $rc -eq 77 ]]; then
        echo "== bench_plugin_pool: no PostgreSQL server installed, skipped"
    elif [[ $rc -ne 0 ]]; then
        echo "== bench_plugin_pool failed (exit $rc)"
    fi
fi
echo
echo "== done; saved to $BUILD/bench-results.txt"
