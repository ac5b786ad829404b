/* SPDX-License-Identifier: MIT */
/*
 * torture.h - the ledger torture driver's shared pieces (not part of the library).
 *
 * One parent forks N worker processes and one "ops" process (sweeps, plan changes)
 * against one ledger, kills them with SIGKILL at random moments and starts
 * replacements, then checks what the ledger did against what every process was told.
 *
 * Time. Every process opens the ledger with an injected clock that reads a virtual
 * time kept in a shared anonymous mapping (tt_shared.now_ms). Workers move it forward
 * by a random step after each job, so leases lapse and plan periods end without
 * sleeping. The clock only moves forward, but a process may read it just before
 * another one's transaction commits: the processes behave like machines whose clocks
 * differ by a few steps, as in a fleet.
 *
 * Logs. Each process appends one text line per event to its own file
 * (<dir>/log-<slot>-<generation>): an intent line ("C? job amount") before every
 * writing call and a result line ("C+ ..." or "C- error_name") after it. One write(2)
 * per line with O_APPEND: a SIGKILL leaves every line written before it in the page
 * cache, so the parent (which reads the files after the writer is dead) sees it; at
 * worst the last line is cut short and is then ignored. The intent lines say what a
 * caller may have caused without being told (killed mid-call), the result lines what
 * it was told. Lines starting "X " are violations a process saw itself.
 *
 * Determinism. Every choice of job k of slot s comes from a PRNG seeded with (seed, s,
 * k), so a replacement that redoes an interrupted job repeats exactly the same calls
 * with the same idempotency keys (job id, payment reference, refund reference).
 */
#ifndef CM_TORTURE_H
#define CM_TORTURE_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "cm_ledger.h"

#define TT_MAX_PROCS 64
#define TT_NWS 3               /* workspaces ws0..ws2 */
#define TT_LONG_LEASE_S 172800 /* 2 days of virtual time */
#define TT_SHORT_LEASE_S 60
#define TT_PLAN_STEP_MS (40LL * 86400 * 1000) /* the ops process changes a plan every 40 days */

/* What a process is doing now (tt_slot.phase), so the parent can aim its kills. */
enum tt_phase {
    TT_IDLE = 0, /* between calls */
    TT_RESERVE,
    TT_COMMIT,
    TT_RELEASE,
    TT_BUY,
    TT_REFUND,
    TT_RENEW,
    TT_SWEEP,
    TT_PLAN,
    TT_NPHASES
};

typedef struct tt_slot {
    _Atomic int next_job; /* the first job not finished yet */
    _Atomic int cur_job;  /* the job being worked on (== next_job while it runs) */
    _Atomic int phase;    /* enum tt_phase */
    _Atomic int done;     /* 1 when the slot finished its jobs */
} tt_slot;

/* Shared by the parent and every child (MAP_SHARED | MAP_ANONYMOUS). */
typedef struct tt_shared {
    _Atomic int64_t now_ms;         /* the virtual clock */
    _Atomic int stop;               /* soak deadline reached / workers finished: stop */
    _Atomic int plan_steps;         /* plan changes the ops process has had acknowledged */
    tt_slot slot[TT_MAX_PROCS + 1]; /* workers 0..procs-1, the ops process at procs */
} tt_shared;

typedef struct tt_opts {
    int procs;
    int jobs; /* per process; INT32_MAX in a soak */
    uint64_t seed;
    double soak_s;     /* > 0: run until this many seconds have passed */
    int kill_permille; /* chance per parent tick (~2 ms) of a SIGKILL */
    int64_t step_ms;   /* mean virtual time a job moves the clock */
    int sync_full;     /* synchronous FULL (else NORMAL) */
    int keep;          /* keep the database and the logs */
    int verbose;
    const char *location; /* the ledger location (file or postgresql:// URI) */
    const char *dir;      /* logs (and the default SQLite file) */
    const char *cli;      /* the cm-ledger binary for `cm-ledger check` */
    int64_t t0_ms;        /* the virtual time the run starts at */
} tt_opts;

/* ---- PRNG (splitmix64): small, seedable, the same on every platform ---- */

typedef struct tt_rng {
    uint64_t s;
} tt_rng;

static inline uint64_t tt_next(tt_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, n). */
static inline int64_t tt_below(tt_rng *r, int64_t n)
{
    return n > 0 ? (int64_t)(tt_next(r) % (uint64_t)n) : 0;
}

static inline tt_rng tt_rng_for(uint64_t seed, uint64_t a, uint64_t b)
{
    tt_rng r = {seed * 0x100000001b3ULL ^ (a << 40) ^ (b + 0x51ed27)};
    tt_next(&r);
    return r;
}

/* ---- the processes (torture_worker.c) ---- */

/* Run slot's jobs (a replacement resumes where the dead one stopped); never returns. */
void tt_worker_main(const tt_opts *o, tt_shared *sh, int slot, int gen);

/* The ops process: sweeps, and plan changes every TT_PLAN_STEP_MS; never returns. */
void tt_ops_main(const tt_opts *o, tt_shared *sh, int gen);

/* The plan change number step (0, 1, ...) applied by the ops process: workspace,
 * credits per month and interval, or credits 0 for a cancel. */
void tt_plan_step(int step, int *ws, int64_t *credits, int *interval);

/* Open the ledger of o with the clock of sh; CM_LEDGER_OK or an error code. */
int tt_open(const tt_opts *o, tt_shared *sh, cm_ledger **out);

/* Workspace names and users. */
const char *tt_ws(int w);
const char *tt_owner(int w);
#define TT_MEMBER "mem"

/* ---- verification (torture_verify.c) ---- */

typedef struct tt_stats {
    long kills, kills_by_phase[TT_NPHASES], respawns, lapses, expiries, refunds, refund_credits,
        purchases, commits, releases, reserves, insufficient, busy, periods, sweeps, plan_changes,
        redone, closed, unavailable;
    int64_t granted, bought, refunded_in, available, held, charged, expired;
} tt_stats;

/* Read every log of o->dir, compare with the ledger; 0 when everything holds, else
 * prints the first violation and returns 1. Fills the figures of st. */
int tt_verify(const tt_opts *o, tt_shared *sh, tt_stats *st);

/* Add months to a Unix ms instant, the day clamped to the month's length:
 * the driver's own month arithmetic, independent of the ledger's. */
int64_t tt_add_months(int64_t ms, int months);

#endif
