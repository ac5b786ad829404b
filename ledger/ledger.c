/* SPDX-License-Identifier: MIT */
/*
 * ledger.c - the handle, error reporting, transactions and the movement primitives.
 *
 * Every public call runs as one storage transaction under the handle's mutex
 * (cm__tx_run). Errors carry a code and a sentence; the sentence is kept in the handle
 * (its last call's, guarded by the handle's err_mu), as SQLite keeps sqlite3_errmsg()
 * per connection; a failure with no handle (cm_ledger_open) is kept per thread.
 */
#include "ledger_internal.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The last failure of cm_ledger_open() (or of a call given a NULL handle) in this
 * thread: there is no handle to keep it. */
static _Thread_local char tls_open_msg[CM_ERRMSG_MAX];
/* What cm_ledger_errmsg(l) returns: the handle's message, copied under its err_mu so
 * that another thread's failing call cannot change it while the caller reads it. */
static _Thread_local char tls_errmsg_copy[CM_ERRMSG_MAX];

/* Names and sentences, generated from ledger_errors.def. Each line's value must be its
 * enumerator's, and the switches are on the enum without a default: a duplicate is a
 * duplicate case, and an enumerator without a line is a -Wswitch warning (an error
 * under -Werror). */
#define X(code, value, name, text) _Static_assert(code == value, #code " is " #value);
#include "ledger_errors.def"
#undef X

const char *cm_ledger_err_name(int code)
{
    switch ((enum cm_ledger_error)code) {
#define X(code, value, name, text)                                                                 \
    case code:                                                                                     \
        return name;
#include "ledger_errors.def"
#undef X
    }
    return "unknown";
}

const char *cm_ledger_strerror(int code)
{
    switch ((enum cm_ledger_error)code) {
#define X(code, value, name, text)                                                                 \
    case code:                                                                                     \
        return text;
#include "ledger_errors.def"
#undef X
    }
    return "unknown error";
}

const char *cm_ledger_errmsg(const cm_ledger *l)
{
    if (!l)
        return tls_open_msg;
    cm_ledger *ml = (cm_ledger *)l; /* only the message's mutex is touched */
    pthread_mutex_lock(&ml->err_mu);
    memcpy(tls_errmsg_copy, l->errmsg, sizeof tls_errmsg_copy);
    pthread_mutex_unlock(&ml->err_mu);
    return tls_errmsg_copy;
}

/* Sets the handle's message (NULL handle: the thread's open() message). */
static void set_errmsg(cm_ledger *l, const char *msg)
{
    if (!l) {
        snprintf(tls_open_msg, sizeof tls_open_msg, "%s", msg);
        return;
    }
    pthread_mutex_lock(&l->err_mu);
    snprintf(l->errmsg, sizeof l->errmsg, "%s", msg);
    pthread_mutex_unlock(&l->err_mu);
}

int cm__ledger_fail(cm_ledger *l, int code, const char *fmt, ...)
{
    char msg[CM_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    set_errmsg(l, msg);
    return code;
}

int cm__storage_fail(cm_ledger *l, int st_rc)
{
    const char *detail = l && l->st ? l->ops->errmsg(l->st) : "";
    if (st_rc == CM_ST_RETRY) {
        l->retry = 1; /* cm__tx_run runs the call again */
        return cm__ledger_fail(l, CM_LEDGER_E_BUSY,
                               "the ledger's transaction conflicted with a concurrent one (%s)",
                               detail);
    }
    if (st_rc == CM_ST_BUSY)
        return cm__ledger_fail(l, CM_LEDGER_E_BUSY,
                               "the ledger database is locked by another writer (%s)", detail);
    if (st_rc == CM_ST_UNAVAILABLE)
        return cm__ledger_fail(l, CM_LEDGER_E_UNAVAILABLE,
                               "the ledger's storage is unavailable; the call may be retried "
                               "as it is (%s)",
                               detail);
    return cm__ledger_fail(l, CM_LEDGER_E_STORAGE, "the ledger's storage failed: %s", detail);
}

int cm__valid_id(cm_ledger *l, const char *what, const char *id)
{
    if (!id || !*id)
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID, "%s is missing", what);
    if (strlen(id) > CM_ID_MAX)
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID, "%s is longer than %d bytes", what,
                               CM_ID_MAX);
    /* Both backends store text as UTF-8 (PostgreSQL refuses anything else), and ids
       are echoed in JSON: the same answer everywhere. */
    if (!cm__text_plain(id))
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID,
                               "%s is not valid UTF-8 text or holds a control character (newline, "
                               "tab, escape ...)",
                               what);
    return CM_LEDGER_OK;
}

/* ---- open / close ---- */

static int64_t real_clock(void *user)
{
    (void)user;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A libpq connection URI selects PostgreSQL; anything else is a SQLite file. */
static int is_postgres(const char *location)
{
    return strncmp(location, "postgresql://", 13) == 0 || strncmp(location, "postgres://", 11) == 0;
}

void cm_ledger_config_init(cm_ledger_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->struct_size = sizeof *cfg;
    cfg->busy_timeout_ms = 5000;
    cfg->synchronous = CM_LEDGER_SYNC_FULL;
}

int cm_ledger_open(cm_ledger **out, const cm_ledger_config *cfg_in)
{
    tls_open_msg[0] = 0;
    if (!out)
        return cm__ledger_fail(NULL, CM_LEDGER_E_INVALID, "cm_ledger_open: out is NULL");
    *out = NULL;
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    if (cfg_in) {
        if (cfg_in->struct_size < offsetof(cm_ledger_config, location) + sizeof(const char *) ||
            cfg_in->struct_size > sizeof cfg)
            return cm__ledger_fail(
                NULL, CM_LEDGER_E_INVALID,
                "cm_ledger_config.struct_size %u is not a size this library knows",
                (unsigned)cfg_in->struct_size);
        memcpy(&cfg, cfg_in, cfg_in->struct_size);
    }
    if (cfg.synchronous != CM_LEDGER_SYNC_FULL && cfg.synchronous != CM_LEDGER_SYNC_NORMAL)
        return cm__ledger_fail(NULL, CM_LEDGER_E_INVALID, "synchronous must be FULL or NORMAL");
    if (cfg.busy_timeout_ms < 0)
        return cm__ledger_fail(NULL, CM_LEDGER_E_INVALID, "busy_timeout_ms must not be negative");
    if (cfg.busy_timeout_ms == 0)
        cfg.busy_timeout_ms = 5000;
    const char *location = cfg.location && *cfg.location ? cfg.location : "./creditmeter.db";

#ifndef CM_WITH_POSTGRES
    if (is_postgres(location))
        return cm__ledger_fail(NULL, CM_LEDGER_E_UNSUPPORTED,
                               "this creditmeter ledger was built without PostgreSQL support "
                               "(CM_WITH_POSTGRES=OFF): a postgresql:// location cannot be opened; "
                               "use a SQLite file or a build with libpq");
#endif
    cm_ledger *l = calloc(1, sizeof *l);
    if (!l)
        return cm__ledger_fail(NULL, CM_LEDGER_E_NOMEM, "out of memory opening the ledger");
    int postgres = 0;
#ifdef CM_WITH_POSTGRES
    postgres = is_postgres(location);
    l->ops = postgres ? &cm__storage_pg : &cm__storage_sqlite;
#else
    l->ops = &cm__storage_sqlite;
#endif
    l->busy_timeout_ms = cfg.busy_timeout_ms;
    l->now_ms = cfg.now_ms ? cfg.now_ms : real_clock;
    l->clock_user = cfg.clock_user;
    /* One clock for a fleet: on PostgreSQL the server's, unless a clock was injected. */
    l->server_clock = !cfg.now_ms && postgres;
    if (pthread_mutex_init(&l->mu, NULL) != 0) {
        free(l);
        return cm__ledger_fail(NULL, CM_LEDGER_E_NOMEM, "cannot create the handle's mutex");
    }
    if (pthread_mutex_init(&l->err_mu, NULL) != 0) {
        pthread_mutex_destroy(&l->mu);
        free(l);
        return cm__ledger_fail(NULL, CM_LEDGER_E_NOMEM, "cannot create the handle's mutex");
    }
    if (cfg.create != 0 && cfg.create != 1) {
        pthread_mutex_destroy(&l->err_mu);
        pthread_mutex_destroy(&l->mu);
        free(l);
        return cm__ledger_fail(NULL, CM_LEDGER_E_INVALID, "create must be 0 or 1");
    }
    cm_storage_options opt = {cfg.busy_timeout_ms, cfg.synchronous, cfg.create};
    char err[400];
    int rc = l->ops->open(&l->st, location, &opt, err, sizeof err);
    if (rc) {
        pthread_mutex_destroy(&l->err_mu);
        pthread_mutex_destroy(&l->mu);
        free(l);
        return cm__ledger_fail(NULL,
                               rc == CM_ST_BUSY          ? CM_LEDGER_E_BUSY
                               : rc == CM_ST_NO_LEDGER   ? CM_LEDGER_E_NO_LEDGER
                               : rc == CM_ST_UNAVAILABLE ? CM_LEDGER_E_UNAVAILABLE
                                                         : CM_LEDGER_E_STORAGE,
                               "%s", err);
    }
    *out = l;
    return CM_LEDGER_OK;
}

void cm_ledger_close(cm_ledger *l)
{
    if (!l)
        return;
    l->ops->close(l->st);
    pthread_mutex_destroy(&l->err_mu);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

/* ---- transactions ---- */

void cm__tx_on_fail(cm_tx *tx, void (*discard)(void *slot), void *slot)
{
    tx->discard = discard;
    tx->discard_slot = slot;
}

int cm__lock_ws(cm_tx *tx, const char *ws)
{
    if (!tx->write || strcmp(tx->locked_ws, ws) == 0)
        return CM_LEDGER_OK;
    int rc = tx->l->ops->lock(tx->l->st, CM_LOCK_WS, ws);
    if (rc)
        return cm__storage_fail(tx->l, rc);
    snprintf(tx->locked_ws, sizeof tx->locked_ws, "%s", ws);
    return CM_LEDGER_OK;
}

int cm__prefetch(cm_tx *tx, cm_stmt id, const cm_sv *p, int n)
{
    if (!tx->l->ops->prefetch)
        return CM_LEDGER_OK;
    int rc = CM_ST_OK;
    /* The server's clock first: the declared reads may read it (CM_SV_CLOCK). */
    if (tx->l->server_clock && !tx->clock_read && !tx->clock_declared) {
        rc = tx->l->ops->prefetch(tx->l->st, CM_Q_CLOCK_NOW, NULL, 0);
        tx->clock_declared = 1;
    }
    if (!rc)
        rc = tx->l->ops->prefetch(tx->l->st, id, p, n);
    return rc ? cm__storage_fail(tx->l, rc) : CM_LEDGER_OK;
}

int cm__lock_jobs(cm_tx *tx, const char *const *jobs, size_t n)
{
    if (!tx->write || !tx->l->ops->lock_jobs)
        return CM_LEDGER_OK;
    int rc = tx->l->ops->lock_jobs(tx->l->st, jobs, n);
    return rc ? cm__storage_fail(tx->l, rc) : CM_LEDGER_OK;
}

cm_sv cm__clock_sv(const cm_tx *tx)
{
    return tx->clock_read ? CM_I(tx->clock) : (cm_sv){CM_SV_CLOCK, 0, NULL};
}

/* One attempt: begin, lock, declare the body's reads, body, commit (or roll back). */
static int tx_attempt(cm_ledger *l, int write, int lock, const char *key, cm_tx_body pre,
                      cm_tx_body body, void *arg)
{
    cm_tx tx = {.l = l, .write = write};
    l->n_tx++;
    int rc = l->ops->begin(l->st, write);
    if (rc)
        return cm__storage_fail(l, rc);
    /* The call's lock comes first, before anything is read (PostgreSQL sends it with
     * BEGIN and the clock, in one round trip). */
    /* An id the body will refuse as invalid locks nothing (the body reads nothing). */
    if (write && lock && key && *key && strlen(key) <= CM_ID_MAX && cm__text_plain(key)) {
        rc = l->ops->lock(l->st, lock, key);
        if (rc) {
            rc = cm__storage_fail(l, rc);
            l->ops->rollback(l->st);
            return rc;
        }
        if (lock == CM_LOCK_WS)
            snprintf(tx.locked_ws, sizeof tx.locked_ws, "%s", key);
    }
    /* The clock is read once the write lock is held, so that a call that waited for
     * the lock acts at the moment it runs and the journal's times follow its order.
     * The server's clock is declared as a read, with the reads the body declares after
     * it (pre), so that on PostgreSQL they all go with BEGIN and the lock. */
    if (!l->server_clock) {
        tx.clock = l->now_ms(l->clock_user);
        tx.clock_read = 1;
    }
    if (pre)
        rc = pre(&tx, arg);
    if (!rc && l->server_clock && !tx.clock_declared && l->ops->prefetch) {
        rc = l->ops->prefetch(l->st, CM_Q_CLOCK_NOW, NULL, 0);
        if (rc)
            rc = cm__storage_fail(l, rc);
    }
    if (rc) {
        l->ops->rollback(l->st);
        return rc;
    }
    if (l->server_clock) {
        int64_t server = -1;
        rc = l->ops->run(l->st, CM_Q_CLOCK_NOW, NULL, 0, cm__cb_int, &server);
        if (rc && rc != CM_ST_ABORT) {
            rc = cm__storage_fail(l, rc);
            l->ops->rollback(l->st);
            return rc;
        }
        tx.clock = server;
        tx.clock_read = 1;
    }
    tx.now = tx.clock;
    if (tx.now < 0) { /* the ledger keeps negative times for "none" */
        l->ops->rollback(l->st);
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID, "the clock reads a time before 1970");
    }
    rc = body(&tx, arg);
    if (write && rc != CM_LEDGER_E_BUSY && rc != CM_LEDGER_E_STORAGE && rc != CM_LEDGER_E_NOMEM &&
        rc != CM_LEDGER_E_UNAVAILABLE) {
        /* what the call (or its lazy work) did to a balance with a low-balance alert */
        int arc = cm__alert_flush(&tx);
        if (arc)
            rc = arc;
    }
    if (rc == CM_LEDGER_E_BUSY || rc == CM_LEDGER_E_STORAGE || rc == CM_LEDGER_E_NOMEM ||
        rc == CM_LEDGER_E_UNAVAILABLE) {
        l->ops->rollback(l->st);
    } else {
        int src = l->ops->commit(l->st);
        if (src) {
            rc = cm__storage_fail(l, src);
            l->ops->rollback(l->st);
        }
    }
    if (rc != CM_LEDGER_OK && tx.discard)
        tx.discard(tx.discard_slot);
    return rc;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Random back-off before attempt n + 1: up to 1, 2, 4 ... 32 ms, so that the writers
 * that lost a race do not meet again in lockstep. */
static void backoff(int n)
{
    static _Thread_local unsigned seed;
    if (!seed)
        seed = (unsigned)mono_ms() ^ (unsigned)getpid() ^ (unsigned)(uintptr_t)&seed;
    int cap_us = 1000 << (n < 5 ? n : 5);
    long us = 100 + rand_r(&seed) % cap_us;
    struct timespec ts = {0, us * 1000L};
    nanosleep(&ts, NULL);
}

#define CM_TX_MAX_ATTEMPTS 10000

int cm__tx_run(cm_ledger *l, int write, cm_tx_body body, void *arg)
{
    return cm__tx_run_pre(l, write, 0, NULL, NULL, body, arg);
}

int cm__tx_run_locked(cm_ledger *l, int write, int lock, const char *key, cm_tx_body body,
                      void *arg)
{
    return cm__tx_run_pre(l, write, lock, key, NULL, body, arg);
}

int cm__tx_run_pre(cm_ledger *l, int write, int lock, const char *key, cm_tx_body pre,
                   cm_tx_body body, void *arg)
{
    if (!l)
        return cm__ledger_fail(NULL, CM_LEDGER_E_INVALID, "the ledger handle is NULL");
    pthread_mutex_lock(&l->mu);
    int64_t start = mono_ms();
    int rc;
    for (int attempt = 1;; attempt++) {
        l->retry = 0;
        rc = tx_attempt(l, write, lock, key, pre, body, arg);
        if (!l->retry)
            break;
        if (attempt >= CM_TX_MAX_ATTEMPTS || mono_ms() - start >= l->busy_timeout_ms) {
            rc = cm__ledger_fail(
                l, CM_LEDGER_E_BUSY,
                "the ledger's transaction lost to concurrent ones %d times in %lld ms "
                "(%s)",
                attempt, (long long)(mono_ms() - start), l->ops->errmsg(l->st));
            break;
        }
        l->n_retry++;
        backoff(attempt);
    }
    pthread_mutex_unlock(&l->mu);
    if (rc == CM_LEDGER_OK)
        set_errmsg(l, ""); /* the handle's last call succeeded */
    return rc;
}

/* ---- statements and rows ---- */

int cm__run(cm_tx *tx, cm_stmt id, const cm_sv *p, int n, cm_row_fn fn, void *ctx)
{
    int rc = tx->l->ops->run(tx->l->st, id, p, n, fn, ctx);
    if (rc == CM_ST_OK || rc == CM_ST_ABORT)
        return CM_LEDGER_OK;
    return cm__storage_fail(tx->l, rc);
}

void cm__copy_text(char *dst, size_t size, const cm_sv *v)
{
    if (v->type == CM_SV_TEXT && v->s)
        snprintf(dst, size, "%s", v->s);
    else
        dst[0] = 0;
}

int64_t cm__int_or(const cm_sv *v, int64_t dflt)
{
    return v->type == CM_SV_INT ? v->i : dflt;
}

void cm__grant_from_cols(cm_grant_row *g, const cm_sv *c)
{
    g->id = c[CM_GC_ID].i;
    cm__copy_text(g->ws, sizeof g->ws, &c[CM_GC_WS]);
    g->kind = (int)c[CM_GC_KIND].i;
    g->granted = c[CM_GC_GRANTED].i;
    g->remaining = c[CM_GC_REMAINING].i;
    g->held = c[CM_GC_HELD].i;
    g->charged = c[CM_GC_CHARGED].i;
    g->expired = c[CM_GC_EXPIRED].i;
    g->refunded_into = c[CM_GC_REFUNDED_INTO].i;
    g->created_ms = c[CM_GC_CREATED_MS].i;
    g->expires_ms = cm__int_or(&c[CM_GC_EXPIRES_MS], -1);
    g->unit_minor = cm__int_or(&c[CM_GC_UNIT_MINOR], 0);
    g->total_minor = cm__int_or(&c[CM_GC_TOTAL_MINOR], 0);
    cm__copy_text(g->currency, sizeof g->currency, &c[CM_GC_CURRENCY]);
    g->dirty = 0;
}

static int grow(void **v, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    void *p = realloc(*v, ncap * elem);
    if (!p)
        return -1;
    *v = p;
    *cap = ncap;
    return 0;
}

typedef struct {
    cm_grant_vec *vec;
    int oom;
} grant_list_ctx;

static int cb_grant_list(void *ctx, const cm_sv *c, int n)
{
    grant_list_ctx *g = ctx;
    (void)n;
    if (grow((void **)&g->vec->v, &g->vec->cap, g->vec->n, sizeof(cm_grant_row))) {
        g->oom = 1;
        return 1;
    }
    cm__grant_from_cols(&g->vec->v[g->vec->n++], c);
    return 0;
}

int cm__grant_list(cm_tx *tx, cm_stmt id, const cm_sv *p, int n, cm_grant_vec *out)
{
    memset(out, 0, sizeof *out);
    grant_list_ctx ctx = {out, 0};
    int rc = cm__run(tx, id, p, n, cb_grant_list, &ctx);
    if (!rc && ctx.oom)
        rc = cm__ledger_fail(tx->l, CM_LEDGER_E_NOMEM, "out of memory listing grants");
    if (rc)
        cm__grant_vec_free(out);
    return rc;
}

void cm__grant_vec_free(cm_grant_vec *v)
{
    free(v->v);
    memset(v, 0, sizeof *v);
}

int cm__grant_get(cm_tx *tx, int64_t id, cm_grant_row *out)
{
    cm_grant_vec v;
    int rc = cm__grant_list(tx, CM_Q_GRANT_GET, (const cm_sv[]){CM_I(id)}, 1, &v);
    if (rc)
        return rc;
    if (v.n != 1) {
        cm__grant_vec_free(&v);
        return cm__ledger_fail(tx->l, CM_LEDGER_E_STORAGE, "grant %lld is missing", (long long)id);
    }
    *out = v.v[0];
    cm__grant_vec_free(&v);
    return CM_LEDGER_OK;
}

void cm__hold_from_cols(cm_hold_row *h, const cm_sv *c)
{
    cm__copy_text(h->job, sizeof h->job, &c[CM_HC_JOB]);
    cm__copy_text(h->ws, sizeof h->ws, &c[CM_HC_WS]);
    cm__copy_text(h->user, sizeof h->user, &c[CM_HC_USER]);
    h->credits = c[CM_HC_CREDITS].i;
    h->lease_s = c[CM_HC_LEASE_S].i;
    h->state = (int)c[CM_HC_STATE].i;
    h->created_ms = c[CM_HC_CREATED_MS].i;
    h->lease_until_ms = c[CM_HC_LEASE_UNTIL_MS].i;
    h->resolved_ms = cm__int_or(&c[CM_HC_RESOLVED_MS], -1);
    h->charged = c[CM_HC_CHARGED].i;
    h->refunded = c[CM_HC_REFUNDED].i;
    h->commit_arg = cm__int_or(&c[CM_HC_COMMIT_ARG], -1);
}

typedef struct {
    cm_hold_row *h;
    int found;
} hold_ctx;

static int cb_hold(void *ctx, const cm_sv *c, int n)
{
    hold_ctx *x = ctx;
    (void)n;
    cm__hold_from_cols(x->h, c);
    x->found = 1;
    return 1;
}

int cm__hold_get(cm_tx *tx, const char *job, cm_hold_row *out, int *found)
{
    hold_ctx x = {out, 0};
    int rc = CM_RUN(tx, CM_Q_HOLD_GET, cb_hold, &x, CM_T(job));
    *found = x.found;
    return rc;
}

typedef struct {
    cm_take_vec *vec;
    int oom;
} take_ctx;

static int cb_take(void *ctx, const cm_sv *c, int n)
{
    take_ctx *x = ctx;
    (void)n;
    if (grow((void **)&x->vec->v, &x->vec->cap, x->vec->n, sizeof(cm_take_row))) {
        x->oom = 1;
        return 1;
    }
    cm_take_row *t = &x->vec->v[x->vec->n++];
    t->seq = c[0].i;
    t->grant_id = c[1].i;
    t->credits = c[2].i;
    t->kind = (int)c[3].i;
    t->expires_ms = cm__int_or(&c[4], -1);
    return 0;
}

int cm__takes_of(cm_tx *tx, const cm_hold_row *h, cm_take_vec *out)
{
    int rc = cm__takes_read(tx, h->job, out);
    return rc ? rc : cm__takes_derive(tx, h, out);
}

int cm__takes_read(cm_tx *tx, const char *job, cm_take_vec *out)
{
    memset(out, 0, sizeof *out);
    take_ctx x = {out, 0};
    int rc = CM_RUN(tx, CM_Q_TAKES_OF, cb_take, &x, CM_T(job));
    if (!rc && x.oom)
        rc = cm__ledger_fail(tx->l, CM_LEDGER_E_NOMEM, "out of memory reading a hold");
    if (rc) {
        free(out->v);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

int cm__takes_derive(cm_tx *tx, const cm_hold_row *h, cm_take_vec *out)
{
    int rc = CM_LEDGER_OK;
    /* Charged in take order, refunded from the last charged take back. */
    int64_t charge = h->charged, refund = h->refunded;
    for (size_t k = 0; !rc && k < out->n; k++) {
        cm_take_row *t = &out->v[k];
        t->charged = charge < t->credits ? charge : t->credits;
        charge -= t->charged;
    }
    for (size_t k = out->n; !rc && k-- > 0;) {
        cm_take_row *t = &out->v[k];
        t->refunded = refund < t->charged ? refund : t->charged;
        refund -= t->refunded;
    }
    if (!rc && (charge != 0 || refund != 0))
        rc = cm__ledger_fail(tx->l, CM_LEDGER_E_STORAGE,
                             "hold %s: its takes do not add up to its charge", h->job);
    if (rc) {
        free(out->v);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

typedef struct {
    cm_ws_row *w;
    int found;
} ws_ctx;

static int cb_ws(void *ctx, const cm_sv *c, int n)
{
    ws_ctx *x = ctx;
    (void)n;
    cm__copy_text(x->w->owner, sizeof x->w->owner, &c[0]);
    cm__copy_text(x->w->region, sizeof x->w->region, &c[1]);
    x->found = 1;
    return 1;
}

int cm__ws_get(cm_tx *tx, const char *ws, cm_ws_row *out, int *found)
{
    ws_ctx x = {out, 0};
    int rc = CM_RUN(tx, CM_Q_WS_GET, cb_ws, &x, CM_T(ws));
    *found = x.found;
    return rc;
}

typedef struct access_ctx {
    cm_ws_row *w;
    int found, member;
} access_ctx;

static int cb_access(void *ctx, const cm_sv *c, int n)
{
    access_ctx *x = ctx;
    (void)n;
    cm__copy_text(x->w->owner, sizeof x->w->owner, &c[0]);
    cm__copy_text(x->w->region, sizeof x->w->region, &c[1]);
    x->member = cm__int_or(&c[2], 0) != 0;
    x->found = 1;
    return 1;
}

int cm__ws_access(cm_tx *tx, const char *ws, const char *user, int need_owner, const char *action,
                  cm_ws_row *out)
{
    int rc = cm__valid_id(tx->l, "the workspace id", ws);
    if (!rc && user)
        rc = cm__valid_id(tx->l, "the user id", user);
    if (!rc)
        rc = cm__lock_ws(tx, ws);
    if (rc)
        return rc;
    cm_ws_row w;
    access_ctx x = {&w, 0, 0};
    /* The workspace and the user's membership in one read. */
    rc = CM_RUN(tx, CM_Q_WS_ACCESS, cb_access, &x, CM_T(ws), user ? CM_T(user) : CM_N);
    if (rc)
        return rc;
    int found = x.found;
    if (found && user && strcmp(user, w.owner) != 0) {
        if (!x.member)
            found = 0; /* a stranger learns nothing: the same answer as a missing workspace */
        else if (need_owner)
            return cm__ledger_fail(
                tx->l, CM_LEDGER_E_FORBIDDEN,
                "user '%s' is a member of workspace '%s' but only its owner may %s", user, ws,
                action);
    }
    if (!found) {
        if (user)
            return cm__ledger_fail(tx->l, CM_LEDGER_E_NO_WORKSPACE,
                                   "there is no workspace '%s' that user '%s' belongs to", ws,
                                   user);
        return cm__ledger_fail(tx->l, CM_LEDGER_E_NO_WORKSPACE, "there is no workspace '%s'", ws);
    }
    if (out)
        *out = w;
    return CM_LEDGER_OK;
}

/* ---- journal and movements ---- */

int cm__cb_int(void *ctx, const cm_sv *c, int n)
{
    (void)n;
    *(int64_t *)ctx = c[0].i;
    return 1;
}

int cm__journal_op(cm_tx *tx, const char *ws, int64_t *out)
{
    /* The call's first row in a workspace takes a new operation number; the call's later
     * rows there carry the same one. (Numbers are unique within a workspace; a call that
     * touches several, such as sweep, has one in each.) */
    if (!tx->op || strcmp(tx->op_ws, ws) != 0) {
        int rc = cm__alert_flush(tx); /* the workspace this call leaves */
        if (rc)
            return rc;
        int64_t op = 0;
        rc = CM_RUN(tx, CM_Q_JOURNAL_NEXT_OP, cm__cb_int, &op, CM_T(ws));
        if (rc)
            return rc;
        if (op <= 0)
            return cm__ledger_fail(tx->l, CM_LEDGER_E_STORAGE,
                                   "the journal gave no operation number");
        tx->op = op;
        snprintf(tx->op_ws, sizeof tx->op_ws, "%s", ws);
    }
    *out = tx->op;
    return CM_LEDGER_OK;
}

int cm__journal(cm_tx *tx, const char *ws, int64_t at_ms, const char *kind, int64_t grant_id,
                const char *job, int64_t credits, const char *actor, const char *reason,
                const char *ref)
{
    int64_t op = 0;
    int rc = cm__journal_op(tx, ws, &op);
    if (rc)
        return rc;
    if (credits > 0)
        tx->alert_pending = 1;
    return CM_RUN(tx, CM_Q_JOURNAL_INSERT, NULL, NULL, CM_I(tx->op), CM_T(ws), CM_I(at_ms),
                  CM_T(kind), grant_id >= 0 ? CM_I(grant_id) : CM_N, job ? CM_T(job) : CM_N,
                  CM_I(credits), CM_T(actor), reason ? CM_T(reason) : CM_N, ref ? CM_T(ref) : CM_N);
}

int cm__apply_movement(cm_grant_row *g, const char *kind, int64_t n)
{
    if (!strcmp(kind, "grant") || !strcmp(kind, "purchase")) {
        g->granted += n;
        g->remaining += n;
    } else if (!strcmp(kind, "hold")) {
        g->remaining -= n;
        g->held += n;
    } else if (!strcmp(kind, "commit")) {
        g->held -= n;
        g->charged += n;
    } else if (!strcmp(kind, "release") || !strcmp(kind, "lapse")) {
        g->held -= n;
        g->remaining += n;
    } else if (!strcmp(kind, "expiry")) {
        g->remaining -= n;
        g->expired += n;
    } else if (!strcmp(kind, "refund")) {
        g->remaining += n;
        if (g->kind == CM_LEDGER_GRANT_REFUND)
            g->granted += n;
        else
            g->refunded_into += n;
    } else {
        return -1;
    }
    return 0;
}

int cm__move_unsaved(cm_tx *tx, cm_grant_row *g, const char *kind, int64_t credits, int64_t at_ms,
                     const char *job, const char *actor, const char *reason, const char *ref)
{
    if (credits <= 0)
        return CM_LEDGER_OK;
    cm__apply_movement(g, kind, credits);
    if (g->remaining < 0 || g->held < 0)
        return cm__ledger_fail(tx->l, CM_LEDGER_E_STORAGE,
                               "internal error: %s of %lld would make grant %lld negative", kind,
                               (long long)credits, (long long)g->id);
    g->dirty = 1;
    return cm__journal(tx, g->ws, at_ms, kind, g->id, job, credits, actor, reason, ref);
}

int cm__grant_save(cm_tx *tx, cm_grant_row *g)
{
    if (!g->dirty)
        return CM_LEDGER_OK;
    int rc = CM_RUN(tx, CM_Q_GRANT_SET, NULL, NULL, CM_I(g->id), CM_I(g->remaining), CM_I(g->held),
                    CM_I(g->charged), CM_I(g->expired), CM_I(g->refunded_into), CM_I(g->granted));
    if (!rc)
        g->dirty = 0;
    return rc;
}

int cm__move(cm_tx *tx, cm_grant_row *g, const char *kind, int64_t credits, int64_t at_ms,
             const char *job, const char *actor, const char *reason, const char *ref)
{
    int rc = cm__move_unsaved(tx, g, kind, credits, at_ms, job, actor, reason, ref);
    return rc ? rc : cm__grant_save(tx, g);
}

int cm__grant_expired(const cm_grant_row *g, int64_t now)
{
    return g->expires_ms >= 0 && g->expires_ms <= now;
}

int cm__give_back_unsaved(cm_tx *tx, cm_grant_row *g, const char *kind, int64_t credits,
                          int64_t at_ms, const char *job, const char *actor, const char *reason)
{
    int rc = cm__move_unsaved(tx, g, kind, credits, at_ms, job, actor, reason, NULL);
    if (!rc && cm__grant_expired(g, at_ms) && credits > 0) {
        rc = cm__move_unsaved(tx, g, "expiry", credits, at_ms, job, "ledger",
                              "credits given back to a grant that had expired", NULL);
        if (!rc)
            tx->stats.credits_expired += credits;
    }
    return rc;
}

/* ---- names ---- */

const char *cm_ledger_grant_kind_name(int kind)
{
    switch (kind) {
    case CM_LEDGER_GRANT_PLAN:
        return "plan";
    case CM_LEDGER_GRANT_ADDON:
        return "addon";
    case CM_LEDGER_GRANT_REFUND:
        return "refund";
    }
    return "unknown";
}

const char *cm_ledger_hold_state_name(int state)
{
    switch (state) {
    case CM_LEDGER_HELD:
        return "held";
    case CM_LEDGER_COMMITTED:
        return "committed";
    case CM_LEDGER_RELEASED:
        return "released";
    case CM_LEDGER_LAPSED:
        return "lapsed";
    }
    return "unknown";
}

const char *cm_ledger_interval_name(int interval)
{
    switch (interval) {
    case CM_LEDGER_MONTHLY:
        return "monthly";
    case CM_LEDGER_ANNUAL:
        return "annual";
    }
    return "unknown";
}

int cm__grant_new(cm_tx *tx, const char *ws, int kind, int64_t created_ms, int64_t expires_ms,
                  int64_t period, const char *ref, int64_t unit_minor, int64_t total_minor,
                  const char *currency, cm_grant_row *out)
{
    int64_t id = -1;
    int rc = CM_RUN(tx, CM_Q_GRANT_INSERT, cm__cb_int, &id, CM_T(ws), CM_I(kind), CM_I(0),
                    CM_I(created_ms), expires_ms >= 0 ? CM_I(expires_ms) : CM_N,
                    period >= 0 ? CM_I(period) : CM_N, ref ? CM_T(ref) : CM_N,
                    currency ? CM_I(unit_minor) : CM_N, currency ? CM_I(total_minor) : CM_N,
                    currency ? CM_T(currency) : CM_N);
    if (rc)
        return rc;
    if (id < 0)
        return cm__ledger_fail(tx->l, CM_LEDGER_E_STORAGE, "the new grant got no id");
    memset(out, 0, sizeof *out);
    out->id = id;
    snprintf(out->ws, sizeof out->ws, "%s", ws);
    out->kind = kind;
    out->created_ms = created_ms;
    out->expires_ms = expires_ms;
    out->unit_minor = unit_minor;
    out->total_minor = total_minor;
    if (currency)
        snprintf(out->currency, sizeof out->currency, "%s", currency);
    return CM_LEDGER_OK;
}

int cm_ledger_stats_read(cm_ledger *l, cm_ledger_stats *out)
{
    if (!out || out->struct_size < offsetof(cm_ledger_stats, statements))
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID,
                               "cm_ledger_stats_read: out is NULL or its struct_size is too small");
    if (!l)
        return cm__ledger_fail(NULL, CM_LEDGER_E_INVALID, "the ledger handle is NULL");
    pthread_mutex_lock(&l->mu);
    out->transactions = l->n_tx;
    out->retries = l->n_retry;
    out->reconnects = l->ops->reconnects ? l->ops->reconnects(l->st) : 0;
    if (out->struct_size >= sizeof(cm_ledger_stats)) {
        out->statements = out->round_trips = 0;
        if (l->ops->counts)
            l->ops->counts(l->st, &out->statements, &out->round_trips);
    }
    pthread_mutex_unlock(&l->mu);
    return CM_LEDGER_OK;
}
