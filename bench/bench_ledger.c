/*
 * bench_ledger - reserve+commit pairs per second on one ledger file, with 1 and 2
 * processes, at synchronous=FULL and NORMAL, beside a plain-SQLite baseline measured in
 * the same run: the same number of write transactions (two per pair), each of similar
 * shape (BEGIN IMMEDIATE; one UPDATE and one INSERT; COMMIT) with the same pragmas
 * (WAL, the synchronous level, busy timeout, foreign keys). Target: ledger >= 50 % of
 * the baseline. Not a test: it prints figures.
 *
 * usage: bench_ledger [PAIRS [DIR]]   (default 2000 pairs in the current directory)
 */
#include "cm_ledger.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void remove_db(const char *path)
{
    char p[600];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_ledger: %s: %s\n", what, msg);
    exit(1);
}

static cm_ledger *open_ledger(const char *path, int sync)
{
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.db = path;
    cfg.synchronous = sync;
    cfg.busy_timeout_ms = 60000;
    cm_ledger *l;
    if (cm_ledger_open(&l, &cfg))
        die("open", cm_ledger_errmsg(NULL));
    return l;
}

static void ledger_worker(const char *path, int sync, int id, int pairs)
{
    cm_ledger *l = open_ledger(path, sync);
    for (int i = 0; i < pairs; i++) {
        char job[64];
        snprintf(job, sizeof job, "p%d-%d", id, i);
        if (cm_ledger_reserve(l, "bench", job, 2, "user", 0, NULL))
            die("reserve", cm_ledger_errmsg(l));
        if (cm_ledger_commit(l, job, 1, NULL))
            die("commit", cm_ledger_errmsg(l));
    }
    cm_ledger_close(l);
}

static void exec_or_die(sqlite3 *db, const char *sql)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        die(sql, sqlite3_errmsg(db));
}

static sqlite3 *open_plain(const char *path, int sync)
{
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        die("sqlite3_open", sqlite3_errmsg(db));
    sqlite3_busy_timeout(db, 60000);
    exec_or_die(db, "PRAGMA journal_mode=WAL");
    exec_or_die(db, sync == CM_LEDGER_SYNC_FULL ? "PRAGMA synchronous=FULL"
                                                : "PRAGMA synchronous=NORMAL");
    exec_or_die(db, "PRAGMA foreign_keys=ON");
    return db;
}

/* The baseline: two transactions per pair, each an UPDATE of a balance and an INSERT of a
 * journal row, prepared once, parameters bound. */
static void plain_worker(const char *path, int sync, int id, int pairs)
{
    sqlite3 *db = open_plain(path, sync);
    sqlite3_stmt *up, *ins;
    if (sqlite3_prepare_v2(db, "UPDATE acct SET balance = balance - ?1 WHERE id = 1", -1, &up,
                           NULL) ||
        sqlite3_prepare_v2(db, "INSERT INTO log(job, kind, credits) VALUES(?1, ?2, ?3)", -1, &ins,
                           NULL))
        die("prepare", sqlite3_errmsg(db));
    for (int i = 0; i < pairs; i++) {
        char job[64];
        snprintf(job, sizeof job, "p%d-%d", id, i);
        for (int step = 0; step < 2; step++) {
            exec_or_die(db, "BEGIN IMMEDIATE");
            sqlite3_bind_int(up, 1, step ? 0 : 2);
            sqlite3_bind_text(ins, 1, job, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(ins, 2, step ? "commit" : "hold", -1, SQLITE_STATIC);
            sqlite3_bind_int(ins, 3, step ? 1 : 2);
            if (sqlite3_step(up) != SQLITE_DONE || sqlite3_step(ins) != SQLITE_DONE)
                die("step", sqlite3_errmsg(db));
            sqlite3_reset(up);
            sqlite3_reset(ins);
            exec_or_die(db, "COMMIT");
        }
    }
    sqlite3_finalize(up);
    sqlite3_finalize(ins);
    sqlite3_close(db);
}

typedef void (*worker_fn)(const char *path, int sync, int id, int pairs);

static double run(worker_fn fn, const char *path, int sync, int procs, int pairs)
{
    double t0 = now_s();
    pid_t pids[8];
    for (int p = 0; p < procs; p++) {
        pids[p] = fork();
        if (pids[p] < 0)
            die("fork", "failed");
        if (pids[p] == 0) {
            fn(path, sync, p, pairs / procs);
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

int main(int argc, char **argv)
{
    int pairs = argc > 1 ? atoi(argv[1]) : 2000;
    const char *dir = argc > 2 ? argv[2] : ".";
    if (pairs < 2)
        pairs = 2;
    char lpath[512], ppath[512];
    snprintf(lpath, sizeof lpath, "%s/bench-ledger-%ld.db", dir, (long)getpid());
    snprintf(ppath, sizeof ppath, "%s/bench-plain-%ld.db", dir, (long)getpid());
    printf("bench_ledger: %d reserve+commit pairs (= %d write transactions) per run, SQLite %s\n",
           pairs, 2 * pairs, sqlite3_libversion());
    printf("%-8s %-6s %16s %16s %8s\n", "sync", "procs", "ledger pairs/s", "plain pairs/s",
           "ratio");
    int worst_ok = 1;
    for (int s = 0; s < 2; s++) {
        int sync = s == 0 ? CM_LEDGER_SYNC_FULL : CM_LEDGER_SYNC_NORMAL;
        for (int procs = 1; procs <= 2; procs++) {
            remove_db(lpath);
            remove_db(ppath);
            cm_ledger *l = open_ledger(lpath, sync);
            if (cm_ledger_workspace_create(l, "bench", "owner", NULL) ||
                cm_ledger_member_add(l, "bench", "user", "owner") ||
                cm_ledger_buy(l, "bench", INT64_C(1000000000), "owner", NULL, NULL))
                die("setup", cm_ledger_errmsg(l));
            cm_ledger_close(l);
            sqlite3 *db = open_plain(ppath, sync);
            exec_or_die(db, "CREATE TABLE acct(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)");
            exec_or_die(db, "CREATE TABLE log(id INTEGER PRIMARY KEY, job TEXT NOT NULL, "
                            "kind TEXT NOT NULL, credits INTEGER NOT NULL)");
            exec_or_die(db, "INSERT INTO acct VALUES(1, 1000000000)");
            sqlite3_close(db);

            double plain = run(plain_worker, ppath, sync, procs, pairs);
            double ledger = run(ledger_worker, lpath, sync, procs, pairs);
            double ratio = ledger / plain;
            if (ratio < 0.5)
                worst_ok = 0;
            printf("%-8s %-6d %16.0f %16.0f %7.0f%%\n", s == 0 ? "FULL" : "NORMAL", procs, ledger,
                   plain, 100 * ratio);
            fflush(stdout);
            l = open_ledger(lpath, sync);
            if (cm_ledger_check(l))
                die("check after the run", cm_ledger_errmsg(l));
            cm_ledger_close(l);
        }
    }
    remove_db(lpath);
    remove_db(ppath);
    printf("target (ledger >= 50%% of baseline): %s\n", worst_ok ? "met" : "NOT met");
    return 0;
}
