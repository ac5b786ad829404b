/* SPDX-License-Identifier: MIT */
/*
 * cm_ledger.h - creditmeter's prepaid-credit ledger: workspaces, plans, add-ons,
 * two-phase holds with leases, charges, refunds and an append-only journal.
 *
 * This header is the whole contract of the ledger. A cm_ledger handle is one open
 * database: a SQLite file, or a PostgreSQL database when the location is a libpq
 * connection URI ("postgresql://..." or "postgres://..."), which a fleet of machines
 * can share. Every rule of docs/billing-rules.md "Where credits come
 * from" and "Holds, charges and refunds" is enforced here, inside one storage
 * transaction per call, so many threads and many processes may share one ledger
 * without a double spend, a negative balance or a lost update.
 *
 * Units. Credits are int64_t counts. Money is int64_t minor units (cents) with an
 * ISO 4217 currency code ("USD"). Time is int64_t milliseconds since the Unix epoch,
 * UTC, read from the clock in cm_ledger_config (injectable, so tests can move
 * through months and leases without sleeping). Lease lengths are seconds (lease_s).
 *
 * One clock. Without an injected clock, a SQLite ledger uses the local clock and a
 * PostgreSQL ledger the database server's (read once per transaction), so every machine
 * of a fleet shares one clock. Ledger time never runs backwards within a workspace: a
 * call whose clock reads earlier than the workspace's latest journal row acts, and is
 * dated, at that row's time.
 *
 * Users. Calls that act on a workspace take the acting user (as_user). The owner may
 * do everything; a member may reserve, quote and read; a user who is neither gets
 * CM_LEDGER_E_NO_WORKSPACE, exactly as if the workspace did not exist. Where this
 * header says "as_user may be NULL", NULL means the operator (support staff, the
 * cm-ledger CLI run by an administrator): trusted, allowed to read everything.
 * Hold-level calls (renew, commit, release, job info) are keyed by the job id,
 * which is the capability the reserving pipeline holds.
 *
 * Idempotency. Every writing call may be retried. A retry with the same arguments
 * returns the first result and changes nothing; the same key (job id, payment
 * reference, refund reference, workspace id) with other arguments is
 * CM_LEDGER_E_CONFLICT. A job id is also bound to its input (cm_ledger_reserve_bound)
 * and closed once its hold went back: reserving a released or lapsed job id again is
 * CM_LEDGER_E_JOB_CLOSED.
 *
 * Text. Ids, references, tiers, reasons, notes and input bindings are UTF-8 without
 * control characters (C0, DEL, C1, U+2028/U+2029, bidirectional controls); anything
 * else is CM_LEDGER_E_INVALID, so no stored text can forge a line of output.
 *
 * Lazy time. Whenever a call touches a workspace, the ledger first brings it up to
 * "now": it releases holds whose lease lapsed, expires plan grants past their end
 * and grants the plan periods that began since, in time order, each dated when it
 * happened (a lapse at its lease end, an expiry at its grant's end, every period in
 * between granted at its start and expired at its end). cm_ledger_sweep() does the same
 * for every workspace. A clock more than 100 years (1200 months) past a workspace's
 * last plan boundary is refused with E_INVALID by any call that touches it.
 *
 * Threading. A handle may be used from any number of threads at once: every call
 * takes the handle's mutex around its transaction. Results (structs returned through
 * an out pointer) belong to the caller and are freed with the matching _free().
 *
 * Errors. Functions return CM_LEDGER_OK (0) or a negative code from enum
 * cm_ledger_error. cm_ledger_err_name() gives its stable machine name,
 * cm_ledger_strerror() a generic sentence, and cm_ledger_errmsg() the detailed
 * sentence of the last call on a handle. When a call fails,
 * nothing of its own was changed (the lazy work of bringing the workspace up to now
 * may still have been committed), and out pointers are set to NULL (caller-provided
 * structs are left untouched).
 */
#ifndef CM_LEDGER_H
#define CM_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CM_LEDGER_EXTERN __attribute__((visibility("default")))
#else
#define CM_LEDGER_EXTERN
#endif

/* Result codes. 0 is success; errors are negative, append-only, never renumbered. */
enum cm_ledger_error {
    CM_LEDGER_OK = 0,
    CM_LEDGER_E_INSUFFICIENT = -1,     /* "insufficient_credits": not enough available */
    CM_LEDGER_E_FORBIDDEN = -2,        /* "forbidden": a member asked for an owner's action */
    CM_LEDGER_E_NO_WORKSPACE = -3,     /* "no_such_workspace": missing, or not yours */
    CM_LEDGER_E_NO_JOB = -4,           /* "no_such_job": no hold was ever made for the job */
    CM_LEDGER_E_CONFLICT = -5,         /* "conflict": same idempotency key, other arguments */
    CM_LEDGER_E_ALREADY_RESOLVED = -6, /* "already_resolved": commit after release and vice versa */
    CM_LEDGER_E_LEASE_EXPIRED = -7,    /* "lease_expired": the hold lapsed before this call */
    CM_LEDGER_E_INVALID = -8,          /* "invalid_argument": bad argument from the caller */
    CM_LEDGER_E_BUSY = -9,             /* "busy": the database stayed locked past the timeout */
    CM_LEDGER_E_STORAGE = -10,         /* "storage_failure": I/O, corruption, schema, driver */
    CM_LEDGER_E_NOMEM = -11,           /* "out_of_memory" */
    CM_LEDGER_E_CHECK = -12,           /* "check_failed": cm_ledger_check() found a violation */
    CM_LEDGER_E_NOT_MEMBER = -13,      /* "not_a_member": member remove of a user who is not one */
    CM_LEDGER_E_JOB_CLOSED = -14,      /* "job_closed": reserve of a job id whose hold was
                                          released or lapsed; a new attempt needs a new id */
    CM_LEDGER_E_UNSUPPORTED = -15,     /* "unsupported": not in this build (a postgresql://
                                          location in a build without libpq) */
    CM_LEDGER_E_NO_LEDGER = -16,       /* "no_such_ledger": cm_ledger_open without create of a
                                          location that holds no ledger (no such SQLite file or
                                          directory, a file or PostgreSQL database without the
                                          creditmeter schema) */
    CM_LEDGER_E_UNAVAILABLE = -17,     /* "storage_unavailable": PostgreSQL cannot be reached
                                          or will not take writes now (connection lost,
                                          server shut down, failover under way): retry the
                                          same call, same job id and references, later */
};
/* Retryable failures: E_BUSY and E_UNAVAILABLE. Any call that reaches the storage may
 * return E_UNAVAILABLE on PostgreSQL (the lists below name E_BUSY and E_STORAGE only).
 * Nothing of the failed call remains, unless its COMMIT reached the server before the
 * connection broke: then it took effect. Either way, running the same call again is
 * safe: a job id, a payment, refund or plan reference names one operation for good,
 * and a retry returns the first result. The handle connects again (to the first host of
 * its location that accepts writes) at its next call; a call that finds its connection
 * dropped before it sent anything makes it again itself and does not fail. cm-ledger exits with
 * status 3 for these two, 1 for every other refusal. */

/* Durability of a committed transaction (SQLite's PRAGMA synchronous). */
enum cm_ledger_sync {
    CM_LEDGER_SYNC_FULL = 0,   /* default: an acknowledged charge survives a power cut */
    CM_LEDGER_SYNC_NORMAL = 1, /* faster in WAL mode; survives a crash, not a power cut */
};

/* Plan billing interval. */
enum cm_ledger_interval {
    CM_LEDGER_MONTHLY = 1, /* N credits at the start of each month, expiring at its end */
    CM_LEDGER_ANNUAL = 2,  /* 12 x N at the start of each 12 months, expiring at their end */
};

/* Kind of a grant (a pot of credits with its own expiry). */
enum cm_ledger_grant_kind {
    CM_LEDGER_GRANT_PLAN = 1,   /* from a plan period; expires */
    CM_LEDGER_GRANT_ADDON = 2,  /* bought add-on credits; never expire */
    CM_LEDGER_GRANT_REFUND = 3, /* refunded credits whose source expired; never expire */
};

/* State of a hold. */
enum cm_ledger_hold_state {
    CM_LEDGER_HELD = 1,      /* reserved, lease running */
    CM_LEDGER_COMMITTED = 2, /* turned into a charge (possibly of fewer credits) */
    CM_LEDGER_RELEASED = 3,  /* given back by release() */
    CM_LEDGER_LAPSED = 4,    /* given back because its lease lapsed */
};

/* Pass as the credits of cm_ledger_commit() / cm_ledger_refund(): "all of it". */
#define CM_LEDGER_ALL ((int64_t)-1)

/* Default lease of a hold, in seconds, used when lease_s is 0. */
#define CM_LEDGER_DEFAULT_LEASE_S 900

typedef struct cm_ledger cm_ledger; /* opaque handle: one open ledger */

/* Options of cm_ledger_open(). Start from cm_ledger_config_init(); fields are only
 * ever appended, and the library reads none beyond struct_size. */
typedef struct cm_ledger_config {
    uint32_t struct_size; /* sizeof(cm_ledger_config) as compiled by the caller */
    union {
        const char *location; /* the ledger's location: an SQLite file path
                                 ("./creditmeter.db" if NULL), or a libpq URI
                                 postgresql://... / postgres://...; copied by open */
        const char *db;       /* the same field under its 0.2 name, kept so that older
                                 sources build; use location */
    };
    int64_t (*now_ms)(void *user); /* clock, Unix ms UTC; NULL: the real clock */
    void *clock_user;              /* passed to now_ms */
    int busy_timeout_ms;           /* wait for a locked database (PostgreSQL: lock_timeout,
                                      and how long a call that keeps losing races to
                                      concurrent writers is retried); 0: 5000 ms */
    int synchronous;               /* enum cm_ledger_sync; 0 is FULL (PostgreSQL:
                                      synchronous_commit on; NORMAL: off) */
    int create;                    /* 1: create the ledger when the location holds none (a new
                                      SQLite file in an existing directory; the tables in an
                                      existing PostgreSQL database); 0 (default): such a
                                      location is CM_LEDGER_E_NO_LEDGER and nothing is
                                      created. An existing ledger of an older schema is
                                      migrated either way. */
} cm_ledger_config;

/* Result of cm_ledger_buy(), filled in a caller-provided struct. */
typedef struct cm_ledger_purchase {
    int64_t grant_id;    /* the add-on grant the credits went into */
    int64_t credits;     /* credits bought */
    int64_t unit_minor;  /* price of one credit, minor units */
    int64_t total_minor; /* price paid: credits x unit_minor */
    char currency[4];    /* ISO 4217, NUL-terminated */
    int replayed;        /* 1 when this was a repeat of an earlier payment reference */
} cm_ledger_purchase;

/* Credits of one grant taken (or to be taken) by a quote or a hold. */
typedef struct cm_ledger_take {
    int64_t grant_id;
    int kind;           /* enum cm_ledger_grant_kind */
    int64_t credits;    /* taken at reserve time */
    int64_t charged;    /* of those, charged by commit (0 in a quote) */
    int64_t refunded;   /* of the charged, refunded since (0 in a quote) */
    int64_t expires_ms; /* the grant's expiry, or -1 for never */
} cm_ledger_take;

/* Result of cm_ledger_quote(); free with cm_ledger_quote_free(). */
typedef struct cm_ledger_quote_result {
    int64_t credits;       /* asked for */
    int64_t available;     /* spendable now */
    int affordable;        /* 1 if credits <= available */
    size_t n_takes;        /* grants in spending order that would be taken from */
    cm_ledger_take *takes; /* (empty when not affordable) */
} cm_ledger_quote_result;

/* A hold and its outcome: result of reserve/renew/commit/release/job_info; free with
 * cm_ledger_job_free(). */
typedef struct cm_ledger_job {
    char *job;
    char *workspace;
    char *user;             /* who reserved */
    int state;              /* enum cm_ledger_hold_state */
    int64_t credits;        /* held at reserve */
    int64_t charged;        /* charged by commit (0 unless committed) */
    int64_t refunded;       /* refunded since the commit */
    int64_t lease_s;        /* the lease asked for at reserve (renew keeps it) */
    int64_t created_ms;     /* reserve time */
    int64_t lease_until_ms; /* the lease ends here (a held hold lapses then) */
    int64_t resolved_ms;    /* commit/release/lapse time, or -1 while held */
    size_t n_takes;         /* the grants it took from, in spending order */
    cm_ledger_take *takes;
    char *note;        /* why it costs what it costs, as given at reserve (see
                          cm_ledger_reserve_noted); only cm_ledger_job_info fills it,
                          NULL elsewhere or when none was given */
    char *binding;     /* the input binding given at reserve (cm_ledger_reserve_bound),
                          NULL when none; filled by every call returning a job */
    char *commit_note; /* why the charge is what it is, as given at commit
                          (cm_ledger_commit_noted); only cm_ledger_job_info fills it,
                          NULL elsewhere or when none was given */
} cm_ledger_job;

/* One grant in a balance. */
typedef struct cm_ledger_grant {
    int64_t id;
    int kind;              /* enum cm_ledger_grant_kind */
    int64_t granted;       /* credits the grant was created with */
    int64_t remaining;     /* spendable now (0 once expired) */
    int64_t held;          /* taken by unresolved holds */
    int64_t charged;       /* charged by commits (cumulative) */
    int64_t expired;       /* lost to expiry */
    int64_t refunded_into; /* credits refunds gave back to this grant */
    int64_t created_ms;
    int64_t expires_ms; /* -1: never */
} cm_ledger_grant;

/* Result of cm_ledger_balance(); free with cm_ledger_balance_free(). Lists the grants
 * that still have credits remaining or held, spending order first. */
typedef struct cm_ledger_balance_result {
    char *workspace;
    int64_t available; /* sum of remaining */
    int64_t held;      /* sum of held */
    size_t n_grants;
    cm_ledger_grant *grants;
} cm_ledger_balance_result;

/* One journal row. Movement kinds: "grant", "purchase", "hold", "commit",
 * "release", "lapse", "expiry", "refund"; and events that move no credits:
 * "workspace", "member_add", "member_remove", "plan_set", "plan_cancel". */
typedef struct cm_ledger_entry {
    int64_t id;    /* increasing within the workspace: its journal order */
    int64_t at_ms; /* when the movement took effect */
    char *kind;
    int64_t grant_id; /* -1 when none */
    char *job;        /* NULL when none */
    int64_t credits;  /* > 0 for movements, 0 for events */
    char *actor;      /* who: a user, an operator, or "ledger" for lazy movements */
    char *reason;     /* why (may be NULL) */
    char *ref;        /* payment or refund reference (may be NULL) */
} cm_ledger_entry;

/* Result of cm_ledger_history(); free with cm_ledger_history_free(). */
typedef struct cm_ledger_history_result {
    size_t n_entries; /* oldest first, newest last */
    cm_ledger_entry *entries;
} cm_ledger_history_result;

/* Result of cm_ledger_refund(), filled in a caller-provided struct. */
typedef struct cm_ledger_refund_result {
    int64_t credits;         /* refunded by this call */
    int64_t to_source;       /* of those, given back to the grants they came from */
    int64_t refund_grant_id; /* refund grant made for the rest, or -1 */
    int64_t total_refunded;  /* refunded on this job so far, this call included */
    int replayed;            /* 1 when the reference was seen before: nothing done */
} cm_ledger_refund_result;

/* Result of cm_ledger_sweep(), filled in a caller-provided struct. */
typedef struct cm_ledger_sweep_stats {
    int64_t holds_lapsed;    /* holds released because their lease lapsed */
    int64_t credits_expired; /* credits that expired */
    int64_t periods_granted; /* plan periods granted */
} cm_ledger_sweep_stats;

/* ---- Plan changes (issue 12) ---- */

/* Longest tier name, in bytes (without the NUL). */
#define CM_LEDGER_TIER_MAX 1000

/* What cm_ledger_plan_set_ref() / cm_ledger_plan_cancel_ref() did. */
enum cm_ledger_plan_outcome {
    CM_LEDGER_PLAN_STARTED = 1,             /* no plan, or its period had ended: a new period
                                               starts now with its full allowance */
    CM_LEDGER_PLAN_RELABELLED = 2,          /* same credits and interval, other tier: no grant */
    CM_LEDGER_PLAN_UPGRADED = 3,            /* more credits a month: effective now, topped up */
    CM_LEDGER_PLAN_DOWNGRADE_SCHEDULED = 4, /* fewer credits a month: from the next period */
    CM_LEDGER_PLAN_SWITCHED_TO_ANNUAL = 5,  /* monthly -> annual: an annual period starts now */
    CM_LEDGER_PLAN_MONTHLY_SCHEDULED = 6,   /* annual -> monthly: from the annual period's end */
    CM_LEDGER_PLAN_CANCELLED = 7,           /* no further grants */
    CM_LEDGER_PLAN_RESUMED = 8,             /* a cancelled plan set again before its period
                                               ended: the schedule resumes, no grant now */
    CM_LEDGER_PLAN_UNCHANGED = 9,           /* the active plan again (or a cancelled one
                                               cancelled again): nothing changed */
};

/* Result of a plan set or cancel, filled in a caller-provided struct. */
typedef struct cm_ledger_plan_result {
    int outcome;          /* enum cm_ledger_plan_outcome */
    int resumed;          /* 1 when this set resumed a cancelled plan (then outcome says what
                             else it did: RESUMED alone, or e.g. UPGRADED) */
    int replayed;         /* 1 when the reference was seen before: the first result, nothing
                             done */
    int64_t granted;      /* credits granted by this call (a new period or a top-up), else 0 */
    int64_t effective_ms; /* when the change takes effect: now, or the period boundary a
                             scheduled change waits for */
} cm_ledger_plan_result;

/* A workspace's plan, filled by cm_ledger_plan_show() in a caller-provided struct. */
typedef struct cm_ledger_plan_info {
    int has_plan;         /* 0: no plan was ever set (nothing else is filled) */
    int active;           /* 1: a period runs now (0: cancelled and its period ended) */
    int cancelled;        /* 1: cancelled (no further grants) */
    int64_t cancelled_ms; /* when, or -1 */
    int64_t credits;      /* credits a month */
    int interval;         /* enum cm_ledger_interval */
    char tier[CM_LEDGER_TIER_MAX + 1];
    int64_t period_start_ms; /* the current (or, when not active, the last) period */
    int64_t period_end_ms;   /* its end: the next boundary */
    int scheduled;           /* 1: a change waits for period_end_ms */
    int64_t sched_credits;   /* the scheduled plan (valid when scheduled) */
    int sched_interval;
    char sched_tier[CM_LEDGER_TIER_MAX + 1];
    int64_t sched_ms; /* when it takes effect (= period_end_ms) */
} cm_ledger_plan_info;

/* ---- Errors ---------------------------------------------------------------- */

/* Stable machine name of a code ("insufficient_credits"); "unknown" for others.
 * Static storage. Thread-safe. */
CM_LEDGER_EXTERN const char *cm_ledger_err_name(int code);

/* A generic sentence for a code. Static storage. Thread-safe. */
CM_LEDGER_EXTERN const char *cm_ledger_strerror(int code);

/* The detailed sentence (for a support person) of the last call on this handle that
 * finished, from whichever thread: its failure, or "" if it succeeded (as SQLite's
 * sqlite3_errmsg() is per connection). The handle keeps it under its own mutex; the
 * string returned is a copy in the calling thread's storage, valid until that thread's
 * next cm_ledger_errmsg(). When several threads share a handle, another thread's call
 * may replace the message between a failure and this call: read it right after the
 * failing call, and trust the returned code, which is always the call's own. l may be
 * NULL: then the last cm_ledger_open() failure (or failure of a call given a NULL
 * handle) of the calling thread. Thread-safe. */
CM_LEDGER_EXTERN const char *cm_ledger_errmsg(const cm_ledger *l);

/* ---- Open and close ------------------------------------------------------- */

/* Fill *cfg with the defaults (struct_size set, location NULL, real clock, 5000 ms busy
 * timeout, synchronous FULL). */
CM_LEDGER_EXTERN void cm_ledger_config_init(cm_ledger_config *cfg);

/* Open the ledger at cfg->location, migrating an older schema. A location that holds no
 * ledger is created only when cfg->create is 1 (cm-ledger init): a mistyped path or
 * URI is then an error, not a new empty ledger. cfg may be NULL (all defaults, create
 * 0). On success *out is a new handle the caller closes with cm_ledger_close().
 * Returns OK, E_NO_LEDGER (create 0 and no SQLite file or no creditmeter schema in
 * the file or PostgreSQL database; or, create or not, the SQLite file's directory does
 * not exist; nothing was created), E_INVALID (bad struct_size, synchronous or create),
 * E_BUSY, E_STORAGE (cannot open or connect, not a SQLite database, schema newer than
 * this library), E_UNSUPPORTED (a postgresql:// location and a library built without
 * PostgreSQL, CM_WITH_POSTGRES=OFF), E_NOMEM. */
CM_LEDGER_EXTERN int cm_ledger_open(cm_ledger **out, const cm_ledger_config *cfg);

/* Close a handle; NULL is a no-op. No call on the handle may be running. */
CM_LEDGER_EXTERN void cm_ledger_close(cm_ledger *l);

/* ---- Workspaces, members, plans, prices ------------------------------------ */

/* Create workspace ws owned by owner, billed in region (NULL or "": "default"; else an
 * ISO 3166-1 alpha-2 code, any case, stored upper-case, or "EU").
 * Retrying with the same owner and region is OK; other ones: E_CONFLICT.
 * Returns OK, E_INVALID (empty ids, control characters, an unknown region),
 * E_CONFLICT, E_BUSY, E_STORAGE. */
CM_LEDGER_EXTERN int cm_ledger_workspace_create(cm_ledger *l, const char *ws, const char *owner,
                                                const char *region);

/* Add user as a member of ws; only the owner (as_user) may. Adding a member again is
 * OK. Returns OK, E_INVALID, E_NO_WORKSPACE, E_FORBIDDEN, E_BUSY, E_STORAGE. */
CM_LEDGER_EXTERN int cm_ledger_member_add(cm_ledger *l, const char *ws, const char *user,
                                          const char *as_user);

/* Remove member user from ws; only the owner may; the owner cannot be removed
 * (E_INVALID). Removing a user who is not a member (never was, or was removed
 * already) is E_NOT_MEMBER and changes nothing. Existing holds stay valid.
 * Returns OK, E_INVALID, E_NO_WORKSPACE, E_FORBIDDEN, E_NOT_MEMBER, E_BUSY, E_STORAGE. */
CM_LEDGER_EXTERN int cm_ledger_member_remove(cm_ledger *l, const char *ws, const char *user,
                                             const char *as_user);

/* Set the plan of ws: credits_per_month (> 0) on interval (enum cm_ledger_interval),
 * tier a free label (may be NULL). Only the owner may. cm_ledger_plan_set_ref() with
 * ref NULL and no result; see it for the rules.
 * Returns OK, E_INVALID, E_NO_WORKSPACE, E_FORBIDDEN, E_BUSY, E_STORAGE. */
CM_LEDGER_EXTERN int cm_ledger_plan_set(cm_ledger *l, const char *ws, int64_t credits_per_month,
                                        int interval, const char *tier, const char *as_user);

/* Cancel the plan of ws: cm_ledger_plan_cancel_ref() with ref NULL and no result.
 * Returns OK, E_INVALID (no plan), E_NO_WORKSPACE, E_FORBIDDEN, E_BUSY, E_STORAGE. */
CM_LEDGER_EXTERN int cm_ledger_plan_cancel(cm_ledger *l, const char *ws, const char *as_user);

/* Set the unit price of one add-on credit in region ("default" or an ISO 3166-1
 * alpha-2 code, any case, stored upper-case): currency is an ISO 4217 code the ledger
 * knows (cm_ledger_currency_exponent() >= 0), unit_minor >= 1 (nothing is free).
 * An operator action, recorded as "operator" in the price log (cm_ledger_price_set_by
 * names the operator). The region "default" starts as USD 15.
 * Returns OK, E_INVALID, E_BUSY, E_STORAGE. */
CM_LEDGER_EXTERN int cm_ledger_price_set(cm_ledger *l, const char *region, const char *currency,
                                         int64_t unit_minor);

/* Buy credits (> 0) add-on credits for ws at its region's unit price (the
 * "default" region's price if its region has none). Only the owner may. With a
 * payment_ref (may be NULL), a repeat with the same ref, workspace and credits
 * returns the first purchase (out->replayed = 1) and charges nothing; the same ref
 * with other arguments is E_CONFLICT. out may be NULL.
 * Returns OK, E_INVALID, E_NO_WORKSPACE, E_FORBIDDEN, E_CONFLICT, E_BUSY, E_STORAGE. */
CM_LEDGER_EXTERN int cm_ledger_buy(cm_ledger *l, const char *ws, int64_t credits,
                                   const char *as_user, const char *payment_ref,
                                   cm_ledger_purchase *out);

/* Set the plan of ws, with the rules of plan changes (a period's allowance is N =
 * credits_per_month for monthly, 12 x N for annual; the current period runs from the
 * last boundary before now to the next one, boundaries counted from the plan's anchor):
 *  - no plan, or the last plan's period has ended (it was cancelled): a new period starts
 *    now with its full allowance (STARTED);
 *  - the same credits and interval as the active plan: no grant; another tier only
 *    relabels it (RELABELLED, a journal row), the same tier is UNCHANGED;
 *  - more credits a month, same interval (UPGRADED): effective now, anchor unchanged; the
 *    current period is topped up by (new N - old N) x the whole months left in it counting
 *    the current one (monthly: new N - old N), as a plan grant expiring with the period;
 *  - fewer credits a month, same interval (DOWNGRADE_SCHEDULED): from the next boundary;
 *    nothing is taken back;
 *  - monthly -> annual (SWITCHED_TO_ANNUAL): an annual period starts now with 12 x N; the
 *    current monthly grant keeps its expiry;
 *  - annual -> monthly (MONTHLY_SCHEDULED): from the end of the annual period, no grant now;
 *  - a cancelled plan set again before its period ended resumes (resumed = 1): no grant
 *    until the next boundary, then the rules above against the resumed plan.
 * Any set replaces a change scheduled earlier. A scheduled change takes effect at its
 * boundary (a "plan_set" journal row by "ledger"), and that period is granted by the new
 * plan. tier: NULL or "" is no tier; at most CM_LEDGER_TIER_MAX bytes of UTF-8.
 * ref (may be NULL): the payment provider's id of the change, at most 255 bytes; the same
 * ref again (same workspace, credits, interval, tier) returns the first result with
 * replayed = 1 and changes nothing; with other arguments (or naming a cancel) it is
 * E_CONFLICT. Plan refs are their own namespace (not those of buy or refund). out may be
 * NULL. Returns OK, E_INVALID, E_NO_WORKSPACE, E_FORBIDDEN, E_CONFLICT, E_BUSY,
 * E_STORAGE. */
CM_LEDGER_EXTERN int cm_ledger_plan_set_ref(cm_ledger *l, const char *ws, int64_t credits_per_month,
                                            int interval, const char *tier, const char *as_user,
                                            const char *ref, cm_ledger_plan_result *out);

/* Cancel the plan of ws: no further periods are granted; the current grant keeps its
 * expiry; a scheduled change is dropped (CANCELLED). Only the owner may. Cancelling a
 * cancelled plan is UNCHANGED; no plan: E_INVALID. ref and out as for
 * cm_ledger_plan_set_ref() (a ref first used by a set is E_CONFLICT here).
 * Returns OK, E_INVALID, E_NO_WORKSPACE, E_FORBIDDEN, E_CONFLICT, E_BUSY, E_STORAGE. */
CM_LEDGER_EXTERN int cm_ledger_plan_cancel_ref(cm_ledger *l, const char *ws, const char *as_user,
                                               const char *ref, cm_ledger_plan_result *out);

/* The plan of ws brought up to now: tier, credits a month, interval, the current period,
 * a scheduled change, cancelled or not (see cm_ledger_plan_info). as_user may be NULL
 * (operator); members may read it. out must not be NULL. Returns OK (has_plan 0 when
 * there is none), E_INVALID, E_NO_WORKSPACE, E_BUSY, E_STORAGE. */
CM_LEDGER_EXTERN int cm_ledger_plan_show(cm_ledger *l, const char *ws, const char *as_user,
                                         cm_ledger_plan_info *out);
/* cm_ledger_price_set naming the operator who changed the price: each change that
 * moves the currency or the unit price writes a row of the price log (when, who,
 * region, old and new currency and unit price; see cm_ledger_price_history); setting
 * the price a region already has writes nothing. operator_id NULL: "operator".
 * Returns what cm_ledger_price_set returns. */
CM_LEDGER_EXTERN int cm_ledger_price_set_by(cm_ledger *l, const char *region, const char *currency,
                                            int64_t unit_minor, const char *operator_id);

/* What buying credits (> 0) add-on credits in ws would cost now, before cm_ledger_buy:
 * the unit price of ws's region (or of "default"), the total and the currency, filled
 * into *out as cm_ledger_buy would (grant_id -1, replayed 0). Changes nothing (but
 * brings ws up to now). as_user may be NULL (operator); a user who is neither owner
 * nor member gets E_NO_WORKSPACE. Returns OK, E_INVALID, E_NO_WORKSPACE, E_BUSY,
 * E_STORAGE. */
CM_LEDGER_EXTERN int cm_ledger_price(cm_ledger *l, const char *ws, int64_t credits,
                                     const char *as_user, cm_ledger_purchase *out);

/* One change of the price table. */
typedef struct cm_ledger_price_change {
    int64_t id;             /* increasing: the log's order */
    int64_t at_ms;          /* when */
    char *actor;            /* who: the operator */
    char *region;           /* "default" or the upper-case country code */
    char old_currency[4];   /* "" when the region had no price before */
    int64_t old_unit_minor; /* -1 when the region had no price before */
    char new_currency[4];
    int64_t new_unit_minor;
} cm_ledger_price_change;

/* Result of cm_ledger_price_history(); free with cm_ledger_price_history_free(). */
typedef struct cm_ledger_price_history_result {
    size_t n_changes; /* oldest first */
    cm_ledger_price_change *changes;
} cm_ledger_price_history_result;

/* The price log: every change of the price table, oldest first, of region (NULL:
 * every region; any case). The price table is shared by all workspaces, so its log
 * is not in any workspace's journal. Returns OK, E_INVALID (an unknown region),
 * E_BUSY, E_STORAGE, E_NOMEM. */
CM_LEDGER_EXTERN int cm_ledger_price_history(cm_ledger *l, const char *region,
                                             cm_ledger_price_history_result **out);
CM_LEDGER_EXTERN void cm_ledger_price_history_free(cm_ledger_price_history_result *h);

/* ---- Quotes and holds ------------------------------------------------------- */

/* Would credits (> 0) be affordable in ws now, and from which grants? Changes no
 * credits (but brings ws up to now). as_user may be NULL (operator).
 * Returns OK (whether affordable or not), E_INVALID, E_NO_WORKSPACE, E_BUSY,
 * E_STORAGE, E_NOMEM. *out is freed with cm_ledger_quote_free(). */
CM_LEDGER_EXTERN int cm_ledger_quote(cm_ledger *l, const char *ws, int64_t credits,
                                     const char *as_user, cm_ledger_quote_result **out);
CM_LEDGER_EXTERN void cm_ledger_quote_free(cm_ledger_quote_result *q);

/* Hold credits (> 0) in ws for job, reserved by user (owner or member), with a lease
 * of lease_s seconds (0: CM_LEDGER_DEFAULT_LEASE_S). All or nothing, in spending
 * order: plan grants soonest-expiring first, then add-on and refund grants oldest
 * first. A job id names one hold forever: a retry with the same ws, user, credits,
 * lease and binding (none here; see cm_ledger_reserve_bound) returns that hold while
 * it is held or committed; other arguments: E_CONFLICT. A retry of a hold that was
 * released or lapsed is E_JOB_CLOSED (until schema 3 it returned the given-back
 * hold): that id is closed, a new attempt needs a new id.
 * out may be NULL; else *out is freed with cm_ledger_job_free().
 * Returns OK, E_INVALID, E_NO_WORKSPACE, E_INSUFFICIENT, E_CONFLICT, E_JOB_CLOSED,
 * E_BUSY, E_STORAGE, E_NOMEM. */
CM_LEDGER_EXTERN int cm_ledger_reserve(cm_ledger *l, const char *ws, const char *job,
                                       int64_t credits, const char *user, int64_t lease_s,
                                       cm_ledger_job **out);

/* cm_ledger_reserve with a note: why the job costs what it costs (for example the
 * measured duration, how it was measured and why it differs from the header), kept in
 * the hold's journal row for support staff and returned by cm_ledger_job_info in
 * ->note. note may be NULL; else UTF-8 without control characters, at most 1000
 * bytes; any text is kept as given (including "reserved"). A retry is not compared on
 * its note. Returns what cm_ledger_reserve returns. */
CM_LEDGER_EXTERN int cm_ledger_reserve_noted(cm_ledger *l, const char *ws, const char *job,
                                             int64_t credits, const char *user, int64_t lease_s,
                                             const char *note, cm_ledger_job **out);

/* Extend the lease of a held hold to now + lease_s (0: the default).
 * Returns OK, E_INVALID, E_NO_JOB, E_LEASE_EXPIRED (it lapsed: it is now released),
 * E_ALREADY_RESOLVED (committed or released), E_BUSY, E_STORAGE, E_NOMEM. */
CM_LEDGER_EXTERN int cm_ledger_renew(cm_ledger *l, const char *job, int64_t lease_s,
                                     cm_ledger_job **out);

/* Turn the hold into a charge of credits (1 <= credits <= held; CM_LEDGER_ALL for the
 * whole hold); the rest goes back. A charge of 0 is E_INVALID: give the hold back with
 * cm_ledger_release() instead. The charge takes from the hold's grants in spending
 * order, so what goes back is what the hold took last; credits going back to an
 * expired plan grant expire. A retry with the same credits (ALL and the held amount
 * are the same) returns the first result; other credits: E_CONFLICT.
 * Returns OK, E_INVALID (0, or more than held), E_NO_JOB, E_CONFLICT, E_ALREADY_RESOLVED
 * (it was released), E_LEASE_EXPIRED (it lapsed), E_BUSY, E_STORAGE, E_NOMEM. */
CM_LEDGER_EXTERN int cm_ledger_commit(cm_ledger *l, const char *job, int64_t credits,
                                      cm_ledger_job **out);

/* Give the whole hold back. Releasing a released or lapsed hold is OK (the first
 * result). Returns OK, E_INVALID, E_NO_JOB, E_ALREADY_RESOLVED (it was committed),
 * E_BUSY, E_STORAGE, E_NOMEM. */
CM_LEDGER_EXTERN int cm_ledger_release(cm_ledger *l, const char *job, cm_ledger_job **out);

/* The hold of job, its state, grants and charges, brought up to now (a lapsed lease
 * is released). Returns OK, E_INVALID, E_NO_JOB, E_BUSY, E_STORAGE, E_NOMEM. */
CM_LEDGER_EXTERN int cm_ledger_job_info(cm_ledger *l, const char *job, cm_ledger_job **out);
CM_LEDGER_EXTERN void cm_ledger_job_free(cm_ledger_job *j);

/* cm_ledger_reserve_noted with an input binding: a text naming what the job
 * processes (the plugin passes the input's size, measured duration and content
 * fingerprint, or "by-output" and the requested length), stored with the hold and
 * part of the job id's idempotency key: a retry with another binding, or with one
 * where the hold has none (or the reverse), is E_CONFLICT. binding may be NULL (no
 * binding, as cm_ledger_reserve); else UTF-8 without control characters, 1 to 255
 * bytes. Returns what cm_ledger_reserve returns. */
CM_LEDGER_EXTERN int cm_ledger_reserve_bound(cm_ledger *l, const char *ws, const char *job,
                                             int64_t credits, const char *user, int64_t lease_s,
                                             const char *note, const char *binding,
                                             cm_ledger_job **out);

/* cm_ledger_commit with a note: why the charge is what it is (for example the
 * requested and the measured output length of a by-output job), kept with the hold
 * and written as the reason of its commit rows in the journal (else "charged");
 * cm_ledger_job_info returns it in ->commit_note. note may be NULL; else UTF-8
 * without control characters, 1 to 1000 bytes. A retry is not compared on its note.
 * Returns what cm_ledger_commit returns. */
CM_LEDGER_EXTERN int cm_ledger_commit_noted(cm_ledger *l, const char *job, int64_t credits,
                                            const char *note, cm_ledger_job **out);

/* ---- Refunds ------------------------------------------------------------------ */

/* Reimburse credits (> 0, or CM_LEDGER_ALL for all not yet refunded) of job's
 * committed charge, never beyond charged minus already refunded. The credits go back
 * to the grants they were charged from, last-charged first; where such a grant has
 * expired they go into one new non-expiring refund grant. reason and operator_id are
 * required. With a ref (may be NULL), a repeat of the ref is a no-op returning the
 * first result (out->replayed = 1) if job and credits match, else E_CONFLICT.
 * out may be NULL. Returns OK, E_INVALID (nothing left to refund, more than that,
 * hold not committed, empty reason or operator), E_NO_JOB, E_CONFLICT, E_BUSY,
 * E_STORAGE. */
CM_LEDGER_EXTERN int cm_ledger_refund(cm_ledger *l, const char *job, int64_t credits,
                                      const char *reason, const char *operator_id, const char *ref,
                                      cm_ledger_refund_result *out);

/* ---- Reading ------------------------------------------------------------------ */

/* Available and held credits of ws and its live grants, brought up to now. as_user
 * may be NULL (operator). Returns OK, E_INVALID, E_NO_WORKSPACE, E_BUSY, E_STORAGE,
 * E_NOMEM. Free with cm_ledger_balance_free(). */
CM_LEDGER_EXTERN int cm_ledger_balance(cm_ledger *l, const char *ws, const char *as_user,
                                       cm_ledger_balance_result **out);
CM_LEDGER_EXTERN void cm_ledger_balance_free(cm_ledger_balance_result *b);

/* The journal of ws, oldest first, brought up to now. as_user may be NULL (operator).
 * Returns OK, E_INVALID, E_NO_WORKSPACE, E_BUSY, E_STORAGE, E_NOMEM. Free with
 * cm_ledger_history_free(). */
CM_LEDGER_EXTERN int cm_ledger_history(cm_ledger *l, const char *ws, const char *as_user,
                                       cm_ledger_history_result **out);
CM_LEDGER_EXTERN void cm_ledger_history_free(cm_ledger_history_result *h);

/* ---- Maintenance -------------------------------------------------------------- */

/* Bring every workspace up to now: lapse holds, expire grants, grant the periods
 * that began. out may be NULL. Returns OK, E_BUSY, E_STORAGE. */
CM_LEDGER_EXTERN int cm_ledger_sweep(cm_ledger *l, cm_ledger_sweep_stats *out);

/* Re-derive every grant and hold from the journal and verify: stored balances equal
 * the derived ones; for every grant granted = remaining + held + charged + expired -
 * refunded_into; no negative value anywhere; every hold resolved at most once and
 * consistent with its state; refunds never beyond charges; within a workspace journal
 * times never decrease (since schema v3), grants are dated when made, expiries not
 * before their grant's end, lapses at their lease end; no plan period granted more than
 * the plan history allows, and no two plan periods overlapping (but an annual one
 * starting inside a monthly one); every commit, release, lapse, refund, purchase and
 * plan change journaled since schema v4 has its event in the outbox. Read-only.
 * Returns OK, E_CHECK (cm_ledger_errmsg() names the first violation), E_BUSY,
 * E_STORAGE. */
CM_LEDGER_EXTERN int cm_ledger_check(cm_ledger *l);

/* ---- Operating it (issue 15): leases in bulk, health, gauges, events, export ---- */

/* The most jobs one cm_ledger_renew_many() call takes. */
#define CM_LEDGER_RENEW_MANY_MAX 100000

/* Renew the leases of n jobs in ONE write transaction (a keepalive thread renewing all
 * of its running jobs each tick): each held hold's lease moves to now + lease_s (0: the
 * default), as cm_ledger_renew does. results[i] receives job i's own code: OK, E_INVALID
 * (not a valid job id), E_NO_JOB, E_LEASE_EXPIRED (it had lapsed: it is released now),
 * E_ALREADY_RESOLVED (committed or released). jobs and results are the caller's (n
 * entries each; both may be NULL when n is 0). The call returns OK when the transaction
 * committed, whatever the per-job codes; else E_INVALID (bad lease, n too large, NULL
 * arrays), E_BUSY, E_STORAGE, E_NOMEM, and then no lease was renewed (results are then
 * unspecified). */
CM_LEDGER_EXTERN int cm_ledger_renew_many(cm_ledger *l, const char *const *jobs, size_t n,
                                          int64_t lease_s, int *results);

/* Health: is the ledger reachable and writable? Runs one write transaction that writes
 * nothing but the ledger's own health row (the time of the ping), within the handle's
 * busy timeout (cm_ledger_config.busy_timeout_ms; on PostgreSQL also give the URI a
 * connect_timeout). latency_ms (may be NULL) receives how long it took. Returns OK,
 * E_BUSY (locked past the timeout), E_STORAGE (unreachable, read-only, disk full ...:
 * cm_ledger_errmsg says why), E_INVALID (l NULL). */
CM_LEDGER_EXTERN int cm_ledger_ping(cm_ledger *l, int64_t *latency_ms);

/* Counters of one handle since it was opened (cm_ledger_stats_read): what a host's
 * metrics export as ledger retries and reconnects. Fields are only ever appended. */
typedef struct cm_ledger_stats {
    uint32_t struct_size; /* sizeof(cm_ledger_stats) as compiled by the caller */
    int64_t transactions; /* transactions begun, every attempt counted */
    int64_t retries;      /* attempts run again after losing a race (deadlock, serialization
                             failure, a unique key taken concurrently, a connection found
                             dropped before COMMIT was sent) */
    int64_t reconnects;   /* connections to the server made again after one was lost
                             (PostgreSQL: restart, failover; always 0 on SQLite) */
    /* Appended later (issue 16): filled only when struct_size covers them. */
    int64_t statements;  /* statements sent to the server (PostgreSQL; 0 on SQLite), the
                            connection's setup and schema check at open included */
    int64_t round_trips; /* round trips to the server that carried them (PostgreSQL; 0 on
                            SQLite): a ledger call costs the difference across it */
} cm_ledger_stats;

/* Read the handle's counters into *out (out->struct_size set by the caller; a caller
 * compiled before statements and round_trips were appended gets the fields it knows).
 * Thread-safe; waits for a call running on l. Returns OK, or E_INVALID (l or out NULL,
 * struct_size below that of the first version, which ended with reconnects). */
CM_LEDGER_EXTERN int cm_ledger_stats_read(cm_ledger *l, cm_ledger_stats *out);

/* The ledger's gauges, read in one snapshot (cm_ledger_gauges_read). */
typedef struct cm_ledger_gauges {
    int64_t workspaces;             /* workspaces in the ledger */
    int64_t available;              /* credits spendable now, over all workspaces (grants
                                       past their expiry not counted) */
    int64_t held;                   /* credits held by open holds */
    int64_t open_holds;             /* holds still held (a lease that ended lapses at the
                                       workspace's next call or sweep) */
    int64_t oldest_hold_created_ms; /* when the oldest open hold was reserved; -1: none */
    int64_t overdue_holds;          /* open holds whose lease has ended (waiting for sweep) */
    int64_t now_ms;                 /* the ledger's clock when read (ages are from it) */
} cm_ledger_gauges;

/* Read the gauges (a read transaction; changes nothing, lapses nothing). out must not be
 * NULL. Returns OK, E_INVALID, E_BUSY, E_STORAGE. */
CM_LEDGER_EXTERN int cm_ledger_gauges_read(cm_ledger *l, cm_ledger_gauges *out);

/* Low-balance alert: when the available credits of ws fall below `below` (>= 1) the
 * ledger writes one low_balance event, in the transaction that made them fall; it fires
 * again only after they rose back to `below` or more. Setting arms it (a balance already
 * below writes the event at once); setting again replaces the threshold. Only the owner
 * may. Returns OK, E_INVALID, E_NO_WORKSPACE, E_FORBIDDEN, E_BUSY, E_STORAGE. */
CM_LEDGER_EXTERN int cm_ledger_alert_set(cm_ledger *l, const char *ws, int64_t below,
                                         const char *as_user);
/* Remove the alert of ws (none: OK). Only the owner may. Returns what alert_set returns. */
CM_LEDGER_EXTERN int cm_ledger_alert_clear(cm_ledger *l, const char *ws, const char *as_user);

/* The most events one cm_ledger_events() call returns. */
#define CM_LEDGER_EVENTS_MAX 10000

/* One event of the outbox. Types: "commit", "release", "lapse", "refund", "purchase",
 * "plan_change", "low_balance". Written in the same transaction as its movement, so an
 * event exists if and only if its movement does. */
typedef struct cm_ledger_event {
    int64_t id;      /* unique, increasing within a writing transaction */
    int64_t tx;      /* delivery order: 0 on SQLite, the writing transaction on PostgreSQL */
    char cursor[48]; /* "TX.ID": pass as `after` to read what follows this event */
    int64_t at_ms;   /* when the movement took effect */
    char *type;      /* see above */
    char *workspace; /* the subject */
    char *job;       /* NULL when the movement has none (purchase, plan_change, low_balance) */
    char *data;      /* a JSON object: the movement's fields (workspace, job, credits, ...) */
} cm_ledger_event;

/* Result of cm_ledger_events(); free with cm_ledger_events_free(). */
typedef struct cm_ledger_events_result {
    size_t n_events;
    cm_ledger_event *events; /* in delivery order */
    char next_cursor[48];    /* the last event's cursor, or `after` when there was none */
} cm_ledger_events_result;

/* Up to limit (1 .. CM_LEDGER_EVENTS_MAX) committed events after the cursor `after` (NULL
 * or "": from the first), in delivery order: a sender that delivers them and then keeps
 * next_cursor gets every event at least once (after a crash it re-reads from the cursor it
 * kept). On PostgreSQL an event is returned only once every transaction older than its
 * own has ended, so one that commits late is never skipped (a long transaction delays
 * delivery). Read-only. Returns OK (possibly no events), E_INVALID (limit, or `after` not
 * a cursor), E_BUSY, E_STORAGE, E_NOMEM. */
CM_LEDGER_EXTERN int cm_ledger_events(cm_ledger *l, const char *after, size_t limit,
                                      cm_ledger_events_result **out);
CM_LEDGER_EXTERN void cm_ledger_events_free(cm_ledger_events_result *r);

/* One journal row as cm_ledger_export() delivers it. Texts are valid during the
 * callback only. measured_ms, declared_ms, method and grace_ms come from what the
 * plugin stored with the row's hold (its input binding, reserve note and commit note):
 * by input, the measured and the header's duration, the probe's method and the grace
 * when it changed the credits; by output, declared_ms is the requested length, method
 * "requested" and measured_ms the output's measured length. They are -1 / NULL where
 * unknown: rows without a job, holds made by other callers (the CLI), holds from before
 * schema 3 (their note lives only in the journal), a grace that changed nothing. */
typedef struct cm_ledger_export_row {
    int64_t id; /* the journal id (increasing within the workspace) */
    int64_t op; /* the operation number */
    const char *workspace;
    int64_t at_ms;
    const char *kind; /* the journal kinds of cm_ledger_entry */
    int64_t grant_id; /* -1: none */
    const char *job;  /* NULL: none */
    int64_t credits;
    const char *actor;   /* who: a user, an operator, or "ledger" */
    const char *reason;  /* NULL: none */
    const char *ref;     /* NULL: none */
    int64_t measured_ms; /* -1: unknown */
    int64_t declared_ms; /* -1: unknown (or the header declared none) */
    const char *method;  /* NULL: unknown */
    int64_t grace_ms;    /* -1: none or unknown */
} cm_ledger_export_row;

/* Called once per row; return 0 to go on, non-zero to stop the export (then OK). */
typedef int (*cm_ledger_export_fn)(void *ctx, const cm_ledger_export_row *row);

/* Stream every journal row, in journal order (by workspace, then id), of ws (NULL:
 * every workspace) with at_ms in [since_ms, until_ms) (-1: unbounded), to fn, from one
 * consistent snapshot, in constant memory (rows are read in pages of 1000 and never
 * kept). Read-only. Returns OK, E_INVALID (fn NULL, a bad workspace id, until before
 * since), E_BUSY, E_STORAGE. */
CM_LEDGER_EXTERN int cm_ledger_export(cm_ledger *l, const char *ws, int64_t since_ms,
                                      int64_t until_ms, cm_ledger_export_fn fn, void *ctx);

/* ---- Time helpers (exact, no time zone database) ----------------------------- */

/* Parse ISO 8601 UTC "YYYY-MM-DDTHH:MM:SS[.fff]Z" into Unix ms.
 * Returns OK or E_INVALID. Thread-safe. */
CM_LEDGER_EXTERN int cm_ledger_time_parse(const char *text, int64_t *out_ms);

/* Format Unix ms as "YYYY-MM-DDTHH:MM:SSZ" (".fffZ" when ms is not a whole second)
 * into buf (at least 32 bytes). Returns buf. Thread-safe. */
CM_LEDGER_EXTERN char *cm_ledger_time_format(int64_t ms, char *buf, size_t size);

/* Names used by the CLI and the JSON output: "plan"/"addon"/"refund",
 * "held"/"committed"/"released"/"lapsed", "monthly"/"annual". "unknown" otherwise. */
CM_LEDGER_EXTERN const char *cm_ledger_grant_kind_name(int kind);
CM_LEDGER_EXTERN const char *cm_ledger_hold_state_name(int state);
CM_LEDGER_EXTERN const char *cm_ledger_interval_name(int interval);
/* "started", "relabelled", "upgraded", "downgrade_scheduled", "switched_to_annual",
 * "monthly_scheduled", "cancelled", "resumed", "unchanged" (enum cm_ledger_plan_outcome);
 * "unknown" otherwise. Static storage. */
CM_LEDGER_EXTERN const char *cm_ledger_plan_outcome_name(int outcome);

/* ---- Money ------------------------------------------------------------------------ */

/* The ISO 4217 minor-unit exponent of a currency the ledger knows (USD 2, JPY 0,
 * KWD 3), or -1 for a code it does not know. Thread-safe. */
CM_LEDGER_EXTERN int cm_ledger_currency_exponent(const char *currency);

/* Format an amount of minor units for people, with the currency's decimals:
 * (75, "USD") -> "0.75 USD", (12000, "INR") -> "120.00 INR", (500, "JPY") ->
 * "500 JPY"; a currency the ledger does not know is shown in minor units as given.
 * Writes into buf (at least 32 bytes for any amount) and returns it. Thread-safe. */
CM_LEDGER_EXTERN char *cm_ledger_money_format(int64_t minor, const char *currency, char *buf,
                                              size_t size);

/* ---- Version -------------------------------------------------------------------- */

/* The library's release, "MAJOR.MINOR.PATCH" (CM_VERSION_STRING of cm_version.h when
 * it was built; compare it with the header a program was compiled against). Static
 * storage. Thread-safe. */
CM_LEDGER_EXTERN const char *cm_ledger_version(void);

#ifdef __cplusplus
}
#endif
#endif /* CM_LEDGER_H */
