/*
 * test_plugin_util.h - helpers of the plugin's end-to-end tests: run the real
 * cm-pipeline (and cm-ledger) binaries from CM_BUILD_DIR and set up ledgers.
 *
 * Ledgers are set up and read with the cm-ledger CLI; the jobs only ever go through the
 * cm-pipeline binary and the plugin it loads. Hold states are the ledger's numbers
 * (1 held, 2 committed, 3 released, 4 lapsed), as in cm_ledger.h.
 */
#ifndef TEST_PLUGIN_UTIL_H
#define TEST_PLUGIN_UTIL_H

#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CMT_PIPELINE CM_BUILD_DIR "/plugin/cm-pipeline"
#define CMT_PLUGIN CM_BUILD_DIR "/plugin/libcreditmeter_plugin.so"
#define CMT_LEDGER CM_BUILD_DIR "/ledger/cm-ledger"
#define CMT_SAMPLE(name) CM_SAMPLES_DIR "/" name

/* A per-test scratch path: CM_TEST_TMP/plugin-<pid>-<name>. */
static inline void cmt_path(char *buf, size_t n, const char *name)
{
    mkdir(CM_TEST_TMP, 0755);
    snprintf(buf, n, "%s/plugin-%ld-%s", CM_TEST_TMP, (long)getpid(), name);
}

/* Runs argv (NULL-terminated), stdout+stderr into out (NUL-terminated, may be NULL).
 * Returns the exit status, or 128 + signal. */
static inline int cmt_runv(char *out, size_t out_size, char *const argv[])
{
    char log[512];
    static int seq;
    snprintf(log, sizeof log, "%s/plugin-%ld-run-%d.log", CM_TEST_TMP, (long)getpid(), seq++);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        execv(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (out && out_size) {
        out[0] = '\0';
        FILE *f = fopen(log, "r");
        if (f) {
            size_t n = fread(out, 1, out_size - 1, f);
            out[n] = '\0';
            fclose(f);
        }
    }
    unlink(log);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Runs cm-pipeline --plugin CMT_PLUGIN --db db followed by args (NULL-terminated). */
static inline int cmt_pipeline_argv(char *out, size_t out_size, const char *db,
                                    const char *const *args)
{
    char *argv[48];
    int n = 0;
    argv[n++] = (char *)CMT_PIPELINE;
    argv[n++] = (char *)"--plugin";
    argv[n++] = (char *)CMT_PLUGIN;
    argv[n++] = (char *)"--db";
    argv[n++] = (char *)db;
    for (; *args && n < 47; args++)
        argv[n++] = (char *)*args;
    argv[n] = NULL;
    int rc = cmt_runv(out, out_size, argv);
    if (getenv("CMT_VERBOSE") && out)
        fprintf(stderr, "--- exit %d\n%s", rc, out);
    return rc;
}

/* The same with the arguments listed, ending with NULL. */
static inline int cmt_pipeline(char *out, size_t out_size, const char *db, ...)
{
    const char *args[40];
    int n = 0;
    va_list ap;
    va_start(ap, db);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 39)
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    return cmt_pipeline_argv(out, out_size, db, args);
}

/* Runs cm-ledger --db db followed by the given arguments (NULL-terminated). */
static inline int cmt_ledger(char *out, size_t out_size, const char *db, ...)
{
    char *argv[40];
    int n = 0;
    argv[n++] = (char *)CMT_LEDGER;
    argv[n++] = (char *)"--db";
    argv[n++] = (char *)db;
    va_list ap;
    va_start(ap, db);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 39)
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    return cmt_runv(out, out_size, argv);
}

/* A fresh ledger at db, made with the cm-ledger CLI: workspace ws owned by "owner"
 * with member "member" and credits add-on credits. Returns 0 on success. */
static inline int cmt_ledger_setup(const char *db, const char *ws, int64_t credits)
{
    unlink(db);
    char side[600], out[1024], n[32];
    snprintf(side, sizeof side, "%s-wal", db);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", db);
    unlink(side);
    snprintf(n, sizeof n, "%lld", (long long)credits);
    int rc = cmt_ledger(out, sizeof out, db, "workspace", "create", ws, "--owner", "owner",
                        (const char *)NULL);
    if (rc == 0)
        rc = cmt_ledger(out, sizeof out, db, "member", "add", ws, "member", "--as", "owner",
                        (const char *)NULL);
    if (rc == 0 && credits > 0)
        rc = cmt_ledger(out, sizeof out, db, "buy", ws, n, "--as", "owner", (const char *)NULL);
    if (rc != 0)
        fprintf(stderr, "ledger setup failed (%d): %s\n", rc, out);
    return rc;
}

/* Available (and held, when held != NULL) credits of ws, read with cm-ledger balance
 * ("workspace WS: N available, M held"). -1 on failure. */
static inline int64_t cmt_available(const char *db, const char *ws, int64_t *held)
{
    char out[4096];
    if (cmt_ledger(out, sizeof out, db, "balance", ws, (const char *)NULL) != 0)
        return -1;
    const char *colon = strstr(out, ": ");
    long long avail = -1, h = -1;
    if (!colon || sscanf(colon, ": %lld available, %lld held", &avail, &h) != 2)
        return -1;
    if (held)
        *held = h;
    return avail;
}

/* The hold state of job (enum cm_ledger_hold_state) and its charge, read with
 * cm-ledger job ("job J in WS by U: STATE, N credits held, C charged, ..."; "1 credit
 * held"); -1 when there is no such job. */
static inline int cmt_job_state(const char *db, const char *job, int64_t *charged)
{
    char out[4096], state[32], word[16];
    if (cmt_ledger(out, sizeof out, db, "job", job, (const char *)NULL) != 0)
        return -1;
    const char *colon = strstr(out, ": ");
    long long held = 0, ch = 0;
    if (!colon ||
        sscanf(colon, ": %31[a-z], %lld %15s held, %lld charged", state, &held, word, &ch) != 4 ||
        strcmp(word, held == 1 ? "credit" : "credits") != 0)
        return -1;
    if (charged)
        *charged = ch;
    static const char *names[] = {"", "held", "committed", "released", "lapsed"};
    for (int i = 1; i <= 4; i++)
        if (strcmp(state, names[i]) == 0)
            return i;
    return -1;
}

/* Does the ledger's own invariant check (cm-ledger check) pass? 0 when it does. */
static inline int cmt_ledger_check(const char *db)
{
    char out[4096];
    int rc = cmt_ledger(out, sizeof out, db, "check", (const char *)NULL);
    if (rc != 0)
        fprintf(stderr, "ledger check: %s\n", out);
    return rc;
}

#endif /* TEST_PLUGIN_UTIL_H */
