/*
 * test_plugin_lapse.c - a pipeline that crashes mid-job (--crash-at: abort(), no
 * cleanup) leaves a hold that lapses after its lease; then the balance is as it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_ledger.h" /* the hold state numbers */
#include "test_plugin_util.h"

#include <signal.h>
#include <time.h>

#define WS "crashy"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void crash_at(const char *stage, const char *input)
{
    char db[512], out[512], log[16384], job[64];
    cmt_path(db, sizeof db, "lapse.db");
    cmt_path(out, sizeof out, "lapse.mp4");
    snprintf(job, sizeof job, "j-crash-%s", stage);
    assert_int_equal(cmt_ledger_setup(db, WS, 5), 0);
    int rc;
    if (input)
        rc = cmt_pipeline(log, sizeof log, db, "--workspace", WS, "--user", "member", "--job",
                          job, "--lease", "2", "--crash-at", stage, input, out,
                          (const char *)NULL);
    else
        rc = cmt_pipeline(log, sizeof log, db, "--workspace", WS, "--user", "member", "--job",
                          job, "--lease", "2", "--crash-at", stage, "--generate", "1.5", out,
                          (const char *)NULL);
    assert_int_equal(rc, 128 + SIGABRT);
    assert_non_null(strstr(log, "crashing now"));
    /* right after the crash the credit is still held ... */
    int64_t held = -1;
    assert_int_equal(cmt_job_state(db, job, NULL), CM_LEDGER_HELD);
    assert_int_equal(cmt_available(db, WS, &held), 4);
    assert_int_equal(held, 1);
    /* ... and one lease after the last hook it has lapsed and come back */
    sleep_ms(2300);
    assert_int_equal(cmt_job_state(db, job, NULL), CM_LEDGER_LAPSED);
    assert_int_equal(cmt_available(db, WS, &held), 5);
    assert_int_equal(held, 0);
    assert_int_equal(cmt_ledger_check(db), 0);
    /* the host reads the same through the plugin */
    assert_int_equal(cmt_pipeline(log, sizeof log, db, "--job", job, "--job-state",
                                  (const char *)NULL),
                     0);
    assert_non_null(strstr(log, "state lapsed"));
    unlink(db);
    unlink(out);
}

static void test_crash_in_transcode_hold_lapses_after_lease(void **state)
{
    (void)state;
    crash_at("transcode", CMT_SAMPLE("clip-40s.mp4"));
}

static void test_crash_in_generate_hold_lapses_after_lease(void **state)
{
    (void)state;
    crash_at("generate", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_in_transcode_hold_lapses_after_lease),
        cmocka_unit_test(test_crash_in_generate_hold_lapses_after_lease),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
