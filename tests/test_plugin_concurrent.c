/* SPDX-License-Identifier: MIT */
/*
 * test_plugin_concurrent.c - two cm-pipeline hosts run jobs against one ledger at the
 * same time; the balances at the end are exact (no double spend, no lost update).
 *
 * "At the same time" is made certain and then proved from the ledger: each host runs its
 * first job, meets the other at a barrier (a pipe each), then runs the rest; so each
 * host's first hold comes before the other's last resolution. The ledger's journal
 * (cm-ledger --json history) gives every host's span, first hold to last commit or
 * release, and the test asserts the two spans overlap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm_ledger.h" /* cm_ledger_time_parse */
#include "test_plugin_util.h"

#include <poll.h>

#define WS "shared"

typedef struct job {
    const char *id, *user, *input; /* input NULL: --generate 3 */
    const char *fail_at;
    int want_exit;
} job;

typedef struct hosts {
    const char *db;
    const job *jobs[2];
    int n[2];
    int gate[2][2]; /* host i writes gate[i][1] after its first job, reads gate[1 - i][0] */
} hosts;

/* Host `self` has run its first job: tell the other one, and wait (a minute at most) for
 * it to have run its first job too. 0 when both have. */
static int barrier(hosts *h, int self)
{
    char c = 1;
    if (write(h->gate[self][1], &c, 1) != 1)
        return -1;
    struct pollfd pfd = {h->gate[1 - self][0], POLLIN, 0};
    if (poll(&pfd, 1, 60000) != 1 || read(h->gate[1 - self][0], &c, 1) != 1)
        return -1;
    return 0;
}

/* One host: runs its jobs one after another, meeting the other host after the first.
 * Returns how many ended unexpectedly. */
static int host(int self, void *arg)
{
    hosts *h = arg;
    const char *db = h->db, *name = self ? "B" : "A";
    const job *jobs = h->jobs[self];
    int n = h->n[self];
    int bad = 0;
    for (int i = 0; i < n; i++) {
        if (i == 1 && barrier(h, self) != 0) {
            fprintf(stderr, "host %s: the other host never ran its first job\n", name);
            bad++;
        }
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

/* From the ledger's journal: first[i] the first hold and last[i] the last commit or
 * release of host i's jobs (A: "a*", B: "b*"), in ms. 0 when both hosts have both. */
static int host_spans(const char *db, int64_t first[2], int64_t last[2])
{
    static char out[1 << 16];
    char at[64], kind[32], jobid[64];
    first[0] = first[1] = INT64_MAX;
    last[0] = last[1] = -1;
    if (cmt_ledger(out, sizeof out, db, "--json", "history", WS, (const char *)NULL) != 0)
        return -1;
    const char *p = strstr(out, "\"entries\": [");
    if (!p)
        return -1;
    for (p = strchr(p, '{'); p; p = strchr(cmt_json_skip(p), '{')) {
        int64_t ms;
        if (cmt_json_member(p, "job", jobid, sizeof jobid) != 0 ||
            cmt_json_member(p, "kind", kind, sizeof kind) != 0 ||
            cmt_json_member(p, "at", at, sizeof at) != 0 || cm_ledger_time_parse(at, &ms) != 0)
            return -1;
        int i = jobid[0] == 'a' ? 0 : jobid[0] == 'b' ? 1 : -1;
        if (i < 0)
            continue;
        if (!strcmp(kind, "hold") && ms < first[i])
            first[i] = ms;
        if ((!strcmp(kind, "commit") || !strcmp(kind, "release")) && ms > last[i])
            last[i] = ms;
    }
    return first[0] <= last[0] && first[1] <= last[1] && last[0] >= 0 && last[1] >= 0 ? 0 : -1;
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
        {"b1", "member", CMT_SAMPLE("clip-40s.mp4"), NULL, 0},      /* 1 */
        {"b2", "owner", NULL, NULL, 0},                             /* 1 */
        {"b3", "member", CMT_SAMPLE("edge-59.4s.mkv"), "probe", 1}, /* 0 */
        {"b4", "owner", CMT_SAMPLE("edge-60.0s.mkv"), NULL, 0},     /* 1 */
    };
    hosts h = {db, {a, b}, {4, 4}, {{-1, -1}, {-1, -1}}};
    assert_int_equal(pipe(h.gate[0]), 0);
    assert_int_equal(pipe(h.gate[1]), 0);
    int st[2];
    assert_int_equal(cmt_proc_workers(2, host, &h, st), 0);
    for (int i = 0; i < 2; i++) {
        close(h.gate[i][0]);
        close(h.gate[i][1]);
    }
    assert_int_equal(st[0], 0);
    assert_int_equal(st[1], 0);
    /* the journal: host A's span (jobs a*) and host B's (jobs b*) overlap */
    int64_t first[2], last[2];
    assert_int_equal(host_spans(db, first, last), 0);
    assert_true(first[0] <= last[1]);
    assert_true(first[1] <= last[0]);
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
