/* SPDX-License-Identifier: MIT */
/*
 * ledger_cli_test.h - running the real cm-ledger binary from a cmocka test (not part of
 * the library): cli() runs `cm-ledger --ledger <db> ARGS...` and keeps its exit status,
 * stdout (out) and stderr (err); setup() gives each test a new, explicitly created ledger.
 * Shared by test_ledger_cli and test_ledger_cli_ops (two programs so that each stays
 * well inside ctest's time limit under the sanitizers).
 */
#ifndef CM_LEDGER_CLI_TEST_H
#define CM_LEDGER_CLI_TEST_H

#include "ledger_test.h"
#include "test_proc.h"

#define CLI CM_BIN_LEDGER /* $<TARGET_FILE:cm-ledger> */

static char db[512];
static char out[65536], err[65536];

/* Run cm-ledger --ledger <db> args... ; returns the exit status, fills out/err. */
static int cli(const char *first, ...)
{
    const char *argv[40] = {CLI, "--ledger", db};
    int argc = 3;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 38; a = va_arg(ap, const char *))
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    int rc = cmt_proc_run((char *const *)argv, out, sizeof out, err, sizeof err);
    assert_true(rc >= 0 && rc < 128); /* it exited: not a crash, not a failed fork */
    return rc;
}

#define T0 "--now", "2026-01-31T12:00:00Z"

/* Each test starts from a new ledger, created explicitly (cm_ledger_config.create, in
 * process: one cm-ledger run less per test; `init` itself is tested in
 * test_ledger_cli_ops). */
static int setup(void **state)
{
    (void)state;
    lt_db_path(db, sizeof db, "cli");
    lt_unlink_db(db);
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.location = db;
    cfg.create = 1;
    cm_ledger *l = NULL;
    int rc = cm_ledger_open(&l, &cfg);
    cm_ledger_close(l);
    return rc == CM_LEDGER_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    lt_unlink_db(db);
    return 0;
}

#endif
