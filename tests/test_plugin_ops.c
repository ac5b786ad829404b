/* SPDX-License-Identifier: MIT */
/*
 * test_plugin_ops.c - what operators run the plugin with (ABI 1.2): the lease
 * keepalive's batching, structured log records and their levels, metrics in the
 * Prometheus text format, ping, explicit ledger creation, and cm-pipeline's options.
 *
 * The plugin is loaded with dlopen as a host does; ledgers are set up with cm-ledger.
 * Time is the plugin's injected clock (a variable the test moves); the keepalive's own
 * wake-ups are real time, so the tests wait for a tick by polling the metrics (with a
 * generous limit), never by asserting a duration.
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

#define WS "ops"

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
    return api; /* stays loaded: see test_plugin_abi.c (unload) */
}

/* ---- the injected clock ---- */

static pthread_mutex_t clock_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t clock_ms;

/* Starts the test clock an hour ahead of the real one: ledgers set up with cm-ledger
 * (real time) then never run it backwards (a workspace's time never goes back). */
static void clock_start(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pthread_mutex_lock(&clock_mu);
    clock_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 3600000;
    pthread_mutex_unlock(&clock_mu);
}

static int64_t test_clock(void *user)
{
    (void)user;
    pthread_mutex_lock(&clock_mu);
    int64_t t = clock_ms;
    pthread_mutex_unlock(&clock_mu);
    return t;
}

static void clock_advance(int64_t ms)
{
    pthread_mutex_lock(&clock_mu);
    clock_ms += ms;
    pthread_mutex_unlock(&clock_mu);
}

/* ---- log records, collected ---- */

#define MAX_RECORDS 256

typedef struct seen {
    char event[32], code[32], job[64], ws[64], user[64];
    int level;
    int64_t credits;
} seen;

typedef struct records {
    pthread_mutex_t mu;
    seen r[MAX_RECORDS];
    int n;
    int old_style; /* 1.0 callback calls */
    int old_levels[MAX_RECORDS];
} records;

static void on_record(void *user, const cm_plugin_log_record *r)
{
    records *rs = user;
    assert_true(r->struct_size >= offsetof(cm_plugin_log_record, credits) + sizeof(int64_t));
    pthread_mutex_lock(&rs->mu);
    if (rs->n < MAX_RECORDS) {
        seen *s = &rs->r[rs->n++];
        snprintf(s->event, sizeof s->event, "%s", r->event);
        snprintf(s->code, sizeof s->code, "%s", r->code_name);
        snprintf(s->job, sizeof s->job, "%s", r->job);
        snprintf(s->ws, sizeof s->ws, "%s", r->workspace);
        snprintf(s->user, sizeof s->user, "%s", r->user);
        s->level = r->level;
        s->credits = r->credits;
    }
    pthread_mutex_unlock(&rs->mu);
}

static void on_old_log(void *user, int level, const char *message)
{
    records *rs = user;
    assert_non_null(message);
    pthread_mutex_lock(&rs->mu);
    if (rs->old_style < MAX_RECORDS)
        rs->old_levels[rs->old_style++] = level;
    pthread_mutex_unlock(&rs->mu);
}

/* The record with this event and code (code NULL: any), or NULL. */
static const seen *find(records *rs, const char *event, const char *code)
{
    for (int i = 0; i < rs->n; i++)
        if (strcmp(rs->r[i].event, event) == 0 && (!code || strcmp(rs->r[i].code, code) == 0))
            return &rs->r[i];
    return NULL;
}

static void config(cm_plugin_config *cfg, const char *db, records *rs)
{
    clock_start();
    cm_plugin_config_init(cfg);
    cfg->ledger = db;
    cfg->now_ms = test_clock;
    if (rs) {
        memset(rs, 0, sizeof *rs);
        pthread_mutex_init(&rs->mu, NULL);
        cfg->log_record = on_record;
        cfg->log_user = rs;
    }
}

static cm_plugin_job_spec by_output(const char *job, const char *user, int64_t ms)
{
    cm_plugin_job_spec s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    s.job = job;
    s.workspace = WS;
    s.user = user;
    s.billing = CM_PLUGIN_BY_OUTPUT;
    s.requested_output_ms = ms;
    return s;
}

/* A by-input job on the 40 s sample: 1 credit. */
static cm_plugin_job_spec by_input(const char *job, const char *user)
{
    cm_plugin_job_spec s = by_output(job, user, 0);
    s.billing = CM_PLUGIN_BY_INPUT;
    s.input_path = CMT_SAMPLE("clip-40s.mp4");
    return s;
}

static int begin(const cm_plugin_api *api, cm_plugin *p, const cm_plugin_job_spec *s)
{
    cm_plugin_quote q;
    memset(&q, 0, sizeof q);
    q.struct_size = sizeof q;
    return api->job_begin(p, s, &q);
}

static int end(const cm_plugin_api *api, cm_plugin *p, const char *job, int ok)
{
    cm_plugin_outcome o;
    memset(&o, 0, sizeof o);
    o.struct_size = sizeof o;
    return api->job_end(p, job, ok, NULL, &o);
}

/* A ledger at db (named name) with workspace WS holding credits, the plugin loaded, and
 * *cfg its config (rs: collect the log records there, or NULL). */
static const cm_plugin_api *ledger_and_config(char *db, size_t n, const char *name, int64_t credits,
                                              cm_plugin_config *cfg, records *rs)
{
    cmt_path(db, n, name);
    assert_int_equal(cmt_ledger_setup(db, WS, credits), 0);
    const cm_plugin_api *api = load();
    config(cfg, db, rs);
    return api;
}

/* ---- reading the metrics ---- */

static int metric_name_ok(const char *s, size_t n)
{
    if (n == 0 || !(s[0] == '_' || s[0] == ':' || (s[0] >= 'a' && s[0] <= 'z') ||
                    (s[0] >= 'A' && s[0] <= 'Z')))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!(s[i] == '_' || s[i] == ':' || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
            return 0;
    return 1;
}

/* A small check of the text exposition format: every line is a # HELP, a # TYPE or a
 * sample; names are valid; label values are quoted with only \\, \" and \n escaped;
 * values are numbers; each sample's family was TYPEd before it; a histogram's buckets
 * are cumulative and its +Inf bucket equals its _count. Returns the number of samples,
 * or -1 (the first violation is printed). */
/* In check_exposition: a violation prints where and returns -1. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            print_error("exposition format: %s fails at: %.80s\n", #cond, l);                      \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

static int check_exposition(const char *text)
{
    char typed[64][80];
    int n_typed = 0, samples = 0;
    long long last_bucket = -1;
    char last_series[240] = "";
    const char *l = text;
    CHECK(text[0] != '\0' && text[strlen(text) - 1] == '\n');
    while (*l) {
        const char *eol = strchr(l, '\n');
        CHECK(eol != NULL);
        size_t len = (size_t)(eol - l);
        char line[512];
        CHECK(len < sizeof line);
        memcpy(line, l, len);
        line[len] = '\0';
        if (strncmp(line, "# HELP ", 7) == 0) {
            const char *sp = strchr(line + 7, ' ');
            CHECK(sp != NULL);
            CHECK(metric_name_ok(line + 7, (size_t)(sp - line - 7)));
        } else if (strncmp(line, "# TYPE ", 7) == 0) {
            char name[80], type[32];
            CHECK(sscanf(line + 7, "%79s %31s", name, type) == 2);
            CHECK(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
                  strcmp(type, "histogram") == 0);
            for (int i = 0; i < n_typed; i++)
                CHECK(strcmp(typed[i], name) != 0); /* one TYPE per family */
            CHECK(n_typed < 64);
            snprintf(typed[n_typed++], sizeof typed[0], "%s", name);
        } else {
            const char *p = line;
            while (*p && *p != '{' && *p != ' ')
                p++;
            CHECK(metric_name_ok(line, (size_t)(p - line)));
            char family[80];
            snprintf(family, sizeof family, "%.*s", (int)(p - line), line);
            char *suffix;
            int is_bucket = 0;
            if ((suffix = strstr(family, "_bucket")) && suffix[7] == '\0')
                *suffix = '\0', is_bucket = 1;
            else if ((suffix = strstr(family, "_sum")) && suffix[4] == '\0')
                *suffix = '\0';
            else if ((suffix = strstr(family, "_count")) && suffix[6] == '\0')
                *suffix = '\0';
            int known = 0;
            for (int i = 0; i < n_typed; i++)
                known |= strcmp(typed[i], family) == 0;
            if (!known) /* a counter whose own name ends in _count or _sum */
                for (int i = 0; i < n_typed; i++)
                    known |= strncmp(typed[i], line, (size_t)(p - line)) == 0 &&
                             typed[i][p - line] == '\0';
            CHECK(known);
            char series[160] = "";
            if (*p == '{') {
                p++;
                while (*p != '}') {
                    const char *lab = p;
                    const char *eq = strchr(p, '=');
                    CHECK(eq != NULL);
                    CHECK(metric_name_ok(p, (size_t)(eq - p)));
                    int is_le = strncmp(p, "le=", 3) == 0;
                    p = eq + 1;
                    CHECK(*p == '"');
                    for (p++; *p != '"'; p++) {
                        CHECK(*p != '\0');
                        if (*p == '\\') {
                            p++;
                            CHECK(*p == '\\' || *p == '"' || *p == 'n');
                        }
                    }
                    p++;
                    if (!is_le) /* the series: its labels but le */
                        snprintf(series + strlen(series), sizeof series - strlen(series), "%.*s;",
                                 (int)(p - lab), lab);
                    if (*p == ',')
                        p++;
                    else
                        CHECK(*p == '}');
                }
                p++;
            }
            CHECK(*p == ' ');
            char *end;
            double v = strtod(p + 1, &end);
            CHECK(end != p + 1 && *end == '\0');
            CHECK(v >= 0);
            if (is_bucket) {
                char key[240];
                snprintf(key, sizeof key, "%s|%s", family, series);
                if (strcmp(key, last_series) != 0) {
                    snprintf(last_series, sizeof last_series, "%s", key);
                    last_bucket = -1;
                }
                CHECK((long long)v >= last_bucket); /* cumulative */
                last_bucket = (long long)v;
                if (strstr(line, "le=\"+Inf\"")) { /* equals the _count after it */
                    const char *cnt = strstr(eol, "_count");
                    CHECK(cnt != NULL);
                    const char *sp = strchr(cnt, ' ');
                    CHECK(sp && strtoll(sp + 1, NULL, 10) == (long long)v);
                }
            }
            samples++;
        }
        l = eol + 1;
    }
    return samples;
}

#undef CHECK

/* Waits (real time, up to 20 s) until the metric series reaches at least want. */
static long long wait_for(const cm_plugin_api *api, cm_plugin *p, const char *series,
                          long long want)
{
    long long v = -1;
    for (int i = 0; i < 400; i++) {
        char *m = cmt_metrics(api, p);
        v = cmt_sample(m, series);
        free(m);
        if (v >= want)
            break;
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    return v;
}

/* ---- keepalive ---- */

#define MANY 1000

static void test_a_thousand_jobs_renew_in_one_ledger_transaction_per_tick(void **state)
{
    (void)state;
    /* a thousand durable reserves: on tmpfs where there is one (fsync costs nothing
     * there; the batching is counted, not timed) */
    char db[512];
    struct stat shm;
    if (stat("/dev/shm", &shm) == 0 && S_ISDIR(shm.st_mode) && access("/dev/shm", W_OK) == 0)
        snprintf(db, sizeof db, "/dev/shm/cm-test-ops-many-%ld.db", (long)getpid());
    else
        cmt_path(db, sizeof db, "ops-many.db");
    assert_int_equal(cmt_ledger_setup(db, WS, MANY), 0);
    const cm_plugin_api *api = load();
    cm_plugin_config cfg;
    config(&cfg, db, NULL);
    cfg.default_lease_s = 60;
    cfg.keepalive_divisor = 100; /* a real-time tick every 0.6 s; due-ness is on the test clock */
    cm_plugin *p = NULL;
    assert_int_equal(api->open(&cfg, &p, NULL), CM_PLUGIN_OK);
    for (int i = 0; i < MANY; i++) {
        char job[32];
        snprintf(job, sizeof job, "many-%04d", i);
        cm_plugin_job_spec s = by_output(job, "member", 30000);
        assert_int_equal(begin(api, p, &s), CM_PLUGIN_OK);
    }
    /* the test clock stands still: ticks find nothing due and call no ledger */
    char *m = cmt_metrics(api, p);
    assert_int_equal(cmt_sample(m, "cm_plugin_keepalive_transactions_total"), 0);
    assert_int_equal(cmt_sample(m, "cm_plugin_jobs_running"), MANY);
    free(m);
    /* 20 s later every lease is due: the next tick renews all of them in one transaction */
    clock_advance(20000);
    assert_int_equal(wait_for(api, p, "cm_plugin_keepalive_renewals_total", MANY), MANY);
    m = cmt_metrics(api, p);
    assert_int_equal(cmt_sample(m, "cm_plugin_keepalive_transactions_total"), 1);
    assert_int_equal(cmt_sample(m, "cm_plugin_keepalive_ticks_total"), 1);
    assert_int_equal(cmt_sample(m, "cm_plugin_ledger_call_seconds_count{call=\"renew_many\"}"), 1);
    assert_int_equal(cmt_sample(m, "cm_plugin_ledger_call_seconds_count{call=\"renew\"}"), 0);
    free(m);
    cm_plugin_job_state st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    assert_int_equal(api->job_state(p, "many-0000", &st), CM_PLUGIN_OK);
    assert_int_equal(st.lease_until_ms, test_clock(NULL) + 60000);
    assert_int_equal(api->job_state(p, "many-0999", &st), CM_PLUGIN_OK);
    assert_int_equal(st.lease_until_ms, test_clock(NULL) + 60000);
    /* a hook right after the tick finds the lease fresh and writes nothing */
    assert_int_equal(api->stage_begin(p, "many-0001", "transcode"), CM_PLUGIN_OK);
    m = cmt_metrics(api, p);
    assert_int_equal(cmt_sample(m, "cm_plugin_ledger_call_seconds_count{call=\"renew\"}"), 0);
    free(m);
    /* past the lease with no tick (time jumps 61 s at once): the keepalive finds the holds
     * lapsed, counts and logs them once, and the hooks tell the job to stop */
    clock_advance(61000);
    assert_int_equal(wait_for(api, p, "cm_plugin_jobs_lapsed_total", MANY), MANY);
    assert_int_equal(wait_for(api, p, "cm_plugin_keepalive_transactions_total", 2), 2);
    assert_int_equal(api->stage_end(p, "many-0002", "transcode", 1, NULL),
                     CM_PLUGIN_E_LEASE_LAPSED);
    assert_int_equal(end(api, p, "many-0002", 0), CM_PLUGIN_OK); /* its failure: lapsed */
    assert_int_equal(api->job_state(p, "many-0002", &st), CM_PLUGIN_OK);
    assert_int_equal(st.hold_state, CM_PLUGIN_HOLD_LAPSED);
    m = cmt_metrics(api, p);
    assert_int_equal(cmt_sample(m, "cm_plugin_jobs_lapsed_total"), MANY); /* counted once */
    assert_int_equal(cmt_sample(m, "cm_plugin_jobs_released_total"), 0);
    assert_int_equal(cmt_sample(m, "cm_plugin_jobs_running"), 0);
    assert_int_equal(cmt_sample(m, "cm_plugin_keepalive_transactions_total"), 2);
    free(m);
    api->close(p);
    assert_int_equal(cmt_ledger_check(db), 0);
    char side[600];
    snprintf(side, sizeof side, "%s-wal", db);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", db);
    unlink(side);
    unlink(db);
}

/* A ledger whose time runs an hour ahead of the plugin's clock (its workspace's journal
 * is dated an hour later, as with a database server whose clock is ahead): the
 * keepalive measures when a lease is due on its own clock, so it still renews. */
static void test_the_keepalive_renews_on_its_own_clock_when_the_ledgers_runs_ahead(void **state)
{
    (void)state;
    char db[512];
    cm_plugin_config cfg;
    const cm_plugin_api *api = ledger_and_config(db, sizeof db, "ops-skew.db", 5, &cfg, NULL);
    clock_advance(-2 * 3600000); /* the plugin's clock: an hour behind the ledger's */
    cfg.default_lease_s = 60;
    cfg.keepalive_divisor = 100;
    cm_plugin *p = NULL;
    assert_int_equal(api->open(&cfg, &p, NULL), CM_PLUGIN_OK);
    cm_plugin_job_spec s = by_output("skew-1", "member", 30000);
    assert_int_equal(begin(api, p, &s), CM_PLUGIN_OK);
    clock_advance(20000);
    assert_int_equal(wait_for(api, p, "cm_plugin_keepalive_renewals_total", 1), 1);
    api->close(p);
    unlink(db);
}

/* A tick whose ledger call fails (the database locked past the busy timeout) is logged
 * as ledger_retry (warn) and counted; the next tick renews. */
static void test_a_failed_tick_is_a_ledger_retry_and_the_next_tick_renews(void **state)
{
    (void)state;
    char db[512];
    records rs;
    cm_plugin_config cfg;
    const cm_plugin_api *api = ledger_and_config(db, sizeof db, "ops-retry.db", 5, &cfg, &rs);
    cfg.default_lease_s = 60;
    cfg.keepalive_divisor = 100;
    cfg.ledger_busy_timeout_ms = 50;
    cm_plugin *p = NULL;
    assert_int_equal(api->open(&cfg, &p, NULL), CM_PLUGIN_OK);
    cm_plugin_job_spec s = by_output("retry-1", "member", 30000);
    assert_int_equal(begin(api, p, &s), CM_PLUGIN_OK);
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open(db, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    clock_advance(20000);
    assert_true(wait_for(api, p, "cm_plugin_ledger_retries_total", 1) >= 1);
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    assert_int_equal(wait_for(api, p, "cm_plugin_keepalive_renewals_total", 1), 1);
    char *m = cmt_metrics(api, p);
    assert_true(cmt_sample(m, "cm_plugin_ledger_errors_total{code=\"busy\"}") >= 1);
    free(m);
    api->close(p);
    const seen *r = find(&rs, "ledger_retry", "ledger_failure");
    assert_non_null(r);
    assert_int_equal(r->level, CM_PLUGIN_LOG_WARN);
    pthread_mutex_destroy(&rs.mu);
    unlink(db);
}

/* With the keepalive off (as in ABI 1.1) the stage hooks renew, each once a tenth of
 * the lease has passed since the last renewal. */
static void test_without_the_keepalive_the_stage_hooks_renew(void **state)
{
    (void)state;
    char db[512];
    cm_plugin_config cfg;
    const cm_plugin_api *api = ledger_and_config(db, sizeof db, "ops-hooks.db", 5, &cfg, NULL);
    cfg.default_lease_s = 60;
    cfg.keepalive_divisor = -1;
    cm_plugin *p = NULL;
    assert_int_equal(api->open(&cfg, &p, NULL), CM_PLUGIN_OK);
    cm_plugin_job_spec s = by_output("hooks-1", "member", 30000);
    assert_int_equal(begin(api, p, &s), CM_PLUGIN_OK);
    clock_advance(5000); /* under a tenth: nothing to write */
    assert_int_equal(api->stage_begin(p, "hooks-1", "generate"), CM_PLUGIN_OK);
    clock_advance(2000); /* 7 s since the reserve: renewed */
    assert_int_equal(api->stage_end(p, "hooks-1", "generate", 1, NULL), CM_PLUGIN_OK);
    cm_plugin_job_state st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    assert_int_equal(api->job_state(p, "hooks-1", &st), CM_PLUGIN_OK);
    assert_int_equal(st.lease_until_ms, test_clock(NULL) + 60000);
    char *m = cmt_metrics(api, p);
    assert_int_equal(cmt_sample(m, "cm_plugin_ledger_call_seconds_count{call=\"renew\"}"), 1);
    assert_int_equal(cmt_sample(m, "cm_plugin_keepalive_ticks_total"), 0);
    free(m);
    api->close(p);
    unlink(db);
}

/* Jobs keep their own lease: a tick renews the jobs of each lease length in one
 * transaction of their own. */
static void test_a_tick_renews_each_job_to_its_own_lease(void **state)
{
    (void)state;
    char db[512];
    cm_plugin_config cfg;
    const cm_plugin_api *api = ledger_and_config(db, sizeof db, "ops-leases.db", 5, &cfg, NULL);
    cfg.default_lease_s = 60;
    cfg.keepalive_divisor = 100;
    cm_plugin *p = NULL;
    assert_int_equal(api->open(&cfg, &p, NULL), CM_PLUGIN_OK);
    cm_plugin_job_spec s = by_output("lease-60", "member", 30000);
    assert_int_equal(begin(api, p, &s), CM_PLUGIN_OK);
    s = by_output("lease-90", "member", 30000);
    s.lease_s = 90;
    assert_int_equal(begin(api, p, &s), CM_PLUGIN_OK);
    clock_advance(20000);
    assert_int_equal(wait_for(api, p, "cm_plugin_keepalive_renewals_total", 2), 2);
    assert_int_equal(wait_for(api, p, "cm_plugin_keepalive_transactions_total", 2), 2);
    cm_plugin_job_state st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    assert_int_equal(api->job_state(p, "lease-60", &st), CM_PLUGIN_OK);
    assert_int_equal(st.lease_until_ms, test_clock(NULL) + 60000);
    assert_int_equal(api->job_state(p, "lease-90", &st), CM_PLUGIN_OK);
    assert_int_equal(st.lease_until_ms, test_clock(NULL) + 90000);
    api->close(p);
    unlink(db);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* close() wakes the keepalive and joins it: it does not wait for the next tick (here
 * 200 s away; the bound below is 50 times shorter, not a measurement). */
static void test_close_stops_the_keepalive_without_waiting_for_its_tick(void **state)
{
    (void)state;
    char db[512];
    cm_plugin_config cfg;
    const cm_plugin_api *api = ledger_and_config(db, sizeof db, "ops-close.db", 5, &cfg, NULL);
    cfg.default_lease_s = 600;
    cm_plugin *p = NULL;
    assert_int_equal(api->open(&cfg, &p, NULL), CM_PLUGIN_OK);
    cm_plugin_job_spec s = by_output("close-1", "member", 30000);
    assert_int_equal(begin(api, p, &s), CM_PLUGIN_OK);
    double t0 = mono_s();
    api->close(p);
    assert_true(mono_s() - t0 < 4.0);
    unlink(db);
}

/* ---- structured logs ---- */

static void test_log_records_carry_stable_events_and_refusals_are_not_errors(void **state)
{
    (void)state;
    char db[512], junk[512];
    cmt_path(db, sizeof db, "ops-log.db");
    cmt_path(junk, sizeof junk, "not-a-video.mp4");
    FILE *f = fopen(junk, "w");
    assert_non_null(f);
    fputs("this is not a video\n", f);
    fclose(f);
    assert_int_equal(cmt_ledger_setup(db, WS, 2), 0);
    const cm_plugin_api *api = load();
    records rs;
    cm_plugin_config cfg;
    config(&cfg, db, &rs);
    cm_plugin *p = NULL;
    assert_int_equal(api->open(&cfg, &p, NULL), CM_PLUGIN_OK);
    assert_non_null(find(&rs, "open", "ok"));

    cm_plugin_job_spec s = by_output("log-ok", "member", 30000);
    assert_int_equal(begin(api, p, &s), CM_PLUGIN_OK);
    const seen *r = find(&rs, "job_begin", "ok");
    assert_non_null(r);
    assert_int_equal(r->level, CM_PLUGIN_LOG_INFO);
    assert_string_equal(r->job, "log-ok");
    assert_string_equal(r->ws, WS);
    assert_string_equal(r->user, "member");
    assert_int_equal(r->credits, 1);
    assert_int_equal(api->stage_begin(p, "log-ok", "generate"), CM_PLUGIN_OK);
    assert_int_equal(find(&rs, "stage_begin", NULL)->level, CM_PLUGIN_LOG_DEBUG);
    assert_int_equal(api->stage_end(p, "log-ok", "generate", 0, "encoder died"), CM_PLUGIN_OK);
    assert_int_equal(find(&rs, "stage_end", NULL)->level, CM_PLUGIN_LOG_WARN); /* it failed */
    assert_int_equal(end(api, p, "log-ok", 0), CM_PLUGIN_OK);
    r = find(&rs, "release", "ok");
    assert_non_null(r);
    assert_int_equal(r->level, CM_PLUGIN_LOG_INFO);
    assert_string_equal(r->ws, WS);

    s = by_input("log-commit", "owner");
    assert_int_equal(begin(api, p, &s), CM_PLUGIN_OK);
    assert_int_equal(end(api, p, "log-commit", 1), CM_PLUGIN_OK);
    r = find(&rs, "commit", "ok");
    assert_non_null(r);
    assert_int_equal(r->level, CM_PLUGIN_LOG_INFO);
    assert_int_equal(r->credits, 1);

    /* the customer's refusals: info or warn, never error */
    s = by_output("log-poor", "member", 600000); /* 10 credits, 1 left */
    assert_int_equal(begin(api, p, &s), CM_PLUGIN_E_INSUFFICIENT);
    r = find(&rs, "job_refused", "insufficient_credits");
    assert_non_null(r);
    assert_int_equal(r->level, CM_PLUGIN_LOG_INFO);
    assert_string_equal(r->job, "log-poor");
    s = by_output("log-stranger", "mallory", 30000);
    assert_int_equal(begin(api, p, &s), CM_PLUGIN_E_FORBIDDEN);
    assert_int_equal(find(&rs, "job_refused", "forbidden")->level, CM_PLUGIN_LOG_INFO);
    s = by_output("log-junk", "member", 0);
    s.billing = CM_PLUGIN_BY_INPUT;
    s.input_path = junk;
    assert_int_equal(begin(api, p, &s), CM_PLUGIN_E_BAD_FILE);
    assert_int_equal(find(&rs, "job_refused", "bad_file")->level, CM_PLUGIN_LOG_WARN);
    assert_int_equal(api->stage_begin(p, "never-begun", "x"), CM_PLUGIN_E_NO_JOB);
    assert_int_equal(find(&rs, "stage_begin", "no_such_job")->level, CM_PLUGIN_LOG_WARN);
    /* a caller's bug is an error */
    s = by_output("", "member", 30000);
    assert_int_equal(begin(api, p, &s), CM_PLUGIN_E_INVALID);
    assert_int_equal(find(&rs, "job_refused", "invalid_argument")->level, CM_PLUGIN_LOG_ERROR);
    for (int i = 0; i < rs.n; i++) /* nothing else was an error */
        if (rs.r[i].level == CM_PLUGIN_LOG_ERROR)
            assert_string_equal(rs.r[i].code, "invalid_argument");
    api->close(p);
    assert_non_null(find(&rs, "close", "ok"));
    assert_string_equal(api->log_level_name(CM_PLUGIN_LOG_WARN), "warn");
    assert_string_equal(api->log_level_name(CM_PLUGIN_LOG_DEBUG), "debug");
    assert_string_equal(api->log_level_name(42), "unknown");
    pthread_mutex_destroy(&rs.mu);
    unlink(junk);
    unlink(db);
}

static void test_log_min_level_filters_and_the_1_0_callback_still_works(void **state)
{
    (void)state;
    char db[512];
    records rs;
    cm_plugin_config cfg;
    const cm_plugin_api *api = ledger_and_config(db, sizeof db, "ops-level.db", 1, &cfg, &rs);
    cfg.log_min_level = CM_PLUGIN_LOG_WARN;
    cm_plugin *p = NULL;
    assert_int_equal(api->open(&cfg, &p, NULL), CM_PLUGIN_OK);
    cm_plugin_job_spec s = by_output("lvl-1", "member", 30000);
    assert_int_equal(begin(api, p, &s), CM_PLUGIN_OK);
    s = by_output("lvl-2", "member", 30000); /* insufficient: info, filtered */
    assert_int_equal(begin(api, p, &s), CM_PLUGIN_E_INSUFFICIENT);
    assert_int_equal(api->stage_begin(p, "nope", "x"), CM_PLUGIN_E_NO_JOB); /* warn */
    api->close(p);
    assert_int_equal(rs.n, 1);
    assert_string_equal(rs.r[0].code, "no_such_job");
    assert_int_equal(rs.r[0].level, CM_PLUGIN_LOG_WARN);

    /* a host without log_record (1.0, 1.1) gets the same events as (level, message) */
    config(&cfg, db, NULL);
    memset(&rs, 0, sizeof rs);
    pthread_mutex_init(&rs.mu, NULL);
    cfg.log = on_old_log;
    cfg.log_user = &rs;
    cfg.struct_size = (uint32_t)CM_PLUGIN_CONFIG_SIZE_1_0; /* a 1.1 host's config */
    assert_int_equal(api->open(&cfg, &p, NULL), CM_PLUGIN_OK);
    s = by_output("lvl-3", "member", 30000);
    assert_int_equal(begin(api, p, &s), CM_PLUGIN_E_INSUFFICIENT);
    api->close(p);
    assert_true(rs.old_style >= 3); /* open, the refusal, close */
    int infos = 0;
    for (int i = 0; i < rs.old_style; i++) {
        assert_int_not_equal(rs.old_levels[i], CM_PLUGIN_LOG_ERROR);
        infos += rs.old_levels[i] == CM_PLUGIN_LOG_INFO;
    }
    assert_int_equal(infos, rs.old_style);
    /* a level that does not exist is refused */
    config(&cfg, db, NULL);
    cfg.log_min_level = 9;
    cm_plugin_error_info e;
    memset(&e, 0, sizeof e);
    e.struct_size = sizeof e;
    assert_int_equal(api->open(&cfg, &p, &e), CM_PLUGIN_E_INVALID);
    assert_non_null(strstr(e.message, "log_min_level 9"));
    pthread_mutex_destroy(&rs.mu);
    unlink(db);
}

/* ---- metrics ---- */

static void test_metrics_are_prometheus_text_and_count_known_jobs(void **state)
{
    (void)state;
    char db[512];
    cm_plugin_config cfg;
    const cm_plugin_api *api = ledger_and_config(db, sizeof db, "ops-metrics.db", 4, &cfg, NULL);
    cm_plugin *p = NULL;
    assert_int_equal(api->open(&cfg, &p, NULL), CM_PLUGIN_OK);
    /* two committed (1 + 2 credits), one released (1), two refused, one by-input probe */
    cm_plugin_job_spec s = by_input("m-1", "member");
    assert_int_equal(begin(api, p, &s), CM_PLUGIN_OK);
    assert_int_equal(end(api, p, "m-1", 1), CM_PLUGIN_OK);
    s = by_output("m-2", "member", 30000);
    s.billing = CM_PLUGIN_BY_INPUT;
    s.input_path = CMT_SAMPLE("edge-60.6s.mkv");
    assert_int_equal(begin(api, p, &s), CM_PLUGIN_OK);
    assert_int_equal(end(api, p, "m-2", 1), CM_PLUGIN_OK);
    s = by_output("m-3", "owner", 30000);
    assert_int_equal(begin(api, p, &s), CM_PLUGIN_OK);
    assert_int_equal(end(api, p, "m-3", 0), CM_PLUGIN_OK);
    s = by_output("m-4", "owner", 600000);
    assert_int_equal(begin(api, p, &s), CM_PLUGIN_E_INSUFFICIENT);
    s = by_output("m-5", "mallory", 30000);
    assert_int_equal(begin(api, p, &s), CM_PLUGIN_E_FORBIDDEN);

    char *m = cmt_metrics(api, p);
    assert_true(check_exposition(m) > 50);
    assert_int_equal(cmt_sample(m, "cm_plugin_jobs_begun_total"), 3);
    assert_int_equal(cmt_sample(m, "cm_plugin_jobs_committed_total"), 2);
    assert_int_equal(cmt_sample(m, "cm_plugin_jobs_released_total"), 1);
    assert_int_equal(cmt_sample(m, "cm_plugin_jobs_lapsed_total"), 0);
    assert_int_equal(cmt_sample(m, "cm_plugin_jobs_refused_total{code=\"insufficient_credits\"}"),
                     1);
    assert_int_equal(cmt_sample(m, "cm_plugin_jobs_refused_total{code=\"forbidden\"}"), 1);
    assert_int_equal(cmt_sample(m, "cm_plugin_jobs_running"), 0);
    assert_int_equal(cmt_sample(m, "cm_plugin_credits_quoted_total"), 1 + 2 + 1 + 10 + 1);
    assert_int_equal(cmt_sample(m, "cm_plugin_credits_held_total"), 4);
    assert_int_equal(cmt_sample(m, "cm_plugin_credits_charged_total"), 3);
    assert_int_equal(cmt_sample(m, "cm_plugin_credits_released_total"), 1);
    assert_int_equal(cmt_sample(m, "cm_plugin_probe_seconds_count"), 2);
    assert_int_equal(cmt_sample(m, "cm_plugin_probe_read_bytes_count"), 2);
    assert_true(cmt_sample(m, "cm_plugin_probe_read_bytes_sum") > 0);
    assert_int_equal(cmt_sample(m, "cm_plugin_ledger_call_seconds_count{call=\"reserve\"}"), 5);
    assert_int_equal(cmt_sample(m, "cm_plugin_ledger_call_seconds_count{call=\"commit\"}"), 2);
    assert_int_equal(cmt_sample(m, "cm_plugin_ledger_call_seconds_count{call=\"release\"}"), 1);
    assert_non_null(strstr(m, "# TYPE cm_plugin_ledger_call_seconds histogram\n"));
    assert_non_null(strstr(m, "# TYPE cm_plugin_jobs_running gauge\n"));

    /* like snprintf: too small a buffer gets nothing and the size needed */
    size_t need = strlen(m);
    char small[64];
    memset(small, 'x', sizeof small);
    assert_int_equal(api->metrics(p, small, sizeof small), (int64_t)need);
    for (size_t i = 0; i < sizeof small; i++)
        assert_int_equal(small[i], 'x');
    char *exact = malloc(need);
    assert_int_equal(api->metrics(p, exact, need), (int64_t)need); /* no room for the NUL */
    free(exact);
    assert_int_equal(api->metrics(NULL, small, sizeof small), CM_PLUGIN_E_INVALID);
    assert_int_equal(api->metrics(p, NULL, 10), CM_PLUGIN_E_INVALID);
    free(m);
    api->close(p);
    unlink(db);
}

/* The exposition check itself refuses broken text (so it can fail). */
static void test_the_exposition_check_refuses_a_counter_without_type(void **state)
{
    (void)state;
    assert_int_equal(check_exposition("# TYPE a counter\na 1\n"), 1);
    assert_int_equal(check_exposition("a 1\n"), -1);
    assert_int_equal(check_exposition("# TYPE a counter\na{x=\"\\q\"} 1\n"), -1);
    assert_int_equal(check_exposition("# TYPE h histogram\nh_bucket{le=\"1\"} 2\n"
                                      "h_bucket{le=\"+Inf\"} 1\nh_count 1\n"),
                     -1);
}

/* ---- ping ---- */

static void test_ping_reports_a_writable_ledger_and_a_locked_one_with_its_reason(void **state)
{
    (void)state;
    char db[512], out[4096];
    cm_plugin_config cfg;
    const cm_plugin_api *api = ledger_and_config(db, sizeof db, "ops-ping.db", 1, &cfg, NULL);
    cfg.ledger_busy_timeout_ms = 100;
    cm_plugin *p = NULL;
    assert_int_equal(api->open(&cfg, &p, NULL), CM_PLUGIN_OK);
    cm_plugin_error_info e;
    memset(&e, 0, sizeof e);
    e.struct_size = sizeof e;
    assert_int_equal(api->ping(p, &e), CM_PLUGIN_OK);
    assert_int_equal(e.code, CM_PLUGIN_OK);
    assert_non_null(strstr(e.message, "reachable and writable"));
    assert_int_equal(api->ping(p, NULL), CM_PLUGIN_OK);
    /* another process holds the write lock past the timeout */
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open(db, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(api->ping(p, &e), CM_PLUGIN_E_LEDGER);
    assert_int_equal(e.code, CM_PLUGIN_E_LEDGER);
    assert_int_equal(e.cause, CM_PLUGIN_CAUSE_LEDGER);
    assert_string_equal(api->cause_name(e.cause, e.cause_code), "busy");
    assert_non_null(strstr(e.message, "not writable"));
    assert_int_equal(cmt_pipeline(out, sizeof out, db, "--ping", "--ledger-timeout-ms", "100",
                                  (const char *)NULL),
                     1);
    if (!strstr(out, "ping: failed: ledger_failure (busy)"))
        fail_msg("%s", out);
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    assert_int_equal(api->ping(p, &e), CM_PLUGIN_OK);
    assert_int_equal(cmt_pipeline(out, sizeof out, db, "--ping", (const char *)NULL), 0);
    assert_non_null(strstr(out, "ping: ok: ledger reachable and writable"));
    assert_int_equal(cmt_pipeline(out, sizeof out, db, "--ping", "--json", (const char *)NULL), 0);
    assert_non_null(strstr(out, "{\"ok\":true,\"message\":\"ledger reachable and writable"));
    /* bad arguments */
    e.struct_size = 8;
    assert_int_equal(api->ping(p, &e), CM_PLUGIN_E_ABI);
    assert_int_equal(api->ping(NULL, NULL), CM_PLUGIN_E_INVALID);
    char *m = cmt_metrics(api, p);
    assert_int_equal(cmt_sample(m, "cm_plugin_ledger_call_seconds_count{call=\"ping\"}"), 4);
    assert_int_equal(cmt_sample(m, "cm_plugin_ledger_errors_total{code=\"busy\"}"), 1);
    free(m);
    api->close(p);
    unlink(db);
}

/* ---- creation ---- */

static void test_open_refuses_a_missing_ledger_unless_create_is_set(void **state)
{
    (void)state;
    char db[512], out[4096];
    cmt_path(db, sizeof db, "ops-typo.db");
    unlink(db);
    const cm_plugin_api *api = load();
    cm_plugin_config cfg;
    config(&cfg, db, NULL);
    cm_plugin *p = NULL;
    cm_plugin_error_info e;
    memset(&e, 0, sizeof e);
    e.struct_size = sizeof e;
    assert_int_equal(api->open(&cfg, &p, &e), CM_PLUGIN_E_NO_LEDGER);
    assert_null(p);
    assert_int_equal(e.code, CM_PLUGIN_E_NO_LEDGER);
    assert_non_null(strstr(e.message, "create=1"));
    assert_string_equal(api->err_name(CM_PLUGIN_E_NO_LEDGER), "no_such_ledger");
    assert_int_equal(access(db, F_OK), -1); /* nothing was created */
    /* a 1.1 host's config has no create field: no creation either */
    cfg.struct_size = (uint32_t)CM_PLUGIN_CONFIG_SIZE_1_0;
    cfg.create = 1; /* past its struct_size: not read */
    assert_int_equal(api->open(&cfg, &p, NULL), CM_PLUGIN_E_NO_LEDGER);
    assert_int_equal(access(db, F_OK), -1);
    assert_int_equal(
        cmt_pipeline(out, sizeof out, db, "--workspace", WS, "--balance", (const char *)NULL), 1);
    assert_non_null(strstr(out, "no_such_ledger"));
    assert_int_equal(access(db, F_OK), -1);
    /* out-of-range values are refused */
    config(&cfg, db, NULL);
    cfg.create = 2;
    assert_int_equal(api->open(&cfg, &p, NULL), CM_PLUGIN_E_INVALID);
    cfg.create = 0;
    cfg.keepalive_divisor = 1;
    assert_int_equal(api->open(&cfg, &p, NULL), CM_PLUGIN_E_INVALID);
    /* asked for, it is made */
    config(&cfg, db, NULL);
    cfg.create = 1;
    assert_int_equal(api->open(&cfg, &p, NULL), CM_PLUGIN_OK);
    api->close(p);
    assert_int_equal(access(db, F_OK), 0);
    unlink(db);
    assert_int_equal(cmt_pipeline(out, sizeof out, db, "--create", "--ping", (const char *)NULL),
                     0);
    assert_int_equal(access(db, F_OK), 0);
    unlink(db);
}

/* ---- cm-pipeline's options ---- */

static void test_help_lists_every_option_and_usage_errors_are_json_under_json(void **state)
{
    (void)state;
    static const char *const every[] = {"plugin",
                                        "db",
                                        "create",
                                        "workspace",
                                        "user",
                                        "job",
                                        "generate",
                                        "output-extra-ms",
                                        "lease",
                                        "keepalive-divisor",
                                        "stage-sleep",
                                        "fail-at",
                                        "crash-at",
                                        "thumbnail",
                                        "grace-ms",
                                        "clock-offset-s",
                                        "ledger-timeout-ms",
                                        "ledger-pool",
                                        "quote-only",
                                        "balance",
                                        "job-state",
                                        "ping",
                                        "log-format",
                                        "log-level",
                                        "metrics",
                                        "json",
                                        "verbose",
                                        "help"};
    char out[16384];
    char *help[] = {(char *)CMT_PIPELINE, (char *)"--help", NULL};
    assert_int_equal(cmt_runv(out, sizeof out, help), 0);
    for (size_t i = 0; i < sizeof every / sizeof every[0]; i++) {
        char opt[64];
        snprintf(opt, sizeof opt, "  --%s ", every[i]);
        if (!strstr(out, opt))
            fail_msg("--help does not list --%s", every[i]);
    }
    char *bad[] = {(char *)CMT_PIPELINE, (char *)"--json", (char *)"--lease", (char *)"soon", NULL};
    assert_int_equal(cmt_runv(out, sizeof out, bad), 2);
    assert_non_null(
        strstr(out, "{\"ok\":false,\"error\":{\"code\":\"usage\",\"message\":\"--lease"));
    char *unknown[] = {(char *)CMT_PIPELINE, (char *)"--frobnicate", (char *)"--json", NULL};
    assert_int_equal(cmt_runv(out, sizeof out, unknown), 2);
    assert_non_null(strstr(out, "{\"ok\":false,\"error\":{\"code\":\"usage\""));
    assert_non_null(strstr(out, "--frobnicate"));
    char *sleep_bad[] = {(char *)CMT_PIPELINE, (char *)"--stage-sleep", (char *)"transcode", NULL};
    assert_int_equal(cmt_runv(out, sizeof out, sleep_bad), 2);
    assert_non_null(strstr(out, "--stage-sleep needs STAGE:SECONDS"));
    assert_non_null(strstr(out, "usage: cm-pipeline")); /* text: the usage follows */
    char *level_bad[] = {(char *)CMT_PIPELINE, (char *)"--plugin", (char *)"x",
                         (char *)"--ledger",   (char *)"y",        (char *)"--log-level",
                         (char *)"loud",       (char *)"--json",   NULL};
    assert_int_equal(cmt_runv(out, sizeof out, level_bad), 2);
    assert_non_null(strstr(out, "\"--log-level is debug, info, warn or error, not 'loud'\""));
}

/* The ledger's location is --ledger; --db, its 0.2 name, is the same option. */
static void test_pipeline_takes_db_as_the_old_name_of_ledger(void **state)
{
    (void)state;
    char db[512], out[4096];
    cmt_path(db, sizeof db, "ops-oldname.db");
    assert_int_equal(cmt_ledger_setup(db, WS, 5), 0);
    char *old[] = {(char *)CMT_PIPELINE,
                   (char *)"--plugin",
                   (char *)CMT_PLUGIN,
                   (char *)"--db",
                   db,
                   (char *)"--workspace",
                   (char *)WS,
                   (char *)"--balance",
                   NULL};
    assert_int_equal(cmt_runv(out, sizeof out, old), 0);
    char *both[] = {(char *)CMT_PIPELINE,
                    (char *)"--plugin",
                    (char *)CMT_PLUGIN,
                    (char *)"--db",
                    db,
                    (char *)"--ledger",
                    db,
                    (char *)"--balance",
                    NULL};
    assert_int_equal(cmt_runv(out, sizeof out, both), 2);
    char *help[] = {(char *)CMT_PIPELINE, (char *)"--help", NULL};
    assert_int_equal(cmt_runv(out, sizeof out, help), 0);
    assert_non_null(strstr(out, "--ledger LOCATION"));
    unlink(db);
}

static void test_pipeline_writes_json_log_lines_and_a_metrics_file(void **state)
{
    (void)state;
    char db[512], out[512], mfile[512], log[32768];
    cmt_path(db, sizeof db, "ops-e2e.db");
    cmt_path(out, sizeof out, "ops-e2e.mp4");
    cmt_path(mfile, sizeof mfile, "ops-e2e.prom");
    assert_int_equal(cmt_ledger_setup(db, WS, 5), 0);
    assert_int_equal(cmt_pipeline(log, sizeof log, db, "--workspace", WS, "--user", "member",
                                  "--job", "e2e-1", "--log-format", "json", "--metrics", mfile,
                                  CMT_SAMPLE("clip-40s.mp4"), out, (const char *)NULL),
                     0);
    /* info and above, one JSON object per line */
    assert_non_null(strstr(log, "\"level\":\"info\",\"event\":\"job_begin\",\"job\":\"e2e-1\","
                                "\"workspace\":\"ops\",\"user\":\"member\",\"code\":\"ok\""));
    assert_non_null(strstr(log, "\"level\":\"info\",\"event\":\"commit\",\"job\":\"e2e-1\""));
    assert_null(strstr(log, "\"level\":\"debug\""));
    /* what people read says 1 credit */
    assert_non_null(strstr(log, "job e2e-1: holding 1 credit (40000 ms"));
    assert_non_null(strstr(log, "committed, 1 of 1 credit charged"));
    FILE *f = fopen(mfile, "r");
    assert_non_null(f);
    char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    assert_true(check_exposition(text) > 50);
    assert_int_equal(cmt_sample(text, "cm_plugin_jobs_committed_total"), 1);
    assert_int_equal(cmt_sample(text, "cm_plugin_credits_charged_total"), 1);
    /* the ledger handle's own counters: transactions ran, none lost, no reconnect */
    assert_true(cmt_sample(text, "cm_plugin_ledger_transactions_total") > 0);
    assert_int_equal(cmt_sample(text, "cm_plugin_ledger_transaction_retries_total"), 0);
    assert_int_equal(cmt_sample(text, "cm_plugin_ledger_reconnects_total"), 0);
    /* a refused job: an info line, not an error */
    assert_int_equal(cmt_pipeline(log, sizeof log, db, "--workspace", WS, "--user", "mallory",
                                  "--job", "e2e-2", "--log-format", "json",
                                  CMT_SAMPLE("clip-40s.mp4"), out, (const char *)NULL),
                     1);
    assert_non_null(strstr(log, "\"level\":\"info\",\"event\":\"job_refused\",\"job\":\"e2e-2\""));
    assert_non_null(strstr(log, "\"code\":\"forbidden\""));
    assert_null(strstr(log, "\"level\":\"error\""));
    unlink(mfile);
    unlink(out);
    char thumb[600];
    snprintf(thumb, sizeof thumb, "%.*s.png", (int)(strlen(out) - 4), out);
    unlink(thumb);
    unlink(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_thousand_jobs_renew_in_one_ledger_transaction_per_tick),
        cmocka_unit_test(test_the_keepalive_renews_on_its_own_clock_when_the_ledgers_runs_ahead),
        cmocka_unit_test(test_a_failed_tick_is_a_ledger_retry_and_the_next_tick_renews),
        cmocka_unit_test(test_without_the_keepalive_the_stage_hooks_renew),
        cmocka_unit_test(test_a_tick_renews_each_job_to_its_own_lease),
        cmocka_unit_test(test_close_stops_the_keepalive_without_waiting_for_its_tick),
        cmocka_unit_test(test_log_records_carry_stable_events_and_refusals_are_not_errors),
        cmocka_unit_test(test_log_min_level_filters_and_the_1_0_callback_still_works),
        cmocka_unit_test(test_metrics_are_prometheus_text_and_count_known_jobs),
        cmocka_unit_test(test_the_exposition_check_refuses_a_counter_without_type),
        cmocka_unit_test(test_ping_reports_a_writable_ledger_and_a_locked_one_with_its_reason),
        cmocka_unit_test(test_open_refuses_a_missing_ledger_unless_create_is_set),
        cmocka_unit_test(test_help_lists_every_option_and_usage_errors_are_json_under_json),
        cmocka_unit_test(test_pipeline_takes_db_as_the_old_name_of_ledger),
        cmocka_unit_test(test_pipeline_writes_json_log_lines_and_a_metrics_file),
    };
    if (getenv("CMT_FILTER"))
        cmocka_set_test_filter(getenv("CMT_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
