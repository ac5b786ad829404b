#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Quick start, part 2: install, build under ASan+UBSan, and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Unformatted C fails the suite before anything is built (bash scripts/format.sh fixes it).
bash scripts/format.sh --check
cmake -S . -B build-test -DCM_SANITIZE=ON -DCM_WERROR=ON -DCM_BUILD_BENCH=OFF >/dev/null
cmake --build build-test -j"$(nproc)"
cd build-test
ctest --output-on-failure -j2 --timeout 600
ntests=$(ctest -N | sed -n 's/^Total Tests: //p')
# Then each libFuzzer harness for 60 s (clang build in build-fuzz/) and the CLIs under
# valgrind memcheck (build-valgrind/); each exits non-zero on any finding.
cd ..
bash scripts/fuzz.sh 60
bash scripts/valgrind.sh
# Reached only if every step passed (set -e): the ctest programs, the fuzzing step and
# the valgrind step.
echo "summary: $((ntests + 2)) passed, 0 failed"
