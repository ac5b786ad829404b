/* SPDX-License-Identifier: MIT */
/*
 * plugin_internal.h - the plugin handle and its helpers (internal).
 *
 * A handle joins one probe (immutable, thread-safe) and a pool of ledger handles
 * (ABI 1.3, plugin_pool.c: each thread-safe but serialising its calls on its one
 * connection, so a handle checks one out per ledger call), plus a table of the jobs
 * begun on it and the details of its last failure, both guarded by the handle's
 * mutex. The mutex is never held across a probe or ledger call (nor a checkout, which
 * may wait), so jobs in different threads measure and bill in parallel.
 *
 * Lock order: mu, then metrics_mu or pool.mu; metrics_mu and pool.mu are leaves.
 *
 * ABI 1.2: the keepalive thread (plugin_ops.c) sleeps on ka_cond (under mu) and renews
 * the due leases of the job table in one cm_ledger_renew_many() per tick; the metrics
 * have their own mutex (a leaf: nothing else is locked under it).
 */
#ifndef CM_PLUGIN_INTERNAL_H
#define CM_PLUGIN_INTERNAL_H

#include "creditmeter_plugin.h"

#include "cm_ledger.h"
#include "cm_probe.h"

#include <pthread.h>

#define CMP_HIDDEN __attribute__((visibility("hidden")))

/* One job between job_begin and the end of job_end. */
typedef struct cmp_job {
    struct cmp_job *next;
    char *id;
    int billing;          /* enum cm_plugin_billing */
    int64_t credits;      /* the quote, held */
    int64_t lease_s;      /* renewed to this at every hook */
    int committed;        /* the hold was already charged when the job began (a retry) */
    int64_t renewed_ms;   /* when it was last renewed (or reserved), on the plugin's clock:
                             due-ness is measured on one clock, so a ledger server whose
                             clock is ahead or behind cannot make a renewal late */
    int64_t requested_ms; /* by output: the length asked for; -1 by input */
    char *ws, *user;      /* for the log records of the keepalive */
    int lapsed;           /* the keepalive found the hold lapsed (logged and counted once) */
} cmp_job;

/* ---- metrics (plugin_ops.c) ---- */

#define CM__HIST_BUCKETS 12
typedef struct cm__hist {
    uint64_t count;
    double sum;
    uint64_t bucket[CM__HIST_BUCKETS]; /* observations <= bound[i] (not cumulative) */
} cm__hist;

/* The ledger calls timed into ledger_call_seconds{call}. */
enum cm__ledger_call {
    CM__LC_RESERVE,
    CM__LC_RENEW,
    CM__LC_RENEW_MANY,
    CM__LC_COMMIT,
    CM__LC_RELEASE,
    CM__LC_QUOTE,
    CM__LC_BALANCE,
    CM__LC_JOB_INFO,
    CM__LC_PING,
    CM__LC_COUNT
};

#define CM__CODES 32 /* plugin codes 0..-31, ledger codes 0..-31 */

typedef struct cm__metrics {
    uint64_t begun, committed, released, lapsed;
    uint64_t refused[CM__CODES]; /* by -plugin code */
    int64_t credits_quoted, credits_held, credits_charged, credits_released;
    cm__hist probe_s, probe_bytes;
    cm__hist ledger_s[CM__LC_COUNT];
    uint64_t ledger_errors[CM__CODES]; /* by -ledger code */
    uint64_t ka_ticks, ka_renewals, ka_transactions, retries;
} cm__metrics;

/* ---- the ledger pool (plugin_pool.c) ---- */

typedef struct cm__pool {
    pthread_mutex_t mu;                      /* a leaf: guards everything below but size and lc */
    pthread_cond_t freed;                    /* signalled when a handle is returned or opened */
    int size;                                /* handles it may open (ledger_pool_size), 1..64 */
    cm_ledger *h[CM_PLUGIN_MAX_LEDGER_POOL]; /* h[0..opened): open handles */
    unsigned char busy[CM_PLUGIN_MAX_LEDGER_POOL];
    cm_ledger_stats stats[CM_PLUGIN_MAX_LEDGER_POOL]; /* each handle's, at its last return */
    int opened, opening;    /* open; being opened by a checkout (outside mu) */
    int in_use, high_water; /* checked out now; the most ever at once */
    uint64_t checkouts, waits, open_failures;
    int64_t wait_ns;       /* time spent waiting for a handle, summed */
    int64_t retry_open_ns; /* after a failed open: no new one before then (monotonic) */
    cm_ledger_config lc;   /* how the lazily opened ones are opened (create 0) */
    char *location;        /* lc.location's copy */
} cm__pool;

/* Opens the pool's first handle with lc (create as the host asked); the rest open
 * lazily with create 0. Returns the ledger's code (the ledger's message in
 * cm_ledger_errmsg(NULL) of this thread). */
CMP_HIDDEN int cm__pool_open(cm__pool *pool, int size, const cm_ledger_config *lc);
/* Closes every handle (no checkout may be running). */
CMP_HIDDEN void cm__pool_close(cm__pool *pool);

/* A handle for one ledger call: an idle one, else a new one while fewer than size are
 * open, else the first one returned (the thread waits on freed). Never NULL. */
CMP_HIDDEN cm_ledger *cm__ledger_get(cm_plugin *p);
/* The size of a buffer for a ledger call's failure (it goes into 256-byte messages
 * after a few words of context). */
#define CM__WHY 200
/* Returns l to the pool. When rc is not CM_LEDGER_OK, first copies l's message (the
 * failure of the call just made on it) into why (cap bytes); else why gets "". why may
 * be NULL. A handle whose call failed (storage_unavailable included) goes back like
 * any other: the ledger reconnects at its next call. */
CMP_HIDDEN void cm__ledger_put(cm_plugin *p, cm_ledger *l, int rc, char *why, size_t cap);

/* A snapshot of the pool's counters, and the cm_ledger_stats summed over its handles
 * (as each was when last returned: reading them never waits for a running call). */
typedef struct cm__pool_stats {
    int size, opened, in_use, high_water;
    uint64_t checkouts, waits, open_failures;
    int64_t wait_ns;
    int64_t transactions, retries, reconnects;
} cm__pool_stats;
CMP_HIDDEN void cm__pool_read(cm_plugin *p, cm__pool_stats *out);

struct cm_plugin {
    cm__pool pool; /* ABI 1.3: the ledger handles (was: one cm_ledger) */
    cm_probe *probe;
    int64_t grace_ms;
    int64_t default_lease_s;
    void (*log)(void *user, int level, const char *message);
    void *log_user;
    int64_t (*now_ms)(void *user); /* the ledger's clock (NULL: real time) */
    void *clock_user;
    pthread_mutex_t mu; /* guards jobs, last and the keepalive's state */
    cmp_job *jobs;
    cm_plugin_error_info last;
    /* ABI 1.2 */
    void (*log_record)(void *user, const cm_plugin_log_record *record);
    int log_min_level;
    int keepalive_divisor;   /* renew every lease / divisor; 0: no thread */
    int ka_running, ka_stop; /* under mu */
    pthread_cond_t ka_cond;  /* CLOCK_MONOTONIC; signalled by job_begin and close */
    pthread_t ka_thread;
    pthread_mutex_t metrics_mu; /* guards m */
    cm__metrics m;
};

/* What a log record is about (the strings may be NULL: ""). */
typedef struct cm__ev {
    const char *event, *job, *ws, *user;
    int code, cause, cause_code;
    int64_t credits; /* -1: none */
} cm__ev;

/* Delivers a record to the host's log_record (or its 1.0 log) when level passes the
 * configured minimum. */
CMP_HIDDEN void cm__log_event(cm_plugin *p, int level, const cm__ev *ev, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The level a failure with this code is logged at (refusals info/warn, the rest error). */
CMP_HIDDEN int cm__level_of(int code);
/* As cmp_fail, logged as event ev (job, workspace, user of ev; its code, cause and
 * cause_code are taken from the arguments). */
CMP_HIDDEN int cm__fail_ev(cm_plugin *p, const cm__ev *ev, int code, int cause, int cause_code,
                           const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Metrics: a ledger call's start (monotonic ns) and its end (observed, error counted). */
CMP_HIDDEN int64_t cm__mono_ns(void);
CMP_HIDDEN void cm__ledger_timed(cm_plugin *p, int call, int64_t start_ns, int ledger_rc);
CMP_HIDDEN void cm__count_probe(cm_plugin *p, int64_t start_ns, int64_t bytes_read);
/* Adds to the counters under metrics_mu: what is one of the fields of cm__metrics. */
#define CM__COUNT(p, stmt)                                                                         \
    do {                                                                                           \
        pthread_mutex_lock(&(p)->metrics_mu);                                                      \
        cm__metrics *const m_ = &(p)->m;                                                           \
        stmt;                                                                                      \
        pthread_mutex_unlock(&(p)->metrics_mu);                                                    \
    } while (0)
CMP_HIDDEN int64_t cm__metrics_text(cm_plugin *p, char *buf, size_t cap);
CMP_HIDDEN int cm__ping(cm_plugin *p, cm_plugin_error_info *out);
CMP_HIDDEN const char *cm__log_level_name(int level);

/* Keepalive (plugin_ops.c): start at open (0 or -1), wake (a job was added), stop and
 * join at close. */
CMP_HIDDEN int cm__keepalive_start(cm_plugin *p);
CMP_HIDDEN void cm__keepalive_wake(cm_plugin *p);
CMP_HIDDEN void cm__keepalive_stop(cm_plugin *p);

/* Records the failure on the handle (for last_error) and returns code. */
CMP_HIDDEN int cmp_fail(cm_plugin *p, int code, int cause, int cause_code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Maps a ledger code to the plugin's family. */
CMP_HIDDEN int cmp_from_ledger(int ledger_code);
/* Copies a result struct into a host's, up to the smaller of the two sizes (never a
 * byte at or beyond the host's struct_size); the host's struct_size is kept. */
CMP_HIDDEN void cmp_copy_out(void *host, const void *full, size_t full_size);
/* Reads a host's input struct into full, which already holds the defaults: the bytes
 * the host has, up to what this plugin knows (a newer host's larger struct: its unknown
 * tail is not read; an older host's smaller one: the fields it lacks keep their
 * defaults). Returns 0, or -1 when the host's struct_size is below min_size (the 1.0
 * size). */
CMP_HIDDEN int cmp_copy_in(void *full, size_t full_size, const void *host, size_t min_size);
/* The host's struct_size of a struct that starts with one. */
CMP_HIDDEN uint32_t cmp_size_of(const void *host);
/* The ledger's hold states, the probe's methods and the ledger's grant kinds, mapped
 * one by one to the plugin's enums (NONE, or 0, for a value the plugin does not know). */
CMP_HIDDEN int cmp_hold_state(int ledger_state);
CMP_HIDDEN int cmp_method(enum cm_probe_method m);
CMP_HIDDEN int cmp_grant_kind(int ledger_kind);
CMP_HIDDEN void cmp_strlcpy(char *dst, const char *src, size_t size);
/* Now on the ledger's clock, Unix ms. */
CMP_HIDDEN int64_t cmp_now_ms(const cm_plugin *p);

CMP_HIDDEN const char *cmp_err_name(int code);
CMP_HIDDEN const char *cmp_cause_name(int cause, int code);

/* The hooks (plugin_job.c). */
CMP_HIDDEN int cmp_job_begin(cm_plugin *p, const cm_plugin_job_spec *spec, cm_plugin_quote *q);
CMP_HIDDEN int cmp_stage_begin(cm_plugin *p, const char *job, const char *stage);
CMP_HIDDEN int cmp_stage_end(cm_plugin *p, const char *job, const char *stage, int ok,
                             const char *message);
CMP_HIDDEN int cmp_job_end(cm_plugin *p, const char *job, int ok, const char *output_path,
                           cm_plugin_outcome *outcome);
CMP_HIDDEN void cmp_jobs_free(cm_plugin *p);
/* ABI 1.1: measure and price without holding (plugin_job.c). */
CMP_HIDDEN int cmp_quote(cm_plugin *p, const cm_plugin_job_spec *spec, cm_plugin_quote *q);

#endif /* CM_PLUGIN_INTERNAL_H */
