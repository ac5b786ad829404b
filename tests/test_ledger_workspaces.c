/* SPDX-License-Identifier: MIT */
/* Workspaces, members, prices and add-on purchases: one owner, a shared pool, strangers
 * learn nothing, add-ons at the region's unit price, never expiring, idempotent by
 * payment reference. */
#include "ledger_test.h"

static void test_workspace_create_is_idempotent_and_conflicts_on_other_owner(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "wscreate");
    LT_OK(&e, cm_ledger_workspace_create(e.l, "acme", "alice", NULL));
    LT_OK(&e, cm_ledger_workspace_create(e.l, "acme", "alice", "default"));
    LT_EXPECT(&e, CM_LEDGER_E_CONFLICT, cm_ledger_workspace_create(e.l, "acme", "eve", NULL));
    LT_EXPECT(&e, CM_LEDGER_E_CONFLICT, cm_ledger_workspace_create(e.l, "acme", "alice", "EU"));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_workspace_create(e.l, "", "alice", NULL));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_workspace_create(e.l, "x", NULL, NULL));
    lt_close(&e);
}

static void test_members_spend_from_the_shared_pool(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "pool");
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 10, "alice", NULL, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "jb", 4, "bob", 0, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "ja", 6, "alice", 0, NULL));
    LT_EXPECT(&e, CM_LEDGER_E_INSUFFICIENT,
              cm_ledger_reserve(e.l, "acme", "jc", 1, "bob", 0, NULL));
    lt_close(&e);
}

static void test_member_add_and_remove_are_idempotent_and_owner_only(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "members");
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_member_add(e.l, "acme", "bob", "alice"));
    LT_EXPECT(&e, CM_LEDGER_E_FORBIDDEN, cm_ledger_member_add(e.l, "acme", "carol", "bob"));
    LT_EXPECT(&e, CM_LEDGER_E_FORBIDDEN, cm_ledger_member_remove(e.l, "acme", "bob", "bob"));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_member_remove(e.l, "acme", "alice", "alice"));
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 5, "alice", NULL, NULL));
    LT_OK(&e, cm_ledger_member_remove(e.l, "acme", "bob", "alice"));
    LT_EXPECT(&e, CM_LEDGER_E_NO_WORKSPACE, cm_ledger_reserve(e.l, "acme", "j", 1, "bob", 0, NULL));
    lt_close(&e);
}

static void test_stranger_learns_nothing_about_a_workspace(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "stranger");
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 5, "alice", NULL, NULL));
    char real[512], missing[512];
    /* The same code and the same sentence as for a workspace that does not exist. */
    const char *ws[2] = {"acme", "acme"};
    for (int i = 0; i < 2; i++) {
        char *dst = i == 0 ? real : missing;
        const char *w = i == 0 ? ws[0] : "ghost";
        (void)ws;
        cm_ledger_balance_result *b = NULL;
        LT_EXPECT(&e, CM_LEDGER_E_NO_WORKSPACE, cm_ledger_balance(e.l, w, "mallory", &b));
        assert_null(b);
        char *msg = strdup(cm_ledger_errmsg(e.l));
        /* Replace the workspace name so the sentences can be compared. */
        char *p = strstr(msg, w);
        assert_non_null(p);
        snprintf(dst, 512, "%.*sWS%s", (int)(p - msg), msg, p + strlen(w));
        free(msg);
    }
    assert_string_equal(real, missing);
    cm_ledger_quote_result *q = NULL;
    cm_ledger_history_result *h = NULL;
    LT_EXPECT(&e, CM_LEDGER_E_NO_WORKSPACE, cm_ledger_quote(e.l, "acme", 1, "mallory", &q));
    LT_EXPECT(&e, CM_LEDGER_E_NO_WORKSPACE, cm_ledger_history(e.l, "acme", "mallory", &h));
    LT_EXPECT(&e, CM_LEDGER_E_NO_WORKSPACE,
              cm_ledger_reserve(e.l, "acme", "jm", 1, "mallory", 0, NULL));
    LT_EXPECT(&e, CM_LEDGER_E_NO_WORKSPACE, cm_ledger_buy(e.l, "acme", 1, "mallory", NULL, NULL));
    LT_EXPECT(&e, CM_LEDGER_E_NO_WORKSPACE,
              cm_ledger_member_add(e.l, "acme", "mallory", "mallory"));
    LT_EXPECT(&e, CM_LEDGER_E_NO_WORKSPACE, cm_ledger_plan_cancel(e.l, "acme", "mallory"));
    assert_int_equal(lt_available(&e, "acme"), 5);
    lt_close(&e);
}

static void test_member_cannot_buy_credits(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "memberbuy");
    lt_workspace(&e);
    LT_EXPECT(&e, CM_LEDGER_E_FORBIDDEN, cm_ledger_buy(e.l, "acme", 5, "bob", NULL, NULL));
    assert_int_equal(lt_available(&e, "acme"), 0);
    lt_close(&e);
}

static void test_addon_costs_default_usd_15_minor_units_a_credit(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "price");
    lt_workspace(&e);
    cm_ledger_purchase p;
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 100, "alice", NULL, &p));
    assert_int_equal(p.credits, 100);
    assert_int_equal(p.unit_minor, 15);
    assert_int_equal(p.total_minor, 1500);
    assert_string_equal(p.currency, "USD");
    assert_int_equal(p.replayed, 0);
    lt_close(&e);
}

static void test_addon_uses_the_workspace_region_price(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "region");
    LT_OK(&e, cm_ledger_price_set(e.l, "IN", "INR", 900));
    LT_OK(&e, cm_ledger_workspace_create(e.l, "mumbai", "ravi", "IN"));
    LT_OK(&e, cm_ledger_workspace_create(e.l, "nowhere", "zed", "FJ")); /* no price row */
    cm_ledger_purchase p;
    LT_OK(&e, cm_ledger_buy(e.l, "mumbai", 3, "ravi", NULL, &p));
    assert_int_equal(p.total_minor, 2700);
    assert_string_equal(p.currency, "INR");
    LT_OK(&e, cm_ledger_buy(e.l, "nowhere", 3, "zed", NULL, &p));
    assert_int_equal(p.total_minor, 45);
    assert_string_equal(p.currency, "USD");
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_price_set(e.l, "EU", "eur", 10));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_price_set(e.l, "EU", "EUR", -1));
    lt_close(&e);
}

static void test_repeated_payment_reference_buys_nothing_more(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "payref");
    lt_workspace(&e);
    cm_ledger_purchase p1, p2;
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 10, "alice", "pay-1", &p1));
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 10, "alice", "pay-1", &p2));
    assert_int_equal(p2.replayed, 1);
    assert_int_equal(p2.grant_id, p1.grant_id);
    assert_int_equal(p2.total_minor, 150);
    assert_int_equal(lt_available(&e, "acme"), 10);
    LT_EXPECT(&e, CM_LEDGER_E_CONFLICT, cm_ledger_buy(e.l, "acme", 11, "alice", "pay-1", NULL));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_buy(e.l, "acme", 0, "alice", NULL, NULL));
    lt_close(&e);
}

static void test_addon_credits_never_expire(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "noexpire");
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 7, "alice", NULL, NULL));
    lt_at(&e, "2036-01-01T00:00:00Z");
    LT_OK(&e, cm_ledger_sweep(e.l, NULL));
    assert_int_equal(lt_available(&e, "acme"), 7);
    lt_close(&e);
}

static void test_history_lists_every_movement_oldest_first(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "history");
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 7, "alice", "r1", NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "j", 2, "bob", 0, NULL));
    LT_OK(&e, cm_ledger_release(e.l, "j", NULL));
    cm_ledger_history_result *h = NULL;
    LT_OK(&e, cm_ledger_history(e.l, "acme", "bob", &h));
    const char *kinds[] = {"workspace", "member_add", "purchase", "hold", "release"};
    assert_int_equal(h->n_entries, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(h->entries[i].kind, kinds[i]);
        if (i)
            assert_true(h->entries[i].id > h->entries[i - 1].id);
    }
    assert_string_equal(h->entries[2].ref, "r1");
    assert_string_equal(h->entries[3].actor, "bob");
    assert_string_equal(h->entries[3].job, "j");
    cm_ledger_history_free(h);
    lt_close(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_workspace_create_is_idempotent_and_conflicts_on_other_owner),
        cmocka_unit_test(test_members_spend_from_the_shared_pool),
        cmocka_unit_test(test_member_add_and_remove_are_idempotent_and_owner_only),
        cmocka_unit_test(test_stranger_learns_nothing_about_a_workspace),
        cmocka_unit_test(test_member_cannot_buy_credits),
        cmocka_unit_test(test_addon_costs_default_usd_15_minor_units_a_credit),
        cmocka_unit_test(test_addon_uses_the_workspace_region_price),
        cmocka_unit_test(test_repeated_payment_reference_buys_nothing_more),
        cmocka_unit_test(test_addon_credits_never_expire),
        cmocka_unit_test(test_history_lists_every_movement_oldest_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
