/* SPDX-License-Identifier: MIT */
/*
 * bench_ledger_pg - reserve+commit pairs per second with 1, 2, 4 and 8 client processes
 * against one PostgreSQL server, beside the SQLite ledger's figures from the same run
 * (synchronous FULL on both: synchronous_commit=on, fsync on).
 *
 * Columns, each a run of PAIRS pairs split over the processes:
 *   sqlite        the ledger on one SQLite file, all processes on one workspace
 *   pg 1 ws       the ledger on PostgreSQL, all processes on one workspace (worst case:
 *                 every call waits for the workspace's lock, held until its COMMIT)
 *   pg ws/proc    the ledger on PostgreSQL, one workspace per process (a fleet whose
 *                 machines serve different customers)
 *   pg plain      a plain libpq baseline: the same number of write transactions (two
 *                 per pair), each BEGIN; one UPDATE of a balance row per process and
 *                 one INSERT of a journal row; COMMIT, prepared, READ COMMITTED
 * Every ledger run ends with cm_ledger_check. Not a test: it prints figures.
 *
 * usage: bench_ledger_pg URI [PAIRS [DIR]]   (default 1000 pairs, SQLite file in DIR=.)
 * bench/ledger_pg.sh starts a throwaway server, runs this, and stops it.
 */
#include "cm_ledger.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 8

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_ledger_pg: %s: %s\n", what, msg);
    exit(1);
}

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static PGconn *pg_connect(const char *uri)
{
    PGconn *c = PQconnectdb(uri);
    if (PQstatus(c) != CONNECTION_OK)
        die("connect", PQerrorMessage(c));
    PQsetNoticeProcessor(c, quiet, NULL);
    return c;
}

static void pg_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        die(sql, PQresultErrorMessage(r));
    PQclear(r);
}

/* A fresh schema for each run; *loc is the server URI that selects it. */
static void fresh_schema(const char *uri, const char *schema, char *loc, size_t n)
{
    PGconn *c = pg_connect(uri);
    char sql[256];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema, schema);
    pg_exec(c, sql);
    PQfinish(c);
    snprintf(loc, n, "%s%soptions=-csearch_path%%3D%s", uri, strchr(uri, '?') ? "&" : "?", schema);
}

static cm_ledger *open_ledger(const char *loc)
{
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.location = loc;
    cfg.create = 1;
    cfg.busy_timeout_ms = 60000;
    cm_ledger *l;
    if (cm_ledger_open(&l, &cfg))
        die("open", cm_ledger_errmsg(NULL));
    return l;
}

static void setup_ledger(const char *loc, int spaces)
{
    cm_ledger *l = open_ledger(loc);
    for (int k = 0; k < spaces; k++) {
        char ws[16];
        snprintf(ws, sizeof ws, "bench%d", k);
        if (cm_ledger_workspace_create(l, ws, "owner", NULL) ||
            cm_ledger_member_add(l, ws, "user", "owner") ||
            cm_ledger_buy(l, ws, INT64_C(1000000000), "owner", NULL, NULL))
            die("setup", cm_ledger_errmsg(l));
    }
    cm_ledger_close(l);
}

static void check_ledger(const char *loc)
{
    cm_ledger *l = open_ledger(loc);
    if (cm_ledger_check(l))
        die("check after the run", cm_ledger_errmsg(l));
    cm_ledger_close(l);
}

/* mode 0: everybody on workspace bench0; mode 1: process id on bench<id>. */
static void ledger_worker(const char *loc, int mode, int id, int pairs)
{
    cm_ledger *l = open_ledger(loc);
    char ws[16];
    snprintf(ws, sizeof ws, "bench%d", mode ? id : 0);
    for (int i = 0; i < pairs; i++) {
        char job[64];
        snprintf(job, sizeof job, "p%d-%d", id, i);
        if (cm_ledger_reserve(l, ws, job, 2, "user", 0, NULL))
            die("reserve", cm_ledger_errmsg(l));
        if (cm_ledger_commit(l, job, 1, NULL))
            die("commit", cm_ledger_errmsg(l));
    }
    cm_ledger_close(l);
}

static void plain_worker(const char *loc, int mode, int id, int pairs)
{
    (void)mode;
    PGconn *c = pg_connect(loc);
    PGresult *r =
        PQprepare(c, "up", "UPDATE acct SET balance = balance - $1 WHERE id = $2", 0, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die("prepare", PQresultErrorMessage(r));
    PQclear(r);
    r = PQprepare(c, "ins", "INSERT INTO log(job, kind, credits) VALUES($1, $2, $3)", 0, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die("prepare", PQresultErrorMessage(r));
    PQclear(r);
    char acct[16];
    snprintf(acct, sizeof acct, "%d", id + 1);
    for (int i = 0; i < pairs; i++) {
        char job[64];
        snprintf(job, sizeof job, "p%d-%d", id, i);
        for (int step = 0; step < 2; step++) {
            pg_exec(c, "BEGIN");
            const char *up[] = {step ? "0" : "2", acct};
            const char *ins[] = {job, step ? "commit" : "hold", step ? "1" : "2"};
            r = PQexecPrepared(c, "up", 2, up, NULL, NULL, 0);
            if (PQresultStatus(r) != PGRES_COMMAND_OK)
                die("update", PQresultErrorMessage(r));
            PQclear(r);
            r = PQexecPrepared(c, "ins", 3, ins, NULL, NULL, 0);
            if (PQresultStatus(r) != PGRES_COMMAND_OK)
                die("insert", PQresultErrorMessage(r));
            PQclear(r);
            pg_exec(c, "COMMIT");
        }
    }
    PQfinish(c);
}

typedef void (*worker_fn)(const char *loc, int mode, int id, int pairs);

static double run(worker_fn fn, const char *loc, int mode, int procs, int pairs)
{
    double t0 = now_s();
    pid_t pids[MAX_PROCS];
    for (int p = 0; p < procs; p++) {
        pids[p] = fork();
        if (pids[p] < 0)
            die("fork", "failed");
        if (pids[p] == 0) {
            fn(loc, mode, p, pairs / procs);
            _exit(0);
        }
    }
    for (int p = 0; p < procs; p++) {
        int status;
        waitpid(pids[p], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status))
            die("worker", "failed");
    }
    return (pairs / procs) * procs / (now_s() - t0);
}

static void remove_sqlite(const char *path)
{
    char p[600];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

int main(int argc, char **argv)
{
    if (argc < 2 || (strncmp(argv[1], "postgresql://", 13) && strncmp(argv[1], "postgres://", 11)))
        die("usage", "bench_ledger_pg postgresql://... [PAIRS [DIR]]");
    const char *uri = argv[1];
    int pairs = argc > 2 ? atoi(argv[2]) : 1000;
    const char *dir = argc > 3 ? argv[3] : ".";
    if (pairs < MAX_PROCS)
        pairs = MAX_PROCS;
    PGconn *c = pg_connect(uri);
    int server = PQserverVersion(c);
    PGresult *r = PQexec(c, "SELECT current_setting('synchronous_commit'), "
                            "current_setting('fsync'), current_setting('max_connections')");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        die("settings", PQresultErrorMessage(r));
    printf("bench_ledger_pg: %d reserve+commit pairs per run; PostgreSQL %d.%d "
           "(synchronous_commit=%s, fsync=%s, max_connections=%s), libpq %d; ledger "
           "synchronous FULL\n",
           pairs, server / 10000, server % 10000, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1),
           PQgetvalue(r, 0, 2), PQlibVersion());
    PQclear(r);
    PQfinish(c);

    char sqlite_path[512];
    snprintf(sqlite_path, sizeof sqlite_path, "%s/bench-ledger-pg-%ld.db", dir, (long)getpid());
    printf("%-6s %14s %14s %14s %14s\n", "procs", "sqlite pairs/s", "pg 1 ws", "pg ws/proc",
           "pg plain");
    const int procs_list[] = {1, 2, 4, 8};
    for (size_t k = 0; k < sizeof procs_list / sizeof procs_list[0]; k++) {
        int procs = procs_list[k];
        char loc[1024];

        remove_sqlite(sqlite_path);
        setup_ledger(sqlite_path, 1);
        double sq = run(ledger_worker, sqlite_path, 0, procs, pairs);
        check_ledger(sqlite_path);
        remove_sqlite(sqlite_path);

        fresh_schema(uri, "bench_one", loc, sizeof loc);
        setup_ledger(loc, 1);
        double one = run(ledger_worker, loc, 0, procs, pairs);
        check_ledger(loc);

        fresh_schema(uri, "bench_many", loc, sizeof loc);
        setup_ledger(loc, procs);
        double many = run(ledger_worker, loc, 1, procs, pairs);
        check_ledger(loc);

        fresh_schema(uri, "bench_plain", loc, sizeof loc);
        c = pg_connect(loc);
        pg_exec(c, "CREATE TABLE acct(id BIGINT PRIMARY KEY, balance BIGINT NOT NULL);"
                   "CREATE TABLE log(id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                   "job TEXT NOT NULL, kind TEXT NOT NULL, credits BIGINT NOT NULL);"
                   "INSERT INTO acct SELECT g, 1000000000 FROM generate_series(1, 8) g");
        PQfinish(c);
        double plain = run(plain_worker, loc, 0, procs, pairs);

        printf("%-6d %14.0f %14.0f %14.0f %14.0f\n", procs, sq, one, many, plain);
        fflush(stdout);
    }
    c = pg_connect(uri);
    pg_exec(c, "DROP SCHEMA IF EXISTS bench_one CASCADE; DROP SCHEMA IF EXISTS bench_many CASCADE;"
               "DROP SCHEMA IF EXISTS bench_plain CASCADE");
    PQfinish(c);
    return 0;
}
