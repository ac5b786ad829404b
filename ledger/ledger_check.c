/* SPDX-License-Identifier: MIT */
/*
 * ledger_check.c - re-derive every balance from the journal and verify the invariants.
 *
 * The journal is the source of truth; grants.* and holds.* counters are a cache of it.
 * check replays every journal row through cm__apply_movement() (the same effect table
 * the rules use) onto zeroed grants and compares, then verifies for every grant
 * granted = remaining + held + charged + expired - refunded_into, that no counter is
 * negative at any point of the replay, and for every hold that it was taken once,
 * resolved at most once (one operation), consistently with its state, and never
 * refunded beyond its charge, and that its takes name grants of its workspace and add
 * up to what it holds. It reports the first violation found. The journal is replayed
 * workspace by workspace, each in id order (ids and operation numbers are per
 * workspace, and so are grants and holds).
 *
 * Since schema v3 it also proves the rules it can of plans and time: within a workspace
 * the journal's times never decrease (rows since v3); a grant is journalled when its
 * grant was made, an expiry never before its grant's end, a lapse at its hold's lease
 * end; and no plan period is granted more than the plan history (plan_changes) allows,
 * nor overlaps another (but for an annual period starting inside a monthly one).
 * And the strict rules it can (v3: holds binding / prices): the price log chains (each
 * row's old price is the previous row's new one, in its region) and its latest row of
 * each region is the price table's; an input binding a hold keeps is well-formed text;
 * no hold resolved since v3 is committed for 0 credits (nothing costs 0: release).
 */
#include "ledger_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One row of plan_changes, or of journal_v3_from (ws, id in at). */
typedef struct change {
    char ws[CM_ID_MAX + 1];
    int64_t at, credits;
    int interval, set;
} change;

typedef struct change_vec {
    change *v;
    size_t n, cap;
    int oom;
} change_vec;

typedef struct hold_tally {
    cm_hold_row h;
    int64_t hold, commit, back, refund, last_op;
    int64_t taken; /* sum of its takes' credits */
    int res_ops;
    int res_v3; /* resolved by a journal row written since schema v3 */
} hold_tally;

typedef struct check_ctx {
    cm_tx *tx;
    cm_grant_vec stored, derived;
    hold_tally *holds;
    size_t n_holds, cap_holds;
    int oom;
    int rc; /* first violation */
    /* v3: plans and one clock */
    change_vec changes; /* plan_changes by ws, id */
    change_vec v3_from; /* journal_v3_from by ws: the last id written before v3 */
    char last_ws[CM_ID_MAX + 1];
    int64_t last_at, from_id;
} check_ctx;

#define VIOLATION(x, ...)                                                                          \
    ((x)->rc ? (x)->rc : ((x)->rc = cm__ledger_fail((x)->tx->l, CM_LEDGER_E_CHECK, __VA_ARGS__)))

static int cb_hold_all(void *ctx, const cm_sv *c, int n)
{
    check_ctx *x = ctx;
    (void)n;
    if (x->n_holds == x->cap_holds) {
        size_t cap = x->cap_holds ? x->cap_holds * 2 : 64;
        void *p = realloc(x->holds, cap * sizeof *x->holds);
        if (!p) {
            x->oom = 1;
            return 1;
        }
        x->holds = p;
        x->cap_holds = cap;
    }
    hold_tally *t = &x->holds[x->n_holds++];
    memset(t, 0, sizeof *t);
    cm__hold_from_cols(&t->h, c);
    return 0;
}

static int cmp_grant(const void *k, const void *e)
{
    int64_t a = *(const int64_t *)k, b = ((const cm_grant_row *)e)->id;
    return (a > b) - (a < b);
}

static int cmp_hold(const void *k, const void *e)
{
    return strcmp((const char *)k, ((const hold_tally *)e)->h.job);
}

static int negative(const cm_grant_row *g)
{
    return g->granted < 0 || g->remaining < 0 || g->held < 0 || g->charged < 0 || g->expired < 0 ||
           g->refunded_into < 0;
}

static int cmp_change_ws(const void *k, const void *e)
{
    return strcmp((const char *)k, ((const change *)e)->ws);
}

/* One clock: within a workspace, the journal's times never decrease (checked on the rows
 * written since schema v3; earlier ledgers dated some lazy movements out of order). */
static int check_clock(check_ctx *x, const char *ws, int64_t id, int64_t at)
{
    if (strcmp(ws, x->last_ws) != 0) {
        snprintf(x->last_ws, sizeof x->last_ws, "%s", ws);
        const change *f =
            x->v3_from.n ? bsearch(ws, x->v3_from.v, x->v3_from.n, sizeof *f, cmp_change_ws) : NULL;
        x->from_id = f ? f->at : 0;
        x->last_at = -1;
    }
    if (id <= x->from_id)
        return 0;
    if (at < x->last_at) {
        VIOLATION(x,
                  "workspace '%s': journal row %lld is dated before the row preceding it "
                  "(ledger time ran backwards)",
                  ws, (long long)id);
        return 1;
    }
    x->last_at = at;
    return 0;
}

static int cb_journal(void *ctx, const cm_sv *c, int n)
{
    check_ctx *x = ctx;
    (void)n;
    int64_t id = c[0].i, op = c[1].i, credits = c[5].i, at = c[7].i;
    const char *kind = c[2].s ? c[2].s : "";
    if (credits < 0) {
        VIOLATION(x, "journal row %lld moves a negative number of credits", (long long)id);
        return 1;
    }
    if (check_clock(x, c[6].s ? c[6].s : "", id, at))
        return 1;
    if (c[3].type == CM_SV_INT) {
        cm_grant_row *g = bsearch(&c[3].i, x->derived.v, x->derived.n, sizeof *g, cmp_grant);
        if (!g) {
            VIOLATION(x, "journal row %lld names grant %lld, which does not exist", (long long)id,
                      (long long)c[3].i);
            return 1;
        }
        if (cm__apply_movement(g, kind, credits)) {
            VIOLATION(x, "journal row %lld has an unknown movement kind '%s'", (long long)id, kind);
            return 1;
        }
        if (negative(g)) {
            VIOLATION(x, "journal row %lld (%s of %lld) drives grant %lld negative", (long long)id,
                      kind, (long long)credits, (long long)g->id);
            return 1;
        }
        /* Movements are dated when they happened: a grant when its grant was made (a plan
         * period at its start), an expiry never before its grant's end. */
        if (!strcmp(kind, "grant") && at != g->created_ms) {
            VIOLATION(x, "journal row %lld grants grant %lld at another time than it was made",
                      (long long)id, (long long)g->id);
            return 1;
        }
        if (!strcmp(kind, "expiry") && (g->expires_ms < 0 || at < g->expires_ms)) {
            VIOLATION(x, "journal row %lld expires grant %lld before its end", (long long)id,
                      (long long)g->id);
            return 1;
        }
    }
    if (c[4].type == CM_SV_TEXT && strcmp(kind, "expiry") != 0) {
        hold_tally *t = bsearch(c[4].s, x->holds, x->n_holds, sizeof *t, cmp_hold);
        if (!t) {
            VIOLATION(x, "journal row %lld names job '%s', which has no hold", (long long)id,
                      c[4].s);
            return 1;
        }
        if (!strcmp(kind, "hold")) {
            t->hold += credits;
        } else if (!strcmp(kind, "refund")) {
            t->refund += credits;
        } else if (!strcmp(kind, "commit") || !strcmp(kind, "release") || !strcmp(kind, "lapse")) {
            if (!strcmp(kind, "commit"))
                t->commit += credits;
            else
                t->back += credits;
            if (!strcmp(kind, "lapse") && at != t->h.lease_until_ms) {
                VIOLATION(x,
                          "journal row %lld: job '%s' lapsed at another time than its lease "
                          "end",
                          (long long)id, t->h.job);
                return 1;
            }
            if (op != t->last_op) {
                t->res_ops++;
                t->last_op = op;
            }
            if (id > x->from_id) /* check_clock set from_id for this row's workspace */
                t->res_v3 = 1;
        }
    }
    return 0;
}

/* A hold's takes: each names a grant of the hold's workspace and a positive number of
 * credits (their sum is compared with the hold's credits by check_holds). */
static int cb_take(void *ctx, const cm_sv *c, int n)
{
    check_ctx *x = ctx;
    (void)n;
    hold_tally *t = bsearch(c[0].s, x->holds, x->n_holds, sizeof *t, cmp_hold);
    if (!t) {
        VIOLATION(x, "job '%s' has takes but no hold", c[0].s ? c[0].s : "");
        return 1;
    }
    if (c[2].type != CM_SV_INT || c[3].type != CM_SV_INT) {
        VIOLATION(x, "job '%s': the record of the grants it took from is unreadable", t->h.job);
        return 1;
    }
    if (c[4].type != CM_SV_TEXT || strcmp(c[4].s, t->h.ws) != 0) {
        VIOLATION(x, "job '%s' took from grant %lld, which is not a grant of workspace '%s'",
                  t->h.job, (long long)c[2].i, t->h.ws);
        return 1;
    }
    if (c[3].i <= 0) {
        VIOLATION(x, "job '%s' took %lld credits from grant %lld", t->h.job, (long long)c[3].i,
                  (long long)c[2].i);
        return 1;
    }
    t->taken += c[3].i;
    return 0;
}

static void check_grants(check_ctx *x)
{
    for (size_t i = 0; i < x->stored.n && !x->rc; i++) {
        const cm_grant_row *s = &x->stored.v[i], *d = &x->derived.v[i];
        if (negative(s))
            VIOLATION(x, "grant %lld has a negative counter", (long long)s->id);
        else if (s->granted != d->granted || s->remaining != d->remaining || s->held != d->held ||
                 s->charged != d->charged || s->expired != d->expired ||
                 s->refunded_into != d->refunded_into)
            VIOLATION(x,
                      "grant %lld: stored granted/remaining/held/charged/expired/refunded "
                      "%lld/%lld/%lld/%lld/%lld/%lld but the journal gives "
                      "%lld/%lld/%lld/%lld/%lld/%lld",
                      (long long)s->id, (long long)s->granted, (long long)s->remaining,
                      (long long)s->held, (long long)s->charged, (long long)s->expired,
                      (long long)s->refunded_into, (long long)d->granted, (long long)d->remaining,
                      (long long)d->held, (long long)d->charged, (long long)d->expired,
                      (long long)d->refunded_into);
        else if (s->granted != s->remaining + s->held + s->charged + s->expired - s->refunded_into)
            VIOLATION(x,
                      "grant %lld: granted %lld != remaining %lld + held %lld + charged %lld + "
                      "expired %lld - refunded %lld",
                      (long long)s->id, (long long)s->granted, (long long)s->remaining,
                      (long long)s->held, (long long)s->charged, (long long)s->expired,
                      (long long)s->refunded_into);
    }
}

static void check_holds(check_ctx *x)
{
    for (size_t i = 0; i < x->n_holds && !x->rc; i++) {
        const hold_tally *t = &x->holds[i];
        const cm_hold_row *h = &t->h;
        const char *j = h->job;
        if (t->res_ops > 1)
            VIOLATION(x, "job '%s' was resolved %d times", j, t->res_ops);
        else if (t->hold != h->credits)
            VIOLATION(x, "job '%s' holds %lld credits but the journal took %lld", j,
                      (long long)h->credits, (long long)t->hold);
        else if (t->taken != h->credits)
            VIOLATION(x, "job '%s' holds %lld credits but its takes add up to %lld", j,
                      (long long)h->credits, (long long)t->taken);
        else if (h->refunded < 0 || h->refunded > h->charged || t->refund != h->refunded)
            VIOLATION(x, "job '%s': refunded %lld (journal %lld) against a charge of %lld", j,
                      (long long)h->refunded, (long long)t->refund, (long long)h->charged);
        else if (h->state == CM_LEDGER_HELD && (t->res_ops || h->charged))
            VIOLATION(x, "job '%s' is held but the journal resolved it", j);
        else if (h->state == CM_LEDGER_COMMITTED &&
                 (t->res_ops != 1 || t->commit != h->charged || t->commit + t->back != h->credits))
            VIOLATION(x,
                      "job '%s' is committed for %lld but the journal charged %lld and gave "
                      "back %lld of %lld",
                      j, (long long)h->charged, (long long)t->commit, (long long)t->back,
                      (long long)h->credits);
        else if (h->state == CM_LEDGER_COMMITTED && h->charged == 0 && t->res_v3)
            VIOLATION(x,
                      "job '%s' is committed for 0 credits (nothing costs 0; a job that "
                      "charges nothing is released)",
                      j);
        else if ((h->state == CM_LEDGER_RELEASED || h->state == CM_LEDGER_LAPSED) &&
                 (t->res_ops != 1 || t->commit || h->charged || t->back != h->credits))
            VIOLATION(x, "job '%s' is %s but the journal gave back %lld of %lld and charged %lld",
                      j, cm_ledger_hold_state_name(h->state), (long long)t->back,
                      (long long)h->credits, (long long)t->commit);
        else if (h->state < CM_LEDGER_HELD || h->state > CM_LEDGER_LAPSED)
            VIOLATION(x, "job '%s' has an unknown state %d", j, h->state);
    }
}

/* v3: an input binding is the job id's idempotency key for retries of the same input:
 * the hold keeps a well-formed one (1 to CM_ID_MAX bytes of text without control
 * characters), on a hold that exists. */
static int cb_binding(void *ctx, const cm_sv *c, int n)
{
    check_ctx *x = ctx;
    (void)n;
    const char *job = c[0].s ? c[0].s : "";
    const char *b = c[1].type == CM_SV_TEXT ? c[1].s : NULL;
    if (!bsearch(job, x->holds, x->n_holds, sizeof *x->holds, cmp_hold)) {
        VIOLATION(x, "job '%s' has an input binding but no hold", job);
        return 1;
    }
    if (!b || !*b || strlen(b) > CM_ID_MAX || !cm__text_plain(b)) {
        VIOLATION(x, "job '%s' keeps an input binding that is empty, too long or not text", job);
        return 1;
    }
    return 0;
}

/* v3: the price log, region by region: each change starts from the price the previous
 * change of its region left, changes something, and sets a price the ledger accepts. */
typedef struct price_state {
    char region[CM_ID_MAX + 1];
    char currency[4];
    int64_t unit_minor;
} price_state;

typedef struct price_ctx {
    check_ctx *x;
    price_state *v;
    size_t n, cap;
    int found; /* price table lookups */
    char currency[4];
    int64_t unit_minor;
} price_ctx;

static int cb_price_log(void *ctx, const cm_sv *c, int n)
{
    price_ctx *p = ctx;
    check_ctx *x = p->x;
    (void)n;
    int64_t id = c[0].i;
    const char *region = c[3].s ? c[3].s : "";
    const char *old_cur = c[4].type == CM_SV_TEXT ? c[4].s : NULL;
    int64_t old_unit = c[5].type == CM_SV_INT ? c[5].i : -1;
    const char *new_cur = c[6].s ? c[6].s : "";
    int64_t new_unit = c[7].i;
    if (cm_ledger_currency_exponent(new_cur) < 0 || new_unit < 1) {
        VIOLATION(x, "price log row %lld sets region '%s' to a price the ledger refuses",
                  (long long)id, region);
        return 1;
    }
    if (old_cur && old_unit == new_unit && !strcmp(old_cur, new_cur)) {
        VIOLATION(x, "price log row %lld records no change of region '%s'", (long long)id, region);
        return 1;
    }
    size_t i = 0;
    while (i < p->n && strcmp(p->v[i].region, region) != 0)
        i++;
    if (i == p->n) { /* its first change: what it had before is not in the log */
        if (p->n == p->cap) {
            size_t cap = p->cap ? p->cap * 2 : 16;
            void *q = realloc(p->v, cap * sizeof *p->v);
            if (!q) {
                x->oom = 1;
                return 1;
            }
            p->v = q;
            p->cap = cap;
        }
        snprintf(p->v[p->n].region, sizeof p->v[p->n].region, "%s", region);
        p->n++;
    } else if (!old_cur || strcmp(old_cur, p->v[i].currency) != 0 ||
               old_unit != p->v[i].unit_minor) {
        VIOLATION(x,
                  "price log row %lld: region '%s' changed from a price its previous change "
                  "did not set (the log does not chain)",
                  (long long)id, region);
        return 1;
    }
    snprintf(p->v[i].currency, sizeof p->v[i].currency, "%s", new_cur);
    p->v[i].unit_minor = new_unit;
    return 0;
}

static int cb_price_now(void *ctx, const cm_sv *c, int n)
{
    price_ctx *p = ctx;
    (void)n;
    p->found = 1;
    cm__copy_text(p->currency, sizeof p->currency, &c[0]);
    p->unit_minor = c[1].i;
    return 0;
}

/* Each region's latest logged price is the price table's. */
static int check_prices(check_ctx *x)
{
    price_ctx p = {.x = x};
    int rc = cm__run(x->tx, CM_Q_PRICE_LOG_LIST, (cm_sv[]){CM_N}, 1, cb_price_log, &p);
    for (size_t i = 0; !rc && !x->rc && !x->oom && i < p.n; i++) {
        p.found = 0;
        rc = cm__run(x->tx, CM_Q_PRICE_GET, (cm_sv[]){CM_T(p.v[i].region)}, 1, cb_price_now, &p);
        if (!rc && (!p.found || strcmp(p.currency, p.v[i].currency) != 0 ||
                    p.unit_minor != p.v[i].unit_minor))
            VIOLATION(x,
                      "region '%s': the price table differs from the last change the price "
                      "log records",
                      p.v[i].region);
    }
    free(p.v);
    return rc;
}

static int cb_change(void *ctx, const cm_sv *c, int n)
{
    change_vec *v = ctx;
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        void *p = realloc(v->v, cap * sizeof *v->v);
        if (!p) {
            v->oom = 1;
            return 1;
        }
        v->v = p;
        v->cap = cap;
    }
    change *r = &v->v[v->n++];
    memset(r, 0, sizeof *r);
    cm__copy_text(r->ws, sizeof r->ws, &c[0]);
    r->at = c[1].i;
    if (n >= 5) { /* plan_changes: ws, at_ms, action, credits, interval */
        r->set = c[2].s && !strcmp(c[2].s, "set");
        r->credits = c[3].i;
        r->interval = (int)c[4].i;
    }
    return 0;
}

/* No monthly period is longer than 31 days (a top-up starts later, so is shorter); an
 * annual one is at least 365 days. */
#define MONTH_MAX_MS (INT64_C(31) * 86400000)

/* The plan grants of one workspace that expire together: one period (its grant and any
 * upgrade top-up). */
typedef struct period_group {
    int64_t begin, end, granted;
} period_group;

static int cmp_group(const void *a, const void *b)
{
    const period_group *x = a, *y = b;
    if (x->begin != y->begin)
        return (x->begin > y->begin) - (x->begin < y->begin);
    return (x->end > y->end) - (x->end < y->end);
}

/* The most a period [begin, end) may be granted: the largest allowance (N, or 12 x N for
 * annual) among the plans set in the workspace that were in effect at some instant of
 * it (the last set before begin, and every set from begin to before end: several sets
 * at one instant are each in effect at it). -1 when no set is known at or before begin
 * (a plan of a ledger older than v3). */
static int64_t allowance(const change *c, size_t n, int64_t begin, int64_t end)
{
    int64_t best = -1, before = -1;
    int known = 0;
    for (size_t i = 0; i < n; i++) {
        if (!c[i].set)
            continue;
        int64_t a = c[i].credits * (c[i].interval == CM_LEDGER_ANNUAL ? 12 : 1);
        if (c[i].at < begin)
            before = a;
        else if (c[i].at < end && a > best)
            best = a;
        if (c[i].at <= begin)
            known = 1;
    }
    if (!known)
        return -1;
    return before > best ? before : best;
}

/* Plan rules, per workspace, for the periods granted since its first recorded plan change
 * (schema v3): no period is granted more than the plan history allows, and periods
 * follow one another without overlapping, except that an annual period may start
 * inside a monthly one (monthly -> annual keeps the monthly grant). */
static void check_plans(check_ctx *x)
{
    size_t i = 0;
    while (i < x->changes.n && !x->rc) {
        const change *c = &x->changes.v[i];
        size_t n = 1;
        while (i + n < x->changes.n && !strcmp(x->changes.v[i + n].ws, c->ws))
            n++;
        int64_t first = c->at;
        for (size_t k = 1; k < n; k++)
            if (c[k].at < first)
                first = c[k].at;
        period_group *g = NULL;
        size_t ng = 0;
        for (size_t k = 0; k < x->stored.n; k++) {
            const cm_grant_row *r = &x->stored.v[k];
            if (r->kind != CM_LEDGER_GRANT_PLAN || strcmp(r->ws, c->ws) != 0 || r->expires_ms < 0)
                continue;
            size_t j = 0;
            while (j < ng && g[j].end != r->expires_ms)
                j++;
            if (j == ng) {
                void *p = realloc(g, (ng + 1) * sizeof *g);
                if (!p) {
                    x->oom = 1;
                    break;
                }
                g = p;
                g[ng++] = (period_group){r->created_ms, r->expires_ms, 0};
            }
            if (r->created_ms < g[j].begin)
                g[j].begin = r->created_ms;
            g[j].granted += r->granted;
        }
        if (g)
            qsort(g, ng, sizeof *g, cmp_group);
        const period_group *prev = NULL;
        for (size_t j = 0; j < ng && !x->rc && !x->oom; j++) {
            if (g[j].begin < first)
                continue; /* granted before the plan history was kept */
            int64_t most = allowance(c, n, g[j].begin, g[j].end);
            if (most >= 0 && g[j].granted > most)
                VIOLATION(x,
                          "workspace '%s': the plan period ending %lld was granted %lld credits, "
                          "more than the %lld its plan history allows",
                          c->ws, (long long)g[j].end, (long long)g[j].granted, (long long)most);
            else if (prev && g[j].begin < prev->end &&
                     !(prev->end - prev->begin <= MONTH_MAX_MS &&
                       g[j].end - g[j].begin > MONTH_MAX_MS && g[j].begin > prev->begin))
                VIOLATION(x,
                          "workspace '%s': the plan period from %lld overlaps the one from %lld "
                          "(two allowances at once)",
                          c->ws, (long long)g[j].begin, (long long)prev->begin);
            if (!prev || g[j].end > prev->end)
                prev = &g[j];
        }
        free(g);
        i += n;
    }
}

/* v4: the outbox. The first movement journaled since schema v4 whose operation has no
 * event of its kind (commit, release, lapse, refund, purchase, plan_set/plan_cancel ->
 * plan_change; the release of a committed hold's unused part belongs to its commit). */
typedef struct unmatched {
    int found;
    char ws[CM_ID_MAX + 1], kind[32], job[CM_ID_MAX + 1];
    int64_t id;
} unmatched;

static int cb_unmatched(void *ctx, const cm_sv *c, int n)
{
    unmatched *u = ctx;
    (void)n;
    u->found = 1;
    cm__copy_text(u->ws, sizeof u->ws, &c[0]);
    u->id = c[1].i;
    cm__copy_text(u->kind, sizeof u->kind, &c[2]);
    cm__copy_text(u->job, sizeof u->job, &c[3]);
    return 1;
}

static int check_events(cm_tx *tx)
{
    unmatched u = {0};
    int rc = cm__run(tx, CM_Q_EVENTS_UNMATCHED, NULL, 0, cb_unmatched, &u);
    if (!rc && u.found)
        rc = cm__ledger_fail(tx->l, CM_LEDGER_E_CHECK,
                             "workspace '%s': journal row %lld (%s%s%s) has no event in the "
                             "outbox",
                             u.ws, (long long)u.id, u.kind, u.job[0] ? " of job " : "", u.job);
    return rc;
}

static int check_body(cm_tx *tx, void *arg)
{
    (void)arg;
    check_ctx x = {.tx = tx};
    int rc = cm__grant_list(tx, CM_Q_GRANT_ALL, NULL, 0, &x.stored);
    if (rc)
        return rc;
    x.derived = x.stored;
    x.derived.v = malloc((x.stored.n ? x.stored.n : 1) * sizeof *x.derived.v);
    if (!x.derived.v) {
        cm__grant_vec_free(&x.stored);
        return cm__ledger_fail(tx->l, CM_LEDGER_E_NOMEM, "out of memory checking the ledger");
    }
    for (size_t i = 0; i < x.stored.n; i++) {
        cm_grant_row *d = &x.derived.v[i];
        *d = x.stored.v[i];
        d->granted = d->remaining = d->held = d->charged = d->expired = d->refunded_into = 0;
    }
    rc = cm__run(tx, CM_Q_HOLD_ALL, NULL, 0, cb_hold_all, &x);
    if (!rc && x.oom)
        rc = cm__ledger_fail(tx->l, CM_LEDGER_E_NOMEM, "out of memory checking the ledger");
    if (!rc)
        rc = cm__run(tx, CM_Q_TAKES_ALL, NULL, 0, cb_take, &x);
    if (!rc)
        rc = cm__run(tx, CM_Q_JOURNAL_V3_FROM, NULL, 0, cb_change, &x.v3_from);
    if (!rc)
        rc = cm__run(tx, CM_Q_PLAN_CHANGES_ALL, NULL, 0, cb_change, &x.changes);
    if (!rc && (x.v3_from.oom || x.changes.oom))
        rc = cm__ledger_fail(tx->l, CM_LEDGER_E_NOMEM, "out of memory checking the ledger");
    if (!rc)
        rc = cm__run(tx, CM_Q_JOURNAL_ALL, NULL, 0, cb_journal, &x);
    if (!rc)
        check_grants(&x);
    if (!rc)
        check_holds(&x);
    if (!rc)
        check_plans(&x);
    if (!rc && !x.rc && !x.oom)
        rc = cm__run(tx, CM_Q_HOLD_BINDINGS_ALL, NULL, 0, cb_binding, &x);
    if (!rc && !x.rc && !x.oom)
        rc = check_prices(&x);
    if (!rc && !x.rc && !x.oom)
        rc = check_events(tx);
    if (!rc && x.oom)
        rc = cm__ledger_fail(tx->l, CM_LEDGER_E_NOMEM, "out of memory checking the ledger");
    if (!rc)
        rc = x.rc;
    free(x.changes.v);
    free(x.v3_from.v);
    cm__grant_vec_free(&x.stored);
    free(x.derived.v);
    free(x.holds);
    return rc;
}

int cm_ledger_check(cm_ledger *l)
{
    return cm__tx_run(l, 0, check_body, NULL);
}
