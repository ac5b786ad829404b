#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fuzzing: builds the libFuzzer harnesses with clang in build-fuzz/ and runs each one
# for SECONDS (default 60) on a fresh copy of its seed corpus in a temporary folder.
# Exits non-zero on any crash, leak, time-out (-timeout=10 s per input) or out-of-memory
# (-rss_limit_mb=2048); the input that caused it is kept in build-fuzz/artifacts/.
#
#   bash scripts/fuzz.sh            # CI: 60 s per harness
#   bash scripts/fuzz.sh 1800       # a longer run
#   FUZZERS=fuzz_probe bash scripts/fuzz.sh 600   # one harness only
#   FUZZERS=fuzz_probe_diff bash scripts/fuzz.sh 1800  # the differential harness: traps
#                                                 # when the fast path bills less than the oracle
#   CM_FUZZ_KEEP=dir bash scripts/fuzz.sh 600     # keep the grown corpus in dir/<harness>
#   CM_FUZZ_MAX_LEN=N                             # longest input tried (default 256 KiB;
#                                                 # 1 MiB for fuzz_probe_diff)
#   CM_FUZZ_TMP=dir                               # harnesses' scratch files (default: a
#                                                 # fresh folder in /dev/shm, else in TMPDIR)
#
# Reproduce a finding: build-fuzz/[tests/fuzz/]fuzz_probe FILE   (CM_FUZZ_VERBOSE=1 prints
# the report; for fuzz_ledger_args each command, its status and output); tests/fuzz/crashers/
# keeps the reproducers of what was found and fixed.
#
# Seeds: tests/fuzz/seeds/<name>/ (tiny files made by tests/fuzz/make-seeds.sh, command lines
# made by tests/fuzz/make-ledger-seeds.sh), and for the probe also samples/ and samples/bad/
# (read-only corpus directories: never written to). tests/fuzz/<name>.dict is a dictionary.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${1:-60}
[[ $DURATION =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS]" >&2; exit 2; }
BUILD=$ROOT/build-fuzz
JOBS=$(( $(nproc) < 2 ? $(nproc) : 2 ))

# Configure: through the root CMakeLists.txt once it adds tests/fuzz (CM_FUZZ=ON), else
# tests/fuzz on its own (it then builds the probe itself).
if grep -Eq '^[^#]*add_subdirectory\(tests/fuzz' CMakeLists.txt; then
    SRC=$ROOT
    # shellcheck disable=SC2206
    EXTRA=(-DCM_FUZZ=ON -DCM_BUILD_TESTS=OFF -DCM_BUILD_BENCH=OFF -DCM_BUILD_PLUGIN=OFF
           ${CM_FUZZ_CMAKE_ARGS:-})
else
    SRC=$ROOT/tests/fuzz
    EXTRA=()
fi
if [[ -f $BUILD/CMakeCache.txt ]] &&
   ! grep -q "^CMAKE_HOME_DIRECTORY:INTERNAL=$SRC\$" "$BUILD/CMakeCache.txt"; then
    rm -rf "$BUILD" # configured from the other source tree before
fi
CC=clang cmake -S "$SRC" -B "$BUILD" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "${EXTRA[@]}" >/dev/null
cmake --build "$BUILD" -j"$JOBS" >/dev/null

if [[ -n ${FUZZERS:-} ]]; then
    read -r -a HARNESSES <<<"$FUZZERS"
else
    HARNESSES=()
    while IFS= read -r f; do
        HARNESSES+=("$(basename "$f")")
    done < <(find "$BUILD" -maxdepth 3 -type f -executable -name 'fuzz_*' | sort)
fi
[[ ${#HARNESSES[@]} -gt 0 ]] || { echo "fuzz: no harness was built" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cm-fuzz.XXXXXX")
# Scratch space of the harnesses (fuzz_ledger_args keeps its database there): tmpfs when
# there is one, so a commit's fsync costs nothing; removed here even after a crash.
if [[ -z ${CM_FUZZ_TMP:-} ]]; then
    if [[ -d /dev/shm && -w /dev/shm ]]; then
        CM_FUZZ_TMP=$(mktemp -d /dev/shm/cm-fuzz.XXXXXX)
    else
        CM_FUZZ_TMP=$TMP
    fi
    trap 'rm -rf "$TMP" "$CM_FUZZ_TMP"' EXIT
else
    trap 'rm -rf "$TMP"' EXIT
fi
export CM_FUZZ_TMP
mkdir -p "$BUILD/artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
for h in "${HARNESSES[@]}"; do
    name=${h#fuzz_}
    corpus=$TMP/$name
    mkdir -p "$corpus"
    [[ -d tests/fuzz/seeds/$name ]] && cp tests/fuzz/seeds/"$name"/* "$corpus"/
    extra_dirs=()
    max_len=${CM_FUZZ_MAX_LEN:-262144}
    if [[ $name == probe ]]; then
        extra_dirs=(samples samples/bad)
    elif [[ $name == probe_diff ]]; then
        # real files mutated along their structure: the tiny seeds of both probe
        # harnesses and the samples (up to ~1 MB, hence the longer inputs)
        extra_dirs=(tests/fuzz/seeds/probe samples)
        max_len=${CM_FUZZ_MAX_LEN:-1048576}
    fi
    dict=()
    [[ -f tests/fuzz/$name.dict ]] && dict=(-dict="tests/fuzz/$name.dict")
    # The probe harnesses run libavformat on hostile bytes. The declared sizes known to
    # make libavformat allocate gigabytes or spin for seconds inside avformat_open_input
    # (out of reach of the probe's deadline) are refused first by probe/probe_guard.c;
    # should the fuzzer find another, it is reported in the log (oom/timeout counts,
    # artifacts kept) without stopping the run, to be added to the guard. A crash, a
    # sanitizer report or a differential trap (the fast path billing less than the
    # oracle) still fails it.
    mode=()
    if [[ $name == probe || $name == probe_diff ]]; then
        mode=(-fork=1 -ignore_ooms=1 -ignore_timeouts=1)
    fi
    echo "fuzz: $h for ${DURATION}s (seeds: $(ls "$corpus" | wc -l) + ${extra_dirs[*]:-none})"
    log=$TMP/$h.log
    set +e
    bin=$(find "$BUILD" -maxdepth 3 -type f -executable -name "$h" | head -n 1)
    "$bin" "$corpus" "${extra_dirs[@]}" "${dict[@]}" "${mode[@]}" \
        -max_total_time="$DURATION" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$BUILD/artifacts/$h-" >"$log" 2>&1
    rc=$?
    set -e
    grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb|stat::new_units_added)' "$log" || true
    # fork mode: the last progress line counts the executions and the ooms/timeouts
    grep -E '^#[0-9]+: cov:' "$log" | tail -n 1 || true
    if [[ $rc -ne 0 ]]; then
        echo "fuzz: $h FAILED (exit $rc); the end of its log:" >&2
        tail -n 60 "$log" >&2
        ls -l "$BUILD/artifacts" >&2
        status=1
    else
        echo "fuzz: $h ok, corpus now $(ls "$corpus" | wc -l) files"
    fi
    if [[ -n ${CM_FUZZ_KEEP:-} ]]; then
        mkdir -p "$CM_FUZZ_KEEP/$name" && cp -n "$corpus"/* "$CM_FUZZ_KEEP/$name"/ 2>/dev/null || true
    fi
done
exit $status
