/* SPDX-License-Identifier: MIT */
/*
 * test_plugin_billing.c - end to end: cm-pipeline loads the plugin and runs real jobs
 * on the samples; the ledger shows exactly what each outcome must charge.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_ledger.h" /* the hold state numbers */
#include "cm_probe.h"
#include "test_plugin_util.h"

#define WS "acme"

typedef cmt_fixture fixture;

static int setup(void **state)
{
    return cmt_fixture_setup(state, "billing", WS, 10);
}

static int teardown(void **state)
{
    return cmt_fixture_teardown(state);
}

static int run_job(fixture *f, const char *user, const char *job, const char *input,
                   const char *extra1, const char *extra2)
{
    return cmt_pipeline(f->log, sizeof f->log, f->db, "--workspace", WS, "--user", user, "--job",
                        job, input, f->out, extra1, extra2, (const char *)NULL);
}

static void test_success_charges_exactly_the_quote(void **state)
{
    fixture *f = *state;
    /* 60.6 s is past the grace: two started minutes */
    assert_int_equal(run_job(f, "member", "j-ok", CMT_SAMPLE("edge-60.6s.mkv"), NULL, NULL), 0);
    assert_non_null(strstr(f->log, "quote: job j-ok: 2 credits"));
    assert_non_null(strstr(f->log, "charged: 2 credits (quote 2)"));
    const char *quote = strstr(f->log, "quote:");
    const char *stage = strstr(f->log, "stage probe: begin");
    assert_non_null(stage);
    assert_true(quote < stage); /* the price is shown before any work */
    assert_non_null(strstr(f->log, "stage transcode: ok"));
    assert_non_null(strstr(f->log, "stage thumbnail: ok"));
    assert_int_equal(cmt_available(f->db, WS, NULL), 8);
    int64_t charged = 0;
    assert_int_equal(cmt_job_state(f->db, "j-ok", &charged), CM_LEDGER_COMMITTED);
    assert_int_equal(charged, 2);
    /* support staff see why: the measured duration and how it was measured */
    char why[4096];
    assert_int_equal(cmt_ledger(why, sizeof why, f->db, "job", "j-ok", (const char *)NULL), 0);
    assert_non_null(strstr(why, "why: 2 credits for 60.600 s measured by "));
    assert_int_equal(access(f->out, R_OK), 0);
    assert_int_equal(access(f->thumb, R_OK), 0);
}

static void test_failure_at_each_stage_leaves_the_balance(void **state)
{
    fixture *f = *state;
    const char *stages[] = {"probe", "transcode", "thumbnail"};
    for (int i = 0; i < 3; i++) {
        char job[32];
        snprintf(job, sizeof job, "j-fail-%s", stages[i]);
        assert_int_equal(
            run_job(f, "owner", job, CMT_SAMPLE("clip-40s.mp4"), "--fail-at", stages[i]), 1);
        char want[64];
        snprintf(want, sizeof want, "stage %s: failed", stages[i]);
        assert_non_null(strstr(f->log, want));
        int64_t held = -1;
        assert_int_equal(cmt_available(f->db, WS, &held), 10);
        assert_int_equal(held, 0);
        assert_int_equal(cmt_job_state(f->db, job, NULL), CM_LEDGER_RELEASED);
        assert_int_not_equal(access(f->out, F_OK), 0); /* no half output left behind */
    }
}

static void test_retried_job_id_does_not_charge_twice(void **state)
{
    fixture *f = *state;
    assert_int_equal(run_job(f, "owner", "j-retry", CMT_SAMPLE("clip-40s.mp4"), NULL, NULL), 0);
    assert_int_equal(cmt_available(f->db, WS, NULL), 9);
    assert_int_equal(run_job(f, "owner", "j-retry", CMT_SAMPLE("clip-40s.mp4"), NULL, NULL), 0);
    assert_non_null(strstr(f->log, "already charged"));
    assert_int_equal(cmt_available(f->db, WS, NULL), 9);
    int64_t charged = 0;
    assert_int_equal(cmt_job_state(f->db, "j-retry", &charged), CM_LEDGER_COMMITTED);
    assert_int_equal(charged, 1);
    /* a released job id stays closed: a new attempt needs a new id */
    assert_int_equal(
        run_job(f, "owner", "j-closed", CMT_SAMPLE("clip-40s.mp4"), "--fail-at", "probe"), 1);
    assert_int_equal(run_job(f, "owner", "j-closed", CMT_SAMPLE("clip-40s.mp4"), NULL, NULL), 1);
    assert_non_null(strstr(f->log, "job_closed"));
    assert_int_equal(cmt_available(f->db, WS, NULL), 9);
}

static void test_insufficient_balance_refuses_before_any_stage(void **state)
{
    fixture *f = *state;
    /* 25:40 costs 26 credits; the workspace has 10 */
    assert_int_equal(run_job(f, "owner", "j-big", CMT_SAMPLE("long-25m40.mkv"), NULL, NULL), 1);
    assert_non_null(strstr(f->log, "refused: insufficient_credits"));
    assert_null(strstr(f->log, "stage "));
    int64_t held = -1;
    assert_int_equal(cmt_available(f->db, WS, &held), 10);
    assert_int_equal(held, 0);
    assert_int_equal(cmt_job_state(f->db, "j-big", NULL), -1); /* nothing was held */
}

static void test_non_member_is_refused(void **state)
{
    fixture *f = *state;
    assert_int_equal(run_job(f, "mallory", "j-mallory", CMT_SAMPLE("clip-40s.mp4"), NULL, NULL), 1);
    assert_non_null(strstr(f->log, "refused: forbidden"));
    assert_null(strstr(f->log, "stage "));
    assert_int_equal(cmt_available(f->db, WS, NULL), 10);
}

static void test_bad_file_is_refused_with_the_probe_code(void **state)
{
    fixture *f = *state;
    const char *bad[] = {CMT_SAMPLE("bad/random.bin"), CMT_SAMPLE("bad/empty.mp4"),
                         CMT_SAMPLE("bad/still.png"), CMT_SAMPLE("bad/missing.mp4")};
    cm_probe *p = NULL;
    assert_int_equal(cm_probe_new(&p, NULL), CM_PROBE_OK);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cm_probe_report *r = NULL;
        int code = cm_probe_file(p, bad[i], &r);
        cm_probe_report_free(r);
        assert_int_not_equal(code, CM_PROBE_OK);
        assert_int_equal(run_job(f, "owner", "j-bad", bad[i], NULL, NULL), 1);
        char want[96];
        snprintf(want, sizeof want, "refused: bad_file (probe: %s)", cm_probe_err_name(code));
        if (!strstr(f->log, want))
            print_error("%s: wanted \"%s\" in:\n%s\n", bad[i], want, f->log);
        assert_non_null(strstr(f->log, want));
        assert_null(strstr(f->log, "stage "));
    }
    cm_probe_free(p);
    assert_int_equal(cmt_available(f->db, WS, NULL), 10);
}

static void test_usage_errors_exit_2(void **state)
{
    fixture *f = *state;
    assert_int_equal(
        run_job(f, "owner", "j-usage", CMT_SAMPLE("clip-40s.mp4"), "--fail-at", "nonsense"), 2);
    assert_int_equal(
        cmt_pipeline(f->log, sizeof f->log, f->db, "--workspace", WS, (const char *)NULL), 2);
    assert_int_equal(cmt_available(f->db, WS, NULL), 10);
}

/* Issue 12 §2, reproduced: job up-1 on a 40 s clip charged 1; up-1 again on another 40 s
 * file ran free as "a retry", and so did --generate 55 under that id. */
static void test_job_id_reused_on_another_input_is_a_conflict(void **state)
{
    fixture *f = *state;
    assert_int_equal(run_job(f, "owner", "up-1", CMT_SAMPLE("clip-40s.mp4"), NULL, NULL), 0);
    assert_int_equal(cmt_available(f->db, WS, NULL), 9);
    /* another 40 s file under the same id: nothing runs, nothing is charged */
    assert_int_equal(run_job(f, "owner", "up-1", CMT_SAMPLE("audio-40s.m4a"), NULL, NULL), 1);
    assert_non_null(strstr(f->log, "refused: conflict (ledger: conflict)"));
    assert_null(strstr(f->log, "stage "));
    assert_null(strstr(f->log, "not charged again"));
    /* a by-output job under a by-input job's id */
    assert_int_equal(cmt_pipeline(f->log, sizeof f->log, f->db, "--workspace", WS, "--user",
                                  "owner", "--job", "up-1", "--generate", "55", f->out,
                                  (const char *)NULL),
                     1);
    assert_non_null(strstr(f->log, "refused: conflict"));
    assert_null(strstr(f->log, "stage "));
    /* the same file again is a true retry: the first result, charged once */
    assert_int_equal(run_job(f, "owner", "up-1", CMT_SAMPLE("clip-40s.mp4"), NULL, NULL), 0);
    assert_non_null(strstr(f->log, "already charged"));
    assert_int_equal(cmt_available(f->db, WS, NULL), 9);
    char job[4096];
    assert_int_equal(cmt_ledger(job, sizeof job, f->db, "job", "up-1", (const char *)NULL), 0);
    assert_non_null(strstr(job, "  input: by-input size="));
    assert_non_null(strstr(job, " ms=40"));
    assert_non_null(strstr(job, " fnv1a64="));
}

/* Issue 12 §2, reproduced: after `refund up-1`, running up-1 again was free. */
static void test_refunded_job_is_closed(void **state)
{
    fixture *f = *state;
    assert_int_equal(run_job(f, "owner", "up-2", CMT_SAMPLE("clip-40s.mp4"), NULL, NULL), 0);
    char out[4096];
    assert_int_equal(cmt_ledger(out, sizeof out, f->db, "refund", "up-2", "--reason", "broken",
                                "--by", "sam", (const char *)NULL),
                     0);
    assert_int_equal(cmt_available(f->db, WS, NULL), 10);
    assert_int_equal(run_job(f, "owner", "up-2", CMT_SAMPLE("clip-40s.mp4"), NULL, NULL), 1);
    assert_non_null(strstr(f->log, "refused: job_closed"));
    assert_null(strstr(f->log, "stage "));
    assert_null(strstr(f->log, "already charged"));
    assert_int_equal(cmt_available(f->db, WS, NULL), 10);
    /* a released id is closed the same way (the ledger says job_closed) */
    assert_int_equal(
        run_job(f, "owner", "up-3", CMT_SAMPLE("clip-40s.mp4"), "--fail-at", "transcode"), 1);
    assert_int_equal(run_job(f, "owner", "up-3", CMT_SAMPLE("clip-40s.mp4"), NULL, NULL), 1);
    assert_non_null(strstr(f->log, "refused: job_closed (ledger: job_closed)"));
    assert_int_equal(cmt_available(f->db, WS, NULL), 10);
}

/* Issue 12 §3: the price before any hold. */
static void test_quote_only_shows_the_price_and_holds_nothing(void **state)
{
    fixture *f = *state;
    assert_int_equal(cmt_pipeline(f->log, sizeof f->log, f->db, "--workspace", WS, "--user",
                                  "member", "--quote-only", CMT_SAMPLE("edge-60.6s.mkv"),
                                  (const char *)NULL),
                     0);
    assert_non_null(strstr(f->log, "quote: job (quote only): 2 credits for 60.600 s"));
    assert_non_null(strstr(f->log, "quote: workspace acme has 10 credits available: affordable"));
    assert_non_null(strstr(f->log, "quote: 2 from grant 1 (addon, expires never)"));
    assert_non_null(strstr(f->log, "quote: nothing was held or charged"));
    assert_null(strstr(f->log, "stage "));
    int64_t held = -1;
    assert_int_equal(cmt_available(f->db, WS, &held), 10);
    assert_int_equal(held, 0);
    /* by output: the requested length */
    assert_int_equal(cmt_pipeline(f->log, sizeof f->log, f->db, "--workspace", WS, "--user",
                                  "owner", "--quote-only", "--generate", "75", (const char *)NULL),
                     0);
    assert_non_null(strstr(f->log, "2 credits for 75.000 s (requested)"));
    /* not affordable is still a quote (exit 0), nothing held */
    assert_int_equal(cmt_pipeline(f->log, sizeof f->log, f->db, "--workspace", WS, "--user",
                                  "owner", "--job", "j-big", "--quote-only",
                                  CMT_SAMPLE("long-25m40.mkv"), (const char *)NULL),
                     0);
    assert_non_null(strstr(f->log, "quote: job j-big: 26 credits"));
    assert_non_null(strstr(f->log, "not affordable"));
    assert_int_equal(cmt_job_state(f->db, "j-big", NULL), -1);
    /* a stranger is refused */
    assert_int_equal(cmt_pipeline(f->log, sizeof f->log, f->db, "--workspace", WS, "--user",
                                  "mallory", "--quote-only", CMT_SAMPLE("clip-40s.mp4"),
                                  (const char *)NULL),
                     1);
    assert_non_null(strstr(f->log, "refused: forbidden"));
    assert_int_equal(cmt_available(f->db, WS, &held), 10);
    assert_int_equal(held, 0);
}

/* Issue 12 §5: the receipt says when the grace changed the credits. */
static void test_receipt_states_the_grace_that_changed_the_credits(void **state)
{
    fixture *f = *state;
    assert_int_equal(run_job(f, "owner", "j-604", CMT_SAMPLE("edge-60.4s.mkv"), NULL, NULL), 0);
    assert_non_null(strstr(f->log, "charged: 1 credit (quote 1)"));
    char why[4096];
    assert_int_equal(cmt_ledger(why, sizeof why, f->db, "job", "j-604", (const char *)NULL), 0);
    assert_non_null(strstr(why, "why: 1 credit for 60.400 s measured by "));
    assert_non_null(strstr(why, ", 500 ms grace for encoder padding"));
    /* 60.6 s is 2 credits with or without the grace: no mention */
    assert_int_equal(run_job(f, "owner", "j-606", CMT_SAMPLE("edge-60.6s.mkv"), NULL, NULL), 0);
    assert_int_equal(cmt_ledger(why, sizeof why, f->db, "job", "j-606", (const char *)NULL), 0);
    assert_null(strstr(why, "grace"));
}

/* Issue 15: the keepalive renews the lease while a stage runs with no hook in between:
 * a 6 s transcode on a 2 s lease is charged; with the keepalive off, the same kind of
 * stage loses its hold and nothing is charged. */
static void test_a_stage_three_times_the_lease_commits_without_hooks(void **state)
{
    fixture *f = *state;
    assert_int_equal(cmt_pipeline(f->log, sizeof f->log, f->db, "--workspace", WS, "--user",
                                  "member", "--job", "j-long", "--lease", "2", "--stage-sleep",
                                  "transcode:6", CMT_SAMPLE("clip-40s.mp4"), f->out,
                                  (const char *)NULL),
                     0);
    assert_non_null(strstr(f->log, "charged: 1 credit (quote 1)"));
    int64_t charged = 0;
    assert_int_equal(cmt_job_state(f->db, "j-long", &charged), CM_LEDGER_COMMITTED);
    assert_int_equal(charged, 1);
    assert_int_equal(cmt_available(f->db, WS, NULL), 9);
}

static void test_without_the_keepalive_a_stage_longer_than_the_lease_lapses(void **state)
{
    fixture *f = *state;
    assert_int_equal(cmt_pipeline(f->log, sizeof f->log, f->db, "--workspace", WS, "--user",
                                  "member", "--job", "j-nokeep", "--lease", "1",
                                  "--keepalive-divisor", "-1", "--stage-sleep", "transcode:2.5",
                                  CMT_SAMPLE("clip-40s.mp4"), f->out, (const char *)NULL),
                     1);
    assert_non_null(strstr(f->log, "lease_lapsed"));
    assert_int_equal(cmt_job_state(f->db, "j-nokeep", NULL), CM_LEDGER_LAPSED);
    assert_int_equal(cmt_available(f->db, WS, NULL), 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_stage_three_times_the_lease_commits_without_hooks,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_without_the_keepalive_a_stage_longer_than_the_lease_lapses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_success_charges_exactly_the_quote, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_at_each_stage_leaves_the_balance, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_retried_job_id_does_not_charge_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insufficient_balance_refuses_before_any_stage, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_non_member_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_file_is_refused_with_the_probe_code, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_usage_errors_exit_2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_id_reused_on_another_input_is_a_conflict, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_refunded_job_is_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quote_only_shows_the_price_and_holds_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_receipt_states_the_grace_that_changed_the_credits,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
