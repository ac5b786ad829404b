/* SPDX-License-Identifier: MIT */
/* Operating the ledger (issue 15): the event outbox (one event per movement, in its
 * transaction; low-balance alerts; reading with a cursor), renewing many leases in one
 * call, the gauges, the health ping and the streaming export. Each test ends with the
 * ledger's own check (lt_close), which also proves every movement has its event. */
#include "ledger_test.h"

static void setup(lt_env *e, const char *name)
{
    lt_open(e, name);
    lt_workspace(e);
    LT_OK(e, cm_ledger_buy(e->l, "acme", 20, "alice", "pay-1", NULL));
}

/* All events from the start, in delivery order. */
static cm_ledger_events_result *all_events(lt_env *e)
{
    cm_ledger_events_result *r = NULL;
    lt_events_settle(e->path);
    LT_OK(e, cm_ledger_events(e->l, NULL, CM_LEDGER_EVENTS_MAX, &r));
    return r;
}

static size_t count_type(const cm_ledger_events_result *r, const char *type)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_events; i++)
        n += strcmp(r->events[i].type, type) == 0;
    return n;
}

static const cm_ledger_event *find_type(const cm_ledger_events_result *r, const char *type)
{
    for (size_t i = 0; i < r->n_events; i++)
        if (!strcmp(r->events[i].type, type))
            return &r->events[i];
    return NULL;
}

static void test_every_kind_of_movement_writes_its_event_with_its_fields(void **state)
{
    (void)state;
    lt_env e;
    setup(&e, "evkinds");
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "j-commit", 5, "bob", 60, NULL));
    LT_OK(&e, cm_ledger_commit_noted(e.l, "j-commit", 3, "3 of 5", NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "j-release", 2, "bob", 60, NULL));
    LT_OK(&e, cm_ledger_release(e.l, "j-release", NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "j-lapse", 1, "bob", 60, NULL));
    LT_OK(&e, cm_ledger_refund(e.l, "j-commit", 2, "goodwill", "sup", "r-1", NULL));
    LT_OK(&e, cm_ledger_plan_set(e.l, "acme", 10, CM_LEDGER_MONTHLY, "pro", "alice"));
    lt_at(&e, "2026-01-31T12:05:00Z");
    cm_ledger_sweep_stats s;
    LT_OK(&e, cm_ledger_sweep(e.l, &s));
    assert_int_equal(s.holds_lapsed, 1);
    cm_ledger_events_result *r = all_events(&e);
    const char *types[] = {"purchase", "commit", "release", "refund", "plan_change", "lapse"};
    assert_int_equal(r->n_events, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(r->events[i].type, types[i]);
        assert_string_equal(r->events[i].workspace, "acme");
        assert_true(r->events[i].data[0] == '{');
        if (i)
            assert_true(r->events[i].id > r->events[i - 1].id);
    }
    const cm_ledger_event *c = find_type(r, "commit");
    assert_string_equal(c->job, "j-commit");
    assert_non_null(strstr(c->data, "\"held\": 5, \"charged\": 3, \"released\": 2"));
    assert_non_null(strstr(c->data, "\"note\": \"3 of 5\""));
    const cm_ledger_event *l = find_type(r, "lapse");
    assert_string_equal(l->job, "j-lapse");
    assert_int_equal(l->at_ms, lt_time("2026-01-31T12:01:00Z")); /* at its lease end */
    assert_non_null(strstr(find_type(r, "refund")->data, "\"credits\": 2"));
    assert_non_null(strstr(find_type(r, "refund")->data, "\"ref\": \"r-1\""));
    assert_non_null(strstr(find_type(r, "purchase")->data, "\"credits\": 20"));
    assert_null(find_type(r, "purchase")->job);
    assert_non_null(strstr(find_type(r, "plan_change")->data, "\"outcome\": \"started\""));
    cm_ledger_events_free(r);
    lt_close(&e);
}

/* An event exists if and only if its movement does: a refused or failed call writes
 * none, and a retry (idempotent replay) writes no second one. */
static void test_refusals_and_replays_write_no_event(void **state)
{
    (void)state;
    lt_env e;
    setup(&e, "evrefuse");
    LT_EXPECT(&e, CM_LEDGER_E_INSUFFICIENT,
              cm_ledger_reserve(e.l, "acme", "big", 500, "bob", 60, NULL));
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 20, "alice", "pay-1", NULL)); /* replay */
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "j", 5, "bob", 60, NULL));
    LT_OK(&e, cm_ledger_commit(e.l, "j", 5, NULL));
    LT_OK(&e, cm_ledger_commit(e.l, "j", 5, NULL)); /* retry: the first result */
    LT_EXPECT(&e, CM_LEDGER_E_ALREADY_RESOLVED, cm_ledger_release(e.l, "j", NULL));
    cm_ledger_events_result *r = all_events(&e);
    assert_int_equal(r->n_events, 2); /* the purchase and the commit */
    assert_int_equal(count_type(r, "commit"), 1);
    cm_ledger_events_free(r);
    lt_close(&e);
}

static void test_events_are_read_in_pages_with_a_cursor(void **state)
{
    (void)state;
    lt_env e;
    setup(&e, "evpages");
    for (int i = 0; i < 7; i++) {
        char job[16];
        snprintf(job, sizeof job, "j%d", i);
        LT_OK(&e, cm_ledger_reserve(e.l, "acme", job, 1, "bob", 60, NULL));
        LT_OK(&e, cm_ledger_commit(e.l, job, CM_LEDGER_ALL, NULL));
    }
    /* 8 events: the purchase and 7 commits, read 3 at a time */
    lt_events_settle(e.path);
    char cursor[48] = "";
    size_t seen = 0;
    int64_t last_id = -1;
    for (int page = 0; page < 4; page++) {
        cm_ledger_events_result *r = NULL;
        LT_OK(&e, cm_ledger_events(e.l, cursor, 3, &r));
        assert_int_equal(r->n_events, page < 2 ? 3 : page == 2 ? 2 : 0);
        for (size_t i = 0; i < r->n_events; i++) {
            assert_true(r->events[i].id > last_id); /* never twice, never skipped */
            last_id = r->events[i].id;
        }
        seen += r->n_events;
        if (r->n_events)
            assert_string_equal(r->next_cursor, r->events[r->n_events - 1].cursor);
        else
            assert_string_equal(r->next_cursor, cursor); /* an empty page keeps the cursor */
        snprintf(cursor, sizeof cursor, "%s", r->next_cursor);
        cm_ledger_events_free(r);
    }
    assert_int_equal(seen, 8);
    /* a new movement shows up after the kept cursor */
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 1, "alice", NULL, NULL));
    lt_events_settle(e.path);
    cm_ledger_events_result *r = NULL;
    LT_OK(&e, cm_ledger_events(e.l, cursor, 100, &r));
    assert_int_equal(r->n_events, 1);
    assert_string_equal(r->events[0].type, "purchase");
    cm_ledger_events_free(r);
    lt_close(&e);
}

/* PostgreSQL draws event ids before commit: an event whose transaction began first but
 * commits last must not be skipped by a reader whose cursor already passed a later one.
 * Another session writes an event and keeps its transaction open while the ledger commits
 * one: the reader gets neither until the older transaction ends, then both, in order. */
static void test_an_event_that_commits_late_is_never_skipped(void **state)
{
    (void)state;
    if (!lt_pg()) {
        print_message("[  SKIPPED ] under SQLite: writers are serialised, ids follow commits\n");
        skip();
    }
    lt_env e;
    setup(&e, "evlate");
    cm_ledger_events_result *r = all_events(&e);
    char cursor[48];
    snprintf(cursor, sizeof cursor, "%s", r->next_cursor);
    cm_ledger_events_free(r);
    PGconn *c = PQconnectdb(e.path);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PQclear(PQexec(c, "BEGIN"));
    PGresult *res = PQexec(c, "INSERT INTO events(at_ms, ws, op, type, job, data) "
                              "VALUES(0, 'acme', 0, 'early', NULL, '{}')");
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 1, "alice", NULL, NULL)); /* a later transaction */
    LT_OK(&e, cm_ledger_events(e.l, cursor, 100, &r));
    assert_int_equal(r->n_events, 0); /* not the purchase: the older one may still commit */
    assert_string_equal(r->next_cursor, cursor);
    cm_ledger_events_free(r);
    PQclear(PQexec(c, "COMMIT"));
    PQfinish(c);
    lt_events_settle(e.path);
    LT_OK(&e, cm_ledger_events(e.l, cursor, 100, &r));
    assert_int_equal(r->n_events, 2);
    assert_string_equal(r->events[0].type, "early");
    assert_string_equal(r->events[1].type, "purchase");
    cm_ledger_events_free(r);
    lt_close(&e);
}

static void test_a_bad_cursor_or_limit_is_invalid_argument(void **state)
{
    (void)state;
    lt_env e;
    setup(&e, "evbad");
    cm_ledger_events_result *r = (cm_ledger_events_result *)1;
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_events(e.l, "yesterday", 10, &r));
    assert_null(r);
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_events(e.l, "-1.2", 10, &r));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_events(e.l, "1.2x", 10, &r));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_events(e.l, NULL, 0, &r));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_events(e.l, NULL, CM_LEDGER_EVENTS_MAX + 1, &r));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_events(e.l, NULL, 10, NULL));
    lt_close(&e);
}

/* Fires once when the available credits cross below the threshold, not again while they
 * stay below, and again after they rose back to it (re-armed). */
static void test_low_balance_fires_once_per_crossing_and_rearms_above(void **state)
{
    (void)state;
    lt_env e;
    setup(&e, "evlow");
    LT_OK(&e, cm_ledger_alert_set(e.l, "acme", 10, "alice"));
    cm_ledger_events_result *r = all_events(&e);
    assert_int_equal(count_type(r, "low_balance"), 0); /* 20 available: not below */
    cm_ledger_events_free(r);
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "j1", 8, "bob", 60, NULL)); /* 12 left */
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "j2", 5, "bob", 60, NULL)); /* 7: crosses */
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "j3", 1, "bob", 60, NULL)); /* 6: still below */
    r = all_events(&e);
    assert_int_equal(count_type(r, "low_balance"), 1);
    const cm_ledger_event *lb = find_type(r, "low_balance");
    assert_non_null(strstr(lb->data, "\"available\": 7, \"below\": 10"));
    assert_null(lb->job);
    cm_ledger_events_free(r);
    LT_OK(&e, cm_ledger_release(e.l, "j1", NULL));                       /* 14: re-armed */
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "j4", 9, "bob", 60, NULL)); /* 5: crosses */
    r = all_events(&e);
    assert_int_equal(count_type(r, "low_balance"), 2);
    cm_ledger_events_free(r);
    /* cleared: no more */
    LT_OK(&e, cm_ledger_release(e.l, "j4", NULL));
    LT_OK(&e, cm_ledger_alert_clear(e.l, "acme", "alice"));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "j5", 9, "bob", 60, NULL));
    r = all_events(&e);
    assert_int_equal(count_type(r, "low_balance"), 2);
    cm_ledger_events_free(r);
    lt_close(&e);
}

/* A lapse or an expiry found by the lazy clock moves credits too: the alert sees it. */
static void test_low_balance_set_below_fires_at_once_and_sees_lazy_expiry(void **state)
{
    (void)state;
    lt_env e;
    lt_open(&e, "evlazy");
    lt_workspace(&e);
    LT_OK(&e, cm_ledger_plan_set(e.l, "acme", 30, CM_LEDGER_MONTHLY, NULL, "alice"));
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 2, "alice", NULL, NULL));
    LT_OK(&e, cm_ledger_alert_set(e.l, "acme", 5, "alice"));
    /* the month ends: 30 expire, the next period grants 30: never below */
    lt_at(&e, "2026-02-28T12:00:00Z");
    LT_OK(&e, cm_ledger_sweep(e.l, NULL));
    cm_ledger_events_result *r = all_events(&e);
    assert_int_equal(count_type(r, "low_balance"), 0);
    cm_ledger_events_free(r);
    /* cancelled: at the next boundary 30 expire and nothing is granted: 2 left */
    LT_OK(&e, cm_ledger_plan_cancel(e.l, "acme", "alice"));
    lt_at(&e, "2026-03-31T12:00:00Z");
    assert_int_equal(lt_available(&e, "acme"), 2);
    r = all_events(&e);
    assert_int_equal(count_type(r, "low_balance"), 1);
    cm_ledger_events_free(r);
    /* set again while below: fires at once */
    LT_OK(&e, cm_ledger_alert_set(e.l, "acme", 3, "alice"));
    r = all_events(&e);
    assert_int_equal(count_type(r, "low_balance"), 2);
    cm_ledger_events_free(r);
    lt_close(&e);
}

static void test_only_the_owner_sets_an_alert(void **state)
{
    (void)state;
    lt_env e;
    setup(&e, "evowner");
    LT_EXPECT(&e, CM_LEDGER_E_FORBIDDEN, cm_ledger_alert_set(e.l, "acme", 5, "bob"));
    LT_EXPECT(&e, CM_LEDGER_E_FORBIDDEN, cm_ledger_alert_clear(e.l, "acme", "bob"));
    LT_EXPECT(&e, CM_LEDGER_E_NO_WORKSPACE, cm_ledger_alert_set(e.l, "acme", 5, "mallory"));
    LT_EXPECT(&e, CM_LEDGER_E_NO_WORKSPACE, cm_ledger_alert_set(e.l, "nope", 5, "alice"));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_alert_set(e.l, "acme", 0, "alice"));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_alert_set(e.l, "acme", 5, NULL));
    lt_close(&e);
}

/* check proves the outbox: a movement whose event was removed behind the ledger's back
 * is a violation (the trigger refuses DELETE, so it is dropped first). */
static void test_check_fails_when_a_movement_has_no_event(void **state)
{
    (void)state;
    lt_env e;
    setup(&e, "evcheck");
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "j", 5, "bob", 60, NULL));
    LT_OK(&e, cm_ledger_commit(e.l, "j", 5, NULL));
    LT_OK(&e, cm_ledger_check(e.l));
    char err[512];
    const char *sql = lt_is_uri(e.path)
                          ? "DROP TRIGGER events_no_update ON events; "
                            "DELETE FROM events WHERE type = 'commit'"
                          : "DROP TRIGGER events_no_delete; DELETE FROM events WHERE type = "
                            "'commit'";
    if (lt_exec_sql(e.path, sql, err, sizeof err))
        fail_msg("%s: %s", sql, err);
    LT_EXPECT(&e, CM_LEDGER_E_CHECK, cm_ledger_check(e.l));
    assert_non_null(strstr(cm_ledger_errmsg(e.l), "has no event"));
    assert_non_null(strstr(cm_ledger_errmsg(e.l), "of job j"));
    cm_ledger_close(e.l);
    e.l = NULL;
    lt_close(&e);
}

static void test_the_outbox_is_append_only(void **state)
{
    (void)state;
    lt_env e;
    setup(&e, "evappend");
    char err[512];
    assert_int_not_equal(lt_exec_sql(e.path, "UPDATE events SET type = 'x'", err, sizeof err), 0);
    assert_int_not_equal(lt_exec_sql(e.path, "DELETE FROM events", err, sizeof err), 0);
    lt_close(&e);
}

static void test_renew_many_renews_every_held_job_in_one_call(void **state)
{
    (void)state;
    lt_env e;
    setup(&e, "renewmany");
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "a", 1, "bob", 60, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "b", 1, "bob", 60, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "c", 1, "bob", 60, NULL));
    LT_OK(&e, cm_ledger_commit(e.l, "c", 1, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "short", 1, "bob", 10, NULL));
    lt_at(&e, "2026-01-31T12:00:30Z"); /* "short" lapsed at 12:00:10 */
    const char *jobs[] = {"a", "b", "c", "short", "never", "", "a\nb"};
    int res[7];
    LT_OK(&e, cm_ledger_renew_many(e.l, jobs, 7, 120, res));
    assert_int_equal(res[0], CM_LEDGER_OK);
    assert_int_equal(res[1], CM_LEDGER_OK);
    assert_int_equal(res[2], CM_LEDGER_E_ALREADY_RESOLVED);
    assert_int_equal(res[3], CM_LEDGER_E_LEASE_EXPIRED);
    assert_int_equal(res[4], CM_LEDGER_E_NO_JOB);
    assert_int_equal(res[5], CM_LEDGER_E_INVALID);
    assert_int_equal(res[6], CM_LEDGER_E_INVALID);
    cm_ledger_job *j = NULL;
    LT_OK(&e, cm_ledger_job_info(e.l, "a", &j));
    assert_int_equal(j->lease_until_ms, lt_time("2026-01-31T12:02:30Z"));
    cm_ledger_job_free(j);
    assert_int_equal(lt_state(&e, "short"), CM_LEDGER_LAPSED);
    /* the renewed holds outlive their first lease */
    lt_at(&e, "2026-01-31T12:02:00Z");
    assert_int_equal(lt_state(&e, "b"), CM_LEDGER_HELD);
    /* whole-call errors */
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_renew_many(e.l, jobs, 2, -1, res));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_renew_many(e.l, NULL, 2, 60, res));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_renew_many(e.l, jobs, 2, 60, NULL));
    LT_OK(&e, cm_ledger_renew_many(e.l, NULL, 0, 60, NULL));
    lt_close(&e);
}

/* Jobs of several workspaces in one call, and a job whose lease ends between two jobs of
 * its workspace in the list, are each answered for what they are now. */
static void test_renew_many_spans_workspaces(void **state)
{
    (void)state;
    lt_env e;
    setup(&e, "renewws");
    LT_OK(&e, cm_ledger_workspace_create(e.l, "beta", "bea", NULL));
    LT_OK(&e, cm_ledger_buy(e.l, "beta", 4, "bea", NULL, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "beta", "b1", 2, "bea", 60, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "a1", 2, "bob", 60, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "a2", 2, "bob", 5, NULL));
    lt_at(&e, "2026-01-31T12:00:30Z");
    const char *jobs[] = {"a1", "b1", "a2"};
    int res[3];
    LT_OK(&e, cm_ledger_renew_many(e.l, jobs, 3, 60, res));
    assert_int_equal(res[0], CM_LEDGER_OK);
    assert_int_equal(res[1], CM_LEDGER_OK);
    assert_int_equal(res[2], CM_LEDGER_E_LEASE_EXPIRED);
    lt_close(&e);
}

static void test_ping_writes_only_its_health_row(void **state)
{
    (void)state;
    lt_env e;
    setup(&e, "ping");
    cm_ledger_history_result *h = NULL;
    LT_OK(&e, cm_ledger_history(e.l, "acme", NULL, &h));
    size_t rows = h->n_entries;
    cm_ledger_history_free(h);
    int64_t ms = -1;
    LT_OK(&e, cm_ledger_ping(e.l, &ms));
    assert_true(ms >= 0);
    LT_OK(&e, cm_ledger_ping(e.l, NULL));
    LT_OK(&e, cm_ledger_history(e.l, "acme", NULL, &h));
    assert_int_equal(h->n_entries, rows);
    cm_ledger_history_free(h);
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_ping(NULL, NULL));
    lt_close(&e);
}

/* A handle counts its transactions, retries and reconnects for the host's metrics: every
 * call is one transaction here (nothing races it), a fresh handle has reconnected never;
 * a bad argument is invalid_argument. */
static void test_stats_count_the_handles_transactions(void **state)
{
    (void)state;
    lt_env e;
    setup(&e, "stats");
    cm_ledger_stats a = {.struct_size = sizeof a}, b = a;
    LT_OK(&e, cm_ledger_stats_read(e.l, &a));
    assert_true(a.transactions >= 1);
    assert_int_equal(a.reconnects, 0);
    LT_OK(&e, cm_ledger_ping(e.l, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "st1", 1, "alice", 0, NULL));
    LT_OK(&e, cm_ledger_stats_read(e.l, &b));
    assert_int_equal(b.transactions, a.transactions + 2);
    assert_int_equal(b.retries, a.retries);
    assert_int_equal(b.reconnects, 0);
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_stats_read(e.l, NULL));
    cm_ledger_stats small = {.struct_size = 4};
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_stats_read(e.l, &small));
    assert_int_equal(cm_ledger_stats_read(NULL, &b), CM_LEDGER_E_INVALID);
    lt_close(&e);
}

/* A ledger locked past the timeout is not healthy: ping says busy, with the reason, and
 * is healthy again once the lock is gone. */
static void test_ping_of_a_locked_ledger_is_busy(void **state)
{
    (void)state;
    lt_env e;
    setup(&e, "pinglock");
    cm_ledger_close(e.l);
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.location = e.path;
    cfg.busy_timeout_ms = 100;
    LT_OK(&e, cm_ledger_open(&e.l, &cfg));
    lt_lock k;
    lt_lock_hold(&k, e.path, "health");
    LT_EXPECT(&e, CM_LEDGER_E_BUSY, cm_ledger_ping(e.l, NULL));
    assert_non_null(strstr(cm_ledger_errmsg(e.l), "locked"));
    lt_unlock(&k);
    LT_OK(&e, cm_ledger_ping(e.l, NULL));
    lt_close(&e);
}

static void test_gauges_count_workspaces_credits_and_open_holds(void **state)
{
    (void)state;
    lt_env e;
    setup(&e, "gauges");
    cm_ledger_gauges g;
    LT_OK(&e, cm_ledger_gauges_read(e.l, &g));
    assert_int_equal(g.workspaces, 1);
    assert_int_equal(g.available, 20);
    assert_int_equal(g.held, 0);
    assert_int_equal(g.open_holds, 0);
    assert_int_equal(g.oldest_hold_created_ms, -1);
    LT_OK(&e, cm_ledger_workspace_create(e.l, "beta", "bea", NULL));
    LT_OK(&e, cm_ledger_buy(e.l, "beta", 4, "bea", NULL, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "a", 3, "bob", 60, NULL));
    lt_at(&e, "2026-01-31T12:01:30Z");
    LT_OK(&e, cm_ledger_reserve(e.l, "beta", "b", 1, "bea", 600, NULL));
    LT_OK(&e, cm_ledger_gauges_read(e.l, &g));
    assert_int_equal(g.workspaces, 2);
    assert_int_equal(g.available, 17 + 3);
    assert_int_equal(g.held, 4);
    assert_int_equal(g.open_holds, 2);
    assert_int_equal(g.overdue_holds, 1); /* "a" ended at 12:01:00, not yet lapsed */
    assert_int_equal(g.oldest_hold_created_ms, lt_time("2026-01-31T12:00:00Z"));
    assert_int_equal(g.now_ms - g.oldest_hold_created_ms, 90000);
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_gauges_read(e.l, NULL));
    lt_close(&e);
}

typedef struct rows {
    size_t n, stop_after;
    char kinds[64][16];
    int64_t measured[64], declared[64], grace[64];
    char method[64][32];
    char ws[64][16];
} rows;

static int collect(void *ctx, const cm_ledger_export_row *r)
{
    rows *x = ctx;
    if (x->n < 64) {
        snprintf(x->kinds[x->n], sizeof x->kinds[0], "%s", r->kind);
        snprintf(x->ws[x->n], sizeof x->ws[0], "%s", r->workspace);
        snprintf(x->method[x->n], sizeof x->method[0], "%s", r->method ? r->method : "-");
        x->measured[x->n] = r->measured_ms;
        x->declared[x->n] = r->declared_ms;
        x->grace[x->n] = r->grace_ms;
    }
    x->n++;
    return x->stop_after && x->n >= x->stop_after;
}

static void test_export_streams_rows_in_order_with_filters(void **state)
{
    (void)state;
    lt_env e;
    setup(&e, "export");
    LT_OK(&e, cm_ledger_workspace_create(e.l, "beta", "bea", NULL));
    lt_at(&e, "2026-02-01T00:00:00Z");
    LT_OK(&e, cm_ledger_buy(e.l, "beta", 4, "bea", NULL, NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "j", 2, "bob", 60, NULL));
    rows *x = calloc(1, sizeof *x);
    LT_OK(&e, cm_ledger_export(e.l, NULL, -1, -1, collect, x));
    /* acme: workspace, member_add, purchase, hold; beta: workspace, purchase */
    const char *want[] = {"workspace", "member_add", "purchase", "hold", "workspace", "purchase"};
    assert_int_equal(x->n, 6);
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(x->kinds[i], want[i]);
    assert_string_equal(x->ws[0], "acme");
    assert_string_equal(x->ws[5], "beta");
    memset(x, 0, sizeof *x);
    LT_OK(&e, cm_ledger_export(e.l, "beta", -1, -1, collect, x));
    assert_int_equal(x->n, 2);
    memset(x, 0, sizeof *x);
    LT_OK(&e, cm_ledger_export(e.l, NULL, lt_time("2026-02-01T00:00:00Z"), -1, collect, x));
    assert_int_equal(x->n, 2); /* beta's purchase, acme's hold */
    memset(x, 0, sizeof *x);
    LT_OK(&e, cm_ledger_export(e.l, NULL, -1, lt_time("2026-02-01T00:00:00Z"), collect, x));
    assert_int_equal(x->n, 4); /* until is exclusive */
    memset(x, 0, sizeof *x);
    x->stop_after = 3;
    LT_OK(&e, cm_ledger_export(e.l, NULL, -1, -1, collect, x));
    assert_int_equal(x->n, 3); /* the callback stopped it */
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_export(e.l, NULL, 5, 4, collect, x));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_export(e.l, NULL, -1, -1, NULL, x));
    LT_EXPECT(&e, CM_LEDGER_E_INVALID, cm_ledger_export(e.l, "a\tb", -1, -1, collect, x));
    free(x);
    lt_close(&e);
}

/* More rows than one page (1000): every row once, in order. */
static void test_export_pages_through_a_large_journal(void **state)
{
    (void)state;
    lt_env e;
    setup(&e, "exportbig");
    LT_OK(&e, cm_ledger_buy(e.l, "acme", 600, "alice", NULL, NULL));
    for (int i = 0; i < 600; i++) { /* 2 rows each: hold, commit */
        char job[16];
        snprintf(job, sizeof job, "j%04d", i);
        LT_OK(&e, cm_ledger_reserve(e.l, "acme", job, 1, "bob", 60, NULL));
        LT_OK(&e, cm_ledger_commit(e.l, job, 1, NULL));
    }
    rows *x = calloc(1, sizeof *x);
    LT_OK(&e, cm_ledger_export(e.l, NULL, -1, -1, collect, x));
    assert_int_equal(x->n, 4 + 600 * 2);
    free(x);
    lt_close(&e);
}

/* The plugin's structured notes give the measured and declared duration, the method
 * and the grace; other holds leave them unknown. */
static void test_export_reads_the_measurements_the_plugin_stored(void **state)
{
    (void)state;
    lt_env e;
    setup(&e, "exportmeas");
    LT_OK(&e, cm_ledger_reserve_bound(
                  e.l, "acme", "in", 2, "bob", 60,
                  "2 credits for 60.400 s measured by mp4_index, 500 ms grace for encoder "
                  "padding, the header says 60.400 s",
                  "by-input size=1234 ms=60400 fnv1a64=00112233445566ff", NULL));
    LT_OK(&e, cm_ledger_reserve_bound(
                  e.l, "acme", "out", 2, "bob", 60,
                  "2 credits quoted for 75.000 s of requested output; charged on the output's "
                  "measured length, at most the quote",
                  "by-output requested_ms=75000", NULL));
    LT_OK(&e, cm_ledger_commit_noted(e.l, "out", 1,
                                     "1 credit for 59.800 s of measured output (requested "
                                     "75.000 s, quoted 2 credits)",
                                     NULL));
    LT_OK(&e, cm_ledger_reserve(e.l, "acme", "cli", 1, "bob", 60, NULL));
    rows *x = calloc(1, sizeof *x);
    LT_OK(&e, cm_ledger_export(e.l, NULL, -1, -1, collect, x));
    /* workspace, member_add, purchase, hold in, hold out, commit out, release out, hold cli */
    assert_int_equal(x->n, 8);
    assert_string_equal(x->kinds[3], "hold");
    assert_int_equal(x->measured[3], 60400);
    assert_int_equal(x->declared[3], 60400);
    assert_string_equal(x->method[3], "mp4_index");
    assert_int_equal(x->grace[3], 500);
    assert_string_equal(x->method[4], "requested");
    assert_int_equal(x->declared[4], 75000);
    assert_int_equal(x->measured[5], 59800);
    assert_int_equal(x->grace[5], -1);
    assert_string_equal(x->method[7], "-");
    assert_int_equal(x->measured[7], -1);
    assert_int_equal(x->measured[2], -1); /* a purchase has no job */
    free(x);
    lt_close(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_kind_of_movement_writes_its_event_with_its_fields),
        cmocka_unit_test(test_refusals_and_replays_write_no_event),
        cmocka_unit_test(test_events_are_read_in_pages_with_a_cursor),
        cmocka_unit_test(test_an_event_that_commits_late_is_never_skipped),
        cmocka_unit_test(test_a_bad_cursor_or_limit_is_invalid_argument),
        cmocka_unit_test(test_low_balance_fires_once_per_crossing_and_rearms_above),
        cmocka_unit_test(test_low_balance_set_below_fires_at_once_and_sees_lazy_expiry),
        cmocka_unit_test(test_only_the_owner_sets_an_alert),
        cmocka_unit_test(test_check_fails_when_a_movement_has_no_event),
        cmocka_unit_test(test_the_outbox_is_append_only),
        cmocka_unit_test(test_renew_many_renews_every_held_job_in_one_call),
        cmocka_unit_test(test_renew_many_spans_workspaces),
        cmocka_unit_test(test_ping_writes_only_its_health_row),
        cmocka_unit_test(test_stats_count_the_handles_transactions),
        cmocka_unit_test(test_ping_of_a_locked_ledger_is_busy),
        cmocka_unit_test(test_gauges_count_workspaces_credits_and_open_holds),
        cmocka_unit_test(test_export_streams_rows_in_order_with_filters),
        cmocka_unit_test(test_export_pages_through_a_large_journal),
        cmocka_unit_test(test_export_reads_the_measurements_the_plugin_stored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
