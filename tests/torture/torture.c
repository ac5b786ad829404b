/* SPDX-License-Identifier: MIT */
/*
 * torture.c - the ledger torture driver: N worker processes x M jobs against one
 * ledger (a SQLite file, or a postgresql:// database), random SIGKILLs at any point
 * with replacements, lapsing leases, expiring plan periods, plan changes and cancels,
 * add-ons (some repeated with their payment reference), refunds (some repeated, some
 * partial) and sweeps from a separate process, all on a virtual clock; then the
 * verification of torture_verify.c. Exit 0 when everything held, 1 with the first
 * violation, 2 for a usage error.
 *
 *   torture [--procs N] [--jobs M] [--seed S] [--soak SECONDS] [--ledger LOCATION]
 *           [--dir DIR] [--kill-permille P] [--step-ms MS] [--sync full|normal]
 *           [--cli PATH] [--keep] [-v]
 *
 * Usage details in tests/torture/README.md.
 */
#include "torture.h"
#include "test_proc.h"

#include <errno.h>
#include <libpq-fe.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CM_LEDGER_CLI
#define CM_LEDGER_CLI "cm-ledger"
#endif

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int is_pg(const char *db)
{
    return !strncmp(db, "postgresql://", 13) || !strncmp(db, "postgres://", 11);
}

static void usage(void)
{
    fprintf(
        stderr,
        "usage: torture [--procs N] [--jobs M] [--seed S] [--soak SECONDS] [--ledger LOCATION]\n"
        "               [--dir DIR] [--kill-permille P] [--step-ms MS] [--sync full|normal]\n"
        "               [--cli PATH] [--keep] [-v]\n"
        "  defaults: 4 procs x 200 jobs, seed 1, a SQLite file in DIR (/tmp), synchronous\n"
        "  NORMAL, a SIGKILL chance of 40 per mille every ~2 ms. --soak runs jobs until the\n"
        "  seconds have passed. A postgresql:// LOCATION gets a fresh schema of its own.\n");
    exit(2);
}

static int64_t num(const char *s, int64_t lo, int64_t hi)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi)
        usage();
    return v;
}

/* ---- PostgreSQL: a fresh schema per run ---- */

static char pg_schema[64];

static int pg_exec(const char *uri, const char *sql)
{
    PGconn *c = PQconnectdb(uri);
    int rc = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, "SET client_min_messages = warning");
        PQclear(r);
        r = PQexec(c, sql);
        rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
        if (rc)
            fprintf(stderr, "torture: %s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
    } else {
        fprintf(stderr, "torture: cannot connect: %s", PQerrorMessage(c));
    }
    PQfinish(c);
    return rc;
}

/* Give the run its own schema: db becomes uri + options=-csearch_path=<schema>. */
static char *pg_fresh(const char *uri)
{
    char sql[200];
    snprintf(pg_schema, sizeof pg_schema, "cm_torture_%ld", (long)getpid());
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", pg_schema,
             pg_schema);
    if (pg_exec(uri, sql))
        return NULL;
    size_t n = strlen(uri) + 100;
    char *db = malloc(n);
    if (db)
        snprintf(db, n, "%s%soptions=-csearch_path%%3D%s", uri, strchr(uri, '?') ? "&" : "?",
                 pg_schema);
    return db;
}

static void remove_db(const tt_opts *o, const char *server_uri)
{
    if (is_pg(o->location)) {
        char sql[120];
        snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", pg_schema);
        pg_exec(server_uri, sql);
        return;
    }
    char p[600];
    unlink(o->location);
    snprintf(p, sizeof p, "%s-wal", o->location);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", o->location);
    unlink(p);
}

static void remove_logs(const tt_opts *o)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", o->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "torture: could not remove %s\n", o->dir);
}

/* ---- the ledger before the run ---- */

static int setup(const tt_opts *o, tt_shared *sh)
{
    cm_ledger *l = NULL;
    int rc = tt_open(o, sh, &l);
    if (rc) {
        fprintf(stderr, "torture: cannot open %s: %s\n", o->location, cm_ledger_errmsg(NULL));
        return 1;
    }
    static const int64_t plan[TT_NWS] = {300, 50, 80}; /* ws0 has credits to expire */
    rc = cm_ledger_price_set(l, "eu", "EUR", 12);
    for (int w = 0; w < TT_NWS && !rc; w++) {
        char ref[32];
        snprintf(ref, sizeof ref, "seed-%d", w);
        rc = cm_ledger_workspace_create(l, tt_ws(w), tt_owner(w), w == 2 ? "eu" : NULL);
        if (!rc)
            rc = cm_ledger_member_add(l, tt_ws(w), TT_MEMBER, tt_owner(w));
        if (!rc)
            rc = cm_ledger_plan_set(l, tt_ws(w), plan[w], CM_LEDGER_MONTHLY, "pro", tt_owner(w));
        if (!rc)
            rc = cm_ledger_buy(l, tt_ws(w), 30, tt_owner(w), ref, NULL);
    }
    if (rc)
        fprintf(stderr, "torture: setup: %s: %s\n", cm_ledger_err_name(rc), cm_ledger_errmsg(l));
    cm_ledger_close(l);
    return rc ? 1 : 0;
}

/* ---- the supervisor ---- */

typedef struct child {
    pid_t pid;
    int gen;
} child;

typedef struct spawn_arg {
    const tt_opts *o;
    tt_shared *sh;
    int gen;
} spawn_arg;

/* In the child: slot o->procs is the operations process, the others are workers. */
static int child_main(int slot, void *arg)
{
    const spawn_arg *a = arg;
    if (slot == a->o->procs)
        tt_ops_main(a->o, a->sh, a->gen);
    tt_worker_main(a->o, a->sh, slot, a->gen);
    return 0;
}

static void spawn(const tt_opts *o, tt_shared *sh, child *c, int slot)
{
    spawn_arg a = {o, sh, c->gen};
    pid_t pid = cmt_proc_fork(child_main, slot, &a);
    if (pid < 0) {
        perror("torture: fork");
        exit(1);
    }
    c->pid = pid;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Kill one child, aiming (for up to ~20 ms) at a moment inside the call kind want. */
static void kill_one(tt_shared *sh, child *c, int slot, int want, tt_stats *st)
{
    int ph = 0;
    for (int spin = 0; spin < 200; spin++) {
        ph = atomic_load(&sh->slot[slot].phase);
        if (ph == want)
            break;
        struct timespec ts = {0, 100000L};
        nanosleep(&ts, NULL);
    }
    if (kill(c->pid, SIGKILL) == 0) {
        st->kills++;
        st->kills_by_phase[ph]++;
    }
}

/* Run the children to the end; 0, or 1 when a child reported a violation. */
static int supervise(const tt_opts *o, tt_shared *sh, tt_stats *st)
{
    int n = o->procs + 1;
    child kids[TT_MAX_PROCS + 1];
    memset(kids, 0, sizeof kids);
    for (int i = 0; i < n; i++)
        spawn(o, sh, &kids[i], i);
    tt_rng r = tt_rng_for(o->seed, 999, 0);
    double deadline = o->soak_s > 0 ? mono_s() + o->soak_s : 0;
    int live = n, failed = 0;
    while (live > 0) {
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            int i = 0;
            while (i < n && kids[i].pid != pid)
                i++;
            if (i == n)
                continue;
            kids[i].pid = 0;
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && atomic_load(&sh->slot[i].done)) {
                live--;
            } else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && !failed) {
                kids[i].gen++;
                st->respawns++;
                spawn(o, sh, &kids[i], i);
            } else {
                if (!failed)
                    fprintf(stderr, "torture: process %d (generation %d) ended with %s %d\n", i,
                            kids[i].gen, WIFEXITED(status) ? "status" : "signal",
                            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
                failed = 1;
                live--;
            }
        }
        if (failed) {
            atomic_store(&sh->stop, 1);
            for (int i = 0; i < n; i++)
                if (kids[i].pid > 0)
                    kill(kids[i].pid, SIGKILL);
        }
        int workers_done = 1;
        for (int i = 0; i < o->procs; i++)
            workers_done &= atomic_load(&sh->slot[i].done);
        if (workers_done || (deadline > 0 && mono_s() >= deadline))
            atomic_store(&sh->stop, 1);
        if (!failed && !atomic_load(&sh->stop) && tt_below(&r, 1000) < o->kill_permille) {
            int i = (int)tt_below(&r, n);
            if (kids[i].pid > 0)
                kill_one(sh, &kids[i], i, (int)tt_below(&r, TT_SWEEP), st);
        }
        sleep_ms(2);
    }
    return failed;
}

int main(int argc, char **argv)
{
    tt_opts o = {.procs = 4,
                 .jobs = 200,
                 .seed = 1,
                 .kill_permille = 40,
                 .step_ms = -1,
                 .cli = CM_LEDGER_CLI,
                 .dir = NULL};
    const char *base = "/tmp";
    const char *db = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--keep")) {
            o.keep = 1;
            continue;
        }
        if (!strcmp(a, "-v")) {
            o.verbose = 1;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--procs"))
            o.procs = (int)num(v, 1, TT_MAX_PROCS);
        else if (!strcmp(a, "--jobs"))
            o.jobs = (int)num(v, 1, INT32_MAX / 2);
        else if (!strcmp(a, "--seed"))
            o.seed = (uint64_t)num(v, 0, INT64_MAX);
        else if (!strcmp(a, "--soak"))
            o.soak_s = (double)num(v, 1, 86400 * 7);
        else if (!strcmp(a, "--kill-permille"))
            o.kill_permille = (int)num(v, 0, 1000);
        else if (!strcmp(a, "--step-ms"))
            o.step_ms = num(v, 0, INT64_MAX / 1000000);
        else if (!strcmp(a, "--ledger"))
            db = v;
        else if (!strcmp(a, "--dir"))
            base = v;
        else if (!strcmp(a, "--cli"))
            o.cli = v;
        else if (!strcmp(a, "--sync") && (!strcmp(v, "full") || !strcmp(v, "normal")))
            o.sync_full = !strcmp(v, "full");
        else
            usage();
    }
    if (o.soak_s > 0 && o.jobs == 200)
        o.jobs = INT32_MAX / 2; /* jobs until the deadline */
    if (o.step_ms < 0)          /* 3 h a job: about 3 months in a short run, years in a soak */
        o.step_ms = 3 * 3600 * 1000LL;
    cm_ledger_time_parse("2026-01-31T12:00:00Z", &o.t0_ms); /* a month end on purpose */

    char dir[512], file[600];
    snprintf(dir, sizeof dir, "%s/cm-torture-%ld", base, (long)getpid());
    if (mkdir(dir, 0755) && errno != EEXIST) {
        perror("torture: mkdir");
        return 1;
    }
    o.dir = dir;
    char *pg_db = NULL;
    if (db && is_pg(db)) {
        pg_db = pg_fresh(db);
        if (!pg_db)
            return 1;
        o.location = pg_db;
    } else if (db) {
        struct stat sb;
        if (!stat(db, &sb)) {
            fprintf(stderr, "torture: %s exists: the torture needs a fresh ledger\n", db);
            return 2;
        }
        o.location = db;
    } else {
        snprintf(file, sizeof file, "%s/ledger.db", dir);
        o.location = file;
    }

    tt_shared *sh =
        mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        perror("torture: mmap");
        return 1;
    }
    memset(sh, 0, sizeof *sh);
    atomic_store(&sh->now_ms, o.t0_ms);
    for (int i = 0; i <= o.procs; i++)
        atomic_store(&sh->slot[i].cur_job, -1);

    printf("torture: %d processes x %s jobs, seed %llu, %s (%s), kill chance %d/1000 per tick, "
           "%.1f h of virtual time per job\n",
           o.procs, o.soak_s > 0 ? "unbounded" : "M", (unsigned long long)o.seed,
           is_pg(o.location) ? "PostgreSQL" : "SQLite", o.sync_full ? "FULL" : "NORMAL",
           o.kill_permille, (double)o.step_ms / 3.6e6);
    if (o.soak_s <= 0)
        printf("torture: M = %d\n", o.jobs);
    fflush(stdout);

    double t_start = mono_s();
    tt_stats st;
    memset(&st, 0, sizeof st);
    int failed = setup(&o, sh);
    if (!failed)
        failed = supervise(&o, sh, &st);
    double t_run = mono_s() - t_start;
    if (!failed)
        failed = tt_verify(&o, sh, &st);
    double t_all = mono_s() - t_start;

    long jobs = 0;
    for (int i = 0; i < o.procs; i++)
        jobs += atomic_load(&sh->slot[i].next_job);
    printf("torture: %s: %d processes, %ld jobs (%ld reserves, %ld commits, %ld releases, %ld "
           "insufficient, %ld job_closed, %ld redone after a kill), %ld kills (reserve %ld, commit "
           "%ld, release %ld, buy %ld, refund %ld, renew %ld, sweep/plan %ld, between calls %ld), "
           "%ld restarts, %ld lapses, %ld expiries, %ld periods granted, %ld plan changes, %ld "
           "purchases, %ld refunds (%ld "
           "credits), %ld sweeps, %ld busy, %ld storage_unavailable (retried); credits: granted "
           "%lld + bought %lld + refunded %lld "
           "= available %lld + held %lld + charged %lld + expired %lld; %.1f s run + %.1f s "
           "verify\n",
           failed ? "FAILED" : "OK", o.procs, jobs, st.reserves, st.commits, st.releases,
           st.insufficient, st.closed, st.redone, st.kills, st.kills_by_phase[TT_RESERVE],
           st.kills_by_phase[TT_COMMIT], st.kills_by_phase[TT_RELEASE], st.kills_by_phase[TT_BUY],
           st.kills_by_phase[TT_REFUND], st.kills_by_phase[TT_RENEW],
           st.kills_by_phase[TT_SWEEP] + st.kills_by_phase[TT_PLAN], st.kills_by_phase[TT_IDLE],
           st.respawns, st.lapses, st.expiries, st.periods, st.plan_changes, st.purchases,
           st.refunds, st.refund_credits, st.sweeps, st.busy, st.unavailable, (long long)st.granted,
           (long long)st.bought, (long long)st.refunded_in, (long long)st.available,
           (long long)st.held, (long long)st.charged, (long long)st.expired, t_run, t_all - t_run);
    if (failed || o.keep)
        printf("torture: database %s and logs kept in %s\n", o.location, dir);
    if (!failed && !o.keep) {
        remove_db(&o, db);
        remove_logs(&o);
    }
    free(pg_db);
    munmap(sh, sizeof *sh);
    return failed ? 1 : 0;
}
