#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Quick start, part 1: install, build, and bill every sample video.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCM_BUILD_TESTS=OFF -DCM_BUILD_BENCH=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
shopt -s nullglob
files=()
for f in samples/*.*; do
    case "$f" in *.sh) ;; *) files+=("$f") ;; esac
done
./build/probe/cm-probe "${files[@]}"
