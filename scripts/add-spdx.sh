#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Adds "SPDX-License-Identifier: MIT" to every tracked source file that lacks one (C
# sources and headers, CMake files, shell and Python scripts, troff manuals). Idempotent:
# a file that already carries an SPDX line within its first 5 lines is left alone.
#
#   bash scripts/add-spdx.sh          # edit the files
#   bash scripts/add-spdx.sh --check  # list the files without one; exit 1 if any
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
[[ ${1:-} == --check ]] && check=1
missing=0
while IFS= read -r f; do
    [[ -f $f ]] || continue
    head -n 5 "$f" | grep -q 'SPDX-License-Identifier' && continue
    missing=$((missing + 1))
    if [[ $check -eq 1 ]]; then
        echo "$f"
        continue
    fi
    case $f in
    *.c | *.h | *.map) line='/* SPDX-License-Identifier: MIT */' ;;
    *.1 | *.1.in) line='.\" SPDX-License-Identifier: MIT' ;;
    *) line='# SPDX-License-Identifier: MIT' ;;
    esac
    tmp=$(mktemp)
    if head -n 1 "$f" | grep -q '^#!'; then
        { head -n 1 "$f"; echo "$line"; tail -n +2 "$f"; } >"$tmp"
    else
        { echo "$line"; cat "$f"; } >"$tmp"
    fi
    chmod --reference="$f" "$tmp"
    mv "$tmp" "$f"
    echo "spdx: $f"
done < <(git ls-files -- '*.c' '*.h' '*.map' '*.cmake' '*CMakeLists.txt' '*.sh' '*.py' \
    '*.1.in' '*.toml' ':!samples/')
if [[ $check -eq 1 && $missing -gt 0 ]]; then
    echo "add-spdx: $missing file(s) without an SPDX line" >&2
    exit 1
fi
