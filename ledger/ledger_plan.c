/*
 * ledger_plan.c - plans, plan periods, and bringing a workspace up to "now".
 *
 * A plan has a start instant; period k runs from start + k*L months to start +
 * (k+1)*L months (L = 1 monthly, 12 annual), each boundary computed from the start
 * instant with the day clamped (cm_time_add_months), so a plan started on Jan 31
 * renews on Feb 28/29 and then on Mar 31. plans.next_period is the first period not
 * yet granted, which makes granting idempotent: a period is granted at most once.
 * Periods that ended entirely before the workspace was next touched are skipped: their
 * grant would have expired unused anyway.
 *
 * cm_touch() is the lazy clock: lapse holds whose lease ended, expire grants past
 * their end, grant the current period. Every call on a workspace runs it first, and
 * cm_ledger_sweep() runs it on every workspace.
 */
#include "ledger_internal.h"
#include "ledger_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct plan_row {
    int found;
    int64_t credits;
    int interval;
    char tier[CM_TEXT_MAX + 1];
    int64_t start_ms, next_period, cancelled_ms;
} plan_row;

static int cb_plan(void *ctx, const cm_sv *c, int n)
{
    plan_row *p = ctx;
    (void)n;
    p->found = 1;
    p->credits = c[0].i;
    p->interval = (int)c[1].i;
    cm_copy_text(p->tier, sizeof p->tier, &c[2]);
    p->start_ms = c[3].i;
    p->next_period = c[4].i;
    p->cancelled_ms = cm_int_or(&c[5], -1);
    return 1;
}

static int plan_get(cm_tx *tx, const char *ws, plan_row *p)
{
    memset(p, 0, sizeof *p);
    return CM_RUN(tx, CM_Q_PLAN_GET, cb_plan, p, CM_T(ws));
}

static int64_t period_months(int interval)
{
    return interval == CM_LEDGER_ANNUAL ? 12 : 1;
}

/* The period that contains now (0 if now is before the start). */
static int64_t current_period(int64_t start_ms, int interval, int64_t now)
{
    if (now < start_ms)
        return 0;
    int64_t L = period_months(interval);
    cm_civil a, b;
    cm_time_split(start_ms, &a);
    cm_time_split(now, &b);
    int64_t months = (b.year * 12 + b.month) - (a.year * 12 + a.month);
    int64_t k = months / L;
    while (k > 0 && cm_time_add_months(start_ms, k * L) > now)
        k--;
    while (cm_time_add_months(start_ms, (k + 1) * L) <= now)
        k++;
    return k;
}

int cm_grant_plan_period(cm_tx *tx, const char *ws, int64_t credits_per_month, int interval,
                         int64_t start_ms, int64_t period, const char *actor)
{
    int64_t L = period_months(interval);
    int64_t begin = cm_time_add_months(start_ms, period * L);
    int64_t end = cm_time_add_months(start_ms, (period + 1) * L);
    cm_grant_row g;
    int rc = cm_grant_new(tx, ws, CM_LEDGER_GRANT_PLAN, begin, end, period, NULL, 0, 0, NULL, &g);
    if (rc)
        return rc;
    char why[64];
    snprintf(why, sizeof why, "plan period %lld", (long long)period);
    rc = cm_move(tx, &g, "grant", credits_per_month * L, begin, NULL, actor, why, NULL);
    if (!rc)
        rc = CM_RUN(tx, CM_Q_PLAN_SET_NEXT, NULL, NULL, CM_T(ws), CM_I(period + 1));
    if (!rc)
        tx->stats.periods_granted++;
    return rc;
}

typedef struct job_list {
    char (*jobs)[CM_ID_MAX + 1];
    size_t n, cap;
    int oom;
} job_list;

static int cb_job(void *ctx, const cm_sv *c, int n)
{
    job_list *j = ctx;
    (void)n;
    if (j->n == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 8;
        void *p = realloc(j->jobs, cap * sizeof *j->jobs);
        if (!p) {
            j->oom = 1;
            return 1;
        }
        j->jobs = p;
        j->cap = cap;
    }
    cm_copy_text(j->jobs[j->n++], CM_ID_MAX + 1, &c[0]);
    return 0;
}

/* Release every hold of ws whose lease ended by now, at the instant it ended. */
static int lapse_holds(cm_tx *tx, const char *ws)
{
    job_list j = {0};
    /* Collect first: the lapses update the rows the query walks. */
    int rc = CM_RUN(tx, CM_Q_HOLD_LAPSABLE, cb_job, &j, CM_T(ws), CM_I(tx->now));
    if (!rc && j.oom)
        rc = cm_fail(tx->l, CM_LEDGER_E_NOMEM, "out of memory lapsing holds");
    for (size_t i = 0; !rc && i < j.n; i++) {
        cm_hold_row h;
        int found;
        rc = cm_hold_get(tx, j.jobs[i], &h, &found);
        if (!rc && found && h.state == CM_LEDGER_HELD) {
            rc = cm_hold_resolve(tx, &h, 0, CM_LEDGER_LAPSED, h.lease_until_ms, "ledger");
            if (!rc)
                tx->stats.holds_lapsed++;
        }
    }
    free(j.jobs);
    return rc;
}

static int expire_grants(cm_tx *tx, const char *ws)
{
    cm_grant_vec v;
    int rc = cm_grant_list(tx, CM_Q_GRANT_EXPIRING, (const cm_sv[]){CM_T(ws), CM_I(tx->now)}, 2,
                           &v);
    for (size_t i = 0; !rc && i < v.n; i++) {
        int64_t n = v.v[i].remaining;
        rc = cm_move(tx, &v.v[i], "expiry", n, v.v[i].expires_ms, NULL, "ledger",
                     "the grant reached its expiry", NULL);
        if (!rc)
            tx->stats.credits_expired += n;
    }
    cm_grant_vec_free(&v);
    return rc;
}

typedef struct touch_state {
    int lapse_due, expiry_due;
    plan_row plan; /* tier not read */
} touch_state;

static int cb_touch_state(void *ctx, const cm_sv *c, int n)
{
    touch_state *t = ctx;
    (void)n;
    t->lapse_due = cm_int_or(&c[0], 0) != 0;
    t->expiry_due = cm_int_or(&c[1], 0) != 0;
    if (c[2].type == CM_SV_INT) {
        t->plan.found = 1;
        t->plan.credits = c[2].i;
        t->plan.interval = (int)c[3].i;
        t->plan.start_ms = c[4].i;
        t->plan.next_period = c[5].i;
        t->plan.cancelled_ms = cm_int_or(&c[6], -1);
    }
    return 1;
}

static int grant_periods(cm_tx *tx, const char *ws, const plan_row *p)
{
    if (!p->found || p->cancelled_ms >= 0)
        return CM_LEDGER_OK;
    int64_t k = current_period(p->start_ms, p->interval, tx->now);
    if (p->next_period > k)
        return CM_LEDGER_OK; /* this period was granted already */
    return cm_grant_plan_period(tx, ws, p->credits, p->interval, p->start_ms, k, "ledger");
}

/* One read says what is due (a lease ended, a grant expired, the plan's state); only
 * the work that is due runs. Lapsing and expiring change neither the plan nor make
 * another grant due to expire (credits given back to an expired grant expire at once),
 * so the state read first stays true for the later steps. */
int cm_touch(cm_tx *tx, const char *ws)
{
    touch_state t;
    memset(&t, 0, sizeof t);
    int rc = CM_RUN(tx, CM_Q_TOUCH_STATE, cb_touch_state, &t, CM_T(ws), CM_I(tx->now));
    if (!rc && t.lapse_due)
        rc = lapse_holds(tx, ws);
    if (!rc && t.expiry_due)
        rc = expire_grants(tx, ws);
    if (!rc)
        rc = grant_periods(tx, ws, &t.plan);
    return rc;
}

/* ---- plan set / cancel ---- */

typedef struct plan_args {
    const char *ws, *tier, *as_user;
    int64_t credits;
    int interval;
    int cancel;
} plan_args;

static int plan_body(cm_tx *tx, void *arg)
{
    plan_args *a = arg;
    int rc = cm_ws_access(tx, a->ws, a->as_user, 1, a->cancel ? "cancel the plan" : "set the plan",
                          NULL);
    if (!rc)
        rc = cm_touch(tx, a->ws);
    plan_row p;
    if (!rc)
        rc = plan_get(tx, a->ws, &p);
    if (rc)
        return rc;
    if (a->cancel) {
        if (!p.found)
            return cm_fail(tx->l, CM_LEDGER_E_INVALID, "workspace '%s' has no plan to cancel",
                           a->ws);
        if (p.cancelled_ms >= 0)
            return CM_LEDGER_OK;
        rc = CM_RUN(tx, CM_Q_PLAN_CANCEL, NULL, NULL, CM_T(a->ws), CM_I(tx->now));
        if (!rc)
            rc = cm_journal(tx, a->ws, tx->now, "plan_cancel", -1, NULL, 0, a->as_user,
                            "no further periods will be granted", NULL);
        return rc;
    }
    const char *tier = a->tier ? a->tier : "";
    if (p.found && p.cancelled_ms < 0 && p.credits == a->credits && p.interval == a->interval &&
        strcmp(p.tier, tier) == 0)
        return CM_LEDGER_OK; /* the active plan already: a retry */
    rc = CM_RUN(tx, CM_Q_PLAN_PUT, NULL, NULL, CM_T(a->ws), CM_I(a->credits), CM_I(a->interval),
                CM_T(tier), CM_I(tx->now));
    char why[CM_TEXT_MAX + 64];
    snprintf(why, sizeof why, "%lld credits a month, %s%s%s", (long long)a->credits,
             cm_ledger_interval_name(a->interval), *tier ? ", tier " : "", tier);
    if (!rc)
        rc = cm_journal(tx, a->ws, tx->now, "plan_set", -1, NULL, 0, a->as_user, why, NULL);
    if (!rc)
        rc = cm_grant_plan_period(tx, a->ws, a->credits, a->interval, tx->now, 0, a->as_user);
    return rc;
}

int cm_ledger_plan_set(cm_ledger *l, const char *ws, int64_t credits_per_month, int interval,
                       const char *tier, const char *as_user)
{
    if (credits_per_month <= 0 || credits_per_month > INT64_C(1000000000000))
        return cm_fail(l, CM_LEDGER_E_INVALID, "credits per month must be between 1 and 10^12");
    if (interval != CM_LEDGER_MONTHLY && interval != CM_LEDGER_ANNUAL)
        return cm_fail(l, CM_LEDGER_E_INVALID, "the interval must be monthly or annual");
    if (tier && (strlen(tier) > CM_TEXT_MAX || !cm_utf8_valid(tier)))
        return cm_fail(l, CM_LEDGER_E_INVALID,
                       "the tier name is too long, not UTF-8 text, or holds a control character");
    if (!as_user)
        return cm_fail(l, CM_LEDGER_E_INVALID, "the acting user is missing");
    plan_args a = {ws, tier, as_user, credits_per_month, interval, 0};
    return cm_tx_run(l, 1, plan_body, &a);
}

int cm_ledger_plan_cancel(cm_ledger *l, const char *ws, const char *as_user)
{
    if (!as_user)
        return cm_fail(l, CM_LEDGER_E_INVALID, "the acting user is missing");
    plan_args a = {ws, NULL, as_user, 0, 0, 1};
    return cm_tx_run(l, 1, plan_body, &a);
}

/* ---- sweep ---- */

static int sweep_body(cm_tx *tx, void *arg)
{
    job_list w = {0}; /* workspace ids */
    int rc = cm_run(tx, CM_Q_WS_ALL, NULL, 0, cb_job, &w);
    if (!rc && w.oom)
        rc = cm_fail(tx->l, CM_LEDGER_E_NOMEM, "out of memory listing workspaces");
    for (size_t i = 0; !rc && i < w.n; i++)
        rc = cm_touch(tx, w.jobs[i]);
    free(w.jobs);
    if (!rc && arg)
        *(cm_ledger_sweep_stats *)arg = tx->stats;
    return rc;
}

int cm_ledger_sweep(cm_ledger *l, cm_ledger_sweep_stats *out)
{
    cm_ledger_sweep_stats s = {0};
    int rc = cm_tx_run(l, 1, sweep_body, &s);
    if (!rc && out)
        *out = s;
    return rc;
}
