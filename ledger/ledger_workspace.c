/* SPDX-License-Identifier: MIT */
/*
 * ledger_workspace.c - workspaces, members, the price table and add-on purchases.
 *
 * A workspace has one owner (fixed at creation) and members. Only the owner buys
 * credits or changes the plan (ledger_plan.c); members spend from the shared pool.
 * Add-on credits never expire and are priced from the workspace region's row of the
 * price table, or the "default" row (USD 15 minor units, seeded by the schema).
 * A payment reference makes a purchase idempotent: it is unique across all grants.
 */
#include "ledger_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ws_args {
    const char *ws, *user, *as_user, *region;
    int op; /* 0 create, 1 add, 2 remove */
} ws_args;

static int cb_found(void *ctx, const cm_sv *c, int n)
{
    (void)c;
    (void)n;
    *(int *)ctx = 1;
    return 1;
}

static int create_body(cm_tx *tx, void *arg)
{
    ws_args *a = arg;
    cm_ws_row w;
    int found = 0;
    int rc = cm__ws_get(tx, a->ws, &w, &found);
    if (rc)
        return rc;
    if (found) {
        if (strcmp(w.owner, a->user) == 0 && strcmp(w.region, a->region) == 0)
            return CM_LEDGER_OK;
        /* Say no more than that the id is taken: the caller may be a stranger. */
        return cm__ledger_fail(tx->l, CM_LEDGER_E_CONFLICT,
                               "workspace id '%s' is already taken by another workspace", a->ws);
    }
    rc = CM_RUN(tx, CM_Q_WS_INSERT, NULL, NULL, CM_T(a->ws), CM_T(a->user), CM_T(a->region),
                CM_I(tx->now));
    if (!rc) {
        char why[CM_ID_MAX + 32];
        snprintf(why, sizeof why, "created in region %s", a->region);
        rc = cm__journal(tx, a->ws, tx->now, "workspace", -1, NULL, 0, a->user, why, NULL);
    }
    return rc;
}

int cm_ledger_workspace_create(cm_ledger *l, const char *ws, const char *owner, const char *region)
{
    char reg[16];
    int rc = cm__valid_id(l, "the workspace id", ws);
    if (!rc)
        rc = cm__valid_id(l, "the owner", owner);
    if (!rc)
        rc = cm__region_normalize(l, region, reg, sizeof reg);
    if (rc)
        return rc;
    ws_args a = {ws, owner, owner, reg, 0};
    return cm__tx_run_locked(l, 1, CM_LOCK_WS, ws, create_body, &a);
}

static int member_body(cm_tx *tx, void *arg)
{
    ws_args *a = arg;
    cm_ws_row w;
    int rc =
        cm__ws_access(tx, a->ws, a->as_user, 1, a->op == 1 ? "add members" : "remove members", &w);
    if (!rc) /* its rows are dated in ledger time, after what happened before them */
        rc = cm__touch(tx, a->ws);
    if (rc)
        return rc;
    if (strcmp(a->user, w.owner) == 0) {
        if (a->op == 1)
            return CM_LEDGER_OK; /* the owner is always a member */
        return cm__ledger_fail(tx->l, CM_LEDGER_E_INVALID,
                               "the owner of workspace '%s' cannot be removed", a->ws);
    }
    int member = 0;
    rc = CM_RUN(tx, CM_Q_MEMBER_GET, cb_found, &member, CM_T(a->ws), CM_T(a->user));
    if (!rc && !member && a->op == 2)
        return cm__ledger_fail(tx->l, CM_LEDGER_E_NOT_MEMBER,
                               "user '%s' is not a member of workspace '%s'; nothing was removed",
                               a->user, a->ws);
    if (rc || (member && a->op == 1))
        return rc; /* adding a member again: a retry */
    rc = CM_RUN(tx, a->op == 1 ? CM_Q_MEMBER_INSERT : CM_Q_MEMBER_DELETE, NULL, NULL, CM_T(a->ws),
                CM_T(a->user));
    if (!rc)
        rc = cm__journal(tx, a->ws, tx->now, a->op == 1 ? "member_add" : "member_remove", -1, NULL,
                         0, a->as_user, a->user, NULL);
    return rc;
}

static int member_change(cm_ledger *l, const char *ws, const char *user, const char *as_user,
                         int op)
{
    int rc = cm__valid_id(l, "the member's user id", user);
    if (!rc)
        rc = cm__valid_id(l, "the acting user", as_user);
    if (rc)
        return rc;
    ws_args a = {ws, user, as_user, NULL, op};
    return cm__tx_run_locked(l, 1, CM_LOCK_WS, ws, member_body, &a);
}

int cm_ledger_member_add(cm_ledger *l, const char *ws, const char *user, const char *as_user)
{
    return member_change(l, ws, user, as_user, 1);
}

int cm_ledger_member_remove(cm_ledger *l, const char *ws, const char *user, const char *as_user)
{
    return member_change(l, ws, user, as_user, 2);
}

/* ---- prices ---- */

typedef struct price_args {
    const char *region, *currency, *actor;
    int64_t unit_minor;
} price_args;

typedef struct price_row {
    int found;
    char currency[4];
    int64_t unit_minor;
} price_row;

static int cb_price(void *ctx, const cm_sv *c, int n)
{
    price_row *p = ctx;
    (void)n;
    p->found = 1;
    cm__copy_text(p->currency, sizeof p->currency, &c[0]);
    p->unit_minor = c[1].i;
    return 1;
}

static int price_body(cm_tx *tx, void *arg)
{
    price_args *a = arg;
    price_row old = {0};
    int rc = CM_RUN(tx, CM_Q_PRICE_GET, cb_price, &old, CM_T(a->region));
    if (rc ||
        (old.found && strcmp(old.currency, a->currency) == 0 && old.unit_minor == a->unit_minor))
        return rc; /* the price it already has: nothing changes, nothing is logged */
    rc = CM_RUN(tx, CM_Q_PRICE_UPSERT, NULL, NULL, CM_T(a->region), CM_T(a->currency),
                CM_I(a->unit_minor));
    if (!rc) /* v3: holds binding / prices */
        rc =
            CM_RUN(tx, CM_Q_PRICE_LOG_INSERT, NULL, NULL, CM_I(tx->now), CM_T(a->actor),
                   CM_T(a->region), old.found ? CM_T(old.currency) : CM_N,
                   old.found ? CM_I(old.unit_minor) : CM_N, CM_T(a->currency), CM_I(a->unit_minor));
    return rc;
}

int cm_ledger_price_set(cm_ledger *l, const char *region, const char *currency, int64_t unit_minor)
{
    return cm_ledger_price_set_by(l, region, currency, unit_minor, NULL);
}

int cm_ledger_price_set_by(cm_ledger *l, const char *region, const char *currency,
                           int64_t unit_minor, const char *operator_id)
{
    char reg[16];
    int rc = cm__region_normalize(l, region, reg, sizeof reg);
    if (!rc && operator_id)
        rc = cm__valid_id(l, "the operator", operator_id);
    if (rc)
        return rc;
    if (cm_ledger_currency_exponent(currency) < 0)
        return cm__ledger_fail(
            l, CM_LEDGER_E_INVALID,
            "currency '%.16s' is not an ISO 4217 code this ledger knows (such as "
            "USD, EUR, GBP, JPY, INR; upper case)",
            currency && cm__text_plain(currency) ? currency : "?");
    if (unit_minor < 1 || unit_minor > INT64_C(1000000000))
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID,
                               "the unit price must be 1 to 10^9 minor units (nothing is free)");
    price_args a = {reg, currency, operator_id ? operator_id : "operator", unit_minor};
    return cm__tx_run_locked(l, 1, CM_LOCK_PRICE, reg, price_body, &a);
}

/* ---- buy ---- */

typedef struct buy_args {
    const char *ws, *as_user, *ref;
    int64_t credits;
    cm_ledger_purchase *out;
} buy_args;

static void fill_purchase(cm_ledger_purchase *out, const cm_grant_row *g, int64_t credits,
                          int replayed)
{
    out->grant_id = g->id;
    out->credits = credits;
    out->unit_minor = g->unit_minor;
    out->total_minor = g->total_minor;
    snprintf(out->currency, sizeof out->currency, "%s", g->currency);
    out->replayed = replayed;
}

/* The unit price of w's region (or of "default") and the total for credits. */
static int price_of(cm_tx *tx, const cm_ws_row *w, int64_t credits, price_row *p, int64_t *total)
{
    memset(p, 0, sizeof *p);
    int rc = CM_RUN(tx, CM_Q_PRICE_GET, cb_price, p, CM_T(w->region));
    if (!rc && !p->found)
        rc = CM_RUN(tx, CM_Q_PRICE_GET, cb_price, p, CM_T("default"));
    if (rc)
        return rc;
    if (!p->found)
        return cm__ledger_fail(tx->l, CM_LEDGER_E_STORAGE, "the price table has no default row");
    if (p->unit_minor > 0 && credits > INT64_MAX / p->unit_minor)
        return cm__ledger_fail(tx->l, CM_LEDGER_E_INVALID, "the price of %lld credits overflows",
                               (long long)credits);
    *total = credits * p->unit_minor;
    return CM_LEDGER_OK;
}

static int buy_body(cm_tx *tx, void *arg)
{
    buy_args *a = arg;
    cm_ws_row w;
    int rc = cm__ws_access(tx, a->ws, a->as_user, 1, "buy credits", &w);
    if (!rc)
        rc = cm__touch(tx, a->ws);
    if (rc)
        return rc;
    if (a->ref) {
        cm_grant_vec v;
        rc = cm__grant_list(tx, CM_Q_GRANT_BY_REF, (const cm_sv[]){CM_T(a->ref)}, 1, &v);
        if (rc)
            return rc;
        if (v.n) {
            cm_grant_row g = v.v[0];
            cm__grant_vec_free(&v);
            if (strcmp(g.ws, a->ws) != 0 || g.granted != a->credits ||
                g.kind != CM_LEDGER_GRANT_ADDON)
                return cm__ledger_fail(
                    tx->l, CM_LEDGER_E_CONFLICT,
                    "payment reference '%s' was already used for another purchase", a->ref);
            fill_purchase(a->out, &g, a->credits, 1);
            return CM_LEDGER_OK;
        }
        cm__grant_vec_free(&v);
    }
    price_row p;
    int64_t total;
    rc = price_of(tx, &w, a->credits, &p, &total);
    if (rc)
        return rc;
    cm_grant_row g;
    rc = cm__grant_new(tx, a->ws, CM_LEDGER_GRANT_ADDON, tx->now, -1, -1, a->ref, p.unit_minor,
                       total, p.currency, &g);
    /* Money for people: in the currency's decimals ("5 x 0.15 = 0.75 USD"). */
    char why[128], unit[40], sum[40];
    cm_ledger_money_format(p.unit_minor, p.currency, unit, sizeof unit);
    cm_ledger_money_format(total, p.currency, sum, sizeof sum);
    unit[strcspn(unit, " ")] = 0; /* the currency is said once, after the total */
    snprintf(why, sizeof why, "add-on: %lld x %s = %s", (long long)a->credits, unit, sum);
    if (!rc)
        rc = cm__move(tx, &g, "purchase", a->credits, tx->now, NULL, a->as_user, why, a->ref);
    if (!rc)
        rc = cm__event_purchase(tx, &g, a->credits, a->as_user, a->ref);
    if (!rc)
        fill_purchase(a->out, &g, a->credits, 0);
    return rc;
}

int cm_ledger_buy(cm_ledger *l, const char *ws, int64_t credits, const char *as_user,
                  const char *payment_ref, cm_ledger_purchase *out)
{
    if (credits <= 0 || credits > INT64_C(1000000000000))
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID,
                               "credits to buy must be between 1 and 10^12");
    int rc = cm__valid_id(l, "the acting user", as_user);
    if (!rc && payment_ref)
        rc = cm__valid_id(l, "the payment reference", payment_ref);
    if (rc)
        return rc;
    /* The body fills tmp; *out gets it only once the transaction committed, so a
     * failing COMMIT leaves the caller's struct untouched. */
    cm_ledger_purchase tmp;
    buy_args a = {ws, as_user, payment_ref, credits, &tmp};
    rc = cm__tx_run_locked(l, 1, CM_LOCK_WS, ws, buy_body, &a);
    if (!rc && out)
        *out = tmp;
    return rc;
}

/* ---- the price before buying ---- */

static int price_quote_body(cm_tx *tx, void *arg)
{
    buy_args *a = arg;
    cm_ws_row w;
    int rc = cm__ws_access(tx, a->ws, a->as_user, 0, "see prices", &w);
    if (!rc)
        rc = cm__touch(tx, a->ws);
    if (rc)
        return rc;
    price_row p;
    int64_t total;
    rc = price_of(tx, &w, a->credits, &p, &total);
    if (rc)
        return rc;
    memset(a->out, 0, sizeof *a->out);
    a->out->grant_id = -1;
    a->out->credits = a->credits;
    a->out->unit_minor = p.unit_minor;
    a->out->total_minor = total;
    snprintf(a->out->currency, sizeof a->out->currency, "%s", p.currency);
    return CM_LEDGER_OK;
}

int cm_ledger_price(cm_ledger *l, const char *ws, int64_t credits, const char *as_user,
                    cm_ledger_purchase *out)
{
    if (credits <= 0 || credits > INT64_C(1000000000000))
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID,
                               "credits to price must be between 1 and 10^12");
    if (!out)
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID, "cm_ledger_price: out is NULL");
    cm_ledger_purchase tmp;
    buy_args a = {ws, as_user, NULL, credits, &tmp};
    int rc = cm__tx_run_locked(l, 1, CM_LOCK_WS, ws, price_quote_body, &a);
    if (!rc)
        *out = tmp;
    return rc;
}

/* ---- the price log ---- */

typedef struct plog_args {
    const char *region;
    cm_ledger_price_history_result **out;
} plog_args;

typedef struct plog_ctx {
    cm_ledger_price_history_result *h;
    size_t cap;
    int oom;
} plog_ctx;

static int cb_plog(void *ctx, const cm_sv *c, int n)
{
    plog_ctx *x = ctx;
    (void)n;
    if (x->h->n_changes == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 8;
        void *p = realloc(x->h->changes, cap * sizeof *x->h->changes);
        if (!p) {
            x->oom = 1;
            return 1;
        }
        x->h->changes = p;
        x->cap = cap;
    }
    cm_ledger_price_change *e = &x->h->changes[x->h->n_changes];
    memset(e, 0, sizeof *e);
    e->id = c[0].i;
    e->at_ms = c[1].i;
    e->actor = strdup(c[2].type == CM_SV_TEXT ? c[2].s : "");
    e->region = strdup(c[3].type == CM_SV_TEXT ? c[3].s : "");
    x->h->n_changes++; /* counted now so that a failure below frees what was copied */
    if (!e->actor || !e->region) {
        x->oom = 1;
        return 1;
    }
    cm__copy_text(e->old_currency, sizeof e->old_currency, &c[4]);
    e->old_unit_minor = cm__int_or(&c[5], -1);
    cm__copy_text(e->new_currency, sizeof e->new_currency, &c[6]);
    e->new_unit_minor = c[7].i;
    return 0;
}

static void discard_plog(void *slot)
{
    cm_ledger_price_history_free(*(cm_ledger_price_history_result **)slot);
    *(cm_ledger_price_history_result **)slot = NULL;
}

static int plog_body(cm_tx *tx, void *arg)
{
    plog_args *a = arg;
    plog_ctx x = {calloc(1, sizeof *x.h), 0, 0};
    if (!x.h)
        return cm__ledger_fail(tx->l, CM_LEDGER_E_NOMEM, "out of memory reading the price log");
    int rc = CM_RUN(tx, CM_Q_PRICE_LOG_LIST, cb_plog, &x, a->region ? CM_T(a->region) : CM_N);
    if (!rc && x.oom)
        rc = cm__ledger_fail(tx->l, CM_LEDGER_E_NOMEM, "out of memory reading the price log");
    if (rc) {
        cm_ledger_price_history_free(x.h);
        return rc;
    }
    *a->out = x.h;
    cm__tx_on_fail(tx, discard_plog, a->out);
    return CM_LEDGER_OK;
}

int cm_ledger_price_history(cm_ledger *l, const char *region, cm_ledger_price_history_result **out)
{
    if (!out)
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID, "cm_ledger_price_history: out is NULL");
    *out = NULL;
    char reg[16];
    if (region) {
        int rc = cm__region_normalize(l, region, reg, sizeof reg);
        if (rc)
            return rc;
    }
    plog_args a = {region ? reg : NULL, out};
    return cm__tx_run(l, 0, plog_body, &a);
}

void cm_ledger_price_history_free(cm_ledger_price_history_result *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n_changes; i++) {
        free(h->changes[i].actor);
        free(h->changes[i].region);
    }
    free(h->changes);
    free(h);
}
