/* SPDX-License-Identifier: MIT */
/*
 * ledger_internal.h - what the ledger's rule files share (internal).
 *
 * The handle, the per-call transaction context, row structs read through the storage
 * interface, and the helpers every rule uses: failing with a code and a sentence,
 * running named statements, writing the journal, and applying a movement to a grant.
 *
 * Invariant: every change to a grant's counters goes through cm__move() or
 * cm__move_unsaved(), which apply the same effect table as cm__apply_movement() (used by
 * check to re-derive balances) and append the journal row in the same transaction;
 * cm__move_unsaved() leaves the row marked dirty, and the caller saves it with
 * cm__grant_save() before its transaction ends (one UPDATE for several movements).
 */
#ifndef CM_LEDGER_INTERNAL_H
#define CM_LEDGER_INTERNAL_H

#include "cm_ledger.h"
#include "cm_text.h" /* cm__text_plain: the rule for ids, tiers, reasons, notes */
#include "storage.h"

#include <pthread.h>
#include <stdarg.h>

#define CM_ID_MAX 255    /* longest workspace, user, job, region, reference id (bytes) */
#define CM_TEXT_MAX 1000 /* longest reason / tier */

/* Longest detailed error sentence, with its NUL. */
#define CM_ERRMSG_MAX 512

struct cm_ledger {
    pthread_mutex_t mu; /* held for the whole of every call: one transaction at a time */
    const cm_storage_ops *ops;
    cm_storage *st;
    int64_t (*now_ms)(void *user);
    void *clock_user;
    int server_clock;           /* no injected clock and the backend has one (PostgreSQL): use it */
    int busy_timeout_ms;        /* also bounds the retries of a transaction that lost a race */
    int retry;                  /* set when the storage said CM_ST_RETRY during this attempt */
    int64_t n_tx, n_retry;      /* transactions attempted, and run again (cm_ledger_stats) */
    pthread_mutex_t err_mu;     /* guards errmsg only; a leaf: nothing is locked under it */
    char errmsg[CM_ERRMSG_MAX]; /* the last call's failure, "" after a success */
};

/* One call's transaction. */
typedef struct cm_tx {
    cm_ledger *l;
    int64_t clock;      /* the clock, read once per call (PostgreSQL: the server's) */
    int clock_read;     /* clock holds it (not yet in pre, on the server's clock) */
    int clock_declared; /* the server's clock was declared (cm__prefetch) */
    int64_t now;        /* ledger time: the clock, raised by cm__touch() to the time of the
                           touched workspace's last journal row if that is later */
    int write;          /* a write transaction */
    char locked_ws[CM_ID_MAX + 1]; /* the workspace this call locked last (cm__lock_ws) */
    int64_t op; /* operation number of the journal rows of this call in workspace op_ws;
                   0 until the first row there is inserted (which takes a new one) */
    char op_ws[CM_ID_MAX + 1];
    int alert_pending; /* credits of op_ws moved in this call: look at its low-balance alert
                          (cm__alert_flush) before moving on to another workspace or ending */
    char noalert_ws[CM_ID_MAX + 1]; /* a workspace cm__touch found without an alert (""
                                       none); an alert set or cleared in the call resets it */
    cm_ledger_sweep_stats stats;    /* lazy work done by this call */
    /* A result the body handed to the caller, to undo if the transaction then fails
     * (commit refused) or runs again (retry): discard(slot) frees *slot, sets it NULL. */
    void (*discard)(void *slot);
    void *discard_slot;
} cm_tx;

typedef struct cm_grant_row {
    int64_t id;
    char ws[CM_ID_MAX + 1];
    int kind;
    int64_t granted, remaining, held, charged, expired, refunded_into;
    int64_t created_ms, expires_ms; /* expires_ms -1: never */
    int64_t unit_minor, total_minor;
    char currency[4];
    int dirty; /* changed in memory by cm__move_unsaved, not yet saved */
} cm_grant_row;

typedef struct cm_grant_vec {
    cm_grant_row *v;
    size_t n, cap;
} cm_grant_vec;

typedef struct cm_hold_row {
    char job[CM_ID_MAX + 1], ws[CM_ID_MAX + 1], user[CM_ID_MAX + 1];
    int64_t credits, lease_s;
    int state;
    int64_t created_ms, lease_until_ms, resolved_ms, charged, refunded, commit_arg;
} cm_hold_row;

typedef struct cm_take_row {
    int64_t seq, grant_id, credits, charged, refunded;
    int kind;
    int64_t expires_ms;
} cm_take_row;

typedef struct cm_take_vec {
    cm_take_row *v;
    size_t n, cap;
} cm_take_vec;

typedef struct cm_ws_row {
    char owner[CM_ID_MAX + 1];
    char region[CM_ID_MAX + 1];
} cm_ws_row;

/* ---- ledger.c: errors and transactions ---- */
int cm__ledger_fail(cm_ledger *l, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int cm__storage_fail(cm_ledger *l, int st_rc); /* maps CM_ST_* to BUSY/STORAGE/UNAVAILABLE */
typedef int (*cm_tx_body)(cm_tx *tx, void *arg);
/* Run body in one transaction under the handle's mutex. A body that refuses (any code
 * but BUSY/STORAGE/NOMEM/UNAVAILABLE) has changed nothing of its own, so the lazy work it did
 * (lapses, expiries, periods) is committed; storage failures roll everything back.
 * When the storage refuses the transaction as having lost a race (CM_ST_RETRY, from
 * PostgreSQL: a deadlock, a unique key a concurrent call took first), everything is rolled back and
 * body runs again from the start with a fresh cm_tx, after a short random back-off, until the busy
 * timeout has passed (then E_BUSY). So a body must have no effect outside its transaction except
 * through its args, which it overwrites on every run, and must register any result it
 * allocates for the caller with cm__tx_on_fail. SQLite never asks for a retry. */
int cm__tx_run(cm_ledger *l, int write, cm_tx_body body, void *arg);
/* cm__tx_run, taking lock (CM_LOCK_WS, CM_LOCK_JOB, CM_LOCK_PRICE of storage.h; 0: none)
 * on key first in a write transaction. Every call that writes names what it works on
 * here, so that on PostgreSQL the lock travels with BEGIN. */
int cm__tx_run_locked(cm_ledger *l, int write, int lock, const char *key, cm_tx_body body,
                      void *arg);
/* cm__tx_run_locked, calling pre(tx, arg) after the lock and before the clock is read
 * (pre may lock more with cm__lock_jobs before its first declaration):
 * pre declares (cm__prefetch) the reads body is about to make, in the order it makes
 * them, with cm__clock_sv(tx) where the clock goes. It reads nothing and writes nothing;
 * a declaration body does not follow costs a statement, never a wrong answer. */
int cm__tx_run_pre(cm_ledger *l, int write, int lock, const char *key, cm_tx_body pre,
                   cm_tx_body body, void *arg);
/* Declare a read the call is about to make (storage.h prefetch). */
int cm__prefetch(cm_tx *tx, cm_stmt id, const cm_sv *p, int n);
#define CM_PREFETCH(tx, id, ...)                                                                   \
    cm__prefetch((tx), (id), (const cm_sv[]){__VA_ARGS__},                                         \
                 (int)(sizeof((const cm_sv[]){__VA_ARGS__}) / sizeof(cm_sv)))
/* Lock the workspaces of the holds of jobs (storage.h lock_jobs), in pre before any
 * declared read: the one call that works on several workspaces at once, renew_many. */
int cm__lock_jobs(cm_tx *tx, const char *const *jobs, size_t n);
/* The clock as a parameter: tx->clock once read, else CM_SV_CLOCK (in pre). */
cm_sv cm__clock_sv(const cm_tx *tx);
/* Lock workspace ws for the rest of a write transaction (nothing in a read one, or if
 * this call locked ws last). Call it before reading ws's rows: cm__ws_access and
 * cm__touch do. CM_LEDGER_E_BUSY (and a retry of the call) when the storage says the
 * call must run again. */
int cm__lock_ws(cm_tx *tx, const char *ws);
/* Record that slot now holds a result for the caller, to discard if the call fails. */
void cm__tx_on_fail(cm_tx *tx, void (*discard)(void *slot), void *slot);
int cm__valid_id(cm_ledger *l, const char *what, const char *id);

/* ---- statements ---- */
int cm__run(cm_tx *tx, cm_stmt id, const cm_sv *p, int n, cm_row_fn fn, void *ctx);
#define CM_I(x) ((cm_sv){CM_SV_INT, (int64_t)(x), NULL})
#define CM_T(x) ((cm_sv){CM_SV_TEXT, 0, (x)})
#define CM_N ((cm_sv){CM_SV_NULL, 0, NULL})
#define CM_RUN(tx, id, fn, ctx, ...)                                                               \
    cm__run((tx), (id), (const cm_sv[]){__VA_ARGS__},                                              \
            (int)(sizeof((const cm_sv[]){__VA_ARGS__}) / sizeof(cm_sv)), (fn), (ctx))

int cm__cb_int(void *ctx, const cm_sv *c, int n); /* first column of the first row */
/* Insert a grant with zero counters (credits arrive by a movement). expires_ms,
 * period -1: none; currency NULL: no price. */
int cm__grant_new(cm_tx *tx, const char *ws, int kind, int64_t created_ms, int64_t expires_ms,
                  int64_t period, const char *ref, int64_t unit_minor, int64_t total_minor,
                  const char *currency, cm_grant_row *out);
void cm__copy_text(char *dst, size_t size, const cm_sv *v);
int64_t cm__int_or(const cm_sv *v, int64_t dflt);

int cm__grant_get(cm_tx *tx, int64_t id, cm_grant_row *out); /* CM_LEDGER_E_STORAGE if gone */
int cm__grant_list(cm_tx *tx, cm_stmt id, const cm_sv *p, int n, cm_grant_vec *out);
void cm__grant_vec_free(cm_grant_vec *v);
void cm__grant_from_cols(cm_grant_row *g, const cm_sv *c);
int cm__hold_get(cm_tx *tx, const char *job, cm_hold_row *out, int *found);
void cm__hold_from_cols(cm_hold_row *h, const cm_sv *c);
/* The takes of hold h in order, with what its commit charged and its refunds gave back
 * of each (the commit charges takes in order; refunds start from the last take). */
int cm__takes_of(cm_tx *tx, const cm_hold_row *h, cm_take_vec *out);
/* cm__takes_of in two steps: the takes as reserve wrote them (they never change), then
 * what h's charge and refunds took of each (frees out on failure). */
int cm__takes_read(cm_tx *tx, const char *job, cm_take_vec *out);
int cm__takes_derive(cm_tx *tx, const cm_hold_row *h, cm_take_vec *out);
int cm__ws_get(cm_tx *tx, const char *ws, cm_ws_row *out, int *found);

/* Check that user may use ws (owner or member; NULL = operator). need_owner: only the
 * owner. A non-member gets the same E_NO_WORKSPACE as a missing workspace. */
int cm__ws_access(cm_tx *tx, const char *ws, const char *user, int need_owner, const char *action,
                  cm_ws_row *out);

/* ---- ledger_money.c ---- */
/* Check a region ("default", or an ISO 3166-1 alpha-2 code in any case) and write its
 * stored form ("default" or upper case) into out. Returns OK or E_INVALID. */
int cm__region_normalize(cm_ledger *l, const char *in, char *out, size_t size);

/* ---- journal and movements ---- */
/* The operation number of this call's rows in ws (taking a new one when the call moves
 * to ws; the alert of the workspace it leaves is looked at first). */
int cm__journal_op(cm_tx *tx, const char *ws, int64_t *op);
int cm__journal(cm_tx *tx, const char *ws, int64_t at_ms, const char *kind, int64_t grant_id,
                const char *job, int64_t credits, const char *actor, const char *reason,
                const char *ref);
/* Apply a movement's effect on a grant's counters (shared by the rules and check).
 * Returns 0, or -1 for an unknown kind. */
int cm__apply_movement(cm_grant_row *g, const char *kind, int64_t credits);
/* Apply, save the grant, and journal the movement. */
int cm__move(cm_tx *tx, cm_grant_row *g, const char *kind, int64_t credits, int64_t at_ms,
             const char *job, const char *actor, const char *reason, const char *ref);
/* Apply and journal the movement; the grant is marked dirty and saved later by
 * cm__grant_save() (so that several movements of one grant cost one UPDATE). */
int cm__move_unsaved(cm_tx *tx, cm_grant_row *g, const char *kind, int64_t credits, int64_t at_ms,
                     const char *job, const char *actor, const char *reason, const char *ref);
/* Save a grant's counters if cm__move_unsaved() changed them. */
int cm__grant_save(cm_tx *tx, cm_grant_row *g);
/* Give credits of a hold back to grant g ("release" or "lapse"); if g has expired by
 * now they expire with it. Unsaved: the caller calls cm__grant_save(). */
int cm__give_back_unsaved(cm_tx *tx, cm_grant_row *g, const char *kind, int64_t credits,
                          int64_t at_ms, const char *job, const char *actor, const char *reason);
int cm__grant_expired(const cm_grant_row *g, int64_t now);

/* ---- ledger_time.c/ledger_plan.c: bringing a workspace up to now ---- */
/* The most calendar months one call brings a plan forward (each period in between is
 * granted and expired in order): 100 years. A clock further ahead is E_INVALID. */
#define CM_CATCHUP_MAX_MONTHS 1200
/* Raise tx->now to ws's last journal time if the clock reads earlier, then bring ws up to
 * now: lapses, expiries and plan periods, each dated at its own instant, in time order. */
int cm__touch(cm_tx *tx, const char *ws);
/* cm__touch of ws, the workspace of job's hold (read by the job: CM_Q_TOUCH_STATE_JOB). */
int cm__touch_job(cm_tx *tx, const char *ws, const char *job);
int cm__grant_plan_period(cm_tx *tx, const char *ws, int64_t credits_per_month, int interval,
                          int64_t start_ms, int64_t period, const char *actor);

/* ---- ledger_holds.c ---- */
/* Resolve a held hold: charge `charge` credits from its takes in spending order and give
 * the rest back ("lapse" if state is LAPSED, else "release"), then mark it state. */
int cm__hold_resolve(cm_tx *tx, cm_hold_row *h, int64_t charge, int state, int64_t at_ms,
                     const char *actor);
/* The same, the commit rows carrying commit_note as their reason (NULL: "charged") and
 * the hold keeping it (holds.commit_note). */
int cm__hold_resolve_noted(cm_tx *tx, cm_hold_row *h, int64_t charge, int state, int64_t at_ms,
                           const char *actor, const char *commit_note);

/* ---- ledger_ops.c: the event outbox (written in the movement's transaction) ---- */
/* A hold resolved (commit, release or lapse, by state) for charge credits. */
int cm__event_hold(cm_tx *tx, const cm_hold_row *h, int state, int64_t charge, int64_t at_ms,
                   const char *actor, const char *commit_note);
int cm__event_refund(cm_tx *tx, const char *ws, const char *job, int64_t credits, int64_t to_source,
                     int64_t refund_grant, int64_t total, const char *reason,
                     const char *operator_id, const char *ref);
int cm__event_purchase(cm_tx *tx, const cm_grant_row *g, int64_t credits, const char *as_user,
                       const char *ref);
/* outcome 0: a scheduled change taking effect at its boundary. */
int cm__event_plan(cm_tx *tx, const char *ws, int64_t at_ms, const char *action, int64_t credits,
                   int interval, const char *tier, int outcome, int64_t granted,
                   int64_t effective_ms, const char *actor, const char *ref);
/* Look at the low-balance alert of tx->op_ws if its credits moved in this call: write a
 * low_balance event when they crossed below the threshold, re-arm it when above. */
int cm__alert_flush(cm_tx *tx);

/* ---- results ---- */
int cm__job_build(cm_tx *tx, const cm_hold_row *h, cm_ledger_job **out);

#endif
