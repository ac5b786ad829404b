#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ledger_export.sh - cm-ledger export of a large journal: time and peak memory, beside a
# baseline measured in the same run (not in ctest: it builds a ledger of ROWS rows).
#
#   bench/ledger_export.sh [BUILD_DIR [ROWS]]      (default: ./build, 1000000 rows)
#
# The ledger is a real one (cm-ledger init, a workspace, a purchase); its journal is then
# filled in bulk behind the library's back (one INSERT ... SELECT with the sqlite3 shell:
# making a million rows through the API would take minutes and measure something else):
# ROWS/2 holds made by the plugin (input binding and reserve note, which export parses
# into measured/declared duration, method and grace), each a "hold" and a "commit" row.
# Measured, each with /usr/bin/time (elapsed, peak RSS), output to /dev/null:
#   cm-ledger export --format csv      and  --format ndjson
#   baseline: sqlite3 -csv of the same join, in the same order (no parsing, no paging)
# Constant memory shows as a peak RSS that does not grow with ROWS: run it with 100000
# and 1000000 to see.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
rows=${2:-1000000}
ledger=$build/ledger/cm-ledger
[ -x "$ledger" ] || { echo "ledger_export.sh: no $ledger (build cm-ledger)" >&2; exit 2; }
command -v sqlite3 >/dev/null || { echo "ledger_export.sh: needs the sqlite3 shell" >&2; exit 2; }
work=$(mktemp -d /tmp/cm-export-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
db=$work/ledger.db
T=(--now 2026-01-01T00:00:00Z)
"$ledger" --ledger "$db" init >/dev/null
"$ledger" --ledger "$db" "${T[@]}" workspace create bench --owner owner >/dev/null
"$ledger" --ledger "$db" "${T[@]}" buy bench 1000000000 --as owner >/dev/null
holds=$((rows / 2))
start=$(date +%s.%N)
sqlite3 "$db" <<SQL
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $holds)
INSERT INTO holds(job, ws, user_id, credits, lease_s, state, created_ms, lease_until_ms,
                  resolved_ms, charged, refunded, commit_arg, binding, note)
SELECT printf('job-%08d', i), 'bench', 'owner', 3, 900, 2, 1767225600000 + i * 1000,
       1767225600000 + i * 1000 + 900000, 1767225600000 + i * 1000 + 500, 3, 0, 3,
       printf('by-input size=%d ms=%d fnv1a64=%016x', 1000000 + i, 120000 + i % 60000, i),
       printf('3 credits for %d.%03d s measured by mp4_index, 500 ms grace for encoder padding, the header says %d.%03d s',
              (120000 + i % 60000) / 1000, (120000 + i % 60000) % 1000,
              (120000 + i % 60000) / 1000, (120000 + i % 60000) % 1000)
FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $holds)
INSERT INTO journal(id, op, ws, at_ms, kind, grant_id, job, credits, actor, reason, ref)
SELECT 2 + 2 * i + k, 2 + 2 * i + k, 'bench', 1767225600000 + i * 1000 + k * 500,
       CASE k WHEN 0 THEN 'hold' ELSE 'commit' END, 1, printf('job-%08d', i), 3, 'owner',
       CASE k WHEN 0 THEN 'reserved, "quoted", note' ELSE 'charged' END, NULL
FROM n, (SELECT 0 AS k UNION ALL SELECT 1);
COMMIT;
SQL
made=$(sqlite3 "$db" "SELECT COUNT(*) FROM journal")
printf 'ledger: %s journal rows (%s holds) made in %.1f s, %s\n' "$made" "$holds" \
    "$(echo "$(date +%s.%N) - $start" | bc)" "$(du -h "$db" | cut -f1)"

measure() { # label command...
    local label=$1
    shift
    /usr/bin/time -f '%e %M' -o "$work/time" "$@" >/dev/null
    read -r secs kb <"$work/time"
    printf '%-34s %7.2f s  %8.0f rows/s  peak RSS %6.1f MiB\n' "$label" "$secs" \
        "$(echo "$made / ($secs + 0.001)" | bc -l)" "$(echo "$kb / 1024" | bc -l)"
}
measure "cm-ledger export --format csv" "$ledger" --ledger "$db" export --format csv
measure "cm-ledger export --format ndjson" "$ledger" --ledger "$db" export --format ndjson
measure "baseline: sqlite3 -csv (same join)" sqlite3 -csv "$db" \
    "SELECT j.id, j.op, j.at_ms, j.ws, j.kind, j.job, j.credits, j.grant_id, h.binding, h.note, \
     j.reason, j.ref, j.actor FROM journal j LEFT JOIN holds h ON h.job = j.job ORDER BY j.ws, j.id"
# the same row count comes out (one header line in CSV)
out=$("$ledger" --ledger "$db" export --format csv | wc -l)
[ "$out" -eq $((made + 1)) ] || { echo "export wrote $out lines for $made rows" >&2; exit 1; }
echo "export: $out lines (header + $made rows): every row once"
