#!/bin/sh
# SPDX-License-Identifier: MIT
# plugin_pool.sh - run bench_plugin_pool against a throwaway local PostgreSQL server.
#
#   bench/plugin_pool.sh [BUILD_DIR [JOBS]]    (default: ./build, 400 jobs per run)
#
# Starts a server with tests/pg/pg_server.sh (initdb into a temporary folder, Unix
# socket only, fsync and synchronous_commit on), runs the bench, stops the server and
# removes the folder, even on failure. Exit 77 when no PostgreSQL server is installed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
jobs=${2:-400}
bench=$build/bench/bench_plugin_pool
[ -x "$bench" ] || { echo "plugin_pool.sh: no $bench (build the bench_plugin_pool target)" >&2; exit 2; }
dir=$(mktemp -d /tmp/cm-pg-pool-XXXXXX)
trap 'sh "$here/../tests/pg/pg_server.sh" stop "$dir"' EXIT INT TERM
uri=$(CM_PG_FSYNC=on sh "$here/../tests/pg/pg_server.sh" start "$dir" 5432)
"$bench" "$uri" "$jobs"
