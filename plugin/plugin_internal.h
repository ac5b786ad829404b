/* SPDX-License-Identifier: MIT */
/*
 * plugin_internal.h - the plugin handle and its helpers (internal).
 *
 * A handle joins one probe (immutable, thread-safe) and one ledger handle
 * (thread-safe), plus a table of the jobs begun on it and the details of its last
 * failure, both guarded by the handle's mutex. The mutex is never held across a
 * probe or ledger call, so jobs in different threads measure and bill in parallel.
 */
#ifndef CM_PLUGIN_INTERNAL_H
#define CM_PLUGIN_INTERNAL_H

#include "creditmeter_plugin.h"

#include "cm_ledger.h"
#include "cm_probe.h"

#include <pthread.h>

#define CMP_HIDDEN __attribute__((visibility("hidden")))

/* One job between job_begin and the end of job_end. */
typedef struct cmp_job {
    struct cmp_job *next;
    char *id;
    int billing;            /* enum cm_plugin_billing */
    int64_t credits;        /* the quote, held */
    int64_t lease_s;        /* renewed to this at every hook */
    int committed;          /* the hold was already charged when the job began (a retry) */
    int64_t lease_until_ms; /* the hold's lease end as the ledger last reported it */
    int64_t requested_ms;   /* by output: the length asked for; -1 by input */
} cmp_job;

struct cm_plugin {
    cm_ledger *ledger;
    cm_probe *probe;
    int64_t grace_ms;
    int64_t default_lease_s;
    void (*log)(void *user, int level, const char *message);
    void *log_user;
    int64_t (*now_ms)(void *user); /* the ledger's clock (NULL: real time) */
    void *clock_user;
    pthread_mutex_t mu; /* guards jobs and last */
    cmp_job *jobs;
    cm_plugin_error_info last;
};

/* Records the failure on the handle (for last_error) and returns code. */
CMP_HIDDEN int cmp_fail(cm_plugin *p, int code, int cause, int cause_code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
CMP_HIDDEN void cmp_log(cm_plugin *p, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Maps a ledger code to the plugin's family. */
CMP_HIDDEN int cmp_from_ledger(int ledger_code);
/* Copies a result struct into a host's, up to the smaller of the two sizes (never a
 * byte at or beyond the host's struct_size); the host's struct_size is kept. */
CMP_HIDDEN void cmp_copy_out(void *host, const void *full, size_t full_size);
/* Reads a host's input struct into full, which already holds the defaults: the bytes
 * the host has, up to what this plugin knows (a newer host's larger struct: its unknown
 * tail is not read; an older host's smaller one: the fields it lacks keep their
 * defaults). Returns 0, or -1 when the host's struct_size is below min_size (the 1.0
 * size). */
CMP_HIDDEN int cmp_copy_in(void *full, size_t full_size, const void *host, size_t min_size);
/* The host's struct_size of a struct that starts with one. */
CMP_HIDDEN uint32_t cmp_size_of(const void *host);
/* The ledger's hold states, the probe's methods and the ledger's grant kinds, mapped
 * one by one to the plugin's enums (NONE, or 0, for a value the plugin does not know). */
CMP_HIDDEN int cmp_hold_state(int ledger_state);
CMP_HIDDEN int cmp_method(enum cm_probe_method m);
CMP_HIDDEN int cmp_grant_kind(int ledger_kind);
CMP_HIDDEN void cmp_strlcpy(char *dst, const char *src, size_t size);
/* Now on the ledger's clock, Unix ms. */
CMP_HIDDEN int64_t cmp_now_ms(const cm_plugin *p);

CMP_HIDDEN const char *cmp_err_name(int code);
CMP_HIDDEN const char *cmp_cause_name(int cause, int code);

/* The hooks (plugin_job.c). */
CMP_HIDDEN int cmp_job_begin(cm_plugin *p, const cm_plugin_job_spec *spec, cm_plugin_quote *q);
CMP_HIDDEN int cmp_stage_begin(cm_plugin *p, const char *job, const char *stage);
CMP_HIDDEN int cmp_stage_end(cm_plugin *p, const char *job, const char *stage, int ok,
                             const char *message);
CMP_HIDDEN int cmp_job_end(cm_plugin *p, const char *job, int ok, const char *output_path,
                           cm_plugin_outcome *outcome);
CMP_HIDDEN void cmp_jobs_free(cm_plugin *p);
/* ABI 1.1: measure and price without holding (plugin_job.c). */
CMP_HIDDEN int cmp_quote(cm_plugin *p, const cm_plugin_job_spec *spec, cm_plugin_quote *q);

#endif /* CM_PLUGIN_INTERNAL_H */
