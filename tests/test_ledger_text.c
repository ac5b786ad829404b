/* SPDX-License-Identifier: MIT */
/* The ledger's text rule is the shared strict one (common/cm_text): an id, tier, reason
 * or note that is not well-formed UTF-8 (a surrogate, an overlong form, a byte
 * 0xF5-0xFF, a truncated sequence) is invalid_argument before it reaches storage, on
 * SQLite and, as test_ledger_text_pg, on PostgreSQL (which would otherwise refuse the
 * bytes itself and the caller would see a storage failure). */
#include "ledger_test.h"

static const char *const malformed[] = {
    "\xed\xa0\x80",     /* U+D800, a surrogate */
    "job-\xed\xbf\xbf", /* U+DFFF */
    "\xc0\xaf",         /* overlong '/' */
    "\xe0\x80\xaf",     /* overlong '/' in 3 bytes */
    "\xf0\x80\x80\xaf", /* overlong '/' in 4 bytes */
    "\xf4\x90\x80\x80", /* U+110000, beyond Unicode */
    "\xf5\x80\x80\x80", /* 0xF5 is never a lead byte */
    "id\xff",           /* nor is 0xFF */
    "cut\xe2\x82",      /* truncated at the end */
};

static void test_malformed_utf8_ids_are_invalid_argument_not_storage(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "text_ids");
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 10, "alice", NULL, NULL));
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        const char *s = malformed[i];
        LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_workspace_create(e.l, s, "alice", NULL));
        LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_workspace_create(e.l, "w2", s, NULL));
        LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_member_add(e.l, "acme", s, "alice"));
        LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_reserve(e.l, "acme", s, 1, "bob", 60, NULL));
        LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_reserve(e.l, "acme", "j", 1, s, 60, NULL));
        LT_EXPECT(&e, CM_LEDGER_E_INVALID,
                  cm_ledger_reserve_bound(e.l, "acme", "j", 1, "bob", 60, NULL, s, NULL));
        LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_buy(e.l, "acme", 1, "alice", s, NULL));
    }
    /* nothing was written: the balance is untouched */
    assert_int_equal(lt_available(&e, "acme"), 10);
    lt_close(&e);
}

static void test_malformed_utf8_notes_tiers_and_reasons_are_invalid_argument(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "text_notes");
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 10, "alice", NULL, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "r", 1, "bob", 60, NULL));
    LT_OK(&e, cm_ledger_commit(e.l, "r", CM_LEDGER_ALL, NULL));
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        const char *s = malformed[i];
        LT_EXPECT(&e, CM_LEDGER_E_INVALID,
                  cm_ledger_reserve_noted(e.l, "acme", "j", 1, "bob", 60, s, NULL));
        LT_EXPECT(&e, CM_LEDGER_E_INVALID,
                  cm_ledger_plan_set(e.l, "acme", 5, CM_LEDGER_MONTHLY, s, "alice"));
        LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_refund(e.l, "r", 1, s, "sup", NULL, NULL));
        LT_EXPECT(&e, CM_LEDGER_E_INVALID,
                  cm_ledger_commit_noted(e.l, "r", CM_LEDGER_ALL, s, NULL));
    }
    /* the edges of what is accepted: U+10FFFF and the characters around the surrogates */
    LT_OK(&e, cm_ledger_reserve_noted(e.l, "acme", "\xf4\x8f\xbf\xbf", 1, "bob", 60,
                                      "\xed\x9f\xbf \xee\x80\x80", NULL));
    cm_ledger_job *j = NULL;
    LT_OK(&e, cm_ledger_job_info(e.l, "\xf4\x8f\xbf\xbf", &j));
    assert_string_equal(j->note, "\xed\x9f\xbf \xee\x80\x80");
    cm_ledger_job_free(j);
    lt_close(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_utf8_ids_are_invalid_argument_not_storage),
        cmocka_unit_test(test_malformed_utf8_notes_tiers_and_reasons_are_invalid_argument),
    };
    return cmocka_run_group_tests_name("ledger_text", tests, NULL, NULL);
}
