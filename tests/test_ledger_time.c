/* SPDX-License-Identifier: MIT */
/* Month arithmetic and ISO 8601 parsing: plan periods are calendar months from the start
 * instant, the day clamped (Jan 31 -> Feb 28/29 -> Mar 31), never chained. */
#include "ledger_test.h"
#include "ledger_time.h"

static void expect_add(const char *start, int64_t months, const char *want)
{
    char buf[40];
    int64_t got = cm__time_add_months(lt_time(start), months);
    cm_ledger_time_format(got, buf, sizeof buf);
    if (strcmp(buf, want) != 0)
        fail_msg("%s + %lld months = %s, expected %s", start, (long long)months, buf, want);
}

static void test_jan_31_plus_one_month_is_feb_28(void **state)
{
    (void)state;
    expect_add("2026-01-31T12:00:00Z", 1, "2026-02-28T12:00:00Z");
}

static void test_jan_31_plus_one_month_in_leap_year_is_feb_29(void **state)
{
    (void)state;
    expect_add("2028-01-31T00:00:00Z", 1, "2028-02-29T00:00:00Z");
}

static void test_jan_31_plus_two_months_is_mar_31_not_chained(void **state)
{
    (void)state;
    expect_add("2026-01-31T08:30:00Z", 2, "2026-03-31T08:30:00Z");
    expect_add("2026-01-31T08:30:00Z", 3, "2026-04-30T08:30:00Z");
    expect_add("2026-01-31T08:30:00Z", 4, "2026-05-31T08:30:00Z");
}

static void test_feb_29_plus_twelve_months_is_feb_28(void **state)
{
    (void)state;
    expect_add("2028-02-29T10:00:00Z", 12, "2029-02-28T10:00:00Z");
    expect_add("2028-02-29T10:00:00Z", 48, "2032-02-29T10:00:00Z");
}

static void test_dec_31_rolls_into_next_year(void **state)
{
    (void)state;
    expect_add("2026-12-31T23:59:59Z", 1, "2027-01-31T23:59:59Z");
    expect_add("2026-12-31T23:59:59Z", 2, "2027-02-28T23:59:59Z");
    expect_add("2026-12-31T00:00:00Z", 12, "2027-12-31T00:00:00Z");
    expect_add("2027-01-15T00:00:00Z", -1, "2026-12-15T00:00:00Z");
}

static void test_days_from_civil_round_trips(void **state)
{
    (void)state;
    assert_int_equal(cm__time_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(cm__time_days_from_civil(2000, 3, 1), 11017);
    for (int64_t d = -800000; d <= 800000; d += 37) {
        int64_t y;
        int m, dd;
        cm__time_civil_from_days(d, &y, &m, &dd);
        assert_int_equal(cm__time_days_from_civil(y, m, dd), d);
    }
}

static void test_iso_8601_parses_and_formats_exactly(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(cm_ledger_time_parse("1970-01-01T00:00:00Z", &ms), CM_LEDGER_OK);
    assert_int_equal(ms, 0);
    assert_int_equal(cm_ledger_time_parse("2026-01-31T12:00:00Z", &ms), CM_LEDGER_OK);
    assert_int_equal(ms, INT64_C(1769860800000));
    assert_int_equal(cm_ledger_time_parse("2026-01-31T12:00:00.25Z", &ms), CM_LEDGER_OK);
    assert_int_equal(ms, INT64_C(1769860800250));
    char buf[40];
    assert_string_equal(cm_ledger_time_format(ms, buf, sizeof buf), "2026-01-31T12:00:00.250Z");
    assert_string_equal(cm_ledger_time_format(INT64_C(951782400000), buf, sizeof buf),
                        "2000-02-29T00:00:00Z");
}

/* Found by fuzz_ledger_args (tests/fuzz/crashers/ledger_args-format-int64-min.bin): the
 * day split computed days * 86400000, which overflows for ms near INT64_MIN. */
static void test_format_takes_every_int64(void **state)
{
    (void)state;
    char buf[40];
    assert_string_equal(cm_ledger_time_format(INT64_MIN, buf, sizeof buf),
                        "-292275055-05-16T16:47:04.192Z");
    assert_string_equal(cm_ledger_time_format(INT64_MAX, buf, sizeof buf),
                        "292278994-08-17T07:12:55.807Z");
    assert_string_equal(cm_ledger_time_format(-1, buf, sizeof buf), "1969-12-31T23:59:59.999Z");
}

static void test_iso_8601_rejects_malformed_and_impossible_dates(void **state)
{
    (void)state;
    int64_t ms;
    const char *bad[] = {"",
                         "2026-01-31",
                         "2026-01-31T12:00:00",
                         "2026-01-31T12:00:00+01:00",
                         "2026-02-29T00:00:00Z",
                         "2026-13-01T00:00:00Z",
                         "2026-01-32T00:00:00Z",
                         "2026-01-31T24:00:00Z",
                         "2026-01-31T12:00:00.Z",
                         "2026-01-31 12:00:00Z",
                         "2026-01-31T12:00:00Zjunk"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (cm_ledger_time_parse(bad[i], &ms) != CM_LEDGER_E_INVALID)
            fail_msg("accepted '%s'", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jan_31_plus_one_month_is_feb_28),
        cmocka_unit_test(test_jan_31_plus_one_month_in_leap_year_is_feb_29),
        cmocka_unit_test(test_jan_31_plus_two_months_is_mar_31_not_chained),
        cmocka_unit_test(test_feb_29_plus_twelve_months_is_feb_28),
        cmocka_unit_test(test_dec_31_rolls_into_next_year),
        cmocka_unit_test(test_days_from_civil_round_trips),
        cmocka_unit_test(test_iso_8601_parses_and_formats_exactly),
        cmocka_unit_test(test_iso_8601_rejects_malformed_and_impossible_dates),
        cmocka_unit_test(test_format_takes_every_int64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
