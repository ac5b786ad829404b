/*
 * test_plugin_concurrent.c - two cm-pipeline hosts run jobs against one ledger at the
 * same time; the balances at the end are exact (no double spend, no lost update).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_plugin_util.h"

#define WS "shared"

typedef struct job {
    const char *id, *user, *input; /* input NULL: --generate 3 */
    const char *fail_at;
    int want_exit;
} job;

/* One host: runs its jobs one after another. Returns how many ended unexpectedly. */
static int host(const char *db, const char *name, const job *jobs, int n)
{
    int bad = 0;
    for (int i = 0; i < n; i++) {
        char out[512], log[16384];
        snprintf(out, sizeof out, "%s-%s-%d.mp4", db, name, i);
        const char *args[16] = {"--workspace", WS, "--user", jobs[i].user, "--job", jobs[i].id};
        int k = 6;
        if (jobs[i].fail_at) {
            args[k++] = "--fail-at";
            args[k++] = jobs[i].fail_at;
        }
        if (jobs[i].input) {
            args[k++] = jobs[i].input;
        } else {
            args[k++] = "--generate";
            args[k++] = "3";
        }
        args[k++] = out;
        args[k] = NULL;
        int rc = cmt_pipeline_argv(log, sizeof log, db, args);
        if (rc != jobs[i].want_exit) {
            fprintf(stderr, "host %s job %s: exit %d, wanted %d\n%s\n", name, jobs[i].id, rc,
                    jobs[i].want_exit, log);
            bad++;
        }
        unlink(out);
        char png[520];
        snprintf(png, sizeof png, "%s-%s-%d.png", db, name, i);
        unlink(png);
    }
    return bad;
}

static void test_two_hosts_at_once_end_with_exact_balances(void **state)
{
    (void)state;
    char db[512];
    cmt_path(db, sizeof db, "concurrent.db");
    assert_int_equal(cmt_ledger_setup(db, WS, 20), 0);
    static const job a[] = {
        {"a1", "owner", CMT_SAMPLE("clip-40s.mp4"), NULL, 0},        /* 1 */
        {"a2", "member", CMT_SAMPLE("edge-60.6s.mkv"), NULL, 0},     /* 2 */
        {"a3", "owner", CMT_SAMPLE("clip-40s.mp4"), "transcode", 1}, /* 0 */
        {"a4", "member", CMT_SAMPLE("short-10s.mxf"), NULL, 0},      /* 1 */
    };
    static const job b[] = {
        {"b1", "member", CMT_SAMPLE("clip-40s.mp4"), NULL, 0},       /* 1 */
        {"b2", "owner", NULL, NULL, 0},                              /* 1 */
        {"b3", "member", CMT_SAMPLE("edge-59.4s.mkv"), "probe", 1},  /* 0 */
        {"b4", "owner", CMT_SAMPLE("edge-60.0s.mkv"), NULL, 0},      /* 1 */
    };
    pid_t pa = fork();
    if (pa == 0)
        _exit(host(db, "A", a, 4));
    pid_t pb = fork();
    if (pb == 0)
        _exit(host(db, "B", b, 4));
    int sa = 0, sb = 0;
    waitpid(pa, &sa, 0);
    waitpid(pb, &sb, 0);
    assert_true(WIFEXITED(sa) && WEXITSTATUS(sa) == 0);
    assert_true(WIFEXITED(sb) && WEXITSTATUS(sb) == 0);
    int64_t held = -1;
    assert_int_equal(cmt_available(db, WS, &held), 20 - 7);
    assert_int_equal(held, 0);
    assert_int_equal(cmt_ledger_check(db), 0);
    unlink(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_hosts_at_once_end_with_exact_balances),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
