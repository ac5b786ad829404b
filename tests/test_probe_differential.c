/* SPDX-License-Identifier: MIT */
/*
 * The fast path is proved against the oracle: every fixture in samples/ (and
 * samples/bad/) and every file of the packaging matrix (tests/packaging/make-matrix.sh,
 * generated into the build tree by the probe_matrix fixture) is probed twice, with the
 * default options (the fast paths) and with full_scan = 1 (a demux of every packet),
 * and
 *   - both give the same outcome: both billed, or both refused with the same code;
 *   - billed: |fast - oracle| <= max(250 ms, 1 % of the oracle); a fast path below the
 *     oracle by more is a customer paying less than the content plays;
 *   - where the manifest states a duration by construction, both are within
 *     max(250 ms, 1 %) of it (the oracle's job is to be right), and where it states an
 *     outcome (billed, refused:<name>), both give it.
 * Every file is checked; a failure prints the whole table (file, fast, oracle,
 * expected, the fast path's method, what is wrong) before failing.
 *
 * CM_MATRIX_DIR (environment) overrides where the matrix is read from.
 */
#include "probe_test_util.h"

#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#ifndef CM_MATRIX_DIR
#define CM_MATRIX_DIR CM_BUILD_DIR "/tests/matrix"
#endif

#define TOL_FLOOR_MS 250

typedef struct entry {
    char path[1024];
    char name[256];
    int64_t expected_ms; /* -1: not stated */
    char outcome[64];    /* "billed", "refused:<name>", "any" */
} entry;

typedef struct list {
    entry *v;
    size_t n, cap;
} list;

static entry *push(list *l)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        assert_non_null(l->v);
    }
    entry *e = &l->v[l->n++];
    memset(e, 0, sizeof(*e));
    e->expected_ms = -1;
    snprintf(e->outcome, sizeof(e->outcome), "any");
    return e;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->path, ((const entry *)b)->path);
}

/* Every regular file of dir except scripts, as "any outcome, no stated duration". */
static void add_dir(list *l, const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d)
        fail_msg("cannot open %s", dir);
    size_t first = l->n;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        size_t len = strlen(n);
        if (n[0] == '.' || (len > 3 && strcmp(n + len - 3, ".sh") == 0))
            continue;
        entry *e = push(l);
        snprintf(e->path, sizeof(e->path), "%s/%s", dir, n);
        struct stat st;
        if (stat(e->path, &st) != 0 || !S_ISREG(st.st_mode)) {
            l->n--;
            continue;
        }
        snprintf(e->name, sizeof(e->name), "%s%s", prefix, n);
    }
    closedir(d);
    qsort(l->v + first, l->n - first, sizeof(*l->v), by_name);
}

static const char *matrix_dir(void)
{
    const char *env = getenv("CM_MATRIX_DIR");
    return env && *env ? env : CM_MATRIX_DIR;
}

/* The manifest: file TAB expected_ms TAB outcome TAB how; '#' lines are comments. */
static void add_matrix(list *l)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/manifest.tsv", matrix_dir());
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("no packaging matrix at %s: run tests/packaging/make-matrix.sh %s (ctest does, "
                 "through the probe_matrix fixture)",
                 path, matrix_dir());
    char line[2048];
    while (fgets(line, sizeof(line), f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char *save = NULL;
        char *file = strtok_r(line, "\t\n", &save);
        char *ms = strtok_r(NULL, "\t\n", &save);
        char *outcome = strtok_r(NULL, "\t\n", &save);
        if (!file || !ms || !outcome)
            fail_msg("bad manifest line in %s: %s", path, line);
        entry *e = push(l);
        snprintf(e->path, sizeof(e->path), "%s/%s", matrix_dir(), file);
        snprintf(e->name, sizeof(e->name), "%s", file);
        e->expected_ms = strtoll(ms, NULL, 10);
        snprintf(e->outcome, sizeof(e->outcome), "%s", outcome);
    }
    fclose(f);
    if (l->n == 0)
        fail_msg("the manifest %s lists no file", path);
}

static int64_t tolerance(int64_t ms)
{
    return ms / 100 > TOL_FLOOR_MS ? ms / 100 : TOL_FLOOR_MS;
}

static int64_t absdiff(int64_t a, int64_t b)
{
    return a > b ? a - b : b - a;
}

typedef struct result {
    int err;
    int64_t ms;
    enum cm_probe_method method;
} result;

/* Probes path; ok is cleared when the probe broke its own contract (no report, or a
   result that is not the report's), which the main thread then fails on. */
static result run(const cm_probe *p, const char *path, int *ok)
{
    cm_probe_report *r = NULL;
    int err = cm_probe_file(p, path, &r);
    if (!r || err != cm_probe_report_error(r)) {
        *ok = 0;
        cm_probe_report_free(r);
        return (result){err, -1, CM_PROBE_METHOD_NONE};
    }
    result res = {err, err == CM_PROBE_OK ? cm_probe_report_measured_ms(r) : -1,
                  cm_probe_report_method(r)};
    cm_probe_report_free(r);
    return res;
}

/* Both probes of every file, on two threads sharing the two handles (a handle is
   thread-safe): the files are taken in turn from a shared counter. */
typedef struct work {
    const list *l;
    const cm_probe *fast_p, *oracle_p;
    result *fast, *oracle;
    atomic_size_t next;
    atomic_int ok;
} work;

static void *worker(void *arg)
{
    work *w = arg;
    size_t i;
    while ((i = atomic_fetch_add(&w->next, 1)) < w->l->n) {
        int ok = 1;
        w->fast[i] = run(w->fast_p, w->l->v[i].path, &ok);
        w->oracle[i] = run(w->oracle_p, w->l->v[i].path, &ok);
        if (!ok)
            atomic_store(&w->ok, 0);
    }
    return NULL;
}

static void fmt_result(char *buf, size_t n, result r)
{
    if (r.err == CM_PROBE_OK)
        snprintf(buf, n, "%" PRId64, r.ms);
    else
        snprintf(buf, n, "%s", cm_probe_err_name(r.err));
}

/* What is wrong with one file, or "" when nothing is. */
static void judge(const entry *e, result fast, result oracle, char *why, size_t n)
{
    why[0] = '\0';
    if (fast.err != oracle.err) {
        snprintf(why, n, "outcomes differ");
        return;
    }
    if (strcmp(e->outcome, "billed") == 0 && oracle.err != CM_PROBE_OK) {
        snprintf(why, n, "refused, manifest: billed");
        return;
    }
    if (strncmp(e->outcome, "refused:", 8) == 0 &&
        (oracle.err == CM_PROBE_OK || strcmp(cm_probe_err_name(oracle.err), e->outcome + 8) != 0)) {
        snprintf(why, n, "manifest: %s", e->outcome);
        return;
    }
    if (oracle.err != CM_PROBE_OK)
        return;
    int64_t tol = tolerance(oracle.ms);
    if (fast.ms < oracle.ms - tol) {
        snprintf(why, n, "fast below oracle by %" PRId64 " ms", oracle.ms - fast.ms);
        return;
    }
    if (fast.ms > oracle.ms + tol) {
        snprintf(why, n, "fast above oracle by %" PRId64 " ms", fast.ms - oracle.ms);
        return;
    }
    if (e->expected_ms >= 0) {
        int64_t etol = tolerance(e->expected_ms);
        if (absdiff(oracle.ms, e->expected_ms) > etol)
            snprintf(why, n, "oracle off expected by %" PRId64 " ms", oracle.ms - e->expected_ms);
        else if (absdiff(fast.ms, e->expected_ms) > etol)
            snprintf(why, n, "fast off expected by %" PRId64 " ms", fast.ms - e->expected_ms);
    }
}

static void check_all(list *l)
{
    cm_probe_options fast_opt, oracle_opt;
    cm_probe_options_init(&fast_opt);
    cm_probe_options_init(&oracle_opt);
    oracle_opt.full_scan = 1;
    cm_probe *fast_p = NULL, *oracle_p = NULL;
    assert_int_equal(cm_probe_new(&fast_p, &fast_opt), CM_PROBE_OK);
    assert_int_equal(cm_probe_new(&oracle_p, &oracle_opt), CM_PROBE_OK);

    work w = {.l = l, .fast_p = fast_p, .oracle_p = oracle_p};
    w.fast = calloc(l->n, sizeof(*w.fast));
    w.oracle = calloc(l->n, sizeof(*w.oracle));
    assert_non_null(w.fast);
    assert_non_null(w.oracle);
    atomic_init(&w.next, 0);
    atomic_init(&w.ok, 1);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, worker, &w), 0);
    worker(&w);
    assert_int_equal(pthread_join(t, NULL), 0);
    if (!atomic_load(&w.ok))
        fail_msg("a probe returned no report, or a result other than its report's");

    size_t bad = 0;
    size_t tab_cap = 128 * (l->n + 2);
    char *table = malloc(tab_cap);
    assert_non_null(table);
    size_t used = (size_t)snprintf(table, tab_cap, "%-34s %14s %14s %9s %-14s %s\n", "FILE", "FAST",
                                   "ORACLE", "EXPECTED", "METHOD", "VERDICT");
    for (size_t i = 0; i < l->n; i++) {
        const entry *e = &l->v[i];
        result fast = w.fast[i], oracle = w.oracle[i];
        char why[128], f[32], o[32], x[32];
        judge(e, fast, oracle, why, sizeof(why));
        if (why[0])
            bad++;
        fmt_result(f, sizeof(f), fast);
        fmt_result(o, sizeof(o), oracle);
        if (e->expected_ms >= 0)
            snprintf(x, sizeof(x), "%" PRId64, e->expected_ms);
        else
            snprintf(x, sizeof(x), "%s", strncmp(e->outcome, "refused:", 8) == 0 ? "refused" : "-");
        used += (size_t)snprintf(table + used, tab_cap - used, "%-34s %14s %14s %9s %-14s %s\n",
                                 e->name, f, o, x, cm_probe_method_name(fast.method),
                                 why[0] ? why : "ok");
    }
    cm_probe_free(fast_p);
    cm_probe_free(oracle_p);
    if (bad) {
        printf("%s%zu of %zu files: the fast path and the oracle disagree, or miss what the "
               "manifest states (tolerance max(%d ms, 1 %%))\n",
               table, bad, l->n, TOL_FLOOR_MS);
        fflush(stdout);
    }
    free(table);
    free(w.fast);
    free(w.oracle);
    free(l->v);
    if (bad)
        fail_msg("%zu of %zu files failed (table above)", bad, l->n);
}

static void test_every_sample_bills_what_the_oracle_bills(void **s)
{
    (void)s;
    list l = {0};
    add_dir(&l, CM_SAMPLES_DIR, "");
    add_dir(&l, CM_SAMPLES_DIR "/bad", "bad/");
    check_all(&l);
}

static void test_every_packaging_bills_what_the_oracle_and_the_construction_say(void **s)
{
    (void)s;
    list l = {0};
    add_matrix(&l);
    check_all(&l);
}

int main(void)
{
    /* A test program of its own: libavformat's warnings about the damaged files of the
       matrix would only bury the table. */
    cm_probe_silence_libav_logs();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_sample_bills_what_the_oracle_bills),
        cmocka_unit_test(test_every_packaging_bills_what_the_oracle_and_the_construction_say),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
