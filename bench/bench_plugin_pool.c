/* SPDX-License-Identifier: MIT */
/*
 * bench_plugin_pool - jobs per second through one plugin handle from T threads
 * (T = 1, 2, 4, 8) on a PostgreSQL ledger, with a pool of 4 ledger connections
 * (cm_plugin_config.ledger_pool_size, ABI 1.3) beside a pool of 1 (every call of the
 * handle on one connection, as before 1.3) measured in the same run.
 *
 * A job is what a host does through the plugin's API: job_begin (the probe measures the
 * sample, then one reserve and one balance read) and job_end(ok) (one commit). Each
 * thread runs its jobs on a workspace of its own (a host serving several customers), so
 * that what is measured is the handle's connections, not one workspace's lock. Every
 * run starts on a fresh schema and ends with the ledger's check and the charges counted.
 * Not a test: it prints figures, and the load average before and after (the machine may
 * be shared).
 *
 * usage: bench_plugin_pool URI [JOBS [SAMPLE]]   (default 400 jobs per run, the 40 s
 *        sample clip-40s.mp4: 1 credit)
 * bench/plugin_pool.sh starts a throwaway server, runs this, and stops it.
 */
#include "cm_ledger.h"
#include "creditmeter_plugin.h"

#include <dlfcn.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 8

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_plugin_pool: %s: %s\n", what, msg);
    exit(1);
}

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static void loadavg(char *buf, size_t n)
{
    FILE *f = fopen("/proc/loadavg", "r");
    buf[0] = '\0';
    if (f) {
        if (fgets(buf, (int)n, f))
            buf[strcspn(buf, " ")] = '\0'; /* the 1-minute figure */
        fclose(f);
    }
    if (!buf[0])
        snprintf(buf, n, "?");
}

/* A fresh schema; *loc is the server URI that selects it. */
static void fresh_schema(const char *uri, const char *schema, char *loc, size_t n)
{
    PGconn *c = PQconnectdb(uri);
    if (PQstatus(c) != CONNECTION_OK)
        die("connect", PQerrorMessage(c));
    PQsetNoticeProcessor(c, quiet, NULL);
    char sql[256];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", schema, schema);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die(sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
    snprintf(loc, n, "%s%soptions=-csearch_path%%3D%s", uri, strchr(uri, '?') ? "&" : "?", schema);
}

static void lcheck(cm_ledger *l, int rc, const char *what)
{
    if (rc != CM_LEDGER_OK) {
        fprintf(stderr, "bench_plugin_pool: %s: %s: %s\n", what, cm_ledger_err_name(rc),
                cm_ledger_errmsg(l));
        exit(1);
    }
}

/* The ledger at loc: threads workspaces w0.. with credits each. */
static void ledger_setup(const char *loc, int threads, int64_t credits)
{
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.location = loc;
    cfg.create = 1;
    cm_ledger *l = NULL;
    lcheck(NULL, cm_ledger_open(&l, &cfg), "open");
    for (int i = 0; i < threads; i++) {
        char ws[16];
        snprintf(ws, sizeof ws, "w%d", i);
        lcheck(l, cm_ledger_workspace_create(l, ws, "owner", NULL), "workspace");
        lcheck(l, cm_ledger_buy(l, ws, credits, "owner", NULL, NULL), "buy");
    }
    cm_ledger_close(l);
}

/* Credits charged over the workspaces, and the ledger's check. */
static int64_t ledger_verify(const char *loc, int threads, int64_t credits)
{
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.location = loc;
    cm_ledger *l = NULL;
    lcheck(NULL, cm_ledger_open(&l, &cfg), "open");
    lcheck(l, cm_ledger_check(l), "check");
    int64_t charged = 0;
    for (int i = 0; i < threads; i++) {
        char ws[16];
        snprintf(ws, sizeof ws, "w%d", i);
        cm_ledger_balance_result *b = NULL;
        lcheck(l, cm_ledger_balance(l, ws, NULL, &b), "balance");
        if (b->held != 0)
            die("verify", "credits still held after the run");
        charged += credits - b->available;
        cm_ledger_balance_free(b);
    }
    cm_ledger_close(l);
    return charged;
}

typedef struct worker {
    const cm_plugin_api *api;
    cm_plugin *p;
    const char *sample;
    int id, jobs, run;
    int failures;
    char why[300];
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    char ws[16];
    snprintf(ws, sizeof ws, "w%d", w->id);
    for (int k = 0; k < w->jobs; k++) {
        char job[64];
        snprintf(job, sizeof job, "r%d-t%d-j%d", w->run, w->id, k);
        cm_plugin_job_spec s;
        memset(&s, 0, sizeof s);
        s.struct_size = sizeof s;
        s.job = job;
        s.workspace = ws;
        s.user = "owner";
        s.billing = CM_PLUGIN_BY_INPUT;
        s.input_path = w->sample;
        cm_plugin_quote q;
        memset(&q, 0, sizeof q);
        q.struct_size = sizeof q;
        cm_plugin_outcome o;
        memset(&o, 0, sizeof o);
        o.struct_size = sizeof o;
        int rc, tries = 0;
        /* ledger_failure (busy, a lost race) is retried as it is, as a host does */
        while ((rc = w->api->job_begin(w->p, &s, &q)) == CM_PLUGIN_E_LEDGER && ++tries < 100)
            ;
        if (rc == CM_PLUGIN_OK)
            while ((rc = w->api->job_end(w->p, job, 1, NULL, &o)) == CM_PLUGIN_E_LEDGER &&
                   ++tries < 100)
                ;
        if (rc != CM_PLUGIN_OK && !w->failures++)
            snprintf(w->why, sizeof w->why, "%s: %s: %.200s", job, w->api->err_name(rc),
                     q.message[0] ? q.message : o.message);
    }
    return NULL;
}

/* The value of a sample of the handle's metrics. */
static long long metric(const cm_plugin_api *api, cm_plugin *p, const char *series)
{
    int64_t n = api->metrics(p, NULL, 0);
    if (n < 0)
        die("metrics", api->err_name((int)n));
    size_t cap = (size_t)n + 4096;
    char *buf = malloc(cap);
    if (!buf || api->metrics(p, buf, cap) >= (int64_t)cap)
        die("metrics", "the text grew");
    long long v = -1;
    size_t len = strlen(series);
    for (const char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, series, len) == 0 && l[len] == ' ')
            v = strtoll(l + len + 1, NULL, 10);
    free(buf);
    return v;
}

typedef struct result {
    double jobs_s;
    long long in_use_max, waits;
} result;

static result run(const cm_plugin_api *api, const char *uri, const char *sample, int threads,
                  int pool, int jobs, int run_id)
{
    char loc[1024];
    fresh_schema(uri, "bench_pool", loc, sizeof loc);
    int per = jobs / threads;
    ledger_setup(loc, threads, per);
    cm_plugin_config cfg;
    cm_plugin_config_init(&cfg);
    cfg.ledger = loc;
    cfg.ledger_pool_size = pool;
    cfg.keepalive_divisor = -1; /* jobs of milliseconds: no tick would fall in a run */
    cm_plugin *p = NULL;
    cm_plugin_error_info e;
    memset(&e, 0, sizeof e);
    e.struct_size = sizeof e;
    if (api->open(&cfg, &p, &e) != CM_PLUGIN_OK)
        die("open", e.message);
    worker w[MAX_THREADS];
    pthread_t t[MAX_THREADS];
    double t0 = now_s();
    for (int i = 0; i < threads; i++) {
        w[i] = (worker){.api = api, .p = p, .sample = sample, .id = i, .jobs = per, .run = run_id};
        if (pthread_create(&t[i], NULL, work, &w[i]) != 0)
            die("pthread_create", "failed");
    }
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    double el = now_s() - t0;
    for (int i = 0; i < threads; i++)
        if (w[i].failures)
            die("job", w[i].why);
    result r = {(double)(per * threads) / el, metric(api, p, "cm_plugin_ledger_pool_in_use_max"),
                metric(api, p, "cm_plugin_ledger_pool_waits_total")};
    api->close(p);
    if (ledger_verify(loc, threads, per) != (int64_t)per * threads)
        die("verify", "the credits charged are not one per job");
    return r;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strncmp(argv[1], "postgres", 8) != 0)
        die("usage", "bench_plugin_pool postgresql://... [JOBS [SAMPLE]]");
    const char *uri = argv[1];
    int jobs = argc > 2 ? atoi(argv[2]) : 400;
    const char *sample = argc > 3 ? argv[3] : CM_SAMPLES_DIR "/clip-40s.mp4";
    if (jobs < MAX_THREADS)
        die("usage", "JOBS must be at least 8");
    void *dl = dlopen(CM_BIN_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    if (!dl)
        die("dlopen", dlerror());
    void *sym = dlsym(dl, CM_PLUGIN_ENTRY_SYMBOL);
    if (!sym)
        die("dlsym", CM_PLUGIN_ENTRY_SYMBOL);
    cm_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    const cm_plugin_api *api = entry(CM_PLUGIN_ABI_MAJOR, CM_PLUGIN_ABI_MINOR);
    if (!cm_plugin_api_compatible(api))
        die("plugin", "incompatible ABI");
    PGconn *c = PQconnectdb(uri);
    if (PQstatus(c) != CONNECTION_OK)
        die("connect", PQerrorMessage(c));
    int ver = PQserverVersion(c);
    PQfinish(c);
    char load0[32], load1[32];
    loadavg(load0, sizeof load0);
    printf("bench_plugin_pool: %d jobs per run (job_begin by input + job_end ok: reserve, "
           "balance, commit), one workspace per thread; PostgreSQL %d.%d; plugin %s; load "
           "average %s at start\n",
           jobs, ver / 10000, ver % 10000, api->version, load0);
    printf("%-8s %16s %16s %8s %14s %10s\n", "threads", "pool 1 jobs/s", "pool 4 jobs/s", "ratio",
           "pool 4 in use", "waits");
    static const int threads[] = {1, 2, 4, 8};
    int run_id = 0;
    for (size_t i = 0; i < sizeof threads / sizeof threads[0]; i++) {
        result one = run(api, uri, sample, threads[i], 1, jobs, run_id++);
        result four = run(api, uri, sample, threads[i], 4, jobs, run_id++);
        printf("%-8d %16.0f %16.0f %7.2fx %14lld %10lld\n", threads[i], one.jobs_s, four.jobs_s,
               four.jobs_s / one.jobs_s, four.in_use_max, four.waits);
        fflush(stdout);
    }
    loadavg(load1, sizeof load1);
    printf("pool 1 is the baseline (every call of the handle on one connection, as before ABI "
           "1.3); \"pool 4 in use\": the most connections of the pool 4 run busy at once; "
           "waits: calls that found all 4 busy. Load average %s at the end.\n",
           load1);
    return 0;
}
