#!/usr/bin/env bash
# Memory check: builds a plain (unsanitized) Debug build in build-valgrind/ and runs the
# CLIs over every fixture under valgrind memcheck. Fails on any memcheck error or any
# definitely lost block; the program's own exit status (cm-probe exits 1 for a refused
# file, as samples/bad/ are) is not a failure.
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
VG_TARGETS=(cm-probe)
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
files=()
for f in samples/* samples/bad/*; do
    [[ -f $f ]] && files+=("$f")
done
for f in "${files[@]}"; do
    vg_run "cm-probe/$f" "$PROBE" --json "$f"
done
# Every file in one process: state carried from one probe to the next.
vg_run "cm-probe/all-files" "$PROBE" "${files[@]}"
# Errors before any file: usage, a missing file, a directory.
vg_run "cm-probe/usage" "$PROBE" --grace-ms nope
vg_run "cm-probe/missing-and-dir" "$PROBE" samples/no-such-file.mp4 samples/bad

echo "valgrind: $runs runs, ${#failures[@]} failed"
if [[ ${#failures[@]} -gt 0 ]]; then
    printf '  %s\n' "${failures[@]}"
    exit 1
fi
