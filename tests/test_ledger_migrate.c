/*
 * test_ledger_migrate.c - a SQLite ledger made by an older version of the library is
 * converted in place when it is opened, keeps every balance, hold, take and journal row,
 * and passes check; a conversion that cannot be made changes nothing.
 *
 * The version-1 database is written here with the version-1 schema, frozen as it was
 * released (storage_sqlite.c's first migration), and rows a version-1 ledger could
 * have made: a plan grant and an add-on, a hold committed in part and refunded in part,
 * a hold still held that took from two grants, and their journal.
 */
#include "ledger_test.h"

/* Schema version 1, as released. */
static const char *const v1_schema =
    "CREATE TABLE schema_version(version INTEGER NOT NULL);"
    "CREATE TABLE prices(region TEXT PRIMARY KEY, currency TEXT NOT NULL, "
    "  unit_minor INTEGER NOT NULL CHECK (unit_minor >= 0));"
    "INSERT INTO prices(region, currency, unit_minor) VALUES('default', 'USD', 15);"
    "CREATE TABLE workspaces(id TEXT PRIMARY KEY, owner TEXT NOT NULL, region TEXT NOT NULL, "
    "  created_ms INTEGER NOT NULL);"
    "CREATE TABLE members(ws TEXT NOT NULL REFERENCES workspaces(id), user_id TEXT NOT NULL, "
    "  PRIMARY KEY (ws, user_id)) WITHOUT ROWID;"
    "CREATE TABLE plans(ws TEXT PRIMARY KEY REFERENCES workspaces(id), "
    "  credits INTEGER NOT NULL CHECK (credits > 0), interval INTEGER NOT NULL, tier TEXT, "
    "  start_ms INTEGER NOT NULL, next_period INTEGER NOT NULL, cancelled_ms INTEGER);"
    "CREATE TABLE grants(id INTEGER PRIMARY KEY, ws TEXT NOT NULL REFERENCES workspaces(id), "
    "  kind INTEGER NOT NULL, granted INTEGER NOT NULL CHECK (granted >= 0), "
    "  remaining INTEGER NOT NULL CHECK (remaining >= 0), held INTEGER NOT NULL CHECK (held >= 0),"
    "  charged INTEGER NOT NULL CHECK (charged >= 0), "
    "  expired INTEGER NOT NULL CHECK (expired >= 0),"
    "  refunded_into INTEGER NOT NULL CHECK (refunded_into >= 0), created_ms INTEGER NOT NULL, "
    "  expires_ms INTEGER, period INTEGER, ref TEXT UNIQUE, unit_minor INTEGER, "
    "  total_minor INTEGER, currency TEXT);"
    "CREATE INDEX grants_ws ON grants(ws);"
    "CREATE TABLE holds(job TEXT PRIMARY KEY, ws TEXT NOT NULL REFERENCES workspaces(id), "
    "  user_id TEXT NOT NULL, credits INTEGER NOT NULL CHECK (credits > 0), "
    "  lease_s INTEGER NOT NULL, state INTEGER NOT NULL, created_ms INTEGER NOT NULL, "
    "  lease_until_ms INTEGER NOT NULL, resolved_ms INTEGER, "
    "  charged INTEGER NOT NULL CHECK (charged >= 0), "
    "  refunded INTEGER NOT NULL CHECK (refunded >= 0 AND refunded <= charged), "
    "  commit_arg INTEGER) WITHOUT ROWID;"
    "CREATE INDEX holds_lapse ON holds(ws, lease_until_ms) WHERE state = 1;"
    "CREATE TABLE hold_takes(job TEXT NOT NULL REFERENCES holds(job), seq INTEGER NOT NULL, "
    "  grant_id INTEGER NOT NULL REFERENCES grants(id), "
    "  credits INTEGER NOT NULL CHECK (credits > 0),"
    "  charged INTEGER NOT NULL, refunded INTEGER NOT NULL, PRIMARY KEY (job, seq)) WITHOUT ROWID;"
    "CREATE TABLE refunds(ref TEXT PRIMARY KEY, job TEXT NOT NULL REFERENCES holds(job), "
    "  credits INTEGER NOT NULL, to_source INTEGER NOT NULL, refund_grant_id INTEGER, "
    "  total_refunded INTEGER NOT NULL, at_ms INTEGER NOT NULL);"
    "CREATE TABLE journal(id INTEGER PRIMARY KEY, op INTEGER NOT NULL, ws TEXT NOT NULL, "
    "  at_ms INTEGER NOT NULL, kind TEXT NOT NULL, grant_id INTEGER REFERENCES grants(id), "
    "  job TEXT, credits INTEGER NOT NULL CHECK (credits >= 0), actor TEXT NOT NULL, "
    "  reason TEXT, ref TEXT);"
    "CREATE INDEX journal_ws ON journal(ws, id);"
    "CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal "
    "  BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;"
    "CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal "
    "  BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;"
    "INSERT INTO schema_version(version) VALUES(1);";

/* 2026-01-31T12:00:00Z (the tests' start instant) and the plan period's end. */
#define T0 "1769860800000"
#define T1 "1772280000000" /* 2026-02-28T12:00:00Z */

/* acme (owner alice, member bob), a monthly plan of 100 granted for period 0 (grant 1)
 * and 10 add-on credits (grant 2). job-a held 30 from grant 1, was committed for 20 (10
 * back) and refunded 5 (reference rf-1). job-b holds 80: 70 from grant 1, 10 from grant 2.
 * Grant 1: 100 = remaining 15 + held 70 + charged 20 - refunded 5; grant 2: held 10. */
static const char *const v1_data =
    "INSERT INTO workspaces VALUES('acme', 'alice', 'default', " T0 ");"
    "INSERT INTO members VALUES('acme', 'bob');"
    "INSERT INTO plans VALUES('acme', 100, 1, 'pro', " T0 ", 1, NULL);"
    "INSERT INTO grants VALUES(1, 'acme', 1, 100, 15, 70, 20, 0, 5, " T0 ", " T1 ", 0, NULL, "
    "  NULL, NULL, NULL);"
    "INSERT INTO grants VALUES(2, 'acme', 2, 10, 0, 10, 0, 0, 0, " T0 ", NULL, NULL, 'pay-1', "
    "  15, 150, 'USD');"
    "INSERT INTO holds VALUES('job-a', 'acme', 'bob', 30, 900, 2, " T0 ", " T0 " + 900000, " T0
    ", 20, 5, 20);"
    "INSERT INTO holds VALUES('job-b', 'acme', 'bob', 80, 900, 1, " T0 ", " T0 " + 900000, NULL, "
    "  0, 0, NULL);"
    "INSERT INTO hold_takes VALUES('job-a', 0, 1, 30, 20, 5);"
    "INSERT INTO hold_takes VALUES('job-b', 0, 1, 70, 0, 0);"
    "INSERT INTO hold_takes VALUES('job-b', 1, 2, 10, 0, 0);"
    "INSERT INTO refunds VALUES('rf-1', 'job-a', 5, 5, NULL, 5, " T0 ");"
    "INSERT INTO journal VALUES(1, 1, 'acme', " T0 ", 'workspace', NULL, NULL, 0, 'alice', "
    "  'created', NULL);"
    "INSERT INTO journal VALUES(2, 2, 'acme', " T0 ", 'member_add', NULL, NULL, 0, 'alice', "
    "  'bob', NULL);"
    "INSERT INTO journal VALUES(3, 3, 'acme', " T0 ", 'plan_set', NULL, NULL, 0, 'alice', "
    "  '100 monthly', NULL);"
    "INSERT INTO journal VALUES(4, 3, 'acme', " T0 ", 'grant', 1, NULL, 100, 'alice', "
    "  'plan period 0', NULL);"
    "INSERT INTO journal VALUES(5, 5, 'acme', " T0 ", 'purchase', 2, NULL, 10, 'alice', "
    "  'add-on', 'pay-1');"
    "INSERT INTO journal VALUES(6, 6, 'acme', " T0 ", 'hold', 1, 'job-a', 30, 'bob', "
    "  'reserved', NULL);"
    "INSERT INTO journal VALUES(7, 7, 'acme', " T0 ", 'commit', 1, 'job-a', 20, 'bob', "
    "  'charged', NULL);"
    "INSERT INTO journal VALUES(8, 7, 'acme', " T0 ", 'release', 1, 'job-a', 10, 'bob', "
    "  'the unused part of a committed hold', NULL);"
    "INSERT INTO journal VALUES(9, 9, 'acme', " T0 ", 'refund', 1, 'job-a', 5, 'support', "
    "  'bad output', 'rf-1');"
    "INSERT INTO journal VALUES(10, 10, 'acme', " T0 ", 'hold', 1, 'job-b', 70, 'bob', "
    "  'reserved', NULL);"
    "INSERT INTO journal VALUES(11, 10, 'acme', " T0 ", 'hold', 2, 'job-b', 10, 'bob', "
    "  'reserved', NULL);";

static void make_v1(lt_env *e, const char *name, const char *extra)
{
    memset(e, 0, sizeof *e);
    lt_db_path(e->path, sizeof e->path, name);
    lt_unlink_db(e->path);
    e->now_ms = lt_time("2026-01-31T12:05:00Z");
    char err[512];
    if (lt_exec_sql(e->path, v1_schema, err, sizeof err) ||
        lt_exec_sql(e->path, v1_data, err, sizeof err) ||
        (extra && lt_exec_sql(e->path, extra, err, sizeof err)))
        fail_msg("making a version-1 ledger: %s", err);
}

static int64_t sql_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    int64_t v = -1;
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static void expect_take(const cm_ledger_take *t, int64_t grant, int64_t credits, int64_t charged,
                        int64_t refunded)
{
    assert_int_equal(t->grant_id, grant);
    assert_int_equal(t->credits, credits);
    assert_int_equal(t->charged, charged);
    assert_int_equal(t->refunded, refunded);
}

static void test_version_1_ledger_is_upgraded_in_place_and_checks(void **state)
{
    (void)state;
    LT_SKIP_ON_PG("the version-1 ledger here is a SQLite file");
    lt_env e;
    make_v1(&e, "migrate", NULL);
    e.l = lt_open_path(&e, e.path);
    assert_int_equal(sql_int(e.path, "SELECT MAX(version) FROM schema_version"), 2);
    assert_int_equal(
        sql_int(e.path, "SELECT count(*) FROM sqlite_schema WHERE name = 'hold_takes'"), 0);
    LT_OK(&e, cm_ledger_check(e.l));

    /* Every hold with its takes, in order, charged and refunded as they were. */
    cm_ledger_job *j = NULL;
    LT_OK(&e, cm_ledger_job_info(e.l, "job-a", &j));
    assert_int_equal(j->state, CM_LEDGER_COMMITTED);
    assert_int_equal(j->charged, 20);
    assert_int_equal(j->refunded, 5);
    assert_int_equal(j->n_takes, 1);
    expect_take(&j->takes[0], 1, 30, 20, 5);
    cm_ledger_job_free(j);
    LT_OK(&e, cm_ledger_job_info(e.l, "job-b", &j));
    assert_int_equal(j->state, CM_LEDGER_HELD);
    assert_int_equal(j->n_takes, 2);
    expect_take(&j->takes[0], 1, 70, 0, 0);
    expect_take(&j->takes[1], 2, 10, 0, 0);
    cm_ledger_job_free(j);

    /* Balances and the journal read as before. */
    assert_int_equal(lt_available(&e, "acme"), 15);
    assert_int_equal(lt_held(&e, "acme"), 80);
    cm_ledger_history_result *h = NULL;
    LT_OK(&e, cm_ledger_history(e.l, "acme", NULL, &h));
    assert_int_equal(h->n_entries, 11);
    assert_string_equal(h->entries[10].kind, "hold");
    assert_int_equal(h->entries[10].grant_id, 2);
    cm_ledger_history_free(h);

    /* The upgraded ledger keeps working: a replayed refund, then job-b committed in
     * part (70 from grant 1, 5 from grant 2, 5 back) and refunded whole, last-charged
     * first; job-a refunded up to its charge and no further. */
    cm_ledger_refund_result r;
    LT_OK(&e, cm_ledger_refund(e.l, "job-a", 5, "bad output", "support", "rf-1", &r));
    assert_true(r.replayed);
    LT_OK(&e, cm_ledger_commit(e.l, "job-b", 75, &j));
    assert_int_equal(j->n_takes, 2);
    expect_take(&j->takes[0], 1, 70, 70, 0);
    expect_take(&j->takes[1], 2, 10, 5, 0);
    cm_ledger_job_free(j);
    LT_OK(&e, cm_ledger_refund(e.l, "job-b", 6, "partial", "support", NULL, &r));
    LT_OK(&e, cm_ledger_job_info(e.l, "job-b", &j));
    expect_take(&j->takes[0], 1, 70, 70, 1);
    expect_take(&j->takes[1], 2, 10, 5, 5);
    cm_ledger_job_free(j);
    LT_OK(&e, cm_ledger_refund(e.l, "job-a", CM_LEDGER_ALL, "all", "support", NULL, &r));
    assert_int_equal(r.credits, 15);
    LT_EXPECT(&e, CM_LEDGER_E_INVALID,
              cm_ledger_refund(e.l, "job-a", 1, "again", "support", NULL, &r));
    LT_OK(&e, cm_ledger_check(e.l));

    /* Reopening does not migrate again. */
    cm_ledger_close(e.l);
    e.l = lt_open_path(&e, e.path);
    assert_int_equal(sql_int(e.path, "SELECT count(*) FROM schema_version"), 2);
    assert_int_equal(lt_available(&e, "acme"), 15 + 5 + 6 + 15);
    lt_close(&e);
}

/* A version-1 ledger whose takes break a constraint the new layout keeps (charged above
 * what was taken) is refused, and left exactly as it was. */
static void test_failed_upgrade_changes_nothing(void **state)
{
    (void)state;
    LT_SKIP_ON_PG("the version-1 ledger here is a SQLite file");
    lt_env e;
    make_v1(&e, "migrate_bad", "UPDATE hold_takes SET charged = 40 WHERE job = 'job-a'");
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.db = e.path;
    cm_ledger *l = NULL;
    assert_int_equal(cm_ledger_open(&l, &cfg), CM_LEDGER_E_STORAGE);
    assert_null(l);
    assert_non_null(strstr(cm_ledger_errmsg(NULL), "takes are invalid"));
    assert_int_equal(sql_int(e.path, "SELECT MAX(version) FROM schema_version"), 1);
    assert_int_equal(sql_int(e.path, "SELECT count(*) FROM hold_takes"), 3);
    assert_int_equal(
        sql_int(e.path, "SELECT count(*) FROM pragma_table_info('holds') WHERE name = 'takes'"), 0);
    lt_unlink_db(e.path);
}

/* A hold's takes keep their constraints in the database, whoever writes: each names an
 * existing grant (on SQLite also 0 <= refunded <= charged <= credits). */
static void test_database_refuses_a_take_of_no_grant(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "takes_constraints");
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 10, "alice", NULL, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "j1", 4, "bob", 0, NULL));
    char err[512];
    if (lt_pg()) {
        assert_int_not_equal(lt_exec_sql(e.path,
                                         "INSERT INTO hold_takes VALUES('j1', 1, 999, 1, 0, 0)",
                                         err, sizeof err),
                             0);
    } else {
        assert_int_not_equal(lt_exec_sql(e.path,
                                         "UPDATE holds SET takes = '[[999, 4, 0, 0]]' "
                                         "WHERE job = 'j1'",
                                         err, sizeof err),
                             0);
        assert_int_not_equal(lt_exec_sql(e.path,
                                         "UPDATE holds SET takes = "
                                         "json_replace(takes, '$[0][2]', 5) WHERE job = 'j1'",
                                         err, sizeof err),
                             0);
        assert_int_not_equal(
            lt_exec_sql(e.path, "UPDATE holds SET takes = 'x' WHERE job = 'j1'", err, sizeof err),
            0);
    }
    LT_OK(&e, cm_ledger_commit(e.l, "j1", 3, NULL));
    lt_close(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_1_ledger_is_upgraded_in_place_and_checks),
        cmocka_unit_test(test_failed_upgrade_changes_nothing),
        cmocka_unit_test(test_database_refuses_a_take_of_no_grant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
