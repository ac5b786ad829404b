/* SPDX-License-Identifier: MIT */
/*
 * fuzz_ledger_args.c - libFuzzer harness for cm-ledger's argument and time parsing.
 *
 * The real CLI is compiled into this harness: ledger/cm-ledger.c is one of its sources,
 * built with -Dmain=cm_ledger_cli_main (a property of this target only; see
 * CMakeLists.txt). cm-ledger's main() returns its status on every path and calls no
 * exit(), so it runs in-process, several times per input. Should an exit() ever appear
 * in it, libFuzzer reports "fuzz target exited" as a failure: then the CLI must return
 * its status instead (or this harness grow -Dexit= with a longjmp back here).
 *
 * Input format (text; tests/fuzz/seeds/ledger_args/ holds examples): one cm-ledger
 * command per line, at most 8 lines, each run in order against the same database, so an
 * input can build state (reserve, then commit, then refund). Words are separated by
 * spaces, or by tabs only when the line holds a tab (then words may contain spaces, and
 * two tabs in a row hold an empty word); a NUL byte counts as a space. At most 32 words
 * of at most 256 bytes (longer words are cut). The harness puts "--ledger PATH" in front,
 * so a --ledger in the input is refused as given twice and the CLI never opens another file
 * or a PostgreSQL URI.
 *
 * Database: one per process, in a fresh folder under $CM_FUZZ_TMP, else /dev/shm (no
 * fsync cost), else $TMPDIR or /tmp; removed at exit. LLVMFuzzerInitialize builds a
 * template through the CLI itself (init, workspace acme owned by alice with member bob, a
 * monthly plan, a purchase, one held job "job-held" and one committed job "job-done",
 * all at 2026-01-15T10:00:00Z) and keeps its bytes; every input starts from a copy of
 * them, so an input's outcome does not depend on the inputs before it (inputs without
 * --now do read the real clock).
 *
 * Invariants checked (a broken one aborts, which libFuzzer records as a crash):
 *   - the exit status is 0, 1 (refused) or 2 (usage); 2 when --now is before 1970;
 *   - with --json, unless it printed the help text, stdout is exactly one JSON value
 *     and a newline (UTF-8 validity is not checked: the CLI copies bytes through);
 *   - a usage error (2) prints nothing on stdout, or with --json among the words one
 *     JSON value (the {"ok": false, "error": {"code": "usage", ...}} document);
 *   - after the input's commands, cm_ledger_check() passes on the database;
 *   - every word is also given to cm_ledger_time_parse(): an accepted text must be one
 *     that an independent reading (field checks + timegm()) accepts with the same
 *     instant, and parse -> format -> parse must return that instant and the same text;
 *     text the reference refuses must be refused;
 *   - the first 8 bytes, as an int64, are given to cm_ledger_time_format(): the text
 *     must equal one built from gmtime_r(), and for years 0..9999 parse back exactly.
 * stdout and stderr of the CLI are captured in memory (the FILE pointers are swapped
 * around each call; ASan and libFuzzer write to fd 2 directly and are unaffected).
 *
 *   CM_FUZZ_VERBOSE=1   print each command, its status and output on stderr
 */
#include "cm_ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int cm_ledger_cli_main(int argc, char **argv); /* ledger/cm-ledger.c's main() */

#define MAX_LINES 8
#define MAX_WORDS 32
#define MAX_WORD 256
#define T0 "2026-01-15T10:00:00Z"

static char g_dir[512], g_db[600];
static unsigned char *g_template;
static size_t g_template_len;
static int g_verbose;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_ledger_args: invariant broken: %s (%s:%d)\n", #cond, __FILE__,   \
                    __LINE__);                                                                     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* ---- running the CLI ---- */

typedef struct cli_out {
    int status;
    char *out, *err;
    size_t out_len, err_len;
} cli_out;

static void cli_run(int argc, char **argv, cli_out *r)
{
    FILE *saved_out = stdout, *saved_err = stderr;
    FILE *o = open_memstream(&r->out, &r->out_len);
    FILE *e = open_memstream(&r->err, &r->err_len);
    CHECK(o && e);
    stdout = o;
    stderr = e;
    r->status = cm_ledger_cli_main(argc, argv);
    stdout = saved_out;
    stderr = saved_err;
    fclose(o);
    fclose(e);
}

static void cli_out_free(cli_out *r)
{
    free(r->out);
    free(r->err);
}

static void remove_db_files(void)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    char p[700];
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(p, sizeof p, "%s%s", g_db, suffix[i]);
        unlink(p);
    }
}

static void cleanup(void)
{
    if (g_dir[0]) {
        remove_db_files();
        rmdir(g_dir);
    }
}

static void restore_template(void)
{
    remove_db_files();
    int fd = open(g_db, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK(write(fd, g_template, g_template_len) == (ssize_t)g_template_len);
    close(fd);
}

static void load_template(void)
{
    int fd = open(g_db, O_RDONLY);
    CHECK(fd >= 0);
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_size > 0);
    g_template_len = (size_t)st.st_size;
    g_template = malloc(g_template_len);
    CHECK(g_template && read(fd, g_template, g_template_len) == (ssize_t)g_template_len);
    close(fd);
}

/* One setup command through the CLI; it must succeed. */
static void setup_cmd(const char *line)
{
    char buf[512], *argv[MAX_WORDS + 4];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s", line);
    argv[argc++] = "cm-ledger";
    argv[argc++] = "--ledger";
    argv[argc++] = g_db;
    argv[argc++] = "--now";
    argv[argc++] = T0;
    for (char *w = strtok(buf, " "); w; w = strtok(NULL, " "))
        argv[argc++] = w;
    argv[argc] = NULL;
    cli_out r;
    cli_run(argc, argv, &r);
    if (r.status != 0) {
        fprintf(stderr, "fuzz_ledger_args: setup failed: %s: %.*s\n", line, (int)r.err_len, r.err);
        abort();
    }
    cli_out_free(&r);
}

static const char *tmp_base(void)
{
    const char *s = getenv("CM_FUZZ_TMP");
    if (s && *s)
        return s;
    if (access("/dev/shm", W_OK) == 0)
        return "/dev/shm";
    s = getenv("TMPDIR");
    return s && *s ? s : "/tmp";
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    g_verbose = getenv("CM_FUZZ_VERBOSE") != NULL;
    snprintf(g_dir, sizeof g_dir, "%s/cm-fuzz-ledger.XXXXXX", tmp_base());
    if (!mkdtemp(g_dir)) {
        fprintf(stderr, "fuzz_ledger_args: mkdtemp %s: %s\n", g_dir, strerror(errno));
        abort();
    }
    snprintf(g_db, sizeof g_db, "%s/ledger.db", g_dir);
    atexit(cleanup);
    setup_cmd("init"); /* a ledger is created explicitly (issue 15) */
    setup_cmd("workspace create acme --owner alice --region eu");
    setup_cmd("member add acme bob --as alice");
    setup_cmd("price set eu EUR 12");
    setup_cmd("plan set acme --credits 100 --interval monthly --tier pro --as alice");
    setup_cmd("buy acme 50 --as alice --ref pay-1");
    setup_cmd("reserve acme job-held 10 --as bob --lease 600");
    setup_cmd("reserve acme job-done 5 --as alice");
    setup_cmd("commit job-done 4");
    setup_cmd("check");
    /* The last close checkpointed the WAL into the main file: it alone is the state. */
    load_template();
    return 0;
}

/* ---- a small JSON validator (RFC 8259 grammar, bytes >= 0x80 taken as they come) ---- */

static const char *json_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static const char *json_value(const char *p, int depth);

static const char *json_string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    for (;;) {
        unsigned char c = (unsigned char)*p++;
        if (c == '"')
            return p;
        if (c < 0x20)
            return NULL; /* includes the terminating NUL */
        if (c == '\\') {
            c = (unsigned char)*p++;
            if (c == 'u') {
                for (int i = 0; i < 4; i++, p++)
                    if (!strchr("0123456789abcdefABCDEF", *p) || !*p)
                        return NULL;
            } else if (!c || !strchr("\"\\/bfnrt", c)) {
                return NULL;
            }
        }
    }
}

static const char *json_number(const char *p)
{
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return NULL;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return NULL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (*p < '0' || *p > '9')
            return NULL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return p;
}

static const char *json_members(const char *p, char close, int depth)
{
    p = json_ws(p);
    if (*p == close)
        return p + 1;
    for (;;) {
        if (close == '}') {
            p = json_string(json_ws(p));
            if (!p)
                return NULL;
            p = json_ws(p);
            if (*p++ != ':')
                return NULL;
        }
        p = json_value(p, depth + 1);
        if (!p)
            return NULL;
        p = json_ws(p);
        if (*p == close)
            return p + 1;
        if (*p++ != ',')
            return NULL;
    }
}

static const char *json_value(const char *p, int depth)
{
    if (depth > 32)
        return NULL;
    p = json_ws(p);
    switch (*p) {
    case '{':
        return json_members(p + 1, '}', depth);
    case '[':
        return json_members(p + 1, ']', depth);
    case '"':
        return json_string(p);
    case 't':
        return strncmp(p, "true", 4) ? NULL : p + 4;
    case 'f':
        return strncmp(p, "false", 5) ? NULL : p + 5;
    case 'n':
        return strncmp(p, "null", 4) ? NULL : p + 4;
    default:
        return json_number(p);
    }
}

/* One JSON document and its newline, nothing else (no NUL inside either). */
static int is_one_json_doc(const char *s, size_t len)
{
    if (strlen(s) != len)
        return 0;
    const char *end = json_value(s, 0);
    return end && !strcmp(end, "\n");
}

/* ---- time: the public parse/format against an independent reading ---- */

/* "YYYY-MM-DDTHH:MM:SS[.f+]Z" read field by field, validated with timegm() (which
 * normalises an impossible date such as Feb 30 or 23:59:60: then the text is invalid). */
static int ref_time_parse(const char *s, int64_t *ms)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    size_t n = strlen(s);
    if (n < 20)
        return -1;
    for (size_t i = 0; i < 19; i++) {
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
            return -1;
    }
    size_t i = 19, nfrac = 0;
    int frac_ms = 0;
    if (s[i] == '.') {
        for (i++; s[i] >= '0' && s[i] <= '9'; i++, nfrac++)
            if (nfrac < 3)
                frac_ms = frac_ms * 10 + (s[i] - '0');
        if (nfrac == 0)
            return -1;
        for (size_t k = nfrac; k < 3; k++)
            frac_ms *= 10;
    }
    if (s[i] != 'Z' || i + 1 != n)
        return -1;
    struct tm tm = {0};
    int y = atoi(s), mo = atoi(s + 5), d = atoi(s + 8), h = atoi(s + 11), mi = atoi(s + 14),
        sec = atoi(s + 17);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (tm.tm_year != y - 1900 || tm.tm_mon != mo - 1 || tm.tm_mday != d || tm.tm_hour != h ||
        tm.tm_min != mi || tm.tm_sec != sec)
        return -1;
    *ms = (int64_t)t * 1000 + frac_ms;
    return 0;
}

static void check_time_text(const char *s)
{
    int64_t ms = 0, ref = 0;
    int rc = cm_ledger_time_parse(s, &ms);
    int ref_rc = ref_time_parse(s, &ref);
    CHECK(rc == CM_LEDGER_OK || rc == CM_LEDGER_E_INVALID);
    CHECK((rc == CM_LEDGER_OK) == (ref_rc == 0));
    if (rc != CM_LEDGER_OK)
        return;
    CHECK(ms == ref);
    char a[40], b[40];
    int64_t again = 0;
    cm_ledger_time_format(ms, a, sizeof a);
    CHECK(cm_ledger_time_parse(a, &again) == CM_LEDGER_OK);
    CHECK(again == ms);
    cm_ledger_time_format(again, b, sizeof b);
    CHECK(!strcmp(a, b));
}

/* Year 0 starts at this instant, year 10000 at the other: the parser's range. */
#define MS_YEAR_0 INT64_C(-62167219200000)
#define MS_YEAR_10000 INT64_C(253402300800000)

static void check_time_ms(int64_t ms)
{
    char got[40], want[48];
    cm_ledger_time_format(ms, got, sizeof got);
    CHECK(strlen(got) < 32); /* the header promises a 32-byte buffer is enough */
    int64_t sec = ms / 1000, frac = ms % 1000;
    if (frac < 0)
        sec--, frac += 1000;
    time_t t = (time_t)sec;
    struct tm tm;
    CHECK(gmtime_r(&t, &tm) != NULL);
    long long year = (long long)tm.tm_year + 1900;
    if (frac)
        snprintf(want, sizeof want, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", year, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
    else
        snprintf(want, sizeof want, "%04lld-%02d-%02dT%02d:%02d:%02dZ", year, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (strcmp(got, want)) {
        fprintf(stderr, "fuzz_ledger_args: format(%" PRId64 ") = %s, gmtime gives %s\n", ms, got,
                want);
        abort();
    }
    if (ms >= MS_YEAR_0 && ms < MS_YEAR_10000) {
        int64_t back = 0;
        CHECK(cm_ledger_time_parse(got, &back) == CM_LEDGER_OK && back == ms);
    }
}

/* ---- the input ---- */

/* Splits one line into words (in place); returns the count. Runs of spaces separate
 * once; every tab separates, so "a\t\tb" holds an empty word. */
static int split_words(char *line, char **words)
{
    char sep = strchr(line, '\t') ? '\t' : ' ';
    int n = 0;
    char *p = line;
    while (*p && n < MAX_WORDS) {
        while (sep == ' ' && *p == sep)
            p++;
        if (!*p)
            break;
        char *w = p;
        while (*p && *p != sep)
            p++;
        if (*p)
            *p++ = '\0';
        if (strlen(w) > MAX_WORD)
            w[MAX_WORD] = '\0';
        words[n++] = w;
    }
    return n;
}

static int has_word(char **words, int n, const char *w)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(words[i], w))
            return 1;
    return 0;
}

static void run_line(char *line)
{
    char *words[MAX_WORDS];
    int n = split_words(line, words);
    if (n == 0)
        return;
    for (int i = 0; i < n; i++)
        check_time_text(words[i]);

    char *argv[MAX_WORDS + 4];
    int argc = 0;
    argv[argc++] = "cm-ledger";
    argv[argc++] = "--ledger";
    argv[argc++] = g_db;
    for (int i = 0; i < n; i++)
        argv[argc++] = words[i];
    argv[argc] = NULL;

    cli_out r;
    cli_run(argc, argv, &r);
    if (g_verbose) {
        fprintf(stderr, "fuzz_ledger_args:");
        for (int i = 3; i < argc; i++)
            fprintf(stderr, " [%s]", argv[i]);
        fprintf(stderr, " -> %d\n%.*s%.*s", r.status, (int)r.out_len, r.out, (int)r.err_len, r.err);
    }
    CHECK(r.status == 0 || r.status == 1 || r.status == 2);
    for (int i = 0; i + 1 < n; i++) { /* a --now before 1970 would be read as "none" */
        int64_t now;
        if (!strcmp(words[i], "--now") && !cm_ledger_time_parse(words[i + 1], &now) && now < 0)
            CHECK(r.status == 2);
    }
    int help = r.out_len >= 7 && !memcmp(r.out, "usage: ", 7);
    if (r.status == 2)
        CHECK(r.out_len == 0 ||
              (has_word(words, n, "--json") && is_one_json_doc(r.out, r.out_len)));
    else if (has_word(words, n, "--json") && !help && !is_one_json_doc(r.out, r.out_len)) {
        fprintf(stderr, "fuzz_ledger_args: --json printed no single JSON document:\n%.*s\n",
                (int)r.out_len, r.out);
        abort();
    }
    cli_out_free(&r);
}

static void check_ledger(void)
{
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.location = g_db;
    cm_ledger *l = NULL;
    int rc = cm_ledger_open(&l, &cfg);
    if (rc == CM_LEDGER_OK)
        rc = cm_ledger_check(l);
    if (rc != CM_LEDGER_OK) {
        fprintf(stderr, "fuzz_ledger_args: the ledger fails its check: %s: %s\n",
                cm_ledger_err_name(rc), cm_ledger_errmsg(l));
        abort();
    }
    cm_ledger_close(l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 8) {
        int64_t ms;
        memcpy(&ms, data, sizeof ms);
        check_time_ms(ms);
    }
    char *text = malloc(size + 1);
    CHECK(text != NULL);
    for (size_t i = 0; i < size; i++) /* a NUL separates words, like a space */
        text[i] = data[i] ? (char)data[i] : ' ';
    text[size] = '\0';

    restore_template();
    int lines = 0;
    for (char *p = text; p && *p && lines < MAX_LINES; lines++) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        run_line(p);
        p = nl ? nl + 1 : NULL;
    }
    check_ledger();
    free(text);
    return 0;
}
