/* SPDX-License-Identifier: MIT */
/*
 * cm-probe, the support person's view: a table with a total, JSON Lines, and exit
 * codes 0 (all billed), 1 (any refused), 2 (usage error).
 */
#include "probe_test_util.h"
#include "test_proc.h"

#define CLI_OUT_MAX (1 << 20)

/* Runs cm-probe ($<TARGET_FILE:cm-probe>) with argv[1..] in the samples directory;
 * returns its exit status and stdout in *out (caller frees). argv[0] is filled in. */
static int run_probe_argv(char **out, char **argv)
{
    static char err[65536];
    argv[0] = (char *)CM_BIN_PROBE;
    *out = malloc(CLI_OUT_MAX);
    assert_non_null(*out);
    return cmt_proc_run_in(CM_SAMPLES_DIR, argv, *out, CLI_OUT_MAX, err, sizeof err);
}

/* The same with the arguments in one string, separated by spaces. */
static int run_probe(char **out, const char *args)
{
    char copy[4096], *argv[64], *save = NULL;
    int n = 1;
    snprintf(copy, sizeof copy, "%s", args);
    for (char *t = strtok_r(copy, " ", &save); t && n < 63; t = strtok_r(NULL, " ", &save))
        argv[n++] = t;
    argv[n] = NULL;
    return run_probe_argv(out, argv);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_table_shows_duration_credits_method_and_total(void **s)
{
    (void)s;
    char *out;
    assert_int_equal(run_probe(&out, "clip-40s.mp4 long-25m40.mkv"), 0);
    assert_non_null(strstr(out, "FILE"));
    assert_non_null(strstr(out, "clip-40s.mp4"));
    assert_non_null(strstr(out, "0:00:40."));
    assert_non_null(strstr(out, "structure_walk"));
    assert_non_null(strstr(out, "0:25:40.000"));
    assert_non_null(strstr(out, "TOTAL"));
    assert_non_null(strstr(out, " 27  2 billed, 0 refused"));
    free(out);
}

static void test_json_lines_one_object_per_file(void **s)
{
    (void)s;
    char *out;
    assert_int_equal(run_probe(&out, "--json exact-3m00.ts streamed-90s.webm"), 0);
    assert_int_equal(count_lines(out), 2);
    assert_non_null(strstr(out, "{\"file\":\"exact-3m00.ts\",\"ok\":true,\"duration_ms\":"));
    assert_non_null(strstr(out, "\"declared_ms\":null"));
    assert_non_null(strstr(out, "\"credits\":3,\"method\":\"packet_scan\",\"has_video\":true"));
    assert_non_null(strstr(out, "\"note\":\"no_header_duration\""));
    free(out);
}

static void test_refused_file_exits_one_with_error_object(void **s)
{
    (void)s;
    char *out;
    assert_int_equal(run_probe(&out, "--json clip-40s.mp4 bad/playlist.m3u8 nope.mp4"), 1);
    assert_int_equal(count_lines(out), 3);
    assert_non_null(strstr(out, "{\"file\":\"bad/playlist.m3u8\",\"ok\":false,\"error\":{\"code\":"
                                "\"refused_format\",\"message\":\""));
    assert_non_null(strstr(out, "\"code\":\"no_such_file\""));
    free(out);
    assert_int_equal(run_probe(&out, "bad/empty.mp4"), 1);
    assert_non_null(strstr(out, "empty_file"));
    assert_non_null(strstr(out, "0 billed, 1 refused"));
    free(out);
}

static void test_usage_errors_exit_two(void **s)
{
    (void)s;
    char *out;
    assert_int_equal(run_probe(&out, ""), 2);
    free(out);
    assert_int_equal(run_probe(&out, "--bogus clip-40s.mp4"), 2);
    free(out);
    assert_int_equal(run_probe(&out, "--grace-ms abc clip-40s.mp4"), 2);
    free(out);
    assert_int_equal(run_probe(&out, "--grace-ms 60000 clip-40s.mp4"), 2);
    free(out);
    assert_int_equal(run_probe(&out, "--grace-ms"), 2);
    free(out);
}

/* Under --json (wherever it stands among the options) a usage error is a JSON document
 * on stdout, exit 2. */
static void test_usage_errors_under_json_are_json(void **s)
{
    (void)s;
    char *out;
    const char *want = "{\"ok\": false, \"error\": {\"code\": \"usage\", \"message\": ";
    assert_int_equal(run_probe(&out, "--json --bogus clip-40s.mp4"), 2);
    assert_true(strncmp(out, want, strlen(want)) == 0);
    assert_non_null(strstr(out, "unknown option --bogus"));
    free(out);
    assert_int_equal(run_probe(&out, "--bogus --json clip-40s.mp4"), 2);
    assert_non_null(strstr(out, "\"code\": \"usage\""));
    free(out);
    assert_int_equal(run_probe(&out, "--json --grace-ms 60000 clip-40s.mp4"), 2);
    assert_non_null(strstr(out, "--grace-ms needs a number of ms from 0 to 59999"));
    free(out);
    assert_int_equal(run_probe(&out, "--json"), 2);
    assert_non_null(strstr(out, "no file given"));
    free(out);
    assert_int_equal(run_probe(&out, "--bogus clip-40s.mp4"), 2); /* without: not on stdout */
    assert_string_equal(out, "");
    free(out);
}

static void test_grace_option_changes_the_bill(void **s)
{
    (void)s;
    char *out;
    assert_int_equal(run_probe(&out, "--json --grace-ms 0 edge-60.4s.mkv"), 0);
    assert_non_null(strstr(out, "\"credits\":2"));
    free(out);
    assert_int_equal(run_probe(&out, "--json edge-60.4s.mkv"), 0);
    assert_non_null(strstr(out, "\"credits\":1"));
    free(out);
}

/* A name with quotes, a newline and invalid UTF-8 still makes one valid JSON line. */
static void test_json_escapes_hostile_file_names(void **s)
{
    (void)s;
    const char *dir = tmp_path("names");
    assert_int_equal(run_cmd("mkdir -p '%s' && cp '%s' \"%s/a\\\"b\\\\c\n\xff.mp4\"", dir,
                             sample("clip-40s.mp4"), dir),
                     0);
    char name[2048];
    snprintf(name, sizeof(name), "%s/a\"b\\c\n\xff.mp4", dir);
    char *out, *argv[] = {NULL, (char *)"--json", name, NULL};
    assert_int_equal(run_probe_argv(&out, argv), 0);
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "a\\\"b\\\\c\\u000a\\ufffd.mp4\""));
    free(out);
    run_cmd("rm -rf '%s'", dir);
}

/* Bytes the old check let through as characters (0xF5-0xFF as lead bytes, a surrogate,
 * an overlong form) are U+FFFD too: the output is strict UTF-8 JSON that Python's json
 * module parses (it refuses invalid UTF-8 while decoding). */
static void test_json_is_valid_for_names_with_any_invalid_utf8(void **s)
{
    (void)s;
    const char *dir = tmp_path("badutf8");
    assert_int_equal(run_cmd("rm -rf '%s' && mkdir -p '%s' && cp '%s' '%s/\xf5\x80\x80\x80"
                             "-\xed\xa0\x80-\xc0\x80-\xf8\x88\x80\x80\x80.mp4'",
                             dir, dir, sample("clip-40s.mp4"), dir),
                     0);
    const char *o = tmp_path("badutf8.json");
    assert_int_equal(run_cmd("cd '%s' && '%s' --json *.mp4 > '%s'", dir, CM_BIN_PROBE, o), 0);
    assert_int_equal(run_cmd("python3 -c 'import json, sys\n"
                             "lines = sys.stdin.buffer.read().decode(\"utf-8\").splitlines()\n"
                             "assert len(lines) == 1\n"
                             "f = json.loads(lines[0])[\"file\"]\n"
                             "assert f == \"\\ufffd\" * 4 + \"-\" + \"\\ufffd\" * 3 + \"-\" + "
                             "\"\\ufffd\" * 2 + \"-\" + \"\\ufffd\" * 5 + \".mp4\", f' < '%s'",
                             o),
                     0);
    unlink(o);
    run_cmd("rm -rf '%s'", dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_shows_duration_credits_method_and_total),
        cmocka_unit_test(test_json_lines_one_object_per_file),
        cmocka_unit_test(test_refused_file_exits_one_with_error_object),
        cmocka_unit_test(test_usage_errors_exit_two),
        cmocka_unit_test(test_usage_errors_under_json_are_json),
        cmocka_unit_test(test_grace_option_changes_the_bill),
        cmocka_unit_test(test_json_escapes_hostile_file_names),
        cmocka_unit_test(test_json_is_valid_for_names_with_any_invalid_utf8),
    };
    return cmocka_run_group_tests_name("probe_cli", tests, NULL, NULL);
}
