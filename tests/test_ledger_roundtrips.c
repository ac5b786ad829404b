/* SPDX-License-Identifier: MIT */
/* Round trips on PostgreSQL (issue 16): a call declares the reads of its usual path
 * (storage.h prefetch), which go to the server with BEGIN and the lock, and its writes go
 * with the COMMIT: reserve, commit, release and renew are 2 round trips each, and
 * renew_many of many jobs in several workspaces 2 in all (counted through
 * cm_ledger_stats_read; counts are not timing). A declared read that a write of the call
 * made stale is read again from the server: a reserve whose touch lapses another hold
 * spends the credits the lapse freed, a commit or renew whose touch lapses its own hold is
 * refused as lapsed, a renew_many whose touch lapses one of its jobs reports it lapsed.
 * Two renew_many calls with the same workspaces in opposite orders take their locks in one
 * order and never deadlock (no retry). A sweep commits each workspace on its own. The
 * soundness tests run on both backends (on
 * SQLite nothing is declared and the counts are 0). */
#include "ledger_test.h"

#include <pthread.h>

static int64_t trips(lt_env *e)
{
    cm_ledger_stats s = {.struct_size = sizeof s};
    LT_OK(e, cm_ledger_stats_read(e->l, &s));
    return s.round_trips;
}

static int64_t stmts(lt_env *e)
{
    cm_ledger_stats s = {.struct_size = sizeof s};
    LT_OK(e, cm_ledger_stats_read(e->l, &s));
    return s.statements;
}

/* acme (alice) with 100 credits bought. */
static void funded(lt_env *e, const char *name, int64_t credits)
{
    lt_open(e, name);
    lt_workspace(e);
    LT_OK(e, cm_ledger_buy(e->l, "acme", credits, "alice", NULL, NULL));
}

/* Assert the round trips one call costs on e's handle. */
#define ASSERT_TRIPS(e, n, call)                                                                   \
    do {                                                                                           \
        int64_t rt0_ = trips(e);                                                                   \
        LT_OK(e, call);                                                                            \
        assert_int_equal(trips(e) - rt0_, (n));                                                    \
    } while (0)

static void hot_calls_are_two_round_trips(lt_env *e, int injected_clock)
{
    int64_t pg = lt_pg() ? 2 : 0;
    int64_t s0 = stmts(e);
    ASSERT_TRIPS(e, pg, cm_ledger_reserve(e->l, "acme", "rt1", 3, "bob", 0, NULL));
    if (pg)
        assert_true(stmts(e) - s0 >= 10); /* the work is all there, only batched */
    ASSERT_TRIPS(e, pg, cm_ledger_commit(e->l, "rt1", 2, NULL));
    LT_OK(e, cm_ledger_reserve(e->l, "acme", "rt2", 3, "bob", 0, NULL));
    ASSERT_TRIPS(e, pg, cm_ledger_renew(e->l, "rt2", 60, NULL));
    ASSERT_TRIPS(e, pg, cm_ledger_release(e->l, "rt2", NULL));
    /* a retry of a commit, answered from the hold */
    ASSERT_TRIPS(e, pg, cm_ledger_commit(e->l, "rt1", 2, NULL));
    /* With the job for the caller (as the plugin asks): its takes and texts are read
     * with the rest (or, for a reserve, made of what it wrote). */
    cm_ledger_job *j = NULL;
    ASSERT_TRIPS(e, pg,
                 cm_ledger_reserve_bound(e->l, "acme", "rt3", 4, "bob", 0, "a note", "in.mp4", &j));
    assert_int_equal(j->n_takes, 1);
    assert_int_equal(j->takes[0].credits, 4);
    assert_string_equal(j->binding, "in.mp4");
    cm_ledger_job_free(j);
    ASSERT_TRIPS(e, pg, cm_ledger_renew(e->l, "rt3", 120, &j));
    if (injected_clock)
        assert_int_equal(j->lease_until_ms, e->now_ms + 120000);
    assert_string_equal(j->binding, "in.mp4");
    cm_ledger_job_free(j);
    ASSERT_TRIPS(e, pg, cm_ledger_commit_noted(e->l, "rt3", 3, "three", &j));
    assert_int_equal(j->state, CM_LEDGER_COMMITTED);
    assert_int_equal(j->takes[0].charged, 3);
    cm_ledger_job_free(j);
    ASSERT_TRIPS(e, pg, cm_ledger_job_info(e->l, "rt3", &j));
    assert_string_equal(j->note, "a note");
    assert_string_equal(j->commit_note, "three");
    cm_ledger_job_free(j);
}

/* With the test's injected clock: the clock is known before BEGIN. */
static void test_reserve_commit_renew_release_are_two_round_trips_each(void **state)
{
    (void)state;
    lt_env e;
    funded(&e, "rt_hot", 100);
    hot_calls_are_two_round_trips(&e, 1);
    assert_int_equal(lt_available(&e, "acme"), 95);
    lt_close(&e);
}

/* With the server's clock (PostgreSQL's default): the clock comes back in the same round
 * trip as the reads that use it. */
static void test_on_the_servers_clock_the_hot_calls_are_two_round_trips_too(void **state)
{
    (void)state;
    lt_env e;
    funded(&e, "rt_server_clock", 100);
    cm_ledger_close(e.l);
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.location = e.path;
    cfg.busy_timeout_ms = 10000;
    /* The injected clock stood at 2026-01-31; the real one is later (or, on a machine
     * set earlier, the journal's time is used): either way nothing lapses or expires. */
    LT_OK(&e, cm_ledger_open(&e.l, &cfg));
    hot_calls_are_two_round_trips(&e, 0);
    assert_int_equal(lt_available(&e, "acme"), 95);
    lt_close(&e);
}

static void test_renew_many_is_two_round_trips_in_all(void **state)
{
    (void)state;
    lt_env e;
    funded(&e, "rt_many", 100);
    LT_OK(&e, cm_ledger_workspace_create(e.l, "zeta", "zoe", NULL));
    LT_OK(&e, cm_ledger_buy(e.l, "zeta", 100, "zoe", NULL, NULL));
    enum { N = 40 };
    char names[N][16];
    const char *jobs[N + 1];
    int res[N + 1];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "m%02d", i);
        jobs[i] = names[i];
        LT_OK(&e, cm_ledger_reserve(e.l, i % 2 ? "acme" : "zeta", names[i], 1,
                                    i % 2 ? "alice" : "zoe", 30, NULL));
    }
    jobs[N] = "never-reserved";
    e.now_ms += 10000;
    int64_t pg = lt_pg() ? 2 : 0;
    ASSERT_TRIPS(&e, pg, cm_ledger_renew_many(e.l, jobs, N + 1, 30, res));
    for (int i = 0; i < N; i++)
        assert_int_equal(res[i], CM_LEDGER_OK);
    assert_int_equal(res[N], CM_LEDGER_E_NO_JOB);
    /* 25 s after the reserve, 15 after the renewal: still held at the renewed lease */
    e.now_ms += 15000;
    assert_int_equal(lt_state(&e, "m00"), CM_LEDGER_HELD);
    lt_close(&e);
}

/* statements and round_trips were appended to cm_ledger_stats: a caller compiled with the
 * struct that ended at reconnects still reads its fields, and the new ones are left alone;
 * a struct_size below that is invalid_argument. */
static void test_a_caller_with_the_shorter_stats_struct_gets_its_fields(void **state)
{
    (void)state;
    lt_env e;
    funded(&e, "rt_stats_size", 10);
    cm_ledger_stats s;
    memset(&s, 0x5a, sizeof s);
    s.struct_size = (uint32_t)offsetof(cm_ledger_stats, statements);
    LT_OK(&e, cm_ledger_stats_read(e.l, &s));
    assert_true(s.transactions >= 2);
    assert_int_equal(s.reconnects, 0);
    int64_t untouched;
    memset(&untouched, 0x5a, sizeof untouched);
    assert_int_equal(s.statements, untouched);
    assert_int_equal(s.round_trips, untouched);
    s.struct_size = (uint32_t)offsetof(cm_ledger_stats, reconnects);
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_stats_read(e.l, &s));
    cm_ledger_stats full = {.struct_size = sizeof full};
    LT_OK(&e, cm_ledger_stats_read(e.l, &full));
    if (lt_pg())
        assert_true(full.round_trips > 0 && full.statements >= full.round_trips);
    else
        assert_true(full.round_trips == 0 && full.statements == 0);
    lt_close(&e);
}

/* renew_many declares 512 jobs at a time: 520 jobs are 3 round trips, every one renewed. */
static void test_renew_many_past_one_declaration_renews_every_job(void **state)
{
    (void)state;
    lt_env e;
    funded(&e, "rt_many_big", 1000);
    enum { N = 520 };
    static char names[N][16];
    static const char *jobs[N];
    static int res[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "b%03d", i);
        jobs[i] = names[i];
        LT_OK(&e, cm_ledger_reserve(e.l, "acme", names[i], 1, "alice", 30, NULL));
    }
    e.now_ms += 20000;
    ASSERT_TRIPS(&e, lt_pg() ? 3 : 0, cm_ledger_renew_many(e.l, jobs, N, 30, res));
    for (int i = 0; i < N; i++)
        assert_int_equal(res[i], CM_LEDGER_OK);
    e.now_ms += 20000; /* past the first lease, within the renewed one */
    assert_int_equal(lt_state(&e, "b000"), CM_LEDGER_HELD);
    assert_int_equal(lt_state(&e, "b519"), CM_LEDGER_HELD);
    lt_close(&e);
}

/* The declared spendable grants read "nothing left"; the touch lapses the other hold,
 * which frees its credits: the reserve spends them (the grants are read again). */
static void test_a_reserve_whose_touch_lapses_a_hold_spends_the_credits_it_freed(void **state)
{
    (void)state;
    lt_env e;
    funded(&e, "rt_lapse_frees", 5);
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "first", 5, "alice", 10, NULL));
    assert_int_equal(lt_available(&e, "acme"), 0);
    e.now_ms += 20000;
    int64_t rt = trips(&e);
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "second", 5, "bob", 0, NULL));
    rt = trips(&e) - rt;
    if (lt_pg())
        assert_true(rt > 2); /* the slow path: the stale reads went to the server */
    assert_int_equal(lt_state(&e, "first"), CM_LEDGER_LAPSED);
    assert_int_equal(lt_state(&e, "second"), CM_LEDGER_HELD);
    assert_int_equal(lt_available(&e, "acme"), 0);
    assert_int_equal(lt_held(&e, "acme"), 5);
    lt_close(&e);
}

/* The declared hold reads "held"; the touch lapses it: the commit sees it lapsed (the
 * hold is read again) and is refused; so is a renew; a release of it changes nothing. */
static void test_a_commit_whose_touch_lapses_its_own_hold_is_refused(void **state)
{
    (void)state;
    lt_env e;
    funded(&e, "rt_lapse_own", 10);
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "late", 4, "alice", 10, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "late2", 4, "alice", 10, NULL));
    e.now_ms += 11000;
    LT_EXPECT(&e, CM_LEDGER_E_LEASE_EXPIRED, cm_ledger_commit(e.l, "late", 4, NULL));
    LT_EXPECT(&e, CM_LEDGER_E_LEASE_EXPIRED, cm_ledger_renew(e.l, "late2", 60, NULL));
    LT_OK(&e, cm_ledger_release(e.l, "late", NULL));
    assert_int_equal(lt_state(&e, "late"), CM_LEDGER_LAPSED);
    assert_int_equal(lt_available(&e, "acme"), 10);
    lt_close(&e);
}

/* The same for a release: its touch lapses another hold first, then it releases its
 * own; every credit is back. */
static void test_a_release_after_its_touch_lapsed_another_hold_gives_everything_back(void **state)
{
    (void)state;
    lt_env e;
    funded(&e, "rt_release", 10);
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "short", 4, "alice", 10, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "long", 6, "alice", 600, NULL));
    e.now_ms += 11000;
    LT_OK(&e, cm_ledger_release(e.l, "long", NULL));
    assert_int_equal(lt_state(&e, "short"), CM_LEDGER_LAPSED);
    assert_int_equal(lt_state(&e, "long"), CM_LEDGER_RELEASED);
    assert_int_equal(lt_available(&e, "acme"), 10);
    lt_close(&e);
}

/* renew_many whose touch lapses one of its own jobs: that job is lease_expired, the others
 * are renewed. */
static void test_renew_many_reports_a_job_its_touch_lapsed(void **state)
{
    (void)state;
    lt_env e;
    funded(&e, "rt_many_lapse", 10);
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "a", 1, "alice", 10, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "b", 1, "alice", 600, NULL));
    e.now_ms += 11000;
    const char *jobs[] = {"b", "a", "b"};
    int res[3];
    LT_OK(&e, cm_ledger_renew_many(e.l, jobs, 3, 60, res));
    assert_int_equal(res[0], CM_LEDGER_OK);
    assert_int_equal(res[1], CM_LEDGER_E_LEASE_EXPIRED);
    assert_int_equal(res[2], CM_LEDGER_OK);
    assert_int_equal(lt_state(&e, "a"), CM_LEDGER_LAPSED);
    assert_int_equal(lt_state(&e, "b"), CM_LEDGER_HELD);
    assert_int_equal(lt_available(&e, "acme"), 9);
    lt_close(&e);
}

/* ---- two keepalives with the same two workspaces in opposite orders ---- */

typedef struct keepalive {
    lt_env *e;
    const char *const *jobs;
    int rounds, failed;
    int64_t retries;
} keepalive;

static void *keepalive_run(void *arg)
{
    keepalive *k = arg;
    cm_ledger *l = lt_open_path(k->e, k->e->path);
    int res[4];
    for (int i = 0; i < k->rounds && !k->failed; i++)
        if (cm_ledger_renew_many(l, k->jobs, 4, 600, res) != CM_LEDGER_OK)
            k->failed = 1;
    cm_ledger_stats s = {.struct_size = sizeof s};
    if (cm_ledger_stats_read(l, &s) != CM_LEDGER_OK)
        k->failed = 1;
    k->retries = s.retries;
    cm_ledger_close(l);
    return NULL;
}

static void test_two_renew_many_in_opposite_orders_take_their_locks_in_one_order(void **state)
{
    (void)state;
    lt_env e;
    funded(&e, "rt_lock_order", 10);
    LT_OK(&e, cm_ledger_workspace_create(e.l, "zeta", "zoe", NULL));
    LT_OK(&e, cm_ledger_buy(e.l, "zeta", 10, "zoe", NULL, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "a1", 1, "alice", 600, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "a2", 1, "alice", 600, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "zeta", "z1", 1, "zoe", 600, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "zeta", "z2", 1, "zoe", 600, NULL));
    /* In job order, one takes acme then zeta, the other zeta then acme: a deadlock
     * whenever each holds its first lock when it asks for its second. */
    static const char *const fwd[] = {"a1", "z1", "a2", "z2"};
    static const char *const rev[] = {"z2", "a2", "z1", "a1"};
    keepalive k[2] = {{&e, fwd, 150, 0, 0}, {&e, rev, 150, 0, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, keepalive_run, &k[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(k[i].failed, 0);
        assert_int_equal(k[i].retries, 0);
    }
    lt_close(&e);
}

/* A sweep is one transaction per workspace: with zeta's lock held elsewhere, the sweep
 * gives up at zeta as busy, and acme (swept before it, in id order) stays swept: its
 * lapse is committed on its own. Once zeta is free a sweep does the rest. PostgreSQL
 * only: SQLite's one write lock is for the whole file. */
static void test_a_sweep_commits_each_workspace_on_its_own(void **state)
{
    (void)state;
    if (!lt_pg()) {
        print_message("[  SKIPPED ] on SQLite: one write lock for the whole file\n");
        skip();
    }
    lt_env e;
    funded(&e, "rt_sweep", 10);
    LT_OK(&e, cm_ledger_workspace_create(e.l, "zeta", "zoe", NULL));
    LT_OK(&e, cm_ledger_buy(e.l, "zeta", 10, "zoe", NULL, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "a", 3, "alice", 10, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "zeta", "z", 4, "zoe", 10, NULL));
    e.now_ms += 11000;
    PGconn *other = PQconnectdb(e.path);
    assert_int_equal(PQstatus(other), CONNECTION_OK);
    PGresult *r = PQexec(other, "BEGIN; SELECT pg_advisory_xact_lock(1668118387, "
                                "hashtext(current_schema() || '/' || 'zeta'))");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.location = e.path;
    cfg.now_ms = lt_clock;
    cfg.clock_user = &e;
    cfg.busy_timeout_ms = 300;
    cm_ledger *l = NULL;
    LT_OK(&e, cm_ledger_open(&l, &cfg));
    cm_ledger_sweep_stats st = {0};
    assert_int_equal(cm_ledger_sweep(l, &st), CM_LEDGER_E_BUSY);
    PQclear(PQexec(other, "COMMIT"));
    PQfinish(other);
    /* read behind the ledger's back: a call would bring zeta up to now itself */
    char err[256];
    assert_int_equal(lt_exec_sql(e.path,
                                 "DO $$ BEGIN IF (SELECT state FROM holds WHERE job = 'a') <> 4 "
                                 "OR (SELECT state FROM holds WHERE job = 'z') <> 1 THEN "
                                 "RAISE EXCEPTION 'acme not swept alone'; END IF; END $$",
                                 err, sizeof err),
                     0);
    LT_OK(&e, cm_ledger_sweep(l, &st));
    assert_int_equal(st.holds_lapsed, 1); /* zeta's: acme's was done */
    cm_ledger_close(l);
    assert_int_equal(lt_state(&e, "z"), CM_LEDGER_LAPSED);
    assert_int_equal(lt_available(&e, "acme"), 10);
    assert_int_equal(lt_available(&e, "zeta"), 10);
    lt_close(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reserve_commit_renew_release_are_two_round_trips_each),
        cmocka_unit_test(test_on_the_servers_clock_the_hot_calls_are_two_round_trips_too),
        cmocka_unit_test(test_a_caller_with_the_shorter_stats_struct_gets_its_fields),
        cmocka_unit_test(test_renew_many_is_two_round_trips_in_all),
        cmocka_unit_test(test_renew_many_past_one_declaration_renews_every_job),
        cmocka_unit_test(test_a_reserve_whose_touch_lapses_a_hold_spends_the_credits_it_freed),
        cmocka_unit_test(test_a_commit_whose_touch_lapses_its_own_hold_is_refused),
        cmocka_unit_test(test_a_release_after_its_touch_lapsed_another_hold_gives_everything_back),
        cmocka_unit_test(test_renew_many_reports_a_job_its_touch_lapsed),
        cmocka_unit_test(test_two_renew_many_in_opposite_orders_take_their_locks_in_one_order),
        cmocka_unit_test(test_a_sweep_commits_each_workspace_on_its_own),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
