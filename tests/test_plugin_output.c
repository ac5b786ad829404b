/* SPDX-License-Identifier: MIT */
/*
 * test_plugin_output.c - by-output jobs (--generate): quoted on the requested length,
 * charged on the output's measured length, never more than the quote.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_ledger.h" /* the hold state numbers */
#include "cm_probe.h"
#include "test_plugin_util.h"

#define WS "studio"

typedef cmt_fixture fixture;

static int setup(void **state)
{
    return cmt_fixture_setup(state, "output", WS, 10);
}

static int teardown(void **state)
{
    return cmt_fixture_teardown(state);
}

/* Credits of a file as the probe measures it (what the plugin charges by output). */
static int64_t probe_credits(const char *path, int64_t *measured_ms)
{
    cm_probe *p = NULL;
    cm_probe_report *r = NULL;
    int64_t c = -1;
    if (cm_probe_new(&p, NULL) == CM_PROBE_OK && cm_probe_file(p, path, &r) == CM_PROBE_OK) {
        c = cm_probe_report_credits(r);
        *measured_ms = cm_probe_report_measured_ms(r);
    }
    cm_probe_report_free(r);
    cm_probe_free(p);
    return c;
}

static void test_by_output_job_is_charged_its_real_length(void **state)
{
    fixture *f = *state;
    /* 95 s asked: quoted 2 credits; the model delivers only 35 s: charged 1 */
    assert_int_equal(cmt_pipeline(f->log, sizeof f->log, f->db, "--workspace", WS, "--user",
                                  "member", "--job", "g-short", "--generate", "95",
                                  "--output-extra-ms", "-60000", f->out, (const char *)NULL),
                     0);
    assert_non_null(strstr(f->log, "quote: job g-short: 2 credits for 95.000 s (requested"));
    assert_true(strstr(f->log, "quote:") < strstr(f->log, "stage generate: begin"));
    int64_t ms = 0;
    assert_int_equal(probe_credits(f->out, &ms), 1);
    assert_in_range(ms, 34900, 35200);
    assert_non_null(strstr(f->log, "charged: 1 credit (quote 2)"));
    /* support staff see the requested and the measured length, and why the charge */
    char job[4096];
    assert_int_equal(cmt_ledger(job, sizeof job, f->db, "job", "g-short", (const char *)NULL), 0);
    assert_non_null(strstr(job, "  why: 2 credits quoted for 95.000 s of requested output"));
    assert_non_null(strstr(job, "  charge: 1 credit for 3"));
    assert_non_null(strstr(job, "s of measured output (requested 95.000 s, quoted 2 credits); "
                                "the output was shorter than requested: charged what it "
                                "measured\n"));
    int64_t charged = 0;
    assert_int_equal(cmt_job_state(f->db, "g-short", &charged), CM_LEDGER_COMMITTED);
    assert_int_equal(charged, 1);
    assert_int_equal(cmt_available(f->db, WS, NULL), 9);
    /* an exact request is charged exactly: 61 s is 2 credits */
    assert_int_equal(cmt_pipeline(f->log, sizeof f->log, f->db, "--workspace", WS, "--user",
                                  "owner", "--job", "g-61", "--generate", "61", f->out,
                                  (const char *)NULL),
                     0);
    assert_non_null(strstr(f->log, "charged: 2 credits (quote 2)"));
    assert_int_equal(cmt_available(f->db, WS, NULL), 7);
}

static void test_by_output_never_charges_more_than_the_quote(void **state)
{
    fixture *f = *state;
    /* 20 s asked: quoted 1; the model overshoots to 65 s (2 credits' worth): charged 1 */
    assert_int_equal(cmt_pipeline(f->log, sizeof f->log, f->db, "--workspace", WS, "--user",
                                  "owner", "--job", "g-cap", "--generate", "20",
                                  "--output-extra-ms", "45000", f->out, (const char *)NULL),
                     0);
    int64_t ms = 0;
    assert_int_equal(probe_credits(f->out, &ms), 2);
    assert_non_null(strstr(f->log, "quote: job g-cap: 1 credit "));
    assert_non_null(strstr(f->log, "charged: 1 credit (quote 1)"));
    char job[4096];
    assert_int_equal(cmt_ledger(job, sizeof job, f->db, "job", "g-cap", (const char *)NULL), 0);
    assert_non_null(strstr(job, "(requested 20.000 s, quoted 1 credit); the output ran longer "
                                "than requested: charged the quote\n"));
    int64_t charged = 0;
    assert_int_equal(cmt_job_state(f->db, "g-cap", &charged), CM_LEDGER_COMMITTED);
    assert_int_equal(charged, 1);
    assert_int_equal(cmt_available(f->db, WS, NULL), 9);
}

static void test_by_output_failure_is_refunded(void **state)
{
    fixture *f = *state;
    assert_int_equal(cmt_pipeline(f->log, sizeof f->log, f->db, "--workspace", WS, "--user",
                                  "owner", "--job", "g-fail", "--fail-at", "generate", "--generate",
                                  "3", f->out, (const char *)NULL),
                     1);
    assert_int_equal(cmt_job_state(f->db, "g-fail", NULL), CM_LEDGER_RELEASED);
    assert_int_equal(cmt_available(f->db, WS, NULL), 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_by_output_job_is_charged_its_real_length, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_by_output_never_charges_more_than_the_quote, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_by_output_failure_is_refunded, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
