/*
 * plugin.c - the entry point, the function table, open/close, queries and names.
 *
 * cm_plugin_entry is the only symbol the shared library exports (everything else is
 * compiled with -fvisibility=hidden and the link applies plugin/exports.map). The
 * table is a constant: the plugin keeps no global mutable state; all state lives in
 * a handle.
 */
#include "plugin_internal.h"
#include "cm_version.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void cmp_strlcpy(char *dst, const char *src, size_t size)
{
    if (size == 0)
        return;
    if (!src)
        src = "";
    size_t n = strlen(src);
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void cmp_copy_out(void *host, const void *full, size_t full_size)
{
    uint32_t host_size;
    memcpy(&host_size, host, sizeof host_size);
    size_t n = host_size < full_size ? host_size : full_size;
    if (n > sizeof(uint32_t))
        memcpy((char *)host + sizeof(uint32_t), (const char *)full + sizeof(uint32_t),
               n - sizeof(uint32_t));
}

int64_t cmp_now_ms(const cm_plugin *p)
{
    if (p->now_ms)
        return p->now_ms(p->clock_user);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cmp_fail(cm_plugin *p, int code, int cause, int cause_code, const char *fmt, ...)
{
    if (!p)
        return code;
    char msg[sizeof p->last.message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&p->mu);
    p->last.code = code;
    p->last.cause = cause;
    p->last.cause_code = cause_code;
    memcpy(p->last.message, msg, sizeof msg);
    pthread_mutex_unlock(&p->mu);
    if (p->log)
        p->log(p->log_user, CM_PLUGIN_LOG_ERROR, msg);
    return code;
}

void cmp_log(cm_plugin *p, int level, const char *fmt, ...)
{
    if (!p->log)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    p->log(p->log_user, level, msg);
}

int cmp_from_ledger(int code)
{
    switch (code) {
    case CM_LEDGER_OK: return CM_PLUGIN_OK;
    case CM_LEDGER_E_INSUFFICIENT: return CM_PLUGIN_E_INSUFFICIENT;
    case CM_LEDGER_E_FORBIDDEN:
    case CM_LEDGER_E_NO_WORKSPACE: return CM_PLUGIN_E_FORBIDDEN;
    case CM_LEDGER_E_NO_JOB: return CM_PLUGIN_E_NO_JOB;
    case CM_LEDGER_E_CONFLICT: return CM_PLUGIN_E_CONFLICT;
    case CM_LEDGER_E_ALREADY_RESOLVED: return CM_PLUGIN_E_JOB_CLOSED;
    case CM_LEDGER_E_LEASE_EXPIRED: return CM_PLUGIN_E_LEASE_LAPSED;
    case CM_LEDGER_E_INVALID: return CM_PLUGIN_E_INVALID;
    case CM_LEDGER_E_NOMEM: return CM_PLUGIN_E_NOMEM;
    case CM_LEDGER_E_JOB_CLOSED: return CM_PLUGIN_E_JOB_CLOSED;
    default: return CM_PLUGIN_E_LEDGER;
    }
}

/* ---- open / close ---------------------------------------------------------- */

static int plugin_open(const cm_plugin_config *cfg, cm_plugin **out, cm_plugin_error_info *err)
{
    cm_plugin_error_info e = {sizeof e, CM_PLUGIN_OK, 0, 0, ""};
    int code = CM_PLUGIN_OK;
    cm_plugin *p = NULL;
    if (out)
        *out = NULL;
    if (!cfg || !out) {
        code = CM_PLUGIN_E_INVALID;
        cmp_strlcpy(e.message, "open needs a config and an out pointer", sizeof e.message);
        goto done;
    }
    if (cfg->struct_size < sizeof(cm_plugin_config)) {
        code = CM_PLUGIN_E_ABI;
        snprintf(e.message, sizeof e.message, "config struct_size %u is smaller than %zu",
                 (unsigned)cfg->struct_size, sizeof(cm_plugin_config));
        goto done;
    }
    if (!cfg->ledger || !cfg->ledger[0] || cfg->default_lease_s < 0 ||
        cfg->probe_max_duration_ms < 0 || cfg->probe_time_budget_ms < 0 ||
        cfg->probe_max_file_bytes < 0 || cfg->ledger_busy_timeout_ms < 0) {
        code = CM_PLUGIN_E_INVALID;
        cmp_strlcpy(e.message, "config: no ledger location, or a negative limit",
                    sizeof e.message);
        goto done;
    }
    p = calloc(1, sizeof *p);
    if (!p || pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        p = NULL;
        code = CM_PLUGIN_E_NOMEM;
        cmp_strlcpy(e.message, "out of memory", sizeof e.message);
        goto done;
    }
    p->last.struct_size = sizeof p->last;
    p->log = cfg->log;
    p->log_user = cfg->log_user;
    p->now_ms = cfg->now_ms;
    p->clock_user = cfg->clock_user;
    p->default_lease_s = cfg->default_lease_s > 0 ? cfg->default_lease_s : CM_LEDGER_DEFAULT_LEASE_S;

    cm_probe_options po;
    po.struct_size = sizeof po;
    cm_probe_options_init(&po);
    if (cfg->grace_ms >= 0)
        po.grace_ms = cfg->grace_ms;
    if (cfg->probe_max_duration_ms > 0)
        po.max_duration_ms = cfg->probe_max_duration_ms;
    if (cfg->probe_time_budget_ms > 0)
        po.time_budget_ms = cfg->probe_time_budget_ms;
    if (cfg->probe_max_file_bytes > 0)
        po.max_file_bytes = cfg->probe_max_file_bytes;
    p->grace_ms = po.grace_ms;
    int rc = cm_probe_new(&p->probe, &po);
    if (rc != CM_PROBE_OK) {
        code = rc == CM_PROBE_E_NOMEM ? CM_PLUGIN_E_NOMEM : CM_PLUGIN_E_INVALID;
        e.cause = CM_PLUGIN_CAUSE_PROBE;
        e.cause_code = rc;
        snprintf(e.message, sizeof e.message, "probe options refused: %s",
                 cm_probe_strerror(rc));
        goto done;
    }

    cm_ledger_config lc;
    cm_ledger_config_init(&lc);
    lc.db = cfg->ledger;
    lc.now_ms = cfg->now_ms;
    lc.clock_user = cfg->clock_user;
    if (cfg->ledger_busy_timeout_ms > 0)
        lc.busy_timeout_ms = cfg->ledger_busy_timeout_ms;
    rc = cm_ledger_open(&p->ledger, &lc);
    if (rc != CM_LEDGER_OK) {
        code = cmp_from_ledger(rc) == CM_PLUGIN_E_NOMEM ? CM_PLUGIN_E_NOMEM : CM_PLUGIN_E_LEDGER;
        e.cause = CM_PLUGIN_CAUSE_LEDGER;
        e.cause_code = rc;
        snprintf(e.message, sizeof e.message, "cannot open the ledger %s: %s", cfg->ledger,
                 cm_ledger_errmsg(NULL));
        goto done;
    }
done:
    e.code = code;
    if (code != CM_PLUGIN_OK && p) {
        cm_probe_free(p->probe);
        pthread_mutex_destroy(&p->mu);
        free(p);
        p = NULL;
    }
    if (err && err->struct_size >= sizeof(uint32_t))
        cmp_copy_out(err, &e, sizeof e);
    if (out)
        *out = p;
    return code;
}

static void plugin_close(cm_plugin *p)
{
    if (!p)
        return;
    cmp_jobs_free(p);
    cm_ledger_close(p->ledger);
    cm_probe_free(p->probe);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* ---- queries --------------------------------------------------------------- */

static int plugin_balance(cm_plugin *p, const char *ws, const char *user, cm_plugin_balance *out)
{
    if (!p || !ws || !ws[0] || !out)
        return cmp_fail(p, CM_PLUGIN_E_INVALID, 0, 0, "balance: no workspace or out struct");
    if (out->struct_size < sizeof(uint32_t))
        return cmp_fail(p, CM_PLUGIN_E_ABI, 0, 0, "balance: out struct_size not set");
    cm_ledger_balance_result *b = NULL;
    int rc = cm_ledger_balance(p->ledger, ws, user, &b);
    if (rc != CM_LEDGER_OK)
        return cmp_fail(p, cmp_from_ledger(rc), CM_PLUGIN_CAUSE_LEDGER, rc, "balance of %s: %s",
                        ws, cm_ledger_errmsg(p->ledger));
    cm_plugin_balance r = {.struct_size = sizeof r, .available = b->available, .held = b->held};
    cm_ledger_balance_free(b);
    cmp_copy_out(out, &r, sizeof r);
    return CM_PLUGIN_OK;
}

static int plugin_job_state(cm_plugin *p, const char *job, cm_plugin_job_state *out)
{
    if (!p || !job || !job[0] || !out)
        return cmp_fail(p, CM_PLUGIN_E_INVALID, 0, 0, "job_state: no job id or out struct");
    if (out->struct_size < sizeof(uint32_t))
        return cmp_fail(p, CM_PLUGIN_E_ABI, 0, 0, "job_state: out struct_size not set");
    cm_ledger_job *j = NULL;
    int rc = cm_ledger_job_info(p->ledger, job, &j);
    if (rc != CM_LEDGER_OK)
        return cmp_fail(p, cmp_from_ledger(rc), CM_PLUGIN_CAUSE_LEDGER, rc, "job %s: %s", job,
                        cm_ledger_errmsg(p->ledger));
    cm_plugin_job_state s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    s.hold_state = j->state;
    s.credits = j->credits;
    s.charged = j->charged;
    s.refunded = j->refunded;
    s.lease_until_ms = j->lease_until_ms;
    s.resolved_ms = j->resolved_ms;
    cmp_strlcpy(s.workspace, j->workspace, sizeof s.workspace);
    cmp_strlcpy(s.user, j->user, sizeof s.user);
    cm_ledger_job_free(j);
    cmp_copy_out(out, &s, sizeof s);
    return CM_PLUGIN_OK;
}

static int plugin_last_error(const cm_plugin *p, cm_plugin_error_info *out)
{
    if (!p || !out || out->struct_size < sizeof(uint32_t))
        return CM_PLUGIN_E_INVALID;
    cm_plugin *mp = (cm_plugin *)p; /* the mutex is the only thing touched */
    pthread_mutex_lock(&mp->mu);
    cm_plugin_error_info copy = p->last;
    pthread_mutex_unlock(&mp->mu);
    cmp_copy_out(out, &copy, sizeof copy);
    return CM_PLUGIN_OK;
}

/* ---- names ------------------------------------------------------------------ */

const char *cmp_err_name(int code)
{
    switch (code) {
    case CM_PLUGIN_OK: return "ok";
    case CM_PLUGIN_E_INVALID: return "invalid_argument";
    case CM_PLUGIN_E_NOMEM: return "out_of_memory";
    case CM_PLUGIN_E_INSUFFICIENT: return "insufficient_credits";
    case CM_PLUGIN_E_FORBIDDEN: return "forbidden";
    case CM_PLUGIN_E_BAD_FILE: return "bad_file";
    case CM_PLUGIN_E_CONFLICT: return "conflict";
    case CM_PLUGIN_E_JOB_CLOSED: return "job_closed";
    case CM_PLUGIN_E_LEASE_LAPSED: return "lease_lapsed";
    case CM_PLUGIN_E_NO_JOB: return "no_such_job";
    case CM_PLUGIN_E_BAD_OUTPUT: return "bad_output";
    case CM_PLUGIN_E_LEDGER: return "ledger_failure";
    case CM_PLUGIN_E_ABI: return "abi_mismatch";
    default: return "unknown";
    }
}

static const char *plugin_strerror(int code)
{
    switch (code) {
    case CM_PLUGIN_OK: return "Success.";
    case CM_PLUGIN_E_INVALID: return "An argument is missing or out of range.";
    case CM_PLUGIN_E_NOMEM: return "Out of memory.";
    case CM_PLUGIN_E_INSUFFICIENT: return "The workspace has not enough credits for this job.";
    case CM_PLUGIN_E_FORBIDDEN:
        return "The user is not a member of this workspace, or it does not exist.";
    case CM_PLUGIN_E_BAD_FILE: return "The input file was refused by the probe.";
    case CM_PLUGIN_E_CONFLICT: return "This job id was already used with other arguments.";
    case CM_PLUGIN_E_JOB_CLOSED:
        return "This job id's hold was already given back; use a new job id.";
    case CM_PLUGIN_E_LEASE_LAPSED:
        return "The job's hold lapsed and its credits went back; the job must stop.";
    case CM_PLUGIN_E_NO_JOB: return "No such job.";
    case CM_PLUGIN_E_BAD_OUTPUT:
        return "The job's output could not be measured; nothing was charged.";
    case CM_PLUGIN_E_LEDGER: return "The ledger failed; the call may be retried.";
    case CM_PLUGIN_E_ABI: return "A structure's size does not match this plugin's ABI.";
    default: return "Unknown error.";
    }
}

const char *cmp_cause_name(int cause, int code)
{
    switch (cause) {
    case CM_PLUGIN_CAUSE_PROBE: return cm_probe_err_name(code);
    case CM_PLUGIN_CAUSE_LEDGER: return cm_ledger_err_name(code);
    default: return code == 0 ? "ok" : "unknown";
    }
}

static const char *plugin_hold_state_name(int state)
{
    return state == CM_PLUGIN_HOLD_NONE ? "none" : cm_ledger_hold_state_name(state);
}

/* ---- the table ------------------------------------------------------------------ */

static const cm_plugin_api plugin_api = {
    .abi_major = CM_PLUGIN_ABI_MAJOR,
    .abi_minor = CM_PLUGIN_ABI_MINOR,
    .struct_size = sizeof(cm_plugin_api),
    .version = CM_VERSION_STRING,
    .open = plugin_open,
    .close = plugin_close,
    .job_begin = cmp_job_begin,
    .stage_begin = cmp_stage_begin,
    .stage_end = cmp_stage_end,
    .job_end = cmp_job_end,
    .balance = plugin_balance,
    .job_state = plugin_job_state,
    .last_error = plugin_last_error,
    .err_name = cmp_err_name,
    .strerror = plugin_strerror,
    .cause_name = cmp_cause_name,
    .hold_state_name = plugin_hold_state_name,
    .quote = cmp_quote,
};

CM_PLUGIN_EXPORT const cm_plugin_api *cm_plugin_entry(uint32_t host_abi_major,
                                                      uint32_t host_abi_minor)
{
    if (host_abi_major != CM_PLUGIN_ABI_MAJOR || host_abi_minor > CM_PLUGIN_ABI_MINOR)
        return NULL;
    return &plugin_api;
}
