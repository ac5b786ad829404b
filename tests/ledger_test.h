/*
 * ledger_test.h - helpers for the ledger's cmocka tests (not part of the library).
 *
 * Each test gets its own database under CM_TEST_TMP named after the test and the
 * process id, and a fake clock it moves by hand (lt_at), so months and leases pass
 * without sleeping.
 */
#ifndef CM_LEDGER_TEST_H
#define CM_LEDGER_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cm_ledger.h"

typedef struct lt_env {
    cm_ledger *l;
    int64_t now_ms;
    char path[512];
} lt_env;

static int64_t lt_clock(void *user)
{
    return ((lt_env *)user)->now_ms;
}

static inline int64_t lt_time(const char *iso)
{
    int64_t ms = 0;
    if (cm_ledger_time_parse(iso, &ms) != CM_LEDGER_OK)
        fail_msg("bad time literal %s", iso);
    return ms;
}

static inline void lt_at(lt_env *e, const char *iso)
{
    e->now_ms = lt_time(iso);
}

static inline void lt_unlink_db(const char *path)
{
    char p[600];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

static inline void lt_db_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/ledger-%s-%ld.db", CM_TEST_TMP, name, (long)getpid());
}

static inline cm_ledger *lt_open_path(lt_env *e, const char *path)
{
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.db = path;
    cfg.now_ms = lt_clock;
    cfg.clock_user = e;
    cfg.busy_timeout_ms = 10000;
    cm_ledger *l = NULL;
    int rc = cm_ledger_open(&l, &cfg);
    if (rc)
        fail_msg("cm_ledger_open(%s): %s: %s", path, cm_ledger_err_name(rc), cm_ledger_errmsg(NULL));
    return l;
}

static inline void lt_open(lt_env *e, const char *name)
{
    memset(e, 0, sizeof *e);
    lt_db_path(e->path, sizeof e->path, name);
    lt_unlink_db(e->path);
    e->now_ms = lt_time("2026-01-31T12:00:00Z");
    e->l = lt_open_path(e, e->path);
}

static inline void lt_close(lt_env *e)
{
    if (e->l) {
        int rc = cm_ledger_check(e->l);
        if (rc)
            fail_msg("check at teardown: %s", cm_ledger_errmsg(e->l));
        cm_ledger_close(e->l);
    }
    lt_unlink_db(e->path);
    e->l = NULL;
}

/* Assert a call's code, printing the ledger's sentence when it differs. */
#define LT_EXPECT(e, code, call)                                                                   \
    do {                                                                                           \
        int lt_rc_ = (call);                                                                       \
        if (lt_rc_ != (code))                                                                      \
            fail_msg("%s returned %s (%s), expected %s", #call, cm_ledger_err_name(lt_rc_),         \
                     cm_ledger_errmsg((e)->l), cm_ledger_err_name(code));                          \
    } while (0)
#define LT_OK(e, call) LT_EXPECT(e, CM_LEDGER_OK, call)

static inline int64_t lt_available(lt_env *e, const char *ws)
{
    cm_ledger_balance_result *b = NULL;
    LT_OK(e, cm_ledger_balance(e->l, ws, NULL, &b));
    int64_t a = b->available;
    cm_ledger_balance_free(b);
    return a;
}

static inline int64_t lt_held(lt_env *e, const char *ws)
{
    cm_ledger_balance_result *b = NULL;
    LT_OK(e, cm_ledger_balance(e->l, ws, NULL, &b));
    int64_t a = b->held;
    cm_ledger_balance_free(b);
    return a;
}

/* A workspace "acme" owned by alice with bob as a member. */
static inline void lt_workspace(lt_env *e)
{
    LT_OK(e, cm_ledger_workspace_create(e->l, "acme", "alice", NULL));
    LT_OK(e, cm_ledger_member_add(e->l, "acme", "bob", "alice"));
}

static inline int lt_state(lt_env *e, const char *job)
{
    cm_ledger_job *j = NULL;
    LT_OK(e, cm_ledger_job_info(e->l, job, &j));
    int s = j->state;
    cm_ledger_job_free(j);
    return s;
}

#endif
