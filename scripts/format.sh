#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The C sources in the style of .clang-format (clang-format 14, Debian 12).
#   bash scripts/format.sh          reformat every tracked .c/.h in place
#   bash scripts/format.sh --check  change nothing; exit 1 and name the files that differ
# scripts/test.sh runs --check, so unformatted code fails the README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "format: clang-format is not installed" >&2; exit 1; }
mapfile -t files < <(git ls-files '*.c' '*.h')
if [[ ${1:-} == --check ]]; then
    bad=()
    for f in "${files[@]}"; do
        clang-format --style=file "$f" | cmp -s - "$f" || bad+=("$f")
    done
    if [[ ${#bad[@]} -gt 0 ]]; then
        echo "format: ${#bad[@]} file(s) differ from .clang-format (run: bash scripts/format.sh):" >&2
        printf '  %s\n' "${bad[@]}" >&2
        exit 1
    fi
    echo "format: ${#files[@]} files follow .clang-format"
else
    clang-format --style=file -i "${files[@]}"
fi
