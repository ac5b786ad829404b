/* SPDX-License-Identifier: MIT */
/* Strict inputs and true records (issue 12, sections 2, 3 and 5): a job id bound to its
 * input, closed once its hold went back; the price of add-ons before buying; no charge
 * of 0; removing a non-member refused; real region and currency codes, money in the
 * currency's decimals, price changes logged; no control characters in any text; a note
 * kept as given. Each test runs on SQLite and, as test_ledger_strict_pg, on PostgreSQL. */
#include "ledger_test.h"

static void setup(lt_env *e, const char *name)
{
    lt_open(e, name);
    lt_workspace(e);
    LT_OK(e, cm_ledger_buy(e->l, "acme", 10, "alice", NULL, NULL));
}

static void test_retry_with_the_same_binding_returns_the_first_hold(void **state)
{
    (void)state;
    lt_env e;
    setup(&e, "bind_same");
    cm_ledger_job *j = NULL;
    LT_OK(&e, cm_ledger_reserve_bound(e.l, "acme", "up-1", 1, "bob", 60, "note", "in:a", &j));
    assert_string_equal(j->binding, "in:a");
    cm_ledger_job_free(j);
    LT_OK(&e, cm_ledger_commit(e.l, "up-1", CM_LEDGER_ALL, NULL));
    LT_OK(&e, cm_ledger_reserve_bound(e.l, "acme", "up-1", 1, "bob", 60, NULL, "in:a", &j));
    assert_int_equal(j->state, CM_LEDGER_COMMITTED);
    cm_ledger_job_free(j);
    assert_int_equal(lt_available(&e, "acme"), 9);
    lt_close(&e);
}

static void test_job_id_reused_for_another_input_is_a_conflict(void **state)
{
    (void)state;
    lt_env e;
    setup(&e, "bind_other");
    LT_OK(&e, cm_ledger_reserve_bound(e.l, "acme", "up-1", 1, "bob", 60, NULL, "in:a", NULL));
    LT_OK(&e, cm_ledger_commit(e.l, "up-1", CM_LEDGER_ALL, NULL));
    /* another file of the same price, a by-output job, or no binding at all */
    cm_ledger_job *j = NULL;
    LT_EXPECT(&e, CM_LEDGER_E_CONFLICT,
              cm_ledger_reserve_bound(e.l, "acme", "up-1", 1, "bob", 60, NULL, "in:b", &j));
    assert_null(j);
    LT_EXPECT(&e, CM_LEDGER_E_CONFLICT,
              cm_ledger_reserve_bound(e.l, "acme", "up-1", 1, "bob", 60, NULL, "out:55000", NULL));
    LT_EXPECT(&e, CM_LEDGER_E_CONFLICT, cm_ledger_reserve(e.l, "acme", "up-1", 1, "bob", 60, NULL));
    /* and an unbound hold does not accept a bound retry */
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "plain", 1, "bob", 60, NULL));
    LT_EXPECT(&e, CM_LEDGER_E_CONFLICT,
              cm_ledger_reserve_bound(e.l, "acme", "plain", 1, "bob", 60, NULL, "in:a", NULL));
    assert_int_equal(lt_available(&e, "acme"), 8);
    lt_close(&e);
}

static void test_reserve_of_a_released_job_is_job_closed(void **state)
{
    (void)state;
    lt_env e;
    setup(&e, "closed_released");
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "j", 2, "bob", 60, NULL));
    LT_OK(&e, cm_ledger_release(e.l, "j", NULL));
    cm_ledger_job *j = NULL;
    LT_EXPECT(&e, CM_LEDGER_E_JOB_CLOSED, cm_ledger_reserve(e.l, "acme", "j", 2, "bob", 60, &j));
    assert_null(j);
    assert_string_equal(cm_ledger_err_name(CM_LEDGER_E_JOB_CLOSED), "job_closed");
    assert_non_null(strstr(cm_ledger_errmsg(e.l), "new job id"));
    assert_int_equal(lt_available(&e, "acme"), 10);
    assert_int_equal(lt_held(&e, "acme"), 0);
    lt_close(&e);
}

static void test_reserve_of_a_lapsed_job_is_job_closed(void **state)
{
    (void)state;
    lt_env e;
    setup(&e, "closed_lapsed");
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "j", 2, "bob", 60, NULL));
    lt_at(&e, "2026-01-31T12:05:00Z"); /* the lease ended at 12:01 */
    LT_EXPECT(&e, CM_LEDGER_E_JOB_CLOSED, cm_ledger_reserve(e.l, "acme", "j", 2, "bob", 60, NULL));
    assert_int_equal(lt_state(&e, "j"), CM_LEDGER_LAPSED);
    assert_int_equal(lt_available(&e, "acme"), 10);
    lt_close(&e);
}

static void test_price_shows_the_cost_of_add_ons_before_buying(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "price_quote");
    LT_OK(&e, cm_ledger_price_set(e.l, "in", "INR", 1200));
    LT_OK(&e, cm_ledger_workspace_create(e.l, "mumbai", "ravi", "in"));
    LT_OK(&e, cm_ledger_member_add(e.l, "mumbai", "asha", "ravi"));
    cm_ledger_purchase p;
    LT_OK(&e, cm_ledger_price(e.l, "mumbai", 10, "asha", &p));
    assert_int_equal(p.unit_minor, 1200);
    assert_int_equal(p.total_minor, 12000);
    assert_string_equal(p.currency, "INR");
    assert_int_equal(p.grant_id, -1);
    cm_ledger_balance_result *b = NULL;
    LT_OK(&e, cm_ledger_balance(e.l, "mumbai", NULL, &b));
    assert_int_equal(b->available, 0); /* nothing was bought */
    cm_ledger_balance_free(b);
    cm_ledger_purchase bought;
    LT_OK(&e, cm_ledger_buy(e.l, "mumbai", 10, "ravi", NULL, &bought));
    assert_int_equal(bought.total_minor, p.total_minor);
    LT_EXPECT(&e, CM_LEDGER_E_NO_WORKSPACE, cm_ledger_price(e.l, "mumbai", 10, "mallory", &p));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_price(e.l, "mumbai", 0, NULL, &p));
    lt_close(&e);
}

static void test_commit_of_zero_credits_is_refused(void **state)
{
    (void)state;
    lt_env e;
    setup(&e, "commit_zero");
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "j", 2, "bob", 60, NULL));
    cm_ledger_job *j = NULL;
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_commit(e.l, "j", 0, &j));
    assert_null(j);
    assert_non_null(strstr(cm_ledger_errmsg(e.l), "release"));
    assert_int_equal(lt_state(&e, "j"), CM_LEDGER_HELD);
    assert_int_equal(lt_held(&e, "acme"), 2);
    LT_OK(&e, cm_ledger_release(e.l, "j", NULL));
    lt_close(&e);
}

static void test_removing_a_non_member_is_not_a_member(void **state)
{
    (void)state;
    lt_env e;
    setup(&e, "not_member");
    LT_EXPECT(&e, CM_LEDGER_E_NOT_MEMBER, cm_ledger_member_remove(e.l, "acme", "carol", "alice"));
    assert_string_equal(cm_ledger_err_name(CM_LEDGER_E_NOT_MEMBER), "not_a_member");
    LT_OK(&e, cm_ledger_member_remove(e.l, "acme", "bob", "alice"));
    LT_EXPECT(&e, CM_LEDGER_E_NOT_MEMBER, cm_ledger_member_remove(e.l, "acme", "bob", "alice"));
    cm_ledger_history_result *h = NULL;
    LT_OK(&e, cm_ledger_history(e.l, "acme", NULL, &h));
    int removals = 0;
    for (size_t i = 0; i < h->n_entries; i++)
        removals += strcmp(h->entries[i].kind, "member_remove") == 0;
    cm_ledger_history_free(h);
    assert_int_equal(removals, 1); /* only the real removal is on record */
    lt_close(&e);
}

static void test_regions_are_iso_3166_codes_stored_upper_case(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "regions");
    LT_OK(&e, cm_ledger_workspace_create(e.l, "berlin", "hans", "de"));
    LT_OK(&e, cm_ledger_workspace_create(e.l, "berlin", "hans", "DE")); /* the same region */
    LT_OK(&e, cm_ledger_workspace_create(e.l, "home", "ann", "default"));
    LT_OK(&e, cm_ledger_workspace_create(e.l, "brussels", "eve", "eu"));
    const char *bad[] = {"zz", "XX", "USA", "u", "D3", "Default", "de "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_workspace_create(e.l, "w", "o", bad[i]));
        LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_price_set(e.l, bad[i], "USD", 15));
    }
    cm_ledger_history_result *h = NULL;
    LT_OK(&e, cm_ledger_history(e.l, "berlin", NULL, &h));
    assert_string_equal(h->entries[0].reason, "created in region DE");
    cm_ledger_history_free(h);
    lt_close(&e);
}

static void
test_currencies_are_known_iso_4217_codes_and_prices_at_least_one_minor_unit(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "currencies");
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_price_set(e.l, "zz", "ABC", 15));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_price_set(e.l, "FR", "ABC", 15));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_price_set(e.l, "FR", "eur", 15));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_price_set(e.l, "FR", "EUR", 0));
    LT_OK(&e, cm_ledger_price_set(e.l, "FR", "EUR", 1));
    assert_int_equal(cm_ledger_currency_exponent("USD"), 2);
    assert_int_equal(cm_ledger_currency_exponent("JPY"), 0);
    assert_int_equal(cm_ledger_currency_exponent("KWD"), 3);
    assert_int_equal(cm_ledger_currency_exponent("ABC"), -1);
    lt_close(&e);
}

static void test_money_is_shown_in_the_currency_decimals(void **state)
{
    (void)state;
    char buf[40];
    assert_string_equal(cm_ledger_money_format(75, "USD", buf, sizeof buf), "0.75 USD");
    assert_string_equal(cm_ledger_money_format(12000, "INR", buf, sizeof buf), "120.00 INR");
    assert_string_equal(cm_ledger_money_format(500, "JPY", buf, sizeof buf), "500 JPY");
    assert_string_equal(cm_ledger_money_format(1234, "KWD", buf, sizeof buf), "1.234 KWD");
    assert_string_equal(cm_ledger_money_format(-5, "EUR", buf, sizeof buf), "-0.05 EUR");
    assert_string_equal(cm_ledger_money_format(INT64_MIN, "USD", buf, sizeof buf),
                        "-92233720368547758.08 USD");
    lt_env e;
    lt_open(&e, "money");
    LT_OK(&e, cm_ledger_workspace_create(e.l, "acme", "alice", NULL));
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 5, "alice", NULL, NULL));
    LT_OK(&e, cm_ledger_price_set(e.l, "JP", "JPY", 20));
    LT_OK(&e, cm_ledger_workspace_create(e.l, "tokyo", "kenji", "jp"));
    LT_OK(&e, cm_ledger_buy(e.l, "tokyo", 5, "kenji", NULL, NULL));
    cm_ledger_history_result *h = NULL;
    LT_OK(&e, cm_ledger_history(e.l, "acme", NULL, &h));
    assert_string_equal(h->entries[h->n_entries - 1].reason, "add-on: 5 x 0.15 = 0.75 USD");
    cm_ledger_history_free(h);
    LT_OK(&e, cm_ledger_history(e.l, "tokyo", NULL, &h));
    assert_string_equal(h->entries[h->n_entries - 1].reason, "add-on: 5 x 20 = 100 JPY");
    cm_ledger_history_free(h);
    lt_close(&e);
}

static void test_price_changes_are_logged_with_who_when_old_and_new(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "price_log");
    LT_OK(&e, cm_ledger_price_set_by(e.l, "de", "EUR", 14, "sam"));
    lt_at(&e, "2026-02-01T09:00:00Z");
    LT_OK(&e, cm_ledger_price_set_by(e.l, "DE", "EUR", 16, "kim"));
    LT_OK(&e, cm_ledger_price_set_by(e.l, "DE", "EUR", 16, "kim")); /* no change: no row */
    LT_OK(&e, cm_ledger_price_set(e.l, "default", "USD", 20));
    cm_ledger_price_history_result *h = NULL;
    LT_OK(&e, cm_ledger_price_history(e.l, "de", &h));
    assert_int_equal(h->n_changes, 2);
    assert_string_equal(h->changes[0].actor, "sam");
    assert_string_equal(h->changes[0].region, "DE");
    assert_string_equal(h->changes[0].old_currency, "");
    assert_int_equal(h->changes[0].old_unit_minor, -1);
    assert_int_equal(h->changes[0].new_unit_minor, 14);
    assert_int_equal(h->changes[0].at_ms, lt_time("2026-01-31T12:00:00Z"));
    assert_string_equal(h->changes[1].actor, "kim");
    assert_string_equal(h->changes[1].old_currency, "EUR");
    assert_int_equal(h->changes[1].old_unit_minor, 14);
    assert_int_equal(h->changes[1].new_unit_minor, 16);
    assert_int_equal(h->changes[1].at_ms, lt_time("2026-02-01T09:00:00Z"));
    cm_ledger_price_history_free(h);
    LT_OK(&e, cm_ledger_price_history(e.l, NULL, &h));
    assert_int_equal(h->n_changes, 3);
    assert_string_equal(h->changes[2].region, "default");
    assert_string_equal(h->changes[2].actor, "operator");
    assert_int_equal(h->changes[2].old_unit_minor, 15);
    cm_ledger_price_history_free(h);
    /* the log is append-only */
    char err[256];
    assert_int_not_equal(
        lt_exec_sql(e.path, "UPDATE prices_log SET new_unit_minor = 1", err, sizeof err), 0);
    assert_int_not_equal(lt_exec_sql(e.path, "DELETE FROM prices_log", err, sizeof err), 0);
    lt_close(&e);
}

static void test_texts_with_control_characters_are_refused(void **state)
{
    (void)state;
    lt_env e;
    setup(&e, "controls");
    const char *bad[] = {"a\nb",
                         "a\tb",
                         "a\x1b[31mred",
                         "a\x7f",
                         "a\xc2\x85"
                         "b",
                         "a\xe2\x80\xae"
                         "b",
                         "\r"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *s = bad[i];
        LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_workspace_create(e.l, s, "o", NULL));
        LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_member_add(e.l, "acme", s, "alice"));
        LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_reserve(e.l, "acme", s, 1, "bob", 60, NULL));
        LT_EXPECT(&e, CM_LEDGER_E_INVALID,
                  cm_ledger_reserve_noted(e.l, "acme", "j", 1, "bob", 60, s, NULL));
        LT_EXPECT(&e, CM_LEDGER_E_INVALID,
                  cm_ledger_reserve_bound(e.l, "acme", "j", 1, "bob", 60, NULL, s, NULL));
        LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_buy(e.l, "acme", 1, "alice", s, NULL));
        LT_EXPECT(&e, CM_LEDGER_E_INVALID,
                  cm_ledger_plan_set(e.l, "acme", 5, CM_LEDGER_MONTHLY, s, "alice"));
        LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_price_set_by(e.l, "FR", "EUR", 9, s));
    }
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "r", 1, "bob", 60, NULL));
    LT_OK(&e, cm_ledger_commit(e.l, "r", CM_LEDGER_ALL, NULL));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        LT_EXPECT(&e, CM_LEDGER_E_INVALID,
                  cm_ledger_refund(e.l, "r", 1, bad[i], "sup", NULL, NULL));
        LT_EXPECT(&e, CM_LEDGER_E_INVALID,
                  cm_ledger_refund(e.l, "r", 1, "why", "sup", bad[i], NULL));
        LT_EXPECT(&e, CM_LEDGER_E_INVALID,
                  cm_ledger_commit_noted(e.l, "r", CM_LEDGER_ALL, bad[i], NULL));
    }
    /* printable UTF-8 is kept as given */
    LT_OK(&e, cm_ledger_reserve_noted(e.l, "acme", "ü-1", 1, "bob", 60, "30 s — ok", NULL));
    LT_EXPECT(&e, CM_LEDGER_E_NO_JOB, cm_ledger_job_info(e.l, "j", &(cm_ledger_job *){NULL}));
    lt_close(&e);
}

static void test_a_note_of_reserved_is_kept_like_any_other(void **state)
{
    (void)state;
    lt_env e;
    setup(&e, "note_reserved");
    LT_OK(&e, cm_ledger_reserve_noted(e.l, "acme", "j", 1, "bob", 60, "reserved", NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "k", 1, "bob", 60, NULL));
    LT_OK(&e, cm_ledger_commit_noted(e.l, "j", CM_LEDGER_ALL, "charged", NULL));
    cm_ledger_job *j = NULL;
    LT_OK(&e, cm_ledger_job_info(e.l, "j", &j));
    assert_non_null(j->note);
    assert_string_equal(j->note, "reserved");
    assert_non_null(j->commit_note);
    assert_string_equal(j->commit_note, "charged");
    cm_ledger_job_free(j);
    LT_OK(&e, cm_ledger_job_info(e.l, "k", &j));
    assert_null(j->note); /* none given */
    assert_null(j->commit_note);
    cm_ledger_job_free(j);
    lt_close(&e);
}

static void test_commit_note_says_why_the_charge_is_what_it_is(void **state)
{
    (void)state;
    lt_env e;
    setup(&e, "commit_note");
    LT_OK(&e, cm_ledger_reserve_noted(e.l, "acme", "gen", 2, "bob", 60, "2 credits quoted", NULL));
    const char *why = "1 credit for 59.800 s of measured output (requested 75.000 s)";
    LT_OK(&e, cm_ledger_commit_noted(e.l, "gen", 1, why, NULL));
    cm_ledger_job *j = NULL;
    LT_OK(&e, cm_ledger_job_info(e.l, "gen", &j));
    assert_string_equal(j->commit_note, why);
    assert_int_equal(j->charged, 1);
    cm_ledger_job_free(j);
    cm_ledger_history_result *h = NULL;
    LT_OK(&e, cm_ledger_history(e.l, "acme", NULL, &h));
    int found = 0;
    for (size_t i = 0; i < h->n_entries; i++)
        found += !strcmp(h->entries[i].kind, "commit") && !strcmp(h->entries[i].reason, why);
    cm_ledger_history_free(h);
    assert_int_equal(found, 1);
    lt_close(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_with_the_same_binding_returns_the_first_hold),
        cmocka_unit_test(test_job_id_reused_for_another_input_is_a_conflict),
        cmocka_unit_test(test_reserve_of_a_released_job_is_job_closed),
        cmocka_unit_test(test_reserve_of_a_lapsed_job_is_job_closed),
        cmocka_unit_test(test_price_shows_the_cost_of_add_ons_before_buying),
        cmocka_unit_test(test_commit_of_zero_credits_is_refused),
        cmocka_unit_test(test_removing_a_non_member_is_not_a_member),
        cmocka_unit_test(test_regions_are_iso_3166_codes_stored_upper_case),
        cmocka_unit_test(
            test_currencies_are_known_iso_4217_codes_and_prices_at_least_one_minor_unit),
        cmocka_unit_test(test_money_is_shown_in_the_currency_decimals),
        cmocka_unit_test(test_price_changes_are_logged_with_who_when_old_and_new),
        cmocka_unit_test(test_texts_with_control_characters_are_refused),
        cmocka_unit_test(test_a_note_of_reserved_is_kept_like_any_other),
        cmocka_unit_test(test_commit_note_says_why_the_charge_is_what_it_is),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
