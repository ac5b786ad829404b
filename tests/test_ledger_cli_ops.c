/* SPDX-License-Identifier: MIT */
/* cm-ledger for operators (issue 15), the real binary: explicit creation (init, --create,
 * no_such_ledger), usage errors as JSON under --json, the event outbox, export, metrics
 * and ping. */
#include "ledger_cli_test.h"

/* A mistyped --ledger is no_such_ledger (exit 1) and leaves no file; read-only commands
 * never create one, not even given --create; init creates it once and says so. */
static void test_a_missing_ledger_is_refused_until_init_creates_it(void **state)
{
    (void)state;
    lt_unlink_db(db);
    assert_int_equal(cli("balance", "acme", NULL), 1);
    assert_non_null(strstr(err, "no_such_ledger"));
    assert_non_null(strstr(err, "init"));
    assert_int_equal(cli("--json", "workspace", "create", "acme", "--owner", "alice", NULL), 1);
    assert_non_null(strstr(out, "\"error\": \"no_such_ledger\""));
    assert_int_equal(cli("--create", "balance", "acme", NULL), 2); /* reads never create */
    assert_int_equal(cli("--create", "check", NULL), 2);
    if (!lt_is_uri(db))
        assert_int_equal(access(db, F_OK), -1);
    assert_int_equal(cli("--json", "init", NULL), 0);
    assert_string_equal(out, "{\"ok\": true, \"created\": true}\n");
    assert_int_equal(cli("init", NULL), 0);
    assert_non_null(strstr(out, "already holds a ledger"));
    assert_int_equal(cli("check", NULL), 0);
    /* --create on a writing command creates it too */
    lt_unlink_db(db);
    assert_int_equal(cli(T0, "--create", "workspace", "create", "acme", "--owner", "alice", NULL),
                     0);
    assert_int_equal(cli("balance", "acme", NULL), 0);
}

/* Under --json a usage error is a JSON document on stdout too (exit 2). */
static void test_usage_errors_under_json_are_json(void **state)
{
    (void)state;
    const char *want = "{\"ok\": false, \"error\": {\"code\": \"usage\", \"message\": ";
    assert_int_equal(cli("--json", "frobnicate", NULL), 2);
    assert_true(strncmp(out, want, strlen(want)) == 0);
    assert_non_null(strstr(out, "unknown command"));
    assert_string_equal(err, "");
    assert_int_equal(cli("--json", "--bogus", "check", NULL), 2);
    assert_non_null(strstr(out, "unknown option --bogus"));
    assert_int_equal(cli("check", "--json", "--now", "yesterday", NULL), 2);
    assert_non_null(strstr(out, "\"code\": \"usage\""));
    assert_int_equal(cli("--json", "reserve", "acme", "j1", "many", "--as", "bob", NULL), 2);
    assert_non_null(strstr(out, "CREDITS must be a number"));
    assert_int_equal(cli("--json", "help", "frob", NULL), 2);
    assert_non_null(strstr(out, "no command frob"));
    assert_int_equal(cli("--json", "export", "--format", "xml", NULL), 2);
    assert_non_null(strstr(out, "--format must be csv or ndjson"));
    assert_int_equal(cli("--json", "--ledger", NULL), 2);
    assert_non_null(strstr(out, "needs a value"));
    /* without --json: the sentence and the usage on stderr, nothing on stdout */
    assert_int_equal(cli("frobnicate", NULL), 2);
    assert_string_equal(out, "");
    assert_non_null(strstr(err, "usage:"));
}

/* events: the outbox through the CLI, CloudEvents under --json, paged by the cursor. */
static void test_events_print_cloudevents_and_a_cursor(void **state)
{
    (void)state;
    assert_int_equal(cli(T0, "workspace", "create", "acme", "--owner", "alice", NULL), 0);
    assert_int_equal(cli(T0, "buy", "acme", "10", "--as", "alice", NULL), 0);
    assert_int_equal(cli(T0, "alert", "set", "acme", "--below", "5", "--as", "alice", NULL), 0);
    assert_int_equal(cli(T0, "alert", "set", "acme", "--below", "5", "--as", "bob", NULL), 1);
    assert_non_null(strstr(err, "no_such_workspace"));
    assert_int_equal(cli(T0, "reserve", "acme", "j1", "6", "--as", "alice", NULL), 0);
    assert_int_equal(cli(T0, "commit", "j1", NULL), 0);
    lt_events_settle(db);
    assert_int_equal(cli("--json", "events", "--limit", "2", NULL), 0);
    assert_non_null(strstr(out, "{\"events\": [{\"specversion\": \"1.0\", \"id\": \"1\", "
                                "\"source\": \"/creditmeter/ledger\", \"type\": "
                                "\"com.creditmeter.ledger.purchase\", \"time\": "
                                "\"2026-01-31T12:00:00Z\", \"subject\": \"acme\""));
    assert_non_null(strstr(out, "\"type\": \"com.creditmeter.ledger.low_balance\""));
    assert_non_null(strstr(out, "\"data\": {\"workspace\": \"acme\", \"available\": 4, "
                                "\"below\": 5}"));
    const char *nc = strstr(out, "\"next_cursor\": \"");
    assert_non_null(nc);
    char cursor[48];
    snprintf(cursor, sizeof cursor, "%.*s", (int)strcspn(nc + 16, "\""), nc + 16);
    assert_int_equal(cli("--json", "events", "--after", cursor, NULL), 0);
    assert_non_null(strstr(out, "com.creditmeter.ledger.commit"));
    assert_null(strstr(out, "low_balance"));
    assert_int_equal(cli("events", "--after", cursor, NULL), 0);
    assert_non_null(strstr(out, " commit "));
    assert_non_null(strstr(out, "next cursor: "));
    assert_int_equal(cli("events", "--after", "nonsense", NULL), 1);
    assert_non_null(strstr(err, "invalid_argument"));
    assert_int_equal(cli("events", "--limit", "0", NULL), 2);
    assert_int_equal(cli(T0, "alert", "clear", "acme", "--as", "alice", NULL), 0);
}

/* export: RFC 4180 CSV (header, CRLF, quoting) and NDJSON, filtered by workspace and
 * time. */
static void test_export_writes_csv_and_ndjson(void **state)
{
    (void)state;
    assert_int_equal(cli(T0, "workspace", "create", "acme", "--owner", "alice", NULL), 0);
    assert_int_equal(cli(T0, "workspace", "create", "beta", "--owner", "bea", NULL), 0);
    assert_int_equal(cli(T0, "buy", "acme", "10", "--as", "alice", NULL), 0);
    assert_int_equal(cli("--now", "2026-02-01T00:00:00Z", "reserve", "acme", "j1", "2", "--as",
                         "alice", "--note", "a \"quoted\", note", NULL),
                     0);
    assert_int_equal(cli("export", "--format", "csv", NULL), 0);
    assert_non_null(strstr(out, "id,op,time,workspace,kind,job,credits,grant,measured_ms,"
                                "declared_ms,method,grace_ms,reason,reference,operator\r\n"));
    assert_non_null(strstr(out, ",acme,hold,j1,2,1,,,,,\"a \"\"quoted\"\", note\",,alice\r\n"));
    assert_non_null(strstr(out, ",beta,workspace,,0,,,,,,created in region default,,bea\r\n"));
    int lines = 0;
    for (const char *p = out; (p = strstr(p, "\r\n")); p += 2)
        lines++;
    assert_int_equal(lines, 1 + 4); /* header, acme: workspace, purchase, hold; beta */
    assert_int_equal(cli("export", "--format", "ndjson", "--workspace", "acme", "--since",
                         "2026-02-01T00:00:00Z", NULL),
                     0);
    /* one line; ids are per workspace on SQLite, shared on PostgreSQL */
    assert_true(strncmp(out, "{\"id\": ", 7) == 0 && strchr(out, '\n') == out + strlen(out) - 1);
    assert_string_equal(
        strstr(out, "\"time\""),
        "\"time\": \"2026-02-01T00:00:00Z\", \"workspace\": "
        "\"acme\", \"kind\": \"hold\", \"job\": \"j1\", \"credits\": 2, \"grant\": 1, "
        "\"measured_ms\": null, \"declared_ms\": null, \"method\": null, \"grace_ms\": "
        "null, \"reason\": \"a \\\"quoted\\\", note\", \"reference\": null, "
        "\"operator\": \"alice\"}\n");
    assert_int_equal(cli("export", "--format", "ndjson", "--until", "2026-01-01T00:00:00Z", NULL),
                     0);
    assert_string_equal(out, "");
    assert_int_equal(cli("export", NULL), 2); /* --format is required */
    assert_int_equal(cli("export", "--format", "csv", "--since", "soon", NULL), 2);
    assert_int_equal(cli("export", "--format", "csv", "--since", "2026-02-01T00:00:00Z", "--until",
                         "2026-01-01T00:00:00Z", NULL),
                     1);
}

static void test_metrics_are_prometheus_text_and_ping_says_healthy(void **state)
{
    (void)state;
    assert_int_equal(cli(T0, "workspace", "create", "acme", "--owner", "alice", NULL), 0);
    assert_int_equal(cli(T0, "buy", "acme", "10", "--as", "alice", NULL), 0);
    assert_int_equal(cli(T0, "reserve", "acme", "j1", "3", "--as", "alice", NULL), 0);
    assert_int_equal(cli("--now", "2026-01-31T12:02:05Z", "metrics", NULL), 0);
    assert_non_null(strstr(out, "# TYPE creditmeter_ledger_workspaces gauge\n"
                                "creditmeter_ledger_workspaces 1\n"));
    assert_non_null(strstr(out, "\ncreditmeter_ledger_credits_available 7\n"));
    assert_non_null(strstr(out, "\ncreditmeter_ledger_credits_held 3\n"));
    assert_non_null(strstr(out, "\ncreditmeter_ledger_holds_open 1\n"));
    assert_non_null(strstr(out, "\ncreditmeter_ledger_oldest_open_hold_age_seconds 125\n"));
    assert_int_equal(cli("--now", "2026-01-31T12:02:05Z", "--json", "metrics", NULL), 0);
    assert_string_equal(out, "{\"workspaces\": 1, \"credits_available\": 7, \"credits_held\": 3, "
                             "\"holds_open\": 1, \"holds_overdue\": 0, "
                             "\"oldest_open_hold_age_seconds\": 125}\n");
    assert_int_equal(cli("ping", NULL), 0);
    assert_non_null(strstr(out, "reachable and writable"));
    assert_int_equal(cli("--json", "ping", "--timeout", "2000", NULL), 0);
    assert_non_null(strstr(out, "{\"ok\": true, \"latency_ms\": "));
    assert_int_equal(cli("ping", "--timeout", "0", NULL), 2);
    /* an unhealthy ledger: there is none at the path */
    lt_unlink_db(db);
    assert_int_equal(cli("--json", "ping", NULL), 1);
    assert_non_null(strstr(out, "\"error\": \"no_such_ledger\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_missing_ledger_is_refused_until_init_creates_it,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_errors_under_json_are_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_print_cloudevents_and_a_cursor, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_export_writes_csv_and_ndjson, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_are_prometheus_text_and_ping_says_healthy,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
