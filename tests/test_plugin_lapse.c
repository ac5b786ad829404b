/* SPDX-License-Identifier: MIT */
/*
 * test_plugin_lapse.c - a pipeline that crashes mid-job (--crash-at: abort(), no
 * cleanup) leaves a hold that lapses after its lease; then the balance is as it was.
 *
 * No waiting: the lease ends where the ledger says (lease_until of cm-ledger --json job),
 * and time is moved past it with the clocks the programs take: cm-ledger --now for the
 * ledger's reads, cm-pipeline --clock-offset-s for the host's.
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
/* Long enough that "right after the crash" is well inside it on any machine. */
#define LEASE_S 600
#define LEASE_ARG "600"

/* The instant the hold of job lapses: its lease_until, read with cm-ledger --json job. */
static int64_t lease_until_ms(const char *db, const char *job)
{
    char out[8192], when[64];
    int64_t ms = -1;
    assert_int_equal(cmt_ledger(out, sizeof out, db, "--json", "job", job, (const char *)NULL), 0);
    assert_int_equal(cmt_json_member(out, "lease_until", when, sizeof when), 0);
    assert_int_equal(cm_ledger_time_parse(when, &ms), 0);
    return ms;
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
        rc =
            cmt_pipeline(log, sizeof log, db, "--workspace", WS, "--user", "member", "--job", job,
                         "--lease", LEASE_ARG, "--crash-at", stage, input, out, (const char *)NULL);
    else
        rc = cmt_pipeline(log, sizeof log, db, "--workspace", WS, "--user", "member", "--job", job,
                          "--lease", LEASE_ARG, "--crash-at", stage, "--generate", "1.5", out,
                          (const char *)NULL);
    assert_int_equal(rc, 128 + SIGABRT);
    assert_non_null(strstr(log, "crashing now"));
    /* right after the crash the credit is still held ... */
    int64_t held = -1;
    assert_int_equal(cmt_job_state(db, job, NULL), CM_LEDGER_HELD);
    assert_int_equal(cmt_available(db, WS, &held), 4);
    assert_int_equal(held, 1);
    /* ... still held one millisecond before its lease ends ... */
    int64_t until = lease_until_ms(db, job);
    char before[40], after[40];
    assert_non_null(cm_ledger_time_format(until - 1, before, sizeof before));
    assert_non_null(cm_ledger_time_format(until + 1000, after, sizeof after));
    cmt_ledger_now = before;
    assert_int_equal(cmt_job_state(db, job, NULL), CM_LEDGER_HELD);
    assert_int_equal(cmt_available(db, WS, &held), 4);
    /* ... and one lease after the last hook it has lapsed and come back */
    cmt_ledger_now = after;
    assert_int_equal(cmt_job_state(db, job, NULL), CM_LEDGER_LAPSED);
    assert_int_equal(cmt_available(db, WS, &held), 5);
    assert_int_equal(held, 0);
    assert_int_equal(cmt_ledger_check(db), 0);
    cmt_ledger_now = NULL;
    /* the host reads the same through the plugin, its clock a lease (and a minute) on */
    char offset[32];
    snprintf(offset, sizeof offset, "%d", LEASE_S + 60);
    assert_int_equal(cmt_pipeline(log, sizeof log, db, "--clock-offset-s", offset, "--job", job,
                                  "--job-state", (const char *)NULL),
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

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The keepalive renews while the process lives (here through a 2 s probe stage with no
 * hook, on a 2 s lease) and a crash stops it: the hold lapses within one lease of the
 * crash, so within lease + one renewal interval (2 s + 2/3 s) of the last renewal. */
static void test_a_crash_stops_the_keepalive_and_the_hold_lapses_within_one_lease(void **state)
{
    (void)state;
    char db[512], out[512], log[16384];
    const char *job = "j-crash-keepalive";
    cmt_path(db, sizeof db, "lapse-ka.db");
    cmt_path(out, sizeof out, "lapse-ka.mp4");
    assert_int_equal(cmt_ledger_setup(db, WS, 5), 0);
    int64_t started = wall_ms();
    int rc = cmt_pipeline(log, sizeof log, db, "--workspace", WS, "--user", "member", "--job", job,
                          "--lease", "2", "--stage-sleep", "probe:2", "--crash-at", "transcode",
                          CMT_SAMPLE("clip-40s.mp4"), out, (const char *)NULL);
    int64_t crashed_by = wall_ms();
    assert_int_equal(rc, 128 + SIGABRT);
    assert_non_null(strstr(log, "crashing now"));
    /* renewed after the 2 s stage began (so the job outlived its first lease) ... */
    int64_t until = lease_until_ms(db, job);
    assert_true(until >= started + 2000 + 2000);
    /* ... and never after the crash: the lease ends within one lease of it */
    assert_true(until <= crashed_by + 2000);
    char at[40];
    assert_non_null(cm_ledger_time_format(crashed_by + 2000 + 667, at, sizeof at));
    cmt_ledger_now = at;
    int64_t held = -1;
    assert_int_equal(cmt_job_state(db, job, NULL), CM_LEDGER_LAPSED);
    assert_int_equal(cmt_available(db, WS, &held), 5);
    assert_int_equal(held, 0);
    cmt_ledger_now = NULL;
    assert_int_equal(cmt_ledger_check(db), 0);
    unlink(db);
    unlink(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_crash_stops_the_keepalive_and_the_hold_lapses_within_one_lease),
        cmocka_unit_test(test_crash_in_transcode_hold_lapses_after_lease),
        cmocka_unit_test(test_crash_in_generate_hold_lapses_after_lease),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
