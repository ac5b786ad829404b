/* SPDX-License-Identifier: MIT */
/*
 * bench_ledger - reserve+commit pairs per second on one ledger file, with 1 and 2
 * processes, at synchronous=FULL and NORMAL, beside two plain-SQLite baselines measured
 * in the same run, with the same number of write transactions (two per pair) and the same
 * pragmas (WAL, the synchronous level, busy timeout, foreign keys):
 *
 *  - "shaped": a hand-written plain-SQLite ledger doing the same logical work per pair
 *    with the fewest statements: reserve = BEGIN IMMEDIATE; read the spendable balance;
 *    update it; insert the hold row; insert one journal row; COMMIT. commit = BEGIN
 *    IMMEDIATE; read the hold; update it; move the balance; insert one journal row;
 *    COMMIT. The target (ledger >= 50 %) is stated against this one.
 *  - "minimal": each transaction one UPDATE of a balance and one INSERT of a log row
 *    (BEGIN IMMEDIATE; UPDATE; INSERT; COMMIT), the floor of any write transaction.
 *
 * Not a test: it prints figures. First the pages each side writes per transaction (WAL
 * frames, one process, NORMAL), then the rates. With RUNS > 1 every configuration is
 * measured RUNS times and a last table gives the median of each column.
 *
 * usage: bench_ledger [PAIRS [DIR [RUNS]]]   (default 2000 pairs, current directory, 1 run)
 */
#include "cm_ledger.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
    cfg.location = path;
    cfg.create = 1;
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

/* The minimal baseline: two transactions per pair, each an UPDATE of a balance and an INSERT of a
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

static sqlite3_stmt *prep(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        die("prepare", sqlite3_errmsg(db));
    return s;
}

static void step_done(sqlite3 *db, sqlite3_stmt *s)
{
    if (sqlite3_step(s) != SQLITE_DONE)
        die("step", sqlite3_errmsg(db));
    sqlite3_reset(s);
}

/* The similar-shape baseline: a plain-SQLite ledger written by hand with the fewest
 * statements for the same logical work per pair. One balance row (acct), holds keyed by
 * job (WITHOUT ROWID, as the ledger's), one journal row per transaction. */
static void shaped_setup(sqlite3 *db)
{
    exec_or_die(db, "CREATE TABLE acct(id INTEGER PRIMARY KEY, "
                    "spendable INTEGER NOT NULL CHECK (spendable >= 0), "
                    "held INTEGER NOT NULL CHECK (held >= 0), "
                    "charged INTEGER NOT NULL CHECK (charged >= 0))");
    exec_or_die(db, "CREATE TABLE holds(job TEXT PRIMARY KEY, "
                    "acct INTEGER NOT NULL REFERENCES acct(id), user_id TEXT NOT NULL, "
                    "credits INTEGER NOT NULL, state INTEGER NOT NULL, "
                    "created_ms INTEGER NOT NULL, lease_until_ms INTEGER NOT NULL, "
                    "charged INTEGER NOT NULL) WITHOUT ROWID");
    exec_or_die(db, "CREATE TABLE journal(id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, "
                    "kind TEXT NOT NULL, job TEXT NOT NULL, credits INTEGER NOT NULL, "
                    "actor TEXT NOT NULL)");
    exec_or_die(db, "INSERT INTO acct VALUES(1, 1000000000, 0, 0)");
}

static void shaped_worker(const char *path, int sync, int id, int pairs)
{
    sqlite3 *db = open_plain(path, sync);
    sqlite3_stmt *get_bal = prep(db, "SELECT spendable FROM acct WHERE id = ?1");
    sqlite3_stmt *hold_bal =
        prep(db, "UPDATE acct SET spendable = spendable - ?2, held = held + ?2 WHERE id = ?1");
    sqlite3_stmt *ins_hold =
        prep(db, "INSERT INTO holds(job, acct, user_id, credits, state, created_ms, "
                 "lease_until_ms, charged) VALUES(?1, ?2, ?3, ?4, 1, ?5, ?6, 0)");
    sqlite3_stmt *get_hold = prep(db, "SELECT acct, credits, state FROM holds WHERE job = ?1");
    sqlite3_stmt *res_hold = prep(db, "UPDATE holds SET state = 2, charged = ?2 WHERE job = ?1");
    sqlite3_stmt *move_bal = prep(db, "UPDATE acct SET held = held - ?2, charged = charged + ?3, "
                                      "spendable = spendable + ?2 - ?3 WHERE id = ?1");
    sqlite3_stmt *ins_jr = prep(db, "INSERT INTO journal(at_ms, kind, job, credits, actor) "
                                    "VALUES(?1, ?2, ?3, ?4, ?5)");
    for (int i = 0; i < pairs; i++) {
        char job[64];
        snprintf(job, sizeof job, "p%d-%d", id, i);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        /* reserve 2 credits */
        exec_or_die(db, "BEGIN IMMEDIATE");
        sqlite3_bind_int(get_bal, 1, 1);
        if (sqlite3_step(get_bal) != SQLITE_ROW || sqlite3_column_int64(get_bal, 0) < 2)
            die("reserve", "insufficient");
        sqlite3_reset(get_bal);
        sqlite3_bind_int(hold_bal, 1, 1);
        sqlite3_bind_int(hold_bal, 2, 2);
        step_done(db, hold_bal);
        sqlite3_bind_text(ins_hold, 1, job, -1, SQLITE_STATIC);
        sqlite3_bind_int(ins_hold, 2, 1);
        sqlite3_bind_text(ins_hold, 3, "user", -1, SQLITE_STATIC);
        sqlite3_bind_int(ins_hold, 4, 2);
        sqlite3_bind_int64(ins_hold, 5, now_ms);
        sqlite3_bind_int64(ins_hold, 6, now_ms + 900000);
        step_done(db, ins_hold);
        sqlite3_bind_int64(ins_jr, 1, now_ms);
        sqlite3_bind_text(ins_jr, 2, "hold", -1, SQLITE_STATIC);
        sqlite3_bind_text(ins_jr, 3, job, -1, SQLITE_STATIC);
        sqlite3_bind_int(ins_jr, 4, 2);
        sqlite3_bind_text(ins_jr, 5, "user", -1, SQLITE_STATIC);
        step_done(db, ins_jr);
        exec_or_die(db, "COMMIT");
        /* commit 1 of them, the other goes back */
        exec_or_die(db, "BEGIN IMMEDIATE");
        sqlite3_bind_text(get_hold, 1, job, -1, SQLITE_STATIC);
        if (sqlite3_step(get_hold) != SQLITE_ROW || sqlite3_column_int(get_hold, 2) != 1)
            die("commit", "no held hold");
        int64_t acct = sqlite3_column_int64(get_hold, 0), held = sqlite3_column_int64(get_hold, 1);
        sqlite3_reset(get_hold);
        sqlite3_bind_text(res_hold, 1, job, -1, SQLITE_STATIC);
        sqlite3_bind_int(res_hold, 2, 1);
        step_done(db, res_hold);
        sqlite3_bind_int64(move_bal, 1, acct);
        sqlite3_bind_int64(move_bal, 2, held);
        sqlite3_bind_int(move_bal, 3, 1);
        step_done(db, move_bal);
        sqlite3_bind_int64(ins_jr, 1, now_ms);
        sqlite3_bind_text(ins_jr, 2, "commit", -1, SQLITE_STATIC);
        sqlite3_bind_text(ins_jr, 3, job, -1, SQLITE_STATIC);
        sqlite3_bind_int(ins_jr, 4, 1);
        sqlite3_bind_text(ins_jr, 5, "user", -1, SQLITE_STATIC);
        step_done(db, ins_jr);
        exec_or_die(db, "COMMIT");
    }
    sqlite3_stmt *all[] = {get_bal, hold_bal, ins_hold, get_hold, res_hold, move_bal, ins_jr};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        sqlite3_finalize(all[k]);
    sqlite3_close(db);
}

typedef void (*worker_fn)(const char *path, int sync, int id, int pairs);

/* ---- pages written per transaction ----
 * What a write transaction costs at synchronous=NORMAL is mostly the pages it dirties:
 * each is one WAL frame (a 24-byte header and the page). A reader holding a snapshot
 * keeps the WAL from being restarted, so its size only grows, and the frames of a run are
 * its growth / (24 + page size). */

static long wal_size(const char *path)
{
    char p[600];
    struct stat sb;
    snprintf(p, sizeof p, "%s-wal", path);
    return stat(p, &sb) ? 0 : (long)sb.st_size;
}

/* A read transaction on path that pins the WAL; *page_size is the file's page size. */
static sqlite3 *pin_wal(const char *path, int *page_size)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        die("sqlite3_open", sqlite3_errmsg(db));
    exec_or_die(db, "BEGIN");
    if (sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &s, NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW)
        die("page_size", sqlite3_errmsg(db));
    *page_size = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    exec_or_die(db, "SELECT count(*) FROM sqlite_schema"); /* the snapshot starts here */
    return db;
}

static void unpin_wal(sqlite3 *db)
{
    exec_or_die(db, "COMMIT");
    sqlite3_close(db);
}

/* WAL frames per write transaction of a baseline worker over `pairs` pairs (one
 * process, synchronous NORMAL). */
static double baseline_frames(worker_fn fn, const char *path, int pairs)
{
    int page;
    sqlite3 *pin = pin_wal(path, &page);
    long w0 = wal_size(path);
    fn(path, CM_LEDGER_SYNC_NORMAL, 0, pairs);
    double frames = (double)(wal_size(path) - w0) / (24 + page);
    unpin_wal(pin);
    return frames / (2.0 * pairs);
}

/* WAL frames per reserve and per commit of the ledger over `pairs` pairs. */
static void ledger_frames(const char *path, int pairs, double *reserve, double *commit)
{
    int page;
    sqlite3 *pin = pin_wal(path, &page);
    cm_ledger *l = open_ledger(path, CM_LEDGER_SYNC_NORMAL);
    long r = 0, c = 0;
    for (int i = 0; i < pairs; i++) {
        char job[64];
        snprintf(job, sizeof job, "p0-%d", i);
        long w0 = wal_size(path);
        if (cm_ledger_reserve(l, "bench", job, 2, "user", 0, NULL))
            die("reserve", cm_ledger_errmsg(l));
        long w1 = wal_size(path);
        if (cm_ledger_commit(l, job, 1, NULL))
            die("commit", cm_ledger_errmsg(l));
        r += w1 - w0;
        c += wal_size(path) - w1;
    }
    cm_ledger_close(l);
    unpin_wal(pin);
    *reserve = (double)r / (24 + page) / pairs;
    *commit = (double)c / (24 + page) / pairs;
}

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

enum { COL_LEDGER, COL_SHAPED, COL_MINIMAL, NCOL };

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void print_header(void)
{
    printf("%-7s %-5s %10s %10s %10s %12s %13s\n", "sync", "procs", "ledger/s", "shaped/s",
           "minimal/s", "vs shaped", "vs minimal");
}

static void print_row(int s, int procs, const double *v)
{
    printf("%-7s %-5d %10.0f %10.0f %10.0f %11.0f%% %12.0f%%\n", s == 0 ? "FULL" : "NORMAL", procs,
           v[COL_LEDGER], v[COL_SHAPED], v[COL_MINIMAL], 100 * v[COL_LEDGER] / v[COL_SHAPED],
           100 * v[COL_LEDGER] / v[COL_MINIMAL]);
    fflush(stdout);
}

/* Fresh files for the three sides: the ledger with one workspace, a member and 10^9
 * add-on credits; the two baselines with their tables and balance. */
static void setup_dbs(const char *lpath, const char *spath, const char *mpath, int sync)
{
    remove_db(lpath);
    remove_db(spath);
    remove_db(mpath);
    cm_ledger *l = open_ledger(lpath, sync);
    if (cm_ledger_workspace_create(l, "bench", "owner", NULL) ||
        cm_ledger_member_add(l, "bench", "user", "owner") ||
        cm_ledger_buy(l, "bench", INT64_C(1000000000), "owner", NULL, NULL))
        die("setup", cm_ledger_errmsg(l));
    cm_ledger_close(l);
    sqlite3 *db = open_plain(spath, sync);
    shaped_setup(db);
    sqlite3_close(db);
    db = open_plain(mpath, sync);
    exec_or_die(db, "CREATE TABLE acct(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)");
    exec_or_die(db, "CREATE TABLE log(id INTEGER PRIMARY KEY, job TEXT NOT NULL, "
                    "kind TEXT NOT NULL, credits INTEGER NOT NULL)");
    exec_or_die(db, "INSERT INTO acct VALUES(1, 1000000000)");
    sqlite3_close(db);
}

int main(int argc, char **argv)
{
    int pairs = argc > 1 ? atoi(argv[1]) : 2000;
    const char *dir = argc > 2 ? argv[2] : ".";
    int runs = argc > 3 ? atoi(argv[3]) : 1;
    if (pairs < 2)
        pairs = 2;
    if (runs < 1 || runs > 15)
        runs = 1;
    char lpath[512], spath[512], mpath[512];
    snprintf(lpath, sizeof lpath, "%s/bench-ledger-%ld.db", dir, (long)getpid());
    snprintf(spath, sizeof spath, "%s/bench-shaped-%ld.db", dir, (long)getpid());
    snprintf(mpath, sizeof mpath, "%s/bench-minimal-%ld.db", dir, (long)getpid());
    printf("bench_ledger: %d reserve+commit pairs (= %d write transactions) per run, SQLite %s, "
           "%d run(s)\n",
           pairs, 2 * pairs, sqlite3_libversion(), runs);
    printf("pairs per second; shaped = plain-SQLite ledger, fewest statements; minimal = one "
           "UPDATE + one INSERT per transaction\n");
    /* Pages per transaction first (one process, NORMAL, fresh files), then the rates. */
    int fpairs = pairs < 1000 ? pairs : 1000;
    double fr, fc;
    setup_dbs(lpath, spath, mpath, CM_LEDGER_SYNC_NORMAL);
    ledger_frames(lpath, fpairs, &fr, &fc);
    double fs = baseline_frames(shaped_worker, spath, fpairs);
    double fm = baseline_frames(plain_worker, mpath, fpairs);
    printf("WAL frames (pages written) per transaction, %d pairs on fresh files: ledger %.2f "
           "(reserve %.2f, commit %.2f), shaped %.2f, minimal %.2f\n",
           fpairs, (fr + fc) / 2, fr, fc, fs, fm);
    print_header();
    double fig[2][2][NCOL][15];
    for (int r = 0; r < runs; r++) {
        for (int s = 0; s < 2; s++) {
            int sync = s == 0 ? CM_LEDGER_SYNC_FULL : CM_LEDGER_SYNC_NORMAL;
            for (int procs = 1; procs <= 2; procs++) {
                setup_dbs(lpath, spath, mpath, sync);

                double v[NCOL];
                v[COL_MINIMAL] = run(plain_worker, mpath, sync, procs, pairs);
                v[COL_SHAPED] = run(shaped_worker, spath, sync, procs, pairs);
                v[COL_LEDGER] = run(ledger_worker, lpath, sync, procs, pairs);
                for (int c = 0; c < NCOL; c++)
                    fig[s][procs - 1][c][r] = v[c];
                print_row(s, procs, v);
                cm_ledger *l = open_ledger(lpath, sync);
                if (cm_ledger_check(l))
                    die("check after the run", cm_ledger_errmsg(l));
                cm_ledger_close(l);
            }
        }
    }
    remove_db(lpath);
    remove_db(spath);
    remove_db(mpath);
    if (runs > 1) {
        printf("median of %d runs (each column on its own):\n", runs);
        print_header();
    }
    int met_shaped = 1, met_minimal = 1;
    for (int s = 0; s < 2; s++)
        for (int procs = 1; procs <= 2; procs++) {
            double med[NCOL];
            for (int c = 0; c < NCOL; c++) {
                double *x = fig[s][procs - 1][c];
                qsort(x, (size_t)runs, sizeof *x, cmp_double);
                med[c] = runs % 2 ? x[runs / 2] : (x[runs / 2 - 1] + x[runs / 2]) / 2;
            }
            if (runs > 1)
                print_row(s, procs, med);
            if (med[COL_LEDGER] < 0.5 * med[COL_SHAPED])
                met_shaped = 0;
            if (med[COL_LEDGER] < 0.5 * med[COL_MINIMAL])
                met_minimal = 0;
        }
    printf("target (ledger >= 50%% of the similar-shape baseline, every row): %s\n",
           met_shaped ? "met" : "NOT met");
    printf("(against the minimal baseline, every row >= 50%%: %s)\n", met_minimal ? "yes" : "no");
    return 0;
}
