/* SPDX-License-Identifier: MIT */
/*
 * ledger_holds.c - two-phase holds: reserve, renew, commit, release, job info.
 *
 * A hold takes credits from grants in spending order and records each take
 * (hold_takes, in order, written once). Commit charges the takes in that same order, so
 * what goes back is what the hold took last; credits given back to a plan grant that
 * expired meanwhile expire with it (cm__give_back_unsaved, ledger.c). A job id names one
 * hold forever, and a hold resolves exactly once: holds.state moves from HELD to
 * COMMITTED, RELEASED or LAPSED and never again (the UPDATE is guarded by
 * "state = held").
 */
#include "ledger_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A take of a hold together with its grant, as CM_Q_TAKES_GRANTS returns them. */
typedef struct take_grant {
    cm_grant_row g;
    int64_t seq, credits;
} take_grant;

typedef struct take_grant_vec {
    take_grant *v;
    size_t n, cap;
    int oom;
} take_grant_vec;

static int cb_take_grant(void *ctx, const cm_sv *c, int n)
{
    take_grant_vec *x = ctx;
    (void)n;
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 4;
        void *p = realloc(x->v, cap * sizeof *x->v);
        if (!p) {
            x->oom = 1;
            return 1;
        }
        x->v = p;
        x->cap = cap;
    }
    take_grant *t = &x->v[x->n++];
    cm__grant_from_cols(&t->g, c);
    t->seq = c[CM_TC_SEQ].i;
    t->credits = c[CM_TC_CREDITS].i;
    return 0;
}

int cm__hold_resolve(cm_tx *tx, cm_hold_row *h, int64_t charge, int state, int64_t at_ms,
                     const char *actor)
{
    return cm__hold_resolve_noted(tx, h, charge, state, at_ms, actor, NULL);
}

int cm__hold_resolve_noted(cm_tx *tx, cm_hold_row *h, int64_t charge, int state, int64_t at_ms,
                           const char *actor, const char *commit_note)
{
    /* The takes and their grants in one read; each grant is then saved once, however
     * many movements (commit, give back, expiry) it took. */
    take_grant_vec t = {0};
    int rc = CM_RUN(tx, CM_Q_TAKES_GRANTS, cb_take_grant, &t, CM_T(h->job));
    if (!rc && t.oom)
        rc = cm__ledger_fail(tx->l, CM_LEDGER_E_NOMEM, "out of memory resolving a hold");
    const char *back = state == CM_LEDGER_LAPSED ? "lapse" : "release";
    const char *why = state == CM_LEDGER_LAPSED     ? "the lease lapsed"
                      : state == CM_LEDGER_RELEASED ? "released"
                                                    : "the unused part of a committed hold";
    int64_t left = charge;
    for (size_t i = 0; !rc && i < t.n; i++) {
        cm_grant_row *g = &t.v[i].g;
        /* A hold takes from each grant once; should two takes name one grant, the later
         * one continues from the earlier one's counters. */
        for (size_t k = 0; k < i; k++)
            if (t.v[k].g.id == g->id) {
                *g = t.v[k].g;
                t.v[k].g.dirty = 0;
            }
        int64_t c = left < t.v[i].credits ? left : t.v[i].credits;
        left -= c;
        rc = cm__move_unsaved(tx, g, "commit", c, at_ms, h->job, actor,
                              commit_note ? commit_note : "charged", NULL);
        if (!rc)
            rc = cm__give_back_unsaved(tx, g, back, t.v[i].credits - c, at_ms, h->job, actor, why);
    }
    for (size_t i = 0; !rc && i < t.n; i++)
        rc = cm__grant_save(tx, &t.v[i].g);
    free(t.v);
    if (!rc && left != 0)
        rc =
            cm__ledger_fail(tx->l, CM_LEDGER_E_STORAGE, "hold %s: its takes do not add up", h->job);
    if (rc)
        return rc;
    rc = CM_RUN(tx, CM_Q_HOLD_RESOLVE, NULL, NULL, CM_T(h->job), CM_I(state), CM_I(at_ms),
                CM_I(charge), state == CM_LEDGER_COMMITTED ? CM_I(charge) : CM_N);
    if (!rc && commit_note)
        rc = CM_RUN(tx, CM_Q_HOLD_SET_COMMIT_NOTE, NULL, NULL, CM_T(h->job), CM_T(commit_note));
    if (!rc) /* the outbox, in the same transaction */
        rc = cm__event_hold(tx, h, state, charge, at_ms, actor, commit_note);
    if (!rc) {
        h->state = state;
        h->resolved_ms = at_ms;
        h->charged = charge;
        h->commit_arg = state == CM_LEDGER_COMMITTED ? charge : -1;
    }
    return rc;
}

static void discard_job(void *slot)
{
    cm_ledger_job_free(*(cm_ledger_job **)slot);
    *(cm_ledger_job **)slot = NULL;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* v3: holds binding / prices. What a hold keeps besides its counters. */
typedef struct hold_extra {
    char *binding, *note, *commit_note;
    int found, oom;
} hold_extra;

static char *dup_str(const char *s);

static int cb_extra(void *ctx, const cm_sv *c, int n)
{
    hold_extra *x = ctx;
    char **dst[3] = {&x->binding, &x->note, &x->commit_note};
    for (int i = 0; i < 3 && i < n; i++)
        if (c[i].type == CM_SV_TEXT && c[i].s && !(*dst[i] = dup_str(c[i].s)))
            x->oom = 1;
    x->found = 1;
    return 1;
}

static void extra_free(hold_extra *x)
{
    free(x->binding);
    free(x->note);
    free(x->commit_note);
    memset(x, 0, sizeof *x);
}

static int extra_get(cm_tx *tx, const char *job, hold_extra *x)
{
    memset(x, 0, sizeof *x);
    int rc = CM_RUN(tx, CM_Q_HOLD_EXTRA, cb_extra, x, CM_T(job));
    if (!rc && x->oom)
        rc = cm__ledger_fail(tx->l, CM_LEDGER_E_NOMEM, "out of memory reading a hold");
    if (rc)
        extra_free(x);
    return rc;
}

/* What a job's description reads besides its hold: the takes and the texts. None of it
 * changes once the hold is made but the commit note (which a job returned by commit,
 * release or renew does not carry), so a call may read it before it writes (the reads
 * it declared then answer it; see job_body). */
typedef struct job_parts {
    cm_take_vec t;
    hold_extra x;
} job_parts;

static void parts_free(job_parts *p)
{
    free(p->t.v);
    memset(&p->t, 0, sizeof p->t);
    extra_free(&p->x);
}

static int parts_read(cm_tx *tx, const char *job, job_parts *p)
{
    memset(p, 0, sizeof *p);
    int rc = cm__takes_read(tx, job, &p->t);
    if (!rc)
        rc = extra_get(tx, job, &p->x);
    if (rc)
        parts_free(p);
    return rc;
}

/* The job of hold h for the caller, from its parts (which it consumes). */
static int parts_make(cm_tx *tx, const cm_hold_row *h, job_parts *p, cm_ledger_job **out)
{
    cm_take_vec t = p->t;
    hold_extra x = p->x;
    memset(p, 0, sizeof *p);
    int rc = cm__takes_derive(tx, h, &t); /* frees t on failure */
    if (rc) {
        extra_free(&x);
        return rc;
    }
    cm_ledger_job *j = calloc(1, sizeof *j);
    if (j) {
        j->job = dup_str(h->job);
        j->workspace = dup_str(h->ws);
        j->user = dup_str(h->user);
        j->takes = t.n ? calloc(t.n, sizeof *j->takes) : NULL;
    }
    if (j) { /* ownership moves to the job */
        j->binding = x.binding;
        j->note = x.note;
        j->commit_note = x.commit_note;
        memset(&x, 0, sizeof x);
    }
    if (!j || !j->job || !j->workspace || !j->user || (t.n && !j->takes)) {
        free(t.v);
        extra_free(&x);
        cm_ledger_job_free(j);
        return cm__ledger_fail(tx->l, CM_LEDGER_E_NOMEM, "out of memory describing a hold");
    }
    j->state = h->state;
    j->credits = h->credits;
    j->charged = h->charged;
    j->refunded = h->refunded;
    j->lease_s = h->lease_s;
    j->created_ms = h->created_ms;
    j->lease_until_ms = h->lease_until_ms;
    j->resolved_ms = h->resolved_ms;
    j->n_takes = t.n;
    for (size_t i = 0; i < t.n; i++)
        j->takes[i] = (cm_ledger_take){t.v[i].grant_id, t.v[i].kind,     t.v[i].credits,
                                       t.v[i].charged,  t.v[i].refunded, t.v[i].expires_ms};
    free(t.v);
    *out = j;
    cm__tx_on_fail(tx, discard_job, out);
    return CM_LEDGER_OK;
}

int cm__job_build(cm_tx *tx, const cm_hold_row *h, cm_ledger_job **out)
{
    job_parts p;
    int rc = parts_read(tx, h->job, &p);
    return rc ? rc : parts_make(tx, h, &p, out);
}

void cm_ledger_job_free(cm_ledger_job *j)
{
    if (!j)
        return;
    free(j->job);
    free(j->workspace);
    free(j->user);
    free(j->takes);
    free(j->note);
    free(j->binding);
    free(j->commit_note);
    free(j);
}

/* ---- reserve ---- */

typedef struct hold_args {
    const char *ws, *job, *user, *note, *binding;
    int64_t credits, lease_s;
    cm_ledger_job **out;
} hold_args;

/* The job for the caller, from parts when the call read them already (else read now);
 * the notes are cm_ledger_job_info's alone (keep_notes). */
static int finish_parts(cm_tx *tx, const cm_hold_row *h, job_parts *parts, cm_ledger_job **out,
                        int keep_notes)
{
    int rc = !out    ? CM_LEDGER_OK
             : parts ? parts_make(tx, h, parts, out)
                     : cm__job_build(tx, h, out);
    if (!rc && out && !keep_notes) {
        free((*out)->note);
        free((*out)->commit_note);
        (*out)->note = (*out)->commit_note = NULL;
    }
    return rc;
}

static int finish_notes(cm_tx *tx, const cm_hold_row *h, cm_ledger_job **out, int keep_notes)
{
    return finish_parts(tx, h, NULL, out, keep_notes);
}

static int finish(cm_tx *tx, const cm_hold_row *h, cm_ledger_job **out)
{
    return finish_notes(tx, h, out, 0);
}

static int plain_id(const char *id)
{
    return id && *id && strlen(id) <= CM_ID_MAX && cm__text_plain(id);
}

/* The reads of a reserve's usual path, in its order (see cm__tx_run_pre): on PostgreSQL
 * they go with BEGIN and the lock. GRANT_SPENDABLE at the clock: ledger time unless the
 * workspace's journal is ahead of the clock (then that read goes to the server). */
static int reserve_pre(cm_tx *tx, void *arg)
{
    hold_args *a = arg;
    if (!plain_id(a->ws)) /* refused by the body before it reads */
        return CM_LEDGER_OK;
    cm_sv clock = cm__clock_sv(tx);
    int rc = CM_PREFETCH(tx, CM_Q_WS_ACCESS, CM_T(a->ws), CM_T(a->user));
    if (!rc)
        rc = CM_PREFETCH(tx, CM_Q_TOUCH_STATE, CM_T(a->ws), clock);
    if (!rc)
        rc = CM_PREFETCH(tx, CM_Q_HOLD_GET, CM_T(a->job));
    if (!rc)
        rc = CM_PREFETCH(tx, CM_Q_GRANT_SPENDABLE, CM_T(a->ws), clock);
    return rc;
}

static int reserve_body(cm_tx *tx, void *arg)
{
    hold_args *a = arg;
    int rc = cm__ws_access(tx, a->ws, a->user, 0, "reserve", NULL);
    if (!rc)
        rc = cm__touch(tx, a->ws);
    if (rc)
        return rc;
    cm_hold_row h;
    int found;
    rc = cm__hold_get(tx, a->job, &h, &found);
    if (rc)
        return rc;
    if (found) {
        if (strcmp(h.ws, a->ws) || strcmp(h.user, a->user) || h.credits != a->credits ||
            h.lease_s != a->lease_s)
            return cm__ledger_fail(
                tx->l, CM_LEDGER_E_CONFLICT,
                "job '%s' already holds %lld credits with other arguments (workspace "
                "'%s', user '%s', lease %lld s)",
                a->job, (long long)h.credits, strcmp(h.ws, a->ws) ? "(another)" : h.ws,
                strcmp(h.ws, a->ws) ? "(another)" : h.user, (long long)h.lease_s);
        /* The input binding is part of the key: the same id on another input (another
         * file, or a by-output job under a by-input job's id) is not a retry. */
        hold_extra x;
        rc = extra_get(tx, a->job, &x);
        if (rc)
            return rc;
        int same = (!x.binding && !a->binding) ||
                   (x.binding && a->binding && strcmp(x.binding, a->binding) == 0);
        extra_free(&x);
        if (!same)
            return cm__ledger_fail(
                tx->l, CM_LEDGER_E_CONFLICT,
                "job '%s' was reserved for another input; a job id names one input "
                "for good (use a new job id for this one)",
                a->job);
        if (h.state == CM_LEDGER_RELEASED || h.state == CM_LEDGER_LAPSED) {
            char when[40];
            return cm__ledger_fail(tx->l, CM_LEDGER_E_JOB_CLOSED,
                                   "job '%s' was %s at %s and its credits went back; the job id is "
                                   "closed, a new attempt needs a new job id",
                                   a->job, cm_ledger_hold_state_name(h.state),
                                   cm_ledger_time_format(h.resolved_ms, when, sizeof when));
        }
        return finish(tx, &h, a->out); /* a retry: the same hold, held or committed */
    }
    cm_grant_vec v;
    rc = cm__grant_list(tx, CM_Q_GRANT_SPENDABLE, (const cm_sv[]){CM_T(a->ws), CM_I(tx->now)}, 2,
                        &v);
    if (rc)
        return rc;
    int64_t available = 0;
    for (size_t i = 0; i < v.n; i++)
        available += v.v[i].remaining;
    if (available < a->credits) {
        cm__grant_vec_free(&v);
        return cm__ledger_fail(tx->l, CM_LEDGER_E_INSUFFICIENT,
                               "job '%s' needs %lld credits but workspace '%s' has %lld available",
                               a->job, (long long)a->credits, a->ws, (long long)available);
    }
    /* The job for the caller is made of what is written here: nothing to read back. */
    job_parts parts = {0};
    if (a->out && v.n && !(parts.t.v = calloc(v.n, sizeof *parts.t.v))) {
        cm__grant_vec_free(&v);
        return cm__ledger_fail(tx->l, CM_LEDGER_E_NOMEM, "out of memory reserving");
    }
    if (a->out && ((a->binding && !(parts.x.binding = dup_str(a->binding))) ||
                   (a->note && !(parts.x.note = dup_str(a->note))))) {
        parts_free(&parts);
        cm__grant_vec_free(&v);
        return cm__ledger_fail(tx->l, CM_LEDGER_E_NOMEM, "out of memory reserving");
    }
    int64_t until = tx->now + a->lease_s * 1000;
    rc = CM_RUN(tx, CM_Q_HOLD_INSERT, NULL, NULL, CM_T(a->job), CM_T(a->ws), CM_T(a->user),
                CM_I(a->credits), CM_I(a->lease_s), CM_I(tx->now), CM_I(until),
                a->binding ? CM_T(a->binding) : CM_N, a->note ? CM_T(a->note) : CM_N);
    int64_t left = a->credits;
    for (size_t i = 0; !rc && left > 0 && i < v.n; i++) {
        int64_t c = left < v.v[i].remaining ? left : v.v[i].remaining;
        left -= c;
        rc = CM_RUN(tx, CM_Q_TAKE_INSERT, NULL, NULL, CM_T(a->job), CM_I((int64_t)i),
                    CM_I(v.v[i].id), CM_I(c));
        if (parts.t.v)
            parts.t.v[parts.t.n++] = (cm_take_row){.seq = (int64_t)i,
                                                   .grant_id = v.v[i].id,
                                                   .credits = c,
                                                   .kind = v.v[i].kind,
                                                   .expires_ms = v.v[i].expires_ms};
        if (!rc)
            rc = cm__move(tx, &v.v[i], "hold", c, tx->now, a->job, a->user,
                          a->note ? a->note : "reserved", NULL);
    }
    cm__grant_vec_free(&v);
    if (rc) {
        parts_free(&parts);
        return rc;
    }
    /* The new hold is what was just inserted: no need to read it back. */
    h = (cm_hold_row){.credits = a->credits,
                      .lease_s = a->lease_s,
                      .state = CM_LEDGER_HELD,
                      .created_ms = tx->now,
                      .lease_until_ms = until,
                      .resolved_ms = -1,
                      .commit_arg = -1};
    snprintf(h.job, sizeof h.job, "%s", a->job);
    snprintf(h.ws, sizeof h.ws, "%s", a->ws);
    snprintf(h.user, sizeof h.user, "%s", a->user);
    return finish_parts(tx, &h, a->out ? &parts : NULL, a->out, 0);
}

static int check_lease(cm_ledger *l, int64_t *lease_s)
{
    if (*lease_s == 0)
        *lease_s = CM_LEDGER_DEFAULT_LEASE_S;
    if (*lease_s < 0 || *lease_s > INT64_C(31536000))
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID, "the lease must be 1 s to one year");
    return CM_LEDGER_OK;
}

int cm_ledger_reserve(cm_ledger *l, const char *ws, const char *job, int64_t credits,
                      const char *user, int64_t lease_s, cm_ledger_job **out)
{
    return cm_ledger_reserve_noted(l, ws, job, credits, user, lease_s, NULL, out);
}

int cm_ledger_reserve_noted(cm_ledger *l, const char *ws, const char *job, int64_t credits,
                            const char *user, int64_t lease_s, const char *note,
                            cm_ledger_job **out)
{
    return cm_ledger_reserve_bound(l, ws, job, credits, user, lease_s, note, NULL, out);
}

int cm_ledger_reserve_bound(cm_ledger *l, const char *ws, const char *job, int64_t credits,
                            const char *user, int64_t lease_s, const char *note,
                            const char *binding, cm_ledger_job **out)
{
    if (out)
        *out = NULL;
    if (note && (!*note || strlen(note) > CM_TEXT_MAX || !cm__text_plain(note)))
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID,
                               "the note must be UTF-8 text of 1 to %d bytes without control "
                               "characters (newline, tab, escape ...)",
                               CM_TEXT_MAX);
    int rc = binding ? cm__valid_id(l, "the input binding", binding) : CM_LEDGER_OK;
    if (!rc)
        rc = cm__valid_id(l, "the job id", job);
    if (!rc)
        rc = cm__valid_id(l, "the user id", user);
    if (!rc)
        rc = check_lease(l, &lease_s);
    if (rc)
        return rc;
    if (credits <= 0 || credits > INT64_C(1000000000000))
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID,
                               "credits to reserve must be between 1 and 10^12");
    hold_args a = {ws, job, user, note, binding, credits, lease_s, out};
    return cm__tx_run_pre(l, 1, CM_LOCK_WS, ws, reserve_pre, reserve_body, &a);
}

/* ---- renew, commit, release, job ---- */

enum { OP_RENEW, OP_COMMIT, OP_RELEASE, OP_INFO };

typedef struct job_args {
    const char *job;
    const char *note; /* commit: why the charge is what it is (NULL: none) */
    int op;
    int64_t n; /* lease_s for renew, credits for commit */
    cm_ledger_job **out;
} job_args;

/* The reserve's note, from its journal row ("reserved" when none was given). */
static int take_note(void *ctx, const cm_sv *cols, int ncols)
{
    cm_ledger_job *j = ctx;
    if (ncols >= 1 && cols[0].type == CM_SV_TEXT && strcmp(cols[0].s, "reserved") != 0) {
        free(j->note);
        j->note = dup_str(cols[0].s);
    }
    return 0;
}

/* Bring the workspace of hold h up to now and read h again if that lapsed a hold (it
 * may have been this one). */
static int touch_reload(cm_tx *tx, const char *job, cm_hold_row *h)
{
    int found;
    int64_t lapsed = tx->stats.holds_lapsed;
    int rc = cm__touch_job(tx, h->ws, job);
    if (!rc && tx->stats.holds_lapsed != lapsed)
        rc = cm__hold_get(tx, job, h, &found);
    return rc;
}

/* Find the hold and bring its workspace up to now (which may lapse it). */
static int load_hold(cm_tx *tx, const char *job, cm_hold_row *h)
{
    int found;
    int rc = cm__hold_get(tx, job, h, &found);
    if (!rc && !found)
        return cm__ledger_fail(tx->l, CM_LEDGER_E_NO_JOB, "no hold was ever made for job '%s'",
                               job);
    return rc ? rc : touch_reload(tx, job, h);
}

/* The reads of a job call's usual path, in its order: the hold, its workspace's state
 * (by the job: the workspace is not known yet), and for commit and release the takes
 * with their grants. */
static int job_pre(cm_tx *tx, void *arg)
{
    job_args *a = arg;
    int rc = CM_PREFETCH(tx, CM_Q_HOLD_GET, CM_T(a->job));
    if (!rc)
        rc = CM_PREFETCH(tx, CM_Q_TOUCH_STATE_JOB, CM_T(a->job), cm__clock_sv(tx));
    if (!rc && a->out) /* the job for the caller (job_body) */
        rc = CM_PREFETCH(tx, CM_Q_TAKES_OF, CM_T(a->job));
    if (!rc && a->out)
        rc = CM_PREFETCH(tx, CM_Q_HOLD_EXTRA, CM_T(a->job));
    if (!rc && (a->op == OP_COMMIT || a->op == OP_RELEASE))
        rc = CM_PREFETCH(tx, CM_Q_TAKES_GRANTS, CM_T(a->job));
    return rc;
}

/* What the call does to hold h (read and brought up to now). */
static int job_op(cm_tx *tx, job_args *a, cm_hold_row *hp)
{
    cm_hold_row h = *hp;
    int rc = CM_LEDGER_OK;
    char when[40];
    switch (a->op) {
    case OP_INFO:
        break;
    case OP_RENEW:
        if (h.state == CM_LEDGER_LAPSED)
            return cm__ledger_fail(
                tx->l, CM_LEDGER_E_LEASE_EXPIRED,
                "job '%s': its lease lapsed at %s and its %lld credits were released", a->job,
                cm_ledger_time_format(h.lease_until_ms, when, sizeof when), (long long)h.credits);
        if (h.state != CM_LEDGER_HELD)
            return cm__ledger_fail(tx->l, CM_LEDGER_E_ALREADY_RESOLVED,
                                   "job '%s' was already %s; there is no lease to renew", a->job,
                                   cm_ledger_hold_state_name(h.state));
        h.lease_until_ms = tx->now + a->n * 1000;
        rc = CM_RUN(tx, CM_Q_HOLD_RENEW, NULL, NULL, CM_T(a->job), CM_I(h.lease_until_ms));
        break;
    case OP_COMMIT: {
        int64_t want = a->n == CM_LEDGER_ALL ? h.credits : a->n;
        if (h.state == CM_LEDGER_COMMITTED) {
            if (want != h.commit_arg)
                return cm__ledger_fail(tx->l, CM_LEDGER_E_CONFLICT,
                                       "job '%s' was already committed for %lld credits, not %lld",
                                       a->job, (long long)h.commit_arg, (long long)want);
            break; /* a retry: the first result */
        }
        if (h.state == CM_LEDGER_RELEASED)
            return cm__ledger_fail(tx->l, CM_LEDGER_E_ALREADY_RESOLVED,
                                   "job '%s' was released; it cannot be committed", a->job);
        if (h.state == CM_LEDGER_LAPSED)
            return cm__ledger_fail(
                tx->l, CM_LEDGER_E_LEASE_EXPIRED,
                "job '%s': its lease lapsed at %s and its credits were released; it "
                "cannot be committed",
                a->job, cm_ledger_time_format(h.lease_until_ms, when, sizeof when));
        if (want > h.credits)
            return cm__ledger_fail(tx->l, CM_LEDGER_E_INVALID,
                                   "job '%s' holds %lld credits; it cannot be charged %lld", a->job,
                                   (long long)h.credits, (long long)want);
        rc = cm__hold_resolve_noted(tx, &h, want, CM_LEDGER_COMMITTED, tx->now, h.user, a->note);
        break;
    }
    case OP_RELEASE:
        if (h.state == CM_LEDGER_COMMITTED)
            return cm__ledger_fail(tx->l, CM_LEDGER_E_ALREADY_RESOLVED,
                                   "job '%s' was committed for %lld credits; it cannot be released "
                                   "(refund it instead)",
                                   a->job, (long long)h.charged);
        if (h.state == CM_LEDGER_HELD)
            rc = cm__hold_resolve(tx, &h, 0, CM_LEDGER_RELEASED, tx->now, h.user);
        break;
    }
    *hp = h;
    return rc;
}

static int job_body(cm_tx *tx, void *arg)
{
    job_args *a = arg;
    cm_hold_row h;
    int rc = load_hold(tx, a->job, &h);
    if (rc)
        return rc;
    /* The job for the caller is read before the call writes anything, so that the reads
     * declared for it still answer (job_parts says why that reads the same). */
    job_parts parts;
    if (a->out && (rc = parts_read(tx, a->job, &parts)) != 0)
        return rc;
    rc = job_op(tx, a, &h);
    if (rc) {
        if (a->out)
            parts_free(&parts);
        return rc;
    }
    rc = finish_parts(tx, &h, a->out ? &parts : NULL, a->out, a->op == OP_INFO);
    if (!rc && a->op == OP_INFO && a->out && *a->out && !(*a->out)->note) {
        /* a hold from before schema 3 kept its note only in the journal */
        rc = CM_RUN(tx, CM_Q_HOLD_NOTE, take_note, *a->out, CM_T(h.ws), CM_T(h.job));
    }
    return rc;
}

static int job_call(cm_ledger *l, const char *job, int op, int64_t n, const char *note,
                    cm_ledger_job **out)
{
    if (out)
        *out = NULL;
    int rc = cm__valid_id(l, "the job id", job);
    if (rc)
        return rc;
    job_args a = {job, note, op, n, out};
    return cm__tx_run_pre(l, 1, CM_LOCK_JOB, job, job_pre, job_body, &a);
}

int cm_ledger_renew(cm_ledger *l, const char *job, int64_t lease_s, cm_ledger_job **out)
{
    int rc = check_lease(l, &lease_s);
    if (rc) {
        if (out)
            *out = NULL;
        return rc;
    }
    return job_call(l, job, OP_RENEW, lease_s, NULL, out);
}

int cm_ledger_commit(cm_ledger *l, const char *job, int64_t credits, cm_ledger_job **out)
{
    return cm_ledger_commit_noted(l, job, credits, NULL, out);
}

int cm_ledger_commit_noted(cm_ledger *l, const char *job, int64_t credits, const char *note,
                           cm_ledger_job **out)
{
    if (out)
        *out = NULL;
    if (credits == 0)
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID,
                               "a charge of 0 credits is not a charge: release job '%s' instead",
                               job && cm__text_plain(job) ? job : "(invalid id)");
    if (credits < 0 && credits != CM_LEDGER_ALL)
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID, "credits to commit must not be negative");
    if (note && (!*note || strlen(note) > CM_TEXT_MAX || !cm__text_plain(note)))
        return cm__ledger_fail(
            l, CM_LEDGER_E_INVALID,
            "the commit note must be UTF-8 text of 1 to %d bytes without control "
            "characters",
            CM_TEXT_MAX);
    return job_call(l, job, OP_COMMIT, credits, note, out);
}

int cm_ledger_release(cm_ledger *l, const char *job, cm_ledger_job **out)
{
    return job_call(l, job, OP_RELEASE, 0, NULL, out);
}

int cm_ledger_job_info(cm_ledger *l, const char *job, cm_ledger_job **out)
{
    if (!out)
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID, "cm_ledger_job_info: out is NULL");
    return job_call(l, job, OP_INFO, 0, NULL, out);
}
