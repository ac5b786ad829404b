#!/bin/sh
# SPDX-License-Identifier: MIT
# failover.sh - the ledger through a PostgreSQL failover (issue 16).
#
#   failover.sh TORTURE [SECONDS [PROCS [KILL_AT]]]
#
# Starts two throwaway PostgreSQL servers on Unix sockets in one temporary folder (no
# TCP): a primary with synchronous replication (synchronous_standby_names = '*',
# synchronous_commit = on) and a hot standby made from it with pg_basebackup -R. Runs the
# torture (TORTURE: the tests/torture binary) with PROCS worker processes (3) for SECONDS
# (4) against the multi-host location
#
#   postgresql:///creditmeter?host=DIR/a,DIR/b&port=5432,5433&target_session_attrs=read-write
#
# and, KILL_AT seconds (SECONDS / 3) into the run, kills the primary with SIGKILL (the
# postmaster and every process of it, as a machine that dies), then promotes the standby
# (pg_ctl promote). The workers' calls in flight fail with storage_unavailable, they retry
# the same calls, the ledger connects to the new primary, and the run goes on. The
# torture's verification then runs on the new primary: every balance re-derived, no
# credit lost or made, nothing charged twice, every job a caller was told "committed" is
# committed there, cm_ledger_check and `cm-ledger check` pass. Exit 0 when all of that
# held; 1 otherwise (the servers' logs are printed); 77 (the ctest skip code) when no
# PostgreSQL server binaries are installed.
#
# The servers run as the `postgres` system user when this runs as root (runuser), as the
# caller otherwise; trust authentication, fsync off (a process kill loses no write the
# kernel has; CM_PG_FSYNC=on for a run that may lose the machine): never real data.
set -eu

[ $# -ge 1 ] || {
    echo "usage: $0 TORTURE [SECONDS [PROCS [KILL_AT]]]" >&2
    exit 2
}
torture=$1
secs=${2:-4}
procs=${3:-3}
kill_at=${4:-$((secs / 3 > 0 ? secs / 3 : 1))}
case $torture in /*) ;; *) torture=$(pwd)/$torture ;; esac
[ -x "$torture" ] || {
    echo "failover.sh: no torture binary at $torture" >&2
    exit 2
}

bindir() {
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_basebackup" ]; then
            echo "$d"
            return 0
        fi
    done
    if command -v pg_config >/dev/null 2>&1; then
        d=$(pg_config --bindir)
        if [ -x "$d/initdb" ] && [ -x "$d/pg_basebackup" ]; then
            echo "$d"
            return 0
        fi
    fi
    return 1
}
if ! b=$(bindir); then
    echo "failover.sh: no PostgreSQL server binaries (initdb, pg_basebackup) found:" \
        "install the postgresql package; skipping" >&2
    exit 77
fi
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    echo "failover.sh: running as root but there is no 'postgres' user to run the servers" >&2
    exit 1
fi

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# A short folder: Unix socket paths are limited to ~107 bytes.
dir=$(mktemp -d /tmp/cm-fo-XXXXXX)
chmod 755 "$dir"
mkdir "$dir/a" "$dir/b" "$dir/run"
chmod 700 "$dir/a" "$dir/b"
[ "$(id -u)" = 0 ] && chown postgres: "$dir/a" "$dir/b"
tpid=

stop_all() {
    [ -n "$tpid" ] && kill -9 "$tpid" 2>/dev/null || true
    for s in a b; do
        if [ -f "$dir/$s/data/postmaster.pid" ]; then
            as_owner "$b/pg_ctl" -D "$dir/$s/data" -m immediate -w -t 30 stop >/dev/null 2>&1 ||
                true
        fi
    done
    rm -rf "$dir"
}
trap stop_all EXIT
trap 'exit 1' INT TERM

logs() {
    grep -h "^X " "$dir"/run/*/log-* >&2 2>/dev/null || true
    for s in a b; do
        echo "---- server $s log (tail) ----" >&2
        tail -n 30 "$dir/$s/server.log" >&2 2>/dev/null || true
    done
}

fail() {
    echo "failover.sh: $*" >&2
    logs
    exit 1
}

conf() { # conf SERVER PORT: the settings of server SERVER (a or b)
    {
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$dir/$1'"
        echo "port = $2"
        echo "max_connections = 60"
        echo "wal_level = replica"
        echo "max_wal_senders = 4"
        echo "hot_standby = on"
        echo "synchronous_commit = on"
        [ "${CM_PG_FSYNC:-off}" = off ] && echo "fsync = off"
        echo "logging_collector = off"
        # The standby, once promoted, runs alone: no standby of its own to wait for.
        echo "synchronous_standby_names = ''"
    } >>"$dir/$1/data/postgresql.conf"
}

psql_a() {
    as_owner "$b/psql" -X -q -t -A -h "$dir/a" -p 5432 -U postgres "$@"
}

# The primary.
as_owner "$b/initdb" -D "$dir/a/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
    >"$dir/a/initdb.log" 2>&1 || {
    cat "$dir/a/initdb.log" >&2
    exit 1
}
conf a 5432
as_owner "$b/pg_ctl" -D "$dir/a/data" -l "$dir/a/server.log" -w -t 60 start >/dev/null ||
    fail "the primary did not start"
as_owner "$b/createdb" -h "$dir/a" -p 5432 -U postgres creditmeter

# The standby: a copy of the primary that follows it (-R: standby.signal and
# primary_conninfo), on its own socket and port.
as_owner "$b/pg_basebackup" -h "$dir/a" -p 5432 -U postgres -D "$dir/b/data" -R -X stream \
    -c fast --no-sync >"$dir/b/basebackup.log" 2>&1 || {
    cat "$dir/b/basebackup.log" >&2
    fail "pg_basebackup failed"
}
conf b 5433
as_owner "$b/pg_ctl" -D "$dir/b/data" -l "$dir/b/server.log" -w -t 60 start >/dev/null ||
    fail "the standby did not start"
# Now that it has a standby, the primary waits for the standby to have flushed each
# commit's WAL before it acknowledges the commit (synchronous_commit = on), so an
# acknowledged charge survives the primary's death.
psql_a -c "ALTER SYSTEM SET synchronous_standby_names = '*'" -c "SELECT pg_reload_conf()" \
    >/dev/null || fail "cannot make the replication synchronous"
n=0
until [ "$(psql_a -c "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")" = 1 ]; do
    n=$((n + 1))
    [ $n -lt 300 ] || fail "the standby never became a synchronous standby"
    sleep 0.1
done

uri="postgresql:///creditmeter?host=$dir/a,$dir/b&port=5432,5433&user=postgres"
uri="$uri&target_session_attrs=read-write&connect_timeout=2"
echo "failover.sh: primary $dir/a:5432, synchronous standby $dir/b:5433;" \
    "torture $procs processes for $secs s, the primary killed at $kill_at s"

# --sync full: the ledger keeps synchronous_commit on. (NORMAL turns it off for its
# sessions: commits are acknowledged before the standby has them, and a failover loses
# the last ones; this test catches that.)
"$torture" --procs "$procs" --soak "$secs" --sync full --ledger "$uri" --dir "$dir/run" \
    >"$dir/torture.out" 2>&1 &
tpid=$!
sleep "$kill_at"
kill -0 "$tpid" 2>/dev/null || {
    cat "$dir/torture.out" >&2
    fail "the torture ended before the failover (give it more SECONDS)"
}

# The primary dies: its postmaster and every process of it, at once.
pm=$(head -n 1 "$dir/a/data/postmaster.pid")
kids=$(ps -o pid= --ppid "$pm" | tr -d ' ' | tr '\n' ' ')
kill -9 "$pm"
for k in $kids; do
    kill -9 "$k" 2>/dev/null || true # it may have ended by itself meanwhile
done
echo "failover.sh: killed the primary (postmaster $pm and $(echo $kids | wc -w) processes)"
sleep 0.5
as_owner "$b/pg_ctl" -D "$dir/b/data" -w -t 60 promote >/dev/null || fail "promote failed"
echo "failover.sh: promoted the standby"

status=0
wait "$tpid" || status=$?
tpid=
cat "$dir/torture.out"
[ $status = 0 ] || fail "the torture failed across the failover (exit $status)"
grep -q "torture: OK" "$dir/torture.out" || fail "the torture did not report OK"
echo "failover.sh: OK"
