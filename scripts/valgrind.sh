#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Memory check: builds a plain (unsanitized) Debug build in build-valgrind/ and runs the
# CLIs under valgrind memcheck: cm-probe over every fixture, cm-ledger through a whole
# session against a temporary database (one valgrind run per command). Fails on any
# memcheck error or any definitely lost block; the program's own exit status (cm-probe
# exits 1 for a refused file, as samples/bad/ are) is not a failure, except where a
# ledger step states the status it expects (vg_ledger).
#
#   bash scripts/valgrind.sh
#
# To check another program, add a line at the end: vg_run LABEL PROGRAM ARGS...
# Logs: build-valgrind/valgrind/<LABEL>.log
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=$ROOT/build-valgrind
LOGS=$BUILD/valgrind
JOBS=$(( $(nproc) < 2 ? $(nproc) : 2 ))
command -v valgrind >/dev/null || { echo "valgrind: not installed (apt-get install valgrind)" >&2; exit 1; }

# Only the programs checked here are built, so an unfinished module elsewhere in the
# tree does not stop the check. Extend VG_TARGETS when adding programs.
VG_TARGETS=(cm-probe cm-ledger)
# shellcheck disable=SC2206
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DCM_SANITIZE=OFF -DCM_FUZZ=OFF \
    -DCM_BUILD_TESTS=OFF -DCM_BUILD_BENCH=OFF -DCM_BUILD_PLUGIN=OFF ${CM_VALGRIND_CMAKE_ARGS:-} \
    >/dev/null
for t in "${VG_TARGETS[@]}"; do
    cmake --build "$BUILD" -j"$JOBS" --target "$t" >/dev/null
done
rm -rf "$LOGS" && mkdir -p "$LOGS"

runs=0
failures=()
# vg_run LABEL PROGRAM ARGS...: runs one command under memcheck. A failure is an error
# or a definite leak (valgrind's exit 99) or the program dying of a signal.
vg_run() {
    local label=$1
    shift
    local log=$LOGS/${label//\//_}.log rc=0
    valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite \
        --show-leak-kinds=definite --error-exitcode=99 --track-origins=yes --num-callers=30 \
        --log-file="$log" "$@" >/dev/null 2>&1 || rc=$?
    runs=$((runs + 1))
    VG_RC=$rc
    if [[ $rc -eq 99 || $rc -gt 128 ]]; then
        failures+=("$label (exit $rc, log $log)")
        echo "valgrind: FAIL $label (exit $rc)"
        grep -E '^==[0-9]+== (Invalid|Conditional|Use of|Syscall|Mismatched|Source and|Argument|.*definitely lost)' "$log" | head -n 5 || true
    else
        printf 'valgrind: ok   %-45s %s\n' "$label" \
            "$(grep -Eo 'ERROR SUMMARY: [0-9]+ errors' "$log" | head -n 1)"
    fi
}

PROBE=$BUILD/probe/cm-probe
# Valgrind 3.19 (Debian 12) cannot decode every instruction of every CPU: on some machines
# a library FFmpeg loads (libhwy, through libjxl) executes RDTSCP in its initializer,
# before main, and valgrind kills the process with SIGILL. That is the tool's limit, not
# a memory error of ours; cm-probe is then checked by the ASan+UBSan suite and the
# fuzzers only, and this says so. Any other failure of the canary is a failure.
probe_ok=1
canary=$LOGS/cm-probe_canary.log
if ! valgrind --tool=memcheck --log-file="$canary" "$PROBE" --help >/dev/null 2>&1; then
    if grep -q 'unhandled instruction bytes' "$canary" &&
       ! grep -A3 'Unrecognised instruction' "$canary" | grep -q 'cm-probe\|cm_probe\|probe_'; then
        probe_ok=0
        echo "valgrind: SKIP cm-probe: valgrind cannot run FFmpeg's libraries on this CPU" \
             "($(grep -m1 -o 'at 0x[0-9A-F]*: [^ ]*' "$canary" | cut -d' ' -f3-)); see $canary"
    else
        failures+=("cm-probe/canary (log $canary)")
        echo "valgrind: FAIL cm-probe --help"
    fi
fi
files=()
for f in samples/* samples/bad/*; do
    [[ -f $f ]] && files+=("$f")
done
if [[ $probe_ok -eq 1 ]]; then
    for f in "${files[@]}"; do
        vg_run "cm-probe/$f" "$PROBE" --json "$f"
    done
    # Every file in one process: state carried from one probe to the next.
    vg_run "cm-probe/all-files" "$PROBE" "${files[@]}"
    # Errors before any file: usage, a missing file, a directory.
    vg_run "cm-probe/usage" "$PROBE" --grace-ms nope
    vg_run "cm-probe/missing-and-dir" "$PROBE" samples/no-such-file.mp4 samples/bad
fi

# cm-ledger: a realistic session, each command its own process and its own valgrind run,
# so opening, migrating, every command's path and closing are each checked.
# vg_ledger STATUS LABEL ARGS...: one command; its exit status must be STATUS (0 done,
# 1 refused, 2 usage), so a session that went wrong cannot pass unnoticed.
LEDGER=$BUILD/ledger/cm-ledger
LEDGER_TMP=$(mktemp -d "${TMPDIR:-/tmp}/cm-valgrind.XXXXXX")
trap 'rm -rf "$LEDGER_TMP"' EXIT
DB=$LEDGER_TMP/ledger.db
vg_ledger() {
    local want=$1 label=$2
    shift 2
    vg_run "cm-ledger/$label" "$LEDGER" --ledger "$DB" "$@"
    if [[ $VG_RC -ne 99 && $VG_RC -le 128 && $VG_RC -ne $want ]]; then
        failures+=("cm-ledger/$label (exit $VG_RC, expected $want)")
        echo "valgrind: FAIL cm-ledger/$label exited $VG_RC, expected $want"
    fi
}
T0=(--now 2026-01-15T10:00:00Z)
vg_ledger 1 refused-no-ledger "${T0[@]}" balance acme
vg_ledger 0 init init
vg_ledger 0 workspace-create "${T0[@]}" workspace create acme --owner alice --region eu
vg_ledger 0 member-add "${T0[@]}" member add acme bob --as alice
vg_ledger 0 plan-set "${T0[@]}" plan set acme --credits 100 --interval monthly --tier pro --as alice
vg_ledger 0 plan-upgrade-ref "${T0[@]}" --json plan set acme --credits 150 \
    --interval monthly --tier pro --as alice --ref plan-1
vg_ledger 0 plan-same-ref "${T0[@]}" plan set acme --credits 150 \
    --interval monthly --tier pro --as alice --ref plan-1
vg_ledger 0 plan-downgrade "${T0[@]}" plan set acme --credits 100 \
    --interval monthly --tier pro --as alice
vg_ledger 0 plan-show "${T0[@]}" --json plan show acme --as bob
vg_ledger 0 price-set "${T0[@]}" price set eu EUR 12
vg_ledger 0 price-set-again "${T0[@]}" price set EU EUR 14 --by ops
vg_ledger 0 price "${T0[@]}" --json price acme 50 --as bob
vg_ledger 0 price-history "${T0[@]}" price-history EU
vg_ledger 0 buy "${T0[@]}" buy acme 50 --as alice --ref pay-1
vg_ledger 0 buy-same-ref "${T0[@]}" --json buy acme 50 --as alice --ref pay-1
vg_ledger 0 quote "${T0[@]}" --json quote acme 120 --as bob
vg_ledger 0 reserve "${T0[@]}" reserve acme job-1 30 --as bob --lease 600
vg_ledger 0 renew --now 2026-01-15T10:05:00Z renew job-1 --lease 900
vg_ledger 0 commit-partial --now 2026-01-15T10:10:00Z --json commit job-1 20
vg_ledger 0 reserve-2 --now 2026-01-15T10:11:00Z reserve acme job-2 10 --as alice
vg_ledger 0 release --now 2026-01-15T10:12:00Z --json release job-2
vg_ledger 0 refund --now 2026-01-16T00:00:00Z refund job-1 5 --reason goodwill --by ops --ref r-1
vg_ledger 0 refund-same-ref --now 2026-01-16T00:00:00Z --json refund job-1 5 --reason goodwill \
    --by ops --ref r-1
vg_ledger 0 balance-json --now 2026-01-16T00:00:00Z --json balance acme
vg_ledger 0 history --now 2026-01-16T00:00:00Z history acme --as bob
vg_ledger 0 job --now 2026-01-16T00:00:00Z --json job job-1
vg_ledger 0 sweep --now 2026-03-01T00:00:00Z --json sweep
vg_ledger 0 check check
vg_ledger 0 alert-set "${T0[@]}" alert set acme --below 1000 --as alice
vg_ledger 0 reserve-low "${T0[@]}" reserve acme job-low 1 --as bob
vg_ledger 0 events-json --json events --limit 5
vg_ledger 0 events-after events --after 0.3
vg_ledger 0 export-csv export --format csv
vg_ledger 0 export-ndjson export --format ndjson --workspace acme --since 2026-01-15T10:00:00Z
vg_ledger 0 metrics metrics
vg_ledger 0 ping-json --json ping --timeout 2000
vg_ledger 2 usage-json --json frobnicate
vg_ledger 1 refused-insufficient --now 2026-03-01T00:00:00Z reserve acme job-big 100000 --as alice
vg_ledger 1 refused-json --now 2026-03-01T00:00:00Z --json commit no-such-job
vg_ledger 1 refused-not-member --now 2026-03-01T00:00:00Z member remove acme nobody --as alice
vg_ledger 1 refused-region --now 2026-03-01T00:00:00Z price set zz ABC 15
vg_ledger 2 usage-error reserve acme job-3 --as bob
vg_ledger 2 usage-bad-time --now 2026-02-30T00:00:00Z check

echo "valgrind: $runs runs, ${#failures[@]} failed"
if [[ ${#failures[@]} -gt 0 ]]; then
    printf '  %s\n' "${failures[@]}"
    exit 1
fi
