/*
 * test_plugin_util.h - helpers of the plugin's end-to-end tests: run the real
 * cm-pipeline (and cm-ledger) binaries from CM_BUILD_DIR and set up ledgers.
 *
 * Ledgers are set up and read through cm_ledger.h (the ledger's own contract); the
 * jobs themselves only ever go through the cm-pipeline binary and the plugin it loads.
 */
#ifndef TEST_PLUGIN_UTIL_H
#define TEST_PLUGIN_UTIL_H

#include "cm_ledger.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CMT_PIPELINE CM_BUILD_DIR "/plugin/cm-pipeline"
#define CMT_PLUGIN CM_BUILD_DIR "/plugin/libcreditmeter_plugin.so"
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

/* Runs cm-pipeline --plugin CMT_PLUGIN --db db followed by the given arguments. */
static inline int cmt_pipeline(char *out, size_t out_size, const char *db, ...)
{
    char *argv[40];
    int n = 0;
    argv[n++] = (char *)CMT_PIPELINE;
    argv[n++] = (char *)"--plugin";
    argv[n++] = (char *)CMT_PLUGIN;
    argv[n++] = (char *)"--db";
    argv[n++] = (char *)db;
    va_list ap;
    va_start(ap, db);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 39)
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    int rc = cmt_runv(out, out_size, argv);
    if (getenv("CMT_VERBOSE") && out)
        fprintf(stderr, "--- exit %d\n%s", rc, out);
    return rc;
}

/* A fresh ledger at db: workspace ws owned by "owner" with member "member" and
 * credits add-on credits. Returns 0 on success. */
static inline int cmt_ledger_setup(const char *db, const char *ws, int64_t credits)
{
    unlink(db);
    char side[600];
    snprintf(side, sizeof side, "%s-wal", db);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", db);
    unlink(side);
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.db = db;
    cm_ledger *l = NULL;
    int rc = cm_ledger_open(&l, &cfg);
    if (rc == CM_LEDGER_OK)
        rc = cm_ledger_workspace_create(l, ws, "owner", NULL);
    if (rc == CM_LEDGER_OK)
        rc = cm_ledger_member_add(l, ws, "member", "owner");
    if (rc == CM_LEDGER_OK && credits > 0)
        rc = cm_ledger_buy(l, ws, credits, "owner", NULL, NULL);
    if (rc != CM_LEDGER_OK)
        fprintf(stderr, "ledger setup: %s: %s\n", cm_ledger_err_name(rc), cm_ledger_errmsg(l));
    cm_ledger_close(l);
    return rc;
}

/* Available (and held, when held != NULL) credits of ws, read by the operator. */
static inline int64_t cmt_available(const char *db, const char *ws, int64_t *held)
{
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.db = db;
    cm_ledger *l = NULL;
    int64_t avail = -1;
    cm_ledger_balance_result *b = NULL;
    if (cm_ledger_open(&l, &cfg) == CM_LEDGER_OK &&
        cm_ledger_balance(l, ws, NULL, &b) == CM_LEDGER_OK) {
        avail = b->available;
        if (held)
            *held = b->held;
    }
    cm_ledger_balance_free(b);
    cm_ledger_close(l);
    return avail;
}

/* The hold state of job (enum cm_ledger_hold_state) and its charge; -1 when none. */
static inline int cmt_job_state(const char *db, const char *job, int64_t *charged)
{
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.db = db;
    cm_ledger *l = NULL;
    cm_ledger_job *j = NULL;
    int state = -1;
    if (cm_ledger_open(&l, &cfg) == CM_LEDGER_OK &&
        cm_ledger_job_info(l, job, &j) == CM_LEDGER_OK) {
        state = j->state;
        if (charged)
            *charged = j->charged;
    }
    cm_ledger_job_free(j);
    cm_ledger_close(l);
    return state;
}

/* Does the ledger's own invariant check pass? */
static inline int cmt_ledger_check(const char *db)
{
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.db = db;
    cm_ledger *l = NULL;
    int rc = cm_ledger_open(&l, &cfg);
    if (rc == CM_LEDGER_OK)
        rc = cm_ledger_check(l);
    if (rc != CM_LEDGER_OK)
        fprintf(stderr, "ledger check: %s\n", cm_ledger_errmsg(l));
    cm_ledger_close(l);
    return rc;
}

#endif /* TEST_PLUGIN_UTIL_H */
