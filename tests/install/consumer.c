/* SPDX-License-Identifier: MIT */
/*
 * consumer.c - a program outside the tree that embeds the installed creditmeter:
 * built by tests/install/install_test.sh with pkg-config and with find_package, against
 * the installed headers (<creditmeter/...>) and shared libraries only.
 *
 *   consumer SAMPLE.mp4 LEDGER.db
 *
 * Probes the sample (clip-40s.mp4: 1 credit), then on a new SQLite ledger creates a
 * workspace, buys 10 credits, reserves the probe's price for a job and commits it, and
 * checks the balance (9) and the ledger's invariants. Exits 0 and prints one line when
 * every step gave what it should, 1 with the failing step otherwise.
 */
#include <creditmeter/cm_ledger.h>
#include <creditmeter/cm_probe.h>
#include <creditmeter/cm_version.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "consumer: ");                                                         \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv)
{
    CHECK(argc == 3, "usage: consumer SAMPLE LEDGER.db");
    CHECK(strcmp(cm_probe_version(), CM_VERSION_STRING) == 0, "probe library %s, header %s",
          cm_probe_version(), CM_VERSION_STRING);
    CHECK(strcmp(cm_ledger_version(), CM_VERSION_STRING) == 0, "ledger library %s, header %s",
          cm_ledger_version(), CM_VERSION_STRING);

    cm_probe *p = NULL;
    CHECK(cm_probe_new(&p, NULL) == CM_PROBE_OK, "cm_probe_new failed");
    cm_probe_report *r = NULL;
    int rc = cm_probe_file(p, argv[1], &r);
    CHECK(rc == CM_PROBE_OK, "probe %s: %s (%s)", argv[1], cm_probe_err_name(rc),
          r ? cm_probe_report_errmsg(r) : "");
    int64_t credits = cm_probe_report_credits(r);
    int64_t measured = cm_probe_report_measured_ms(r);
    cm_probe_report_free(r);
    cm_probe_free(p);
    CHECK(credits == 1, "probe: %" PRId64 " credits for %s, expected 1", credits, argv[1]);

    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.location = argv[2];
    cfg.create = 1; /* a new ledger: creation is explicit */
    cm_ledger *l = NULL;
    rc = cm_ledger_open(&l, &cfg);
    CHECK(rc == CM_LEDGER_OK, "open %s: %s (%s)", argv[2], cm_ledger_err_name(rc),
          cm_ledger_errmsg(NULL));
    rc = cm_ledger_workspace_create(l, "acme", "alice", NULL);
    if (rc == CM_LEDGER_OK)
        rc = cm_ledger_buy(l, "acme", 10, "alice", "pay-1", NULL);
    if (rc == CM_LEDGER_OK)
        rc = cm_ledger_reserve(l, "acme", "job-1", credits, "alice", 60, NULL);
    if (rc == CM_LEDGER_OK)
        rc = cm_ledger_commit(l, "job-1", CM_LEDGER_ALL, NULL);
    CHECK(rc == CM_LEDGER_OK, "ledger: %s (%s)", cm_ledger_err_name(rc), cm_ledger_errmsg(l));
    cm_ledger_balance_result *b = NULL;
    rc = cm_ledger_balance(l, "acme", "alice", &b);
    CHECK(rc == CM_LEDGER_OK && b->available == 10 - credits, "balance: %s",
          cm_ledger_err_name(rc));
    int64_t available = b->available;
    cm_ledger_balance_free(b);
    rc = cm_ledger_check(l);
    CHECK(rc == CM_LEDGER_OK, "check: %s", cm_ledger_errmsg(l));
    cm_ledger_close(l);

    printf("consumer: creditmeter %s: %" PRId64 " ms measured, %" PRId64 " credit charged, %" PRId64
           " left\n",
           CM_VERSION_STRING, measured, credits, available);
    return 0;
}
