/* SPDX-License-Identifier: MIT */
/*
 * ledger_refund.c - reimbursing committed charges.
 *
 * A refund never exceeds what the hold was charged minus what was refunded already
 * (holds.refunded; per take, what was refunded of it never exceeds what was charged of
 * it, cm__takes_of). The credits go back to the grants they were charged from,
 * last-charged first; a grant that has expired does not take credits back (they would
 * be lost again): that part goes into one new non-expiring refund grant. With a
 * reference, a refund is recorded in `refunds` and a repeat of the reference replays the
 * first result.
 */
#include "ledger_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct refund_args {
    const char *job, *reason, *operator_id, *ref;
    int64_t credits;
    cm_ledger_refund_result *out;
} refund_args;

typedef struct refund_row {
    int found;
    char job[CM_ID_MAX + 1];
    int64_t credits, to_source, grant_id, total;
} refund_row;

static int cb_refund(void *ctx, const cm_sv *c, int n)
{
    refund_row *r = ctx;
    (void)n;
    r->found = 1;
    cm__copy_text(r->job, sizeof r->job, &c[0]);
    r->credits = c[1].i;
    r->to_source = c[2].i;
    r->grant_id = cm__int_or(&c[3], -1);
    r->total = c[4].i;
    return 1;
}

static int refund_body(cm_tx *tx, void *arg)
{
    refund_args *a = arg;
    int rc;
    if (a->ref) {
        refund_row r = {0};
        rc = CM_RUN(tx, CM_Q_REFUND_GET, cb_refund, &r, CM_T(a->ref));
        if (rc)
            return rc;
        if (r.found) {
            if (strcmp(r.job, a->job) != 0 ||
                (a->credits != CM_LEDGER_ALL && a->credits != r.credits))
                return cm__ledger_fail(tx->l, CM_LEDGER_E_CONFLICT,
                                       "refund reference '%s' was already used for another refund",
                                       a->ref);
            *a->out = (cm_ledger_refund_result){r.credits, r.to_source, r.grant_id, r.total, 1};
            return CM_LEDGER_OK;
        }
    }
    cm_hold_row h;
    int found;
    rc = cm__hold_get(tx, a->job, &h, &found);
    if (!rc && !found)
        return cm__ledger_fail(tx->l, CM_LEDGER_E_NO_JOB, "no hold was ever made for job '%s'",
                               a->job);
    if (rc)
        return rc;
    int64_t lapsed = tx->stats.holds_lapsed;
    rc = cm__touch(tx, h.ws);
    if (!rc && tx->stats.holds_lapsed != lapsed) /* it may have been this one */
        rc = cm__hold_get(tx, a->job, &h, &found);
    if (rc)
        return rc;
    if (h.state != CM_LEDGER_COMMITTED)
        return cm__ledger_fail(tx->l, CM_LEDGER_E_INVALID,
                               "job '%s' was not charged (it is %s): there is nothing to refund",
                               a->job, cm_ledger_hold_state_name(h.state));
    int64_t refundable = h.charged - h.refunded;
    int64_t want = a->credits == CM_LEDGER_ALL ? refundable : a->credits;
    if (refundable == 0)
        return cm__ledger_fail(
            tx->l, CM_LEDGER_E_INVALID,
            "job '%s' was charged %lld credits and all of them were refunded already", a->job,
            (long long)h.charged);
    if (want > refundable)
        return cm__ledger_fail(
            tx->l, CM_LEDGER_E_INVALID,
            "job '%s' was charged %lld credits and %lld were refunded already: at "
            "most %lld more can be refunded, not %lld",
            a->job, (long long)h.charged, (long long)h.refunded, (long long)refundable,
            (long long)want);

    cm_take_vec t;
    rc = cm__takes_of(tx, &h, &t);
    if (rc)
        return rc;
    int64_t left = want, to_source = 0, to_new = 0;
    for (size_t k = t.n; !rc && left > 0 && k-- > 0;) { /* last-charged first */
        int64_t r = t.v[k].charged - t.v[k].refunded;
        if (r > left)
            r = left;
        if (r <= 0)
            continue;
        left -= r;
        cm_grant_row g;
        rc = cm__grant_get(tx, t.v[k].grant_id, &g);
        if (rc)
            break;
        if (cm__grant_expired(&g, tx->now)) {
            to_new += r;
        } else {
            rc = cm__move(tx, &g, "refund", r, tx->now, a->job, a->operator_id, a->reason, a->ref);
            to_source += r;
        }
    }
    free(t.v);
    if (!rc && left != 0)
        rc = cm__ledger_fail(tx->l, CM_LEDGER_E_STORAGE, "job '%s': its charges do not add up",
                             a->job);
    int64_t grant_id = -1;
    if (!rc && to_new > 0) {
        cm_grant_row g;
        rc = cm__grant_new(tx, h.ws, CM_LEDGER_GRANT_REFUND, tx->now, -1, -1, NULL, 0, 0, NULL, &g);
        if (!rc)
            rc = cm__move(tx, &g, "refund", to_new, tx->now, a->job, a->operator_id, a->reason,
                          a->ref);
        grant_id = g.id;
    }
    int64_t total = h.refunded + want;
    if (!rc)
        rc = CM_RUN(tx, CM_Q_HOLD_SET_REFUNDED, NULL, NULL, CM_T(a->job), CM_I(total));
    if (!rc && a->ref)
        rc = CM_RUN(tx, CM_Q_REFUND_INSERT, NULL, NULL, CM_T(a->ref), CM_T(a->job), CM_I(want),
                    CM_I(to_source), grant_id >= 0 ? CM_I(grant_id) : CM_N, CM_I(total),
                    CM_I(tx->now));
    if (!rc)
        rc = cm__event_refund(tx, h.ws, a->job, want, to_source, grant_id, total, a->reason,
                              a->operator_id, a->ref);
    if (!rc)
        *a->out = (cm_ledger_refund_result){want, to_source, grant_id, total, 0};
    return rc;
}

int cm_ledger_refund(cm_ledger *l, const char *job, int64_t credits, const char *reason,
                     const char *operator_id, const char *ref, cm_ledger_refund_result *out)
{
    int rc = cm__valid_id(l, "the job id", job);
    if (!rc)
        rc = cm__valid_id(l, "the operator", operator_id);
    if (!rc && ref)
        rc = cm__valid_id(l, "the refund reference", ref);
    if (rc)
        return rc;
    if (!reason || !*reason || strlen(reason) > CM_TEXT_MAX || !cm__text_plain(reason))
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID,
                               "a refund needs a reason (UTF-8, up to %d bytes)", CM_TEXT_MAX);
    if (credits <= 0 && credits != CM_LEDGER_ALL)
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID, "credits to refund must be positive");
    /* copied out only after the COMMIT: a failing call leaves *out untouched */
    cm_ledger_refund_result tmp;
    refund_args a = {job, reason, operator_id, ref, credits, &tmp};
    rc = cm__tx_run_locked(l, 1, CM_LOCK_JOB, job, refund_body, &a);
    if (!rc && out)
        *out = tmp;
    return rc;
}
