/* SPDX-License-Identifier: MIT */
/*
 * bench_keepalive - lease renewals per second the ledger sustains for a plugin handle's
 * keepalive (issue 15): JOBS running holds renewed ROUNDS times,
 *
 *   batch     cm_ledger_renew_many: all the jobs in ONE write transaction per tick (what
 *             the plugin's keepalive thread does)
 *   baseline  cm_ledger_renew: one write transaction per job per tick (what a keepalive
 *             without a batch call would do)
 *
 * both on the same ledger in the same run, synchronous FULL (the default). With a URI
 * (postgresql://...) the same on PostgreSQL. Not a test: it prints figures.
 *
 * usage: bench_keepalive [JOBS [ROUNDS [DIR|URI]]]   (default 1000 jobs, 5 rounds, DIR .)
 */
#include "cm_ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void check(cm_ledger *l, int rc, const char *what)
{
    if (rc != CM_LEDGER_OK) {
        fprintf(stderr, "bench_keepalive: %s: %s: %s\n", what, cm_ledger_err_name(rc),
                cm_ledger_errmsg(l));
        exit(1);
    }
}

int main(int argc, char **argv)
{
    int jobs = argc > 1 ? atoi(argv[1]) : 1000;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    const char *where = argc > 3 ? argv[3] : ".";
    if (jobs < 1 || rounds < 1) {
        fprintf(stderr, "usage: bench_keepalive [JOBS [ROUNDS [DIR|URI]]]\n");
        return 2;
    }
    int pg = strncmp(where, "postgres", 8) == 0;
    char path[4096];
    if (pg)
        snprintf(path, sizeof path, "%s", where);
    else
        snprintf(path, sizeof path, "%s/bench-keepalive-%ld.db", where, (long)getpid());
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.location = path;
    cfg.create = 1;
    cm_ledger *l = NULL;
    check(NULL, cm_ledger_open(&l, &cfg), "open");
    char ws[64];
    snprintf(ws, sizeof ws, "ka%ld", (long)getpid());
    check(l, cm_ledger_workspace_create(l, ws, "owner", NULL), "workspace");
    check(l, cm_ledger_buy(l, ws, jobs, "owner", NULL, NULL), "buy");
    char **ids = calloc((size_t)jobs, sizeof *ids);
    int *res = calloc((size_t)jobs, sizeof *res);
    if (!ids || !res)
        return 1;
    for (int i = 0; i < jobs; i++) {
        ids[i] = malloc(96);
        snprintf(ids[i], 96, "%s-job-%06d", ws, i);
        check(l, cm_ledger_reserve(l, ws, ids[i], 1, "owner", 600, NULL), "reserve");
    }

    double t0 = now_s();
    for (int r = 0; r < rounds; r++) {
        check(l, cm_ledger_renew_many(l, (const char *const *)ids, (size_t)jobs, 600, res),
              "renew_many");
        for (int i = 0; i < jobs; i++)
            if (res[i] != CM_LEDGER_OK) {
                fprintf(stderr, "bench_keepalive: job %d not renewed: %s\n", i,
                        cm_ledger_err_name(res[i]));
                return 1;
            }
    }
    double batch = now_s() - t0;

    t0 = now_s();
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < jobs; i++)
            check(l, cm_ledger_renew(l, ids[i], 600, NULL), "renew");
    double single = now_s() - t0;

    double n = (double)jobs * rounds;
    printf("bench_keepalive: %d running jobs x %d ticks on %s (%s, synchronous FULL)\n", jobs,
           rounds, pg ? "PostgreSQL" : "SQLite", pg ? "server" : path);
    printf("%-34s %14s %14s %12s\n", "", "renewals/s", "tick (ms)", "ledger tx");
    printf("%-34s %14.0f %14.1f %12d\n", "batch: renew_many, 1 tx per tick", n / batch,
           batch / rounds * 1000, rounds);
    printf("%-34s %14.0f %14.1f %12d\n", "baseline: renew, 1 tx per job", n / single,
           single / rounds * 1000, rounds * jobs);
    printf("speed-up: %.1fx; one tick of %d jobs takes %.3f%% of a 40 s tick period (120 s "
           "lease / 3) batched, %.1f%% unbatched\n",
           single / batch, jobs, batch / rounds / 40 * 100, single / rounds / 40 * 100);
    check(l, cm_ledger_check(l), "check");
    for (int i = 0; i < jobs; i++)
        free(ids[i]);
    free(ids);
    free(res);
    cm_ledger_close(l);
    if (!pg) {
        unlink(path);
        char side[4200];
        snprintf(side, sizeof side, "%s-wal", path);
        unlink(side);
        snprintf(side, sizeof side, "%s-shm", path);
        unlink(side);
    }
    return 0;
}
