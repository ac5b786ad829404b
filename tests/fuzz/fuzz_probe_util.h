/* SPDX-License-Identifier: MIT */
/*
 * fuzz_probe_util.h - what the probe's libFuzzer harnesses share: a probe made with
 * tight limits, overridable from the environment for reproducing a finding.
 */
#ifndef FUZZ_PROBE_UTIL_H
#define FUZZ_PROBE_UTIL_H

#include "cm_probe.h"

#include <stdio.h>
#include <stdlib.h>

/* The positive integer in environment variable name, else dflt. */
static inline int64_t fuzz_env_i64(const char *name, int64_t dflt)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return dflt;
    char *end;
    long long v = strtoll(s, &end, 10);
    return (*end || v <= 0) ? dflt : (int64_t)v;
}

/* A probe with a time budget of CM_FUZZ_BUDGET_MS (default budget_ms) and at most
   max_packets scanned, the oracle alone when full_scan; aborts when it cannot be made
   (a harness cannot run without it). Fills *opt with the options used. */
static inline cm_probe *fuzz_probe_new(int64_t budget_ms, int64_t max_packets, int full_scan,
                                       cm_probe_options *opt)
{
    cm_probe_options_init(opt);
    opt->time_budget_ms = fuzz_env_i64("CM_FUZZ_BUDGET_MS", budget_ms);
    opt->max_scan_packets = max_packets;
    opt->full_scan = full_scan;
    cm_probe *p = NULL;
    if (cm_probe_new(&p, opt) != CM_PROBE_OK) {
        fprintf(stderr, "fuzz: cm_probe_new failed\n");
        abort();
    }
    return p;
}

#endif
