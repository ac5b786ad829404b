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
    int rc = cm_ws_get(tx, a->ws, &w, &found);
    if (rc)
        return rc;
    if (found) {
        if (strcmp(w.owner, a->user) == 0 && strcmp(w.region, a->region) == 0)
            return CM_LEDGER_OK;
        /* Say no more than that the id is taken: the caller may be a stranger. */
        return cm_fail(tx->l, CM_LEDGER_E_CONFLICT,
                       "workspace id '%s' is already taken by another workspace", a->ws);
    }
    rc = CM_RUN(tx, CM_Q_WS_INSERT, NULL, NULL, CM_T(a->ws), CM_T(a->user), CM_T(a->region),
                CM_I(tx->now));
    if (!rc) {
        char why[CM_ID_MAX + 32];
        snprintf(why, sizeof why, "created in region %s", a->region);
        rc = cm_journal(tx, a->ws, tx->now, "workspace", -1, NULL, 0, a->user, why, NULL);
    }
    return rc;
}

int cm_ledger_workspace_create(cm_ledger *l, const char *ws, const char *owner,
                               const char *region)
{
    if (!region || !*region)
        region = "default";
    int rc = cm_valid_id(l, "the workspace id", ws);
    if (!rc)
        rc = cm_valid_id(l, "the owner", owner);
    if (!rc)
        rc = cm_valid_id(l, "the region", region);
    if (rc)
        return rc;
    ws_args a = {ws, owner, owner, region, 0};
    return cm_tx_run(l, 1, create_body, &a);
}

static int member_body(cm_tx *tx, void *arg)
{
    ws_args *a = arg;
    cm_ws_row w;
    int rc = cm_ws_access(tx, a->ws, a->as_user, 1,
                          a->op == 1 ? "add members" : "remove members", &w);
    if (!rc) /* its rows are dated in ledger time, after what happened before them */
        rc = cm_touch(tx, a->ws);
    if (rc)
        return rc;
    if (strcmp(a->user, w.owner) == 0) {
        if (a->op == 1)
            return CM_LEDGER_OK; /* the owner is always a member */
        return cm_fail(tx->l, CM_LEDGER_E_INVALID, "the owner of workspace '%s' cannot be removed",
                       a->ws);
    }
    int member = 0;
    rc = CM_RUN(tx, CM_Q_MEMBER_GET, cb_found, &member, CM_T(a->ws), CM_T(a->user));
    if (rc || member == (a->op == 1))
        return rc; /* already so: a retry */
    rc = CM_RUN(tx, a->op == 1 ? CM_Q_MEMBER_INSERT : CM_Q_MEMBER_DELETE, NULL, NULL, CM_T(a->ws),
                CM_T(a->user));
    if (!rc)
        rc = cm_journal(tx, a->ws, tx->now, a->op == 1 ? "member_add" : "member_remove", -1, NULL,
                        0, a->as_user, a->user, NULL);
    return rc;
}

static int member_change(cm_ledger *l, const char *ws, const char *user, const char *as_user,
                         int op)
{
    int rc = cm_valid_id(l, "the member's user id", user);
    if (!rc)
        rc = cm_valid_id(l, "the acting user", as_user);
    if (rc)
        return rc;
    ws_args a = {ws, user, as_user, NULL, op};
    return cm_tx_run(l, 1, member_body, &a);
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
    const char *region, *currency;
    int64_t unit_minor;
} price_args;

static int price_body(cm_tx *tx, void *arg)
{
    price_args *a = arg;
    return CM_RUN(tx, CM_Q_PRICE_UPSERT, NULL, NULL, CM_T(a->region), CM_T(a->currency),
                  CM_I(a->unit_minor));
}

static int valid_currency(const char *c)
{
    return c && strlen(c) == 3 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z' &&
           c[2] >= 'A' && c[2] <= 'Z';
}

int cm_ledger_price_set(cm_ledger *l, const char *region, const char *currency,
                        int64_t unit_minor)
{
    int rc = cm_valid_id(l, "the region", region);
    if (rc)
        return rc;
    if (!valid_currency(currency))
        return cm_fail(l, CM_LEDGER_E_INVALID,
                       "the currency must be an ISO 4217 code of three capital letters");
    if (unit_minor < 0 || unit_minor > INT64_C(1000000000))
        return cm_fail(l, CM_LEDGER_E_INVALID, "the unit price must be 0 to 10^9 minor units");
    price_args a = {region, currency, unit_minor};
    return cm_tx_run(l, 1, price_body, &a);
}

/* ---- buy ---- */

typedef struct buy_args {
    const char *ws, *as_user, *ref;
    int64_t credits;
    cm_ledger_purchase *out;
} buy_args;

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
    cm_copy_text(p->currency, sizeof p->currency, &c[0]);
    p->unit_minor = c[1].i;
    return 1;
}

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

static int buy_body(cm_tx *tx, void *arg)
{
    buy_args *a = arg;
    cm_ws_row w;
    int rc = cm_ws_access(tx, a->ws, a->as_user, 1, "buy credits", &w);
    if (!rc)
        rc = cm_touch(tx, a->ws);
    if (rc)
        return rc;
    if (a->ref) {
        cm_grant_vec v;
        rc = cm_grant_list(tx, CM_Q_GRANT_BY_REF, (const cm_sv[]){CM_T(a->ref)}, 1, &v);
        if (rc)
            return rc;
        if (v.n) {
            cm_grant_row g = v.v[0];
            cm_grant_vec_free(&v);
            if (strcmp(g.ws, a->ws) != 0 || g.granted != a->credits || g.kind != CM_LEDGER_GRANT_ADDON)
                return cm_fail(tx->l, CM_LEDGER_E_CONFLICT,
                               "payment reference '%s' was already used for another purchase",
                               a->ref);
            fill_purchase(a->out, &g, a->credits, 1);
            return CM_LEDGER_OK;
        }
        cm_grant_vec_free(&v);
    }
    price_row p = {0};
    rc = CM_RUN(tx, CM_Q_PRICE_GET, cb_price, &p, CM_T(w.region));
    if (!rc && !p.found)
        rc = CM_RUN(tx, CM_Q_PRICE_GET, cb_price, &p, CM_T("default"));
    if (rc)
        return rc;
    if (!p.found)
        return cm_fail(tx->l, CM_LEDGER_E_STORAGE, "the price table has no default row");
    if (p.unit_minor > 0 && a->credits > INT64_MAX / p.unit_minor)
        return cm_fail(tx->l, CM_LEDGER_E_INVALID, "the price of %lld credits overflows",
                       (long long)a->credits);
    int64_t total = a->credits * p.unit_minor;
    cm_grant_row g;
    rc = cm_grant_new(tx, a->ws, CM_LEDGER_GRANT_ADDON, tx->now, -1, -1, a->ref, p.unit_minor,
                      total, p.currency, &g);
    char why[96];
    snprintf(why, sizeof why, "add-on: %lld x %lld = %lld %s", (long long)a->credits,
             (long long)p.unit_minor, (long long)total, p.currency);
    if (!rc)
        rc = cm_move(tx, &g, "purchase", a->credits, tx->now, NULL, a->as_user, why, a->ref);
    if (!rc)
        fill_purchase(a->out, &g, a->credits, 0);
    return rc;
}

int cm_ledger_buy(cm_ledger *l, const char *ws, int64_t credits, const char *as_user,
                  const char *payment_ref, cm_ledger_purchase *out)
{
    if (credits <= 0 || credits > INT64_C(1000000000000))
        return cm_fail(l, CM_LEDGER_E_INVALID, "credits to buy must be between 1 and 10^12");
    int rc = cm_valid_id(l, "the acting user", as_user);
    if (!rc && payment_ref)
        rc = cm_valid_id(l, "the payment reference", payment_ref);
    if (rc)
        return rc;
    cm_ledger_purchase tmp;
    buy_args a = {ws, as_user, payment_ref, credits, out ? out : &tmp};
    return cm_tx_run(l, 1, buy_body, &a);
}
