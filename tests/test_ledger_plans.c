/* Plans: monthly and annual grants, calendar periods from the start instant, periods
 * granted when time passes (on touch and by sweep) and never twice, plan change,
 * cancellation. */
#include "ledger_test.h"

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

static void test_plan_change_starts_new_period_and_old_grant_keeps_expiry(void **state)
{
    (void)state;
    lt_env e;
    setup_plan(&e, "change", 10, CM_LEDGER_MONTHLY);
    lt_at(&e, "2026-02-10T00:00:00Z");
    LT_OK(&e, cm_ledger_plan_set(e.l, "acme", 20, CM_LEDGER_MONTHLY, "max", "alice"));
    cm_ledger_balance_result *b = NULL;
    LT_OK(&e, cm_ledger_balance(e.l, "acme", NULL, &b));
    assert_int_equal(b->available, 30);
    assert_int_equal(b->n_grants, 2);
    assert_int_equal(b->grants[0].granted, 10); /* soonest expiring first */
    assert_int_equal(b->grants[0].expires_ms, lt_time("2026-02-28T12:00:00Z"));
    assert_int_equal(b->grants[1].granted, 20);
    assert_int_equal(b->grants[1].expires_ms, lt_time("2026-03-10T00:00:00Z"));
    cm_ledger_balance_free(b);
    lt_at(&e, "2026-03-01T00:00:00Z");
    assert_int_equal(lt_available(&e, "acme"), 20);
    lt_at(&e, "2026-03-10T00:00:00Z");
    assert_int_equal(lt_available(&e, "acme"), 20); /* next period of the new plan */
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

static void test_skipped_months_grant_only_the_current_period(void **state)
{
    (void)state;
    lt_env e;
    setup_plan(&e, "skip", 10, CM_LEDGER_MONTHLY);
    lt_at(&e, "2026-06-15T00:00:00Z");
    assert_int_equal(lt_available(&e, "acme"), 10);
    assert_int_equal(first_expiry(&e), lt_time("2026-06-30T12:00:00Z"));
    lt_close(&e);
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
        cmocka_unit_test(test_plan_change_starts_new_period_and_old_grant_keeps_expiry),
        cmocka_unit_test(test_setting_the_active_plan_again_grants_nothing),
        cmocka_unit_test(test_cancelled_plan_grants_no_further_periods),
        cmocka_unit_test(test_only_the_owner_sets_or_cancels_the_plan),
        cmocka_unit_test(test_skipped_months_grant_only_the_current_period),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
