/*
 * ledger_check.c - re-derive every balance from the journal and verify the invariants.
 *
 * The journal is the source of truth; grants.* and holds.* counters are a cache of it.
 * check replays every journal row through cm_apply_movement() (the same effect table
 * the rules use) onto zeroed grants and compares, then verifies for every grant
 * granted = remaining + held + charged + expired - refunded_into, that no counter is
 * negative at any point of the replay, and for every hold that it was taken once,
 * resolved at most once (one operation), consistently with its state, and never
 * refunded beyond its charge, and that its takes name grants of its workspace and add
 * up to what it holds. It reports the first violation found. The journal is replayed
 * workspace by workspace, each in id order (ids and operation numbers are per
 * workspace, and so are grants and holds).
 */
#include "ledger_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct hold_tally {
    cm_hold_row h;
    int64_t hold, commit, back, refund, last_op;
    int64_t taken; /* sum of its takes' credits */
    int res_ops;
} hold_tally;

typedef struct check_ctx {
    cm_tx *tx;
    cm_grant_vec stored, derived;
    hold_tally *holds;
    size_t n_holds, cap_holds;
    int oom;
    int rc; /* first violation */
} check_ctx;

#define VIOLATION(x, ...)                                                                          \
    ((x)->rc ? (x)->rc : ((x)->rc = cm_fail((x)->tx->l, CM_LEDGER_E_CHECK, __VA_ARGS__)))

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
    cm_hold_from_cols(&t->h, c);
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
    return g->granted < 0 || g->remaining < 0 || g->held < 0 || g->charged < 0 ||
           g->expired < 0 || g->refunded_into < 0;
}

static int cb_journal(void *ctx, const cm_sv *c, int n)
{
    check_ctx *x = ctx;
    (void)n;
    int64_t id = c[0].i, op = c[1].i, credits = c[5].i;
    const char *kind = c[2].s ? c[2].s : "";
    if (credits < 0) {
        VIOLATION(x, "journal row %lld moves a negative number of credits", (long long)id);
        return 1;
    }
    if (c[3].type == CM_SV_INT) {
        cm_grant_row *g = bsearch(&c[3].i, x->derived.v, x->derived.n, sizeof *g, cmp_grant);
        if (!g) {
            VIOLATION(x, "journal row %lld names grant %lld, which does not exist", (long long)id,
                      (long long)c[3].i);
            return 1;
        }
        if (cm_apply_movement(g, kind, credits)) {
            VIOLATION(x, "journal row %lld has an unknown movement kind '%s'", (long long)id, kind);
            return 1;
        }
        if (negative(g)) {
            VIOLATION(x, "journal row %lld (%s of %lld) drives grant %lld negative",
                      (long long)id, kind, (long long)credits, (long long)g->id);
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
        } else if (!strcmp(kind, "commit") || !strcmp(kind, "release") ||
                   !strcmp(kind, "lapse")) {
            if (!strcmp(kind, "commit"))
                t->commit += credits;
            else
                t->back += credits;
            if (op != t->last_op) {
                t->res_ops++;
                t->last_op = op;
            }
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
        VIOLATION(x, "job '%s': the record of the grants it took from is unreadable",
                  t->h.job);
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
                      (long long)s->refunded_into, (long long)d->granted,
                      (long long)d->remaining, (long long)d->held, (long long)d->charged,
                      (long long)d->expired, (long long)d->refunded_into);
        else if (s->granted !=
                 s->remaining + s->held + s->charged + s->expired - s->refunded_into)
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
            VIOLATION(x, "job '%s' is committed for %lld but the journal charged %lld and gave "
                         "back %lld of %lld",
                      j, (long long)h->charged, (long long)t->commit, (long long)t->back,
                      (long long)h->credits);
        else if ((h->state == CM_LEDGER_RELEASED || h->state == CM_LEDGER_LAPSED) &&
                 (t->res_ops != 1 || t->commit || h->charged || t->back != h->credits))
            VIOLATION(x, "job '%s' is %s but the journal gave back %lld of %lld and charged %lld",
                      j, cm_ledger_hold_state_name(h->state), (long long)t->back,
                      (long long)h->credits, (long long)t->commit);
        else if (h->state < CM_LEDGER_HELD || h->state > CM_LEDGER_LAPSED)
            VIOLATION(x, "job '%s' has an unknown state %d", j, h->state);
    }
}

static int check_body(cm_tx *tx, void *arg)
{
    (void)arg;
    check_ctx x = {.tx = tx};
    int rc = cm_grant_list(tx, CM_Q_GRANT_ALL, NULL, 0, &x.stored);
    if (rc)
        return rc;
    x.derived = x.stored;
    x.derived.v = malloc((x.stored.n ? x.stored.n : 1) * sizeof *x.derived.v);
    if (!x.derived.v) {
        cm_grant_vec_free(&x.stored);
        return cm_fail(tx->l, CM_LEDGER_E_NOMEM, "out of memory checking the ledger");
    }
    for (size_t i = 0; i < x.stored.n; i++) {
        cm_grant_row *d = &x.derived.v[i];
        *d = x.stored.v[i];
        d->granted = d->remaining = d->held = d->charged = d->expired = d->refunded_into = 0;
    }
    rc = cm_run(tx, CM_Q_HOLD_ALL, NULL, 0, cb_hold_all, &x);
    if (!rc && x.oom)
        rc = cm_fail(tx->l, CM_LEDGER_E_NOMEM, "out of memory checking the ledger");
    if (!rc)
        rc = cm_run(tx, CM_Q_TAKES_ALL, NULL, 0, cb_take, &x);
    if (!rc)
        rc = cm_run(tx, CM_Q_JOURNAL_ALL, NULL, 0, cb_journal, &x);
    if (!rc)
        check_grants(&x);
    if (!rc)
        check_holds(&x);
    if (!rc)
        rc = x.rc;
    cm_grant_vec_free(&x.stored);
    free(x.derived.v);
    free(x.holds);
    return rc;
}

int cm_ledger_check(cm_ledger *l)
{
    return cm_tx_run(l, 0, check_body, NULL);
}
