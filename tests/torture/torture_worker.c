/* SPDX-License-Identifier: MIT */
/*
 * torture_worker.c - the processes the torture driver forks: workers that run jobs
 * (reserve, renew, commit in full or in part, release, abandon), buy add-ons and
 * refund earlier jobs, and the ops process that sweeps and changes plans.
 *
 * Every writing call is logged before ("?") and after ("+" with what the ledger
 * answered, "-" with the error's machine name) it runs; see torture.h. A process
 * checks what it can on the spot (a retried call returns the first result, no
 * error that the rules exclude, no negative balance) and logs an "X" line and exits
 * with status 10 when something is wrong.
 */
#include "torture.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const ws_names[TT_NWS] = {"ws0", "ws1", "ws2"};
static const char *const owners[TT_NWS] = {"own0", "own1", "own2"};

const char *tt_ws(int w)
{
    return ws_names[w];
}

const char *tt_owner(int w)
{
    return owners[w];
}

static int64_t shared_clock(void *user)
{
    return atomic_load(&((tt_shared *)user)->now_ms);
}

int tt_open(const tt_opts *o, tt_shared *sh, cm_ledger **out)
{
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.location = o->location;
    cfg.create = 1; /* the torture run makes its own ledger */
    cfg.now_ms = shared_clock;
    cfg.clock_user = sh;
    cfg.busy_timeout_ms = 60000;
    cfg.synchronous = o->sync_full ? CM_LEDGER_SYNC_FULL : CM_LEDGER_SYNC_NORMAL;
    return cm_ledger_open(out, &cfg);
}

void tt_plan_step(int step, int *ws, int64_t *credits, int *interval)
{
    /* A cycle of eight plan changes (issue 12): upgrade, cancel, resubscribe (a new period
     * after the cancelled one ended), downgrade (scheduled), monthly -> annual, an annual
     * upgrade (topped up by the months left), annual -> monthly (scheduled), and a
     * cancel resumed at once. credits 0 is a cancel; credits < 0 a cancel followed at
     * once by a set of -credits (resumed before the period ends). Each step carries a
     * payment reference (tt_plan_ref), so a killed ops process that redoes it, and the
     * replay the ops process makes of every step, must be replayed, not applied twice. */
    static const struct {
        int ws;
        int64_t credits;
        int interval;
    } cycle[8] = {
        {1, 80, CM_LEDGER_MONTHLY}, {2, 0, 0},
        {2, 60, CM_LEDGER_MONTHLY}, {1, 50, CM_LEDGER_MONTHLY},
        {1, 20, CM_LEDGER_ANNUAL},  {1, 30, CM_LEDGER_ANNUAL},
        {1, 50, CM_LEDGER_MONTHLY}, {2, -60, CM_LEDGER_MONTHLY},
    };
    *ws = cycle[step % 8].ws;
    *credits = cycle[step % 8].credits;
    *interval = cycle[step % 8].interval;
}

static void plan_ref(char *buf, size_t n, int step, const char *what)
{
    snprintf(buf, n, "plan-%d-%s", step, what);
}

/* ---- a process's log ---- */

typedef struct proc {
    const tt_opts *o;
    tt_shared *sh;
    tt_slot *slot;
    cm_ledger *l;
    int fd;
    int id;      /* slot */
    int unavail; /* storage_unavailable answers in a row */
} proc;

static void logf_(proc *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(proc *p, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    /* One write per line (O_APPEND): whole lines survive a SIGKILL. */
    while (write(p->fd, line, (size_t)n) < 0 && errno == EINTR)
        ;
}

static void die_violation(proc *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void die_violation(proc *p, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    logf_(p, "X %s", msg);
    _exit(10);
}

static void phase(proc *p, int ph)
{
    atomic_store(&p->slot->phase, ph);
}

/* The storage is unavailable (a failover is under way, tests/pg/failover.sh): a
 * pipeline retries the same call, same job id and references, until it gets an answer,
 * which is then the first result if the first attempt took effect. Logged as "U". */
static int unavailable(proc *p, const char *call, const char *key, int rc)
{
    if (rc != CM_LEDGER_E_UNAVAILABLE) {
        p->unavail = 0;
        return 0;
    }
    logf_(p, "U %s %s", call, key);
    if (++p->unavail > 1200) /* 60 s */
        die_violation(p, "%s %s: the storage stayed unavailable for 60 s: %s", call, key,
                      cm_ledger_errmsg(p->l));
    struct timespec ts = {0, 50000000L};
    nanosleep(&ts, NULL);
    return 1;
}
#define AGAIN_IF_UNAVAILABLE(p, call, key, rc, expr)                                               \
    do {                                                                                           \
        rc = (expr);                                                                               \
    } while (unavailable((p), (call), (key), rc))

static void open_proc(proc *p, const tt_opts *o, tt_shared *sh, int id, int gen)
{
    char path[600];
    snprintf(path, sizeof path, "%s/log-%d-%d", o->dir, id, gen);
    p->o = o;
    p->sh = sh;
    p->slot = &sh->slot[id];
    p->id = id;
    p->unavail = 0;
    p->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0644);
    if (p->fd < 0)
        _exit(3);
    int rc;
    AGAIN_IF_UNAVAILABLE(p, "open", "-", rc, tt_open(o, sh, &p->l));
    if (rc) {
        logf_(p, "X cannot open the ledger: %s: %s", cm_ledger_err_name(rc),
              cm_ledger_errmsg(NULL));
        _exit(10);
    }
}

static void close_proc(proc *p)
{
    cm_ledger_close(p->l);
    close(p->fd);
}

/* An error the rules allow for this call, or a violation. BUSY is allowed anywhere
 * (the call changed nothing) and counted by the parent. */
static void allow(proc *p, const char *call, const char *key, int rc, int ok1, int ok2)
{
    if (rc == CM_LEDGER_OK || rc == CM_LEDGER_E_BUSY || rc == ok1 || rc == ok2)
        return;
    die_violation(p, "%s %s returned %s: %s", call, key, cm_ledger_err_name(rc),
                  cm_ledger_errmsg(p->l));
}

/* ---- the calls, each logged before and after ---- */

static int do_buy(proc *p, int w, int64_t credits, const char *as_user, const char *ref,
                  cm_ledger_purchase *pu)
{
    logf_(p, "B? %s %s %lld %s", ref, tt_ws(w), (long long)credits, as_user);
    phase(p, TT_BUY);
    int rc;
    AGAIN_IF_UNAVAILABLE(p, "buy", ref, rc,
                         cm_ledger_buy(p->l, tt_ws(w), credits, as_user, ref, pu));
    phase(p, TT_IDLE);
    if (rc)
        logf_(p, "B- %s %s", ref, cm_ledger_err_name(rc));
    else
        logf_(p, "B+ %s %lld %lld %d", ref, (long long)pu->grant_id, (long long)pu->total_minor,
              pu->replayed);
    return rc;
}

static void buy(proc *p, tt_rng *r, int w, const char *ref)
{
    int64_t credits = 5 + tt_below(r, 26);
    cm_ledger_purchase a, b;
    if (tt_below(r, 20) == 0) {
        /* A member may not buy: refused, and nothing may be recorded under the ref. */
        char bad[80];
        snprintf(bad, sizeof bad, "bad-%s", ref);
        int rc = do_buy(p, w, credits, TT_MEMBER, bad, &a);
        if (rc != CM_LEDGER_E_FORBIDDEN)
            die_violation(p, "a member's purchase %s returned %s", bad, cm_ledger_err_name(rc));
        return;
    }
    int rc = do_buy(p, w, credits, tt_owner(w), ref, &a);
    allow(p, "buy", ref, rc, 0, 0);
    if (rc == CM_LEDGER_OK && tt_below(r, 3) == 0) {
        /* A client retrying the same payment: the first purchase, nothing new. */
        rc = do_buy(p, w, credits, tt_owner(w), ref, &b);
        allow(p, "buy", ref, rc, 0, 0);
        if (rc == CM_LEDGER_OK && (!b.replayed || b.grant_id != a.grant_id ||
                                   b.total_minor != a.total_minor || b.credits != credits))
            die_violation(p, "repeated purchase %s: replayed %d grant %lld (first %lld)", ref,
                          b.replayed, (long long)b.grant_id, (long long)a.grant_id);
    }
}

static int do_refund(proc *p, const char *job, int64_t credits, const char *ref,
                     cm_ledger_refund_result *out)
{
    logf_(p, "F? %s %s %lld", ref, job, (long long)credits);
    phase(p, TT_REFUND);
    int rc;
    AGAIN_IF_UNAVAILABLE(
        p, "refund", ref, rc,
        cm_ledger_refund(p->l, job, credits, "torture refund", "support", ref, out));
    phase(p, TT_IDLE);
    if (rc)
        logf_(p, "F- %s %s", ref, cm_ledger_err_name(rc));
    else
        logf_(p, "F+ %s %lld %lld %d", ref, (long long)out->credits, (long long)out->total_refunded,
              out->replayed);
    return rc;
}

/* Refund (part of) one of this slot's earlier jobs, whatever became of it: a job that
 * was not charged, or is refunded already, must be refused (invalid_argument). */
static void refund(proc *p, tt_rng *r, int k, const char *ref)
{
    if (k == 0)
        return;
    char job[64];
    snprintf(job, sizeof job, "j%d-%lld", p->id, (long long)(k - 1 - tt_below(r, k < 20 ? k : 20)));
    int64_t credits = tt_below(r, 2) ? CM_LEDGER_ALL : 1 + tt_below(r, 3);
    cm_ledger_refund_result a, b;
    int rc = do_refund(p, job, credits, ref, &a);
    allow(p, "refund", ref, rc, CM_LEDGER_E_INVALID, CM_LEDGER_E_NO_JOB);
    if (rc == CM_LEDGER_OK && tt_below(r, 4) == 0) {
        rc = do_refund(p, job, credits, ref, &b);
        allow(p, "refund", ref, rc, 0, 0);
        if (rc == CM_LEDGER_OK &&
            (!b.replayed || b.credits != a.credits || b.total_refunded != a.total_refunded))
            die_violation(p, "repeated refund %s: replayed %d credits %lld (first %lld)", ref,
                          b.replayed, (long long)b.credits, (long long)a.credits);
    }
}

static void check_balance(proc *p, int w)
{
    cm_ledger_balance_result *b = NULL;
    int rc;
    AGAIN_IF_UNAVAILABLE(p, "balance", tt_ws(w), rc,
                         cm_ledger_balance(p->l, tt_ws(w), TT_MEMBER, &b));
    allow(p, "balance", tt_ws(w), rc, 0, 0);
    if (rc)
        return;
    int neg = b->available < 0 || b->held < 0;
    for (size_t i = 0; i < b->n_grants; i++) {
        const cm_ledger_grant *g = &b->grants[i];
        neg |= g->granted < 0 || g->remaining < 0 || g->held < 0 || g->charged < 0 ||
               g->expired < 0 || g->refunded_into < 0;
    }
    int64_t avail = b->available, held = b->held;
    cm_ledger_balance_free(b);
    if (neg)
        die_violation(p, "balance of %s has a negative value (available %lld, held %lld)", tt_ws(w),
                      (long long)avail, (long long)held);
}

/* Commit amount; ALL is logged as the held amount (the ledger treats them alike). */
static int do_commit(proc *p, const char *job, int64_t amount, int64_t held, int64_t *charged)
{
    logf_(p, "C? %s %lld", job, (long long)(amount == CM_LEDGER_ALL ? held : amount));
    phase(p, TT_COMMIT);
    cm_ledger_job *j = NULL;
    int rc;
    AGAIN_IF_UNAVAILABLE(p, "commit", job, rc, cm_ledger_commit(p->l, job, amount, &j));
    phase(p, TT_IDLE);
    if (rc) {
        logf_(p, "C- %s %s", job, cm_ledger_err_name(rc));
    } else {
        *charged = j->charged;
        logf_(p, "C+ %s %lld", job, (long long)j->charged);
        if (j->state != CM_LEDGER_COMMITTED)
            die_violation(p, "commit %s acknowledged in state %s", job,
                          cm_ledger_hold_state_name(j->state));
    }
    cm_ledger_job_free(j);
    return rc;
}

static int do_release(proc *p, const char *job)
{
    logf_(p, "L? %s", job);
    phase(p, TT_RELEASE);
    cm_ledger_job *j = NULL;
    int rc;
    AGAIN_IF_UNAVAILABLE(p, "release", job, rc, cm_ledger_release(p->l, job, &j));
    phase(p, TT_IDLE);
    if (rc) {
        logf_(p, "L- %s %s", job, cm_ledger_err_name(rc));
    } else {
        logf_(p, "L+ %s %s", job, cm_ledger_hold_state_name(j->state));
        if (j->state != CM_LEDGER_RELEASED && j->state != CM_LEDGER_LAPSED)
            die_violation(p, "release %s acknowledged in state %s", job,
                          cm_ledger_hold_state_name(j->state));
    }
    cm_ledger_job_free(j);
    return rc;
}

/* One job: every choice from (seed, slot, k), so a redo makes the same calls. */
static void run_job(proc *p, int k)
{
    tt_rng r = tt_rng_for(p->o->seed, (uint64_t)p->id, (uint64_t)k);
    char job[64], ref[64];
    snprintf(job, sizeof job, "j%d-%d", p->id, k);
    int w = (int)tt_below(&r, TT_NWS);
    int action = (int)tt_below(&r, 100);
    if (action < 5) {
        snprintf(ref, sizeof ref, "pay-%d-%d", p->id, k);
        buy(p, &r, w, ref);
        return;
    }
    if (action < 13) {
        snprintf(ref, sizeof ref, "rf-%d-%d", p->id, k);
        refund(p, &r, k, ref);
        return;
    }
    if (action < 17)
        check_balance(p, w);
    int64_t credits = 1 + tt_below(&r, 8);
    int64_t lease_s = tt_below(&r, 10) ? TT_LONG_LEASE_S : TT_SHORT_LEASE_S;
    const char *user = tt_below(&r, 4) ? TT_MEMBER : tt_owner(w);
    int outcome = (int)tt_below(&r, 100);
    int64_t partial = 1 + tt_below(&r, credits); /* 1 .. credits: a charge is never 0 */
    int renew = tt_below(&r, 10) == 0, retry = tt_below(&r, 8) == 0, use_all = tt_below(&r, 2);

    logf_(p, "R? %s %s %lld %lld %s", job, tt_ws(w), (long long)credits, (long long)lease_s, user);
    phase(p, TT_RESERVE);
    cm_ledger_job *j = NULL;
    int rc;
    AGAIN_IF_UNAVAILABLE(p, "reserve", job, rc,
                         cm_ledger_reserve(p->l, tt_ws(w), job, credits, user, lease_s, &j));
    phase(p, TT_IDLE);
    if (rc) {
        logf_(p, "R- %s %s", job, cm_ledger_err_name(rc));
        /* a redo of a job whose hold went back: its id is closed */
        allow(p, "reserve", job, rc, CM_LEDGER_E_INSUFFICIENT, CM_LEDGER_E_JOB_CLOSED);
        return;
    }
    logf_(p, "R+ %s %s", job, cm_ledger_hold_state_name(j->state));
    if (j->credits != credits)
        die_violation(p, "reserve %s held %lld, asked %lld", job, (long long)j->credits,
                      (long long)credits);
    cm_ledger_job_free(j);

    if (renew) {
        logf_(p, "N? %s", job);
        phase(p, TT_RENEW);
        AGAIN_IF_UNAVAILABLE(p, "renew", job, rc, cm_ledger_renew(p->l, job, lease_s, NULL));
        phase(p, TT_IDLE);
        logf_(p, "N%c %s %s", rc ? '-' : '+', job, cm_ledger_err_name(rc));
        allow(p, "renew", job, rc, CM_LEDGER_E_LEASE_EXPIRED, CM_LEDGER_E_ALREADY_RESOLVED);
    }
    if (outcome < 75) { /* success: commit all (55 %) or part (20 %) */
        int64_t amount = outcome < 55 ? (use_all ? CM_LEDGER_ALL : credits) : partial;
        int64_t c1 = -1, c2 = -1;
        rc = do_commit(p, job, amount, credits, &c1);
        allow(p, "commit", job, rc, CM_LEDGER_E_LEASE_EXPIRED, 0);
        if (rc == CM_LEDGER_OK && retry) {
            /* The pipeline retries after a timeout: the first result, charged once. */
            rc = do_commit(p, job, amount, credits, &c2);
            allow(p, "commit", job, rc, 0, 0);
            if (rc == CM_LEDGER_OK && c2 != c1)
                die_violation(p, "retried commit %s charged %lld, first %lld", job, (long long)c2,
                              (long long)c1);
        }
    } else if (outcome < 90) { /* failure: release */
        rc = do_release(p, job);
        allow(p, "release", job, rc, 0, 0);
        if (rc == CM_LEDGER_OK && retry) {
            rc = do_release(p, job);
            allow(p, "release", job, rc, 0, 0);
        }
    } else {
        logf_(p, "A %s", job); /* abandoned: the pipeline vanished, the lease lapses */
    }
}

static void advance_clock(proc *p, tt_rng *r)
{
    /* Mean step_ms, spread 0 .. 2 x step_ms. */
    int64_t step = tt_below(r, 2 * p->o->step_ms + 1);
    atomic_fetch_add(&p->sh->now_ms, step);
}

void tt_worker_main(const tt_opts *o, tt_shared *sh, int slot, int gen)
{
    proc p;
    open_proc(&p, o, sh, slot, gen);
    tt_rng r = tt_rng_for(o->seed ^ 0xabcdefULL, (uint64_t)slot, (uint64_t)gen);
    int k = atomic_load(&p.slot->next_job);
    if (atomic_load(&p.slot->cur_job) == k) {
        /* The previous process died in job k: redo it (a pipeline retrying with the
         * same job id) or leave it (its hold lapses). */
        if (tt_below(&r, 2)) {
            logf_(&p, "D j%d-%d", slot, k);
            run_job(&p, k);
        }
        atomic_store(&p.slot->next_job, ++k);
    }
    for (; k < o->jobs && !atomic_load(&sh->stop); k++) {
        atomic_store(&p.slot->cur_job, k);
        run_job(&p, k);
        atomic_store(&p.slot->next_job, k + 1);
        advance_clock(&p, &r);
    }
    atomic_store(&p.slot->done, 1);
    close_proc(&p);
    _exit(0);
}

void tt_ops_main(const tt_opts *o, tt_shared *sh, int gen)
{
    proc p;
    open_proc(&p, o, sh, o->procs, gen);
    while (!atomic_load(&sh->stop)) {
        int step = atomic_load(&sh->plan_steps);
        if (atomic_load(&sh->now_ms) >= o->t0_ms + (int64_t)(step + 1) * TT_PLAN_STEP_MS) {
            int w, interval;
            int64_t credits;
            tt_plan_step(step, &w, &credits, &interval);
            logf_(&p, "P? %d", step);
            phase(&p, TT_PLAN);
            char rc_ref[40], rs_ref[40];
            plan_ref(rc_ref, sizeof rc_ref, step, "cancel");
            plan_ref(rs_ref, sizeof rs_ref, step, "set");
            cm_ledger_plan_result r = {0}, again = {0};
            int rc = 0;
            /* Twice: the second time with the same references must be a replay. */
            for (int rep = 0; rep < 2 && !rc; rep++) {
                cm_ledger_plan_result *out = rep ? &again : &r;
                if (credits <= 0)
                    AGAIN_IF_UNAVAILABLE(
                        &p, "plan", rc_ref, rc,
                        cm_ledger_plan_cancel_ref(p.l, tt_ws(w), tt_owner(w), rc_ref, out));
                if (!rc && credits != 0)
                    AGAIN_IF_UNAVAILABLE(
                        &p, "plan", rs_ref, rc,
                        cm_ledger_plan_set_ref(p.l, tt_ws(w), credits < 0 ? -credits : credits,
                                               interval, NULL, tt_owner(w), rs_ref, out));
            }
            phase(&p, TT_IDLE);
            if (!rc &&
                (!again.replayed || again.granted != r.granted || again.outcome != r.outcome))
                logf_(&p,
                      "X plan step %d: a repeated reference was not a replay of the first "
                      "result (outcome %d/%d, granted %lld/%lld)",
                      step, r.outcome, again.outcome, (long long)r.granted,
                      (long long)again.granted);
            logf_(&p, "P%c %d %s", rc ? '-' : '+', step, cm_ledger_err_name(rc));
            allow(&p, "plan", tt_ws(w), rc, 0, 0);
            if (!rc)
                atomic_store(&sh->plan_steps, step + 1);
        }
        cm_ledger_sweep_stats s;
        phase(&p, TT_SWEEP);
        int rc;
        AGAIN_IF_UNAVAILABLE(&p, "sweep", "-", rc, cm_ledger_sweep(p.l, &s));
        phase(&p, TT_IDLE);
        allow(&p, "sweep", "", rc, 0, 0);
        if (!rc)
            logf_(&p, "S+ %lld %lld %lld", (long long)s.holds_lapsed, (long long)s.credits_expired,
                  (long long)s.periods_granted);
        struct timespec ts = {0, 3000000L};
        nanosleep(&ts, NULL);
    }
    atomic_store(&p.slot->done, 1);
    close_proc(&p);
    _exit(0);
}
