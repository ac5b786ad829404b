#!/usr/bin/env bash
# Quick start, part 1: install, build, and bill every sample video.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCM_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
./build/probe/cm-probe samples/*.mp4 samples/*.mov samples/*.mkv samples/*.webm samples/*.ts \
    samples/*.avi samples/*.flv samples/*.ogg samples/*.mka samples/*.m4a samples/*.mxf \
    samples/*.wmv samples/*.3gp samples/*.mpg
