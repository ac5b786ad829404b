#!/bin/sh
# SPDX-License-Identifier: MIT
# ledger_pg.sh - run bench_ledger_pg against a throwaway local PostgreSQL server.
#
#   bench/ledger_pg.sh [BUILD_DIR [PAIRS]]    (default: ./build, 1000 pairs)
#
# Starts a server with tests/pg/pg_server.sh (initdb into a temporary folder, Unix
# socket only, fsync and synchronous_commit on), runs the bench (SQLite file in the
# same temporary folder), stops the server and removes the folder, even on failure.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
pairs=${2:-1000}
bench=$build/bench/bench_ledger_pg
[ -x "$bench" ] || { echo "ledger_pg.sh: no $bench (build the bench_ledger_pg target)" >&2; exit 2; }
dir=$(mktemp -d /tmp/cm-pg-bench-XXXXXX)
work=$(mktemp -d /tmp/cm-pg-bench-db-XXXXXX)
trap 'sh "$here/../tests/pg/pg_server.sh" stop "$dir"; rm -rf "$work"' EXIT INT TERM
uri=$(CM_PG_FSYNC=on sh "$here/../tests/pg/pg_server.sh" start "$dir" 5432)
"$bench" "$uri" "$pairs" "$work"
