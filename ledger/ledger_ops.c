/* SPDX-License-Identifier: MIT */
/*
 * ledger_ops.c - what running the ledger in production needs (issue 15): the event
 * outbox (events written in the movement's transaction, low-balance alerts, reading them
 * with a cursor), renewing many leases in one transaction, the gauges, a health ping and
 * a streaming export of the journal.
 *
 * Events. Every commit, release, lapse, refund, purchase and plan change writes one row
 * of `events` in the transaction that writes the movement (cm__event), tagged with the
 * journal operation number of the movement, so `check` can prove that every movement
 * journaled since schema v4 has its event. A workspace with an alert (alerts: below N,
 * armed) is looked at once per call that moved its credits (cm__alert_flush, at the end of
 * the call or when the call moves on to another workspace): available < N while armed
 * writes a low_balance event and disarms it; available >= N re-arms it.
 */
#include "ledger_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- a JSON object in a fixed buffer (event data) ---- */

typedef struct jbuf {
    char s[8192]; /* the longest: ids of 255 bytes and a reason of 1000, escaped */
    size_t n;
    int full;
} jbuf;

static void jb_raw(jbuf *b, const char *t)
{
    size_t k = strlen(t);
    if (b->n + k + 2 >= sizeof b->s) {
        b->full = 1;
        return;
    }
    memcpy(b->s + b->n, t, k);
    b->n += k;
    b->s[b->n] = 0;
}

/* A JSON string; texts are UTF-8 without control characters (cm__text_plain), so only
 * the quote and the backslash need escaping. */
static void jb_quoted(jbuf *b, const char *v)
{
    if (!v) {
        jb_raw(b, "null");
        return;
    }
    jb_raw(b, "\"");
    char one[3] = {0};
    for (const char *p = v; *p && !b->full; p++) {
        if (*p == '"' || *p == '\\') {
            one[0] = '\\';
            one[1] = *p;
        } else if ((unsigned char)*p < 0x20) {
            one[0] = ' ';
            one[1] = 0;
        } else {
            one[0] = *p;
            one[1] = 0;
        }
        jb_raw(b, one);
    }
    jb_raw(b, "\"");
}

static void jb_key(jbuf *b, const char *k)
{
    jb_raw(b, b->n <= 1 ? "" : ", ");
    jb_quoted(b, k);
    jb_raw(b, ": ");
}

static void jb_str(jbuf *b, const char *k, const char *v)
{
    jb_key(b, k);
    jb_quoted(b, v);
}

static void jb_int(jbuf *b, const char *k, int64_t v)
{
    char t[32];
    snprintf(t, sizeof t, "%lld", (long long)v);
    jb_key(b, k);
    jb_raw(b, t);
}

static void jb_begin(jbuf *b, const char *ws)
{
    b->n = 0;
    b->full = 0;
    b->s[0] = 0;
    jb_raw(b, "{");
    jb_str(b, "workspace", ws);
}

static int jb_end(cm_tx *tx, jbuf *b)
{
    jb_raw(b, "}");
    if (b->full)
        return cm__ledger_fail(tx->l, CM_LEDGER_E_STORAGE,
                               "internal error: an event's data outgrew its buffer");
    return CM_LEDGER_OK;
}

/* ---- writing events ---- */

static int event_insert(cm_tx *tx, const char *ws, const char *type, const char *job, int64_t at_ms,
                        const jbuf *data)
{
    int64_t op = 0;
    int rc = cm__journal_op(tx, ws, &op);
    if (rc)
        return rc;
    return CM_RUN(tx, CM_Q_EVENT_INSERT, NULL, NULL, CM_I(at_ms), CM_T(ws), CM_I(op), CM_T(type),
                  job ? CM_T(job) : CM_N, CM_T(data->s));
}

int cm__event_hold(cm_tx *tx, const cm_hold_row *h, int state, int64_t charge, int64_t at_ms,
                   const char *actor, const char *commit_note)
{
    const char *type = state == CM_LEDGER_COMMITTED ? "commit"
                       : state == CM_LEDGER_LAPSED  ? "lapse"
                                                    : "release";
    jbuf b;
    jb_begin(&b, h->ws);
    jb_str(&b, "job", h->job);
    jb_str(&b, "user", h->user);
    jb_int(&b, "held", h->credits);
    jb_int(&b, "charged", charge);
    jb_int(&b, "released", h->credits - charge);
    jb_str(&b, "actor", actor);
    if (state == CM_LEDGER_LAPSED)
        jb_int(&b, "lease_until_ms", h->lease_until_ms);
    if (state == CM_LEDGER_COMMITTED)
        jb_str(&b, "note", commit_note);
    int rc = jb_end(tx, &b);
    return rc ? rc : event_insert(tx, h->ws, type, h->job, at_ms, &b);
}

int cm__event_refund(cm_tx *tx, const char *ws, const char *job, int64_t credits, int64_t to_source,
                     int64_t refund_grant, int64_t total, const char *reason,
                     const char *operator_id, const char *ref)
{
    jbuf b;
    jb_begin(&b, ws);
    jb_str(&b, "job", job);
    jb_int(&b, "credits", credits);
    jb_int(&b, "to_source", to_source);
    jb_key(&b, "refund_grant");
    if (refund_grant >= 0) {
        char t[32];
        snprintf(t, sizeof t, "%lld", (long long)refund_grant);
        jb_raw(&b, t);
    } else {
        jb_raw(&b, "null");
    }
    jb_int(&b, "total_refunded", total);
    jb_str(&b, "reason", reason);
    jb_str(&b, "operator", operator_id);
    jb_str(&b, "ref", ref);
    int rc = jb_end(tx, &b);
    return rc ? rc : event_insert(tx, ws, "refund", job, tx->now, &b);
}

int cm__event_purchase(cm_tx *tx, const cm_grant_row *g, int64_t credits, const char *as_user,
                       const char *ref)
{
    jbuf b;
    jb_begin(&b, g->ws);
    jb_int(&b, "grant", g->id);
    jb_int(&b, "credits", credits);
    jb_int(&b, "unit_minor", g->unit_minor);
    jb_int(&b, "total_minor", g->total_minor);
    jb_str(&b, "currency", g->currency);
    jb_str(&b, "user", as_user);
    jb_str(&b, "ref", ref);
    int rc = jb_end(tx, &b);
    return rc ? rc : event_insert(tx, g->ws, "purchase", NULL, tx->now, &b);
}

int cm__event_plan(cm_tx *tx, const char *ws, int64_t at_ms, const char *action, int64_t credits,
                   int interval, const char *tier, int outcome, int64_t granted,
                   int64_t effective_ms, const char *actor, const char *ref)
{
    jbuf b;
    jb_begin(&b, ws);
    jb_str(&b, "action", action);
    jb_int(&b, "credits", credits);
    jb_str(&b, "interval", cm_ledger_interval_name(interval));
    jb_str(&b, "tier", tier);
    jb_str(&b, "outcome", outcome ? cm_ledger_plan_outcome_name(outcome) : "scheduled_change");
    jb_int(&b, "granted", granted);
    jb_int(&b, "effective_ms", effective_ms);
    jb_str(&b, "actor", actor);
    jb_str(&b, "ref", ref);
    int rc = jb_end(tx, &b);
    return rc ? rc : event_insert(tx, ws, "plan_change", NULL, at_ms, &b);
}

/* ---- low-balance alerts ---- */

typedef struct alert_state {
    int found;
    int64_t below, armed, available;
} alert_state;

static int cb_alert(void *ctx, const cm_sv *c, int n)
{
    alert_state *a = ctx;
    (void)n;
    a->found = 1;
    a->below = c[0].i;
    a->armed = c[1].i;
    a->available = cm__int_or(&c[2], 0);
    return 1;
}

int cm__alert_flush(cm_tx *tx)
{
    if (!tx->alert_pending)
        return CM_LEDGER_OK;
    tx->alert_pending = 0;
    if (strcmp(tx->noalert_ws, tx->op_ws) == 0)
        return CM_LEDGER_OK; /* cm__touch found no alert on it in this call */
    alert_state a = {0};
    int rc = CM_RUN(tx, CM_Q_ALERT_STATE, cb_alert, &a, CM_T(tx->op_ws), CM_I(tx->now));
    if (rc || !a.found)
        return rc;
    if (a.armed && a.available < a.below) {
        jbuf b;
        jb_begin(&b, tx->op_ws);
        jb_int(&b, "available", a.available);
        jb_int(&b, "below", a.below);
        rc = jb_end(tx, &b);
        if (!rc)
            rc = event_insert(tx, tx->op_ws, "low_balance", NULL, tx->now, &b);
        if (!rc)
            rc = CM_RUN(tx, CM_Q_ALERT_ARM, NULL, NULL, CM_T(tx->op_ws), CM_I(0));
    } else if (!a.armed && a.available >= a.below) {
        rc = CM_RUN(tx, CM_Q_ALERT_ARM, NULL, NULL, CM_T(tx->op_ws), CM_I(1));
    }
    return rc;
}

typedef struct alert_args {
    const char *ws, *as_user;
    int64_t below; /* 0: clear */
} alert_args;

static int alert_body(cm_tx *tx, void *arg)
{
    alert_args *a = arg;
    int rc = cm__ws_access(tx, a->ws, a->as_user, 1, "set the workspace's alerts", NULL);
    if (!rc)
        rc = cm__touch(tx, a->ws);
    if (rc)
        return rc;
    tx->noalert_ws[0] = 0; /* what cm__touch read of the alert is about to change */
    if (!a->below)
        return CM_RUN(tx, CM_Q_ALERT_DELETE, NULL, NULL, CM_T(a->ws));
    rc = CM_RUN(tx, CM_Q_ALERT_PUT, NULL, NULL, CM_T(a->ws), CM_I(a->below), CM_T(a->as_user),
                CM_I(tx->now));
    if (rc)
        return rc;
    /* Armed now: if the balance is already below, the event is written at once. */
    int64_t op = 0;
    rc = cm__journal_op(tx, a->ws, &op);
    if (!rc)
        tx->alert_pending = 1;
    return rc;
}

int cm_ledger_alert_set(cm_ledger *l, const char *ws, int64_t below, const char *as_user)
{
    if (below < 1 || below > INT64_C(1000000000000))
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID,
                               "the alert threshold must be between 1 and 10^12 credits");
    int rc = cm__valid_id(l, "the acting user", as_user);
    if (rc)
        return rc;
    alert_args a = {ws, as_user, below};
    return cm__tx_run_locked(l, 1, CM_LOCK_WS, ws, alert_body, &a);
}

int cm_ledger_alert_clear(cm_ledger *l, const char *ws, const char *as_user)
{
    int rc = cm__valid_id(l, "the acting user", as_user);
    if (rc)
        return rc;
    alert_args a = {ws, as_user, 0};
    return cm__tx_run_locked(l, 1, CM_LOCK_WS, ws, alert_body, &a);
}

/* ---- reading events ---- */

static char *dup_text(const cm_sv *v)
{
    if (v->type != CM_SV_TEXT || !v->s)
        return NULL;
    size_t n = strlen(v->s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, v->s, n);
    return p;
}

void cm_ledger_events_free(cm_ledger_events_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_events; i++) {
        cm_ledger_event *e = &r->events[i];
        free(e->type);
        free(e->workspace);
        free(e->job);
        free(e->data);
    }
    free(r->events);
    free(r);
}

typedef struct events_args {
    int64_t after_tx, after_id;
    size_t limit;
    cm_ledger_events_result **out;
} events_args;

typedef struct events_ctx {
    cm_ledger_events_result *r;
    int oom;
} events_ctx;

static int cb_event(void *ctx, const cm_sv *c, int n)
{
    events_ctx *x = ctx;
    (void)n;
    cm_ledger_event *e = &x->r->events[x->r->n_events];
    memset(e, 0, sizeof *e);
    e->id = c[0].i;
    e->tx = c[1].i;
    e->at_ms = c[2].i;
    e->type = dup_text(&c[3]);
    e->workspace = dup_text(&c[4]);
    e->job = dup_text(&c[5]);
    e->data = dup_text(&c[6]);
    x->r->n_events++;
    if (!e->type || !e->workspace || !e->data || (c[5].type == CM_SV_TEXT && !e->job)) {
        x->oom = 1;
        return 1;
    }
    snprintf(e->cursor, sizeof e->cursor, "%lld.%lld", (long long)e->tx, (long long)e->id);
    return 0;
}

static void discard_events(void *slot)
{
    cm_ledger_events_free(*(cm_ledger_events_result **)slot);
    *(cm_ledger_events_result **)slot = NULL;
}

static int events_body(cm_tx *tx, void *arg)
{
    events_args *a = arg;
    cm_ledger_events_result *r = calloc(1, sizeof *r);
    if (r)
        r->events = calloc(a->limit, sizeof *r->events);
    if (!r || !r->events) {
        free(r);
        return cm__ledger_fail(tx->l, CM_LEDGER_E_NOMEM, "out of memory reading events");
    }
    *a->out = r;
    cm__tx_on_fail(tx, discard_events, a->out);
    events_ctx x = {r, 0};
    int rc = CM_RUN(tx, CM_Q_EVENTS_AFTER, cb_event, &x, CM_I(a->after_tx), CM_I(a->after_id),
                    CM_I((int64_t)a->limit));
    if (!rc && x.oom)
        rc = cm__ledger_fail(tx->l, CM_LEDGER_E_NOMEM, "out of memory reading events");
    if (!rc) {
        if (r->n_events)
            snprintf(r->next_cursor, sizeof r->next_cursor, "%s",
                     r->events[r->n_events - 1].cursor);
        else
            snprintf(r->next_cursor, sizeof r->next_cursor, "%lld.%lld", (long long)a->after_tx,
                     (long long)a->after_id);
    }
    return rc;
}

/* "TX.ID" (what cursors look like), or "ID" (TX 0), or NULL/"" (from the start). */
static int parse_cursor(const char *s, int64_t *tx, int64_t *id)
{
    *tx = *id = 0;
    if (!s || !*s)
        return 0;
    long long a = 0, b = 0;
    int used = 0;
    if (sscanf(s, "%lld.%lld%n", &a, &b, &used) == 2 && (size_t)used == strlen(s) && a >= 0 &&
        b >= 0 && s[0] >= '0' && s[0] <= '9') {
        *tx = a;
        *id = b;
        return 0;
    }
    used = 0;
    if (sscanf(s, "%lld%n", &b, &used) == 1 && (size_t)used == strlen(s) && b >= 0 && s[0] >= '0' &&
        s[0] <= '9') {
        *id = b;
        return 0;
    }
    return -1;
}

int cm_ledger_events(cm_ledger *l, const char *after, size_t limit, cm_ledger_events_result **out)
{
    if (!out)
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID, "cm_ledger_events: out is NULL");
    *out = NULL;
    if (limit < 1 || limit > CM_LEDGER_EVENTS_MAX)
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID, "the limit must be 1 to %d events",
                               CM_LEDGER_EVENTS_MAX);
    events_args a = {0, 0, limit, out};
    if (parse_cursor(after, &a.after_tx, &a.after_id))
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID,
                               "'%s' is not an event cursor (give the next_cursor a page "
                               "returned, or nothing to start from the first event)",
                               after && cm__text_plain(after) ? after : "(invalid text)");
    return cm__tx_run(l, 0, events_body, &a);
}

/* ---- renewing many leases in one transaction ---- */

typedef struct renew_many_args {
    const char *const *jobs;
    size_t n;
    int64_t lease_s;
    int *results;
    size_t renewed;
    int64_t *until; /* the renewed lease of each job found renewable */
} renew_many_args;

static int renew_job_ok(const char *job)
{
    return job && *job && strlen(job) <= CM_ID_MAX && cm__text_plain(job);
}

/* Jobs whose reads one declaration covers: what a keepalive renews at once, in 2 round
 * trips on PostgreSQL; beyond it one more round trip per this many jobs. */
#define RENEW_DECLARE 512

/* Declare the reads of jobs [from, from + RENEW_DECLARE): each one's hold and the state of
 * its workspace (by the job; the body reads it for the first job of each run of one
 * workspace, the rest is a statement for nothing). */
static int renew_many_declare(cm_tx *tx, renew_many_args *a, size_t from)
{
    int rc = CM_LEDGER_OK;
    for (size_t i = from; !rc && i < a->n && i < from + RENEW_DECLARE; i++) {
        if (!renew_job_ok(a->jobs[i]))
            continue;
        rc = CM_PREFETCH(tx, CM_Q_HOLD_GET, CM_T(a->jobs[i]));
        if (!rc)
            rc = CM_PREFETCH(tx, CM_Q_TOUCH_STATE_JOB, CM_T(a->jobs[i]), cm__clock_sv(tx));
    }
    return rc;
}

/* First the workspaces of all the jobs are locked, in the storage's one order (two
 * keepalives with the same workspaces in other orders cannot deadlock), then the reads. */
static int renew_many_pre(cm_tx *tx, void *arg)
{
    renew_many_args *a = arg;
    const char **ok = malloc(a->n * sizeof *ok);
    if (!ok)
        return cm__ledger_fail(tx->l, CM_LEDGER_E_NOMEM, "out of memory renewing leases");
    size_t k = 0;
    for (size_t i = 0; i < a->n; i++)
        if (renew_job_ok(a->jobs[i]))
            ok[k++] = a->jobs[i];
    int rc = k ? cm__lock_jobs(tx, ok, k) : CM_LEDGER_OK;
    free(ok);
    return rc ? rc : renew_many_declare(tx, a, 0);
}

/* Every job is read and judged first, and the renewals written after the last read, so
 * that the declared reads are not made stale by the call's own writes. That changes no
 * answer: a renewal pending for a job of workspace W was judged after W was brought up
 * to W's time, which a later touch of W computes again (W's journal gains only rows
 * dated at or before it), so no later touch lapses a job waiting for its renewal, and a
 * later read of that job (a job named twice) judges it the same. */
static int renew_many_body(cm_tx *tx, void *arg)
{
    renew_many_args *a = arg;
    a->renewed = 0;
    char touched[CM_ID_MAX + 1] = "";
    for (size_t i = 0; i < a->n; i++) {
        const char *job = a->jobs[i];
        int *res = &a->results[i];
        a->until[i] = -1;
        if (i && i % RENEW_DECLARE == 0) {
            int rc = renew_many_declare(tx, a, i);
            if (rc)
                return rc;
        }
        if (!renew_job_ok(job)) {
            *res = CM_LEDGER_E_INVALID;
            continue;
        }
        cm_hold_row h;
        int found;
        int rc = cm__hold_get(tx, job, &h, &found);
        if (rc)
            return rc;
        if (!found) {
            *res = CM_LEDGER_E_NO_JOB;
            continue;
        }
        /* Bring the workspace up to now once per run of jobs of one workspace: a hold
         * whose lease ended lapses (then it cannot be renewed). The hold is read again
         * when that lapsed a hold. */
        int64_t lapsed = tx->stats.holds_lapsed;
        if (strcmp(touched, h.ws) != 0) {
            rc = cm__touch_job(tx, h.ws, job);
            if (rc == CM_LEDGER_E_BUSY || rc == CM_LEDGER_E_STORAGE || rc == CM_LEDGER_E_NOMEM ||
                rc == CM_LEDGER_E_UNAVAILABLE)
                return rc;
            if (rc) {
                *res = rc;
                continue;
            }
            snprintf(touched, sizeof touched, "%s", h.ws);
        } else if (h.state == CM_LEDGER_HELD && h.lease_until_ms <= tx->now) {
            /* touched earlier in this call, before this lease ended: touch again */
            rc = cm__touch_job(tx, h.ws, job);
            if (rc)
                return rc;
        }
        if (tx->stats.holds_lapsed != lapsed && (rc = cm__hold_get(tx, job, &h, &found)) != 0)
            return rc;
        if (h.state == CM_LEDGER_LAPSED) {
            *res = CM_LEDGER_E_LEASE_EXPIRED;
            continue;
        }
        if (h.state != CM_LEDGER_HELD) {
            *res = CM_LEDGER_E_ALREADY_RESOLVED;
            continue;
        }
        a->until[i] = tx->now + a->lease_s * 1000;
        *res = CM_LEDGER_OK;
    }
    for (size_t i = 0; i < a->n; i++) {
        if (a->until[i] < 0)
            continue;
        int rc = CM_RUN(tx, CM_Q_HOLD_RENEW, NULL, NULL, CM_T(a->jobs[i]), CM_I(a->until[i]));
        if (rc)
            return rc;
        a->renewed++;
    }
    return CM_LEDGER_OK;
}

int cm_ledger_renew_many(cm_ledger *l, const char *const *jobs, size_t n, int64_t lease_s,
                         int *results)
{
    if ((n && (!jobs || !results)) || n > CM_LEDGER_RENEW_MANY_MAX)
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID,
                               "cm_ledger_renew_many: jobs and results must hold n (at most %d) "
                               "entries",
                               CM_LEDGER_RENEW_MANY_MAX);
    if (!l)
        return cm__ledger_fail(NULL, CM_LEDGER_E_INVALID, "the ledger handle is NULL");
    if (lease_s == 0)
        lease_s = CM_LEDGER_DEFAULT_LEASE_S;
    if (lease_s < 0 || lease_s > INT64_C(31536000))
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID, "the lease must be 1 s to one year");
    if (!n)
        return CM_LEDGER_OK;
    renew_many_args a = {jobs, n, lease_s, results, 0, malloc(n * sizeof(int64_t))};
    if (!a.until)
        return cm__ledger_fail(l, CM_LEDGER_E_NOMEM, "out of memory renewing leases");
    int rc = cm__tx_run_pre(l, 1, 0, NULL, renew_many_pre, renew_many_body, &a);
    free(a.until);
    return rc;
}

/* ---- health ---- */

static int ping_body(cm_tx *tx, void *arg)
{
    (void)arg;
    return CM_RUN(tx, CM_Q_PING, NULL, NULL, CM_I(tx->clock));
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cm_ledger_ping(cm_ledger *l, int64_t *latency_ms)
{
    int64_t t0 = mono_ms();
    int rc = cm__tx_run(l, 1, ping_body, NULL);
    if (!rc && latency_ms)
        *latency_ms = mono_ms() - t0;
    return rc;
}

/* ---- gauges ---- */

typedef struct gauges_args {
    cm_ledger_gauges g;
} gauges_args;

static int cb_gauges(void *ctx, const cm_sv *c, int n)
{
    cm_ledger_gauges *g = ctx;
    (void)n;
    g->workspaces = cm__int_or(&c[0], 0);
    g->available = cm__int_or(&c[1], 0);
    g->held = cm__int_or(&c[2], 0);
    g->open_holds = cm__int_or(&c[3], 0);
    g->oldest_hold_created_ms = cm__int_or(&c[4], -1);
    g->overdue_holds = cm__int_or(&c[5], 0);
    return 1;
}

static int gauges_body(cm_tx *tx, void *arg)
{
    gauges_args *a = arg;
    memset(&a->g, 0, sizeof a->g);
    a->g.oldest_hold_created_ms = -1;
    int rc = CM_RUN(tx, CM_Q_METRICS, cb_gauges, &a->g, CM_I(tx->clock));
    a->g.now_ms = tx->clock;
    return rc;
}

int cm_ledger_gauges_read(cm_ledger *l, cm_ledger_gauges *out)
{
    if (!out)
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID, "cm_ledger_gauges_read: out is NULL");
    gauges_args a;
    int rc = cm__tx_run(l, 0, gauges_body, &a);
    if (!rc)
        *out = a.g;
    return rc;
}

/* ---- export ---- */

/* The plugin's notes and bindings are structured text (plugin/plugin_job.c):
 *   binding  "by-input size=S ms=M fnv1a64=H" | "by-output requested_ms=R"
 *   note     "N credits for X.YYY s measured by METHOD[, billed on ...][, G ms grace for
 *            encoder padding], the header says D.DDD s (...)" | "..., the header declares
 *            no duration"
 *   commit   "N credits for X.YYY s of measured output ..." (by-output)
 * Fields not found stay unknown (-1 / NULL): holds made by other callers (the CLI), and
 * holds from before schema 3, whose note lives only in the journal. */
static int64_t seconds_ms_after(const char *s, const char *key)
{
    const char *p = s ? strstr(s, key) : NULL;
    if (!p)
        return -1;
    p += strlen(key);
    long long sec = 0, frac = 0;
    int used = 0;
    if (sscanf(p, "%lld.%3lld s%n", &sec, &frac, &used) == 2 && used > 0 && sec >= 0 && frac >= 0)
        return sec * 1000 + frac;
    return -1;
}

static int64_t int_after(const char *s, const char *key)
{
    const char *p = s ? strstr(s, key) : NULL;
    if (!p)
        return -1;
    long long v = 0;
    if (sscanf(p + strlen(key), "%lld", &v) == 1 && v >= 0)
        return v;
    return -1;
}

static void parse_measures(cm_ledger_export_row *r, const char *binding, const char *note,
                           const char *commit_note, char *method, size_t mcap)
{
    r->measured_ms = r->declared_ms = r->grace_ms = -1;
    r->method = NULL;
    method[0] = 0;
    if (binding && !strncmp(binding, "by-input ", 9)) {
        r->measured_ms = int_after(binding, " ms=");
        const char *m = note ? strstr(note, " measured by ") : NULL;
        if (m) {
            m += strlen(" measured by ");
            size_t k = strcspn(m, ", ");
            if (k && k < mcap) {
                memcpy(method, m, k);
                method[k] = 0;
                r->method = method;
            }
        }
        r->declared_ms = seconds_ms_after(note, "the header says ");
    } else if (binding && !strncmp(binding, "by-output ", 10)) {
        snprintf(method, mcap, "requested");
        r->method = method;
        r->declared_ms = int_after(binding, "requested_ms=");
        r->measured_ms = seconds_ms_after(commit_note, " credits for ");
        if (r->measured_ms < 0)
            r->measured_ms = seconds_ms_after(commit_note, " credit for ");
    }
    if (binding) {
        const char *g = note ? strstr(note, " ms grace for ") : NULL;
        if (g) {
            const char *b = g;
            while (b > note && b[-1] >= '0' && b[-1] <= '9')
                b--;
            long long v = 0;
            if (b < g && sscanf(b, "%lld", &v) == 1)
                r->grace_ms = v;
        }
    }
}

#define EXPORT_PAGE 1000

typedef struct export_args {
    const char *ws;
    int64_t since_ms, until_ms;
    cm_ledger_export_fn fn;
    void *ctx;
    /* keyset of the last row delivered */
    char last_ws[CM_ID_MAX + 1];
    int64_t last_id;
    size_t in_page;
    int stopped;
} export_args;

static int cb_export(void *ctx, const cm_sv *c, int n)
{
    export_args *a = ctx;
    (void)n;
    cm_ledger_export_row r;
    memset(&r, 0, sizeof r);
    r.id = c[0].i;
    r.op = c[1].i;
    r.workspace = c[2].s;
    r.at_ms = c[3].i;
    r.kind = c[4].s;
    r.grant_id = cm__int_or(&c[5], -1);
    r.job = c[6].type == CM_SV_TEXT ? c[6].s : NULL;
    r.credits = c[7].i;
    r.actor = c[8].s;
    r.reason = c[9].type == CM_SV_TEXT ? c[9].s : NULL;
    r.ref = c[10].type == CM_SV_TEXT ? c[10].s : NULL;
    char method[64];
    parse_measures(&r, c[11].type == CM_SV_TEXT ? c[11].s : NULL,
                   c[12].type == CM_SV_TEXT ? c[12].s : NULL,
                   c[13].type == CM_SV_TEXT ? c[13].s : NULL, method, sizeof method);
    snprintf(a->last_ws, sizeof a->last_ws, "%s", r.workspace ? r.workspace : "");
    a->last_id = r.id;
    a->in_page++;
    if (a->fn(a->ctx, &r)) {
        a->stopped = 1;
        return 1;
    }
    return 0;
}

static int export_body(cm_tx *tx, void *arg)
{
    export_args *a = arg;
    a->last_ws[0] = 0;
    a->last_id = 0;
    a->stopped = 0;
    /* Pages of EXPORT_PAGE rows by (ws, id) in one snapshot: constant memory whatever the
     * backend (libpq holds a whole result in memory; a page bounds it). */
    for (;;) {
        a->in_page = 0;
        int rc = CM_RUN(tx, CM_Q_EXPORT_PAGE, cb_export, a, CM_T(a->last_ws), CM_I(a->last_id),
                        a->ws ? CM_T(a->ws) : CM_N, a->since_ms >= 0 ? CM_I(a->since_ms) : CM_N,
                        a->until_ms >= 0 ? CM_I(a->until_ms) : CM_N, CM_I(EXPORT_PAGE));
        if (rc || a->stopped || a->in_page < EXPORT_PAGE)
            return rc;
    }
}

int cm_ledger_export(cm_ledger *l, const char *ws, int64_t since_ms, int64_t until_ms,
                     cm_ledger_export_fn fn, void *ctx)
{
    if (!fn)
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID, "cm_ledger_export: fn is NULL");
    if (ws) {
        int rc = cm__valid_id(l, "the workspace id", ws);
        if (rc)
            return rc;
    }
    if (since_ms >= 0 && until_ms >= 0 && until_ms < since_ms)
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID, "--until is before --since");
    export_args a = {ws, since_ms, until_ms, fn, ctx, "", 0, 0, 0};
    return cm__tx_run(l, 0, export_body, &a);
}
