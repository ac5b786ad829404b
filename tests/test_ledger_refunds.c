/* SPDX-License-Identifier: MIT */
/* Refunds: bounded by charged minus refunded, back to the grants charged last first,
 * into a non-expiring refund grant where those expired, idempotent by reference. */
#include "ledger_test.h"

/* acme: plan grant P (10, expires Feb 28 12:00), addon A (10). Job j charged 15:
 * 10 from P then 5 from A. */
static void setup_charge(lt_env *e, const char *name)
{
    lt_open(e, name);
    lt_workspace(e);
    LT_OK(e, cm_ledger_plan_set(e->l, "acme", 10, CM_LEDGER_MONTHLY, NULL, "alice"));
    LT_OK(e, cm_ledger_buy(e->l, "acme", 10, "alice", NULL, NULL));
    LT_OK(e, cm_ledger_reserve(e->l, "acme", "j", 15, "bob", 0, NULL));
    LT_OK(e, cm_ledger_commit(e->l, "j", CM_LEDGER_ALL, NULL));
}

static void test_partial_refund_goes_back_to_the_last_charged_grant(void **state)
{
    (void)state;
    lt_env e;
    setup_charge(&e, "refundlast");
    cm_ledger_refund_result r;
    LT_OK(&e, cm_ledger_refund(e.l, "j", 3, "bad output", "sam", NULL, &r));
    assert_int_equal(r.credits, 3);
    assert_int_equal(r.to_source, 3);
    assert_int_equal(r.refund_grant_id, -1);
    cm_ledger_job *j = NULL;
    LT_OK(&e, cm_ledger_job_info(e.l, "j", &j));
    assert_int_equal(j->refunded, 3);
    assert_int_equal(j->takes[0].refunded, 0);
    assert_int_equal(j->takes[1].refunded, 3); /* the add-on, charged last */
    cm_ledger_job_free(j);
    assert_int_equal(lt_available(&e, "acme"), 8);
    lt_close(&e);
}

static void test_refund_never_exceeds_charged_minus_refunded(void **state)
{
    (void)state;
    lt_env e;
    setup_charge(&e, "bounded");
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_refund(e.l, "j", 16, "x", "sam", NULL, NULL));
    LT_OK(&e, cm_ledger_refund(e.l, "j", 10, "x", "sam", NULL, NULL));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_refund(e.l, "j", 6, "x", "sam", NULL, NULL));
    cm_ledger_refund_result r;
    LT_OK(&e, cm_ledger_refund(e.l, "j", CM_LEDGER_ALL, "x", "sam", NULL, &r));
    assert_int_equal(r.credits, 5);
    assert_int_equal(r.total_refunded, 15);
    LT_EXPECT(&e, CM_LEDGER_E_INVALID,
              cm_ledger_refund(e.l, "j", CM_LEDGER_ALL, "x", "sam", NULL, NULL));
    assert_int_equal(lt_available(&e, "acme"), 20);
    lt_close(&e);
}

static void test_refund_to_an_expired_grant_goes_into_a_refund_grant(void **state)
{
    (void)state;
    lt_env e;
    setup_charge(&e, "refundexpired");
    lt_at(&e, "2026-03-01T00:00:00Z"); /* P expired, a new period granted 10 */
    cm_ledger_refund_result r;
    LT_OK(&e, cm_ledger_refund(e.l, "j", CM_LEDGER_ALL, "pipeline bug", "sam", NULL, &r));
    assert_int_equal(r.to_source, 5);
    assert_true(r.refund_grant_id > 0);
    cm_ledger_balance_result *b = NULL;
    LT_OK(&e, cm_ledger_balance(e.l, "acme", NULL, &b));
    assert_int_equal(b->available, 10 + 10 + 10); /* new period, add-on, refund grant */
    int found = 0;
    for (size_t i = 0; i < b->n_grants; i++)
        if (b->grants[i].kind == CM_LEDGER_GRANT_REFUND) {
            found = 1;
            assert_int_equal(b->grants[i].id, r.refund_grant_id);
            assert_int_equal(b->grants[i].remaining, 10);
            assert_int_equal(b->grants[i].expires_ms, -1);
        }
    assert_true(found);
    cm_ledger_balance_free(b);
    lt_at(&e, "2030-01-01T00:00:00Z"); /* the refund grant never expires */
    LT_OK(&e, cm_ledger_plan_cancel(e.l, "acme", "alice"));
    lt_at(&e, "2031-01-01T00:00:00Z");
    assert_int_equal(lt_available(&e, "acme"), 20);
    lt_close(&e);
}

static void test_repeated_refund_reference_is_a_no_op(void **state)
{
    (void)state;
    lt_env e;
    setup_charge(&e, "refundref");
    cm_ledger_refund_result r;
    LT_OK(&e, cm_ledger_refund(e.l, "j", 4, "x", "sam", "T-1", &r));
    LT_OK(&e, cm_ledger_refund(e.l, "j", 4, "x", "sam", "T-1", &r));
    assert_int_equal(r.replayed, 1);
    assert_int_equal(r.credits, 4);
    assert_int_equal(r.total_refunded, 4);
    assert_int_equal(lt_available(&e, "acme"), 9);
    LT_EXPECT(&e, CM_LEDGER_E_CONFLICT, cm_ledger_refund(e.l, "j", 5, "x", "sam", "T-1", NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "k", 1, "bob", 0, NULL));
    LT_OK(&e, cm_ledger_commit(e.l, "k", CM_LEDGER_ALL, NULL));
    LT_EXPECT(&e, CM_LEDGER_E_CONFLICT, cm_ledger_refund(e.l, "k", 4, "x", "sam", "T-1", NULL));
    lt_close(&e);
}

static void test_refund_of_an_uncharged_hold_is_invalid(void **state)
{
    (void)state;
    lt_env e;
    setup_charge(&e, "refundheld");
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 5, "alice", NULL, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "h", 2, "bob", 0, NULL));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_refund(e.l, "h", 1, "x", "sam", NULL, NULL));
    LT_OK(&e, cm_ledger_release(e.l, "h", NULL));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_refund(e.l, "h", 1, "x", "sam", NULL, NULL));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_refund(e.l, "j", 1, "", "sam", NULL, NULL));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_refund(e.l, "j", 1, "x", NULL, NULL, NULL));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_refund(e.l, "j", 0, "x", "sam", NULL, NULL));
    lt_close(&e);
}

static void test_refund_is_journalled_with_operator_reason_and_reference(void **state)
{
    (void)state;
    lt_env e;
    setup_charge(&e, "refundjournal");
    LT_OK(&e, cm_ledger_refund(e.l, "j", 2, "customer unhappy", "sam", "T-9", NULL));
    cm_ledger_history_result *h = NULL;
    LT_OK(&e, cm_ledger_history(e.l, "acme", NULL, &h));
    const cm_ledger_entry *last = &h->entries[h->n_entries - 1];
    assert_string_equal(last->kind, "refund");
    assert_string_equal(last->actor, "sam");
    assert_string_equal(last->reason, "customer unhappy");
    assert_string_equal(last->ref, "T-9");
    assert_int_equal(last->credits, 2);
    cm_ledger_history_free(h);
    lt_close(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partial_refund_goes_back_to_the_last_charged_grant),
        cmocka_unit_test(test_refund_never_exceeds_charged_minus_refunded),
        cmocka_unit_test(test_refund_to_an_expired_grant_goes_into_a_refund_grant),
        cmocka_unit_test(test_repeated_refund_reference_is_a_no_op),
        cmocka_unit_test(test_refund_of_an_uncharged_hold_is_invalid),
        cmocka_unit_test(test_refund_is_journalled_with_operator_reason_and_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
