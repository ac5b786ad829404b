/* SPDX-License-Identifier: MIT */
/*
 * plugin_ops.c - what an operator runs the plugin with (ABI 1.2): the lease keepalive
 * thread, structured log records, metrics in the Prometheus text format, and ping.
 *
 * Keepalive. One thread per handle sleeps on a condition variable (CLOCK_MONOTONIC)
 * until its next tick: every lease / keepalive_divisor of the shortest running job's
 * lease. A tick renews, in ONE cm_ledger_renew_many() call (one write transaction) per
 * lease length among them (one when the jobs share the handle's default lease),
 * every running job whose lease was last renewed (by a tick, a hook or the reserve) at
 * least half a tick ago, measured on the plugin's clock alone (so hooks and ticks do
 * not renew twice, a frozen test clock renews nothing, and a ledger server whose clock
 * is ahead cannot make a renewal late). It holds the handle's mutex only to read and update the job
 * table, never across the ledger call. job_begin wakes it (a new job may need an earlier tick);
 * close wakes it to stop and joins it, without waiting for a tick.
 *
 * Metrics are counters and histograms under their own mutex (a leaf lock); the text
 * is formatted from a snapshot, outside it.
 */
#include "plugin_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- log records ------------------------------------------------------------------ */

const char *cm__log_level_name(int level)
{
    switch (level) {
    case CM_PLUGIN_LOG_DEBUG:
        return "debug";
    case CM_PLUGIN_LOG_INFO:
        return "info";
    case CM_PLUGIN_LOG_WARN:
        return "warn";
    case CM_PLUGIN_LOG_ERROR:
        return "error";
    default:
        return "unknown";
    }
}

/* Severity, least to most: debug 0, info 1, warn 2, error 3. */
static int severity(int level)
{
    switch (level) {
    case CM_PLUGIN_LOG_DEBUG:
        return 0;
    case CM_PLUGIN_LOG_INFO:
        return 1;
    case CM_PLUGIN_LOG_WARN:
        return 2;
    default:
        return 3;
    }
}

int cm__level_of(int code)
{
    switch (code) {
    case CM_PLUGIN_OK:
        return CM_PLUGIN_LOG_DEBUG;
    case CM_PLUGIN_E_INSUFFICIENT: /* the customer's business */
    case CM_PLUGIN_E_FORBIDDEN:
        return CM_PLUGIN_LOG_INFO;
    case CM_PLUGIN_E_BAD_FILE: /* the customer's input, or a retry gone wrong */
    case CM_PLUGIN_E_BAD_OUTPUT:
    case CM_PLUGIN_E_CONFLICT:
    case CM_PLUGIN_E_JOB_CLOSED:
    case CM_PLUGIN_E_LEASE_LAPSED:
    case CM_PLUGIN_E_NO_JOB:
        return CM_PLUGIN_LOG_WARN;
    default: /* storage, memory, a caller's or the plugin's bug, no ledger: act on it */
        return CM_PLUGIN_LOG_ERROR;
    }
}

void cm__log_event(cm_plugin *p, int level, const cm__ev *ev, const char *fmt, ...)
{
    if (!p || (!p->log && !p->log_record) || severity(level) < severity(p->log_min_level))
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!p->log_record) {
        p->log(p->log_user, level, msg);
        return;
    }
    cm_plugin_log_record r = {
        .struct_size = sizeof r,
        .level = level,
        .event = ev->event ? ev->event : "",
        .job = ev->job ? ev->job : "",
        .workspace = ev->ws ? ev->ws : "",
        .user = ev->user ? ev->user : "",
        .code = ev->code,
        .code_name = cmp_err_name(ev->code),
        .cause = ev->cause,
        .cause_code = ev->cause_code,
        .message = msg,
        .time_ms = cmp_now_ms(p),
        .credits = ev->credits,
    };
    p->log_record(p->log_user, &r);
}

/* ---- metrics -------------------------------------------------------------------------- */

int64_t cm__mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const double probe_s_bounds[CM__HIST_BUCKETS] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                        0.25,  0.5,   1,    2.5,   5,    10};
static const double bytes_bounds[CM__HIST_BUCKETS] = {
    4096,     16384,    65536,     262144,     1048576,     4194304,
    16777216, 67108864, 268435456, 1073741824, 4294967296., 17179869184.};
static const double ledger_s_bounds[CM__HIST_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                         0.05,   0.1,   0.25,   0.5,   1,    5};

static const char *const ledger_call_names[CM__LC_COUNT] = {
    [CM__LC_RESERVE] = "reserve",
    [CM__LC_RENEW] = "renew",
    [CM__LC_RENEW_MANY] = "renew_many",
    [CM__LC_COMMIT] = "commit",
    [CM__LC_RELEASE] = "release",
    [CM__LC_QUOTE] = "quote",
    [CM__LC_BALANCE] = "balance",
    [CM__LC_JOB_INFO] = "job_info",
    [CM__LC_PING] = "ping",
};

static void observe(cm__hist *h, const double *bounds, double v)
{
    h->count++;
    h->sum += v;
    for (int i = 0; i < CM__HIST_BUCKETS; i++) {
        if (v <= bounds[i]) {
            h->bucket[i]++;
            return;
        }
    }
}

/* Refusals of a customer are not ledger errors an operator counts. */
static int ledger_error_counted(int rc)
{
    return rc == CM_LEDGER_E_BUSY || rc == CM_LEDGER_E_STORAGE || rc == CM_LEDGER_E_NOMEM ||
           rc == CM_LEDGER_E_UNAVAILABLE || rc == CM_LEDGER_E_INVALID ||
           rc == CM_LEDGER_E_UNSUPPORTED;
}

void cm__ledger_timed(cm_plugin *p, int call, int64_t start_ns, int ledger_rc)
{
    double s = (double)(cm__mono_ns() - start_ns) / 1e9;
    CM__COUNT(p, {
        observe(&m_->ledger_s[call], ledger_s_bounds, s);
        if (ledger_error_counted(ledger_rc) && -ledger_rc < CM__CODES)
            m_->ledger_errors[-ledger_rc]++;
    });
}

void cm__count_probe(cm_plugin *p, int64_t start_ns, int64_t bytes_read)
{
    double s = (double)(cm__mono_ns() - start_ns) / 1e9;
    CM__COUNT(p, {
        observe(&m_->probe_s, probe_s_bounds, s);
        observe(&m_->probe_bytes, bytes_bounds, (double)(bytes_read > 0 ? bytes_read : 0));
    });
}

/* A growing string; on allocation failure it stops growing and remembers it. */
typedef struct text {
    char *s;
    size_t len, cap;
    int oom;
} text;

__attribute__((format(printf, 2, 3))) static void put(text *t, const char *fmt, ...)
{
    if (t->oom)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->oom = 1;
        return;
    }
    if (t->s && t->len + (size_t)n < t->cap) {
        t->len += (size_t)n;
        return;
    }
    size_t cap = t->cap ? t->cap : 4096;
    while (cap <= t->len + (size_t)n)
        cap *= 2;
    char *s = realloc(t->s, cap);
    if (!s) {
        t->oom = 1;
        return;
    }
    t->s = s;
    t->cap = cap;
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

/* A label value as the exposition format wants it: backslash, double quote and line
 * feed escaped. */
static void put_label(text *t, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            put(t, "\\\\");
        else if (*v == '"')
            put(t, "\\\"");
        else if (*v == '\n')
            put(t, "\\n");
        else
            put(t, "%c", *v);
    }
}

static void head(text *t, const char *name, const char *type, const char *help)
{
    put(t, "# HELP cm_plugin_%s %s\n# TYPE cm_plugin_%s %s\n", name, help, name, type);
}

static void counter(text *t, const char *name, const char *help, uint64_t v)
{
    head(t, name, "counter", help);
    put(t, "cm_plugin_%s %llu\n", name, (unsigned long long)v);
}

/* One histogram's series; label is "" or 'call="..."' already escaped. */
static void hist_series(text *t, const char *name, const char *label, const cm__hist *h,
                        const double *bounds, int integer_sum)
{
    uint64_t cum = 0;
    for (int i = 0; i < CM__HIST_BUCKETS; i++) {
        cum += h->bucket[i];
        put(t, "cm_plugin_%s_bucket{%s%sle=\"%.10g\"} %llu\n", name, label, label[0] ? "," : "",
            bounds[i], (unsigned long long)cum);
    }
    put(t, "cm_plugin_%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, label, label[0] ? "," : "",
        (unsigned long long)h->count);
    if (integer_sum)
        put(t, "cm_plugin_%s_sum%s%s%s %.0f\n", name, label[0] ? "{" : "", label,
            label[0] ? "}" : "", h->sum);
    else
        put(t, "cm_plugin_%s_sum%s%s%s %.9f\n", name, label[0] ? "{" : "", label,
            label[0] ? "}" : "", h->sum);
    put(t, "cm_plugin_%s_count%s%s%s %llu\n", name, label[0] ? "{" : "", label, label[0] ? "}" : "",
        (unsigned long long)h->count);
}

/* code="name" with the name escaped, into buf. */
static void code_label(char *buf, size_t cap, const char *name)
{
    text t = {0};
    put(&t, "code=\"");
    put_label(&t, name);
    put(&t, "\"");
    snprintf(buf, cap, "%s", t.s && !t.oom ? t.s : "code=\"unknown\"");
    free(t.s);
}

int64_t cm__metrics_text(cm_plugin *p, char *buf, size_t cap)
{
    if (!p || (!buf && cap > 0))
        return CM_PLUGIN_E_INVALID;
    cm__metrics m;
    pthread_mutex_lock(&p->metrics_mu);
    m = p->m;
    pthread_mutex_unlock(&p->metrics_mu);
    uint64_t running = 0;
    pthread_mutex_lock(&p->mu);
    for (const cmp_job *j = p->jobs; j; j = j->next)
        running += !j->committed && !j->lapsed;
    pthread_mutex_unlock(&p->mu);
    cm__pool_stats ls;
    cm__pool_read(p, &ls); /* the ledger's counters summed over the pool's handles */

    text t = {0};
    char label[128];
    counter(&t, "jobs_begun_total", "Jobs whose credits were held by job_begin.", m.begun);
    counter(&t, "jobs_committed_total", "Jobs charged by job_end.", m.committed);
    counter(&t, "jobs_released_total", "Jobs whose hold was given back by job_end.", m.released);
    counter(&t, "jobs_lapsed_total", "Running jobs whose hold lapsed (lease not renewed).",
            m.lapsed);
    head(&t, "jobs_refused_total", "counter", "job_begin refusals, by the plugin's error code.");
    for (int c = 1; c < CM__CODES; c++) {
        if (!m.refused[c])
            continue;
        code_label(label, sizeof label, cmp_err_name(-c));
        put(&t, "cm_plugin_jobs_refused_total{%s} %llu\n", label, (unsigned long long)m.refused[c]);
    }
    head(&t, "jobs_running", "gauge", "Jobs begun on this handle and not ended.");
    put(&t, "cm_plugin_jobs_running %llu\n", (unsigned long long)running);
    counter(&t, "credits_quoted_total", "Credits of every job priced (job_begin and quote).",
            (uint64_t)m.credits_quoted);
    counter(&t, "credits_held_total", "Credits held by new holds.", (uint64_t)m.credits_held);
    counter(&t, "credits_charged_total", "Credits charged by commits.",
            (uint64_t)m.credits_charged);
    counter(&t, "credits_released_total", "Credits given back (releases, lapses, partial commits).",
            (uint64_t)m.credits_released);
    head(&t, "probe_seconds", "histogram", "Time to measure one file.");
    hist_series(&t, "probe_seconds", "", &m.probe_s, probe_s_bounds, 0);
    head(&t, "probe_read_bytes", "histogram", "Bytes read to measure one file.");
    hist_series(&t, "probe_read_bytes", "", &m.probe_bytes, bytes_bounds, 1);
    head(&t, "ledger_call_seconds", "histogram", "Latency of ledger calls, by call.");
    for (int c = 0; c < CM__LC_COUNT; c++) {
        text l = {0};
        put(&l, "call=\"");
        put_label(&l, ledger_call_names[c]);
        put(&l, "\"");
        hist_series(&t, "ledger_call_seconds", l.s && !l.oom ? l.s : "call=\"unknown\"",
                    &m.ledger_s[c], ledger_s_bounds, 0);
        free(l.s);
    }
    head(&t, "ledger_errors_total", "counter",
         "Ledger calls that failed for an operator's reason, by the ledger's code.");
    for (int c = 1; c < CM__CODES; c++) {
        if (!m.ledger_errors[c])
            continue;
        code_label(label, sizeof label, cm_ledger_err_name(-c));
        put(&t, "cm_plugin_ledger_errors_total{%s} %llu\n", label,
            (unsigned long long)m.ledger_errors[c]);
    }
    counter(&t, "keepalive_ticks_total", "Keepalive ticks that had leases to renew.", m.ka_ticks);
    counter(&t, "keepalive_renewals_total", "Leases renewed by the keepalive.", m.ka_renewals);
    counter(&t, "keepalive_transactions_total",
            "Ledger transactions the keepalive used (one per tick).", m.ka_transactions);
    counter(&t, "ledger_retries_total", "Keepalive renewals tried again after a ledger failure.",
            m.retries);
    counter(&t, "ledger_transactions_total", "Ledger transactions begun (every attempt).",
            (uint64_t)ls.transactions);
    counter(&t, "ledger_transaction_retries_total",
            "Ledger transactions run again after losing a race to a concurrent one.",
            (uint64_t)ls.retries);
    counter(&t, "ledger_reconnects_total",
            "Connections to the ledger's server made again after one was lost.",
            (uint64_t)ls.reconnects);
    head(&t, "ledger_pool_size", "gauge",
         "Ledger connections this handle may open (ledger_pool_size).");
    put(&t, "cm_plugin_ledger_pool_size %d\n", ls.size);
    head(&t, "ledger_pool_open", "gauge", "Ledger connections open (opened as calls needed them).");
    put(&t, "cm_plugin_ledger_pool_open %d\n", ls.opened);
    head(&t, "ledger_pool_in_use", "gauge", "Ledger connections checked out by a call now.");
    put(&t, "cm_plugin_ledger_pool_in_use %d\n", ls.in_use);
    head(&t, "ledger_pool_in_use_max", "gauge",
         "The most ledger connections checked out at once since the handle opened.");
    put(&t, "cm_plugin_ledger_pool_in_use_max %d\n", ls.high_water);
    counter(&t, "ledger_pool_checkouts_total", "Ledger calls that took a connection of the pool.",
            ls.checkouts);
    counter(&t, "ledger_pool_waits_total",
            "Ledger calls that waited because every connection of the pool was busy.", ls.waits);
    head(&t, "ledger_pool_wait_seconds_total", "counter",
         "Time ledger calls spent waiting for a connection of the pool.");
    put(&t, "cm_plugin_ledger_pool_wait_seconds_total %.9f\n", (double)ls.wait_ns / 1e9);
    counter(&t, "ledger_pool_open_failures_total",
            "Connections the pool could not open when calls needed another (they waited).",
            ls.open_failures);
    if (t.oom || !t.s) {
        free(t.s);
        return CM_PLUGIN_E_NOMEM;
    }
    if (t.len < cap)
        memcpy(buf, t.s, t.len + 1);
    free(t.s);
    return (int64_t)t.len;
}

/* ---- ping --------------------------------------------------------------------------- */

int cm__ping(cm_plugin *p, cm_plugin_error_info *out)
{
    if (!p)
        return CM_PLUGIN_E_INVALID;
    if (out && out->struct_size < CM_PLUGIN_ERROR_INFO_SIZE_1_0)
        return cmp_fail(p, CM_PLUGIN_E_ABI, 0, 0, "ping: out struct_size below ABI 1.0");
    cm_plugin_error_info e = {sizeof e, CM_PLUGIN_OK, 0, 0, ""};
    char why[CM__WHY];
    cm_ledger *l = cm__ledger_get(p);
    int64_t t0 = cm__mono_ns(), latency = -1;
    int rc = cm_ledger_ping(l, &latency);
    cm__ledger_timed(p, CM__LC_PING, t0, rc);
    cm__ledger_put(p, l, rc, why, sizeof why);
    long long ms = (long long)latency;
    cm__ev ev = {.event = "ping", .credits = -1};
    if (rc == CM_LEDGER_OK) {
        snprintf(e.message, sizeof e.message, "ledger reachable and writable (%lld ms)", ms);
        cm__log_event(p, CM_PLUGIN_LOG_DEBUG, &ev, "%s", e.message);
    } else {
        e.code = rc == CM_LEDGER_E_NOMEM ? CM_PLUGIN_E_NOMEM : CM_PLUGIN_E_LEDGER;
        e.cause = CM_PLUGIN_CAUSE_LEDGER;
        e.cause_code = rc;
        snprintf(e.message, sizeof e.message,
                 "ledger not reachable or not writable (%s, %lld ms): %s", cm_ledger_err_name(rc),
                 ms, why);
        cm__fail_ev(p, &ev, e.code, e.cause, e.cause_code, "%s", e.message);
    }
    if (out)
        cmp_copy_out(out, &e, sizeof e);
    return e.code;
}

/* ---- keepalive --------------------------------------------------------------------- */

static int64_t mono_ms(void)
{
    return cm__mono_ns() / 1000000;
}

/* The tick period: lease / divisor of the shortest lease among running jobs, at least
 * 50 ms; -1 when no job runs. Under p->mu. */
static int64_t period_locked(const cm_plugin *p)
{
    int64_t best = -1;
    for (const cmp_job *j = p->jobs; j; j = j->next) {
        if (j->committed || j->lapsed)
            continue;
        int64_t t = j->lease_s * 1000 / p->keepalive_divisor;
        if (best < 0 || t < best)
            best = t;
    }
    return best < 0 ? -1 : best < 50 ? 50 : best;
}

/* One due job of a tick. */
typedef struct due {
    char *id;
    int64_t lease_s;
} due;

static int by_lease(const void *x, const void *y)
{
    const due *a = x, *b = y;
    return (a->lease_s > b->lease_s) - (a->lease_s < b->lease_s);
}

/* The jobs of a tick whose lease is due (renewed at least half a period ago, by a tick,
 * a hook or the reserve, on the plugin's clock), by lease; *n of them. Under p->mu. */
static due *collect_due_locked(const cm_plugin *p, int64_t now, size_t *n)
{
    size_t cap = 0;
    due *d = NULL;
    *n = 0;
    for (const cmp_job *j = p->jobs; j; j = j->next) {
        if (j->committed || j->lapsed ||
            now - j->renewed_ms < j->lease_s * 500 / p->keepalive_divisor)
            continue;
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            due *grown = realloc(d, ncap * sizeof *d);
            if (!grown)
                break; /* renew what fits; the rest next tick */
            d = grown;
            cap = ncap;
        }
        if (!(d[*n].id = strdup(j->id)))
            break;
        d[(*n)++].lease_s = j->lease_s;
    }
    if (*n > 1)
        qsort(d, *n, sizeof *d, by_lease);
    return d;
}

/* After a renewal of d[0..n): the renewed jobs' time, and the lapsed ones marked,
 * counted and logged once. */
static void after_renewal(cm_plugin *p, const due *d, const int *results, size_t n, int64_t now)
{
    for (size_t i = 0; i < n; i++) {
        char *ws = NULL, *user = NULL;
        int64_t credits = 0;
        int lapsed_now = 0;
        pthread_mutex_lock(&p->mu);
        for (cmp_job *j = p->jobs; j; j = j->next) {
            if (strcmp(j->id, d[i].id) != 0)
                continue;
            if (results[i] == CM_LEDGER_OK) {
                j->renewed_ms = now; /* asked at or after now: never later than it was */
            } else if (results[i] == CM_LEDGER_E_LEASE_EXPIRED && !j->lapsed) {
                j->lapsed = lapsed_now = 1;
                credits = j->credits;
                ws = strdup(j->ws);
                user = strdup(j->user);
            }
            break;
        }
        pthread_mutex_unlock(&p->mu);
        if (lapsed_now) {
            CM__COUNT(p, (m_->lapsed++, m_->credits_released += credits));
            cm__ev ev = {.event = "lease_lapsed",
                         .job = d[i].id,
                         .ws = ws,
                         .user = user,
                         .code = CM_PLUGIN_E_LEASE_LAPSED,
                         .cause = CM_PLUGIN_CAUSE_LEDGER,
                         .cause_code = CM_LEDGER_E_LEASE_EXPIRED,
                         .credits = credits};
            cm__log_event(p, CM_PLUGIN_LOG_WARN, &ev,
                          "job %s: its hold lapsed before the keepalive renewed it; %lld credits "
                          "went back and the job must stop",
                          d[i].id, (long long)credits);
        }
        free(ws);
        free(user);
    }
}

/* Renews the due jobs of d[0..n) that share d[0]'s lease in one ledger call. */
static void renew_group(cm_plugin *p, const due *d, size_t n, int64_t now)
{
    int *results = calloc(n, sizeof *results);
    const char **ids = calloc(n, sizeof *ids);
    int rc = CM_LEDGER_E_NOMEM;
    char why[CM__WHY] = "out of memory";
    if (results && ids) {
        for (size_t i = 0; i < n; i++)
            ids[i] = d[i].id;
        cm_ledger *l = cm__ledger_get(p);
        int64_t t0 = cm__mono_ns();
        rc = cm_ledger_renew_many(l, ids, n, d[0].lease_s, results);
        cm__ledger_timed(p, CM__LC_RENEW_MANY, t0, rc);
        cm__ledger_put(p, l, rc, why, sizeof why);
    }
    /* the jobs first, the counters after: a host that reads the metrics sees ticks that
     * are over */
    size_t renewed = 0;
    if (rc == CM_LEDGER_OK) {
        after_renewal(p, d, results, n, now);
        for (size_t i = 0; i < n; i++)
            renewed += results[i] == CM_LEDGER_OK;
    }
    CM__COUNT(p, {
        m_->ka_transactions += results && ids;
        if (rc == CM_LEDGER_OK)
            m_->ka_renewals += renewed;
        else
            m_->retries += n;
    });
    if (rc != CM_LEDGER_OK) {
        cm__ev ev = {.event = "ledger_retry",
                     .cause = CM_PLUGIN_CAUSE_LEDGER,
                     .cause_code = rc,
                     .code = CM_PLUGIN_E_LEDGER,
                     .credits = -1};
        cm__log_event(p, CM_PLUGIN_LOG_WARN, &ev,
                      "keepalive: renewing %zu leases failed (%s: %s); trying again next tick", n,
                      cm_ledger_err_name(rc), why);
    } else {
        cm__ev ev = {.event = "renew", .credits = -1};
        cm__log_event(p, CM_PLUGIN_LOG_DEBUG, &ev,
                      "keepalive: %zu of %zu leases renewed in one ledger transaction", renewed, n);
    }
    free(results);
    free(ids);
}

/* Renews every due job: one ledger call per lease length among them (one, when the
 * handle's jobs share a lease). Called and returns with p->mu held; drops it around the
 * ledger calls. */
static void tick_locked(cm_plugin *p)
{
    int64_t now = cmp_now_ms(p);
    size_t n;
    due *d = collect_due_locked(p, now, &n);
    if (n == 0) {
        free(d);
        return;
    }
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < n;) {
        size_t k = i + 1;
        while (k < n && d[k].lease_s == d[i].lease_s)
            k++;
        renew_group(p, d + i, k - i, now);
        i = k;
    }
    CM__COUNT(p, m_->ka_ticks++);
    for (size_t i = 0; i < n; i++)
        free(d[i].id);
    free(d);
    pthread_mutex_lock(&p->mu);
}

static void *keepalive_main(void *arg)
{
    cm_plugin *p = arg;
    int64_t next = -1; /* monotonic ms of the next tick, -1 none planned */
    pthread_mutex_lock(&p->mu);
    while (!p->ka_stop) {
        int64_t period = period_locked(p);
        if (period < 0) {
            next = -1;
            pthread_cond_wait(&p->ka_cond, &p->mu);
            continue;
        }
        int64_t now = mono_ms();
        if (next < 0 || next > now + period)
            next = now + period; /* a new, shorter lease brings the tick forward */
        if (now < next) {
            struct timespec ts = {(time_t)(next / 1000), (long)(next % 1000) * 1000000};
            pthread_cond_timedwait(&p->ka_cond, &p->mu, &ts);
            continue; /* woken, timed out or spurious: look again */
        }
        tick_locked(p);
        next = mono_ms() + period_locked(p);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int cm__keepalive_start(cm_plugin *p)
{
    if (p->keepalive_divisor <= 0)
        return 0;
    pthread_condattr_t a;
    if (pthread_condattr_init(&a) != 0)
        return -1;
    int rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&p->ka_cond, &a);
    pthread_condattr_destroy(&a);
    if (rc != 0)
        return -1;
    if (pthread_create(&p->ka_thread, NULL, keepalive_main, p) != 0) {
        pthread_cond_destroy(&p->ka_cond);
        return -1;
    }
    p->ka_running = 1;
    return 0;
}

void cm__keepalive_wake(cm_plugin *p)
{
    if (!p->ka_running)
        return;
    pthread_mutex_lock(&p->mu);
    pthread_cond_signal(&p->ka_cond);
    pthread_mutex_unlock(&p->mu);
}

void cm__keepalive_stop(cm_plugin *p)
{
    if (!p->ka_running)
        return;
    pthread_mutex_lock(&p->mu);
    p->ka_stop = 1;
    pthread_cond_signal(&p->ka_cond);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->ka_thread, NULL);
    pthread_cond_destroy(&p->ka_cond);
    p->ka_running = 0;
}
