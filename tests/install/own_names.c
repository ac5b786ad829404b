/* SPDX-License-Identifier: MIT */
/*
 * own_names.c - a host program with functions of its own named like the ledger's and
 * the probe's internals (cm_run, cm_fail, cm_touch, cm_tx_run, cm_utf8_valid,
 * cm_valid_id): it must link against the installed libraries (shared and static) and
 * run with its own functions called, and the libraries' internals must keep using
 * theirs.
 *
 *   own_names LEDGER.db
 */
#include <creditmeter/cm_ledger.h>

#include <stdio.h>
#include <string.h>

static int calls;

/* Deliberately not static: the names must be free for the program to use. */
int cm_run(int x);
int cm_fail(const char *why);
int cm_touch(void);
int cm_tx_run(void);
int cm_utf8_valid(const char *s);
int cm_valid_id(const char *s);

int cm_run(int x)
{
    calls++;
    return x * 2;
}
int cm_fail(const char *why)
{
    calls++;
    return (int)strlen(why);
}
int cm_touch(void)
{
    return ++calls;
}
int cm_tx_run(void)
{
    return ++calls;
}
int cm_utf8_valid(const char *s)
{
    (void)s;
    return ++calls;
}
int cm_valid_id(const char *s)
{
    (void)s;
    return ++calls;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: own_names LEDGER.db\n");
        return 1;
    }
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.location = argv[1];
    cfg.create = 1;
    cm_ledger *l = NULL;
    int rc = cm_ledger_open(&l, &cfg);
    if (rc == CM_LEDGER_OK)
        rc = cm_ledger_workspace_create(l, "ws", "owner", NULL);
    /* The library's own validation still runs (its cm_valid_id, not ours). */
    int bad = rc == CM_LEDGER_OK ? cm_ledger_workspace_create(l, "", "owner", NULL) : 0;
    cm_ledger_close(l);
    if (rc != CM_LEDGER_OK || bad != CM_LEDGER_E_INVALID) {
        fprintf(stderr, "own_names: ledger %s, empty id gave %s\n", cm_ledger_err_name(rc),
                cm_ledger_err_name(bad));
        return 1;
    }
    if (cm_run(21) != 42 || cm_fail("four") != 4 || cm_touch() != 3 || cm_tx_run() != 4 ||
        cm_utf8_valid("") != 5 || cm_valid_id("") != 6) {
        fprintf(stderr, "own_names: the program's own functions were not the ones called\n");
        return 1;
    }
    printf("own_names: cm_run, cm_fail, cm_touch, cm_tx_run, cm_utf8_valid, cm_valid_id "
           "of the program and the ledger's internals coexist\n");
    return 0;
}
