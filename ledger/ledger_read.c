/* SPDX-License-Identifier: MIT */
/*
 * ledger_read.c - quote, balance and history: reading a workspace brought up to now.
 *
 * These run in a write transaction because bringing a workspace up to now (lapses,
 * expiries, new periods) may write; they change no credits of their own.
 */
#include "ledger_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct read_args {
    const char *ws, *as_user;
    int64_t credits;
    void *out;
} read_args;

static void discard_quote(void *slot)
{
    cm_ledger_quote_free(*(cm_ledger_quote_result **)slot);
    *(cm_ledger_quote_result **)slot = NULL;
}

static void discard_balance(void *slot)
{
    cm_ledger_balance_free(*(cm_ledger_balance_result **)slot);
    *(cm_ledger_balance_result **)slot = NULL;
}

static void discard_history(void *slot)
{
    cm_ledger_history_free(*(cm_ledger_history_result **)slot);
    *(cm_ledger_history_result **)slot = NULL;
}

static int quote_body(cm_tx *tx, void *arg)
{
    read_args *a = arg;
    int rc = cm__ws_access(tx, a->ws, a->as_user, 0, "quote", NULL);
    if (!rc)
        rc = cm__touch(tx, a->ws);
    cm_grant_vec v;
    if (!rc)
        rc = cm__grant_list(tx, CM_Q_GRANT_SPENDABLE, (const cm_sv[]){CM_T(a->ws), CM_I(tx->now)},
                            2, &v);
    if (rc)
        return rc;
    cm_ledger_quote_result *q = calloc(1, sizeof *q);
    if (!q || (v.n && !(q->takes = calloc(v.n, sizeof *q->takes)))) {
        free(q);
        cm__grant_vec_free(&v);
        return cm__ledger_fail(tx->l, CM_LEDGER_E_NOMEM, "out of memory making a quote");
    }
    q->credits = a->credits;
    for (size_t i = 0; i < v.n; i++)
        q->available += v.v[i].remaining;
    q->affordable = q->available >= a->credits;
    int64_t left = q->affordable ? a->credits : 0;
    for (size_t i = 0; left > 0 && i < v.n; i++) {
        int64_t c = left < v.v[i].remaining ? left : v.v[i].remaining;
        left -= c;
        q->takes[q->n_takes++] =
            (cm_ledger_take){v.v[i].id, v.v[i].kind, c, 0, 0, v.v[i].expires_ms};
    }
    cm__grant_vec_free(&v);
    *(cm_ledger_quote_result **)a->out = q;
    cm__tx_on_fail(tx, discard_quote, a->out);
    return CM_LEDGER_OK;
}

int cm_ledger_quote(cm_ledger *l, const char *ws, int64_t credits, const char *as_user,
                    cm_ledger_quote_result **out)
{
    if (!out)
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID, "cm_ledger_quote_result: out is NULL");
    *out = NULL;
    if (credits <= 0 || credits > INT64_C(1000000000000))
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID,
                               "credits to quote must be between 1 and 10^12");
    read_args a = {ws, as_user, credits, out};
    return cm__tx_run_locked(l, 1, CM_LOCK_WS, ws, quote_body, &a);
}

void cm_ledger_quote_free(cm_ledger_quote_result *q)
{
    if (!q)
        return;
    free(q->takes);
    free(q);
}

static int balance_body(cm_tx *tx, void *arg)
{
    read_args *a = arg;
    int rc = cm__ws_access(tx, a->ws, a->as_user, 0, "read the balance", NULL);
    if (!rc)
        rc = cm__touch(tx, a->ws);
    cm_grant_vec v;
    if (!rc)
        rc = cm__grant_list(tx, CM_Q_GRANT_LIVE, (const cm_sv[]){CM_T(a->ws)}, 1, &v);
    if (rc)
        return rc;
    cm_ledger_balance_result *b = calloc(1, sizeof *b);
    if (b)
        b->workspace = malloc(strlen(a->ws) + 1);
    if (!b || !b->workspace || (v.n && !(b->grants = calloc(v.n, sizeof *b->grants)))) {
        cm_ledger_balance_free(b);
        cm__grant_vec_free(&v);
        return cm__ledger_fail(tx->l, CM_LEDGER_E_NOMEM, "out of memory reading a balance");
    }
    strcpy(b->workspace, a->ws);
    b->n_grants = v.n;
    for (size_t i = 0; i < v.n; i++) {
        const cm_grant_row *g = &v.v[i];
        b->available += g->remaining;
        b->held += g->held;
        b->grants[i] = (cm_ledger_grant){g->id,         g->kind,      g->granted, g->remaining,
                                         g->held,       g->charged,   g->expired, g->refunded_into,
                                         g->created_ms, g->expires_ms};
    }
    cm__grant_vec_free(&v);
    *(cm_ledger_balance_result **)a->out = b;
    cm__tx_on_fail(tx, discard_balance, a->out);
    return CM_LEDGER_OK;
}

int cm_ledger_balance(cm_ledger *l, const char *ws, const char *as_user,
                      cm_ledger_balance_result **out)
{
    if (!out)
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID, "cm_ledger_balance_result: out is NULL");
    *out = NULL;
    read_args a = {ws, as_user, 0, out};
    return cm__tx_run_locked(l, 1, CM_LOCK_WS, ws, balance_body, &a);
}

void cm_ledger_balance_free(cm_ledger_balance_result *b)
{
    if (!b)
        return;
    free(b->workspace);
    free(b->grants);
    free(b);
}

typedef struct hist_ctx {
    cm_ledger_history_result *h;
    size_t cap;
    int oom;
} hist_ctx;

static char *dup_col(const cm_sv *v, int *oom)
{
    if (v->type != CM_SV_TEXT || !v->s)
        return NULL;
    size_t n = strlen(v->s) + 1;
    char *p = malloc(n);
    if (!p)
        *oom = 1;
    else
        memcpy(p, v->s, n);
    return p;
}

static int cb_entry(void *ctx, const cm_sv *c, int n)
{
    hist_ctx *x = ctx;
    (void)n;
    if (x->h->n_entries == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 16;
        void *p = realloc(x->h->entries, cap * sizeof *x->h->entries);
        if (!p) {
            x->oom = 1;
            return 1;
        }
        x->h->entries = p;
        x->cap = cap;
    }
    cm_ledger_entry *e = &x->h->entries[x->h->n_entries++];
    memset(e, 0, sizeof *e);
    e->id = c[0].i;
    e->at_ms = c[1].i;
    e->kind = dup_col(&c[2], &x->oom);
    e->grant_id = cm__int_or(&c[3], -1);
    e->job = dup_col(&c[4], &x->oom);
    e->credits = c[5].i;
    e->actor = dup_col(&c[6], &x->oom);
    e->reason = dup_col(&c[7], &x->oom);
    e->ref = dup_col(&c[8], &x->oom);
    return x->oom;
}

static int history_body(cm_tx *tx, void *arg)
{
    read_args *a = arg;
    int rc = cm__ws_access(tx, a->ws, a->as_user, 0, "read the history", NULL);
    if (!rc)
        rc = cm__touch(tx, a->ws);
    if (rc)
        return rc;
    hist_ctx x = {calloc(1, sizeof(cm_ledger_history_result)), 0, 0};
    if (!x.h)
        return cm__ledger_fail(tx->l, CM_LEDGER_E_NOMEM, "out of memory reading the history");
    rc = CM_RUN(tx, CM_Q_JOURNAL_OF_WS, cb_entry, &x, CM_T(a->ws));
    if (!rc && x.oom)
        rc = cm__ledger_fail(tx->l, CM_LEDGER_E_NOMEM, "out of memory reading the history");
    if (rc) {
        cm_ledger_history_free(x.h);
        return rc;
    }
    *(cm_ledger_history_result **)a->out = x.h;
    cm__tx_on_fail(tx, discard_history, a->out);
    return CM_LEDGER_OK;
}

int cm_ledger_history(cm_ledger *l, const char *ws, const char *as_user,
                      cm_ledger_history_result **out)
{
    if (!out)
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID, "cm_ledger_history_result: out is NULL");
    *out = NULL;
    read_args a = {ws, as_user, 0, out};
    return cm__tx_run_locked(l, 1, CM_LOCK_WS, ws, history_body, &a);
}

void cm_ledger_history_free(cm_ledger_history_result *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n_entries; i++) {
        free(h->entries[i].kind);
        free(h->entries[i].job);
        free(h->entries[i].actor);
        free(h->entries[i].reason);
        free(h->entries[i].ref);
    }
    free(h->entries);
    free(h);
}
