#!/bin/sh
# SPDX-License-Identifier: MIT
# pg_server.sh - a throwaway local PostgreSQL server for the ledger's tests and bench.
#
#   pg_server.sh start DIR [PORT]   initdb into DIR, start the server on a Unix socket in
#                                   DIR (no TCP: listen_addresses=''), create the database
#                                   "creditmeter", print its connection URI
#   pg_server.sh stop DIR           stop the server and remove DIR
#   pg_server.sh uri DIR [PORT]     print the URI only
#
# The server runs as an unprivileged user: as the `postgres` system user (runuser) when
# this script runs as root, as the caller otherwise. Its superuser is always named
# "postgres" (initdb -U), local connections are trusted: never point it at real data.
# Exit status 77 (the ctest skip code) when no PostgreSQL server binaries are installed.
# CM_PG_FSYNC=off in the environment turns fsync off (tests only: a crash of the machine
# would lose data; the bench keeps it on).
set -eu

usage() {
    echo "usage: $0 start|stop|uri DIR [PORT]" >&2
    exit 2
}
[ $# -ge 2 ] || usage
cmd=$1
dir=$2
port=${3:-5432}
case $dir in /*) ;; *) dir=$(pwd)/$dir ;; esac

uri() {
    echo "postgresql:///creditmeter?host=$dir&port=$port&user=postgres"
}

bindir() {
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/initdb" ]; then
            echo "$d"
            return 0
        fi
    done
    if command -v pg_config >/dev/null 2>&1; then
        d=$(pg_config --bindir)
        if [ -x "$d/initdb" ]; then
            echo "$d"
            return 0
        fi
    fi
    if command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return 0
    fi
    return 1
}

# Run a command as the server's owner.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

stop() {
    if [ -f "$dir/data/postmaster.pid" ] && b=$(bindir); then
        as_owner "$b/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
            as_owner "$b/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

case $cmd in
uri)
    uri
    ;;
stop)
    stop
    ;;
start)
    if ! b=$(bindir); then
        echo "pg_server.sh: no PostgreSQL server binaries (initdb) found:" \
            "install the postgresql package; skipping" >&2
        exit 77
    fi
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        echo "pg_server.sh: running as root but there is no 'postgres' user to run the server" >&2
        exit 1
    fi
    stop # a leftover from an interrupted run
    mkdir -p "$dir"
    chmod 700 "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    as_owner "$b/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
        >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        exit 1
    }
    {
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$dir'"
        echo "port = $port"
        echo "max_connections = 100"
        echo "synchronous_commit = on"
        [ "${CM_PG_FSYNC:-on}" = off ] && echo "fsync = off"
        echo "logging_collector = off"
    } >>"$dir/data/postgresql.conf"
    as_owner "$b/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null || {
        cat "$dir/server.log" >&2
        exit 1
    }
    as_owner "$b/createdb" -h "$dir" -p "$port" -U postgres creditmeter
    uri
    ;;
*)
    usage
    ;;
esac
