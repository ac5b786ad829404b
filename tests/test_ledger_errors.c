/* SPDX-License-Identifier: MIT */
/* Error codes and storage: every code has a stable machine name and a sentence; open
 * refuses bad configs and foreign files; a locked database is E_BUSY; check catches a
 * tampered balance or hold (E_CHECK); the journal is append-only; the schema version
 * is enforced; the database itself refuses a negative balance; one handle is safe from
 * several threads. Runs on SQLite and, with CM_TEST_LEDGER_DB, on PostgreSQL. */
#include "ledger_test.h"

#include <sys/stat.h>

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

static void test_every_error_code_has_a_distinct_name_and_sentence(void **state)
{
    (void)state;
    const int codes[] = {CM_LEDGER_OK,
                         CM_LEDGER_E_INSUFFICIENT,
                         CM_LEDGER_E_FORBIDDEN,
                         CM_LEDGER_E_NO_WORKSPACE,
                         CM_LEDGER_E_NO_JOB,
                         CM_LEDGER_E_CONFLICT,
                         CM_LEDGER_E_ALREADY_RESOLVED,
                         CM_LEDGER_E_LEASE_EXPIRED,
                         CM_LEDGER_E_INVALID,
                         CM_LEDGER_E_BUSY,
                         CM_LEDGER_E_STORAGE,
                         CM_LEDGER_E_NOMEM,
                         CM_LEDGER_E_CHECK,
                         CM_LEDGER_E_NOT_MEMBER,
                         CM_LEDGER_E_JOB_CLOSED,
                         CM_LEDGER_E_UNSUPPORTED,
                         CM_LEDGER_E_NO_LEDGER,
                         CM_LEDGER_E_UNAVAILABLE};
    const size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        assert_string_not_equal(cm_ledger_err_name(codes[i]), "unknown");
        assert_string_not_equal(cm_ledger_strerror(codes[i]), "unknown error");
        for (size_t k = 0; k < i; k++) {
            assert_string_not_equal(cm_ledger_err_name(codes[i]), cm_ledger_err_name(codes[k]));
            assert_string_not_equal(cm_ledger_strerror(codes[i]), cm_ledger_strerror(codes[k]));
        }
    }
    assert_string_equal(cm_ledger_err_name(CM_LEDGER_E_INSUFFICIENT), "insufficient_credits");
    assert_string_equal(cm_ledger_err_name(CM_LEDGER_E_NO_WORKSPACE), "no_such_workspace");
    assert_string_equal(cm_ledger_err_name(CM_LEDGER_E_NOT_MEMBER), "not_a_member");
    assert_string_equal(cm_ledger_err_name(CM_LEDGER_E_JOB_CLOSED), "job_closed");
    assert_int_equal(CM_LEDGER_E_NOT_MEMBER, -13); /* append-only: never renumbered */
    assert_int_equal(CM_LEDGER_E_JOB_CLOSED, -14);
    assert_int_equal(CM_LEDGER_E_NO_LEDGER, -16);
    assert_int_equal(CM_LEDGER_E_UNAVAILABLE, -17);
    assert_string_equal(cm_ledger_err_name(CM_LEDGER_E_UNAVAILABLE), "storage_unavailable");
    assert_string_equal(cm_ledger_err_name(-999), "unknown");
}

static void test_open_refuses_bad_configs(void **state)
{
    (void)state;
    cm_ledger *l = (cm_ledger *)1;
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.struct_size = 3;
    assert_int_equal(cm_ledger_open(&l, &cfg), CM_LEDGER_E_INVALID);
    assert_null(l);
    assert_true(strlen(cm_ledger_errmsg(NULL)) > 0);
    cm_ledger_config_init(&cfg);
    cfg.synchronous = 9;
    assert_int_equal(cm_ledger_open(&l, &cfg), CM_LEDGER_E_INVALID);
    cm_ledger_config_init(&cfg);
    /* A server nobody answers for is unavailable, not broken: the caller may retry. */
    cfg.location = "postgresql://ledger@127.0.0.1:1/credits?connect_timeout=5"; /* nobody listens */
    assert_int_equal(cm_ledger_open(&l, &cfg), CM_LEDGER_E_UNAVAILABLE);
    assert_null(l);
    assert_non_null(strstr(cm_ledger_errmsg(NULL), "PostgreSQL"));
    cfg.location = "postgres://ledger:secret@127.0.0.1:1/credits";
    assert_int_equal(cm_ledger_open(&l, &cfg), CM_LEDGER_E_UNAVAILABLE);
    assert_null(strstr(cm_ledger_errmsg(NULL), "secret")); /* no password in messages */
    cm_ledger_config_init(&cfg);
    cfg.create = 2;
    assert_int_equal(cm_ledger_open(&l, &cfg), CM_LEDGER_E_INVALID);
    assert_null(l);
}

/* A mistyped location is an error, not a new empty ledger (issue 15): without create,
 * no file (SQLite) or no schema (PostgreSQL) is no_such_ledger and nothing is made; a
 * directory that does not exist is no_such_ledger even with create. */
static void test_opening_a_missing_ledger_is_no_such_ledger_and_creates_nothing(void **state)
{
    (void)state;
    char path[512];
    lt_db_path(path, sizeof path, "missing");
    lt_unlink_db(path);
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.location = path;
    cm_ledger *l = (cm_ledger *)1;
    assert_int_equal(cm_ledger_open(&l, &cfg), CM_LEDGER_E_NO_LEDGER);
    assert_null(l);
    assert_string_equal(cm_ledger_err_name(CM_LEDGER_E_NO_LEDGER), "no_such_ledger");
    assert_non_null(strstr(cm_ledger_errmsg(NULL), "init"));
    if (!lt_is_uri(path)) {
        assert_int_equal(access(path, F_OK), -1); /* no file was left behind */
    } else {
        char err[256];
        /* the schema is still empty: a second open without create says the same */
        assert_int_equal(lt_exec_sql(path, "SELECT 1 FROM schema_version", err, sizeof err), -1);
    }
    assert_int_equal(cm_ledger_open(&l, &cfg), CM_LEDGER_E_NO_LEDGER);
    /* with create it is made, and then opens without create */
    cfg.create = 1;
    assert_int_equal(cm_ledger_open(&l, &cfg), CM_LEDGER_OK);
    cm_ledger_close(l);
    cfg.create = 0;
    assert_int_equal(cm_ledger_open(&l, &cfg), CM_LEDGER_OK);
    assert_int_equal(cm_ledger_check(l), CM_LEDGER_OK);
    cm_ledger_close(l);
    lt_unlink_db(path);
    if (!lt_is_uri(path)) {
        cfg.location = CM_TEST_TMP "/no/such/dir/ledger.db";
        cfg.create = 0;
        assert_int_equal(cm_ledger_open(&l, &cfg), CM_LEDGER_E_NO_LEDGER);
        cfg.create = 1;
        assert_int_equal(cm_ledger_open(&l, &cfg), CM_LEDGER_E_NO_LEDGER);
        assert_non_null(strstr(cm_ledger_errmsg(NULL), "no such directory"));
        /* an empty file (touch typo.db) is no ledger either, and is left empty */
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        fclose(f);
        cfg.location = path;
        cfg.create = 0;
        assert_int_equal(cm_ledger_open(&l, &cfg), CM_LEDGER_E_NO_LEDGER);
        struct stat sb;
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal((int)sb.st_size, 0);
        lt_unlink_db(path);
    }
}

static void test_open_refuses_a_file_that_is_not_a_database(void **state)
{
    (void)state;
    LT_SKIP_ON_PG("a foreign file is a SQLite matter; PostgreSQL has no ledger file");
    char path[512];
    lt_db_path(path, sizeof path, "garbage");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (int i = 0; i < 200; i++)
        fputs("this is not a database. ", f);
    fclose(f);
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.location = path;
    cm_ledger *l = NULL;
    assert_int_equal(cm_ledger_open(&l, &cfg), CM_LEDGER_E_STORAGE);
    lt_unlink_db(path);
}

/* The ledger keeps negative times for "none": a clock before 1970 is refused, not
 * written into the journal as a missing time. */
static void test_clock_before_1970_is_invalid(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "preepoch");
    e.now_ms = -1;
    assert_int_equal(cm_ledger_workspace_create(e.l, "acme", "alice", NULL), CM_LEDGER_E_INVALID);
    assert_non_null(strstr(cm_ledger_errmsg(e.l), "before 1970"));
    e.now_ms = 0;
    LT_OK(&e, cm_ledger_workspace_create(e.l, "acme", "alice", NULL));
    lt_close(&e);
}

static void test_synchronous_normal_opens_and_works(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "syncnormal");
    cm_ledger_close(e.l);
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.location = e.path;
    cfg.synchronous = CM_LEDGER_SYNC_NORMAL;
    LT_OK(&e, cm_ledger_open(&e.l, &cfg));
    LT_OK(&e, cm_ledger_workspace_create(e.l, "acme", "alice", NULL));
    lt_close(&e);
}

static void test_locked_database_is_busy_after_the_timeout(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "busy");
    lt_workspace(&e);
    cm_ledger_close(e.l);
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.location = e.path;
    cfg.busy_timeout_ms = 100;
    LT_OK(&e, cm_ledger_open(&e.l, &cfg));
    /* Another session holds the lock (PostgreSQL: on the grants) past the busy timeout. */
    lt_lock k;
    lt_lock_hold(&k, e.path, "grants");
    LT_EXPECT(&e, CM_LEDGER_E_BUSY, cm_ledger_buy(e.l, "acme", 1, "alice", NULL, NULL));
    assert_non_null(strstr(cm_ledger_errmsg(e.l), "locked"));
    lt_unlock(&k);
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 1, "alice", NULL, NULL));
    lt_close(&e);
}

static void exec_sql(const char *path, const char *sql)
{
    char err[512];
    if (lt_exec_sql(path, sql, err, sizeof err))
        fail_msg("%s: %s", sql, err);
}

static void test_check_catches_a_tampered_balance(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "tamper");
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 10, "alice", NULL, NULL));
    LT_OK(&e, cm_ledger_check(e.l));
    exec_sql(e.path, "UPDATE grants SET remaining = remaining + 5");
    LT_EXPECT(&e, CM_LEDGER_E_CHECK, cm_ledger_check(e.l));
    assert_non_null(strstr(cm_ledger_errmsg(e.l), "grant 1"));
    exec_sql(e.path, "UPDATE grants SET remaining = remaining - 5");
    LT_OK(&e, cm_ledger_check(e.l));
    lt_close(&e);
}

static void test_check_catches_a_hold_resolved_twice(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "twice");
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 10, "alice", NULL, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "j", 4, "bob", 0, NULL));
    LT_OK(&e, cm_ledger_release(e.l, "j", NULL));
    /* Forge a second resolution: mark it held again and commit it. */
    exec_sql(e.path, "UPDATE holds SET state = 1, resolved_ms = NULL WHERE job = 'j'");
    exec_sql(e.path, "UPDATE grants SET remaining = remaining - 4, held = held + 4");
    LT_OK(&e, cm_ledger_commit(e.l, "j", CM_LEDGER_ALL, NULL));
    LT_EXPECT(&e, CM_LEDGER_E_CHECK, cm_ledger_check(e.l));
    cm_ledger_close(e.l);
    e.l = NULL;
    lt_close(&e);
}

/* Issue 12, check proves the strict rules: the price table is what the price log's latest
 * change of each region set, and the log's rows chain old -> new. */
static void test_check_proves_the_price_table_is_the_price_logs_last_change(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "pricelog");
    LT_OK(&e, cm_ledger_price_set_by(e.l, "in", "INR", 1200, "sam"));
    LT_OK(&e, cm_ledger_price_set_by(e.l, "IN", "INR", 1500, "kim"));
    LT_OK(&e, cm_ledger_price_set(e.l, "default", "EUR", 14));
    LT_OK(&e, cm_ledger_check(e.l));
    /* the table changed behind the log's back */
    exec_sql(e.path, "UPDATE prices SET unit_minor = 1400 WHERE region = 'IN'");
    LT_EXPECT(&e, CM_LEDGER_E_CHECK, cm_ledger_check(e.l));
    assert_non_null(strstr(cm_ledger_errmsg(e.l), "region 'IN': the price table differs"));
    exec_sql(e.path, "UPDATE prices SET unit_minor = 1500 WHERE region = 'IN'");
    LT_OK(&e, cm_ledger_check(e.l));
    /* a change that does not start from the price the previous one set */
    exec_sql(e.path, "INSERT INTO prices_log(at_ms, actor, region, old_currency, "
                     "old_unit_minor, new_currency, new_unit_minor) "
                     "VALUES(0, 'eve', 'IN', 'INR', 1300, 'INR', 1500)");
    LT_EXPECT(&e, CM_LEDGER_E_CHECK, cm_ledger_check(e.l));
    assert_non_null(strstr(cm_ledger_errmsg(e.l), "does not chain"));
    cm_ledger_close(e.l); /* the log is append-only: the forged row stays */
    e.l = NULL;
    lt_close(&e);
}

/* Issue 12: nothing costs 0 (a job that charges nothing is released), so check refuses
 * a hold committed for 0 credits since schema v3. */
static void test_check_proves_no_hold_is_committed_for_zero(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "zero");
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 10, "alice", NULL, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "j", 4, "bob", 0, NULL));
    LT_OK(&e, cm_ledger_release(e.l, "j", NULL));
    LT_OK(&e, cm_ledger_check(e.l));
    /* the journal gave all 4 back: as a commit that is a charge of 0 */
    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE holds SET state = %d WHERE job = 'j'", CM_LEDGER_COMMITTED);
    exec_sql(e.path, sql);
    LT_EXPECT(&e, CM_LEDGER_E_CHECK, cm_ledger_check(e.l));
    assert_non_null(strstr(cm_ledger_errmsg(e.l), "job 'j' is committed for 0 credits"));
    snprintf(sql, sizeof sql, "UPDATE holds SET state = %d WHERE job = 'j'", CM_LEDGER_RELEASED);
    exec_sql(e.path, sql);
    lt_close(&e); /* checks again: passes */
}

/* Issue 12: a hold keeps the input binding its job id was reserved with, as text that
 * cannot forge output. */
static void test_check_proves_a_hold_keeps_a_well_formed_binding(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "binding");
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 10, "alice", NULL, NULL));
    LT_OK(&e, cm_ledger_reserve_bound(e.l, "acme", "j", 2, "bob", 0, NULL,
                                      "in:1000:40000:0123456789abcdef", NULL));
    LT_OK(&e, cm_ledger_commit(e.l, "j", 1, NULL));
    LT_OK(&e, cm_ledger_check(e.l));
    exec_sql(e.path, "UPDATE holds SET binding = '' WHERE job = 'j'");
    LT_EXPECT(&e, CM_LEDGER_E_CHECK, cm_ledger_check(e.l));
    assert_non_null(strstr(cm_ledger_errmsg(e.l), "job 'j' keeps an input binding"));
    exec_sql(e.path, "UPDATE holds SET binding = 'in:1000:40000:0123456789abcdef'");
    lt_close(&e); /* checks again: passes */
}

static void test_journal_is_append_only(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "appendonly");
    lt_workspace(&e);
    char err[512];
    assert_int_not_equal(lt_exec_sql(e.path, "UPDATE journal SET credits = 5", err, sizeof err), 0);
    assert_non_null(strstr(err, "append-only"));
    assert_int_not_equal(lt_exec_sql(e.path, "DELETE FROM journal", err, sizeof err), 0);
    assert_non_null(strstr(err, "append-only"));
    if (lt_is_uri(e.path))
        assert_int_not_equal(lt_exec_sql(e.path, "TRUNCATE journal", err, sizeof err), 0);
    lt_close(&e);
}

/* The rules never drive a counter negative; the database refuses it too, whoever
 * writes. */
static void test_database_refuses_a_negative_balance(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "negative");
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 3, "alice", NULL, NULL));
    char err[512];
    assert_int_not_equal(
        lt_exec_sql(e.path, "UPDATE grants SET remaining = remaining - 4", err, sizeof err), 0);
    assert_int_not_equal(lt_exec_sql(e.path, "UPDATE grants SET held = -1", err, sizeof err), 0);
    assert_int_equal(lt_available(&e, "acme"), 3);
    lt_close(&e);
}

static void test_newer_schema_version_is_refused(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "schema");
    cm_ledger_close(e.l);
    e.l = NULL;
    exec_sql(e.path, "INSERT INTO schema_version(version) VALUES(99)");
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.location = e.path;
    cm_ledger *l = NULL;
    assert_int_equal(cm_ledger_open(&l, &cfg), CM_LEDGER_E_STORAGE);
    assert_non_null(strstr(cm_ledger_errmsg(NULL), "newer"));
    lt_close(&e);
}

static void test_reopening_keeps_the_schema_and_data(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "reopen");
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 3, "alice", NULL, NULL));
    cm_ledger_close(e.l);
    e.l = lt_open_path(&e, e.path);
    assert_int_equal(lt_available(&e, "acme"), 3);
    lt_close(&e);
}

/* A hold's takes (hold_takes) are written once at reserve; check verifies they add up to
 * the hold and name grants of its workspace. */
static void test_check_catches_takes_that_do_not_add_up(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "takes");
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_workspace_create(e.l, "other", "carol", NULL));
    LT_OK(&e, cm_ledger_buy(e.l, "other", 5, "carol", NULL, NULL)); /* grant 1 */
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 10, "alice", NULL, NULL)); /* grant 2 */
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "j", 4, "bob", 0, NULL));
    LT_OK(&e, cm_ledger_check(e.l));
    exec_sql(e.path, "UPDATE hold_takes SET credits = 3");
    LT_EXPECT(&e, CM_LEDGER_E_CHECK, cm_ledger_check(e.l));
    assert_non_null(strstr(cm_ledger_errmsg(e.l), "takes add up to 3"));
    exec_sql(e.path, "UPDATE hold_takes SET credits = 4, grant_id = 1");
    LT_EXPECT(&e, CM_LEDGER_E_CHECK, cm_ledger_check(e.l));
    assert_non_null(strstr(cm_ledger_errmsg(e.l), "not a grant of workspace 'acme'"));
    /* The database itself refuses a take of no credits or of a grant that does not exist. */
    char err[512];
    assert_int_not_equal(lt_exec_sql(e.path, "UPDATE hold_takes SET credits = 0", err, sizeof err),
                         0);
    int pg = lt_is_uri(e.path) != 0;
    assert_int_not_equal(lt_exec_sql(e.path,
                                     pg ? "UPDATE hold_takes SET grant_id = 99"
                                        : "PRAGMA foreign_keys = ON; "
                                          "UPDATE hold_takes SET grant_id = 99",
                                     err, sizeof err),
                         0);
    if (!pg) { /* SQLite keeps a text where an integer belongs, if told to */
        exec_sql(e.path, "UPDATE hold_takes SET credits = 'four'");
        LT_EXPECT(&e, CM_LEDGER_E_CHECK, cm_ledger_check(e.l));
        assert_non_null(strstr(cm_ledger_errmsg(e.l), "unreadable"));
    }
    exec_sql(e.path, "UPDATE hold_takes SET credits = 4, grant_id = 2");
    LT_OK(&e, cm_ledger_commit(e.l, "j", 3, NULL));
    LT_OK(&e, cm_ledger_check(e.l));
    lt_close(&e);
}

/* Journal ids and operation numbers are per workspace: each history is in order, and a
 * sweep that lapses holds in two workspaces at once leaves a ledger check accepts. */
static void test_journal_ids_are_per_workspace(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "perws");
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_workspace_create(e.l, "other", "carol", NULL));
    for (int i = 0; i < 3; i++) {
        char job[16];
        LT_OK(&e, cm_ledger_buy(e.l, "acme", 5, "alice", NULL, NULL));
        LT_OK(&e, cm_ledger_buy(e.l, "acme", 3, "alice", NULL, NULL));
        LT_OK(&e, cm_ledger_buy(e.l, "other", 5, "carol", NULL, NULL));
        snprintf(job, sizeof job, "a%d", i);
        LT_OK(&e, cm_ledger_reserve(e.l, "acme", job, 7, "bob", 60, NULL));
        snprintf(job, sizeof job, "o%d", i);
        LT_OK(&e, cm_ledger_reserve(e.l, "other", job, 4, "carol", 60, NULL));
    }
    e.now_ms += 61 * 1000;
    cm_ledger_sweep_stats st;
    LT_OK(&e, cm_ledger_sweep(e.l, &st));
    assert_int_equal(st.holds_lapsed, 6);
    LT_OK(&e, cm_ledger_check(e.l));
    const char *ws[] = {"acme", "other"};
    for (int w = 0; w < 2; w++) {
        cm_ledger_history_result *h = NULL;
        LT_OK(&e, cm_ledger_history(e.l, ws[w], NULL, &h));
        assert_true(h->n_entries > 10);
        for (size_t i = 1; i < h->n_entries; i++)
            assert_true(h->entries[i].id > h->entries[i - 1].id);
        if (!lt_is_uri(e.path)) /* SQLite numbers each workspace's rows 1, 2, 3, ... */
            assert_int_equal(h->entries[h->n_entries - 1].id, (int64_t)h->n_entries);
        cm_ledger_history_free(h);
    }
    lt_close(&e);
}

/* PostgreSQL's schema v2 drops hold_takes.charged and .refunded (derived since): a v1
 * database is made here by putting them back and forgetting version 2. (SQLite's
 * migration from a real v1 file is tested in test_ledger_cli.) */
static void test_postgres_v1_ledger_migrates(void **state)
{
    (void)state;
    if (!lt_pg()) {
        print_message("[  SKIPPED ] under SQLite: its v1 migration is tested in "
                      "test_ledger_cli with a v1 file\n");
        skip();
    }
    lt_env e;
    lt_open(&e, "pgv1");
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 3, "alice", NULL, NULL));
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 10, "alice", NULL, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "j", 7, "bob", 0, NULL));
    LT_OK(&e, cm_ledger_commit(e.l, "j", 5, NULL));
    LT_OK(&e, cm_ledger_refund(e.l, "j", 2, "r", "sup", NULL, NULL));
    cm_ledger_close(e.l);
    exec_sql(e.path, "ALTER TABLE hold_takes ADD COLUMN charged BIGINT NOT NULL DEFAULT 0, "
                     "ADD COLUMN refunded BIGINT NOT NULL DEFAULT 0;"
                     /* and what v3 added: plans (undone so that it is migrated again after
                      * v2), holds binding / prices */
                     "ALTER TABLE plans DROP COLUMN sched_credits, DROP COLUMN sched_interval, "
                     "DROP COLUMN sched_tier, DROP COLUMN sched_ms;"
                     "DROP TABLE plan_changes; DROP TABLE journal_v3_from;"
                     "ALTER TABLE holds DROP COLUMN binding, DROP COLUMN note, "
                     "DROP COLUMN commit_note; DROP TABLE prices_log;"
                     /* and what v4 added: events, alerts, health */
                     "DROP TABLE events; DROP TABLE alerts; DROP TABLE journal_v4_from;"
                     "DROP TABLE health;"
                     "DELETE FROM schema_version WHERE version >= 2");
    e.l = lt_open_path(&e, e.path);
    char err[512];
    assert_int_not_equal(lt_exec_sql(e.path, "SELECT charged FROM hold_takes", err, sizeof err), 0);
    /* both v3 blocks were migrated again */
    assert_int_equal(lt_exec_sql(e.path,
                                 "SELECT sched_credits, sched_interval, sched_tier, sched_ms "
                                 "FROM plans; SELECT count(*) FROM plan_changes;"
                                 "SELECT count(*) FROM journal_v3_from;"
                                 "SELECT binding, note, commit_note FROM holds;"
                                 "SELECT count(*) FROM prices_log",
                                 err, sizeof err),
                     0);
    cm_ledger_job *j = NULL;
    LT_OK(&e, cm_ledger_job_info(e.l, "j", &j));
    assert_int_equal(j->n_takes, 2);
    assert_int_equal(j->takes[0].charged, 3);
    assert_int_equal(j->takes[1].charged, 2);
    assert_int_equal(j->takes[0].refunded, 0);
    assert_int_equal(j->takes[1].refunded, 2);
    cm_ledger_job_free(j);
    LT_OK(&e, cm_ledger_check(e.l));
    lt_close(&e);
}

typedef struct thread_arg {
    lt_env *e;
    int id;
    int charged;
} thread_arg;

static void *spender(void *p)
{
    thread_arg *a = p;
    for (int i = 0; i < 40; i++) {
        char job[64];
        snprintf(job, sizeof job, "t%d-%d", a->id, i);
        int rc = cm_ledger_reserve(a->e->l, "acme", job, 1, "bob", 0, NULL);
        if (rc == CM_LEDGER_OK && cm_ledger_commit(a->e->l, job, CM_LEDGER_ALL, NULL) == 0)
            a->charged++;
    }
    return NULL;
}

static void test_one_handle_is_safe_from_several_threads(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "threads");
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 100, "alice", NULL, NULL));
    pthread_t t[4];
    thread_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (thread_arg){&e, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, spender, &a[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        total += a[i].charged;
    }
    assert_int_equal(total, 100);
    assert_int_equal(lt_available(&e, "acme"), 0);
    lt_close(&e);
}

/* ---- cm_ledger_errmsg is the handle's, not the thread's ---- */

typedef struct errmsg_arg {
    cm_ledger *l;
    const char *ws;
    int rc;
} errmsg_arg;

static void *fail_on_handle(void *arg)
{
    errmsg_arg *a = arg;
    cm_ledger_balance_result *b = NULL;
    a->rc = cm_ledger_balance(a->l, a->ws, NULL, &b);
    cm_ledger_balance_free(b);
    return NULL;
}

static void test_errmsg_is_kept_per_handle_across_threads(void **state)
{
    (void)state;
    lt_env a, b;
    lt_open(&a, "errmsg-a");
    lt_open(&b, "errmsg-b");
    /* a failed open in this thread: what cm_ledger_errmsg(NULL) keeps */
    cm_ledger *none = NULL;
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.busy_timeout_ms = -1;
    assert_int_equal(cm_ledger_open(&none, &cfg), CM_LEDGER_E_INVALID);
    /* two threads fail, each on its own handle */
    errmsg_arg x = {a.l, "nowhere-a", 0}, y = {b.l, "nowhere-b", 0};
    pthread_t t[2];
    assert_int_equal(pthread_create(&t[0], NULL, fail_on_handle, &x), 0);
    assert_int_equal(pthread_create(&t[1], NULL, fail_on_handle, &y), 0);
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    assert_int_equal(x.rc, CM_LEDGER_E_NO_WORKSPACE);
    assert_int_equal(y.rc, CM_LEDGER_E_NO_WORKSPACE);
    /* a third thread (this one) reads each handle's own failure */
    assert_non_null(strstr(cm_ledger_errmsg(a.l), "nowhere-a"));
    assert_null(strstr(cm_ledger_errmsg(a.l), "nowhere-b"));
    assert_non_null(strstr(cm_ledger_errmsg(b.l), "nowhere-b"));
    /* the handles' failures did not touch this thread's failed open */
    assert_non_null(strstr(cm_ledger_errmsg(NULL), "busy_timeout_ms"));
    /* a failure on b does not change a's message; a success on a clears only a's */
    errmsg_arg z = {b.l, "elsewhere-b", 0};
    fail_on_handle(&z);
    assert_non_null(strstr(cm_ledger_errmsg(a.l), "nowhere-a"));
    assert_non_null(strstr(cm_ledger_errmsg(b.l), "elsewhere-b"));
    LT_OK(&a, cm_ledger_workspace_create(a.l, "acme", "alice", NULL));
    assert_string_equal(cm_ledger_errmsg(a.l), "");
    assert_non_null(strstr(cm_ledger_errmsg(b.l), "elsewhere-b"));
    lt_close(&a);
    lt_close(&b);
}

/* ---- out-structs stay untouched when the COMMIT fails ---- */

/* Makes every COMMIT of the ledger in e fail from now on: on PostgreSQL a deferred
 * constraint trigger on the journal raises at COMMIT; on SQLite (in a forked child) no
 * file may grow, so the WAL frames of the COMMIT cannot be written. */
static void fail_every_commit(lt_env *e)
{
    char err[256];
    if (lt_is_uri(e->path)) {
        if (lt_exec_sql(
                e->path,
                "CREATE OR REPLACE FUNCTION cmt_refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$BEGIN RAISE EXCEPTION 'refused at commit by the test'; END$$; "
                "CREATE CONSTRAINT TRIGGER cmt_refuse_at_commit AFTER INSERT ON journal "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION cmt_refuse()",
                err, sizeof err))
            fail_msg("cannot install the trigger: %s", err);
        return;
    }
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit r = {0, 0};
    if (setrlimit(RLIMIT_FSIZE, &r) != 0)
        _exit(90);
}

static void commit_ok_again(lt_env *e)
{
    char err[256];
    if (lt_is_uri(e->path) &&
        lt_exec_sql(e->path, "DROP TRIGGER cmt_refuse_at_commit ON journal", err, sizeof err))
        fail_msg("cannot drop the trigger: %s", err);
}

static int all_bytes(const void *p, size_t n, unsigned char v)
{
    for (size_t i = 0; i < n; i++)
        if (((const unsigned char *)p)[i] != v)
            return 0;
    return 1;
}

/* Runs the failing call: in a child on SQLite (its file-size limit must not outlive the
 * call), in this process on PostgreSQL. Returns 1 when the call failed with a storage
 * failure and left the poisoned struct as it was. */
static int fails_and_leaves_out_untouched(lt_env *e, int (*call)(lt_env *e, void *out), void *out,
                                          size_t n)
{
    int pg = lt_is_uri(e->path) != 0;
    pid_t pid = pg ? 0 : fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fail_every_commit(e);
        memset(out, 0xa5, n);
        int rc = call(e, out);
        int ok = rc == CM_LEDGER_E_STORAGE && all_bytes(out, n, 0xa5);
        if (!ok)
            print_error("call returned %s (%s); out %s\n", cm_ledger_err_name(rc),
                        cm_ledger_errmsg(e->l), all_bytes(out, n, 0xa5) ? "untouched" : "written");
        if (!pg)
            _exit(ok ? 0 : 1);
        commit_ok_again(e);
        return ok;
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int buy_5(lt_env *e, void *out)
{
    return cm_ledger_buy(e->l, "acme", 5, "alice", "pay-5", out);
}

static int refund_2(lt_env *e, void *out)
{
    return cm_ledger_refund(e->l, "j", 2, "support", "sam", "ref-2", out);
}

static void test_buy_and_refund_leave_out_untouched_when_commit_fails(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "commitfail");
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 10, "alice", NULL, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "j", 4, "bob", 0, NULL));
    LT_OK(&e, cm_ledger_commit(e.l, "j", CM_LEDGER_ALL, NULL));
    cm_ledger_purchase p;
    assert_true(fails_and_leaves_out_untouched(&e, buy_5, &p, sizeof p));
    cm_ledger_refund_result r;
    assert_true(fails_and_leaves_out_untouched(&e, refund_2, &r, sizeof r));
    /* nothing of either call happened; both work once the COMMIT does */
    assert_int_equal(lt_available(&e, "acme"), 6);
    LT_OK(&e, buy_5(&e, &p));
    assert_int_equal(p.credits, 5);
    assert_int_equal(p.replayed, 0);
    LT_OK(&e, refund_2(&e, &r));
    assert_int_equal(r.credits, 2);
    assert_int_equal(lt_available(&e, "acme"), 13);
    lt_close(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_error_code_has_a_distinct_name_and_sentence),
        cmocka_unit_test(test_open_refuses_bad_configs),
        cmocka_unit_test(test_opening_a_missing_ledger_is_no_such_ledger_and_creates_nothing),
        cmocka_unit_test(test_open_refuses_a_file_that_is_not_a_database),
        cmocka_unit_test(test_clock_before_1970_is_invalid),
        cmocka_unit_test(test_synchronous_normal_opens_and_works),
        cmocka_unit_test(test_locked_database_is_busy_after_the_timeout),
        cmocka_unit_test(test_check_catches_a_tampered_balance),
        cmocka_unit_test(test_check_catches_a_hold_resolved_twice),
        cmocka_unit_test(test_check_proves_the_price_table_is_the_price_logs_last_change),
        cmocka_unit_test(test_check_proves_no_hold_is_committed_for_zero),
        cmocka_unit_test(test_check_proves_a_hold_keeps_a_well_formed_binding),
        cmocka_unit_test(test_journal_is_append_only),
        cmocka_unit_test(test_database_refuses_a_negative_balance),
        cmocka_unit_test(test_newer_schema_version_is_refused),
        cmocka_unit_test(test_reopening_keeps_the_schema_and_data),
        cmocka_unit_test(test_check_catches_takes_that_do_not_add_up),
        cmocka_unit_test(test_journal_ids_are_per_workspace),
        cmocka_unit_test(test_postgres_v1_ledger_migrates),
        cmocka_unit_test(test_one_handle_is_safe_from_several_threads),
        cmocka_unit_test(test_errmsg_is_kept_per_handle_across_threads),
        cmocka_unit_test(test_buy_and_refund_leave_out_untouched_when_commit_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
