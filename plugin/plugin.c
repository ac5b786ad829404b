/* SPDX-License-Identifier: MIT */
/*
 * plugin.c - the entry point, the function table, open/close, queries and names.
 *
 * cm_plugin_entry is the only symbol the shared library exports (everything else is
 * compiled with -fvisibility=hidden and the link applies plugin/exports.map). The
 * table is a constant: the plugin's own code keeps no global mutable state; all state
 * lives in a handle. What the probe and ledger linked into it keep is said in
 * creditmeter_plugin.h (Threading).
 *
 * ABI compatibility (plugin/ABI.md): every struct a host passes is read through
 * cmp_copy_in and written through cmp_copy_out, so a struct_size from the 1.0 size up
 * to any larger (newer) one is served, and nothing at or beyond it is touched; the
 * 1.0 layouts are frozen below and checked field by field at compile time.
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

uint32_t cmp_size_of(const void *host)
{
    uint32_t n;
    memcpy(&n, host, sizeof n);
    return n;
}

int cmp_copy_in(void *full, size_t full_size, const void *host, size_t min_size)
{
    uint32_t host_size = cmp_size_of(host);
    if (host_size < min_size)
        return -1;
    size_t n = host_size < full_size ? host_size : full_size;
    memcpy((char *)full + sizeof(uint32_t), (const char *)host + sizeof(uint32_t),
           n - sizeof(uint32_t));
    return 0;
}

/* ---- the plugin's enums from the probe's and the ledger's ------------------------ */

/* Where the values coincide the maps are the identity, and these say so; the switches
 * still name each value, so that a value added on either side is not passed through. */
_Static_assert((int)CM_PLUGIN_HOLD_HELD == (int)CM_LEDGER_HELD &&
                   (int)CM_PLUGIN_HOLD_COMMITTED == (int)CM_LEDGER_COMMITTED &&
                   (int)CM_PLUGIN_HOLD_RELEASED == (int)CM_LEDGER_RELEASED &&
                   (int)CM_PLUGIN_HOLD_LAPSED == (int)CM_LEDGER_LAPSED,
               "hold states: the plugin's and the ledger's values coincide");
_Static_assert((int)CM_PLUGIN_METHOD_NONE == (int)CM_PROBE_METHOD_NONE &&
                   (int)CM_PLUGIN_METHOD_MP4_INDEX == (int)CM_PROBE_METHOD_MP4_INDEX &&
                   (int)CM_PLUGIN_METHOD_TAIL_PACKETS == (int)CM_PROBE_METHOD_TAIL_PACKETS &&
                   (int)CM_PLUGIN_METHOD_PACKET_SCAN == (int)CM_PROBE_METHOD_PACKET_SCAN &&
                   (int)CM_PLUGIN_METHOD_STRUCTURE_WALK == (int)CM_PROBE_METHOD_STRUCTURE_WALK,
               "methods: the plugin's and the probe's values coincide");
_Static_assert((int)CM_PLUGIN_GRANT_PLAN == (int)CM_LEDGER_GRANT_PLAN &&
                   (int)CM_PLUGIN_GRANT_ADDON == (int)CM_LEDGER_GRANT_ADDON &&
                   (int)CM_PLUGIN_GRANT_REFUND == (int)CM_LEDGER_GRANT_REFUND,
               "grant kinds: the plugin's and the ledger's values coincide");

int cmp_hold_state(int ledger_state)
{
    switch (ledger_state) {
    case CM_LEDGER_HELD:
        return CM_PLUGIN_HOLD_HELD;
    case CM_LEDGER_COMMITTED:
        return CM_PLUGIN_HOLD_COMMITTED;
    case CM_LEDGER_RELEASED:
        return CM_PLUGIN_HOLD_RELEASED;
    case CM_LEDGER_LAPSED:
        return CM_PLUGIN_HOLD_LAPSED;
    default:
        return CM_PLUGIN_HOLD_NONE;
    }
}

int cmp_method(enum cm_probe_method m)
{
    switch (m) {
    case CM_PROBE_METHOD_MP4_INDEX:
        return CM_PLUGIN_METHOD_MP4_INDEX;
    case CM_PROBE_METHOD_TAIL_PACKETS:
        return CM_PLUGIN_METHOD_TAIL_PACKETS;
    case CM_PROBE_METHOD_PACKET_SCAN:
        return CM_PLUGIN_METHOD_PACKET_SCAN;
    case CM_PROBE_METHOD_STRUCTURE_WALK:
        return CM_PLUGIN_METHOD_STRUCTURE_WALK;
    case CM_PROBE_METHOD_NONE:
        break;
    }
    return CM_PLUGIN_METHOD_NONE;
}

int cmp_grant_kind(int ledger_kind)
{
    switch (ledger_kind) {
    case CM_LEDGER_GRANT_PLAN:
        return CM_PLUGIN_GRANT_PLAN;
    case CM_LEDGER_GRANT_ADDON:
        return CM_PLUGIN_GRANT_ADDON;
    case CM_LEDGER_GRANT_REFUND:
        return CM_PLUGIN_GRANT_REFUND;
    default:
        return 0;
    }
}

int64_t cmp_now_ms(const cm_plugin *p)
{
    if (p->now_ms)
        return p->now_ms(p->clock_user);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int vfail(cm_plugin *p, const cm__ev *ev, int code, int cause, int cause_code,
                 const char *fmt, va_list ap)
{
    if (!p)
        return code;
    char msg[sizeof p->last.message];
    vsnprintf(msg, sizeof msg, fmt, ap);
    pthread_mutex_lock(&p->mu);
    p->last.code = code;
    p->last.cause = cause;
    p->last.cause_code = cause_code;
    memcpy(p->last.message, msg, sizeof msg);
    pthread_mutex_unlock(&p->mu);
    cm__ev e = *ev;
    e.code = code;
    e.cause = cause;
    e.cause_code = cause_code;
    cm__log_event(p, cm__level_of(code), &e, "%s", msg);
    return code;
}

int cmp_fail(cm_plugin *p, int code, int cause, int cause_code, const char *fmt, ...)
{
    cm__ev ev = {.event = "call_failed", .credits = -1};
    va_list ap;
    va_start(ap, fmt);
    vfail(p, &ev, code, cause, cause_code, fmt, ap);
    va_end(ap);
    return code;
}

int cm__fail_ev(cm_plugin *p, const cm__ev *ev, int code, int cause, int cause_code,
                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(p, ev, code, cause, cause_code, fmt, ap);
    va_end(ap);
    return code;
}

int cmp_from_ledger(int code)
{
    switch (code) {
    case CM_LEDGER_OK:
        return CM_PLUGIN_OK;
    case CM_LEDGER_E_INSUFFICIENT:
        return CM_PLUGIN_E_INSUFFICIENT;
    case CM_LEDGER_E_FORBIDDEN:
    case CM_LEDGER_E_NO_WORKSPACE:
        return CM_PLUGIN_E_FORBIDDEN;
    case CM_LEDGER_E_NO_JOB:
        return CM_PLUGIN_E_NO_JOB;
    case CM_LEDGER_E_CONFLICT:
        return CM_PLUGIN_E_CONFLICT;
    case CM_LEDGER_E_ALREADY_RESOLVED:
        return CM_PLUGIN_E_JOB_CLOSED;
    case CM_LEDGER_E_LEASE_EXPIRED:
        return CM_PLUGIN_E_LEASE_LAPSED;
    case CM_LEDGER_E_INVALID:
        return CM_PLUGIN_E_INVALID;
    case CM_LEDGER_E_NOMEM:
        return CM_PLUGIN_E_NOMEM;
    case CM_LEDGER_E_JOB_CLOSED:
        return CM_PLUGIN_E_JOB_CLOSED;
    case CM_LEDGER_E_NO_LEDGER:
        return CM_PLUGIN_E_NO_LEDGER;
    default:
        return CM_PLUGIN_E_LEDGER;
    }
}

/* ---- open / close ---------------------------------------------------------- */

static int plugin_open(const cm_plugin_config *host_cfg, cm_plugin **out, cm_plugin_error_info *err)
{
    cm_plugin_error_info e = {sizeof e, CM_PLUGIN_OK, 0, 0, ""};
    int code = CM_PLUGIN_OK;
    cm_plugin *p = NULL;
    cm_plugin_config c; /* the host's config over the defaults of the fields it lacks */
    const cm_plugin_config *cfg = &c;
    cm_plugin_config_init(&c);
    if (out)
        *out = NULL;
    if (!host_cfg || !out) {
        code = CM_PLUGIN_E_INVALID;
        cmp_strlcpy(e.message, "open needs a config and an out pointer", sizeof e.message);
        goto done;
    }
    if (cmp_copy_in(&c, sizeof c, host_cfg, CM_PLUGIN_CONFIG_SIZE_1_0) != 0) {
        code = CM_PLUGIN_E_ABI;
        snprintf(e.message, sizeof e.message, "config struct_size %u is smaller than ABI 1.0's %zu",
                 (unsigned)host_cfg->struct_size, (size_t)CM_PLUGIN_CONFIG_SIZE_1_0);
        goto done;
    }
    if (!cfg->ledger || !cfg->ledger[0] || cfg->default_lease_s < 0 ||
        cfg->probe_max_duration_ms < 0 || cfg->probe_time_budget_ms < 0 ||
        cfg->probe_max_file_bytes < 0 || cfg->ledger_busy_timeout_ms < 0) {
        code = CM_PLUGIN_E_INVALID;
        cmp_strlcpy(e.message, "config: no ledger location, or a negative limit", sizeof e.message);
        goto done;
    }
    if (strcmp(cm__log_level_name(cfg->log_min_level), "unknown") == 0 ||
        (cfg->create != 0 && cfg->create != 1) ||
        (cfg->keepalive_divisor != -1 && cfg->keepalive_divisor != 0 &&
         (cfg->keepalive_divisor < 2 || cfg->keepalive_divisor > 100))) {
        code = CM_PLUGIN_E_INVALID;
        snprintf(e.message, sizeof e.message,
                 "config: log_min_level %d is not a level, create %d is not 0 or 1, or "
                 "keepalive_divisor %d is not -1, 0 or 2 to 100",
                 cfg->log_min_level, cfg->create, cfg->keepalive_divisor);
        goto done;
    }
    if (cfg->ledger_pool_size < 0 || cfg->ledger_pool_size > CM_PLUGIN_MAX_LEDGER_POOL) {
        code = CM_PLUGIN_E_INVALID;
        snprintf(e.message, sizeof e.message,
                 "config: ledger_pool_size %d is not 0 (the default, %d connections) or 1 to %d",
                 cfg->ledger_pool_size, CM_PLUGIN_DEFAULT_LEDGER_POOL, CM_PLUGIN_MAX_LEDGER_POOL);
        goto done;
    }
    p = calloc(1, sizeof *p);
    if (!p) {
        code = CM_PLUGIN_E_NOMEM;
        cmp_strlcpy(e.message, "out of memory", sizeof e.message);
        goto done;
    }
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        p = NULL;
        code = CM_PLUGIN_E_NOMEM;
        cmp_strlcpy(e.message, "out of memory", sizeof e.message);
        goto done;
    }
    if (pthread_mutex_init(&p->metrics_mu, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        p = NULL;
        code = CM_PLUGIN_E_NOMEM;
        cmp_strlcpy(e.message, "out of memory", sizeof e.message);
        goto done;
    }
    p->last.struct_size = sizeof p->last;
    p->log = cfg->log;
    p->log_user = cfg->log_user;
    p->log_record = cfg->log_record;
    p->log_min_level = cfg->log_min_level;
    p->now_ms = cfg->now_ms;
    p->clock_user = cfg->clock_user;
    p->default_lease_s =
        cfg->default_lease_s > 0 ? cfg->default_lease_s : CM_PLUGIN_DEFAULT_LEASE_S;
    p->keepalive_divisor = cfg->keepalive_divisor == 0    ? 3
                           : cfg->keepalive_divisor == -1 ? 0
                                                          : cfg->keepalive_divisor;

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
        snprintf(e.message, sizeof e.message, "probe options refused: %s", cm_probe_strerror(rc));
        goto done;
    }

    cm_ledger_config lc;
    cm_ledger_config_init(&lc);
    lc.location = cfg->ledger;
    lc.now_ms = cfg->now_ms;
    lc.clock_user = cfg->clock_user;
    lc.create = cfg->create;
    if (cfg->ledger_busy_timeout_ms > 0)
        lc.busy_timeout_ms = cfg->ledger_busy_timeout_ms;
    rc = cm__pool_open(
        &p->pool, cfg->ledger_pool_size > 0 ? cfg->ledger_pool_size : CM_PLUGIN_DEFAULT_LEDGER_POOL,
        &lc);
    if (rc != CM_LEDGER_OK) {
        /* a location without a ledger (create=0) is the host's mistake to fix, not a
         * storage failure */
        code = rc == CM_LEDGER_E_NO_LEDGER                ? CM_PLUGIN_E_NO_LEDGER
               : cmp_from_ledger(rc) == CM_PLUGIN_E_NOMEM ? CM_PLUGIN_E_NOMEM
                                                          : CM_PLUGIN_E_LEDGER;
        e.cause = CM_PLUGIN_CAUSE_LEDGER;
        e.cause_code = rc;
        if (code == CM_PLUGIN_E_NO_LEDGER)
            snprintf(e.message, sizeof e.message,
                     "no ledger at %s (set create=1 in the plugin config to create a new one): "
                     "%s",
                     cfg->ledger, cm_ledger_errmsg(NULL));
        else
            snprintf(e.message, sizeof e.message, "cannot open the ledger %s: %s", cfg->ledger,
                     cm_ledger_errmsg(NULL));
        goto done;
    }
    if (cm__keepalive_start(p) != 0) {
        code = CM_PLUGIN_E_NOMEM;
        cmp_strlcpy(e.message, "cannot start the keepalive thread", sizeof e.message);
        goto done;
    }
done:
    e.code = code;
    if (code != CM_PLUGIN_OK && p) {
        cm__pool_close(&p->pool);
        cm_probe_free(p->probe);
        pthread_mutex_destroy(&p->metrics_mu);
        pthread_mutex_destroy(&p->mu);
        free(p);
        p = NULL;
    }
    if (code == CM_PLUGIN_OK) {
        char keepalive[64] = "no keepalive (hooks renew)";
        if (p->keepalive_divisor)
            snprintf(keepalive, sizeof keepalive, "renewed every lease / %d", p->keepalive_divisor);
        cm__ev ev = {.event = "open", .credits = -1};
        cm__log_event(p, CM_PLUGIN_LOG_INFO, &ev,
                      "plugin %s (ABI %u.%u) opened ledger %s; default lease %lld s, %s; up to "
                      "%d ledger connections",
                      CM_VERSION_STRING, CM_PLUGIN_ABI_MAJOR, CM_PLUGIN_ABI_MINOR, cfg->ledger,
                      (long long)p->default_lease_s, keepalive, p->pool.size);
    } else if (host_cfg && cmp_copy_in(&c, sizeof c, host_cfg, CM_PLUGIN_CONFIG_SIZE_1_0) == 0 &&
               (c.log_record || c.log)) {
        /* no handle: a stack one just to deliver the record through the host's callbacks */
        cm_plugin tmp;
        memset(&tmp, 0, sizeof tmp);
        tmp.log = c.log;
        tmp.log_user = c.log_user;
        tmp.log_record = c.log_record;
        tmp.log_min_level = strcmp(cm__log_level_name(c.log_min_level), "unknown")
                                ? c.log_min_level
                                : CM_PLUGIN_LOG_DEBUG;
        tmp.now_ms = c.now_ms;
        tmp.clock_user = c.clock_user;
        cm__ev ev = {.event = "open_failed",
                     .code = code,
                     .cause = e.cause,
                     .cause_code = e.cause_code,
                     .credits = -1};
        cm__log_event(&tmp, cm__level_of(code), &ev, "%s", e.message);
    }
    if (err && err->struct_size >= CM_PLUGIN_ERROR_INFO_SIZE_1_0)
        cmp_copy_out(err, &e, sizeof e);
    if (out)
        *out = p;
    return code;
}

static void plugin_close(cm_plugin *p)
{
    if (!p)
        return;
    cm__keepalive_stop(p);
    cm__ev ev = {.event = "close", .credits = -1};
    cm__log_event(p, CM_PLUGIN_LOG_INFO, &ev, "plugin handle closed");
    cmp_jobs_free(p);
    cm__pool_close(&p->pool);
    cm_probe_free(p->probe);
    pthread_mutex_destroy(&p->metrics_mu);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* ---- queries --------------------------------------------------------------- */

static int plugin_balance(cm_plugin *p, const char *ws, const char *user, cm_plugin_balance *out)
{
    if (!p || !ws || !ws[0] || !out)
        return cmp_fail(p, CM_PLUGIN_E_INVALID, 0, 0, "balance: no workspace or out struct");
    if (out->struct_size < CM_PLUGIN_BALANCE_SIZE_1_0)
        return cmp_fail(p, CM_PLUGIN_E_ABI, 0, 0, "balance: out struct_size below ABI 1.0");
    cm_ledger_balance_result *b = NULL;
    char why[CM__WHY];
    cm_ledger *l = cm__ledger_get(p);
    int64_t t0 = cm__mono_ns();
    int rc = cm_ledger_balance(l, ws, user, &b);
    cm__ledger_timed(p, CM__LC_BALANCE, t0, rc);
    cm__ledger_put(p, l, rc, why, sizeof why);
    if (rc != CM_LEDGER_OK)
        return cmp_fail(p, cmp_from_ledger(rc), CM_PLUGIN_CAUSE_LEDGER, rc, "balance of %s: %s", ws,
                        why);
    cm_plugin_balance r = {.struct_size = sizeof r, .available = b->available, .held = b->held};
    cm_ledger_balance_free(b);
    cmp_copy_out(out, &r, sizeof r);
    return CM_PLUGIN_OK;
}

static int plugin_job_state(cm_plugin *p, const char *job, cm_plugin_job_state *out)
{
    if (!p || !job || !job[0] || !out)
        return cmp_fail(p, CM_PLUGIN_E_INVALID, 0, 0, "job_state: no job id or out struct");
    if (out->struct_size < CM_PLUGIN_JOB_STATE_SIZE_1_0)
        return cmp_fail(p, CM_PLUGIN_E_ABI, 0, 0, "job_state: out struct_size below ABI 1.0");
    cm_ledger_job *j = NULL;
    char why[CM__WHY];
    cm_ledger *l = cm__ledger_get(p);
    int64_t t0 = cm__mono_ns();
    int rc = cm_ledger_job_info(l, job, &j);
    cm__ledger_timed(p, CM__LC_JOB_INFO, t0, rc);
    cm__ledger_put(p, l, rc, why, sizeof why);
    if (rc != CM_LEDGER_OK)
        return cmp_fail(p, cmp_from_ledger(rc), CM_PLUGIN_CAUSE_LEDGER, rc, "job %s: %s", job, why);
    cm_plugin_job_state s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    s.hold_state = cmp_hold_state(j->state);
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
    if (!p || !out)
        return CM_PLUGIN_E_INVALID;
    if (out->struct_size < CM_PLUGIN_ERROR_INFO_SIZE_1_0)
        return CM_PLUGIN_E_ABI;
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
    case CM_PLUGIN_OK:
        return "ok";
    case CM_PLUGIN_E_INVALID:
        return "invalid_argument";
    case CM_PLUGIN_E_NOMEM:
        return "out_of_memory";
    case CM_PLUGIN_E_INSUFFICIENT:
        return "insufficient_credits";
    case CM_PLUGIN_E_FORBIDDEN:
        return "forbidden";
    case CM_PLUGIN_E_BAD_FILE:
        return "bad_file";
    case CM_PLUGIN_E_CONFLICT:
        return "conflict";
    case CM_PLUGIN_E_JOB_CLOSED:
        return "job_closed";
    case CM_PLUGIN_E_LEASE_LAPSED:
        return "lease_lapsed";
    case CM_PLUGIN_E_NO_JOB:
        return "no_such_job";
    case CM_PLUGIN_E_BAD_OUTPUT:
        return "bad_output";
    case CM_PLUGIN_E_LEDGER:
        return "ledger_failure";
    case CM_PLUGIN_E_ABI:
        return "abi_mismatch";
    case CM_PLUGIN_E_NO_LEDGER:
        return "no_such_ledger";
    default:
        return "unknown";
    }
}

static const char *plugin_strerror(int code)
{
    switch (code) {
    case CM_PLUGIN_OK:
        return "Success.";
    case CM_PLUGIN_E_INVALID:
        return "An argument is missing or out of range.";
    case CM_PLUGIN_E_NOMEM:
        return "Out of memory.";
    case CM_PLUGIN_E_INSUFFICIENT:
        return "The workspace has not enough credits for this job.";
    case CM_PLUGIN_E_FORBIDDEN:
        return "The user is not a member of this workspace, or it does not exist.";
    case CM_PLUGIN_E_BAD_FILE:
        return "The input file was refused by the probe.";
    case CM_PLUGIN_E_CONFLICT:
        return "This job id was already used with other arguments.";
    case CM_PLUGIN_E_JOB_CLOSED:
        return "This job id's hold was already given back; use a new job id.";
    case CM_PLUGIN_E_LEASE_LAPSED:
        return "The job's hold lapsed and its credits went back; the job must stop.";
    case CM_PLUGIN_E_NO_JOB:
        return "No such job.";
    case CM_PLUGIN_E_BAD_OUTPUT:
        return "The job's output could not be measured; nothing was charged.";
    case CM_PLUGIN_E_LEDGER:
        return "The ledger failed; the call may be retried.";
    case CM_PLUGIN_E_ABI:
        return "A structure's size does not match this plugin's ABI.";
    case CM_PLUGIN_E_NO_LEDGER:
        return "There is no ledger at that location; set create=1 to make a new one.";
    default:
        return "Unknown error.";
    }
}

const char *cmp_cause_name(int cause, int code)
{
    switch (cause) {
    case CM_PLUGIN_CAUSE_PROBE:
        return cm_probe_err_name(code);
    case CM_PLUGIN_CAUSE_LEDGER:
        return cm_ledger_err_name(code);
    default:
        return code == 0 ? "ok" : "unknown";
    }
}

static const char *plugin_hold_state_name(int state)
{
    switch (state) {
    case CM_PLUGIN_HOLD_NONE:
        return "none";
    case CM_PLUGIN_HOLD_HELD:
        return "held";
    case CM_PLUGIN_HOLD_COMMITTED:
        return "committed";
    case CM_PLUGIN_HOLD_RELEASED:
        return "released";
    case CM_PLUGIN_HOLD_LAPSED:
        return "lapsed";
    default:
        return "unknown";
    }
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
    .metrics = cm__metrics_text,
    .ping = cm__ping,
    .log_level_name = cm__log_level_name,
};

CM_PLUGIN_EXPORT const cm_plugin_api *cm_plugin_entry(uint32_t host_abi_major,
                                                      uint32_t host_abi_minor)
{
    if (host_abi_major != CM_PLUGIN_ABI_MAJOR || host_abi_minor > CM_PLUGIN_ABI_MINOR)
        return NULL;
    return &plugin_api;
}

/* ---- the 1.0 layout, frozen ----------------------------------------------------------
 * Copies of the structs as ABI 1.0 defined them. Every 1.0 field of today's struct must
 * sit at the same offset with the same size, and every CM_PLUGIN_..._SIZE_1_0 must be
 * the 1.0 sizeof: a field inserted, removed, reordered or retyped fails to compile. */

typedef struct cmp_config_1_0 {
    uint32_t struct_size;
    const char *ledger;
    int64_t grace_ms, default_lease_s, probe_max_duration_ms, probe_time_budget_ms,
        probe_max_file_bytes;
    int64_t (*now_ms)(void *user);
    void *clock_user;
    void (*log)(void *user, int level, const char *message);
    void *log_user;
    int ledger_busy_timeout_ms;
} cmp_config_1_0;

typedef struct cmp_job_spec_1_0 {
    uint32_t struct_size;
    const char *job, *workspace, *user;
    int billing;
    const char *input_path;
    int64_t requested_output_ms, lease_s;
} cmp_job_spec_1_0;

typedef struct cmp_quote_1_0 {
    uint32_t struct_size;
    int64_t credits, measured_ms, declared_ms, billable_ms;
    int method;
    char method_name[24];
    char note[160];
    int hold_state, replayed;
    int64_t lease_until_ms, available;
    int cause, cause_code;
    char message[256];
} cmp_quote_1_0;

typedef struct cmp_outcome_1_0 {
    uint32_t struct_size;
    int hold_state;
    int64_t quoted, charged, output_ms;
    int replayed, cause, cause_code;
    char message[256];
} cmp_outcome_1_0;

typedef struct cmp_balance_1_0 {
    uint32_t struct_size;
    int64_t available, held;
} cmp_balance_1_0;

typedef struct cmp_job_state_1_0 {
    uint32_t struct_size;
    int hold_state;
    int64_t credits, charged, refunded, lease_until_ms, resolved_ms;
    char workspace[128], user[128];
} cmp_job_state_1_0;

typedef struct cmp_error_info_1_0 {
    uint32_t struct_size;
    int code, cause, cause_code;
    char message[256];
} cmp_error_info_1_0;

typedef struct cmp_api_1_0 {
    uint32_t abi_major, abi_minor, struct_size;
    const char *version;
    int (*open)(const cm_plugin_config *, cm_plugin **, cm_plugin_error_info *);
    void (*close)(cm_plugin *);
    int (*job_begin)(cm_plugin *, const cm_plugin_job_spec *, cm_plugin_quote *);
    int (*stage_begin)(cm_plugin *, const char *, const char *);
    int (*stage_end)(cm_plugin *, const char *, const char *, int, const char *);
    int (*job_end)(cm_plugin *, const char *, int, const char *, cm_plugin_outcome *);
    int (*balance)(cm_plugin *, const char *, const char *, cm_plugin_balance *);
    int (*job_state)(cm_plugin *, const char *, cm_plugin_job_state *);
    int (*last_error)(const cm_plugin *, cm_plugin_error_info *);
    const char *(*err_name)(int);
    const char *(*strerror)(int);
    const char *(*cause_name)(int, int);
    const char *(*hold_state_name)(int);
} cmp_api_1_0;

#define CMP_SAME(T, F)                                                                             \
    _Static_assert(offsetof(T, F) == offsetof(T##_1_0_, F) &&                                      \
                       sizeof(((T *)0)->F) == sizeof(((T##_1_0_ *)0)->F),                          \
                   #T "." #F " moved or changed since ABI 1.0")
#define CMP_SIZE(T, SIZE) _Static_assert(SIZE == sizeof(T##_1_0_), #SIZE " is not the ABI 1.0 size")

typedef cmp_config_1_0 cm_plugin_config_1_0_;
typedef cmp_job_spec_1_0 cm_plugin_job_spec_1_0_;
typedef cmp_quote_1_0 cm_plugin_quote_1_0_;
typedef cmp_outcome_1_0 cm_plugin_outcome_1_0_;
typedef cmp_balance_1_0 cm_plugin_balance_1_0_;
typedef cmp_job_state_1_0 cm_plugin_job_state_1_0_;
typedef cmp_error_info_1_0 cm_plugin_error_info_1_0_;
typedef cmp_api_1_0 cm_plugin_api_1_0_;

CMP_SIZE(cm_plugin_config, CM_PLUGIN_CONFIG_SIZE_1_0);
CMP_SAME(cm_plugin_config, struct_size);
CMP_SAME(cm_plugin_config, ledger);
CMP_SAME(cm_plugin_config, grace_ms);
CMP_SAME(cm_plugin_config, default_lease_s);
CMP_SAME(cm_plugin_config, probe_max_duration_ms);
CMP_SAME(cm_plugin_config, probe_time_budget_ms);
CMP_SAME(cm_plugin_config, probe_max_file_bytes);
CMP_SAME(cm_plugin_config, now_ms);
CMP_SAME(cm_plugin_config, clock_user);
CMP_SAME(cm_plugin_config, log);
CMP_SAME(cm_plugin_config, log_user);
CMP_SAME(cm_plugin_config, ledger_busy_timeout_ms);

CMP_SIZE(cm_plugin_job_spec, CM_PLUGIN_JOB_SPEC_SIZE_1_0);
CMP_SAME(cm_plugin_job_spec, struct_size);
CMP_SAME(cm_plugin_job_spec, job);
CMP_SAME(cm_plugin_job_spec, workspace);
CMP_SAME(cm_plugin_job_spec, user);
CMP_SAME(cm_plugin_job_spec, billing);
CMP_SAME(cm_plugin_job_spec, input_path);
CMP_SAME(cm_plugin_job_spec, requested_output_ms);
CMP_SAME(cm_plugin_job_spec, lease_s);

CMP_SIZE(cm_plugin_quote, CM_PLUGIN_QUOTE_SIZE_1_0);
CMP_SAME(cm_plugin_quote, struct_size);
CMP_SAME(cm_plugin_quote, credits);
CMP_SAME(cm_plugin_quote, measured_ms);
CMP_SAME(cm_plugin_quote, declared_ms);
CMP_SAME(cm_plugin_quote, billable_ms);
CMP_SAME(cm_plugin_quote, method);
CMP_SAME(cm_plugin_quote, method_name);
CMP_SAME(cm_plugin_quote, note);
CMP_SAME(cm_plugin_quote, hold_state);
CMP_SAME(cm_plugin_quote, replayed);
CMP_SAME(cm_plugin_quote, lease_until_ms);
CMP_SAME(cm_plugin_quote, available);
CMP_SAME(cm_plugin_quote, cause);
CMP_SAME(cm_plugin_quote, cause_code);
CMP_SAME(cm_plugin_quote, message);
_Static_assert(CM_PLUGIN_QUOTE_SIZE_1_1 == sizeof(cm_plugin_quote),
               "cm_plugin_quote grew after 1.1: freeze CM_PLUGIN_QUOTE_SIZE_1_1 at the first new "
               "field");

CMP_SIZE(cm_plugin_outcome, CM_PLUGIN_OUTCOME_SIZE_1_0);
CMP_SAME(cm_plugin_outcome, struct_size);
CMP_SAME(cm_plugin_outcome, hold_state);
CMP_SAME(cm_plugin_outcome, quoted);
CMP_SAME(cm_plugin_outcome, charged);
CMP_SAME(cm_plugin_outcome, output_ms);
CMP_SAME(cm_plugin_outcome, replayed);
CMP_SAME(cm_plugin_outcome, cause);
CMP_SAME(cm_plugin_outcome, cause_code);
CMP_SAME(cm_plugin_outcome, message);

CMP_SIZE(cm_plugin_balance, CM_PLUGIN_BALANCE_SIZE_1_0);
CMP_SAME(cm_plugin_balance, struct_size);
CMP_SAME(cm_plugin_balance, available);
CMP_SAME(cm_plugin_balance, held);

CMP_SIZE(cm_plugin_job_state, CM_PLUGIN_JOB_STATE_SIZE_1_0);
CMP_SAME(cm_plugin_job_state, struct_size);
CMP_SAME(cm_plugin_job_state, hold_state);
CMP_SAME(cm_plugin_job_state, credits);
CMP_SAME(cm_plugin_job_state, charged);
CMP_SAME(cm_plugin_job_state, refunded);
CMP_SAME(cm_plugin_job_state, lease_until_ms);
CMP_SAME(cm_plugin_job_state, resolved_ms);
CMP_SAME(cm_plugin_job_state, workspace);
CMP_SAME(cm_plugin_job_state, user);

CMP_SIZE(cm_plugin_error_info, CM_PLUGIN_ERROR_INFO_SIZE_1_0);
CMP_SAME(cm_plugin_error_info, struct_size);
CMP_SAME(cm_plugin_error_info, code);
CMP_SAME(cm_plugin_error_info, cause);
CMP_SAME(cm_plugin_error_info, cause_code);
CMP_SAME(cm_plugin_error_info, message);

CMP_SIZE(cm_plugin_api, CM_PLUGIN_API_SIZE_1_0);
CMP_SAME(cm_plugin_api, abi_major);
CMP_SAME(cm_plugin_api, abi_minor);
CMP_SAME(cm_plugin_api, struct_size);
CMP_SAME(cm_plugin_api, version);
CMP_SAME(cm_plugin_api, open);
CMP_SAME(cm_plugin_api, close);
CMP_SAME(cm_plugin_api, job_begin);
CMP_SAME(cm_plugin_api, stage_begin);
CMP_SAME(cm_plugin_api, stage_end);
CMP_SAME(cm_plugin_api, job_end);
CMP_SAME(cm_plugin_api, balance);
CMP_SAME(cm_plugin_api, job_state);
CMP_SAME(cm_plugin_api, last_error);
CMP_SAME(cm_plugin_api, err_name);
CMP_SAME(cm_plugin_api, strerror);
CMP_SAME(cm_plugin_api, cause_name);
CMP_SAME(cm_plugin_api, hold_state_name);
_Static_assert(CM_PLUGIN_API_SIZE_1_1 == offsetof(cm_plugin_api, quote) + sizeof(void *),
               "CM_PLUGIN_API_SIZE_1_1 is not the 1.1 table's size (it ended after quote)");
_Static_assert(CM_PLUGIN_API_SIZE_1_2 == sizeof(cm_plugin_api),
               "cm_plugin_api grew after 1.2: freeze CM_PLUGIN_API_SIZE_1_2 at the first new "
               "function");
_Static_assert(CM_PLUGIN_CONFIG_SIZE_1_2 ==
                   offsetof(cm_plugin_config, reserved_1_2) + sizeof(int32_t),
               "CM_PLUGIN_CONFIG_SIZE_1_2 is not the 1.2 config's size (it ended after "
               "reserved_1_2)");
_Static_assert(CM_PLUGIN_CONFIG_SIZE_1_3 == sizeof(cm_plugin_config),
               "cm_plugin_config grew after 1.3: freeze CM_PLUGIN_CONFIG_SIZE_1_3 at the first "
               "new field");
_Static_assert(offsetof(cm_plugin_config, reserved_1_0) ==
                   offsetof(cm_plugin_config, ledger_busy_timeout_ms) + sizeof(int),
               "reserved_1_0 is the 1.0 config's tail padding");
