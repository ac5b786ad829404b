/* SPDX-License-Identifier: MIT */
/* A writer killed with SIGKILL in the middle of its work leaves a ledger that passes
 * check: every transaction either happened entirely or not at all, and the ledger
 * keeps working (the dead writer's hold lapses with its lease). */
#include "ledger_test.h"
#include "test_proc.h"

#include <poll.h>
#include <signal.h>
#include <time.h>

typedef struct writer_arg {
    const char *path;
    int started; /* write end of a pipe: one byte once the writer has written */
} writer_arg;

/* A worker that writes until it is killed (or exits 3/4 when the ledger refuses); it
 * tells the parent through started once two jobs are in the journal. */
static int writer(int id, void *arg)
{
    const writer_arg *a = arg;
    const char *path = a->path;
    (void)id;
    lt_env e = {0};
    e.now_ms = lt_time("2026-01-31T12:00:00Z");
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.location = path;
    cfg.now_ms = lt_clock;
    cfg.clock_user = &e;
    if (cm_ledger_open(&e.l, &cfg))
        return 3;
    for (long i = 0;; i++) {
        char job[64];
        /* each writer its own ids: a released id is closed for good */
        snprintf(job, sizeof job, "crash-%ld-%ld", (long)getpid(), i);
        if (cm_ledger_reserve(e.l, "acme", job, 2, "bob", 60, NULL))
            return 4;
        if (i % 2)
            cm_ledger_commit(e.l, job, 1, NULL);
        else
            cm_ledger_release(e.l, job, NULL);
        if (i % 10 == 0)
            cm_ledger_buy(e.l, "acme", 1, "alice", NULL, NULL);
        if (i == 1 && write(a->started, "w", 1) != 1)
            return 5;
    }
}

/* Starts a writer and kills it delay_ms after it has written its first jobs (so the kill
 * lands in the middle of its work however slow the machine is to start it). */
static void kill_writer_after(lt_env *e, long delay_ms)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    writer_arg a = {e->path, fds[1]};
    pid_t pid = cmt_proc_fork(writer, 0, &a);
    assert_true(pid >= 0);
    close(fds[1]);
    char c;
    struct pollfd pfd = {fds[0], POLLIN, 0};
    assert_int_equal(poll(&pfd, 1, 60000), 1);
    assert_int_equal(read(fds[0], &c, 1), 1); /* 0: it died before writing */
    close(fds[0]);
    struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(cmt_proc_wait(pid), 128 + SIGKILL); /* killed, not exited */
}

static void test_check_passes_after_a_writer_is_killed_mid_work(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "crash");
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 1000000, "alice", NULL, NULL));
    cm_ledger_close(e.l);
    e.l = NULL;
    const long delays[] = {150, 230, 370};
    for (size_t i = 0; i < sizeof delays / sizeof delays[0]; i++) {
        kill_writer_after(&e, delays[i]);
        e.l = lt_open_path(&e, e.path);
        LT_OK(&e, cm_ledger_check(e.l));
        cm_ledger_history_result *h = NULL;
        LT_OK(&e, cm_ledger_history(e.l, "acme", NULL, &h));
        assert_true(h->n_entries > 3); /* the writer really wrote */
        cm_ledger_history_free(h);
        cm_ledger_close(e.l);
        e.l = NULL;
    }
    /* The killed writer's last hold (if any) lapses with its lease. */
    e.l = lt_open_path(&e, e.path);
    e.now_ms += 61 * 1000;
    LT_OK(&e, cm_ledger_sweep(e.l, NULL));
    assert_int_equal(lt_held(&e, "acme"), 0);
    lt_close(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_passes_after_a_writer_is_killed_mid_work),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
