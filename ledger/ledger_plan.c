/* SPDX-License-Identifier: MIT */
/*
 * ledger_plan.c - plans, plan changes, plan periods, and bringing a workspace up to "now".
 *
 * A plan has an anchor (start_ms); period k runs from anchor + k*L months to anchor +
 * (k+1)*L months (L = 1 monthly, 12 annual), each boundary computed from the anchor with
 * the day clamped (cm__time_add_months), so a plan started on Jan 31 renews on Feb 28/29
 * and then on Mar 31. plans.next_period is the first period not yet granted, which makes
 * granting idempotent: a period is granted at most once. A plan may carry one scheduled
 * change (a downgrade, or annual -> monthly), which takes effect at the boundary
 * sched_ms: the plan is then re-anchored there with the new credits and interval.
 *
 * cm__touch() is the lazy clock: it raises the call's time to the workspace's last journal
 * time if the clock reads earlier (ledger time never runs backwards within a workspace),
 * then replays what happened since the workspace was last touched, in time order, each
 * movement dated at its own instant: a lapse at its lease end, an expiry at its grant's
 * end, a plan period at its boundary (every period in between is granted and then
 * expired, so the history reads true). Every call on a workspace runs it first, and
 * cm_ledger_sweep() runs it on every workspace.
 *
 * Plan set/cancel apply the rules of cm_ledger_plan_set_ref() (cm_ledger.h). Every set or
 * cancel that is not a replay is a row of plan_changes: its payment reference makes a
 * repeat return the stored result, and check proves the plan grants against it.
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
    int64_t start_ms, next_period, cancelled_ms; /* cancelled_ms -1: not cancelled */
    int64_t sched_credits;
    int sched_interval;
    char sched_tier[CM_TEXT_MAX + 1];
    int64_t sched_ms; /* -1: nothing scheduled */
} plan_row;

static int cb_plan(void *ctx, const cm_sv *c, int n)
{
    plan_row *p = ctx;
    (void)n;
    p->found = 1;
    p->credits = c[0].i;
    p->interval = (int)c[1].i;
    cm__copy_text(p->tier, sizeof p->tier, &c[2]);
    p->start_ms = c[3].i;
    p->next_period = c[4].i;
    p->cancelled_ms = cm__int_or(&c[5], -1);
    p->sched_credits = cm__int_or(&c[6], 0);
    p->sched_interval = (int)cm__int_or(&c[7], 0);
    cm__copy_text(p->sched_tier, sizeof p->sched_tier, &c[8]);
    p->sched_ms = cm__int_or(&c[9], -1);
    return 1;
}

static int plan_get(cm_tx *tx, const char *ws, plan_row *p)
{
    memset(p, 0, sizeof *p);
    p->cancelled_ms = p->sched_ms = -1;
    return CM_RUN(tx, CM_Q_PLAN_GET, cb_plan, p, CM_T(ws));
}

static int plan_save(cm_tx *tx, const char *ws, const plan_row *p)
{
    int sched = p->sched_ms >= 0;
    return CM_RUN(tx, CM_Q_PLAN_UPDATE, NULL, NULL, CM_T(ws), CM_I(p->credits), CM_I(p->interval),
                  CM_T(p->tier), CM_I(p->start_ms), CM_I(p->next_period),
                  p->cancelled_ms >= 0 ? CM_I(p->cancelled_ms) : CM_N,
                  sched ? CM_I(p->sched_credits) : CM_N, sched ? CM_I(p->sched_interval) : CM_N,
                  sched ? CM_T(p->sched_tier) : CM_N, sched ? CM_I(p->sched_ms) : CM_N);
}

static int64_t period_months(int interval)
{
    return interval == CM_LEDGER_ANNUAL ? 12 : 1;
}

/* Start of period k of p. */
static int64_t boundary(const plan_row *p, int64_t k)
{
    return cm__time_add_months(p->start_ms, k * period_months(p->interval));
}

/* Calendar months from a to b (by month number; 0 when b is in a's month or before). */
static int64_t months_between(int64_t a, int64_t b)
{
    cm_civil x, y;
    cm__time_split(a, &x);
    cm__time_split(b, &y);
    int64_t m = (y.year * 12 + y.month) - (x.year * 12 + x.month);
    return m > 0 ? m : 0;
}

int cm__grant_plan_period(cm_tx *tx, const char *ws, int64_t credits_per_month, int interval,
                          int64_t start_ms, int64_t period, const char *actor)
{
    int64_t L = period_months(interval);
    int64_t begin = cm__time_add_months(start_ms, period * L);
    int64_t end = cm__time_add_months(start_ms, (period + 1) * L);
    cm_grant_row g;
    int rc = cm__grant_new(tx, ws, CM_LEDGER_GRANT_PLAN, begin, end, period, NULL, 0, 0, NULL, &g);
    if (rc)
        return rc;
    char why[64];
    snprintf(why, sizeof why, "plan period %lld", (long long)period);
    rc = cm__move(tx, &g, "grant", credits_per_month * L, begin, NULL, actor, why, NULL);
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
    cm__copy_text(j->jobs[j->n++], CM_ID_MAX + 1, &c[0]);
    return 0;
}

typedef struct touch_state {
    int found, has_alert;
    int lapse_due, expiry_due;
    int64_t now;
    plan_row plan; /* tier and schedule not read */
} touch_state;

static int cb_touch_state(void *ctx, const cm_sv *c, int n)
{
    touch_state *t = ctx;
    (void)n;
    t->lapse_due = cm__int_or(&c[0], 0) != 0;
    t->expiry_due = cm__int_or(&c[1], 0) != 0;
    if (c[2].type == CM_SV_INT) {
        t->plan.found = 1;
        t->plan.credits = c[2].i;
        t->plan.interval = (int)c[3].i;
        t->plan.start_ms = c[4].i;
        t->plan.next_period = c[5].i;
        t->plan.cancelled_ms = cm__int_or(&c[6], -1);
    }
    t->now = cm__int_or(&c[7], -1);
    t->has_alert = n > 8 && cm__int_or(&c[8], 1) != 0;
    t->found = 1;
    return 1;
}

/* The next plan boundary to act on (a period to grant, after a scheduled change if one
 * falls there), or -1 when the plan grants nothing more by now. */
static int64_t plan_due_at(const plan_row *p, int64_t now)
{
    if (!p->found || p->cancelled_ms >= 0)
        return -1;
    int64_t b = boundary(p, p->next_period);
    return b <= now ? b : -1;
}

/* Act on the plan boundary b: a scheduled change that falls there takes effect (the plan
 * is re-anchored at b), then the period that begins at b is granted. */
static int plan_boundary(cm_tx *tx, const char *ws, plan_row *p, int64_t b)
{
    int rc = CM_LEDGER_OK;
    if (p->sched_ms >= 0 && p->sched_ms <= b) {
        char why[CM_TEXT_MAX + 128];
        snprintf(why, sizeof why, "scheduled change takes effect: %lld credits a month, %s%s%s",
                 (long long)p->sched_credits, cm_ledger_interval_name(p->sched_interval),
                 p->sched_tier[0] ? ", tier " : "", p->sched_tier);
        p->credits = p->sched_credits;
        p->interval = p->sched_interval;
        snprintf(p->tier, sizeof p->tier, "%s", p->sched_tier);
        p->start_ms = p->sched_ms;
        p->next_period = 0;
        p->sched_ms = -1;
        rc = plan_save(tx, ws, p);
        if (!rc)
            rc = cm__journal(tx, ws, b, "plan_set", -1, NULL, 0, "ledger", why, NULL);
        if (!rc)
            rc = cm__event_plan(tx, ws, b, "set", p->credits, p->interval, p->tier, 0, 0, b,
                                "ledger", NULL);
    }
    if (!rc)
        rc = cm__grant_plan_period(tx, ws, p->credits, p->interval, p->start_ms, p->next_period,
                                   "ledger");
    if (!rc)
        p->next_period++;
    return rc;
}

/* The soonest expiry due by now: its grant, or found = 0. */
static int next_expiry(cm_tx *tx, const char *ws, cm_grant_row *g, int *found)
{
    cm_grant_vec v;
    int rc =
        cm__grant_list(tx, CM_Q_GRANT_EXPIRING, (const cm_sv[]){CM_T(ws), CM_I(tx->now)}, 2, &v);
    if (rc)
        return rc;
    *found = v.n > 0;
    if (v.n)
        *g = v.v[0];
    cm__grant_vec_free(&v);
    return CM_LEDGER_OK;
}

/* Bring ws up to now. One read says what is due (a lease ended, a grant expired, the
 * plan's state, the workspace's last journal time); when something is, the events are
 * replayed one at a time in time order (at one instant: lapses, then expiries, then the
 * plan boundary), each dated at its instant, so that credits a lapse gives back to a
 * grant that expires later still expire at that grant's end, and every plan period in
 * between is granted and expired in order. */
int cm__touch(cm_tx *tx, const char *ws)
{
    return cm__touch_job(tx, ws, NULL);
}

int cm__touch_job(cm_tx *tx, const char *ws, const char *job)
{
    touch_state t;
    memset(&t, 0, sizeof t);
    int rc = cm__lock_ws(tx, ws);
    /* By the job when the call is keyed by one: the same row (its hold is in ws), a read
     * the call could declare before it read the hold. */
    if (!rc && job)
        rc = CM_RUN(tx, CM_Q_TOUCH_STATE_JOB, cb_touch_state, &t, CM_T(job), CM_I(tx->clock));
    else if (!rc)
        rc = CM_RUN(tx, CM_Q_TOUCH_STATE, cb_touch_state, &t, CM_T(ws), CM_I(tx->clock));
    if (!rc && !t.found)
        rc = cm__ledger_fail(tx->l, CM_LEDGER_E_STORAGE, "the hold of job '%s' is gone",
                             job ? job : "");
    if (rc)
        return rc;
    /* Whether the call has an alert to look at when it moves credits (cm__alert_flush). */
    if (!t.has_alert)
        snprintf(tx->noalert_ws, sizeof tx->noalert_ws, "%s", ws);
    else if (strcmp(tx->noalert_ws, ws) == 0)
        tx->noalert_ws[0] = 0;
    tx->now = t.now >= tx->clock ? t.now : tx->clock;
    int64_t due = plan_due_at(&t.plan, tx->now);
    if (!t.lapse_due && !t.expiry_due && due < 0)
        return CM_LEDGER_OK;
    plan_row p = {0};
    p.cancelled_ms = p.sched_ms = -1;
    if (due >= 0) {
        if (months_between(due, tx->now) > CM_CATCHUP_MAX_MONTHS) {
            char a[40], b[40];
            return cm__ledger_fail(
                tx->l, CM_LEDGER_E_INVALID,
                "the clock reads %s, more than %d years after workspace '%s' was "
                "last brought up to date (%s): refusing to grant a century of "
                "plan periods; check the clock",
                cm_ledger_time_format(tx->now, a, sizeof a), CM_CATCHUP_MAX_MONTHS / 12, ws,
                cm_ledger_time_format(due, b, sizeof b));
        }
        rc = plan_get(tx, ws, &p);
        if (rc)
            return rc;
    }
    job_list j = {0};
    if (t.lapse_due) {
        /* Collect first: the lapses update the rows the query walks. Ordered by lease end. */
        rc = CM_RUN(tx, CM_Q_HOLD_LAPSABLE, cb_job, &j, CM_T(ws), CM_I(tx->now));
        if (!rc && j.oom)
            rc = cm__ledger_fail(tx->l, CM_LEDGER_E_NOMEM, "out of memory lapsing holds");
    }
    size_t next_job = 0;
    cm_hold_row h;
    int have_hold = 0;
    for (int guard = 0; !rc; guard++) {
        /* The next lapse. */
        while (!rc && !have_hold && next_job < j.n) {
            int found;
            rc = cm__hold_get(tx, j.jobs[next_job++], &h, &found);
            have_hold = !rc && found && h.state == CM_LEDGER_HELD;
        }
        if (rc)
            break;
        cm_grant_row g;
        int have_exp = 0;
        if (t.expiry_due || have_hold || guard > 0)
            rc = next_expiry(tx, ws, &g, &have_exp);
        if (rc)
            break;
        int64_t at_lapse = have_hold ? h.lease_until_ms : INT64_MAX;
        int64_t at_exp = have_exp ? g.expires_ms : INT64_MAX;
        int64_t at_plan = due >= 0 ? due : INT64_MAX;
        if (at_lapse == INT64_MAX && at_exp == INT64_MAX && at_plan == INT64_MAX)
            break;
        if (at_lapse <= at_exp && at_lapse <= at_plan) {
            rc = cm__hold_resolve(tx, &h, 0, CM_LEDGER_LAPSED, h.lease_until_ms, "ledger");
            if (!rc)
                tx->stats.holds_lapsed++;
            have_hold = 0;
        } else if (at_exp <= at_plan) {
            int64_t n = g.remaining;
            rc = cm__move(tx, &g, "expiry", n, g.expires_ms, NULL, "ledger",
                          "the grant reached its expiry", NULL);
            if (!rc)
                tx->stats.credits_expired += n;
        } else {
            rc = plan_boundary(tx, ws, &p, due);
            if (!rc)
                due = plan_due_at(&p, tx->now);
        }
    }
    free(j.jobs);
    return rc;
}

/* ---- plan set / cancel / show ---- */

typedef struct plan_args {
    const char *ws, *tier, *as_user, *ref;
    int64_t credits;
    int interval;
    int cancel;
    int noop;                  /* the call changed nothing (no plan history row) */
    cm_ledger_plan_result res; /* written by every run of the body */
    cm_ledger_plan_info *info; /* plan show */
} plan_args;

typedef struct change_row {
    int found;
    char ws[CM_ID_MAX + 1], action[16], tier[CM_TEXT_MAX + 1];
    int64_t credits, granted, effective_ms;
    int interval, outcome, resumed;
} change_row;

static int cb_change(void *ctx, const cm_sv *c, int n)
{
    change_row *r = ctx;
    (void)n;
    r->found = 1;
    cm__copy_text(r->ws, sizeof r->ws, &c[0]);
    cm__copy_text(r->action, sizeof r->action, &c[1]);
    r->credits = c[2].i;
    r->interval = (int)c[3].i;
    cm__copy_text(r->tier, sizeof r->tier, &c[4]);
    r->outcome = (int)c[5].i;
    r->resumed = (int)c[6].i;
    r->granted = c[7].i;
    r->effective_ms = cm__int_or(&c[8], -1);
    return 1;
}

/* A plan grant of credits now, expiring at end (a top-up of the current period k). */
static int top_up(cm_tx *tx, const char *ws, int64_t credits, int64_t end, int64_t k,
                  const char *actor, const char *why, const char *ref)
{
    cm_grant_row g;
    int rc = cm__grant_new(tx, ws, CM_LEDGER_GRANT_PLAN, tx->now, end, k, NULL, 0, 0, NULL, &g);
    if (!rc)
        rc = cm__move(tx, &g, "grant", credits, tx->now, NULL, actor, why, ref);
    return rc;
}

static void describe(char *buf, size_t n, int64_t credits, int interval, const char *tier)
{
    snprintf(buf, n, "%lld credits a month, %s%s%s", (long long)credits,
             cm_ledger_interval_name(interval), *tier ? ", tier " : "", tier);
}

static int plan_set_rules(cm_tx *tx, plan_args *a, plan_row *p)
{
    cm_ledger_plan_result *r = &a->res;
    const char *tier = a->tier ? a->tier : "";
    char what[CM_TEXT_MAX + 64], why[2 * CM_TEXT_MAX + 256], at[40];
    describe(what, sizeof what, a->credits, a->interval, tier);
    int64_t end = p->found ? boundary(p, p->next_period) : -1; /* the current period's end */
    r->effective_ms = tx->now;
    int rc;
    if (!p->found || (p->cancelled_ms >= 0 && end <= tx->now)) {
        r->outcome = CM_LEDGER_PLAN_STARTED;
        r->granted = a->credits * period_months(a->interval);
        rc = CM_RUN(tx, CM_Q_PLAN_PUT, NULL, NULL, CM_T(a->ws), CM_I(a->credits), CM_I(a->interval),
                    CM_T(tier), CM_I(tx->now));
        snprintf(why, sizeof why, "%s: a new period starts now", what);
        if (!rc)
            rc = cm__journal(tx, a->ws, tx->now, "plan_set", -1, NULL, 0, a->as_user, why, a->ref);
        if (!rc)
            rc = cm__grant_plan_period(tx, a->ws, a->credits, a->interval, tx->now, 0, a->as_user);
        return rc;
    }
    int dropped = p->sched_ms >= 0; /* any set replaces a scheduled change */
    p->sched_ms = -1;
    if (p->cancelled_ms >= 0) {
        r->resumed = 1;
        p->cancelled_ms = -1;
    }
    const char *note = r->resumed ? "resumed; " : "";
    if (a->interval == p->interval && a->credits == p->credits) {
        int relabel = strcmp(p->tier, tier) != 0;
        r->outcome = relabel      ? CM_LEDGER_PLAN_RELABELLED
                     : r->resumed ? CM_LEDGER_PLAN_RESUMED
                                  : CM_LEDGER_PLAN_UNCHANGED;
        if (r->outcome == CM_LEDGER_PLAN_UNCHANGED && !dropped) {
            a->noop = 1;
            return CM_LEDGER_OK;
        }
        snprintf(p->tier, sizeof p->tier, "%s", tier);
        snprintf(why, sizeof why, "%s: %s%s%sno grant until the next period", what, note,
                 relabel ? "relabelled; " : "", dropped ? "the scheduled change is dropped; " : "");
        rc = plan_save(tx, a->ws, p);
    } else if (a->interval == p->interval && a->credits > p->credits) {
        /* Whole months left in the current period, counting the current month. */
        int64_t k = p->next_period - 1, begin = boundary(p, k), left = 1;
        if (p->interval == CM_LEDGER_ANNUAL) {
            int64_t m = 0;
            while (m < 11 && cm__time_add_months(begin, m + 1) <= tx->now)
                m++;
            left = 12 - m;
        }
        r->outcome = CM_LEDGER_PLAN_UPGRADED;
        r->granted = (a->credits - p->credits) * left;
        char topup[256];
        snprintf(topup, sizeof topup, "upgrade top-up: (%lld - %lld) x %lld month%s left",
                 (long long)a->credits, (long long)p->credits, (long long)left,
                 left == 1 ? "" : "s");
        snprintf(why, sizeof why, "%s: %supgrade from %lld, effective now", what, note,
                 (long long)p->credits);
        p->credits = a->credits;
        snprintf(p->tier, sizeof p->tier, "%s", tier);
        rc = plan_save(tx, a->ws, p);
        if (!rc)
            rc = cm__journal(tx, a->ws, tx->now, "plan_set", -1, NULL, 0, a->as_user, why, a->ref);
        if (!rc)
            rc = top_up(tx, a->ws, r->granted, end, k, a->as_user, topup, a->ref);
        return rc;
    } else if (a->interval == CM_LEDGER_ANNUAL && p->interval == CM_LEDGER_MONTHLY) {
        r->outcome = CM_LEDGER_PLAN_SWITCHED_TO_ANNUAL;
        r->granted = a->credits * 12;
        rc = CM_RUN(tx, CM_Q_PLAN_PUT, NULL, NULL, CM_T(a->ws), CM_I(a->credits), CM_I(a->interval),
                    CM_T(tier), CM_I(tx->now));
        snprintf(why, sizeof why,
                 "%s: %sswitched to annual, a new period starts now (the monthly grant keeps "
                 "its expiry)",
                 what, note);
        if (!rc)
            rc = cm__journal(tx, a->ws, tx->now, "plan_set", -1, NULL, 0, a->as_user, why, a->ref);
        if (!rc)
            rc = cm__grant_plan_period(tx, a->ws, a->credits, a->interval, tx->now, 0, a->as_user);
        return rc;
    } else { /* a downgrade, or annual -> monthly: from the next boundary */
        r->outcome = a->interval == p->interval ? CM_LEDGER_PLAN_DOWNGRADE_SCHEDULED
                                                : CM_LEDGER_PLAN_MONTHLY_SCHEDULED;
        r->effective_ms = end;
        p->sched_credits = a->credits;
        p->sched_interval = a->interval;
        snprintf(p->sched_tier, sizeof p->sched_tier, "%s", tier);
        p->sched_ms = end;
        snprintf(why, sizeof why, "%s: %sscheduled from %s, the end of the current period", what,
                 note, cm_ledger_time_format(end, at, sizeof at));
        rc = plan_save(tx, a->ws, p);
    }
    if (!rc)
        rc = cm__journal(tx, a->ws, tx->now, "plan_set", -1, NULL, 0, a->as_user, why, a->ref);
    return rc;
}

static int plan_cancel_rules(cm_tx *tx, plan_args *a, plan_row *p)
{
    if (!p->found)
        return cm__ledger_fail(tx->l, CM_LEDGER_E_INVALID, "workspace '%s' has no plan to cancel",
                               a->ws);
    a->res.effective_ms = tx->now;
    if (p->cancelled_ms >= 0) {
        a->res.outcome = CM_LEDGER_PLAN_UNCHANGED;
        a->noop = 1;
        return CM_LEDGER_OK;
    }
    a->res.outcome = CM_LEDGER_PLAN_CANCELLED;
    int dropped = p->sched_ms >= 0;
    p->cancelled_ms = tx->now;
    p->sched_ms = -1;
    int rc = plan_save(tx, a->ws, p);
    if (!rc)
        rc = cm__journal(tx, a->ws, tx->now, "plan_cancel", -1, NULL, 0, a->as_user,
                         dropped ? "no further periods will be granted; the scheduled change "
                                   "is dropped"
                                 : "no further periods will be granted",
                         a->ref);
    return rc;
}

static int plan_body(cm_tx *tx, void *arg)
{
    plan_args *a = arg;
    memset(&a->res, 0, sizeof a->res);
    a->noop = 0;
    int rc = cm__ws_access(tx, a->ws, a->as_user, 1, a->cancel ? "cancel the plan" : "set the plan",
                           NULL);
    if (!rc)
        rc = cm__touch(tx, a->ws);
    const char *tier = a->tier ? a->tier : "";
    const char *action = a->cancel ? "cancel" : "set";
    if (!rc && a->ref) {
        change_row c = {0};
        rc = CM_RUN(tx, CM_Q_PLAN_CHANGE_BY_REF, cb_change, &c, CM_T(a->ref));
        if (!rc && c.found) {
            if (strcmp(c.ws, a->ws) != 0 || strcmp(c.action, action) != 0 ||
                (!a->cancel && (c.credits != a->credits || c.interval != a->interval ||
                                strcmp(c.tier, tier) != 0)))
                return cm__ledger_fail(
                    tx->l, CM_LEDGER_E_CONFLICT,
                    "plan reference '%s' was already used for another plan change", a->ref);
            a->res = (cm_ledger_plan_result){c.outcome, c.resumed, 1, c.granted, c.effective_ms};
            return CM_LEDGER_OK;
        }
    }
    plan_row p;
    if (!rc)
        rc = plan_get(tx, a->ws, &p);
    if (rc)
        return rc;
    rc = a->cancel ? plan_cancel_rules(tx, a, &p) : plan_set_rules(tx, a, &p);
    /* The plan history (check proves the plan grants against it) and the reference. A
     * change that changed nothing is recorded only to keep its reference. */
    if (!rc && (!a->noop || a->ref))
        rc = CM_RUN(tx, CM_Q_PLAN_CHANGE_INSERT, NULL, NULL, CM_T(a->ws), CM_I(tx->now),
                    CM_T(action), CM_I(a->cancel ? p.credits : a->credits),
                    CM_I(a->cancel ? p.interval : a->interval), CM_T(a->cancel ? p.tier : tier),
                    a->ref ? CM_T(a->ref) : CM_N, CM_I(a->res.outcome), CM_I(a->res.resumed),
                    CM_I(a->res.granted), CM_I(a->res.effective_ms));
    /* The outbox: a change that changed something (it has its journal row). */
    if (!rc && !a->noop)
        rc =
            cm__event_plan(tx, a->ws, tx->now, action, a->cancel ? p.credits : a->credits,
                           a->cancel ? p.interval : a->interval, a->cancel ? p.tier : tier,
                           a->res.outcome, a->res.granted, a->res.effective_ms, a->as_user, a->ref);
    return rc;
}

static int valid_ref(cm_ledger *l, const char *ref)
{
    return ref ? cm__valid_id(l, "the plan reference", ref) : CM_LEDGER_OK;
}

int cm_ledger_plan_set_ref(cm_ledger *l, const char *ws, int64_t credits_per_month, int interval,
                           const char *tier, const char *as_user, const char *ref,
                           cm_ledger_plan_result *out)
{
    if (credits_per_month <= 0 || credits_per_month > INT64_C(1000000000000))
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID,
                               "credits per month must be between 1 and 10^12");
    if (interval != CM_LEDGER_MONTHLY && interval != CM_LEDGER_ANNUAL)
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID, "the interval must be monthly or annual");
    if (tier && (strlen(tier) > CM_TEXT_MAX || !cm__text_plain(tier)))
        return cm__ledger_fail(
            l, CM_LEDGER_E_INVALID,
            "the tier name is too long, not UTF-8 text, or holds a control character");
    if (!as_user)
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID, "the acting user is missing");
    int rc = valid_ref(l, ref);
    if (rc)
        return rc;
    plan_args a = {.ws = ws,
                   .tier = tier,
                   .as_user = as_user,
                   .ref = ref,
                   .credits = credits_per_month,
                   .interval = interval};
    rc = cm__tx_run_locked(l, 1, CM_LOCK_WS, ws, plan_body, &a);
    if (!rc && out)
        *out = a.res;
    return rc;
}

int cm_ledger_plan_set(cm_ledger *l, const char *ws, int64_t credits_per_month, int interval,
                       const char *tier, const char *as_user)
{
    return cm_ledger_plan_set_ref(l, ws, credits_per_month, interval, tier, as_user, NULL, NULL);
}

int cm_ledger_plan_cancel_ref(cm_ledger *l, const char *ws, const char *as_user, const char *ref,
                              cm_ledger_plan_result *out)
{
    if (!as_user)
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID, "the acting user is missing");
    int rc = valid_ref(l, ref);
    if (rc)
        return rc;
    plan_args a = {.ws = ws, .as_user = as_user, .ref = ref, .cancel = 1};
    rc = cm__tx_run_locked(l, 1, CM_LOCK_WS, ws, plan_body, &a);
    if (!rc && out)
        *out = a.res;
    return rc;
}

int cm_ledger_plan_cancel(cm_ledger *l, const char *ws, const char *as_user)
{
    return cm_ledger_plan_cancel_ref(l, ws, as_user, NULL, NULL);
}

static int show_body(cm_tx *tx, void *arg)
{
    plan_args *a = arg;
    cm_ledger_plan_info *o = a->info;
    memset(o, 0, sizeof *o);
    o->cancelled_ms = o->sched_ms = -1;
    int rc = cm__ws_access(tx, a->ws, a->as_user, 0, "read the plan", NULL);
    if (!rc)
        rc = cm__touch(tx, a->ws);
    plan_row p;
    if (!rc)
        rc = plan_get(tx, a->ws, &p);
    if (rc || !p.found)
        return rc;
    o->has_plan = 1;
    o->credits = p.credits;
    o->interval = p.interval;
    snprintf(o->tier, sizeof o->tier, "%s", p.tier);
    o->cancelled = p.cancelled_ms >= 0;
    o->cancelled_ms = p.cancelled_ms;
    int64_t k = p.next_period > 0 ? p.next_period - 1 : 0;
    o->period_start_ms = boundary(&p, k);
    o->period_end_ms = boundary(&p, k + 1);
    o->active = o->period_end_ms > tx->now;
    if (p.sched_ms >= 0) {
        o->scheduled = 1;
        o->sched_credits = p.sched_credits;
        o->sched_interval = p.sched_interval;
        snprintf(o->sched_tier, sizeof o->sched_tier, "%s", p.sched_tier);
        o->sched_ms = p.sched_ms;
    }
    return CM_LEDGER_OK;
}

int cm_ledger_plan_show(cm_ledger *l, const char *ws, const char *as_user, cm_ledger_plan_info *out)
{
    if (!out)
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID, "cm_ledger_plan_info: out is NULL");
    cm_ledger_plan_info info;
    plan_args a = {.ws = ws, .as_user = as_user, .info = &info};
    int rc = cm__tx_run_locked(l, 1, CM_LOCK_WS, ws, show_body, &a);
    if (!rc)
        *out = info;
    return rc;
}

const char *cm_ledger_plan_outcome_name(int outcome)
{
    static const char *const names[] = {"unknown",
                                        "started",
                                        "relabelled",
                                        "upgraded",
                                        "downgrade_scheduled",
                                        "switched_to_annual",
                                        "monthly_scheduled",
                                        "cancelled",
                                        "resumed",
                                        "unchanged"};
    if (outcome < 1 || outcome > CM_LEDGER_PLAN_UNCHANGED)
        return names[0];
    return names[outcome];
}

/* ---- sweep ---- */

/* One transaction per workspace: each holds one workspace's lock, never several, and is
 * complete on its own (a crash between two leaves every workspace swept or not, never
 * half). The workspaces are listed first, in id order, in a read transaction. */

static int sweep_list_body(cm_tx *tx, void *arg)
{
    job_list *w = arg; /* workspace ids */
    w->n = 0;          /* a run again starts afresh */
    w->oom = 0;
    int rc = cm__run(tx, CM_Q_WS_ALL, NULL, 0, cb_job, w);
    if (!rc && w->oom)
        rc = cm__ledger_fail(tx->l, CM_LEDGER_E_NOMEM, "out of memory listing workspaces");
    return rc;
}

static int sweep_list_pre(cm_tx *tx, void *arg)
{
    (void)arg;
    return cm__prefetch(tx, CM_Q_WS_ALL, NULL, 0);
}

typedef struct sweep_ws {
    const char *ws;
    cm_ledger_sweep_stats done;
} sweep_ws;

static int sweep_ws_pre(cm_tx *tx, void *arg)
{
    sweep_ws *s = arg;
    return CM_PREFETCH(tx, CM_Q_TOUCH_STATE, CM_T(s->ws), cm__clock_sv(tx));
}

static int sweep_ws_body(cm_tx *tx, void *arg)
{
    sweep_ws *s = arg;
    int rc = cm__touch(tx, s->ws);
    s->done = tx->stats;
    return rc;
}

int cm_ledger_sweep(cm_ledger *l, cm_ledger_sweep_stats *out)
{
    job_list w = {0};
    int rc = cm__tx_run_pre(l, 0, 0, NULL, sweep_list_pre, sweep_list_body, &w);
    cm_ledger_sweep_stats s = {0};
    for (size_t i = 0; !rc && i < w.n; i++) {
        sweep_ws one = {w.jobs[i], {0}};
        rc = cm__tx_run_pre(l, 1, CM_LOCK_WS, w.jobs[i], sweep_ws_pre, sweep_ws_body, &one);
        if (!rc) {
            s.holds_lapsed += one.done.holds_lapsed;
            s.credits_expired += one.done.credits_expired;
            s.periods_granted += one.done.periods_granted;
        }
    }
    free(w.jobs);
    if (!rc && out)
        *out = s;
    return rc;
}
