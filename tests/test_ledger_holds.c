/* SPDX-License-Identifier: MIT */
/* Two-phase holds: spending order, all-or-nothing reserve, idempotency by job id,
 * commit of part or all, release, exactly-once resolution, leases lapsing lazily and
 * in sweep, and credits going back to an expired grant expiring with it. */
#include "ledger_test.h"

/* acme: addon A (5, oldest), plan grant P1 (monthly 6, expires Feb 28), then after a
 * switch to annual on Feb 10 plan grant P2 (12 x 2 = 24, expires 2027-02-10; P1 keeps
 * its expiry), addon B (3). */
static void setup_grants(lt_env *e, const char *name)
{
    lt_open(e, name);
    lt_workspace(e);
    LT_OK(e, cm_ledger_buy(e->l, "acme", 5, "alice", NULL, NULL));
    LT_OK(e, cm_ledger_plan_set(e->l, "acme", 6, CM_LEDGER_MONTHLY, NULL, "alice"));
    lt_at(e, "2026-02-10T00:00:00Z");
    LT_OK(e, cm_ledger_plan_set(e->l, "acme", 2, CM_LEDGER_ANNUAL, NULL, "alice"));
    LT_OK(e, cm_ledger_buy(e->l, "acme", 3, "alice", NULL, NULL));
}

static cm_ledger_job *reserve(lt_env *e, const char *job, int64_t n)
{
    cm_ledger_job *j = NULL;
    LT_OK(e, cm_ledger_reserve(e->l, "acme", job, n, "bob", 60, &j));
    return j;
}

static void test_spending_order_plan_soonest_expiring_then_addons_oldest(void **state)
{
    (void)state;
    lt_env e;
    setup_grants(&e, "order");
    cm_ledger_job *j = reserve(&e, "j1", 37);
    assert_int_equal(j->n_takes, 4);
    int64_t want_credits[4] = {6, 24, 5, 2};
    int want_kind[4] = {CM_LEDGER_GRANT_PLAN, CM_LEDGER_GRANT_PLAN, CM_LEDGER_GRANT_ADDON,
                        CM_LEDGER_GRANT_ADDON};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(j->takes[i].credits, want_credits[i]);
        assert_int_equal(j->takes[i].kind, want_kind[i]);
    }
    assert_true(j->takes[0].expires_ms < j->takes[1].expires_ms);
    assert_true(j->takes[2].grant_id < j->takes[3].grant_id);
    cm_ledger_job_free(j);
    assert_int_equal(lt_available(&e, "acme"), 1);
    assert_int_equal(lt_held(&e, "acme"), 37);
    lt_close(&e);
}

static void test_quote_shows_the_grants_a_reserve_would_take(void **state)
{
    (void)state;
    lt_env e;
    setup_grants(&e, "quote");
    cm_ledger_quote_result *q = NULL;
    LT_OK(&e, cm_ledger_quote(e.l, "acme", 12, "bob", &q));
    assert_int_equal(q->affordable, 1);
    assert_int_equal(q->available, 38);
    assert_int_equal(q->n_takes, 2);
    assert_int_equal(q->takes[0].credits, 6);
    assert_int_equal(q->takes[1].credits, 6);
    cm_ledger_quote_free(q);
    LT_OK(&e, cm_ledger_quote(e.l, "acme", 39, NULL, &q));
    assert_int_equal(q->affordable, 0);
    assert_int_equal(q->n_takes, 0);
    cm_ledger_quote_free(q);
    assert_int_equal(lt_held(&e, "acme"), 0);
    lt_close(&e);
}

static void test_reserve_beyond_available_fails_and_changes_nothing(void **state)
{
    (void)state;
    lt_env e;
    setup_grants(&e, "insufficient");
    cm_ledger_job *j = NULL;
    LT_EXPECT(&e, CM_LEDGER_E_INSUFFICIENT,
              cm_ledger_reserve(e.l, "acme", "big", 39, "bob", 0, &j));
    assert_null(j);
    assert_int_equal(lt_available(&e, "acme"), 38);
    assert_int_equal(lt_held(&e, "acme"), 0);
    LT_EXPECT(&e, CM_LEDGER_E_NO_JOB, cm_ledger_job_info(e.l, "big", &j));
    lt_close(&e);
}

static void test_retried_reserve_returns_the_same_hold(void **state)
{
    (void)state;
    lt_env e;
    setup_grants(&e, "reserveretry");
    cm_ledger_job *a = reserve(&e, "j", 12), *b = reserve(&e, "j", 12);
    assert_int_equal(a->created_ms, b->created_ms);
    assert_int_equal(b->n_takes, a->n_takes);
    cm_ledger_job_free(a);
    cm_ledger_job_free(b);
    assert_int_equal(lt_held(&e, "acme"), 12);
    LT_EXPECT(&e, CM_LEDGER_E_CONFLICT, cm_ledger_reserve(e.l, "acme", "j", 13, "bob", 60, NULL));
    LT_EXPECT(&e, CM_LEDGER_E_CONFLICT, cm_ledger_reserve(e.l, "acme", "j", 12, "alice", 60, NULL));
    LT_EXPECT(&e, CM_LEDGER_E_CONFLICT, cm_ledger_reserve(e.l, "acme", "j", 12, "bob", 61, NULL));
    LT_OK(&e, cm_ledger_commit(e.l, "j", CM_LEDGER_ALL, NULL));
    a = reserve(&e, "j", 12); /* a job id names one hold forever */
    assert_int_equal(a->state, CM_LEDGER_COMMITTED);
    cm_ledger_job_free(a);
    assert_int_equal(lt_held(&e, "acme"), 0);
    assert_int_equal(lt_available(&e, "acme"), 26);
    lt_close(&e);
}

/* Support staff ask why a job cost what it cost: the reserve's note answers, kept with
 * the hold in its journal row. */
static void test_reserve_note_is_kept_for_support(void **state)
{
    (void)state;
    lt_env e;
    setup_grants(&e, "reservenote");
    const char *why = "4 credits for 181.000 s measured by tail_packets (caf\xc3\xa9)";
    LT_OK(&e, cm_ledger_reserve_noted(e.l, "acme", "n1", 4, "bob", 60, why, NULL));
    LT_OK(&e, cm_ledger_commit(e.l, "n1", CM_LEDGER_ALL, NULL));
    cm_ledger_job *j = NULL;
    LT_OK(&e, cm_ledger_job_info(e.l, "n1", &j));
    assert_non_null(j->note);
    assert_string_equal(j->note, why);
    cm_ledger_job_free(j);
    /* a retry is not compared on its note, and keeps the first one */
    LT_OK(&e, cm_ledger_reserve_noted(e.l, "acme", "n1", 4, "bob", 60, "other", NULL));
    LT_OK(&e, cm_ledger_job_info(e.l, "n1", &j));
    assert_string_equal(j->note, why);
    cm_ledger_job_free(j);
    /* without a note there is none */
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "n2", 1, "bob", 60, NULL));
    LT_OK(&e, cm_ledger_job_info(e.l, "n2", &j));
    assert_null(j->note);
    cm_ledger_job_free(j);
    LT_EXPECT(&e, CM_LEDGER_E_INVALID,
              cm_ledger_reserve_noted(e.l, "acme", "n3", 1, "bob", 60, "", NULL));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID,
              cm_ledger_reserve_noted(e.l, "acme", "n3", 1, "bob", 60, "bad\xff", NULL));
    lt_close(&e);
}

static void test_commit_less_gives_back_what_the_hold_took_last(void **state)
{
    (void)state;
    lt_env e;
    setup_grants(&e, "partial");
    cm_ledger_job *j = reserve(&e, "j", 33); /* P1 6, P2 24, A 3 */
    cm_ledger_job_free(j);
    LT_OK(&e, cm_ledger_commit(e.l, "j", 15, &j));
    assert_int_equal(j->state, CM_LEDGER_COMMITTED);
    assert_int_equal(j->charged, 15);
    assert_int_equal(j->takes[0].charged, 6);
    assert_int_equal(j->takes[1].charged, 9);
    assert_int_equal(j->takes[2].charged, 0);
    cm_ledger_job_free(j);
    assert_int_equal(lt_available(&e, "acme"), 38 - 15);
    assert_int_equal(lt_held(&e, "acme"), 0);
    lt_close(&e);
}

static void test_retried_commit_returns_the_first_result(void **state)
{
    (void)state;
    lt_env e;
    setup_grants(&e, "commitretry");
    cm_ledger_job_free(reserve(&e, "j", 10));
    cm_ledger_job_free(reserve(&e, "k", 4));
    LT_OK(&e, cm_ledger_commit(e.l, "j", 6, NULL));
    cm_ledger_job *j = NULL;
    LT_OK(&e, cm_ledger_commit(e.l, "j", 6, &j));
    assert_int_equal(j->charged, 6);
    cm_ledger_job_free(j);
    LT_EXPECT(&e, CM_LEDGER_E_CONFLICT, cm_ledger_commit(e.l, "j", 7, NULL));
    LT_EXPECT(&e, CM_LEDGER_E_CONFLICT, cm_ledger_commit(e.l, "j", CM_LEDGER_ALL, NULL));
    LT_OK(&e, cm_ledger_commit(e.l, "k", CM_LEDGER_ALL, NULL));
    LT_OK(&e, cm_ledger_commit(e.l, "k", 4, NULL)); /* all == the held amount */
    assert_int_equal(lt_available(&e, "acme"), 38 - 10);
    lt_close(&e);
}

static void test_commit_more_than_held_is_invalid(void **state)
{
    (void)state;
    lt_env e;
    setup_grants(&e, "commitmore");
    cm_ledger_job_free(reserve(&e, "j", 10));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_commit(e.l, "j", 11, NULL));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_commit(e.l, "j", -5, NULL));
    assert_int_equal(lt_state(&e, "j"), CM_LEDGER_HELD);
    lt_close(&e);
}

static void test_release_gives_everything_back_and_is_idempotent(void **state)
{
    (void)state;
    lt_env e;
    setup_grants(&e, "release");
    cm_ledger_job_free(reserve(&e, "j", 30));
    LT_OK(&e, cm_ledger_release(e.l, "j", NULL));
    LT_OK(&e, cm_ledger_release(e.l, "j", NULL));
    assert_int_equal(lt_state(&e, "j"), CM_LEDGER_RELEASED);
    assert_int_equal(lt_available(&e, "acme"), 38);
    lt_close(&e);
}

static void test_commit_after_release_and_release_after_commit_are_refused(void **state)
{
    (void)state;
    lt_env e;
    setup_grants(&e, "resolved");
    cm_ledger_job_free(reserve(&e, "r", 3));
    cm_ledger_job_free(reserve(&e, "c", 3));
    LT_OK(&e, cm_ledger_release(e.l, "r", NULL));
    LT_OK(&e, cm_ledger_commit(e.l, "c", 2, NULL));
    LT_EXPECT(&e, CM_LEDGER_E_ALREADY_RESOLVED, cm_ledger_commit(e.l, "r", CM_LEDGER_ALL, NULL));
    LT_EXPECT(&e, CM_LEDGER_E_ALREADY_RESOLVED, cm_ledger_release(e.l, "c", NULL));
    LT_EXPECT(&e, CM_LEDGER_E_ALREADY_RESOLVED, cm_ledger_renew(e.l, "c", 60, NULL));
    LT_EXPECT(&e, CM_LEDGER_E_ALREADY_RESOLVED, cm_ledger_renew(e.l, "r", 60, NULL));
    assert_int_equal(lt_available(&e, "acme"), 36);
    lt_close(&e);
}

static void test_unknown_job_is_no_such_job(void **state)
{
    (void)state;
    lt_env e;
    setup_grants(&e, "nojob");
    LT_EXPECT(&e, CM_LEDGER_E_NO_JOB, cm_ledger_commit(e.l, "ghost", CM_LEDGER_ALL, NULL));
    LT_EXPECT(&e, CM_LEDGER_E_NO_JOB, cm_ledger_release(e.l, "ghost", NULL));
    LT_EXPECT(&e, CM_LEDGER_E_NO_JOB, cm_ledger_renew(e.l, "ghost", 0, NULL));
    LT_EXPECT(&e, CM_LEDGER_E_NO_JOB,
              cm_ledger_refund(e.l, "ghost", 1, "why", "support", NULL, NULL));
    lt_close(&e);
}

static void test_lapsed_lease_releases_the_hold_lazily(void **state)
{
    (void)state;
    lt_env e;
    setup_grants(&e, "lapse");
    cm_ledger_job_free(reserve(&e, "j", 30)); /* lease 60 s */
    e.now_ms += 59 * 1000;
    assert_int_equal(lt_held(&e, "acme"), 30);
    e.now_ms += 1000;
    LT_EXPECT(&e, CM_LEDGER_E_LEASE_EXPIRED, cm_ledger_commit(e.l, "j", CM_LEDGER_ALL, NULL));
    assert_int_equal(lt_state(&e, "j"), CM_LEDGER_LAPSED);
    assert_int_equal(lt_available(&e, "acme"), 38);
    LT_EXPECT(&e, CM_LEDGER_E_LEASE_EXPIRED, cm_ledger_renew(e.l, "j", 60, NULL));
    LT_OK(&e, cm_ledger_release(e.l, "j", NULL)); /* it was given back already */
    LT_EXPECT(&e, CM_LEDGER_E_LEASE_EXPIRED, cm_ledger_commit(e.l, "j", CM_LEDGER_ALL, NULL));
    lt_close(&e);
}

static void test_renew_extends_the_lease(void **state)
{
    (void)state;
    lt_env e;
    setup_grants(&e, "renew");
    cm_ledger_job_free(reserve(&e, "j", 5));
    for (int i = 0; i < 5; i++) {
        e.now_ms += 50 * 1000;
        cm_ledger_job *j = NULL;
        LT_OK(&e, cm_ledger_renew(e.l, "j", 60, &j));
        assert_int_equal(j->lease_until_ms, e.now_ms + 60000);
        cm_ledger_job_free(j);
    }
    LT_OK(&e, cm_ledger_commit(e.l, "j", CM_LEDGER_ALL, NULL));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_renew(e.l, "j", -1, NULL));
    lt_close(&e);
}

static void test_sweep_lapses_holds_of_every_workspace(void **state)
{
    (void)state;
    lt_env e;
    setup_grants(&e, "sweeplapse");
    LT_OK(&e, cm_ledger_workspace_create(e.l, "beta", "bea", NULL));
    LT_OK(&e, cm_ledger_buy(e.l, "beta", 4, "bea", NULL, NULL));
    cm_ledger_job_free(reserve(&e, "j1", 5));
    LT_OK(&e, cm_ledger_reserve(e.l, "beta", "j2", 4, "bea", 10, NULL));
    e.now_ms += 61 * 1000;
    cm_ledger_sweep_stats s;
    LT_OK(&e, cm_ledger_sweep(e.l, &s));
    assert_int_equal(s.holds_lapsed, 2);
    LT_OK(&e, cm_ledger_sweep(e.l, &s));
    assert_int_equal(s.holds_lapsed, 0);
    assert_int_equal(lt_available(&e, "beta"), 4);
    lt_close(&e);
}

static void test_release_after_grant_expired_forfeits(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "expirehold");
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_plan_set(e.l, "acme", 10, CM_LEDGER_MONTHLY, NULL, "alice"));
    lt_at(&e, "2026-02-28T11:00:00Z");
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "j", 8, "bob", 7200, NULL));
    lt_at(&e, "2026-02-28T12:30:00Z"); /* period over: 2 expired, 10 new */
    assert_int_equal(lt_available(&e, "acme"), 10);
    assert_int_equal(lt_held(&e, "acme"), 8);
    LT_OK(&e, cm_ledger_release(e.l, "j", NULL));
    assert_int_equal(lt_available(&e, "acme"), 10); /* the 8 expired with their grant */
    lt_close(&e);
}

static void test_commit_after_grant_expired_charges_and_returns_nothing(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "expirecommit");
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_plan_set(e.l, "acme", 10, CM_LEDGER_MONTHLY, NULL, "alice"));
    lt_at(&e, "2026-02-28T11:00:00Z");
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "j", 8, "bob", 7200, NULL));
    lt_at(&e, "2026-02-28T12:30:00Z");
    cm_ledger_job *j = NULL;
    LT_OK(&e, cm_ledger_commit(e.l, "j", 5, &j));
    assert_int_equal(j->charged, 5);
    cm_ledger_job_free(j);
    assert_int_equal(lt_available(&e, "acme"), 10);
    assert_int_equal(lt_held(&e, "acme"), 0);
    lt_close(&e);
}

static void test_lease_lapsing_after_grant_expiry_forfeits(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "lapseexpire");
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_plan_set(e.l, "acme", 10, CM_LEDGER_MONTHLY, NULL, "alice"));
    lt_at(&e, "2026-02-28T11:59:00Z");
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "j", 10, "bob", 120, NULL));
    lt_at(&e, "2026-03-01T00:00:00Z");
    LT_OK(&e, cm_ledger_sweep(e.l, NULL));
    assert_int_equal(lt_available(&e, "acme"), 10);
    assert_int_equal(lt_state(&e, "j"), CM_LEDGER_LAPSED);
    lt_close(&e);
}

/* Issue 15: a pipeline's keepalive renews all its jobs in one transaction; each job
 * gets its own result, and one job's refusal does not stop the others. */
static void test_renew_many_renews_every_held_hold_and_reports_each_job(void **state)
{
    (void)state;
    lt_env e;
    setup_grants(&e, "renewmany");
    int64_t t0 = lt_time("2026-02-10T00:00:00Z");
    cm_ledger_job_free(reserve(&e, "a", 1)); /* lease 60 s */
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "b", 1, "bob", 600, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "done", 1, "bob", 60, NULL));
    LT_OK(&e, cm_ledger_commit(e.l, "done", CM_LEDGER_ALL, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "short", 1, "bob", 10, NULL));
    lt_at(&e, "2026-02-10T00:00:30Z"); /* "short" lapsed at :10 */
    const char *jobs[] = {"a", "b", "done", "short", "nope", "bad\nid"};
    int res[6];
    LT_OK(&e, cm_ledger_renew_many(e.l, jobs, 6, 120, res));
    assert_int_equal(res[0], CM_LEDGER_OK);
    assert_int_equal(res[1], CM_LEDGER_OK);
    assert_int_equal(res[2], CM_LEDGER_E_ALREADY_RESOLVED);
    assert_int_equal(res[3], CM_LEDGER_E_LEASE_EXPIRED);
    assert_int_equal(lt_state(&e, "short"), CM_LEDGER_LAPSED);
    assert_int_equal(res[4], CM_LEDGER_E_NO_JOB);
    assert_int_equal(res[5], CM_LEDGER_E_INVALID);
    cm_ledger_job *j = NULL;
    LT_OK(&e, cm_ledger_job_info(e.l, "a", &j));
    assert_int_equal(j->lease_until_ms, t0 + 30000 + 120000);
    cm_ledger_job_free(j);
    LT_OK(&e, cm_ledger_job_info(e.l, "b", &j));
    assert_int_equal(j->lease_until_ms, t0 + 30000 + 120000);
    cm_ledger_job_free(j);
    /* 0: the default lease, as cm_ledger_renew */
    LT_OK(&e, cm_ledger_renew_many(e.l, jobs, 1, 0, res));
    LT_OK(&e, cm_ledger_job_info(e.l, "a", &j));
    assert_int_equal(j->lease_until_ms, t0 + 30000 + CM_LEDGER_DEFAULT_LEASE_S * 1000);
    cm_ledger_job_free(j);
    /* nothing to do, and bad arguments */
    LT_OK(&e, cm_ledger_renew_many(e.l, NULL, 0, 0, NULL));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_renew_many(e.l, jobs, 2, 0, NULL));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_renew_many(e.l, jobs, 2, -1, res));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID,
              cm_ledger_renew_many(e.l, jobs, CM_LEDGER_RENEW_MANY_MAX + 1, 0, res));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_renew_many(NULL, jobs, 0, 0, res));
    lt_close(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_renew_many_renews_every_held_hold_and_reports_each_job),
        cmocka_unit_test(test_spending_order_plan_soonest_expiring_then_addons_oldest),
        cmocka_unit_test(test_quote_shows_the_grants_a_reserve_would_take),
        cmocka_unit_test(test_reserve_beyond_available_fails_and_changes_nothing),
        cmocka_unit_test(test_retried_reserve_returns_the_same_hold),
        cmocka_unit_test(test_reserve_note_is_kept_for_support),
        cmocka_unit_test(test_commit_less_gives_back_what_the_hold_took_last),
        cmocka_unit_test(test_retried_commit_returns_the_first_result),
        cmocka_unit_test(test_commit_more_than_held_is_invalid),
        cmocka_unit_test(test_release_gives_everything_back_and_is_idempotent),
        cmocka_unit_test(test_commit_after_release_and_release_after_commit_are_refused),
        cmocka_unit_test(test_unknown_job_is_no_such_job),
        cmocka_unit_test(test_lapsed_lease_releases_the_hold_lazily),
        cmocka_unit_test(test_renew_extends_the_lease),
        cmocka_unit_test(test_sweep_lapses_holds_of_every_workspace),
        cmocka_unit_test(test_release_after_grant_expired_forfeits),
        cmocka_unit_test(test_commit_after_grant_expired_charges_and_returns_nothing),
        cmocka_unit_test(test_lease_lapsing_after_grant_expiry_forfeits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
