/* SPDX-License-Identifier: MIT */
/*
 * bench_ledger_renew - lease renewals per second the ledger sustains for a keepalive
 * that renews JOBS running jobs every tick: cm_ledger_renew_many (all of them in one
 * write transaction) beside the baseline measured in the same run, cm_ledger_renew once
 * per job (one transaction each), on the same ledger and the same jobs.
 *
 * Not a test: it prints figures. The ledger is a fresh one (SQLite file in DIR, or a
 * PostgreSQL URI as LOCATION; bench/ledger_pg.sh shows how to start a throwaway server),
 * synchronous FULL.
 *
 * usage: bench_ledger_renew [JOBS [TICKS [LOCATION]]]
 *        (default 1000 jobs, 5 ticks, ./bench-renew.db)
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

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_ledger_renew: %s: %s\n", what, msg);
    exit(1);
}

int main(int argc, char **argv)
{
    int jobs = argc > 1 ? atoi(argv[1]) : 1000;
    int ticks = argc > 2 ? atoi(argv[2]) : 5;
    const char *loc = argc > 3 ? argv[3] : "./bench-renew.db";
    if (jobs < 1 || ticks < 1)
        die("usage", "bench_ledger_renew [JOBS [TICKS [LOCATION]]]");
    int pg = !strncmp(loc, "postgres", 8);
    if (!pg) {
        unlink(loc);
        char p[600];
        snprintf(p, sizeof p, "%s-wal", loc);
        unlink(p);
        snprintf(p, sizeof p, "%s-shm", loc);
        unlink(p);
    }
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.location = loc;
    cfg.create = 1;
    cfg.busy_timeout_ms = 60000;
    cm_ledger *l;
    if (cm_ledger_open(&l, &cfg))
        die("open", cm_ledger_errmsg(NULL));
    if (cm_ledger_workspace_create(l, "bench", "owner", NULL) ||
        cm_ledger_buy(l, "bench", (int64_t)jobs * 10, "owner", NULL, NULL))
        die("setup", cm_ledger_errmsg(l));
    char **names = calloc((size_t)jobs, sizeof *names);
    int *results = calloc((size_t)jobs, sizeof *results);
    if (!names || !results)
        die("setup", "out of memory");
    for (int i = 0; i < jobs; i++) {
        names[i] = malloc(32);
        if (!names[i])
            die("setup", "out of memory");
        snprintf(names[i], 32, "job-%06d", i);
        if (cm_ledger_reserve(l, "bench", names[i], 1, "owner", 3600, NULL))
            die("reserve", cm_ledger_errmsg(l));
    }
    printf("bench_ledger_renew: %d held jobs, %d ticks, %s\n", jobs, ticks,
           pg ? "PostgreSQL" : "SQLite (synchronous FULL)");
    /* baseline: one transaction per job per tick */
    double t0 = now_s();
    for (int t = 0; t < ticks; t++)
        for (int i = 0; i < jobs; i++)
            if (cm_ledger_renew(l, names[i], 3600, NULL))
                die("renew", cm_ledger_errmsg(l));
    double single = now_s() - t0;
    /* renew_many: one transaction per tick */
    t0 = now_s();
    for (int t = 0; t < ticks; t++) {
        if (cm_ledger_renew_many(l, (const char *const *)names, (size_t)jobs, 3600, results))
            die("renew_many", cm_ledger_errmsg(l));
        for (int i = 0; i < jobs; i++)
            if (results[i])
                die("renew_many", cm_ledger_err_name(results[i]));
    }
    double many = now_s() - t0;
    double n = (double)jobs * ticks;
    printf("  baseline cm_ledger_renew, 1 transaction per job:  %9.0f renewals/s  "
           "(a tick of %d jobs: %8.1f ms)\n",
           n / single, jobs, single / ticks * 1000);
    printf("  cm_ledger_renew_many, 1 transaction per tick:     %9.0f renewals/s  "
           "(a tick of %d jobs: %8.1f ms)  %.1fx\n",
           n / many, jobs, many / ticks * 1000, single / many);
    if (cm_ledger_check(l))
        die("check", cm_ledger_errmsg(l));
    for (int i = 0; i < jobs; i++)
        free(names[i]);
    free(names);
    free(results);
    cm_ledger_close(l);
    return 0;
}
