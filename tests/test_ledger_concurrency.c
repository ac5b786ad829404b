/* SPDX-License-Identifier: MIT */
/* Many processes on one ledger (a SQLite file, or with CM_TEST_LEDGER_DB one PostgreSQL
 * server, the processes standing in for pipeline machines): several forked processes
 * reserve, commit and release against one small balance at once. The sum charged never
 * exceeds what was granted, nothing is held at the end, and check passes. Processes
 * racing to reserve and commit one job id make one hold and one charge; writers on
 * several workspaces and a sweeper at once lose no update. */
#include "ledger_test.h"
#include "test_proc.h"

#define WORKERS 4
#define ROUNDS 40
#define GRANTED 60

/* Child: its own handle (real processes share nothing but the file). Reports, through
 * its exit status, how many credits it charged (< 256 by construction). */
static int worker(int id, void *arg)
{
    const char *path = arg;
    lt_env e = {0};
    e.now_ms = lt_time("2026-01-31T12:00:00Z");
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.location = path;
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
            int64_t c = i % 2 || n == 1 ? n : n - 1; /* a charge is never 0 */
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

    int code[WORKERS];
    assert_int_equal(cmt_proc_workers(WORKERS, worker, e.path, code), 0); /* all exited */
    int charged = 0;
    for (int i = 0; i < WORKERS; i++) {
        int c = code[i];
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

/* create: ask for the ledger to be created when there is none (explicit since issue 15). */
static int open_child(lt_env *e, const char *path, int create)
{
    memset(e, 0, sizeof *e);
    e->now_ms = lt_time("2026-01-31T12:00:00Z");
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.location = path;
    cfg.now_ms = lt_clock;
    cfg.clock_user = e;
    cfg.busy_timeout_ms = 30000;
    cfg.create = create;
    return cm_ledger_open(&e->l, &cfg);
}

/* Child: reserve and commit the one job everybody races for; exit 0 if both calls
 * returned the same hold as everybody else's (the first result). */
static int same_job_racer(int id, void *arg)
{
    const char *path = arg;
    (void)id;
    lt_env e;
    if (open_child(&e, path, 0))
        return 10;
    cm_ledger_job *j = NULL;
    if (cm_ledger_reserve(e.l, "acme", "the-job", 7, "bob", 0, &j))
        return 11;
    int ok = j->credits == 7 && j->n_takes == 1;
    cm_ledger_job_free(j);
    if (cm_ledger_commit(e.l, "the-job", 5, &j))
        return 12;
    ok = ok && j->state == CM_LEDGER_COMMITTED && j->charged == 5;
    cm_ledger_job_free(j);
    cm_ledger_close(e.l);
    return ok ? 0 : 13;
}

static void test_processes_racing_on_one_job_hold_and_charge_once(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "samejob");
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 20, "alice", NULL, NULL));
    cm_ledger_close(e.l);
    e.l = NULL;
    int code[WORKERS];
    assert_int_equal(cmt_proc_workers(WORKERS, same_job_racer, e.path, code), 0);
    for (int i = 0; i < WORKERS; i++)
        if (code[i])
            fail_msg("racer %d failed with %d", i, code[i]);
    e.l = lt_open_path(&e, e.path);
    assert_int_equal(lt_available(&e, "acme"), 15);
    cm_ledger_history_result *h = NULL;
    LT_OK(&e, cm_ledger_history(e.l, "acme", NULL, &h));
    int holds = 0, commits = 0;
    for (size_t i = 0; i < h->n_entries; i++) {
        holds += !strcmp(h->entries[i].kind, "hold");
        commits += !strcmp(h->entries[i].kind, "commit");
    }
    cm_ledger_history_free(h);
    assert_int_equal(holds, 1);
    assert_int_equal(commits, 1);
    lt_close(&e);
}

#define SPACES 3
#define SPACE_CREDITS 40

/* Child: spend on every workspace in turn, one credit a job; the last child sweeps
 * instead, now and then. Exit status: credits charged (< 250). */
static int spaces_worker(int id, void *arg)
{
    const char *path = arg;
    lt_env e;
    if (open_child(&e, path, 0))
        return 255;
    int charged = 0;
    for (int i = 0; i < 30; i++) {
        if (id == WORKERS - 1) {
            if (cm_ledger_sweep(e.l, NULL))
                return 254;
            continue;
        }
        char ws[16], job[64];
        snprintf(ws, sizeof ws, "ws%d", (i + id) % SPACES);
        snprintf(job, sizeof job, "s%d-%d", id, i);
        int rc = cm_ledger_reserve(e.l, ws, job, 2, "bob", 0, NULL);
        if (rc == CM_LEDGER_E_INSUFFICIENT)
            continue;
        if (rc)
            return 253;
        if (cm_ledger_commit(e.l, job, 1, NULL))
            return 252;
        charged++;
    }
    cm_ledger_close(e.l);
    return charged;
}

static void test_writers_on_several_workspaces_and_a_sweeper_lose_nothing(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "spaces");
    for (int k = 0; k < SPACES; k++) {
        char ws[16];
        snprintf(ws, sizeof ws, "ws%d", k);
        LT_OK(&e, cm_ledger_workspace_create(e.l, ws, "alice", NULL));
        LT_OK(&e, cm_ledger_member_add(e.l, ws, "bob", "alice"));
        LT_OK(&e, cm_ledger_buy(e.l, ws, SPACE_CREDITS, "alice", NULL, NULL));
    }
    cm_ledger_close(e.l);
    e.l = NULL;
    int code[WORKERS];
    assert_int_equal(cmt_proc_workers(WORKERS, spaces_worker, e.path, code), 0);
    int charged = 0;
    for (int i = 0; i < WORKERS; i++) {
        if (code[i] >= 250)
            fail_msg("worker %d failed with %d", i, code[i]);
        charged += code[i];
    }
    e.l = lt_open_path(&e, e.path);
    int64_t left = 0;
    for (int k = 0; k < SPACES; k++) {
        char ws[16];
        snprintf(ws, sizeof ws, "ws%d", k);
        assert_int_equal(lt_held(&e, ws), 0);
        left += lt_available(&e, ws);
    }
    assert_int_equal(left + charged, SPACES * SPACE_CREDITS); /* no lost update */
    LT_OK(&e, cm_ledger_check(e.l));
    lt_close(&e);
}

/* Child: open the (maybe not yet existing) ledger and create workspace ws<id>. */
static int fresh_opener(int id, void *arg)
{
    lt_env c;
    if (open_child(&c, arg, 1))
        return 20;
    char ws[16];
    snprintf(ws, sizeof ws, "ws%d", id);
    int rc = cm_ledger_workspace_create(c.l, ws, "alice", NULL);
    cm_ledger_close(c.l);
    return rc ? 21 : 0;
}

/* Processes opening a ledger that does not exist yet, all at once: it is created once
 * (PostgreSQL: under pg_advisory_xact_lock) and every one of them can use it. */
static void test_processes_opening_a_fresh_ledger_at_once_create_it_once(void **state)
{
    (void)state;
    char path[512];
    lt_db_path(path, sizeof path, "fresh");
    lt_unlink_db(path);
    int code[WORKERS];
    assert_int_equal(cmt_proc_workers(WORKERS, fresh_opener, path, code), 0);
    for (int i = 0; i < WORKERS; i++)
        if (code[i])
            fail_msg("opener %d failed with %d", i, code[i]);
    lt_env e;
    memset(&e, 0, sizeof e);
    snprintf(e.path, sizeof e.path, "%s", path);
    e.now_ms = lt_time("2026-01-31T12:00:00Z");
    e.l = lt_open_path(&e, e.path);
    for (int i = 0; i < WORKERS; i++) {
        char ws[16];
        snprintf(ws, sizeof ws, "ws%d", i);
        assert_int_equal(lt_available(&e, ws), 0);
    }
    lt_close(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_processes_never_spend_more_than_granted),
        cmocka_unit_test(test_processes_racing_on_one_job_hold_and_charge_once),
        cmocka_unit_test(test_writers_on_several_workspaces_and_a_sweeper_lose_nothing),
        cmocka_unit_test(test_processes_opening_a_fresh_ledger_at_once_create_it_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
