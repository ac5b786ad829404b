/* SPDX-License-Identifier: MIT */
/* cm-ledger, the real binary: exit 0 / 1 (refused, machine name on stderr or JSON with
 * --json) / 2 (usage), --now replacing the clock, and the JSON shape of balance. */
#include "ledger_cli_test.h"

/* Read path into buf (NUL-terminated); 0 if it could not be opened (buf then empty). */
static int read_text(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "rb");
    int opened = f != NULL;
    size_t k = f ? fread(buf, 1, n - 1, f) : 0;
    buf[k] = 0;
    if (f)
        fclose(f);
    return opened;
}

static void test_usage_errors_exit_2(void **state)
{
    (void)state;
    assert_int_equal(cli(NULL), 2);
    assert_non_null(strstr(err, "usage:"));
    assert_int_equal(cli("frobnicate", NULL), 2);
    assert_int_equal(cli("--bogus", "check", NULL), 2);
    assert_int_equal(cli("--now", "yesterday", "check", NULL), 2);
    assert_int_equal(cli("reserve", "acme", "j1", NULL), 2);
    assert_int_equal(cli("reserve", "acme", "j1", "many", "--as", "bob", NULL), 2);
    assert_int_equal(cli("buy", "acme", "5", NULL), 2); /* --as missing */
    assert_int_equal(
        cli("plan", "set", "acme", "--credits", "5", "--interval", "weekly", "--as", "alice", NULL),
        2);
    assert_int_equal(cli("commit", "j1", "--owner", "x", NULL), 2);
    assert_int_equal(cli("workspace", "create", "acme", NULL), 2);
    assert_int_equal(cli("--help", NULL), 0);
}

/* The ledger's location has one name, --ledger; --db, its 0.2 name, still works and
 * is the same option (given with --ledger it is given twice). */
static void test_db_is_the_old_name_of_the_ledger_option(void **state)
{
    (void)state;
    char *const old[] = {(char *)CLI,
                         (char *)"--db",
                         db,
                         (char *)"--now",
                         (char *)"2026-01-31T12:00:00Z",
                         (char *)"workspace",
                         (char *)"create",
                         (char *)"acme",
                         (char *)"--owner",
                         (char *)"alice",
                         NULL};
    assert_int_equal(cmt_proc_run(old, out, sizeof out, err, sizeof err), 0);
    assert_int_equal(cli("--json", "balance", "acme", "--as", "alice", NULL), 0);
    assert_non_null(strstr(out, "\"workspace\": \"acme\""));
    char *const both[] = {(char *)CLI, (char *)"--db",  db,  (char *)"--ledger",
                          db,          (char *)"check", NULL};
    assert_int_equal(cmt_proc_run(both, out, sizeof out, err, sizeof err), 2);
    assert_non_null(strstr(err, "option --ledger given twice"));
    assert_int_equal(cli("--help", NULL), 0);
    assert_non_null(strstr(out, "[--ledger LOCATION]"));
}

static void test_refusal_exits_1_with_machine_name_on_stderr(void **state)
{
    (void)state;
    assert_int_equal(cli(T0, "workspace", "create", "acme", "--owner", "alice", NULL), 0);
    assert_int_equal(cli(T0, "reserve", "acme", "j1", "5", "--as", "alice", NULL), 1);
    assert_non_null(strstr(err, "insufficient_credits"));
    assert_int_equal(cli(T0, "balance", "acme", "--as", "mallory", NULL), 1);
    assert_non_null(strstr(err, "no_such_workspace"));
    assert_int_equal(cli(T0, "--json", "commit", "nope", NULL), 1);
    assert_string_equal(out, "{\"error\": \"no_such_job\", \"message\": \"no hold was ever made "
                             "for job 'nope'\"}\n");
}

static void test_balance_json_has_the_documented_shape(void **state)
{
    (void)state;
    assert_int_equal(cli(T0, "workspace", "create", "acme", "--owner", "alice", NULL), 0);
    assert_int_equal(cli(T0, "plan", "set", "acme", "--credits", "100", "--interval", "monthly",
                         "--tier", "pro", "--as", "alice", NULL),
                     0);
    assert_int_equal(cli(T0, "buy", "acme", "10", "--as", "alice", "--ref", "p-1", NULL), 0);
    assert_non_null(strstr(out, "paid 1.50 USD (10 credits x 0.15 USD)"));
    assert_int_equal(cli(T0, "reserve", "acme", "j1", "30", "--as", "alice", NULL), 0);
    assert_int_equal(cli(T0, "--json", "balance", "acme", NULL), 0);
    assert_string_equal(out, "{\"workspace\": \"acme\", \"available\": 80, \"held\": 30, "
                             "\"grants\": [{\"id\": 1, \"kind\": \"plan\", \"granted\": 100, "
                             "\"remaining\": 70, \"held\": 30, \"expires_at\": "
                             "\"2026-02-28T12:00:00Z\"}, {\"id\": 2, \"kind\": \"addon\", "
                             "\"granted\": 10, \"remaining\": 10, \"held\": 0, \"expires_at\": "
                             "null}], \"plan\": {\"tier\": \"pro\", \"credits\": 100, "
                             "\"interval\": \"monthly\", \"period_start\": "
                             "\"2026-01-31T12:00:00Z\", \"period_end\": \"2026-02-28T12:00:00Z\", "
                             "\"active\": true, \"cancelled\": false, \"cancelled_at\": null, "
                             "\"scheduled\": null}}\n");
}

/* plan set/cancel say what they did; --ref makes them replay-safe; plan show (and
 * balance) show the plan with its scheduled change. */
static void test_plan_commands_report_outcome_schedule_and_replay(void **state)
{
    (void)state;
    const char *t1 = "--now", *jan1 = "2026-01-01T00:00:00Z";
    assert_int_equal(cli(t1, jan1, "workspace", "create", "tog", "--owner", "o", NULL), 0);
    assert_int_equal(cli(t1, jan1, "plan", "show", "tog", NULL), 0);
    assert_string_equal(out, "workspace tog: no plan\n");
    assert_int_equal(cli(t1, jan1, "plan", "set", "tog", "--credits", "100", "--interval",
                         "monthly", "--tier", "basic", "--as", "o", "--ref", "pay-1", NULL),
                     0);
    assert_string_equal(out, "plan set: started, 100 credits granted, effective "
                             "2026-01-01T00:00:00Z\n");
    assert_int_equal(cli(t1, "2026-01-01T01:00:00Z", "--json", "plan", "set", "tog", "--credits",
                         "100", "--interval", "monthly", "--tier", "basic", "--as", "o", "--ref",
                         "pay-1", NULL),
                     0);
    assert_string_equal(out, "{\"ok\": true, \"outcome\": \"started\", \"resumed\": false, "
                             "\"replayed\": true, \"granted\": 100, \"effective_at\": "
                             "\"2026-01-01T00:00:00Z\"}\n");
    assert_int_equal(cli(t1, "2026-01-01T01:00:00Z", "plan", "set", "tog", "--credits", "50",
                         "--interval", "monthly", "--as", "o", "--ref", "pay-1", NULL),
                     1);
    assert_non_null(strstr(err, "conflict"));
    assert_int_equal(cli(t1, "2026-01-01T02:00:00Z", "plan", "set", "tog", "--credits", "60",
                         "--interval", "monthly", "--tier", "lite", "--as", "o", NULL),
                     0);
    assert_string_equal(out, "plan set: downgrade_scheduled, effective 2026-02-01T00:00:00Z\n");
    assert_int_equal(cli(t1, "2026-01-01T03:00:00Z", "--json", "plan", "show", "tog", NULL), 0);
    assert_string_equal(out, "{\"workspace\": \"tog\", \"plan\": {\"tier\": \"basic\", "
                             "\"credits\": 100, \"interval\": \"monthly\", \"period_start\": "
                             "\"2026-01-01T00:00:00Z\", \"period_end\": \"2026-02-01T00:00:00Z\", "
                             "\"active\": true, \"cancelled\": false, \"cancelled_at\": null, "
                             "\"scheduled\": {\"credits\": 60, \"interval\": \"monthly\", "
                             "\"tier\": \"lite\", \"effective_at\": \"2026-02-01T00:00:00Z\"}}}\n");
    assert_int_equal(
        cli(t1, "2026-01-01T04:00:00Z", "plan", "cancel", "tog", "--as", "o", "--ref", "c-1", NULL),
        0);
    assert_string_equal(out, "plan cancel: cancelled, effective 2026-01-01T04:00:00Z\n");
    assert_int_equal(cli(t1, "2026-01-01T04:00:00Z", "plan", "show", "tog", NULL), 0);
    assert_non_null(strstr(out, "(cancelled: no further grants)"));
    assert_null(strstr(out, "scheduled"));
    assert_int_equal(cli(t1, "2026-01-01T04:00:00Z", "plan", "cancel", "tog", "--as", "o",
                         "--credits", "3", NULL),
                     2);
    assert_int_equal(cli(t1, "2026-01-01T05:00:00Z", "plan", "set", "tog", "--credits", "100",
                         "--interval", "monthly", "--tier", "basic", "--as", "o", NULL),
                     0);
    assert_string_equal(out, "plan set: resumed, effective 2026-01-01T05:00:00Z\n");
    assert_int_equal(cli(t1, "2026-01-01T05:00:00Z", "balance", "tog", NULL), 0);
    assert_non_null(strstr(out, "workspace tog: 100 available, 0 held\n"));
    assert_non_null(strstr(out, "workspace tog: 100 credits a month, monthly, tier basic\n"));
    assert_int_equal(cli("check", NULL), 0);
}

static void test_full_job_cycle_through_the_cli(void **state)
{
    (void)state;
    assert_int_equal(cli(T0, "workspace", "create", "acme", "--owner", "alice", NULL), 0);
    assert_int_equal(cli(T0, "member", "add", "acme", "bob", "--as", "alice", NULL), 0);
    assert_int_equal(cli(T0, "price", "set", "default", "USD", "20", NULL), 0);
    assert_int_equal(cli(T0, "buy", "acme", "10", "--as", "alice", NULL), 0);
    assert_non_null(strstr(out, "paid 2.00 USD"));
    assert_int_equal(cli(T0, "quote", "acme", "4", "--as", "bob", NULL), 0);
    assert_non_null(strstr(out, "affordable"));
    assert_int_equal(cli(T0, "reserve", "acme", "j1", "4", "--as", "bob", "--lease", "60", "--note",
                         "4 credits for 181.000 s measured by tail_packets", NULL),
                     0);
    assert_int_equal(cli(T0, "job", "j1", NULL), 0);
    assert_non_null(strstr(out, "  why: 4 credits for 181.000 s measured by tail_packets\n"));
    assert_int_equal(cli(T0, "--json", "job", "j1", NULL), 0);
    assert_non_null(strstr(out, "\"note\": \"4 credits for 181.000 s measured by tail_packets\"}"));
    assert_int_equal(cli("--now", "2026-01-31T12:00:30Z", "renew", "j1", "--lease", "60", NULL), 0);
    assert_int_equal(cli("--now", "2026-01-31T12:01:00Z", "--json", "commit", "j1", "3", NULL), 0);
    assert_non_null(strstr(out, "\"state\": \"committed\""));
    assert_non_null(strstr(out, "\"charged\": 3"));
    assert_int_equal(cli(T0, "release", "j1", NULL), 1);
    assert_non_null(strstr(err, "already_resolved"));
    assert_int_equal(cli(T0, "refund", "j1", "2", "--reason", "bad", "--by", "sam", NULL), 0);
    assert_int_equal(cli(T0, "refund", "j1", "2", "--reason", "bad", "--by", "sam", NULL), 1);
    assert_int_equal(cli(T0, "job", "j1", NULL), 0);
    assert_non_null(strstr(out, "committed"));
    assert_int_equal(cli(T0, "history", "acme", NULL), 0);
    assert_non_null(strstr(out, "refund"));
    assert_int_equal(cli(T0, "reserve", "acme", "j2", "2", "--as", "bob", "--lease", "10", NULL),
                     0);
    assert_int_equal(cli("--now", "2026-01-31T13:00:00Z", "--json", "sweep", NULL), 0);
    assert_string_equal(out, "{\"holds_lapsed\": 1, \"credits_expired\": 0, "
                             "\"periods_granted\": 0}\n");
    assert_int_equal(cli("check", NULL), 0);
}

/* Found by fuzz_ledger_args (tests/fuzz/crashers/ledger_args-json-quote-in-id.txt): buy and
 * refund printed the workspace and job ids into their JSON raw. */
static void test_json_escapes_ids_in_buy_and_refund(void **state)
{
    (void)state;
    assert_int_equal(cli(T0, "workspace", "create", "q\"ws", "--owner", "o", NULL), 0);
    assert_int_equal(cli(T0, "--json", "buy", "q\"ws", "3", "--as", "o", NULL), 0);
    assert_string_equal(out, "{\"workspace\": \"q\\\"ws\", \"credits\": 3, \"unit_minor\": 15, "
                             "\"total_minor\": 45, \"currency\": \"USD\", \"grant\": 1, "
                             "\"replayed\": false, \"amount\": \"0.45 USD\"}\n");
    assert_int_equal(cli(T0, "reserve", "q\"ws", "j\\1", "2", "--as", "o", NULL), 0);
    assert_int_equal(cli(T0, "commit", "j\\1", NULL), 0);
    assert_int_equal(cli(T0, "--json", "refund", "j\\1", "1", "--reason", "r", "--by", "s", NULL),
                     0);
    assert_string_equal(out, "{\"job\": \"j\\\\1\", \"credits\": 1, \"to_source\": 1, "
                             "\"refund_grant\": -1, \"total_refunded\": 1, \"replayed\": false}\n");
}

/* Ids are UTF-8 text on both backends (PostgreSQL stores nothing else): an id that is
 * not is refused as an invalid argument, and a valid multi-byte id is echoed as is. */
static void test_ids_must_be_utf8_text(void **state)
{
    (void)state;
    assert_int_equal(cli(T0, "workspace", "create", "caf\xc3\xa9\xff", "--owner", "o", NULL), 1);
    assert_non_null(strstr(err, "invalid_argument"));
    assert_non_null(strstr(err, "UTF-8"));
    assert_int_equal(cli(T0, "workspace", "create", "caf\xc3\xa9", "--owner", "o", NULL), 0);
    assert_int_equal(cli(T0, "--json", "buy", "caf\xc3\xa9", "1", "--as", "o", NULL), 0);
    assert_non_null(strstr(out, "\"workspace\": \"caf\xc3\xa9\""));
    assert_int_equal(cli(T0, "reserve", "caf\xc3\xa9", "j1", "1", "--as", "o", NULL), 0);
    assert_int_equal(cli(T0, "commit", "j1", NULL), 0);
    assert_int_equal(cli(T0, "refund", "j1", "--reason", "bad\xc0", "--by", "s", NULL), 1);
    assert_int_equal(
        cli(T0, "refund", "j1", "--reason", "d\xc3\xa9j\xc3\xa0 vu", "--by", "s", NULL), 0);
}

/* Seen in fuzz_ledger_args's output (tests/fuzz/crashers/ledger_args-now-before-1970.txt):
 * a time before 1970 is negative, which the ledger and the CLI read as "none", so a job
 * committed at 1969-12-31T23:59:59.999Z showed "resolved_at": null. */
static void test_now_before_1970_is_a_usage_error(void **state)
{
    (void)state;
    assert_int_equal(cli("--now", "1969-12-31T23:59:59.999Z", "check", NULL), 2);
    assert_non_null(strstr(err, "1970 or later"));
    assert_int_equal(cli("--now", "0000-01-01T00:00:00Z", "sweep", NULL), 2);
    assert_int_equal(cli("--now", "1970-01-01T00:00:00Z", "check", NULL), 0);
}

/* A ledger written by schema v1 (tests/fixtures/ledger-schema-v1.sql, made by cm-ledger at
 * v1 with the commands in tests/fixtures/README.md) is migrated on first use: every job,
 * history and balance reads exactly as v1 printed them (ledger-schema-v1.expected,
 * including what each take was charged and refunded, which v2 derives), check passes,
 * and new movements continue each workspace's journal ids. */
#define V1_PLAN                                                                                    \
    "], \"plan\": {\"tier\": \"pro\", \"credits\": 5, \"interval\": \"monthly\", "                 \
    "\"period_start\": \"2026-02-28T10:00:00Z\", \"period_end\": \"2026-03-31T10:00:00Z\", "       \
    "\"active\": true, \"cancelled\": false, \"cancelled_at\": null, \"scheduled\": null}}\n"
static void test_a_v1_ledger_migrates_and_reads_the_same(void **state)
{
    (void)state;
    LT_SKIP_ON_PG("the fixture is a SQLite v1 file; PostgreSQL's v2 is tested in "
                  "test_ledger_errors");
    static char sql[65536], want[65536], got[65536];
    assert_true(read_text(CM_FIXTURES_DIR "/ledger-schema-v1.sql", sql, sizeof sql));
    assert_true(read_text(CM_FIXTURES_DIR "/ledger-schema-v1.expected", want, sizeof want));
    assert_true(strlen(sql) > 1000 && strlen(want) > 1000);
    char e[512];
    lt_unlink_db(db); /* not the v4 ledger setup made: the v1 file */
    assert_int_equal(lt_exec_sql(db, sql, e, sizeof e), 0);
#define T1 "--now", "2026-03-01T00:06:00Z"
    const char *const cmds[][2] = {{"job", "job-a"},    {"job", "job-b"},   {"job", "job-c"},
                                   {"job", "job-d"},    {"job", "job-e"},   {"history", "acme"},
                                   {"history", "solo"}, {"balance", "acme"}};
    got[0] = 0;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        assert_int_equal(cli(T1, "--json", cmds[i][0], cmds[i][1], NULL), 0);
        strncat(got, out, sizeof got - strlen(got) - 1);
    }
    /* v3's balance adds the plan after the grants: what v1 printed is the rest. */
    char *plan = strstr(got, "], \"plan\": ");
    assert_non_null(plan);
    assert_string_equal(plan, V1_PLAN);
    strcpy(plan, "]}\n");
    assert_string_equal(got, want);
    assert_int_equal(cli(T1, "check", NULL), 0);
    assert_int_equal(lt_exec_sql(db, "SELECT charged FROM hold_takes", e, sizeof e), -1);
    /* Life goes on: v2 rows continue the ids, and the derived charges hold. */
    assert_int_equal(cli(T1, "commit", "job-e", "3", NULL), 0);
    assert_int_equal(cli(T1, "refund", "job-e", "2", "--reason", "r", "--by", "sup", NULL), 0);
    assert_int_equal(cli(T1, "refund", "job-a", "--reason", "rest", "--by", "sup", NULL), 0);
    assert_int_equal(cli(T1, "--json", "job", "job-a", NULL), 0);
    assert_non_null(strstr(out, "\"charged\": 6, \"refunded\": 6"));
    assert_int_equal(cli(T1, "history", "acme", NULL), 0);
    assert_non_null(strstr(out, "\n    29 "));
    assert_null(strstr(out, "\n     1 2026-03-01T00:06:00Z"));
    assert_int_equal(cli(T1, "check", NULL), 0);
#undef T1
}

/* Issue 12: each reproduction through the CLI, as a support agent would type it. */
static void test_strict_inputs_through_the_cli(void **state)
{
    (void)state;
    assert_int_equal(cli(T0, "workspace", "create", "tog", "--owner", "olga", NULL), 0);
    assert_int_equal(cli(T0, "buy", "tog", "5", "--as", "olga", NULL), 0);
    /* money in the currency's decimals */
    assert_int_equal(cli(T0, "history", "tog", NULL), 0);
    assert_non_null(strstr(out, "(add-on: 5 x 0.15 = 0.75 USD)"));
    /* commit JOB 0: refused, use release */
    assert_int_equal(cli(T0, "reserve", "tog", "z", "1", "--as", "olga", NULL), 0);
    assert_int_equal(cli(T0, "commit", "z", "0", NULL), 1);
    assert_non_null(strstr(err, "invalid_argument"));
    assert_int_equal(cli(T0, "release", "z", NULL), 0);
    /* reserve of a released job id: job_closed, exit 1 */
    assert_int_equal(cli(T0, "reserve", "tog", "z", "1", "--as", "olga", NULL), 1);
    assert_non_null(strstr(err, "cm-ledger: job_closed: "));
    /* member remove of a non-member */
    assert_int_equal(cli(T0, "member", "remove", "tog", "nobody", "--as", "olga", NULL), 1);
    assert_non_null(strstr(err, "cm-ledger: not_a_member: "));
    assert_null(strstr(out, "member removed"));
    /* regions and currencies */
    assert_int_equal(cli(T0, "price", "set", "zz", "ABC", "15", NULL), 1);
    assert_non_null(strstr(err, "invalid_argument"));
    assert_int_equal(cli(T0, "price", "set", "in", "INR", "1200", "--by", "sam", NULL), 0);
    assert_int_equal(
        cli(T0, "workspace", "create", "mum", "--owner", "ravi", "--region", "in", NULL), 0);
    /* the price before buying, with buy --json's fields and the amount */
    assert_int_equal(cli(T0, "--json", "price", "mum", "10", NULL), 0);
    assert_string_equal(out, "{\"workspace\": \"mum\", \"credits\": 10, \"unit_minor\": 1200, "
                             "\"total_minor\": 12000, \"currency\": \"INR\", \"amount\": "
                             "\"120.00 INR\"}\n");
    assert_int_equal(cli(T0, "price", "mum", "10", "--as", "ravi", NULL), 0);
    assert_non_null(strstr(out, "10 credits would cost 120.00 INR (12.00 INR each)"));
    assert_int_equal(cli(T0, "balance", "mum", NULL), 0);
    assert_non_null(strstr(out, "0 available"));
    assert_int_equal(cli(T0, "--json", "buy", "mum", "10", "--as", "ravi", NULL), 0);
    assert_non_null(strstr(out, "\"unit_minor\": 1200, \"total_minor\": 12000, "
                                "\"currency\": \"INR\""));
    assert_non_null(strstr(out, "\"amount\": \"120.00 INR\""));
    /* price changes: who, when, old, new */
    assert_int_equal(cli("--now", "2026-02-01T00:00:00Z", "price", "set", "IN", "INR", "1500",
                         "--by", "kim", NULL),
                     0);
    assert_int_equal(cli(T0, "price-history", "in", NULL), 0);
    assert_non_null(strstr(out, "2026-01-31T12:00:00Z IN      none -> 12.00 INR by=sam\n"));
    assert_non_null(strstr(out, "2026-02-01T00:00:00Z IN      12.00 INR -> 15.00 INR by=kim\n"));
    /* no control characters in what support staff read */
    assert_int_equal(cli(T0, "reserve", "tog", "e1", "1", "--as", "olga", "--note",
                         "ok\x1b[2K\rcharged 0", NULL),
                     1);
    assert_non_null(strstr(err, "invalid_argument"));
    assert_int_equal(
        cli(T0, "reserve", "tog", "e2", "1", "--as", "olga", "--note", "reserved", NULL), 0);
    assert_int_equal(cli(T0, "job", "e2", NULL), 0);
    assert_non_null(strstr(out, "  why: reserved\n"));
    assert_int_equal(cli(T0, "check", NULL), 0);
}

/* What people read says "1 credit", never "1 credits" (and "1 hold", "1 plan period"). */
static void test_one_credit_is_singular_in_what_people_read(void **state)
{
    (void)state;
    assert_int_equal(cli(T0, "workspace", "create", "one", "--owner", "olga", NULL), 0);
    assert_int_equal(cli(T0, "plan", "set", "one", "--credits", "1", "--interval", "monthly",
                         "--as", "olga", NULL),
                     0);
    assert_non_null(strstr(out, "plan set: started, 1 credit granted, effective "));
    assert_int_equal(cli(T0, "plan", "show", "one", NULL), 0);
    assert_non_null(strstr(out, "workspace one: 1 credit a month, monthly\n"));
    assert_int_equal(cli(T0, "price", "one", "1", NULL), 0);
    assert_non_null(strstr(out, "1 credit would cost 0.15 USD (0.15 USD each)"));
    assert_int_equal(cli(T0, "buy", "one", "1", "--as", "olga", NULL), 0);
    assert_non_null(strstr(out, "paid 0.15 USD (1 credit x 0.15 USD) into grant "));
    assert_int_equal(cli(T0, "quote", "one", "1", NULL), 0);
    assert_non_null(strstr(out, "1 credit: affordable (2 available)\n"));
    assert_int_equal(cli(T0, "reserve", "one", "j1", "1", "--as", "olga", NULL), 0);
    assert_int_equal(cli(T0, "commit", "j1", NULL), 0);
    assert_int_equal(cli(T0, "job", "j1", NULL), 0);
    assert_non_null(strstr(out, "job j1 in one by olga: committed, 1 credit held, 1 charged"));
    assert_int_equal(cli(T0, "refund", "j1", "1", "--reason", "r", "--by", "sup", NULL), 0);
    assert_non_null(strstr(out, "refunded 1 credit ("));
    /* a hold that lapses, swept with the plan's next period */
    assert_int_equal(cli(T0, "reserve", "one", "j2", "1", "--as", "olga", "--lease", "60", NULL),
                     0);
    assert_int_equal(cli("--now", "2026-02-28T12:00:00Z", "sweep", NULL), 0);
    assert_string_equal(out, "lapsed 1 hold, expired 1 credit, granted 1 plan period\n");
    /* and the plural stays plural */
    assert_int_equal(cli("--now", "2026-02-28T12:00:00Z", "quote", "one", "2", NULL), 0);
    assert_non_null(strstr(out, "2 credits: "));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_usage_errors_exit_2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_is_the_old_name_of_the_ledger_option, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_refusal_exits_1_with_machine_name_on_stderr, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_balance_json_has_the_documented_shape, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_plan_commands_report_outcome_schedule_and_replay,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_job_cycle_through_the_cli, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strict_inputs_through_the_cli, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_credit_is_singular_in_what_people_read, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_json_escapes_ids_in_buy_and_refund, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ids_must_be_utf8_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_now_before_1970_is_a_usage_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_v1_ledger_migrates_and_reads_the_same, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
