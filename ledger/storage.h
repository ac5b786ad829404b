/* SPDX-License-Identifier: MIT */
/*
 * storage.h - the ledger's narrow storage interface (internal).
 *
 * The rules (ledger_*.c) are backend-neutral C; they talk to a database only through
 * a cm_storage_ops table: open/close, a write transaction (BEGIN IMMEDIATE in SQLite;
 * READ COMMITTED plus per-workspace locks in PostgreSQL, see lock()), a read
 * transaction, and "run named
 * statement N with these bound parameters, calling back for each row". Each backend
 * keeps its own SQL text for every statement id below, in one place (storage_sqlite.c,
 * storage_pg.c), together with its schema and migrations. SQL is never built
 * from values: parameters are always bound.
 *
 * Invariants the rules rely on:
 *  - every call that writes runs inside begin(conn, 1) ... commit/rollback, and locks
 *    (lock()) each workspace before it reads that workspace's rows; the backend
 *    guarantees that write transactions on one workspace have the effect of running one
 *    at a time (SQLite: the database-wide write lock taken at BEGIN IMMEDIATE, lock() is
 *    a no-op; PostgreSQL: a transaction-scoped advisory lock per workspace, so calls on
 *    different workspaces never wait for each other). What is shared by workspaces is
 *    either locked too (a price row: CM_LOCK_PRICE) or unique (job ids, payment, refund
 *    and plan references): a transaction that loses the race for a unique key, a
 *    deadlock or a serialization failure gets CM_ST_RETRY, and the rules layer runs the
 *    call again from the start (its reads then see the winner's row);
 *  - a statement run with no row callback may be queued and its failure reported by a
 *    later run() or by commit() (PostgreSQL sends such writes with the next read or the
 *    COMMIT in one round trip); either way the whole transaction is rolled back;
 *  - a read transaction sees one consistent snapshot;
 *  - INSERT statements that make an id return it as their only result row
 *    (INSERT ... RETURNING id, portable to PostgreSQL).
 *
 * Statement parameters and result columns are documented next to each id; integers
 * are int64, texts are UTF-8, a NULL is CM_SV_NULL.
 */
#ifndef CM_LEDGER_STORAGE_H
#define CM_LEDGER_STORAGE_H

#include <stddef.h>
#include <stdint.h>

/* Storage result codes (mapped to cm_ledger errors by the rules layer). */
enum {
    CM_ST_OK = 0,
    CM_ST_BUSY = 1,        /* locked past the busy timeout */
    CM_ST_CONSTRAINT = 2,  /* a unique/foreign key/check constraint failed */
    CM_ST_ERROR = 3,       /* anything else: I/O, corruption, schema */
    CM_ST_ABORT = 4,       /* the row callback asked to stop (not an error) */
    CM_ST_RETRY = 5,       /* the transaction lost a race (serialization failure, deadlock, a
                              unique key taken by a concurrent transaction): roll back and run
                              it again from the start. Never from SQLite. */
    CM_ST_NO_LEDGER = 6,   /* open without create: there is no ledger at the location (no
                              file, no directory, or no creditmeter schema in it) */
    CM_ST_UNAVAILABLE = 7, /* the server cannot be reached or will not take writes now
                              (connection lost, shut down, failed over, read-only): the
                              transaction is lost; the backend reconnects at the next begin.
                              Whether an in-flight COMMIT took effect is unknown to the caller:
                              retrying the same call (same job id, same reference) is safe. */
};

/* What lock() locks until the end of the write transaction. */
enum {
    CM_LOCK_WS = 1,    /* key: a workspace id (it need not exist yet) */
    CM_LOCK_JOB = 2,   /* key: a job id: the workspace of that job's hold, if there is one */
    CM_LOCK_PRICE = 3, /* key: a region of the price table */
};

/* CM_SV_CLOCK appears only in prefetch() parameters: "the transaction's clock, as
 * CM_Q_CLOCK_NOW reads it", for a read declared before that clock is known (PostgreSQL's
 * server clock comes back in the same round trip as the read). A run() with CM_SV_INT of
 * that value matches it. */
enum cm_sv_type { CM_SV_NULL = 0, CM_SV_INT = 1, CM_SV_TEXT = 2, CM_SV_CLOCK = 3 };

/* One bound parameter or one result column. Texts in results are valid only during
 * the row callback. */
typedef struct cm_sv {
    int type;
    int64_t i;
    const char *s;
} cm_sv;

/* Named statements. Parameters ?1..?n in order; result columns as listed. */
typedef enum cm_stmt {
    /* prices(region, currency, unit_minor) */
    CM_Q_PRICE_GET,    /* (region) -> currency, unit_minor */
    CM_Q_PRICE_UPSERT, /* (region, currency, unit_minor) */
    /* workspaces(id, owner, region, created_ms) */
    CM_Q_WS_GET,    /* (ws) -> owner, region */
    CM_Q_WS_INSERT, /* (ws, owner, region, created_ms) */
    CM_Q_WS_ALL,    /* () -> id */
    CM_Q_WS_ACCESS, /* (ws, user|NULL) -> owner, region, member (1 if user is a member
                        of ws, else 0); no row if ws does not exist */
    /* members(ws, user_id) */
    CM_Q_MEMBER_GET,    /* (ws, user) -> 1 */
    CM_Q_MEMBER_INSERT, /* (ws, user) */
    CM_Q_MEMBER_DELETE, /* (ws, user) */
    /* plans(ws, credits, interval, tier, start_ms, next_period, cancelled_ms,
     *       sched_credits, sched_interval, sched_tier, sched_ms) */
    CM_Q_PLAN_GET,      /* (ws) -> credits, interval, tier, start_ms, next_period, cancelled_ms,
                            sched_credits, sched_interval, sched_tier, sched_ms */
    CM_Q_PLAN_PUT,      /* (ws, credits, interval, tier, start_ms) : replace, next_period 0,
                            not cancelled, nothing scheduled */
    CM_Q_PLAN_SET_NEXT, /* (ws, next_period) */
    CM_Q_PLAN_CANCEL,   /* (ws, cancelled_ms) */
    /* what bringing ws up to now has to do, in one read */
    CM_Q_TOUCH_STATE,     /* (ws, clock_ms) -> lapse_due (1 if a held hold's lease ended by
                              now, else 0), expiry_due (1 if a grant with remaining > 0 expired
                              by now, else 0), then the plan's credits, interval, start_ms,
                              next_period, cancelled_ms (all NULL without a plan), then now:
                              the later of clock_ms and the at_ms of the workspace's last
                              journal row (ledger time never runs backwards), which the due
                              tests use, then has_alert (1 if ws has a low-balance alert, else
                              0); one row */
    CM_Q_TOUCH_STATE_JOB, /* (job, clock_ms) -> CM_Q_TOUCH_STATE of the workspace of job's hold
                              (no row without that hold): lets a call keyed by a job declare
                              this read before it has read the hold */
    /* grants(id, ws, kind, granted, remaining, held, charged, expired, refunded_into,
     *        created_ms, expires_ms, period, ref, unit_minor, total_minor, currency) */
    CM_Q_GRANT_INSERT,    /* (ws, kind, granted, created_ms, expires_ms|NULL, period|NULL,
                              ref|NULL, unit_minor|NULL, total_minor|NULL, currency|NULL) -> id */
    CM_Q_GRANT_GET,       /* (id) -> GRANT_COLS */
    CM_Q_GRANT_SPENDABLE, /* (ws, now_ms) -> GRANT_COLS of grants with remaining > 0 that
                              have not expired, in spending order */
    CM_Q_GRANT_LIVE,      /* (ws) -> GRANT_COLS with remaining > 0 or held > 0, spending order */
    CM_Q_GRANT_EXPIRING,  /* (ws, now_ms) -> GRANT_COLS expired by now with remaining > 0,
                              soonest expiry first */
    CM_Q_GRANT_ALL,       /* () -> GRANT_COLS of every grant, by id */
    CM_Q_GRANT_BY_REF,    /* (ref) -> GRANT_COLS of the add-on bought with that ref */
    CM_Q_GRANT_SET,       /* (id, remaining, held, charged, expired, refunded_into, granted) */
    /* holds(job, ws, user_id, credits, lease_s, state, created_ms, lease_until_ms,
     *       resolved_ms, charged, refunded, commit_arg) */
    CM_Q_HOLD_GET,          /* (job) -> HOLD_COLS */
    CM_Q_HOLD_INSERT,       /* (job, ws, user, credits, lease_s, created_ms, lease_until_ms,
                                binding|NULL, note|NULL) */
    CM_Q_HOLD_LAPSABLE,     /* (ws, now_ms) -> job of held holds with lease_until_ms <= now */
    CM_Q_HOLD_RENEW,        /* (job, lease_until_ms) */
    CM_Q_HOLD_RESOLVE,      /* (job, state, resolved_ms, charged, commit_arg) */
    CM_Q_HOLD_SET_REFUNDED, /* (job, refunded) */
    CM_Q_HOLD_ALL,          /* () -> HOLD_COLS of every hold */
    /* hold_takes(job, seq, grant_id, credits): which grants a hold took from, in order,
     * written once at reserve. What a commit charged and a refund gave back of each take
     * follows from the hold's charged and refunded (cm__takes_of). */
    CM_Q_TAKE_INSERT,  /* (job, seq, grant_id, credits) */
    CM_Q_TAKES_OF,     /* (job) -> seq, grant_id, credits, kind, expires_ms (of the
                           grant); by seq */
    CM_Q_TAKES_GRANTS, /* (job) -> GRANT_COLS of the take's grant, then seq, credits of
                           the take (from CM_TC_SEQ on); by seq */
    CM_Q_TAKES_ALL,    /* () -> job, seq, grant_id, credits, ws of the grant (NULL when
                           there is no such grant), for check; by job, seq */
    /* refunds(ref, job, credits, to_source, refund_grant_id, total_refunded, at_ms) */
    CM_Q_REFUND_GET,    /* (ref) -> job, credits, to_source, refund_grant_id, total */
    CM_Q_REFUND_INSERT, /* (ref, job, credits, to_source, refund_grant_id|NULL, total, at_ms) */
    /* journal(id, op, ws, at_ms, kind, grant_id, job, credits, actor, reason, ref) */
    /* Ids and operation numbers are unique and increasing within a workspace (a backend
     * may make them unique across workspaces too); a workspace's rows are in id order. */
    CM_Q_JOURNAL_NEXT_OP, /* (ws) -> a new operation number for ws (unique within ws,
                             increasing; taken inside the write transaction) */
    CM_Q_JOURNAL_INSERT,  /* (op, ws, at_ms, kind, grant_id|NULL, job|NULL, credits, actor,
                              reason|NULL, ref|NULL) : the row gets the next id of ws */
    CM_Q_JOURNAL_OF_WS,   /* (ws) -> id, at_ms, kind, grant_id, job, credits, actor, reason,
                              ref; by id */
    CM_Q_JOURNAL_ALL,     /* () -> id, op, kind, grant_id, job, credits, ws, at_ms; by ws, id */
    CM_Q_HOLD_NOTE,       /* (ws, job) -> reason of the job's first "hold" journal row: the
                              note of its reserve */
    /* ---- v3: plans (plan changes, scheduled changes, replay references, one clock) ---- */
    CM_Q_PLAN_UPDATE, /* (ws, credits, interval, tier, start_ms, next_period, cancelled_ms|NULL,
                          sched_credits|NULL, sched_interval|NULL, sched_tier|NULL,
                          sched_ms|NULL) */
    /* plan_changes(id, ws, at_ms, action, credits, interval, tier, ref, outcome, resumed,
     *              granted, effective_ms): every plan set/cancel that was not a replay */
    CM_Q_PLAN_CHANGE_INSERT, /* (ws, at_ms, action, credits, interval, tier, ref|NULL, outcome,
                                 resumed, granted, effective_ms|NULL) */
    CM_Q_PLAN_CHANGE_BY_REF, /* (ref) -> ws, action, credits, interval, tier, outcome, resumed,
                                 granted, effective_ms */
    CM_Q_PLAN_CHANGES_ALL,   /* () -> ws, at_ms, action, credits, interval; by ws, id */
    CM_Q_JOURNAL_V3_FROM,    /* () -> ws, id: the last journal id of each workspace when the
                                 schema became v3 (rows after it obey the v3 clock rules) */
    CM_Q_CLOCK_NOW,          /* () -> the database server's clock, Unix ms, or NULL when the
                                 backend has none to offer (SQLite: the local clock is used) */
    /* ---- end v3: plans ---- */
    /* v3: holds binding / prices */
    CM_Q_HOLD_EXTRA,           /* (job) -> binding, note, commit_note (each NULL when none; all
                                   NULL for a hold made before schema 3) */
    CM_Q_HOLD_SET_COMMIT_NOTE, /* (job, commit_note) */
    /* prices_log(id, at_ms, actor, region, old_currency, old_unit_minor, new_currency,
     *            new_unit_minor): append-only */
    CM_Q_PRICE_LOG_INSERT,  /* (at_ms, actor, region, old_currency|NULL, old_unit_minor|NULL,
                              new_currency, new_unit_minor) */
    CM_Q_PRICE_LOG_LIST,    /* (region|NULL) -> id, at_ms, actor, region, old_currency,
                                old_unit_minor, new_currency, new_unit_minor; by id */
    CM_Q_HOLD_BINDINGS_ALL, /* () -> job, binding, state: every hold that has a binding;
                                by job (check) */
    /* ---- v4: events, alerts, export, metrics, health ----
     * events(id, tx, at_ms, ws, op, type, job, data): the outbox, append-only. id is
     * increasing; tx orders delivery: 0 on SQLite (writers are serialised, ids follow
     * commit order), the writing transaction's id on PostgreSQL (ids are drawn before
     * commit, so a reader reads only transactions older than every one still running).
     * op is the journal operation number of the movement in ws; data a JSON object. */
    CM_Q_EVENT_INSERT,     /* (at_ms, ws, op, type, job|NULL, data) */
    CM_Q_EVENTS_AFTER,     /* (after_tx, after_id, limit) -> id, tx, at_ms, type, ws, job, data:
                              committed events after the cursor (tx, id), in delivery order */
    CM_Q_EVENTS_UNMATCHED, /* () -> ws, id, kind, job: the first journal row written since v4
                              (journal_v4_from) of a movement that has no event in its
                              operation (check) */
    /* alerts(ws, below, armed, set_by, set_ms) */
    CM_Q_ALERT_STATE,  /* (ws, now_ms) -> below, armed, available (the spendable credits of ws
                          now); no row without an alert */
    CM_Q_ALERT_PUT,    /* (ws, below, set_by, set_ms) : set or replace, armed */
    CM_Q_ALERT_DELETE, /* (ws) */
    CM_Q_ALERT_ARM,    /* (ws, armed) */
    CM_Q_EXPORT_PAGE,  /* (after_ws, after_id, ws|NULL, since_ms|NULL, until_ms|NULL, limit) ->
                          id, op, ws, at_ms, kind, grant_id, job, credits, actor, reason, ref,
                          binding, hold_note, commit_note (of the row's hold, NULL without one):
                          journal rows after (after_ws, after_id) by ws, id, at_ms in
                          [since, until) */
    CM_Q_METRICS,      /* (now_ms) -> workspaces, available, held, open holds, oldest open
                          hold's created_ms (NULL without one), open holds whose lease ended
                          by now; one row */
    CM_Q_PING,         /* (at_ms) : writes the one row of table health */
    CM_Q__COUNT
} cm_stmt;

/* Column order of GRANT_COLS and HOLD_COLS results. */
enum {
    CM_GC_ID,
    CM_GC_WS,
    CM_GC_KIND,
    CM_GC_GRANTED,
    CM_GC_REMAINING,
    CM_GC_HELD,
    CM_GC_CHARGED,
    CM_GC_EXPIRED,
    CM_GC_REFUNDED_INTO,
    CM_GC_CREATED_MS,
    CM_GC_EXPIRES_MS,
    CM_GC_REF,
    CM_GC_UNIT_MINOR,
    CM_GC_TOTAL_MINOR,
    CM_GC_CURRENCY,
    CM_GC__COUNT
};
enum {
    CM_HC_JOB,
    CM_HC_WS,
    CM_HC_USER,
    CM_HC_CREDITS,
    CM_HC_LEASE_S,
    CM_HC_STATE,
    CM_HC_CREATED_MS,
    CM_HC_LEASE_UNTIL_MS,
    CM_HC_RESOLVED_MS,
    CM_HC_CHARGED,
    CM_HC_REFUNDED,
    CM_HC_COMMIT_ARG,
    CM_HC__COUNT
};

/* Columns of CM_Q_TAKES_GRANTS after the GRANT_COLS. */
enum { CM_TC_SEQ = CM_GC__COUNT, CM_TC_CREDITS, CM_TC__COUNT };

/* The most columns a statement returns. */
#define CM_MAX_COLS CM_TC__COUNT

/* Row callback: ncols values; return 0 to continue, non-zero to stop (run then
 * returns CM_ST_ABORT). */
typedef int (*cm_row_fn)(void *ctx, const cm_sv *cols, int ncols);

typedef struct cm_storage cm_storage; /* one backend connection */

typedef struct cm_storage_options {
    int busy_timeout_ms;
    int synchronous; /* enum cm_ledger_sync */
    int create;      /* 1: create the ledger when there is none; 0: CM_ST_NO_LEDGER */
} cm_storage_options;

typedef struct cm_storage_ops {
    const char *name;
    /* Open location and migrate its schema; create it only when opt->create (else a
     * location without a ledger is CM_ST_NO_LEDGER, and nothing is created). On failure
     * returns a CM_ST_ code and writes a sentence into err. */
    int (*open)(cm_storage **out, const char *location, const cm_storage_options *opt, char *err,
                size_t errlen);
    void (*close)(cm_storage *st);
    int (*begin)(cm_storage *st, int write); /* write=1: exclusive writer until commit */
    /* In a write transaction, lock what (CM_LOCK_*) named key until commit or rollback:
     * call it before the first read of what the lock guards. Locking one workspace twice
     * is harmless. CM_ST_RETRY when the transaction must start again: the workspace of
     * a job whose hold did not exist when CM_LOCK_JOB ran (a concurrent reserve made it
     * since) is locked only now, after the caller read it. SQLite: a no-op (the write
     * transaction already excludes every other writer). */
    int (*lock)(cm_storage *st, int what, const char *key);
    int (*commit)(cm_storage *st);
    int (*rollback)(cm_storage *st);
    /* Run a named statement; fn may be NULL when no rows are wanted. */
    int (*run)(cm_storage *st, cm_stmt id, const cm_sv *params, int nparams, cm_row_fn fn,
               void *ctx);
    /* Declare, at the start of a transaction, a read the call is about to make (a
     * statement with rows, params as run() will get them; CM_SV_CLOCK for the clock not
     * read yet). A backend may send it early (PostgreSQL: with BEGIN and the lock, in one
     * round trip) and answer the later run() of the same statement with equal parameters
     * from what it read, provided nothing but declared reads ran in between: any other
     * statement (a write, a lock, an undeclared read) makes every declared read not yet
     * answered go to the server again when it is run. So a declaration never changes
     * what a call reads, only when; a declared read that is never run costs a statement.
     * NULL or a no-op (SQLite: nothing to save). */
    int (*prefetch)(cm_storage *st, cm_stmt id, const cm_sv *params, int nparams);
    /* Lock, in a write transaction, the workspaces of the holds of jobs[0..n-1] (jobs
     * with no hold lock nothing), all in one order every call that locks several
     * workspaces uses, so that two such calls cannot deadlock. A later lock() of one of
     * those workspaces is free; lock() of another workspace in the same transaction is
     * CM_ST_RETRY (a hold made after this lock ran: the call runs again). NULL: SQLite,
     * whose write transaction excludes every other writer. */
    int (*lock_jobs)(cm_storage *st, const char *const *jobs, size_t n);
    /* Statements sent and round trips made on st since it was opened (NULL: a backend
     * without a server, SQLite). */
    void (*counts)(cm_storage *st, int64_t *statements, int64_t *round_trips);
    /* The backend's text for the last failure on st. */
    const char *(*errmsg)(cm_storage *st);
    /* How many times st made its connection again after losing it (NULL: a backend
     * without connections, SQLite). */
    int64_t (*reconnects)(cm_storage *st);
} cm_storage_ops;

extern const cm_storage_ops cm__storage_sqlite;
extern const cm_storage_ops cm__storage_pg; /* location postgresql://... or postgres://... */

/* Schema version this build creates and understands. */
#define CM_LEDGER_SCHEMA_VERSION 4

#endif /* CM_LEDGER_STORAGE_H */
