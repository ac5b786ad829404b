/* Many processes on one file: several forked processes reserve, commit and release
 * against one small balance at once. The sum charged never exceeds what was granted,
 * nothing is held at the end, and check passes. */
#include "ledger_test.h"

#include <sys/wait.h>

#define WORKERS 4
#define ROUNDS 40
#define GRANTED 60

/* Child: its own handle (real processes share nothing but the file). Reports, through
 * its exit status, how many credits it charged (< 256 by construction). */
static int worker(const char *path, int id)
{
    lt_env e = {0};
    e.now_ms = lt_time("2026-01-31T12:00:00Z");
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.db = path;
    cfg.now_ms = lt_clock;
    cfg.clock_user = &e;
    cfg.busy_timeout_ms = 30000;
    if (cm_ledger_open(&e.l, &cfg))
        return 255;
    int charged = 0;
    for (int i = 0; i < ROUNDS; i++) {
        char job[64];
        snprintf(job, sizeof job, "w%d-%d", id, i);
        int64_t n = 1 + (i + id) % 3;
        int rc = cm_ledger_reserve(e.l, "acme", job, n, "bob", 0, NULL);
        if (rc == CM_LEDGER_E_INSUFFICIENT)
            continue;
        if (rc)
            return 254;
        if (i % 3 == 0) {
            if (cm_ledger_release(e.l, job, NULL))
                return 253;
        } else {
            int64_t c = i % 2 ? n : n - 1;
            if (cm_ledger_commit(e.l, job, c, NULL))
                return 252;
            if (cm_ledger_commit(e.l, job, c, NULL)) /* a retry changes nothing */
                return 251;
            charged += (int)c;
        }
    }
    cm_ledger_close(e.l);
    return charged;
}

static void test_processes_never_spend_more_than_granted(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "procs");
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_buy(e.l, "acme", GRANTED, "alice", NULL, NULL));
    cm_ledger_close(e.l);
    e.l = NULL;

    pid_t pids[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0)
            _exit(worker(e.path, i));
    }
    int charged = 0;
    for (int i = 0; i < WORKERS; i++) {
        int status;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        int c = WEXITSTATUS(status);
        if (c >= 250)
            fail_msg("worker %d failed with %d", i, c);
        charged += c;
    }
    e.l = lt_open_path(&e, e.path);
    assert_true(charged <= GRANTED);
    assert_true(charged > 0);
    cm_ledger_balance_result *b = NULL;
    LT_OK(&e, cm_ledger_balance(e.l, "acme", NULL, &b));
    assert_int_equal(b->held, 0);
    assert_int_equal(b->available, GRANTED - charged); /* no lost update */
    cm_ledger_balance_free(b);
    LT_OK(&e, cm_ledger_check(e.l));
    lt_close(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_processes_never_spend_more_than_granted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
