/* SPDX-License-Identifier: MIT */
/* A fleet on PostgreSQL (issue 16): a call locks its own workspace and nothing else, so a
 * workspace held by a long transaction elsewhere does not stop calls on another one; a
 * connection the server dropped while idle is made again within the next call; a server
 * that cannot be reached again fails the call as retryable (storage_unavailable), and
 * once it is back the same call goes through, and a retry returns the first result; an
 * unreachable server is storage_unavailable, and cm-ledger exits 3 for it (1 stays for
 * refusals). The PostgreSQL tests skip on SQLite, where one writer at a time is the
 * rule. */
#include "ledger_test.h"
#include "test_proc.h"

#include <pthread.h>
#include <time.h>

/* These need a PostgreSQL server (CM_TEST_LEDGER_DB). */
#define LT_SKIP_ON_PG_ABSENT()                                                                     \
    do {                                                                                           \
        if (!lt_pg()) {                                                                            \
            print_message("[  SKIPPED ] on SQLite: a PostgreSQL matter\n");                        \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* A location of e's schema with an application_name, to find its connections. */
static void named_location(const lt_env *e, const char *app, char *out, size_t n)
{
    snprintf(out, n, "%s&application_name=%s", e->path, app);
}

static cm_ledger *open_at(lt_env *e, const char *loc, int busy_ms)
{
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.location = loc;
    cfg.now_ms = lt_clock;
    cfg.clock_user = e;
    cfg.busy_timeout_ms = busy_ms;
    cm_ledger *l = NULL;
    int rc = cm_ledger_open(&l, &cfg);
    if (rc)
        fail_msg("open: %s", cm_ledger_errmsg(NULL));
    return l;
}

static void two_workspaces(lt_env *e)
{
    LT_OK(e, cm_ledger_workspace_create(e->l, "acme", "alice", NULL));
    LT_OK(e, cm_ledger_workspace_create(e->l, "zeta", "zoe", NULL));
    LT_OK(e, cm_ledger_buy(e->l, "acme", 50, "alice", NULL, NULL));
    LT_OK(e, cm_ledger_buy(e->l, "zeta", 50, "zoe", NULL, NULL));
}

static void test_a_locked_workspace_does_not_stop_calls_on_another(void **state)
{
    (void)state;
    LT_SKIP_ON_PG_ABSENT();
    lt_env e;
    lt_open(&e, "fleet_lock");
    two_workspaces(&e);
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "held-elsewhere", 2, "alice", 0, NULL));
    /* Another machine is in the middle of a call on acme: it holds acme's lock. */
    PGconn *other = PQconnectdb(e.path);
    assert_int_equal(PQstatus(other), CONNECTION_OK);
    PGresult *r = PQexec(other, "BEGIN; SELECT pg_advisory_xact_lock(1668118387, "
                                "hashtext(current_schema() || '/' || 'acme'))");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    cm_ledger *l = open_at(&e, e.path, 300);
    /* zeta's calls go on; acme's wait for the lock and give up after the busy timeout
     * as busy (retryable), having changed nothing. Both by workspace and by job. */
    assert_int_equal(cm_ledger_reserve(l, "zeta", "z1", 5, "zoe", 0, NULL), CM_LEDGER_OK);
    assert_int_equal(cm_ledger_commit(l, "z1", 3, NULL), CM_LEDGER_OK);
    assert_int_equal(cm_ledger_reserve(l, "acme", "a1", 5, "alice", 0, NULL), CM_LEDGER_E_BUSY);
    assert_int_equal(cm_ledger_commit(l, "held-elsewhere", 1, NULL), CM_LEDGER_E_BUSY);
    PQclear(PQexec(other, "COMMIT"));
    PQfinish(other);
    /* Once acme's lock is free, the same calls go through. */
    assert_int_equal(cm_ledger_reserve(l, "acme", "a1", 5, "alice", 0, NULL), CM_LEDGER_OK);
    assert_int_equal(cm_ledger_commit(l, "held-elsewhere", 1, NULL), CM_LEDGER_OK);
    cm_ledger_close(l);
    assert_int_equal(lt_available(&e, "zeta"), 47);
    assert_int_equal(lt_available(&e, "acme"), 50 - 1 - 5);
    lt_close(&e);
}

/* Terminate the server processes serving application app (not this test's others). */
static void terminate(const lt_env *e, const char *app)
{
    char sql[256], err[256];
    snprintf(sql, sizeof sql,
             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
             "'%s'",
             app);
    if (lt_pg_exec(e->path, sql, err, sizeof err))
        fail_msg("terminate: %s", err);
}

static void pg_ok(const lt_env *e, const char *sql)
{
    char err[256];
    if (lt_pg_exec(e->path, sql, err, sizeof err))
        fail_msg("%s: %s", sql, err);
}

static void test_a_connection_dropped_while_idle_is_made_again_within_the_call(void **state)
{
    (void)state;
    LT_SKIP_ON_PG_ABSENT();
    lt_env e;
    lt_open(&e, "fleet_drop");
    two_workspaces(&e);
    char loc[1024];
    named_location(&e, "cm_fleet_drop", loc, sizeof loc);
    cm_ledger *l = open_at(&e, loc, 5000);
    assert_int_equal(cm_ledger_reserve(l, "acme", "j1", 4, "alice", 0, NULL), CM_LEDGER_OK);
    cm_ledger_stats before = {.struct_size = sizeof before}, after = before;
    assert_int_equal(cm_ledger_stats_read(l, &before), CM_LEDGER_OK);
    assert_int_equal(before.reconnects, 0);
    terminate(&e, "cm_fleet_drop"); /* a server restart, an idle timeout */
    /* Nothing of the call had reached the server: it runs again on a new connection. */
    cm_ledger_job *j = NULL;
    assert_int_equal(cm_ledger_commit(l, "j1", 3, &j), CM_LEDGER_OK);
    assert_int_equal(j->charged, 3);
    cm_ledger_job_free(j);
    /* what a host's metrics show: one reconnect, the call's one attempt run again */
    assert_int_equal(cm_ledger_stats_read(l, &after), CM_LEDGER_OK);
    assert_int_equal(after.reconnects, 1);
    assert_int_equal(after.retries, before.retries + 1);
    assert_int_equal(after.transactions, before.transactions + 2);
    cm_ledger_close(l);
    assert_int_equal(lt_available(&e, "acme"), 50 - 3);
    lt_close(&e);
}

static void test_a_server_that_cannot_be_reached_again_fails_the_call_as_unavailable(void **state)
{
    (void)state;
    LT_SKIP_ON_PG_ABSENT();
    lt_env e;
    lt_open(&e, "fleet_gone");
    two_workspaces(&e);
    /* A role of its own, to shut this handle out (and no other test's). */
    pg_ok(&e, "DROP ROLE IF EXISTS cm_fleet_gone");
    pg_ok(&e, "CREATE ROLE cm_fleet_gone LOGIN SUPERUSER");
    char loc[1024];
    named_location(&e, "cm_fleet_gone", loc, sizeof loc);
    char *u = strstr(loc, "user=postgres");
    assert_non_null(u);
    char as_role[1100];
    snprintf(as_role, sizeof as_role, "%.*suser=cm_fleet_gone%s", (int)(u - loc), loc,
             u + strlen("user=postgres"));
    cm_ledger *l = open_at(&e, as_role, 5000);
    assert_int_equal(cm_ledger_reserve(l, "acme", "j1", 4, "alice", 0, NULL), CM_LEDGER_OK);
    /* The server drops the connection and takes no new one (a primary that died, a
     * standby not yet promoted): the call fails, retryably, and says so. */
    pg_ok(&e, "ALTER ROLE cm_fleet_gone NOLOGIN");
    terminate(&e, "cm_fleet_gone");
    assert_int_equal(cm_ledger_commit(l, "j1", 3, NULL), CM_LEDGER_E_UNAVAILABLE);
    assert_non_null(strstr(cm_ledger_errmsg(l), "retried"));
    assert_int_equal(cm_ledger_reserve(l, "acme", "j2", 2, "alice", 0, NULL),
                     CM_LEDGER_E_UNAVAILABLE);
    /* Back: the same calls, retried as they are, go through once, and again are the
     * first result. */
    pg_ok(&e, "ALTER ROLE cm_fleet_gone LOGIN");
    cm_ledger_job *j = NULL;
    assert_int_equal(cm_ledger_commit(l, "j1", 3, &j), CM_LEDGER_OK);
    assert_int_equal(j->charged, 3);
    cm_ledger_job_free(j);
    assert_int_equal(cm_ledger_commit(l, "j1", 3, NULL), CM_LEDGER_OK);
    assert_int_equal(cm_ledger_reserve(l, "acme", "j2", 2, "alice", 0, NULL), CM_LEDGER_OK);
    assert_int_equal(cm_ledger_reserve(l, "acme", "j2", 2, "alice", 0, NULL), CM_LEDGER_OK);
    cm_ledger_close(l);
    pg_ok(&e, "DROP ROLE cm_fleet_gone");
    assert_int_equal(lt_available(&e, "acme"), 50 - 3 - 2);
    assert_int_equal(lt_held(&e, "acme"), 2);
    lt_close(&e);
}

/* One payment reference, two workspaces, at once: the second insert of the reference
 * waits for the first transaction and, once it commits, loses on the unique key. */
typedef struct race_arg {
    lt_env *e;
} race_arg;

/* Child i: 0 buys for zeta, 1 for acme, with the same reference. Exits 0 when the
 * answer is what the rules give (zeta: bought; acme: conflict, the reference is zeta's),
 * else 100 + the code's magnitude. */
static int race_buyer(int i, void *arg)
{
    race_arg *r = arg;
    char loc[1024];
    named_location(r->e, i ? "cm_fleet_race_b" : "cm_fleet_race_a", loc, sizeof loc);
    cm_ledger *l = open_at(r->e, loc, 30000);
    int rc = i ? cm_ledger_buy(l, "acme", 5, "alice", "pay-race", NULL)
               : cm_ledger_buy(l, "zeta", 5, "zoe", "pay-race", NULL);
    cm_ledger_close(l);
    int want = i ? CM_LEDGER_E_CONFLICT : CM_LEDGER_OK;
    return rc == want ? 0 : 100 - rc;
}

/* Polls (up to ~30 s) until sql, a count, reads 1 or more. */
static void wait_until(const lt_env *e, const char *sql)
{
    PGconn *c = PQconnectdb(e->path);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    for (int n = 0; n < 30000; n++) {
        PGresult *r = PQexec(c, sql);
        int k = PQresultStatus(r) == PGRES_TUPLES_OK ? atoi(PQgetvalue(r, 0, 0)) : -1;
        PQclear(r);
        if (k < 0)
            fail_msg("%s: %s", sql, PQerrorMessage(c));
        if (k > 0) {
            PQfinish(c);
            return;
        }
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
    PQfinish(c);
    fail_msg("never true: %s", sql);
}

static void
test_two_workspaces_racing_for_one_reference_get_a_replay_answer_not_a_failure(void **state)
{
    (void)state;
    LT_SKIP_ON_PG_ABSENT();
    lt_env e;
    lt_open(&e, "fleet_race");
    two_workspaces(&e);
    /* Hold zeta's purchase right after its grant row is inserted, until released. */
    PGconn *gate = PQconnectdb(e.path);
    assert_int_equal(PQstatus(gate), CONNECTION_OK);
    PQclear(PQexec(gate, "SELECT pg_advisory_lock(4242)"));
    pg_ok(&e, "CREATE FUNCTION fleet_pause() RETURNS trigger LANGUAGE plpgsql AS "
              "'BEGIN PERFORM pg_advisory_lock_shared(4242); "
              "PERFORM pg_advisory_unlock_shared(4242); RETURN NULL; END'");
    pg_ok(&e, "CREATE TRIGGER fleet_pause AFTER INSERT ON grants FOR EACH ROW "
              "WHEN (NEW.ref = 'pay-race') EXECUTE FUNCTION fleet_pause()");
    race_arg r = {&e};
    pid_t a = cmt_proc_fork(race_buyer, 0, &r);
    assert_true(a > 0);
    wait_until(&e, "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                   "'cm_fleet_race_a' AND wait_event = 'advisory'");
    /* zeta's row with the reference exists, uncommitted; acme's insert of it waits. */
    pid_t b = cmt_proc_fork(race_buyer, 1, &r);
    assert_true(b > 0);
    wait_until(&e, "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                   "'cm_fleet_race_b' AND wait_event = 'transactionid'");
    PQclear(PQexec(gate, "SELECT pg_advisory_unlock(4242)"));
    PQfinish(gate);
    assert_int_equal(cmt_proc_wait(a), 0);
    assert_int_equal(cmt_proc_wait(b), 0); /* conflict, not storage_failure */
    pg_ok(&e, "DROP TRIGGER fleet_pause ON grants");
    pg_ok(&e, "DROP FUNCTION fleet_pause()");
    assert_int_equal(lt_available(&e, "zeta"), 55);
    assert_int_equal(lt_available(&e, "acme"), 50);
    lt_close(&e);
}

static void test_an_unreachable_server_is_unavailable_and_the_cli_exits_3(void **state)
{
    (void)state;
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.location = "postgresql://ledger@127.0.0.1:1/credits?connect_timeout=5"; /* nobody listens */
    cm_ledger *l = NULL;
    int rc = cm_ledger_open(&l, &cfg);
    assert_int_equal(rc, CM_LEDGER_E_UNAVAILABLE);
    assert_null(l);
    char out[4096], err[4096];
    char *const argv[] = {CM_BIN_LEDGER, "--ledger", (char *)cfg.location, "balance", "acme", NULL};
    assert_int_equal(cmt_proc_run(argv, out, sizeof out, err, sizeof err), 3);
    assert_non_null(strstr(err, "storage_unavailable"));
    /* A refusal stays 1. */
    char path[512];
    lt_db_path(path, sizeof path, "fleet_cli");
    lt_unlink_db(path);
    char *const refuse[] = {CM_BIN_LEDGER, "--ledger", path, "balance", "nosuch", NULL};
    assert_int_equal(cmt_proc_run(refuse, out, sizeof out, err, sizeof err), 1);
    lt_unlink_db(path);
}

/* Ledger B's reserve, run in a thread: it takes acme's lock in B, then waits for the
 * table lock the test holds. */
typedef struct reserve_in_b {
    cm_ledger *l;
    int rc;
} reserve_in_b;

static void *reserve_b(void *arg)
{
    reserve_in_b *x = arg;
    x->rc = cm_ledger_reserve(x->l, "acme", "b1", 5, "alice", 0, NULL);
    return NULL;
}

/* How many advisory locks the server processes of application app hold. */
static long advisory_locks_of(const lt_env *e, const char *app)
{
    PGconn *c = PQconnectdb(e->path);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
             "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = '%s'",
             app);
    PGresult *r = PQexec(c, sql);
    long n = PQresultStatus(r) == PGRES_TUPLES_OK ? atol(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    PQfinish(c);
    return n;
}

static void test_ledgers_in_two_schemas_of_one_database_never_wait_for_each_other(void **state)
{
    (void)state;
    LT_SKIP_ON_PG_ABSENT();
    /* Two ledgers (schemas) of one database, each with a workspace named acme. */
    lt_env a, b;
    lt_open(&a, "fleet_schema_a");
    lt_open(&b, "fleet_schema_b");
    two_workspaces(&a);
    two_workspaces(&b);
    char loc[1024];
    named_location(&b, "cm_fleet_schema_b", loc, sizeof loc);
    reserve_in_b x = {open_at(&b, loc, 60000), -1};
    /* A call on B's acme holds acme's lock in B while it waits for B's holds table. */
    PGconn *blocker = PQconnectdb(b.path);
    assert_int_equal(PQstatus(blocker), CONNECTION_OK);
    PGresult *r = PQexec(blocker, "BEGIN; LOCK TABLE holds IN ACCESS EXCLUSIVE MODE");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, reserve_b, &x), 0);
    for (int i = 0; advisory_locks_of(&b, "cm_fleet_schema_b") < 1; i++) {
        assert_true(i < 6000); /* 60 s: the thread never took its lock */
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    /* A's acme is another workspace: its calls go through at once (a lock keyed by the
     * workspace id alone would make them wait for B's and fail busy). */
    cm_ledger *l = open_at(&a, a.path, 300);
    assert_int_equal(cm_ledger_reserve(l, "acme", "a1", 5, "alice", 0, NULL), CM_LEDGER_OK);
    assert_int_equal(cm_ledger_commit(l, "a1", 2, NULL), CM_LEDGER_OK);
    cm_ledger_close(l);
    PQclear(PQexec(blocker, "COMMIT"));
    PQfinish(blocker);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(x.rc, CM_LEDGER_OK);
    cm_ledger_close(x.l);
    assert_int_equal(lt_available(&a, "acme"), 48);
    assert_int_equal(lt_available(&b, "acme"), 45);
    lt_close(&b);
    lt_close(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_locked_workspace_does_not_stop_calls_on_another),
        cmocka_unit_test(test_ledgers_in_two_schemas_of_one_database_never_wait_for_each_other),
        cmocka_unit_test(test_a_connection_dropped_while_idle_is_made_again_within_the_call),
        cmocka_unit_test(test_a_server_that_cannot_be_reached_again_fails_the_call_as_unavailable),
        cmocka_unit_test(
            test_two_workspaces_racing_for_one_reference_get_a_replay_answer_not_a_failure),
        cmocka_unit_test(test_an_unreachable_server_is_unavailable_and_the_cli_exits_3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
