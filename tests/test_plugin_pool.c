/* SPDX-License-Identifier: MIT */
/*
 * test_plugin_pool.c - the plugin handle's pool of ledger connections (ABI 1.3,
 * cm_plugin_config.ledger_pool_size): many threads of one host bill exactly through one
 * handle whatever the pool's size, no more ledger calls run at once than the pool has
 * connections (and that many do), the size is checked, and a connection whose server
 * went away is used again once the ledger reconnected.
 *
 * Run twice by ctest: on SQLite files (test_plugin_pool), and on the throwaway local
 * PostgreSQL server of the ledger's tests (test_plugin_pool_pg, CM_TEST_LEDGER_DB set),
 * where each test gets its own schema and its connections an application_name of their
 * own, so that pg_stat_activity shows exactly the plugin's connections.
 *
 * Nothing here is timed: "K calls at once" is made certain by holding the ledger's lock
 * from another connection (the calls queue inside the ledger, each holding its pooled
 * connection) and read from the pool's own gauges, polled with a generous limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "creditmeter_plugin.h"
#include "test_plugin_metrics.h"
#include "test_plugin_util.h"

#include <dlfcn.h>
#include <pthread.h>
#include <sqlite3.h>
#include <time.h>
#ifdef CM_TEST_HAVE_LIBPQ
#include <libpq-fe.h>
#endif

#define WS "pool"

static const cm_plugin_api *load(void)
{
    void *dl = dlopen(CMT_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(dl);
    void *sym = dlsym(dl, CM_PLUGIN_ENTRY_SYMBOL);
    assert_non_null(sym);
    cm_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    const cm_plugin_api *api = entry(CM_PLUGIN_ABI_MAJOR, CM_PLUGIN_ABI_MINOR);
    assert_true(cm_plugin_api_compatible(api));
    return api; /* stays loaded, as in test_plugin_ops.c */
}

/* ---- the backend: an SQLite file, or a schema of the test PostgreSQL server ---- */

static const char *pg_base(void)
{
    const char *u = getenv("CM_TEST_LEDGER_DB");
    return u && (!strncmp(u, "postgresql://", 13) || !strncmp(u, "postgres://", 11)) ? u : NULL;
}

typedef struct where {
    char db[512];    /* the location the plugin and cm-ledger open */
    char app[64];    /* PostgreSQL: the application_name of its connections */
    char schema[64]; /* PostgreSQL: its schema */
    char other[400]; /* PostgreSQL: the same schema for the test's own connections */
} where;

#ifdef CM_TEST_HAVE_LIBPQ
/* Runs sql on the base server; returns the first value of the first row as a number
 * (0 when the statement returns no rows), fails the test on error. */
static long long pg_exec(const char *sql)
{
    PGconn *c = PQconnectdb(pg_base());
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("cannot connect to %s: %s", pg_base(), PQerrorMessage(c));
    PGresult *r = PQexec(c, "SET client_min_messages = warning");
    PQclear(r);
    r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    long long v =
        st == PGRES_TUPLES_OK && PQntuples(r) > 0 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    PQfinish(c);
    return v;
}

/* The plugin's connections open now on the server. */
static long long pg_connections(const where *w)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s'",
             w->app);
    return pg_exec(sql);
}
#endif

/* A fresh ledger named name with workspace WS (owner "owner", member "member") holding
 * credits. */
static void ledger_setup(where *w, const char *name, int64_t credits)
{
    memset(w, 0, sizeof *w);
    if (pg_base()) {
#ifdef CM_TEST_HAVE_LIBPQ
        snprintf(w->schema, sizeof w->schema, "pool_%ld_%s", (long)getpid(), name);
        snprintf(w->app, sizeof w->app, "cm_pool_%ld_%s", (long)getpid(), name);
        char sql[256];
        snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", w->schema,
                 w->schema);
        pg_exec(sql);
        snprintf(w->other, sizeof w->other, "%s&options=-csearch_path%%3D%s", pg_base(), w->schema);
        snprintf(w->db, sizeof w->db, "%s&application_name=%s", w->other, w->app);
#else
        fail_msg("built without libpq");
#endif
    } else {
        char file[64];
        snprintf(file, sizeof file, "pool-%s.db", name);
        cmt_path(w->db, sizeof w->db, file);
    }
    assert_int_equal(cmt_ledger_setup(w->db, WS, credits), 0);
}

static void ledger_drop(const where *w)
{
    if (w->schema[0]) {
#ifdef CM_TEST_HAVE_LIBPQ
        char sql[128];
        snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", w->schema);
        pg_exec(sql);
#endif
        return;
    }
    char side[600];
    unlink(w->db);
    snprintf(side, sizeof side, "%s-wal", w->db);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", w->db);
    unlink(side);
}

static void config(cm_plugin_config *cfg, const where *w, int pool)
{
    cm_plugin_config_init(cfg);
    cfg->ledger = w->db;
    cfg->ledger_pool_size = pool;
    cfg->keepalive_divisor = -1;         /* only the calls of the test reach the ledger */
    cfg->ledger_busy_timeout_ms = 60000; /* a call held up by the test's lock waits for it */
}

/* ---- metrics ---- */

static long long metric(const cm_plugin_api *api, cm_plugin *p, const char *series)
{
    char *m = cmt_metrics(api, p);
    long long v = cmt_sample(m, series);
    free(m);
    return v;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Polls until series reads want (60 s at most: a limit, not a measurement). */
static void wait_for(const cm_plugin_api *api, cm_plugin *p, const char *series, long long want)
{
    long long v = -1;
    for (int i = 0; i < 6000; i++) {
        if ((v = metric(api, p, series)) == want)
            return;
        sleep_ms(10);
    }
    fail_msg("%s stayed %lld, never %lld", series, v, want);
}

/* ---- jobs from many threads ---- */

typedef struct worker {
    const cm_plugin_api *api;
    cm_plugin *p;
    const char *tag;
    int id, jobs, stages;
    int charged, released, failures, ledger_retries;
    char why[256];
} worker;

/* A call that failed with ledger_failure is retried as it is, as a host does (the
 * plugin says it is safe: a busy or unreachable ledger); rc receives its last code. */
#define RETRYING(w, rc, call)                                                                      \
    do {                                                                                           \
        int n_ = 0;                                                                                \
        while (((rc) = (call)) == CM_PLUGIN_E_LEDGER && n_++ < 100)                                \
            (w)->ledger_retries++;                                                                 \
    } while (0)

static void *work(void *arg)
{
    worker *w = arg;
    for (int k = 0; k < w->jobs; k++) {
        char job[64];
        snprintf(job, sizeof job, "%s-t%d-j%d", w->tag, w->id, k);
        cm_plugin_job_spec s;
        memset(&s, 0, sizeof s);
        s.struct_size = sizeof s;
        s.job = job;
        s.workspace = WS;
        s.user = "member";
        s.billing = CM_PLUGIN_BY_INPUT;
        s.input_path = CMT_SAMPLE("clip-40s.mp4"); /* 1 credit */
        cm_plugin_quote q;
        memset(&q, 0, sizeof q);
        q.struct_size = sizeof q;
        int ok = (w->id + k) % 3 != 0; /* a third of the jobs fail and are released */
        cm_plugin_outcome o;
        memset(&o, 0, sizeof o);
        o.struct_size = sizeof o;
        int rc;
        RETRYING(w, rc, w->api->job_begin(w->p, &s, &q));
        if (rc == CM_PLUGIN_OK && w->stages)
            RETRYING(w, rc, w->api->stage_begin(w->p, job, "transcode"));
        if (rc == CM_PLUGIN_OK && w->stages)
            RETRYING(w, rc, w->api->stage_end(w->p, job, "transcode", ok, NULL));
        if (rc == CM_PLUGIN_OK)
            RETRYING(w, rc, w->api->job_end(w->p, job, ok, NULL, &o));
        if (rc != CM_PLUGIN_OK || o.charged != (ok ? 1 : 0) || q.credits != 1) {
            if (!w->failures++)
                snprintf(w->why, sizeof w->why, "%s: %s (%.150s)", job, w->api->err_name(rc),
                         q.message[0] ? q.message : o.message);
            continue;
        }
        ok ? w->charged++ : w->released++;
    }
    return NULL;
}

#define THREADS 8
#define JOBS 6

/* THREADS threads run JOBS jobs each through one handle with a pool of size pool; every
 * job is billed exactly, the ledger's check passes, and the pool never lent more
 * connections than it has. */
static void threads_bill_exactly(int pool, const char *name)
{
    where w;
    ledger_setup(&w, name, 100);
    const cm_plugin_api *api = load();
    cm_plugin_config cfg;
    config(&cfg, &w, pool);
    cm_plugin *p = NULL;
    assert_int_equal(api->open(&cfg, &p, NULL), CM_PLUGIN_OK);
    worker wk[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        wk[i] = (worker){.api = api, .p = p, .tag = name, .id = i, .jobs = JOBS, .stages = 1};
        assert_int_equal(pthread_create(&t[i], NULL, work, &wk[i]), 0);
    }
    int charged = 0, released = 0, retries = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        if (wk[i].failures)
            fail_msg("thread %d: %d failed jobs, the first %s", i, wk[i].failures, wk[i].why);
        charged += wk[i].charged;
        released += wk[i].released;
        retries += wk[i].ledger_retries;
    }
    assert_int_equal(charged + released, THREADS * JOBS);
    cm_plugin_balance b;
    memset(&b, 0, sizeof b);
    b.struct_size = sizeof b;
    assert_int_equal(api->balance(p, WS, "member", &b), CM_PLUGIN_OK);
    assert_int_equal(b.available, 100 - charged);
    assert_int_equal(b.held, 0);

    char *m = cmt_metrics(api, p);
    assert_int_equal(cmt_sample(m, "cm_plugin_ledger_pool_size"), pool);
    assert_int_equal(cmt_sample(m, "cm_plugin_ledger_pool_in_use"), 0);
    long long open = cmt_sample(m, "cm_plugin_ledger_pool_open");
    long long most = cmt_sample(m, "cm_plugin_ledger_pool_in_use_max");
    assert_true(open >= 1 && open <= pool);
    assert_true(most >= 1 && most <= open);
    assert_int_equal(cmt_sample(m, "cm_plugin_jobs_committed_total"), charged);
    assert_int_equal(cmt_sample(m, "cm_plugin_jobs_released_total"), released);
    /* every ledger call took a connection of the pool */
    static const char *const calls[] = {"reserve", "renew",   "renew_many", "commit", "release",
                                        "quote",   "balance", "job_info",   "ping"};
    long long timed = 0;
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        char series[96];
        snprintf(series, sizeof series, "cm_plugin_ledger_call_seconds_count{call=\"%s\"}",
                 calls[i]);
        timed += cmt_sample(m, series);
    }
    assert_int_equal(cmt_sample(m, "cm_plugin_ledger_pool_checkouts_total"), timed);
    /* the ledger's transactions, summed over the pool's connections: at least one a call */
    assert_true(cmt_sample(m, "cm_plugin_ledger_transactions_total") >= timed);
    free(m);
    print_message("pool %d: %d charged, %d released, %d ledger retries; %lld connection(s) "
                  "opened, at most %lld in use at once\n",
                  pool, charged, released, retries, open, most);
    api->close(p);
    assert_int_equal(cmt_ledger_check(w.db), 0);
    int64_t held = -1;
    assert_int_equal(cmt_available(w.db, WS, &held), 100 - charged);
    assert_int_equal(held, 0);
    ledger_drop(&w);
}

static void test_threads_on_one_handle_with_a_pool_of_1_bill_every_job_exactly(void **state)
{
    (void)state;
    threads_bill_exactly(1, "one");
}

static void test_threads_on_one_handle_with_a_pool_of_4_bill_every_job_exactly(void **state)
{
    (void)state;
    threads_bill_exactly(4, "four");
}

/* ---- at most K calls at once, and K of them ---- */

/* Holds the ledger's write lock from another connection until released: every writing
 * call of the plugin then waits inside the ledger, on its pooled connection. */
typedef struct blocker {
    sqlite3 *lite;
#ifdef CM_TEST_HAVE_LIBPQ
    PGconn *pg;
#endif
} blocker;

static void block(blocker *bl, const where *w)
{
    memset(bl, 0, sizeof *bl);
    if (w->schema[0]) {
#ifdef CM_TEST_HAVE_LIBPQ
        bl->pg = PQconnectdb(w->other); /* not one of the plugin's connections */
        assert_int_equal(PQstatus(bl->pg), CONNECTION_OK);
        PGresult *r = PQexec(bl->pg, "BEGIN; LOCK TABLE holds IN ACCESS EXCLUSIVE MODE");
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            fail_msg("lock: %s", PQresultErrorMessage(r));
        PQclear(r);
#endif
        return;
    }
    assert_int_equal(sqlite3_open(w->db, &bl->lite), SQLITE_OK);
    assert_int_equal(sqlite3_exec(bl->lite, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
}

static void unblock(blocker *bl)
{
#ifdef CM_TEST_HAVE_LIBPQ
    if (bl->pg) {
        PQclear(PQexec(bl->pg, "ROLLBACK"));
        PQfinish(bl->pg);
        return;
    }
#endif
    sqlite3_exec(bl->lite, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(bl->lite);
}

#define CALLERS 6
#define K 3

/* CALLERS threads each begin and end one job (tag: their job ids) while the ledger is
 * blocked; returns when the pool's waits counter reads waits_then, the ledger still
 * blocked (checks: the caller's), so that the caller can look at the pool. */
typedef struct round {
    worker wk[CALLERS];
    pthread_t t[CALLERS];
} round;

static void round_start(round *r, const cm_plugin_api *api, cm_plugin *p, const char *tag)
{
    for (int i = 0; i < CALLERS; i++) {
        r->wk[i] = (worker){.api = api, .p = p, .tag = tag, .id = i, .jobs = 1};
        assert_int_equal(pthread_create(&r->t[i], NULL, work, &r->wk[i]), 0);
    }
}

static void round_join(round *r)
{
    for (int i = 0; i < CALLERS; i++) {
        pthread_join(r->t[i], NULL);
        if (r->wk[i].failures)
            fail_msg("thread %d: %s", i, r->wk[i].why);
    }
}

static void test_with_a_pool_of_k_at_most_k_ledger_calls_run_at_once_and_k_do(void **state)
{
    (void)state;
    where w;
    ledger_setup(&w, "k", 100);
    const cm_plugin_api *api = load();
    cm_plugin_config cfg;
    config(&cfg, &w, K);
    cm_plugin *p = NULL;
    assert_int_equal(api->open(&cfg, &p, NULL), CM_PLUGIN_OK);
    assert_int_equal(metric(api, p, "cm_plugin_ledger_pool_open"), 1); /* the others lazily */

    /* CALLERS reserves at once on a blocked ledger: one waits inside the ledger on the
     * first connection, K - 1 open the others (on SQLite opening one waits for the lock
     * too), and the rest wait for a connection: the pool lends no more than K */
    blocker bl;
    block(&bl, &w);
    round r1;
    round_start(&r1, api, p, "k1");
    wait_for(api, p, "cm_plugin_ledger_pool_waits_total", CALLERS - K);
    assert_true(metric(api, p, "cm_plugin_ledger_pool_in_use_max") <= K);
    unblock(&bl);
    round_join(&r1);
    assert_int_equal(metric(api, p, "cm_plugin_ledger_pool_open"), K);

    /* again, with the K connections open: K calls wait inside the ledger at once, each on
     * its own connection, and the others wait for one of them */
    long long waits = metric(api, p, "cm_plugin_ledger_pool_waits_total"); /* round 1's */
    block(&bl, &w);
    round r2;
    round_start(&r2, api, p, "k2");
    wait_for(api, p, "cm_plugin_ledger_pool_in_use", K);
    wait_for(api, p, "cm_plugin_ledger_pool_waits_total", waits + CALLERS - K);
    assert_int_equal(metric(api, p, "cm_plugin_ledger_pool_open"), K);
    assert_int_equal(metric(api, p, "cm_plugin_ledger_pool_in_use_max"), K);
#ifdef CM_TEST_HAVE_LIBPQ
    if (w.schema[0]) /* the server sees the plugin's K connections */
        assert_int_equal(pg_connections(&w), K);
#endif
    unblock(&bl);
    round_join(&r2);

    char *m = cmt_metrics(api, p);
    assert_int_equal(cmt_sample(m, "cm_plugin_ledger_pool_in_use_max"), K); /* never more */
    assert_int_equal(cmt_sample(m, "cm_plugin_ledger_pool_open"), K);
    assert_int_equal(cmt_sample(m, "cm_plugin_ledger_pool_in_use"), 0);
    assert_int_equal(cmt_sample(m, "cm_plugin_ledger_pool_open_failures_total"), 0);
    assert_int_equal(cmt_sample(m, "cm_plugin_jobs_committed_total") +
                         cmt_sample(m, "cm_plugin_jobs_released_total"),
                     2 * CALLERS);
    free(m);
    api->close(p);
#ifdef CM_TEST_HAVE_LIBPQ
    if (w.schema[0]) /* close closed them all */
        assert_int_equal(pg_connections(&w), 0);
#endif
    assert_int_equal(cmt_ledger_check(w.db), 0);
    ledger_drop(&w);
}

/* A connection the pool cannot open when a call needs it is not that call's failure: it
 * waits for a busy one. The plugin connects as a role allowed one connection (PostgreSQL's
 * CONNECTION LIMIT), so a second one is refused by the server while the first works.
 * PostgreSQL only: SQLite opens another connection whenever the file is there. */
static void test_a_connection_the_pool_cannot_open_makes_the_call_wait_not_fail(void **state)
{
    (void)state;
#ifdef CM_TEST_HAVE_LIBPQ
    if (!pg_base()) {
        print_message("[  SKIPPED ] needs a server that refuses a connection (see "
                      "test_plugin_pool_pg)\n");
        skip();
    }
    char role[64], sql[512];
    snprintf(role, sizeof role, "cm_pool_one_%ld", (long)getpid());
    where w;
    memset(&w, 0, sizeof w);
    snprintf(w.schema, sizeof w.schema, "pool_%ld_noopen", (long)getpid());
    snprintf(w.app, sizeof w.app, "cm_pool_%ld_noopen", (long)getpid());
    snprintf(sql, sizeof sql,
             "DROP SCHEMA IF EXISTS %s CASCADE; DROP ROLE IF EXISTS %s; CREATE ROLE %s LOGIN "
             "CONNECTION LIMIT 1; CREATE SCHEMA %s AUTHORIZATION %s",
             w.schema, role, role, w.schema, role);
    pg_exec(sql);
    snprintf(w.other, sizeof w.other, "%s&options=-csearch_path%%3D%s", pg_base(), w.schema);
    snprintf(w.db, sizeof w.db, "%.380s&application_name=%.40s&user=%.40s", w.other, w.app, role);
    assert_int_equal(cmt_ledger_setup(w.db, WS, 10), 0);
    const cm_plugin_api *api = load();
    cm_plugin_config cfg;
    config(&cfg, &w, 2);
    cm_plugin *p = NULL;
    assert_int_equal(api->open(&cfg, &p, NULL), CM_PLUGIN_OK);
    blocker bl;
    block(&bl, &w); /* as postgres: the first call waits inside the ledger */
    round r;
    round_start(&r, api, p, "noopen");
    /* the others found its connection busy, could not open another, and wait for it */
    wait_for(api, p, "cm_plugin_ledger_pool_waits_total", CALLERS - 1);
    assert_true(metric(api, p, "cm_plugin_ledger_pool_open_failures_total") >= 1);
    assert_int_equal(metric(api, p, "cm_plugin_ledger_pool_open"), 1);
    unblock(&bl);
    round_join(&r); /* every job billed: none failed for want of a connection */
    char *m = cmt_metrics(api, p);
    assert_int_equal(cmt_sample(m, "cm_plugin_ledger_pool_open"), 1);
    assert_int_equal(cmt_sample(m, "cm_plugin_ledger_pool_in_use_max"), 1);
    assert_int_equal(cmt_sample(m, "cm_plugin_jobs_committed_total") +
                         cmt_sample(m, "cm_plugin_jobs_released_total"),
                     CALLERS);
    free(m);
    api->close(p);
    assert_int_equal(cmt_ledger_check(w.db), 0);
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; DROP ROLE IF EXISTS %s", w.schema,
             role);
    pg_exec(sql);
#else
    (void)state;
    print_message("[  SKIPPED ] built without libpq\n");
    skip();
#endif
}

/* One thread never needs a second connection: the pool opens them only when a call
 * finds every open one busy. */
static void test_a_host_calling_from_one_thread_keeps_one_connection(void **state)
{
    (void)state;
    where w;
    ledger_setup(&w, "single", 20);
    const cm_plugin_api *api = load();
    cm_plugin_config cfg;
    config(&cfg, &w, 0); /* the default, 4 */
    cm_plugin *p = NULL;
    assert_int_equal(api->open(&cfg, &p, NULL), CM_PLUGIN_OK);
    worker one = {.api = api, .p = p, .tag = "single", .jobs = 5, .stages = 1};
    work(&one);
    if (one.failures)
        fail_msg("%s", one.why);
    char *m = cmt_metrics(api, p);
    assert_int_equal(cmt_sample(m, "cm_plugin_ledger_pool_size"), CM_PLUGIN_DEFAULT_LEDGER_POOL);
    assert_int_equal(cmt_sample(m, "cm_plugin_ledger_pool_open"), 1);
    assert_int_equal(cmt_sample(m, "cm_plugin_ledger_pool_in_use_max"), 1);
    assert_int_equal(cmt_sample(m, "cm_plugin_ledger_pool_waits_total"), 0);
    free(m);
#ifdef CM_TEST_HAVE_LIBPQ
    if (w.schema[0])
        assert_int_equal(pg_connections(&w), 1);
#endif
    api->close(p);
    ledger_drop(&w);
}

/* ---- the size, checked ---- */

static void test_a_ledger_pool_size_out_of_range_is_refused_with_a_clear_error(void **state)
{
    (void)state;
    where w;
    ledger_setup(&w, "size", 5);
    const cm_plugin_api *api = load();
    cm_plugin_config cfg;
    cm_plugin_error_info e;
    static const int bad[] = {-1, CM_PLUGIN_MAX_LEDGER_POOL + 1, 1000000, INT32_MIN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        config(&cfg, &w, bad[i]);
        memset(&e, 0, sizeof e);
        e.struct_size = sizeof e;
        cm_plugin *p = (cm_plugin *)&e; /* must be set to NULL */
        assert_int_equal(api->open(&cfg, &p, &e), CM_PLUGIN_E_INVALID);
        assert_null(p);
        assert_int_equal(e.code, CM_PLUGIN_E_INVALID);
        char want[128];
        snprintf(want, sizeof want,
                 "ledger_pool_size %d is not 0 (the default, 4 connections) "
                 "or 1 to 64",
                 bad[i]);
        if (!strstr(e.message, want))
            fail_msg("message '%s' lacks '%s'", e.message, want);
    }
    /* the bounds themselves, and 0 for the default */
    static const int good[] = {1, CM_PLUGIN_MAX_LEDGER_POOL, 0};
    static const int size[] = {1, CM_PLUGIN_MAX_LEDGER_POOL, CM_PLUGIN_DEFAULT_LEDGER_POOL};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        config(&cfg, &w, good[i]);
        cm_plugin *p = NULL;
        assert_int_equal(api->open(&cfg, &p, NULL), CM_PLUGIN_OK);
        assert_int_equal(metric(api, p, "cm_plugin_ledger_pool_size"), size[i]);
        api->close(p);
    }
    /* a 1.2 host's config ends before ledger_pool_size: whatever follows it in memory,
     * the handle gets the default */
    struct {
        cm_plugin_config cfg;
        unsigned char poison[16];
    } old;
    config(&old.cfg, &w, 0);
    memset((char *)&old.cfg + CM_PLUGIN_CONFIG_SIZE_1_2, 0xA5,
           sizeof old - CM_PLUGIN_CONFIG_SIZE_1_2);
    old.cfg.struct_size = (uint32_t)CM_PLUGIN_CONFIG_SIZE_1_2;
    cm_plugin *p = NULL;
    assert_int_equal(api->open(&old.cfg, &p, NULL), CM_PLUGIN_OK);
    assert_int_equal(metric(api, p, "cm_plugin_ledger_pool_size"), CM_PLUGIN_DEFAULT_LEDGER_POOL);
    api->close(p);

    /* cm-pipeline --ledger-pool */
    char out[16384];
    assert_int_equal(cmt_pipeline(out, sizeof out, w.db, "--ledger-pool", "65", "--ping", "--json",
                                  (const char *)NULL),
                     2);
    assert_non_null(strstr(out, "--ledger-pool is 0 (the plugin's default) or 1 to 64"));
    assert_int_equal(
        cmt_pipeline(out, sizeof out, w.db, "--ledger-pool", "-1", "--ping", (const char *)NULL),
        2);
    assert_non_null(strstr(out, "--ledger-pool needs a whole number >= 0"));
    char metrics_file[600];
    cmt_path(metrics_file, sizeof metrics_file, "pool.prom");
    assert_int_equal(cmt_pipeline(out, sizeof out, w.db, "--ledger-pool", "2", "--balance",
                                  "--workspace", WS, "--metrics", metrics_file, (const char *)NULL),
                     0);
    FILE *f = fopen(metrics_file, "r");
    assert_non_null(f);
    char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    unlink(metrics_file);
    assert_int_equal(cmt_sample(text, "cm_plugin_ledger_pool_size"), 2);
    char *help[] = {(char *)CMT_PIPELINE, (char *)"--help", NULL};
    assert_int_equal(cmt_runv(out, sizeof out, help), 0);
    assert_non_null(strstr(out, "  --ledger-pool N "));
    ledger_drop(&w);
}

/* ---- a lost connection is used again ---- */

static void test_a_pooled_connection_whose_server_went_away_is_used_again(void **state)
{
    (void)state;
#ifdef CM_TEST_HAVE_LIBPQ
    if (!pg_base()) {
        print_message("[  SKIPPED ] SQLite has no server to lose (see test_plugin_pool_pg)\n");
        skip();
    }
    where w;
    ledger_setup(&w, "lost", 5);
    const cm_plugin_api *api = load();
    cm_plugin_config cfg;
    config(&cfg, &w, 1); /* one connection: the call after the loss must use the same */
    cm_plugin *p = NULL;
    assert_int_equal(api->open(&cfg, &p, NULL), CM_PLUGIN_OK);
    cm_plugin_balance b;
    memset(&b, 0, sizeof b);
    b.struct_size = sizeof b;
    assert_int_equal(api->balance(p, WS, "member", &b), CM_PLUGIN_OK);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
             "application_name = '%s'",
             w.app);
    assert_int_equal(pg_exec(sql), 1);
    /* the next call may fail (storage_unavailable: ledger_failure, retry it) or be retried
     * inside the ledger; either way the connection goes back to the pool and the ledger
     * reconnects it */
    int rc = api->balance(p, WS, "member", &b);
    if (rc != CM_PLUGIN_OK) {
        assert_int_equal(rc, CM_PLUGIN_E_LEDGER);
        cm_plugin_error_info e;
        memset(&e, 0, sizeof e);
        e.struct_size = sizeof e;
        assert_int_equal(api->last_error(p, &e), CM_PLUGIN_OK);
        assert_string_equal(api->cause_name(e.cause, e.cause_code), "storage_unavailable");
    }
    assert_int_equal(api->balance(p, WS, "member", &b), CM_PLUGIN_OK);
    assert_int_equal(b.available, 5);
    char *m = cmt_metrics(api, p);
    assert_int_equal(cmt_sample(m, "cm_plugin_ledger_pool_open"), 1);
    assert_int_equal(cmt_sample(m, "cm_plugin_ledger_pool_in_use"), 0);
    assert_true(cmt_sample(m, "cm_plugin_ledger_reconnects_total") >= 1);
    free(m);
    assert_int_equal(pg_connections(&w), 1);
    api->close(p);
    ledger_drop(&w);
#else
    print_message("[  SKIPPED ] built without libpq\n");
    skip();
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_on_one_handle_with_a_pool_of_1_bill_every_job_exactly),
        cmocka_unit_test(test_threads_on_one_handle_with_a_pool_of_4_bill_every_job_exactly),
        cmocka_unit_test(test_with_a_pool_of_k_at_most_k_ledger_calls_run_at_once_and_k_do),
        cmocka_unit_test(test_a_connection_the_pool_cannot_open_makes_the_call_wait_not_fail),
        cmocka_unit_test(test_a_host_calling_from_one_thread_keeps_one_connection),
        cmocka_unit_test(test_a_ledger_pool_size_out_of_range_is_refused_with_a_clear_error),
        cmocka_unit_test(test_a_pooled_connection_whose_server_went_away_is_used_again),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
