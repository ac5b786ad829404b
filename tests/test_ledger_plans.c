/* SPDX-License-Identifier: MIT */
/* Plans: monthly and annual grants, calendar periods from the start instant, periods
 * granted when time passes (on touch and by sweep) and never twice, each period in
 * between granted and expired in order, ledger time never running backwards, and the
 * rules of plan changes (issue 12): upgrade, downgrade, monthly <-> annual, relabel,
 * cancel and resubscribe, replayed references, plan show. */
#include "ledger_test.h"

#include <time.h>

static void setup_plan(lt_env *e, const char *name, int64_t n, int interval)
{
    lt_open(e, name);
    lt_workspace(e);
    LT_OK(e, cm_ledger_plan_set(e->l, "acme", n, interval, "pro", "alice"));
}

static int64_t first_expiry(lt_env *e)
{
    cm_ledger_balance_result *b = NULL;
    LT_OK(e, cm_ledger_balance(e->l, "acme", NULL, &b));
    assert_true(b->n_grants >= 1);
    int64_t x = b->grants[0].expires_ms;
    cm_ledger_balance_free(b);
    return x;
}

static void test_monthly_plan_grants_n_expiring_at_period_end(void **state)
{
    (void)state;
    lt_env e;
    setup_plan(&e, "monthly", 100, CM_LEDGER_MONTHLY);
    assert_int_equal(lt_available(&e, "acme"), 100);
    assert_int_equal(first_expiry(&e), lt_time("2026-02-28T12:00:00Z"));
    lt_at(&e, "2026-02-28T11:59:59Z");
    assert_int_equal(lt_available(&e, "acme"), 100);
    lt_close(&e);
}

static void test_unused_monthly_credits_do_not_roll_over(void **state)
{
    (void)state;
    lt_env e;
    setup_plan(&e, "rollover", 100, CM_LEDGER_MONTHLY);
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "j1", 30, "bob", 60, NULL));
    LT_OK(&e, cm_ledger_commit(e.l, "j1", CM_LEDGER_ALL, NULL));
    lt_at(&e, "2026-02-28T12:00:00Z");
    assert_int_equal(lt_available(&e, "acme"), 100); /* 70 expired, 100 new */
    lt_close(&e);
}

static void test_periods_from_jan_31_end_feb_28_then_mar_31(void **state)
{
    (void)state;
    lt_env e;
    setup_plan(&e, "jan31", 10, CM_LEDGER_MONTHLY);
    lt_at(&e, "2026-02-28T12:00:00Z");
    assert_int_equal(first_expiry(&e), lt_time("2026-03-31T12:00:00Z"));
    lt_at(&e, "2026-03-31T12:00:00Z");
    assert_int_equal(first_expiry(&e), lt_time("2026-04-30T12:00:00Z"));
    lt_at(&e, "2026-04-30T12:00:00Z");
    assert_int_equal(first_expiry(&e), lt_time("2026-05-31T12:00:00Z"));
    lt_close(&e);
}

static void test_period_is_granted_once_however_often_touched(void **state)
{
    (void)state;
    lt_env e;
    setup_plan(&e, "once", 10, CM_LEDGER_MONTHLY);
    lt_at(&e, "2026-03-01T00:00:00Z");
    for (int i = 0; i < 5; i++)
        assert_int_equal(lt_available(&e, "acme"), 10);
    cm_ledger_sweep_stats s;
    LT_OK(&e, cm_ledger_sweep(e.l, &s));
    assert_int_equal(s.periods_granted, 0);
    lt_close(&e);
}

static void test_sweep_grants_new_periods_and_expires_old(void **state)
{
    (void)state;
    lt_env e;
    setup_plan(&e, "sweep", 10, CM_LEDGER_MONTHLY);
    lt_at(&e, "2026-02-28T12:00:00Z");
    cm_ledger_sweep_stats s;
    LT_OK(&e, cm_ledger_sweep(e.l, &s));
    assert_int_equal(s.periods_granted, 1);
    assert_int_equal(s.credits_expired, 10);
    LT_OK(&e, cm_ledger_sweep(e.l, &s));
    assert_int_equal(s.periods_granted, 0);
    assert_int_equal(s.credits_expired, 0);
    lt_close(&e);
}

static void test_annual_plan_grants_twelve_times_n_for_twelve_months(void **state)
{
    (void)state;
    lt_env e;
    setup_plan(&e, "annual", 50, CM_LEDGER_ANNUAL);
    assert_int_equal(lt_available(&e, "acme"), 600);
    assert_int_equal(first_expiry(&e), lt_time("2027-01-31T12:00:00Z"));
    lt_at(&e, "2026-12-31T00:00:00Z");
    assert_int_equal(lt_available(&e, "acme"), 600);
    lt_at(&e, "2027-01-31T12:00:00Z");
    assert_int_equal(lt_available(&e, "acme"), 600);
    assert_int_equal(first_expiry(&e), lt_time("2028-01-31T12:00:00Z"));
    lt_close(&e);
}

static void test_setting_the_active_plan_again_grants_nothing(void **state)
{
    (void)state;
    lt_env e;
    setup_plan(&e, "replan", 10, CM_LEDGER_MONTHLY);
    LT_OK(&e, cm_ledger_plan_set(e.l, "acme", 10, CM_LEDGER_MONTHLY, "pro", "alice"));
    assert_int_equal(lt_available(&e, "acme"), 10);
    lt_close(&e);
}

static void test_cancelled_plan_grants_no_further_periods(void **state)
{
    (void)state;
    lt_env e;
    setup_plan(&e, "cancel", 10, CM_LEDGER_MONTHLY);
    lt_at(&e, "2026-02-01T00:00:00Z");
    LT_OK(&e, cm_ledger_plan_cancel(e.l, "acme", "alice"));
    LT_OK(&e, cm_ledger_plan_cancel(e.l, "acme", "alice")); /* a retry */
    assert_int_equal(lt_available(&e, "acme"), 10);         /* current grant keeps expiry */
    lt_at(&e, "2026-05-01T00:00:00Z");
    assert_int_equal(lt_available(&e, "acme"), 0);
    lt_close(&e);
}

static void test_only_the_owner_sets_or_cancels_the_plan(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "planowner");
    lt_workspace(&e);
    LT_EXPECT(&e, CM_LEDGER_E_FORBIDDEN,
              cm_ledger_plan_set(e.l, "acme", 10, CM_LEDGER_MONTHLY, NULL, "bob"));
    LT_EXPECT(&e, CM_LEDGER_E_NO_WORKSPACE,
              cm_ledger_plan_set(e.l, "acme", 10, CM_LEDGER_MONTHLY, NULL, "mallory"));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_plan_cancel(e.l, "acme", "alice"));
    LT_OK(&e, cm_ledger_plan_set(e.l, "acme", 10, CM_LEDGER_MONTHLY, NULL, "alice"));
    LT_EXPECT(&e, CM_LEDGER_E_FORBIDDEN, cm_ledger_plan_cancel(e.l, "acme", "bob"));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID,
              cm_ledger_plan_set(e.l, "acme", 0, CM_LEDGER_MONTHLY, NULL, "alice"));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_plan_set(e.l, "acme", 10, 7, NULL, "alice"));
    lt_close(&e);
}

/* ---- one clock: every period in between is granted and expired in order ---- */

/* The journal of acme in order; fails unless its times never decrease. */
static cm_ledger_history_result *history_in_time_order(lt_env *e, const char *ws)
{
    cm_ledger_history_result *h = NULL;
    LT_OK(e, cm_ledger_history(e->l, ws, NULL, &h));
    for (size_t i = 1; i < h->n_entries; i++)
        if (h->entries[i].at_ms < h->entries[i - 1].at_ms)
            fail_msg("journal row %lld (%s) is dated before row %lld (%s)",
                     (long long)h->entries[i].id, h->entries[i].kind,
                     (long long)h->entries[i - 1].id, h->entries[i - 1].kind);
    return h;
}

static void test_months_in_between_are_granted_and_expired_in_order(void **state)
{
    (void)state;
    lt_env e;
    setup_plan(&e, "skip", 10, CM_LEDGER_MONTHLY);
    lt_at(&e, "2026-06-15T00:00:00Z");
    assert_int_equal(lt_available(&e, "acme"), 10);
    assert_int_equal(first_expiry(&e), lt_time("2026-06-30T12:00:00Z"));
    cm_ledger_history_result *h = history_in_time_order(&e, "acme");
    /* Periods 0..4 (Jan 31, Feb 28, Mar 31, Apr 30, May 31): each granted at its start,
     * and each but the last expired at its end, right before the next is granted. */
    const char *want[] = {"grant",  "expiry", "grant",  "expiry", "grant",
                          "expiry", "grant",  "expiry", "grant"};
    const char *at[] = {"2026-01-31T12:00:00Z", "2026-02-28T12:00:00Z", "2026-02-28T12:00:00Z",
                        "2026-03-31T12:00:00Z", "2026-03-31T12:00:00Z", "2026-04-30T12:00:00Z",
                        "2026-04-30T12:00:00Z", "2026-05-31T12:00:00Z", "2026-05-31T12:00:00Z"};
    size_t k = 0;
    for (size_t i = 0; i < h->n_entries; i++) {
        if (strcmp(h->entries[i].kind, "grant") && strcmp(h->entries[i].kind, "expiry"))
            continue;
        assert_true(k < 9);
        assert_string_equal(h->entries[i].kind, want[k]);
        assert_int_equal(h->entries[i].at_ms, lt_time(at[k]));
        assert_int_equal(h->entries[i].credits, 10);
        k++;
    }
    assert_int_equal(k, 9);
    cm_ledger_history_free(h);
    lt_close(&e);
}

/* Reproduction (issue 12): one call with the clock in 2030 granted "plan period 53" and
 * left a 2026 workspace with no grants for February and March. */
static void test_clock_years_ahead_grants_every_period_in_between(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "year2030");
    lt_at(&e, "2026-01-01T00:00:00Z"); /* before the workspace: time never runs back */
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_plan_set(e.l, "acme", 10, CM_LEDGER_MONTHLY, NULL, "alice"));
    lt_at(&e, "2030-06-15T00:00:00Z");
    assert_int_equal(lt_available(&e, "acme"), 10);
    cm_ledger_history_result *h = history_in_time_order(&e, "acme");
    int64_t next = 0;
    for (size_t i = 0; i < h->n_entries; i++) {
        if (strcmp(h->entries[i].kind, "grant"))
            continue;
        char why[64];
        snprintf(why, sizeof why, "plan period %lld", (long long)next);
        assert_string_equal(h->entries[i].reason, why);
        char month[40];
        snprintf(month, sizeof month, "%04lld-%02lld-01T00:00:00Z", (long long)(2026 + next / 12),
                 (long long)(next % 12 + 1));
        assert_int_equal(h->entries[i].at_ms, lt_time(month));
        next++;
    }
    assert_int_equal(next, 54); /* Jan 2026 .. Jun 2030 */
    cm_ledger_history_free(h);
    lt_close(&e);
}

static void test_clock_beyond_the_catch_up_horizon_is_invalid(void **state)
{
    (void)state;
    lt_env e;
    setup_plan(&e, "horizon", 10, CM_LEDGER_MONTHLY);
    lt_at(&e, "2200-01-01T00:00:00Z");
    cm_ledger_balance_result *b = NULL;
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_balance(e.l, "acme", NULL, &b));
    assert_null(b);
    assert_non_null(strstr(cm_ledger_errmsg(e.l), "check the clock"));
    lt_at(&e, "2026-02-01T00:00:00Z"); /* nothing was granted meanwhile */
    assert_int_equal(lt_available(&e, "acme"), 10);
    assert_int_equal(first_expiry(&e), lt_time("2026-02-28T12:00:00Z"));
    lt_close(&e);
}

/* Reproduction (issue 12): a commit dated an hour before its reserve was accepted. */
static void test_a_clock_behind_the_journal_is_dated_at_the_journal(void **state)
{
    (void)state;
    lt_env e;
    setup_plan(&e, "backwards", 10, CM_LEDGER_MONTHLY);
    lt_at(&e, "2026-02-10T12:00:00Z");
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "j", 3, "bob", 600, NULL));
    lt_at(&e, "2026-02-10T11:00:00Z"); /* another machine, an hour behind */
    cm_ledger_job *j = NULL;
    LT_OK(&e, cm_ledger_commit(e.l, "j", 2, &j));
    assert_int_equal(j->created_ms, lt_time("2026-02-10T12:00:00Z"));
    assert_int_equal(j->resolved_ms, lt_time("2026-02-10T12:00:00Z"));
    cm_ledger_job_free(j);
    LT_OK(&e, cm_ledger_member_add(e.l, "acme", "carol", "alice"));
    cm_ledger_history_free(history_in_time_order(&e, "acme"));
    lt_close(&e);
}

/* A lapse is dated at its lease end; credits it gives back to a grant that expires
 * later expire at that grant's end, after the lapse, in time order. */
static void test_lapse_and_expiry_are_dated_when_they_happened(void **state)
{
    (void)state;
    lt_env e;
    setup_plan(&e, "lapsedated", 10, CM_LEDGER_MONTHLY);
    lt_at(&e, "2026-02-20T00:00:00Z");
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "j", 4, "bob", 3600, NULL));
    lt_at(&e, "2026-03-05T00:00:00Z");
    cm_ledger_balance_result *b = NULL;
    LT_OK(&e, cm_ledger_balance(e.l, "acme", NULL, &b));
    assert_int_equal(b->available, 10);
    cm_ledger_balance_free(b);
    cm_ledger_history_result *h = history_in_time_order(&e, "acme");
    int seen = 0;
    for (size_t i = 0; i < h->n_entries; i++) {
        const cm_ledger_entry *x = &h->entries[i];
        if (!strcmp(x->kind, "lapse")) {
            assert_int_equal(x->at_ms, lt_time("2026-02-20T01:00:00Z"));
            seen |= 1;
        } else if (!strcmp(x->kind, "expiry")) {
            assert_int_equal(x->at_ms, lt_time("2026-02-28T12:00:00Z"));
            assert_int_equal(x->credits, 10); /* the 4 lapsed back, then all 10 expired */
            assert_int_equal(seen, 1);
            seen |= 2;
        }
    }
    assert_int_equal(seen, 3);
    cm_ledger_history_free(h);
    lt_close(&e);
}

/* ---- plan changes (issue 12, section 1) ---- */

static void spend(lt_env *e, const char *job, int64_t n)
{
    LT_OK(e, cm_ledger_reserve(e->l, "acme", job, n, "bob", 60, NULL));
    LT_OK(e, cm_ledger_commit(e->l, job, CM_LEDGER_ALL, NULL));
}

/* The worked example's start: monthly 100 from Jan 1 00:00 UTC, 30 spent. */
static void worked_example(lt_env *e, const char *name, int64_t n)
{
    lt_open(e, name);
    lt_at(e, "2026-01-01T00:00:00Z");
    lt_workspace(e);
    cm_ledger_plan_result r;
    LT_OK(e, cm_ledger_plan_set_ref(e->l, "acme", n, CM_LEDGER_MONTHLY, NULL, "alice", NULL, &r));
    assert_int_equal(r.outcome, CM_LEDGER_PLAN_STARTED);
    assert_int_equal(r.granted, n);
    lt_at(e, "2026-01-05T00:00:00Z");
    spend(e, "spent", 30);
    assert_int_equal(lt_available(e, "acme"), n - 30);
}

static void assert_all_expire(lt_env *e, const char *iso)
{
    cm_ledger_balance_result *b = NULL;
    LT_OK(e, cm_ledger_balance(e->l, "acme", NULL, &b));
    for (size_t i = 0; i < b->n_grants; i++)
        assert_int_equal(b->grants[i].expires_ms, lt_time(iso));
    cm_ledger_balance_free(b);
}

/* Worked example: upgrade to 300 on Jan 15 -> 270 available (70 + 200, all expiring
 * Feb 1); Feb 1 -> 300 granted. */
static void test_upgrade_mid_month_tops_up_difference(void **state)
{
    (void)state;
    lt_env e;
    worked_example(&e, "upgrade", 100);
    lt_at(&e, "2026-01-15T00:00:00Z");
    cm_ledger_plan_result r;
    LT_OK(&e, cm_ledger_plan_set_ref(e.l, "acme", 300, CM_LEDGER_MONTHLY, NULL, "alice", NULL, &r));
    assert_int_equal(r.outcome, CM_LEDGER_PLAN_UPGRADED);
    assert_int_equal(r.granted, 200);
    assert_int_equal(r.effective_ms, lt_time("2026-01-15T00:00:00Z"));
    assert_int_equal(lt_available(&e, "acme"), 270);
    assert_all_expire(&e, "2026-02-01T00:00:00Z");
    lt_at(&e, "2026-02-01T00:00:00Z");
    assert_int_equal(lt_available(&e, "acme"), 300);
    assert_all_expire(&e, "2026-03-01T00:00:00Z");
    lt_close(&e);
}

/* Worked example: downgrade 300 -> 100 on Jan 20 -> nothing changes until Feb 1, which
 * grants 100. */
static void test_downgrade_waits_for_the_period_boundary(void **state)
{
    (void)state;
    lt_env e;
    worked_example(&e, "downgrade", 300);
    lt_at(&e, "2026-01-20T00:00:00Z");
    cm_ledger_plan_result r;
    LT_OK(&e, cm_ledger_plan_set_ref(e.l, "acme", 100, CM_LEDGER_MONTHLY, NULL, "alice", NULL, &r));
    assert_int_equal(r.outcome, CM_LEDGER_PLAN_DOWNGRADE_SCHEDULED);
    assert_int_equal(r.granted, 0);
    assert_int_equal(r.effective_ms, lt_time("2026-02-01T00:00:00Z"));
    assert_int_equal(lt_available(&e, "acme"), 270);
    lt_at(&e, "2026-01-31T23:59:59Z");
    assert_int_equal(lt_available(&e, "acme"), 270);
    lt_at(&e, "2026-02-01T00:00:00Z");
    assert_int_equal(lt_available(&e, "acme"), 100);
    lt_at(&e, "2026-03-01T00:00:00Z");
    assert_int_equal(lt_available(&e, "acme"), 100);
    lt_close(&e);
}

/* Worked example, chained: after the upgrade of Jan 15 (270), a downgrade 300 -> 100 on
 * Jan 20 changes nothing until Feb 1, which grants 100. */
static void test_upgrade_then_downgrade_grants_the_lower_plan_from_the_boundary(void **state)
{
    (void)state;
    lt_env e;
    worked_example(&e, "updown", 100);
    lt_at(&e, "2026-01-15T00:00:00Z");
    LT_OK(&e, cm_ledger_plan_set(e.l, "acme", 300, CM_LEDGER_MONTHLY, NULL, "alice"));
    lt_at(&e, "2026-01-20T00:00:00Z");
    LT_OK(&e, cm_ledger_plan_set(e.l, "acme", 100, CM_LEDGER_MONTHLY, NULL, "alice"));
    assert_int_equal(lt_available(&e, "acme"), 270);
    lt_at(&e, "2026-02-01T00:00:00Z");
    assert_int_equal(lt_available(&e, "acme"), 100);
    lt_close(&e);
}

/* Worked example: cancel on Jan 10 and set the same plan again on Jan 12 -> still 70,
 * Feb 1 grants 100. */
static void test_cancel_and_resubscribe_before_period_end_grants_nothing(void **state)
{
    (void)state;
    lt_env e;
    worked_example(&e, "resub", 100);
    lt_at(&e, "2026-01-10T00:00:00Z");
    cm_ledger_plan_result r;
    LT_OK(&e, cm_ledger_plan_cancel_ref(e.l, "acme", "alice", NULL, &r));
    assert_int_equal(r.outcome, CM_LEDGER_PLAN_CANCELLED);
    lt_at(&e, "2026-01-12T00:00:00Z");
    LT_OK(&e, cm_ledger_plan_set_ref(e.l, "acme", 100, CM_LEDGER_MONTHLY, NULL, "alice", NULL, &r));
    assert_int_equal(r.outcome, CM_LEDGER_PLAN_RESUMED);
    assert_int_equal(r.resumed, 1);
    assert_int_equal(r.granted, 0);
    assert_int_equal(lt_available(&e, "acme"), 70);
    lt_at(&e, "2026-02-01T00:00:00Z");
    assert_int_equal(lt_available(&e, "acme"), 100);
    lt_close(&e);
}

/* Reproduction (issue 12): plan set 100 monthly tier basic, the same with tier basic2,
 * cancel, set again, within four hours: 100 credits available, not 300. */
static void test_rename_cancel_and_resubscribe_keep_one_allowance(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "tog");
    lt_at(&e, "2026-01-01T00:00:00Z");
    LT_OK(&e, cm_ledger_workspace_create(e.l, "tog", "alice", NULL));
    LT_OK(&e, cm_ledger_plan_set(e.l, "tog", 100, CM_LEDGER_MONTHLY, "basic", "alice"));
    lt_at(&e, "2026-01-01T01:00:00Z");
    cm_ledger_plan_result r;
    LT_OK(&e,
          cm_ledger_plan_set_ref(e.l, "tog", 100, CM_LEDGER_MONTHLY, "basic2", "alice", NULL, &r));
    assert_int_equal(r.outcome, CM_LEDGER_PLAN_RELABELLED);
    assert_int_equal(r.granted, 0);
    lt_at(&e, "2026-01-01T02:00:00Z");
    LT_OK(&e, cm_ledger_plan_cancel(e.l, "tog", "alice"));
    lt_at(&e, "2026-01-01T03:00:00Z");
    LT_OK(&e, cm_ledger_plan_set(e.l, "tog", 100, CM_LEDGER_MONTHLY, "basic2", "alice"));
    assert_int_equal(lt_available(&e, "tog"), 100);
    cm_ledger_plan_info p;
    LT_OK(&e, cm_ledger_plan_show(e.l, "tog", "alice", &p));
    assert_string_equal(p.tier, "basic2");
    assert_int_equal(p.cancelled, 0);
    lt_close(&e);
}

static void test_tier_rename_only_relabels_with_a_journal_row(void **state)
{
    (void)state;
    lt_env e;
    setup_plan(&e, "relabel", 10, CM_LEDGER_MONTHLY);
    LT_OK(&e, cm_ledger_plan_set(e.l, "acme", 10, CM_LEDGER_MONTHLY, "pro-2026", "alice"));
    assert_int_equal(lt_available(&e, "acme"), 10);
    cm_ledger_history_result *h = history_in_time_order(&e, "acme");
    const cm_ledger_entry *last = &h->entries[h->n_entries - 1];
    assert_string_equal(last->kind, "plan_set");
    assert_int_equal(last->credits, 0);
    assert_non_null(strstr(last->reason, "relabelled"));
    cm_ledger_history_free(h);
    lt_close(&e);
}

static void test_annual_upgrade_tops_up_by_whole_months_left(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "annualup");
    lt_at(&e, "2026-01-01T00:00:00Z"); /* before the workspace: time never runs back */
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_plan_set(e.l, "acme", 10, CM_LEDGER_ANNUAL, NULL, "alice"));
    lt_at(&e, "2026-03-15T00:00:00Z"); /* March .. December: 10 months left */
    cm_ledger_plan_result r;
    LT_OK(&e, cm_ledger_plan_set_ref(e.l, "acme", 20, CM_LEDGER_ANNUAL, NULL, "alice", NULL, &r));
    assert_int_equal(r.outcome, CM_LEDGER_PLAN_UPGRADED);
    assert_int_equal(r.granted, 100);
    assert_int_equal(lt_available(&e, "acme"), 220);
    assert_all_expire(&e, "2027-01-01T00:00:00Z");
    lt_at(&e, "2027-01-01T00:00:00Z");
    assert_int_equal(lt_available(&e, "acme"), 240);
    lt_close(&e);
}

static void test_monthly_to_annual_starts_now_and_keeps_the_monthly_grant(void **state)
{
    (void)state;
    lt_env e;
    worked_example(&e, "toannual", 100);
    lt_at(&e, "2026-01-15T00:00:00Z");
    cm_ledger_plan_result r;
    LT_OK(&e, cm_ledger_plan_set_ref(e.l, "acme", 50, CM_LEDGER_ANNUAL, NULL, "alice", NULL, &r));
    assert_int_equal(r.outcome, CM_LEDGER_PLAN_SWITCHED_TO_ANNUAL);
    assert_int_equal(r.granted, 600);
    cm_ledger_balance_result *b = NULL;
    LT_OK(&e, cm_ledger_balance(e.l, "acme", NULL, &b));
    assert_int_equal(b->available, 670);
    assert_int_equal(b->n_grants, 2);
    assert_int_equal(b->grants[0].expires_ms, lt_time("2026-02-01T00:00:00Z"));
    assert_int_equal(b->grants[1].expires_ms, lt_time("2027-01-15T00:00:00Z"));
    cm_ledger_balance_free(b);
    lt_at(&e, "2026-02-01T00:00:00Z");
    assert_int_equal(lt_available(&e, "acme"), 600);
    lt_close(&e);
}

/* Found by the torture run: an annual plan set to fewer credits a month, still annual,
 * is a downgrade (scheduled), not a new annual period. */
static void test_annual_downgrade_waits_for_the_annual_period_end(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "annualdown");
    lt_at(&e, "2026-01-01T00:00:00Z");
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_plan_set(e.l, "acme", 30, CM_LEDGER_ANNUAL, NULL, "alice"));
    lt_at(&e, "2026-06-01T00:00:00Z");
    cm_ledger_plan_result r;
    LT_OK(&e, cm_ledger_plan_set_ref(e.l, "acme", 20, CM_LEDGER_ANNUAL, NULL, "alice", NULL, &r));
    assert_int_equal(r.outcome, CM_LEDGER_PLAN_DOWNGRADE_SCHEDULED);
    assert_int_equal(r.granted, 0);
    assert_int_equal(r.effective_ms, lt_time("2027-01-01T00:00:00Z"));
    assert_int_equal(lt_available(&e, "acme"), 360);
    lt_at(&e, "2027-01-01T00:00:00Z");
    assert_int_equal(lt_available(&e, "acme"), 240);
    lt_close(&e);
}

static void test_annual_to_monthly_waits_for_the_annual_period_end(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "tomonthly");
    lt_at(&e, "2026-01-01T00:00:00Z"); /* before the workspace: time never runs back */
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_plan_set(e.l, "acme", 10, CM_LEDGER_ANNUAL, NULL, "alice"));
    lt_at(&e, "2026-03-01T00:00:00Z");
    cm_ledger_plan_result r;
    LT_OK(&e, cm_ledger_plan_set_ref(e.l, "acme", 50, CM_LEDGER_MONTHLY, "m", "alice", NULL, &r));
    assert_int_equal(r.outcome, CM_LEDGER_PLAN_MONTHLY_SCHEDULED);
    assert_int_equal(r.granted, 0);
    assert_int_equal(r.effective_ms, lt_time("2027-01-01T00:00:00Z"));
    assert_int_equal(lt_available(&e, "acme"), 120);
    lt_at(&e, "2027-01-01T00:00:00Z");
    assert_int_equal(lt_available(&e, "acme"), 50);
    assert_all_expire(&e, "2027-02-01T00:00:00Z");
    cm_ledger_plan_info p;
    LT_OK(&e, cm_ledger_plan_show(e.l, "acme", NULL, &p));
    assert_int_equal(p.interval, CM_LEDGER_MONTHLY);
    assert_int_equal(p.credits, 50);
    assert_string_equal(p.tier, "m");
    assert_int_equal(p.scheduled, 0);
    lt_at(&e, "2027-02-01T00:00:00Z");
    assert_int_equal(lt_available(&e, "acme"), 50);
    lt_close(&e);
}

static void test_cancel_drops_the_scheduled_change_and_stops_grants(void **state)
{
    (void)state;
    lt_env e;
    worked_example(&e, "canceldrop", 300);
    lt_at(&e, "2026-01-20T00:00:00Z");
    LT_OK(&e, cm_ledger_plan_set(e.l, "acme", 100, CM_LEDGER_MONTHLY, NULL, "alice"));
    LT_OK(&e, cm_ledger_plan_cancel(e.l, "acme", "alice"));
    cm_ledger_plan_info p;
    LT_OK(&e, cm_ledger_plan_show(e.l, "acme", NULL, &p));
    assert_int_equal(p.scheduled, 0);
    assert_int_equal(p.cancelled, 1);
    assert_int_equal(p.active, 1);
    assert_int_equal(lt_available(&e, "acme"), 270);
    lt_at(&e, "2026-02-01T00:00:00Z");
    assert_int_equal(lt_available(&e, "acme"), 0);
    LT_OK(&e, cm_ledger_plan_show(e.l, "acme", NULL, &p));
    assert_int_equal(p.active, 0);
    lt_close(&e);
}

static void test_set_after_the_cancelled_period_ended_starts_a_new_period(void **state)
{
    (void)state;
    lt_env e;
    worked_example(&e, "restart", 100);
    lt_at(&e, "2026-01-10T00:00:00Z");
    LT_OK(&e, cm_ledger_plan_cancel(e.l, "acme", "alice"));
    lt_at(&e, "2026-02-05T00:00:00Z");
    cm_ledger_plan_result r;
    LT_OK(&e, cm_ledger_plan_set_ref(e.l, "acme", 100, CM_LEDGER_MONTHLY, NULL, "alice", NULL, &r));
    assert_int_equal(r.outcome, CM_LEDGER_PLAN_STARTED);
    assert_int_equal(r.granted, 100);
    assert_int_equal(lt_available(&e, "acme"), 100);
    assert_all_expire(&e, "2026-03-05T00:00:00Z");
    lt_close(&e);
}

static void test_plan_reference_replays_the_first_result_and_grants_nothing(void **state)
{
    (void)state;
    lt_env e;
    worked_example(&e, "planref", 100);
    lt_at(&e, "2026-01-15T00:00:00Z");
    cm_ledger_plan_result r, again;
    LT_OK(&e,
          cm_ledger_plan_set_ref(e.l, "acme", 300, CM_LEDGER_MONTHLY, "max", "alice", "pay-1", &r));
    assert_int_equal(r.replayed, 0);
    lt_at(&e, "2026-01-16T00:00:00Z");
    LT_OK(&e, cm_ledger_plan_set_ref(e.l, "acme", 300, CM_LEDGER_MONTHLY, "max", "alice", "pay-1",
                                     &again));
    assert_int_equal(again.replayed, 1);
    assert_int_equal(again.outcome, CM_LEDGER_PLAN_UPGRADED);
    assert_int_equal(again.granted, 200);
    assert_int_equal(again.effective_ms, r.effective_ms);
    assert_int_equal(lt_available(&e, "acme"), 270);
    LT_EXPECT(
        &e, CM_LEDGER_E_CONFLICT,
        cm_ledger_plan_set_ref(e.l, "acme", 400, CM_LEDGER_MONTHLY, "max", "alice", "pay-1", NULL));
    LT_EXPECT(&e, CM_LEDGER_E_CONFLICT,
              cm_ledger_plan_set_ref(e.l, "acme", 300, CM_LEDGER_MONTHLY, "other", "alice", "pay-1",
                                     NULL));
    LT_EXPECT(&e, CM_LEDGER_E_CONFLICT,
              cm_ledger_plan_cancel_ref(e.l, "acme", "alice", "pay-1", NULL));
    LT_OK(&e, cm_ledger_plan_cancel_ref(e.l, "acme", "alice", "cancel-1", &r));
    assert_int_equal(r.outcome, CM_LEDGER_PLAN_CANCELLED);
    LT_OK(&e, cm_ledger_plan_set(e.l, "acme", 300, CM_LEDGER_MONTHLY, "max", "alice"));
    /* a replayed cancel returns the first result and does not cancel the resumed plan */
    LT_OK(&e, cm_ledger_plan_cancel_ref(e.l, "acme", "alice", "cancel-1", &again));
    assert_int_equal(again.replayed, 1);
    assert_int_equal(again.outcome, CM_LEDGER_PLAN_CANCELLED);
    cm_ledger_plan_info p;
    LT_OK(&e, cm_ledger_plan_show(e.l, "acme", NULL, &p));
    assert_int_equal(p.cancelled, 0);
    LT_EXPECT(&e, CM_LEDGER_E_INVALID,
              cm_ledger_plan_set_ref(e.l, "acme", 300, CM_LEDGER_MONTHLY, NULL, "alice", "", NULL));
    lt_close(&e);
}

static void test_plan_show_reports_tier_period_schedule_and_cancel(void **state)
{
    (void)state;
    lt_env e;
    worked_example(&e, "show", 300);
    cm_ledger_plan_info p;
    LT_OK(&e, cm_ledger_plan_show(e.l, "acme", "bob", &p)); /* members may read it */
    assert_int_equal(p.has_plan, 1);
    assert_int_equal(p.active, 1);
    assert_int_equal(p.credits, 300);
    assert_int_equal(p.interval, CM_LEDGER_MONTHLY);
    assert_string_equal(p.tier, "");
    assert_int_equal(p.period_start_ms, lt_time("2026-01-01T00:00:00Z"));
    assert_int_equal(p.period_end_ms, lt_time("2026-02-01T00:00:00Z"));
    assert_int_equal(p.scheduled, 0);
    assert_int_equal(p.cancelled, 0);
    lt_at(&e, "2026-01-20T00:00:00Z");
    LT_OK(&e, cm_ledger_plan_set(e.l, "acme", 100, CM_LEDGER_MONTHLY, "lite", "alice"));
    LT_OK(&e, cm_ledger_plan_show(e.l, "acme", NULL, &p));
    assert_int_equal(p.scheduled, 1);
    assert_int_equal(p.sched_credits, 100);
    assert_int_equal(p.sched_interval, CM_LEDGER_MONTHLY);
    assert_string_equal(p.sched_tier, "lite");
    assert_int_equal(p.sched_ms, lt_time("2026-02-01T00:00:00Z"));
    /* setting the active plan again drops the scheduled change */
    LT_OK(&e, cm_ledger_plan_set(e.l, "acme", 300, CM_LEDGER_MONTHLY, NULL, "alice"));
    LT_OK(&e, cm_ledger_plan_show(e.l, "acme", NULL, &p));
    assert_int_equal(p.scheduled, 0);
    LT_EXPECT(&e, CM_LEDGER_E_NO_WORKSPACE, cm_ledger_plan_show(e.l, "acme", "mallory", &p));
    LT_OK(&e, cm_ledger_workspace_create(e.l, "empty", "alice", NULL));
    LT_OK(&e, cm_ledger_plan_show(e.l, "empty", NULL, &p));
    assert_int_equal(p.has_plan, 0);
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_plan_show(e.l, "acme", NULL, NULL));
    lt_at(&e, "2026-02-01T00:00:00Z");
    assert_int_equal(lt_available(&e, "acme"), 300);
    lt_close(&e);
}

/* On PostgreSQL the database server's clock is the ledger's clock (a handle without an
 * injected clock): to tell it from this machine's, the test gives the server a clock of
 * its own, a clock_timestamp() in the test's schema searched before pg_catalog, reading
 * 2031-01-01. On SQLite the local clock is used. */
static void test_without_an_injected_clock_postgresql_uses_the_server_clock(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "serverclock");
    cm_ledger_close(e.l);
    e.l = NULL;
    char path[700];
    snprintf(path, sizeof path, "%s", e.path);
    if (lt_is_uri(e.path)) {
        char schema[128], sql[400], err[512];
        lt_schema_of(e.path, schema, sizeof schema);
        snprintf(sql, sizeof sql,
                 "CREATE FUNCTION %s.clock_timestamp() RETURNS timestamptz LANGUAGE sql AS "
                 "$$SELECT timestamptz '2031-01-01 00:00:00+00'$$",
                 schema);
        if (lt_exec_sql(e.path, sql, err, sizeof err))
            fail_msg("%s: %s", sql, err);
        snprintf(path, sizeof path, "%s%%2Cpg_catalog", e.path); /* search_path=S,pg_catalog */
    }
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.location = path; /* no now_ms: the real clock, or the server's */
    cfg.create = 1;
    int64_t before = (int64_t)time(NULL) * 1000;
    LT_OK(&e, cm_ledger_open(&e.l, &cfg));
    LT_OK(&e, cm_ledger_workspace_create(e.l, "acme", "alice", NULL));
    int64_t after = (int64_t)time(NULL) * 1000 + 1000;
    cm_ledger_history_result *h = NULL;
    LT_OK(&e, cm_ledger_history(e.l, "acme", NULL, &h));
    assert_int_equal(h->n_entries, 1);
    if (lt_is_uri(e.path)) {
        assert_int_equal(h->entries[0].at_ms, lt_time("2031-01-01T00:00:00Z"));
    } else {
        assert_true(h->entries[0].at_ms >= before);
        assert_true(h->entries[0].at_ms <= after);
    }
    cm_ledger_history_free(h);
    lt_close(&e);
}

/* Several changes at the instant a period starts are each in effect during it: an
 * upgrade at the very instant the plan started, then a downgrade, pass check. */
static void test_changes_at_the_instant_a_period_starts_pass_check(void **state)
{
    (void)state;
    lt_env e;
    setup_plan(&e, "sameinstant", 100, CM_LEDGER_MONTHLY);
    LT_OK(&e, cm_ledger_plan_set(e.l, "acme", 150, CM_LEDGER_MONTHLY, "pro", "alice"));
    LT_OK(&e, cm_ledger_plan_set(e.l, "acme", 100, CM_LEDGER_MONTHLY, "pro", "alice"));
    assert_int_equal(lt_available(&e, "acme"), 150);
    LT_OK(&e, cm_ledger_check(e.l));
    lt_at(&e, "2026-02-28T12:00:00Z");
    assert_int_equal(lt_available(&e, "acme"), 100);
    lt_close(&e);
}

/* ---- check proves the plan and clock rules ---- */

/* Append, behind the library's back, a plan grant of credits to acme made at `at` and
 * expiring at `until`, with its journal row: conservation holds, the plan rules do not. */
static void forge_plan_grant(lt_env *e, int64_t credits, const char *at, const char *until)
{
    char sql[1200], err[512];
    long long a = (long long)lt_time(at), u = (long long)lt_time(until), c = (long long)credits;
    int n = snprintf(sql, sizeof sql,
                     "INSERT INTO grants(ws, kind, granted, remaining, held, charged, expired, "
                     "refunded_into, created_ms, expires_ms, period) VALUES('acme', 1, %lld, "
                     "%lld, 0, 0, 0, 0, %lld, %lld, 0);",
                     c, c, a, u);
    if (lt_is_uri(e->path))
        snprintf(sql + n, sizeof sql - (size_t)n,
                 "INSERT INTO journal(op, ws, at_ms, kind, grant_id, credits, actor) VALUES("
                 "nextval('journal_op'), 'acme', %lld, 'grant', (SELECT MAX(id) FROM grants), "
                 "%lld, 'mallory')",
                 a, c);
    else
        snprintf(sql + n, sizeof sql - (size_t)n,
                 "INSERT INTO journal(id, op, ws, at_ms, kind, grant_id, credits, actor) VALUES("
                 "(SELECT MAX(id) + 1 FROM journal WHERE ws = 'acme'), "
                 "(SELECT MAX(id) + 1 FROM journal WHERE ws = 'acme'), 'acme', %lld, 'grant', "
                 "(SELECT MAX(id) FROM grants), %lld, 'mallory')",
                 a, c);
    if (lt_exec_sql(e->path, sql, err, sizeof err))
        fail_msg("%s: %s", sql, err);
}

static void expect_check_fails(lt_env *e, const char *words)
{
    LT_EXPECT(e, CM_LEDGER_E_CHECK, cm_ledger_check(e->l));
    if (!strstr(cm_ledger_errmsg(e->l), words))
        fail_msg("check said '%s', not '%s'", cm_ledger_errmsg(e->l), words);
    cm_ledger_close(e->l); /* the database is broken on purpose: no check at teardown */
    e->l = NULL;
    lt_close(e);
}

static void test_check_finds_a_period_granted_beyond_its_allowance(void **state)
{
    (void)state;
    lt_env e;
    worked_example(&e, "forgetopup", 100);
    LT_OK(&e, cm_ledger_check(e.l));
    /* a top-up of 201 on a 100 plan never upgraded: 301 for one period */
    forge_plan_grant(&e, 201, "2026-01-15T00:00:00Z", "2026-02-01T00:00:00Z");
    expect_check_fails(&e, "more than the 100 its plan history allows");
}

/* The bug of issue 12: a tier rename (or cancel + set) started a second period with its
 * own full grant while the first still ran. */
static void test_check_finds_two_periods_running_at_once(void **state)
{
    (void)state;
    lt_env e;
    worked_example(&e, "forgeoverlap", 100);
    forge_plan_grant(&e, 100, "2026-01-10T00:00:00Z", "2026-02-10T00:00:00Z");
    expect_check_fails(&e, "overlaps");
}

static void test_check_finds_journal_time_running_backwards(void **state)
{
    (void)state;
    lt_env e;
    worked_example(&e, "forgeclock", 100);
    lt_at(&e, "2026-01-20T00:00:00Z");
    LT_OK(&e, cm_ledger_member_add(e.l, "acme", "carol", "alice"));
    char sql[600], err[512];
    if (lt_is_uri(e.path))
        snprintf(sql, sizeof sql,
                 "INSERT INTO journal(op, ws, at_ms, kind, credits, actor, reason) VALUES("
                 "nextval('journal_op'), 'acme', %lld, 'member_add', 0, 'alice', 'dave')",
                 (long long)lt_time("2026-01-19T00:00:00Z"));
    else
        snprintf(sql, sizeof sql,
                 "INSERT INTO journal(id, op, ws, at_ms, kind, credits, actor, reason) VALUES("
                 "(SELECT MAX(id) + 1 FROM journal WHERE ws = 'acme'), "
                 "(SELECT MAX(id) + 1 FROM journal WHERE ws = 'acme'), 'acme', %lld, "
                 "'member_add', 0, 'alice', 'dave')",
                 (long long)lt_time("2026-01-19T00:00:00Z"));
    if (lt_exec_sql(e.path, sql, err, sizeof err))
        fail_msg("%s: %s", sql, err);
    expect_check_fails(&e, "ledger time ran backwards");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_monthly_plan_grants_n_expiring_at_period_end),
        cmocka_unit_test(test_unused_monthly_credits_do_not_roll_over),
        cmocka_unit_test(test_periods_from_jan_31_end_feb_28_then_mar_31),
        cmocka_unit_test(test_period_is_granted_once_however_often_touched),
        cmocka_unit_test(test_sweep_grants_new_periods_and_expires_old),
        cmocka_unit_test(test_annual_plan_grants_twelve_times_n_for_twelve_months),
        cmocka_unit_test(test_setting_the_active_plan_again_grants_nothing),
        cmocka_unit_test(test_cancelled_plan_grants_no_further_periods),
        cmocka_unit_test(test_only_the_owner_sets_or_cancels_the_plan),
        cmocka_unit_test(test_months_in_between_are_granted_and_expired_in_order),
        cmocka_unit_test(test_clock_years_ahead_grants_every_period_in_between),
        cmocka_unit_test(test_clock_beyond_the_catch_up_horizon_is_invalid),
        cmocka_unit_test(test_a_clock_behind_the_journal_is_dated_at_the_journal),
        cmocka_unit_test(test_lapse_and_expiry_are_dated_when_they_happened),
        cmocka_unit_test(test_without_an_injected_clock_postgresql_uses_the_server_clock),
        cmocka_unit_test(test_upgrade_mid_month_tops_up_difference),
        cmocka_unit_test(test_downgrade_waits_for_the_period_boundary),
        cmocka_unit_test(test_upgrade_then_downgrade_grants_the_lower_plan_from_the_boundary),
        cmocka_unit_test(test_cancel_and_resubscribe_before_period_end_grants_nothing),
        cmocka_unit_test(test_rename_cancel_and_resubscribe_keep_one_allowance),
        cmocka_unit_test(test_tier_rename_only_relabels_with_a_journal_row),
        cmocka_unit_test(test_annual_upgrade_tops_up_by_whole_months_left),
        cmocka_unit_test(test_monthly_to_annual_starts_now_and_keeps_the_monthly_grant),
        cmocka_unit_test(test_annual_downgrade_waits_for_the_annual_period_end),
        cmocka_unit_test(test_annual_to_monthly_waits_for_the_annual_period_end),
        cmocka_unit_test(test_cancel_drops_the_scheduled_change_and_stops_grants),
        cmocka_unit_test(test_set_after_the_cancelled_period_ended_starts_a_new_period),
        cmocka_unit_test(test_plan_reference_replays_the_first_result_and_grants_nothing),
        cmocka_unit_test(test_plan_show_reports_tier_period_schedule_and_cancel),
        cmocka_unit_test(test_changes_at_the_instant_a_period_starts_pass_check),
        cmocka_unit_test(test_check_finds_a_period_granted_beyond_its_allowance),
        cmocka_unit_test(test_check_finds_two_periods_running_at_once),
        cmocka_unit_test(test_check_finds_journal_time_running_backwards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
