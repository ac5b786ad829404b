/* SPDX-License-Identifier: MIT */
/*
 * test_plugin_util.h - helpers of the plugin's end-to-end tests: run the real
 * cm-pipeline (and cm-ledger) binaries, found by their targets (CM_BIN_*), through
 * test_proc.h, set up ledgers, and read them back as cm-ledger --json documents.
 *
 * Ledgers are set up and read with the cm-ledger CLI; the jobs only ever go through the
 * cm-pipeline binary and the plugin it loads. Hold states are the ledger's numbers
 * (1 held, 2 committed, 3 released, 4 lapsed), as in cm_ledger.h.
 */
#ifndef TEST_PLUGIN_UTIL_H
#define TEST_PLUGIN_UTIL_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_proc.h"

/* The programs, found by target (tests/CMakeLists.txt: $<TARGET_FILE:...>). */
#define CMT_PIPELINE CM_BIN_PIPELINE
#define CMT_PLUGIN CM_BIN_PLUGIN
#define CMT_LEDGER CM_BIN_LEDGER
#define CMT_SAMPLE(name) CM_SAMPLES_DIR "/" name

/* When set, cmt_ledger runs cm-ledger with --now cmt_ledger_now (the ledger's clock
 * replaced, as the CLI allows): the tests move time instead of waiting for it. */
static const char *cmt_ledger_now;

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
    return cmt_proc_run(argv, out, out_size, NULL, 0);
}

/* ---- reading cm-ledger --json (the documents are cm-ledger's: no escapes in the
 * fields read here, which are names, numbers, times and null) ---- */

/* Past the JSON value at p (string, number, literal, object or array). */
static inline const char *cmt_json_skip(const char *p)
{
    int depth = 0;
    do {
        while (*p == ' ' || *p == '\n')
            p++;
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++)
                if (*p == '\\' && p[1])
                    p++;
            if (*p)
                p++;
        } else if (*p == '{' || *p == '[') {
            depth++;
            p++;
        } else if (*p == '}' || *p == ']') {
            depth--;
            p++;
        } else if (*p == ',' || *p == ':') {
            p++;
        } else if (*p) {
            while (*p && !strchr(" \n,:{}[]\"", *p))
                p++;
        }
    } while (*p && depth > 0);
    return p;
}

/* The value of member key of the JSON object at obj ('{'; members of that object only,
 * not of nested ones) into val: a string without its quotes, anything else as written.
 * Returns 0, or -1 when the object has no such member. */
static inline int cmt_json_member(const char *obj, const char *key, char *val, size_t n)
{
    const char *p = strchr(obj, '{');
    if (!p)
        return -1;
    p++;
    size_t klen = strlen(key);
    for (;;) {
        while (*p == ' ' || *p == '\n' || *p == ',')
            p++;
        if (*p != '"')
            return -1;
        const char *k = p + 1;
        p = cmt_json_skip(p);
        int match = (size_t)(p - k - 1) == klen && strncmp(k, key, klen) == 0;
        while (*p == ' ' || *p == ':')
            p++;
        const char *v = p;
        p = cmt_json_skip(p);
        if (match) {
            if (*v == '"') {
                v++;
                size_t len = (size_t)(p - v - 1);
                snprintf(val, n, "%.*s", (int)len, v);
            } else {
                snprintf(val, n, "%.*s", (int)(p - v), v);
            }
            return 0;
        }
    }
}

/* The integer member key of the object at obj; -1 when absent or not an integer. */
static inline long long cmt_json_int(const char *obj, const char *key)
{
    char v[64], *end;
    if (cmt_json_member(obj, key, v, sizeof v) != 0)
        return -1;
    long long x = strtoll(v, &end, 10);
    return end != v && *end == '\0' ? x : -1;
}

/* Runs cm-pipeline --plugin CMT_PLUGIN --ledger db followed by args (NULL-terminated). */
static inline int cmt_pipeline_argv(char *out, size_t out_size, const char *db,
                                    const char *const *args)
{
    char *argv[48];
    int n = 0;
    argv[n++] = (char *)CMT_PIPELINE;
    argv[n++] = (char *)"--plugin";
    argv[n++] = (char *)CMT_PLUGIN;
    argv[n++] = (char *)"--ledger";
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

/* Runs cm-ledger --ledger db followed by the given arguments (NULL-terminated). */
static inline int cmt_ledger(char *out, size_t out_size, const char *db, ...)
{
    char *argv[40];
    int n = 0;
    argv[n++] = (char *)CMT_LEDGER;
    argv[n++] = (char *)"--ledger";
    argv[n++] = (char *)db;
    if (cmt_ledger_now) {
        argv[n++] = (char *)"--now";
        argv[n++] = (char *)cmt_ledger_now;
    }
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
    int rc = cmt_ledger(out, sizeof out, db, "init", (const char *)NULL); /* explicit creation */
    if (rc == 0)
        rc = cmt_ledger(out, sizeof out, db, "workspace", "create", ws, "--owner", "owner",
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

/* Available (and held, when held != NULL) credits of ws, read with cm-ledger --json
 * balance. -1 on failure. */
static inline int64_t cmt_available(const char *db, const char *ws, int64_t *held)
{
    char out[8192];
    if (cmt_ledger(out, sizeof out, db, "--json", "balance", ws, (const char *)NULL) != 0)
        return -1;
    long long avail = cmt_json_int(out, "available"), h = cmt_json_int(out, "held");
    if (avail < 0 || h < 0)
        return -1;
    if (held)
        *held = h;
    return avail;
}

/* The hold state of job (enum cm_ledger_hold_state) and its charge, read with
 * cm-ledger --json job; -1 when there is no such job. */
static inline int cmt_job_state(const char *db, const char *job, int64_t *charged)
{
    char out[8192], state[32];
    if (cmt_ledger(out, sizeof out, db, "--json", "job", job, (const char *)NULL) != 0)
        return -1;
    long long ch = cmt_json_int(out, "charged");
    if (cmt_json_member(out, "state", state, sizeof state) != 0 || ch < 0 ||
        cmt_json_int(out, "credits") < 0)
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

/* ---- a fixture for cmocka setup/teardown: one ledger, an output and its thumbnail ---- */

typedef struct cmt_fixture {
    char db[512], out[512], thumb[512];
    char log[16384];
} cmt_fixture;

/* Allocates *state, names the files after prefix (prefix.db, prefix.mp4, prefix.png)
 * and sets up workspace ws with credits. Returns 0 or -1. */
static inline int cmt_fixture_setup(void **state, const char *prefix, const char *ws,
                                    int64_t credits)
{
    cmt_fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    char name[128];
    snprintf(name, sizeof name, "%s.db", prefix);
    cmt_path(f->db, sizeof f->db, name);
    snprintf(name, sizeof name, "%s.mp4", prefix);
    cmt_path(f->out, sizeof f->out, name);
    snprintf(name, sizeof name, "%s.png", prefix);
    cmt_path(f->thumb, sizeof f->thumb, name);
    *state = f;
    return cmt_ledger_setup(f->db, ws, credits);
}

/* Checks the ledger (returns -1 when cm-ledger check fails), removes the files, frees. */
static inline int cmt_fixture_teardown(void **state)
{
    cmt_fixture *f = *state;
    int rc = cmt_ledger_check(f->db) == 0 ? 0 : -1;
    unlink(f->db);
    unlink(f->out);
    unlink(f->thumb);
    free(f);
    return rc;
}

#endif /* TEST_PLUGIN_UTIL_H */
