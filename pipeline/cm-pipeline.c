/* SPDX-License-Identifier: MIT */
/*
 * cm-pipeline - the reference pipeline host: loads the creditmeter plugin with dlopen
 * and runs one real job, stage by stage, billed through the plugin's hooks.
 *
 *   by input:  job_begin (quote printed) -> probe -> transcode -> thumbnail -> job_end
 *   by output: job_begin (quote printed) -> generate -> thumbnail -> job_end
 *
 * It uses only the plugin's function table (creditmeter_plugin.h); it never links the
 * probe or the ledger. Exit status: 0 success, 1 the job was refused or failed,
 * 2 usage error (including a plugin that cannot be loaded or has another ABI).
 *
 * Options come from one table (OPTS below): the parser, --help and the usage errors
 * are all made from it. The plugin's log records go to stderr as text or JSON Lines
 * (--log-format); --metrics FILE writes the plugin's metrics at exit; --ping checks
 * the ledger and exits 0 or 1.
 */
#include "creditmeter_plugin.h"
#include "cm_text.h"
#include "cm_version.h"
#include "cmh_media.h"

#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <libavutil/log.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_REFUSED 1
#define EXIT_USAGE 2

#define MAX_SLEEPS 4

typedef struct opts {
    const char *plugin, *ledger, *workspace, *user, *job, *input, *output, *thumb;
    const char *fail_at, *crash_at;
    const char *generate_arg; /* --generate SECONDS, checked into generate_s */
    double generate_s;        /* > 0: a by-output job */
    int64_t lease_s;
    int64_t grace_ms;
    int64_t clock_offset_s;
    int64_t output_extra_ms; /* by output: make the output this much longer (or shorter) */
    int64_t keepalive_divisor;
    int64_t ledger_timeout_ms;
    int64_t ledger_pool; /* --ledger-pool: the plugin's ledger_pool_size (0: its default) */
    int query_balance, query_job, verbose, json, create, ping;
    int quote_only; /* --quote-only: price the job, hold nothing, run nothing */
    const char *log_format, *log_level, *metrics;
    int log_json;                      /* --log-format json */
    int min_level;                     /* severity 0 debug .. 3 error of the records printed */
    const char *sleep_arg[MAX_SLEEPS]; /* --stage-sleep STAGE:SECONDS */
    int n_sleeps;
    double sleep_s[MAX_SLEEPS];
} opts;

typedef struct run {
    const opts *o;
    const cm_plugin_api *api;
    cm_plugin *p;
    int tty;
    const char *stage;
    double stage_t0;
    int fail_now;     /* the injected failure tripped */
    int last_line_pc; /* plain-line progress: last percent printed */
} run;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int64_t clock_with_offset(void *user)
{
    const int64_t *offset_s = user;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + *offset_s * 1000;
}

/* ---- logs ---------------------------------------------------------------------------- */

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* Severity of a plugin level: debug 0, info 1, warn 2, error 3 (a level this host does
 * not know counts as error). */
static int severity(int level)
{
    return level == CM_PLUGIN_LOG_DEBUG  ? 0
           : level == CM_PLUGIN_LOG_INFO ? 1
           : level == CM_PLUGIN_LOG_WARN ? 2
                                         : 3;
}

static const int plugin_level_of[] = {CM_PLUGIN_LOG_DEBUG, CM_PLUGIN_LOG_INFO, CM_PLUGIN_LOG_WARN,
                                      CM_PLUGIN_LOG_ERROR};

static void json_field(const char *name, const char *v, int first)
{
    fprintf(stderr, "%s\"%s\":", first ? "" : ",", name);
    if (v && v[0])
        cm__json_escape(stderr, v);
    else
        fputs("null", stderr);
}

/* One record: a JSON line, or "plugin: LEVEL EVENT [job J] [CODE]: message". */
static void on_record(void *user, const cm_plugin_log_record *r)
{
    const opts *o = user;
    int sev = severity(r->level);
    if (sev < o->min_level)
        return;
    if (!o->log_json) {
        fprintf(stderr, "plugin: %s %s%s%s%s%s: %s\n", level_names[sev], r->event,
                r->job[0] ? " job " : "", r->job, r->code ? " " : "", r->code ? r->code_name : "",
                r->message);
        return;
    }
    char when[32] = "";
    time_t secs = (time_t)(r->time_ms / 1000);
    struct tm tm;
    if (gmtime_r(&secs, &tm))
        snprintf(when + strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm),
                 sizeof when - strlen(when), ".%03dZ", (int)(r->time_ms % 1000));
    flockfile(stderr);
    fputc('{', stderr);
    json_field("time", when, 1);
    json_field("level", level_names[sev], 0);
    json_field("event", r->event, 0);
    json_field("job", r->job, 0);
    json_field("workspace", r->workspace, 0);
    json_field("user", r->user, 0);
    json_field("code", r->code_name, 0);
    fprintf(stderr, ",\"cause\":%s",
            r->cause == CM_PLUGIN_CAUSE_PROBE    ? "\"probe\""
            : r->cause == CM_PLUGIN_CAUSE_LEDGER ? "\"ledger\""
                                                 : "null");
    fprintf(stderr, ",\"cause_code\":%d", r->cause_code);
    if (r->credits >= 0)
        fprintf(stderr, ",\"credits\":%lld", (long long)r->credits);
    else
        fputs(",\"credits\":null", stderr);
    json_field("message", r->message, 0);
    fputs("}\n", stderr);
    funlockfile(stderr);
}

/* ---- options: one table for the parser, --help and the usage errors ---------------- */

enum opt_kind { K_STR, K_FLAG, K_INT, K_SLEEP, K_HELP };

typedef struct optdef {
    const char *name, *arg; /* arg NULL: a flag */
    enum opt_kind kind;
    size_t off;       /* of the field in opts */
    int64_t min;      /* K_INT: the smallest value */
    const char *help; /* K_INT: also the usage error ("needs ...") */
} optdef;

#define F(field) offsetof(opts, field)
static const optdef OPTS[] = {
    {"plugin", "PATH", K_STR, F(plugin), 0, "the plugin to load (libcreditmeter_plugin.so)"},
    {"ledger", "LOCATION", K_STR, F(ledger), 0,
     "the ledger's location: an SQLite file or a postgresql:// URI"},
    {"db", "LOCATION", K_STR, F(ledger), 0, "the old name of --ledger"},
    {"create", NULL, K_FLAG, F(create), 0, "create the ledger if it does not exist"},
    {"workspace", "WS", K_STR, F(workspace), 0, "whose credits"},
    {"user", "U", K_STR, F(user), 0, "who runs the job (owner or member)"},
    {"job", "ID", K_STR, F(job), 0, "the job id (the hold's idempotency key)"},
    {"generate", "SECONDS", K_STR, F(generate_arg), 0,
     "a by-output job: generate that many seconds (0, 86400]"},
    {"output-extra-ms", "MS", K_INT, F(output_extra_ms), -86400000,
     "with --generate: make the output that much longer (negative: shorter)"},
    {"lease", "SECONDS", K_INT, F(lease_s), 1, "the hold's lease, whole seconds >= 1"},
    {"keepalive-divisor", "N", K_INT, F(keepalive_divisor), -1,
     "renew leases every lease/N (0: 3; -1: no keepalive, hooks only)"},
    {"stage-sleep", "STAGE:SECONDS", K_SLEEP, 0, 0,
     "that stage takes at least SECONDS (tests, demos; up to 4 times)"},
    {"fail-at", "STAGE", K_STR, F(fail_at), 0, "fail that stage (the hold is released)"},
    {"crash-at", "STAGE", K_STR, F(crash_at), 0, "abort() in that stage (the hold lapses)"},
    {"thumbnail", "PNG", K_STR, F(thumb), 0, "where the thumbnail goes (default OUTPUT.png)"},
    {"grace-ms", "MS", K_INT, F(grace_ms), 0, "padding grace, milliseconds >= 0"},
    {"clock-offset-s", "S", K_INT, F(clock_offset_s), INT32_MIN,
     "move the plugin's clock by whole seconds"},
    {"ledger-timeout-ms", "MS", K_INT, F(ledger_timeout_ms), 0,
     "how long a ledger call (and --ping) may wait for a locked ledger, ms >= 0"},
    {"ledger-pool", "N", K_INT, F(ledger_pool), 0,
     "ledger connections the plugin may open, 1 to 64 (0: its default, 4)"},
    {"quote-only", NULL, K_FLAG, F(quote_only), 0, "price the job, hold nothing, run nothing"},
    {"balance", NULL, K_FLAG, F(query_balance), 0, "print the workspace's credits"},
    {"job-state", NULL, K_FLAG, F(query_job), 0, "print the job's hold"},
    {"ping", NULL, K_FLAG, F(ping), 0, "check the ledger is reachable and writable; exit 0 or 1"},
    {"log-format", "text|json", K_STR, F(log_format), 0,
     "the plugin's log records on stderr: text (default) or JSON Lines"},
    {"log-level", "LEVEL", K_STR, F(log_level), 0,
     "least severe record shown: debug, info, warn, error (default: warn for text, info "
     "for json, debug with --verbose)"},
    {"metrics", "FILE", K_STR, F(metrics), 0,
     "write the plugin's metrics (Prometheus text format) to FILE at exit"},
    {"json", NULL, K_FLAG, F(json), 0, "usage errors and --ping as JSON"},
    {"verbose", NULL, K_FLAG, F(verbose), 0, "every log record, and libav's errors"},
    {"help", NULL, K_HELP, 0, 0, "this help"},
};
#undef F
#define N_OPTS (sizeof OPTS / sizeof OPTS[0])

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cm-pipeline --plugin PATH --ledger LOCATION --workspace WS --user U --job ID\n"
            "                   [options] (INPUT | --generate SECONDS) OUTPUT\n"
            "       cm-pipeline ... --workspace WS --user U --quote-only [--job ID]\n"
            "                   (INPUT | --generate SECONDS)\n"
            "       cm-pipeline ... --workspace WS [--user U] --balance\n"
            "       cm-pipeline ... --job ID --job-state\n"
            "       cm-pipeline --plugin PATH --ledger LOCATION --ping [--json]\n"
            "       cm-pipeline --version\n"
            "options:\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", OPTS[i].name, OPTS[i].arg ? " " : "",
                 OPTS[i].arg ? OPTS[i].arg : "");
        fprintf(f, "  %-28s %s\n", left, OPTS[i].help);
    }
    fprintf(f, "stages: probe, transcode, thumbnail (by input); generate, thumbnail (--generate)\n"
               "exit: 0 done (--quote-only: quoted, affordable or not; --ping: reachable),\n"
               "      1 refused or failed, 2 usage error or unusable plugin\n");
}

/* A usage error: a JSON document on stdout under --json, else a line and the usage on
 * stderr. Returns -1. */
__attribute__((format(printf, 2, 3))) static int usage_error(const opts *o, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (o->json) {
        fputs("{\"ok\":false,\"error\":{\"code\":\"usage\",\"message\":", stdout);
        cm__json_escape(stdout, msg);
        fputs("}}\n", stdout);
    } else {
        fprintf(stderr, "cm-pipeline: %s\n", msg);
        usage(stderr);
    }
    return -1;
}

/* ---- progress -------------------------------------------------------------------- */

static void on_progress(void *ud, int percent)
{
    run *r = ud;
    double el = now_s() - r->stage_t0;
    if (r->tty) {
        char bar[31];
        int n = percent * 30 / 100;
        for (int i = 0; i < 30; i++)
            bar[i] = i < n ? '#' : '.';
        bar[30] = '\0';
        printf("\r%-10s [%s] %3d%% %6.1fs", r->stage, bar, percent, el);
        fflush(stdout);
    } else if (percent >= r->last_line_pc + 25 || (percent == 100 && r->last_line_pc < 100)) {
        r->last_line_pc = percent - percent % 25;
        printf("progress %s %d%% %.1fs\n", r->stage, percent, el);
        fflush(stdout);
    }
    if (r->o->fail_at && strcmp(r->o->fail_at, r->stage) == 0 && percent >= 50)
        r->fail_now = 1;
}

static int is_cancelled(void *ud)
{
    const run *r = ud;
    return r->fail_now;
}

/* ---- stages -------------------------------------------------------------------- */

static int hook_failed(run *r, int rc, const char *what)
{
    cm_plugin_error_info e;
    memset(&e, 0, sizeof e);
    e.struct_size = sizeof e;
    r->api->last_error(r->p, &e);
    fprintf(stderr, "cm-pipeline: %s: %s: %s\n", what, r->api->err_name(rc), e.message);
    return rc;
}

/* The stage of --stage-sleep i ("transcode" of "transcode:6"), into buf. */
static const char *sleep_stage(const opts *o, int i, char *buf, size_t n)
{
    snprintf(buf, n, "%.*s", (int)(strrchr(o->sleep_arg[i], ':') - o->sleep_arg[i]),
             o->sleep_arg[i]);
    return buf;
}

/* Runs one stage between its hooks. Returns 0, or -1 when the job must stop. */
static int run_stage(run *r, const char *stage, const char *in, const char *out,
                     int64_t expected_ms)
{
    const opts *o = r->o;
    r->stage = stage;
    r->stage_t0 = now_s();
    r->fail_now = 0;
    r->last_line_pc = -25;
    int rc = r->api->stage_begin(r->p, o->job, stage);
    if (rc != CM_PLUGIN_OK) {
        hook_failed(r, rc, "stage_begin");
        return -1;
    }
    if (!r->tty)
        printf("stage %s: begin\n", stage);
    if (o->crash_at && strcmp(o->crash_at, stage) == 0) {
        printf("stage %s: crashing now (--crash-at)\n", stage);
        fflush(stdout);
        abort(); /* no cleanup at all: the hold must lapse after its lease */
    }
    char err[512] = "";
    cmh_control ctl = {on_progress, is_cancelled, r, expected_ms};
    int code;
    if (strcmp(stage, "probe") == 0) {
        cmh_media_info info;
        code = cmh_inspect(in, &info, err, sizeof err);
        if (code == CMH_OK)
            printf("%sinput: %s, %s%s%dx%d\n", r->tty ? "" : "stage probe: ", info.format,
                   info.has_video ? "video " : "", info.has_audio ? "audio " : "", info.width,
                   info.height);
    } else if (strcmp(stage, "transcode") == 0) {
        code = cmh_transcode(in, out, &ctl, err, sizeof err);
    } else if (strcmp(stage, "generate") == 0) {
        code = cmh_generate(expected_ms, out, &ctl, err, sizeof err);
    } else {
        code = cmh_thumbnail(in, out, &ctl, err, sizeof err);
        if (code == CMH_E_NOVIDEO) {
            printf("%sstage thumbnail: skipped (no video stream)\n", r->tty ? "\n" : "");
            code = CMH_OK;
        }
    }
    for (int i = 0; i < o->n_sleeps && code == CMH_OK; i++) {
        char name[64];
        if (strcmp(sleep_stage(o, i, name, sizeof name), stage) != 0)
            continue;
        /* --stage-sleep: the stage takes at least this long, with no hook in between */
        double left = o->sleep_s[i] - (now_s() - r->stage_t0);
        while (left > 0) {
            struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
            if (nanosleep(&ts, NULL) == 0)
                break;
            left = o->sleep_s[i] - (now_s() - r->stage_t0);
        }
    }
    if (o->fail_at && strcmp(o->fail_at, stage) == 0) {
        code = CMH_E_CANCELLED;
        snprintf(err, sizeof err, "failure injected by --fail-at %s", stage);
    }
    int ok = code == CMH_OK;
    if (r->tty)
        printf("\n");
    printf("stage %s: %s (%.2fs)%s%s\n", stage, ok ? "ok" : "failed", now_s() - r->stage_t0,
           ok ? "" : ": ", ok ? "" : err);
    fflush(stdout);
    rc = r->api->stage_end(r->p, o->job, stage, ok, ok ? NULL : err);
    if (rc != CM_PLUGIN_OK) {
        hook_failed(r, rc, "stage_end");
        return -1;
    }
    return ok ? 0 : -1;
}

/* ---- the job ----------------------------------------------------------------------- */

static void print_quote(const opts *o, const cm_plugin_quote *q)
{
    printf("quote: job %s: %lld credit%s for %.3f s (%s", o->job, (long long)q->credits,
           q->credits == 1 ? "" : "s", q->billable_ms / 1000.0, q->method_name);
    if (q->declared_ms >= 0)
        printf(", declared %.3f s", q->declared_ms / 1000.0);
    printf(")%s\n", q->replayed ? " [retry of an earlier run]" : "");
    if (q->note[0])
        printf("quote: note: %s\n", q->note);
    if (q->receipt[0])
        printf("quote: why: %s\n", q->receipt);
}

static const char *grant_kind(int kind)
{
    return kind == 1 ? "plan" : kind == 2 ? "addon" : kind == 3 ? "refund" : "unknown";
}

/* The job of the options: by output with --generate, else by input. */
static void job_spec(const opts *o, cm_plugin_job_spec *spec)
{
    memset(spec, 0, sizeof *spec);
    spec->struct_size = sizeof *spec;
    spec->job = o->job;
    spec->workspace = o->workspace;
    spec->user = o->user;
    spec->lease_s = o->lease_s;
    if (o->generate_s > 0) {
        spec->billing = CM_PLUGIN_BY_OUTPUT;
        spec->requested_output_ms = (int64_t)(o->generate_s * 1000.0 + 0.5);
    } else {
        spec->billing = CM_PLUGIN_BY_INPUT;
        spec->input_path = o->input;
    }
}

/* quote() or job_begin() into *q; a refusal is printed. Returns the plugin's code. */
static int quote_or_begin(run *r, const cm_plugin_job_spec *spec, cm_plugin_quote *q, int begin)
{
    memset(q, 0, sizeof *q);
    q->struct_size = sizeof *q;
    int rc = begin ? r->api->job_begin(r->p, spec, q) : r->api->quote(r->p, spec, q);
    if (rc != CM_PLUGIN_OK && q->cause != CM_PLUGIN_CAUSE_NONE)
        printf("refused: %s (%s: %s): %s\n", r->api->err_name(rc),
               q->cause == CM_PLUGIN_CAUSE_PROBE ? "probe" : "ledger",
               r->api->cause_name(q->cause, q->cause_code), q->message);
    else if (rc != CM_PLUGIN_OK)
        printf("refused: %s: %s\n", r->api->err_name(rc), q->message);
    return rc;
}

/* --quote-only: the price and whether the workspace can afford it, nothing held. */
static int run_quote(run *r)
{
    const opts *o = r->o;
    cm_plugin_job_spec spec;
    job_spec(o, &spec);
    spec.lease_s = 0;
    cm_plugin_quote q;
    if (quote_or_begin(r, &spec, &q, 0) != CM_PLUGIN_OK)
        return EXIT_REFUSED;
    opts shown = *o;
    if (!shown.job)
        shown.job = "(quote only)";
    print_quote(&shown, &q);
    printf("quote: workspace %s has %lld credit%s available: %s\n", o->workspace,
           (long long)q.available, q.available == 1 ? "" : "s",
           q.affordable ? "affordable" : "not affordable");
    char t[32];
    for (int i = 0; i < q.n_grants && i < CM_PLUGIN_QUOTE_GRANTS; i++) {
        if (q.grants[i].expires_ms < 0)
            snprintf(t, sizeof t, "never");
        else {
            time_t secs = (time_t)(q.grants[i].expires_ms / 1000);
            struct tm tm;
            gmtime_r(&secs, &tm);
            strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%SZ", &tm);
        }
        printf("quote: %lld from grant %lld (%s, expires %s)\n", (long long)q.grants[i].credits,
               (long long)q.grants[i].grant_id, grant_kind(q.grants[i].kind), t);
    }
    printf("quote: nothing was held or charged\n");
    return 0;
}

static void thumb_path(const opts *o, char *buf, size_t n)
{
    if (o->thumb) {
        snprintf(buf, n, "%s", o->thumb);
        return;
    }
    const char *slash = strrchr(o->output, '/');
    const char *dot = strrchr(o->output, '.');
    int keep =
        (dot && (!slash || dot > slash + 1)) ? (int)(dot - o->output) : (int)strlen(o->output);
    snprintf(buf, n, "%.*s.png", keep, o->output);
}

static int run_job(run *r)
{
    const opts *o = r->o;
    const cm_plugin_api *api = r->api;
    cm_plugin_job_spec spec;
    job_spec(o, &spec);
    int64_t gen_ms = spec.requested_output_ms;
    cm_plugin_quote q;
    int rc = quote_or_begin(r, &spec, &q, 1);
    if (rc != CM_PLUGIN_OK)
        return EXIT_REFUSED;
    print_quote(o, &q);
    if (q.hold_state == CM_PLUGIN_HOLD_COMMITTED)
        printf("hold: job %s was already charged; this run is not charged again\n", o->job);
    else
        printf("hold: %lld credit%s held, %lld left available\n", (long long)q.credits,
               q.credits == 1 ? "" : "s", (long long)q.available);
    fflush(stdout);

    char thumb[4096];
    thumb_path(o, thumb, sizeof thumb);
    int failed;
    if (spec.billing == CM_PLUGIN_BY_INPUT)
        failed = run_stage(r, "probe", o->input, NULL, 0) ||
                 run_stage(r, "transcode", o->input, o->output, q.measured_ms) ||
                 run_stage(r, "thumbnail", o->input, thumb, 0);
    else
        failed = run_stage(r, "generate", NULL, o->output, gen_ms + o->output_extra_ms) ||
                 run_stage(r, "thumbnail", o->output, thumb, 0);

    cm_plugin_outcome out;
    memset(&out, 0, sizeof out);
    out.struct_size = sizeof out;
    rc = api->job_end(r->p, o->job, !failed, failed ? NULL : o->output, &out);
    if (failed || rc != CM_PLUGIN_OK) {
        unlink(o->output);
        unlink(thumb);
    }
    if (rc != CM_PLUGIN_OK) {
        hook_failed(r, rc, "job_end");
        printf("failed: %s: %s\n", api->err_name(rc), out.message);
        return EXIT_REFUSED;
    }
    if (failed) {
        printf("failed: job %s %s, %lld credit%s given back\n", o->job,
               api->hold_state_name(out.hold_state), (long long)out.quoted,
               out.quoted == 1 ? "" : "s");
        return EXIT_REFUSED;
    }
    if (out.output_ms >= 0)
        printf("output: %s, measured %.3f s\n", o->output, out.output_ms / 1000.0);
    printf("charged: %lld credit%s (quote %lld)%s\n", (long long)out.charged,
           out.charged == 1 ? "" : "s", (long long)out.quoted,
           out.replayed ? " [already charged by an earlier run]" : "");
    return 0;
}

static int run_queries(run *r)
{
    const opts *o = r->o;
    int rc;
    if (o->query_balance) {
        cm_plugin_balance b;
        memset(&b, 0, sizeof b);
        b.struct_size = sizeof b;
        rc = r->api->balance(r->p, o->workspace, o->user, &b);
        if (rc != CM_PLUGIN_OK)
            return hook_failed(r, rc, "balance"), EXIT_REFUSED;
        printf("balance: workspace %s available %lld held %lld\n", o->workspace,
               (long long)b.available, (long long)b.held);
    }
    if (o->query_job) {
        cm_plugin_job_state s;
        memset(&s, 0, sizeof s);
        s.struct_size = sizeof s;
        rc = r->api->job_state(r->p, o->job, &s);
        if (rc != CM_PLUGIN_OK)
            return hook_failed(r, rc, "job_state"), EXIT_REFUSED;
        printf("job: %s state %s credits %lld charged %lld\n", o->job,
               r->api->hold_state_name(s.hold_state), (long long)s.credits, (long long)s.charged);
    }
    return 0;
}

/* ---- loading -------------------------------------------------------------------- */

static const cm_plugin_api *load_plugin(const char *path, void **dl)
{
    *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!*dl) {
        fprintf(stderr, "cm-pipeline: cannot load plugin %s: %s\n", path, dlerror());
        return NULL;
    }
    dlerror();
    void *sym = dlsym(*dl, CM_PLUGIN_ENTRY_SYMBOL);
    const char *e = dlerror();
    if (e || !sym) {
        fprintf(stderr, "cm-pipeline: %s is not a creditmeter plugin (no %s): %s\n", path,
                CM_PLUGIN_ENTRY_SYMBOL, e ? e : "symbol is NULL");
        return NULL;
    }
    cm_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry); /* object pointer to function pointer (POSIX) */
    const cm_plugin_api *api = entry(CM_PLUGIN_ABI_MAJOR, CM_PLUGIN_ABI_MINOR);
    if (!api) {
        fprintf(stderr, "cm-pipeline: incompatible plugin %s: it refuses host ABI %u.%u\n", path,
                CM_PLUGIN_ABI_MAJOR, CM_PLUGIN_ABI_MINOR);
        return NULL;
    }
    if (!cm_plugin_api_compatible(api)) {
        fprintf(stderr,
                "cm-pipeline: incompatible plugin %s: plugin ABI %u.%u (table %u bytes), "
                "host needs %u.%u or a later %u.x\n",
                path, api->abi_major, api->abi_minor, api->struct_size, CM_PLUGIN_ABI_MAJOR,
                CM_PLUGIN_ABI_MINOR, CM_PLUGIN_ABI_MAJOR);
        return NULL;
    }
    return api;
}

/* ---- arguments ---------------------------------------------------------------------- */

static int parse_int(const char *s, int64_t lo, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo)
        return -1;
    *out = v;
    return 0;
}

static int valid_stage(const opts *o, const char *s)
{
    if (!s)
        return 1;
    if (strcmp(s, "thumbnail") == 0)
        return 1;
    if (o->generate_s > 0)
        return strcmp(s, "generate") == 0;
    return strcmp(s, "probe") == 0 || strcmp(s, "transcode") == 0;
}

/* Sets the option def to arg. Returns 0 or -1 (a usage error was reported). */
static int set_option(opts *o, const optdef *d, const char *arg)
{
    char *field = (char *)o + d->off;
    switch (d->kind) {
    case K_STR: {
        const char *was;
        memcpy(&was, field, sizeof was);
        if (was) /* also --ledger and its old name --db together */
            return usage_error(o, "--%s: this option is given twice", d->name);
        memcpy(field, &arg, sizeof arg);
        return 0;
    }
    case K_FLAG:
        *(int *)(void *)field = 1;
        return 0;
    case K_INT: {
        int64_t v;
        if (parse_int(arg, d->min, &v) != 0)
            return usage_error(o, "--%s needs a whole number >= %lld (%s), not '%s'", d->name,
                               (long long)d->min, d->help, arg);
        memcpy(field, &v, sizeof v);
        return 0;
    }
    case K_SLEEP: {
        const char *colon = strrchr(arg, ':');
        char *end;
        double secs = colon ? strtod(colon + 1, &end) : 0;
        if (o->n_sleeps >= MAX_SLEEPS || !colon || colon == arg || end == colon + 1 || *end ||
            !(secs > 0 && secs <= 86400))
            return usage_error(o,
                               "--stage-sleep needs STAGE:SECONDS (seconds in (0, 86400], "
                               "at most %d times), not '%s'",
                               MAX_SLEEPS, arg);
        o->sleep_arg[o->n_sleeps] = arg;
        o->sleep_s[o->n_sleeps++] = secs;
        return 0;
    }
    case K_HELP:
        break;
    }
    return 0;
}

static int parse(int argc, char **argv, opts *o)
{
    struct option lo[N_OPTS + 1];
    for (size_t i = 0; i < N_OPTS; i++)
        lo[i] = (struct option){OPTS[i].name, OPTS[i].arg ? required_argument : no_argument, NULL,
                                (int)(256 + i)};
    lo[N_OPTS] = (struct option){0, 0, 0, 0};
    memset(o, 0, sizeof *o);
    o->grace_ms = -1;
    for (int i = 1; i < argc; i++) /* usage errors are JSON from the first one on */
        if (strcmp(argv[i], "--json") == 0)
            o->json = 1;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c < 256 || c >= 256 + (int)N_OPTS)
            return usage_error(o, "unknown or incomplete option %s", argv[optind - 1]);
        const optdef *d = &OPTS[c - 256];
        if (d->kind == K_HELP) {
            usage(stdout);
            exit(0);
        }
        if (set_option(o, d, optarg) != 0)
            return -1;
    }
    if (o->generate_arg) {
        char *end;
        o->generate_s = strtod(o->generate_arg, &end);
        if (end == o->generate_arg || *end || !(o->generate_s > 0 && o->generate_s <= 86400))
            return usage_error(o, "--generate needs seconds in (0, 86400], not '%s'",
                               o->generate_arg);
    }
    if (o->log_format && strcmp(o->log_format, "text") != 0 && strcmp(o->log_format, "json") != 0)
        return usage_error(o, "--log-format is text or json, not '%s'", o->log_format);
    o->log_json = o->log_format && strcmp(o->log_format, "json") == 0;
    o->min_level = o->verbose ? 0 : o->log_json ? 1 : 2;
    if (o->log_level) {
        o->min_level = -1;
        for (int i = 0; i < 4; i++)
            if (strcmp(o->log_level, level_names[i]) == 0)
                o->min_level = i;
        if (o->min_level < 0)
            return usage_error(o, "--log-level is debug, info, warn or error, not '%s'",
                               o->log_level);
    }
    if (o->keepalive_divisor == 1 || o->keepalive_divisor > 100)
        return usage_error(o, "--keepalive-divisor is -1, 0 or 2 to 100");
    if (o->ledger_pool > CM_PLUGIN_MAX_LEDGER_POOL)
        return usage_error(o, "--ledger-pool is 0 (the plugin's default) or 1 to %d",
                           CM_PLUGIN_MAX_LEDGER_POOL);
    int nargs = argc - optind;
    if (!o->plugin || !o->ledger)
        return usage_error(o, "--plugin and --ledger are required");
    if (o->ping) {
        if (nargs || o->query_balance || o->query_job || o->quote_only)
            return usage_error(o, "--ping takes no job, query or file");
        return 0;
    }
    if (o->query_balance || o->query_job) {
        if ((o->query_balance && !o->workspace) || (o->query_job && !o->job) || nargs)
            return usage_error(o, "--balance needs --workspace, --job-state --job");
        return 0;
    }
    if (o->quote_only) {
        if (!o->workspace || !o->user || nargs != (o->generate_s > 0 ? 0 : 1) || o->fail_at ||
            o->crash_at || o->n_sleeps)
            return usage_error(
                o, "--quote-only needs --workspace, --user and %s, and runs no stage",
                o->generate_s > 0 ? "no OUTPUT (with --generate)" : "INPUT (no OUTPUT)");
        if (o->generate_s <= 0)
            o->input = argv[optind];
        return 0;
    }
    if (!o->workspace || !o->user || !o->job)
        return usage_error(o, "--workspace, --user and --job are required");
    if (nargs != (o->generate_s > 0 ? 1 : 2))
        return usage_error(o, "expected %s",
                           o->generate_s > 0 ? "OUTPUT (with --generate)" : "INPUT OUTPUT");
    if (o->generate_s > 0 && o->generate_s * 1000.0 + (double)o->output_extra_ms < 100.0)
        return usage_error(o, "--output-extra-ms leaves less than 100 ms to generate");
    if (o->generate_s > 0) {
        o->output = argv[optind];
    } else {
        o->input = argv[optind];
        o->output = argv[optind + 1];
    }
    if (!valid_stage(o, o->fail_at) || !valid_stage(o, o->crash_at))
        return usage_error(o, "no such stage in this job: %s",
                           valid_stage(o, o->fail_at) ? o->crash_at : o->fail_at);
    for (int i = 0; i < o->n_sleeps; i++) {
        char stage[64];
        if (!valid_stage(o, sleep_stage(o, i, stage, sizeof stage)))
            return usage_error(o, "--stage-sleep: no such stage in this job: %s", stage);
    }
    return 0;
}

/* --metrics FILE: the plugin's metrics, written whole (a temporary file renamed). */
static int write_metrics(const run *r)
{
    /* ask the size, then read with room to spare: the keepalive may count in between */
    int64_t n = r->api->metrics(r->p, NULL, 0);
    char *buf = NULL;
    size_t cap = 0;
    for (int tries = 0; n >= 0 && tries < 8; tries++) {
        cap = (size_t)n + 4096;
        free(buf);
        if (!(buf = malloc(cap)) || (n = r->api->metrics(r->p, buf, cap)) < (int64_t)cap)
            break;
    }
    if (n >= 0 && (!buf || (size_t)n >= cap))
        n = CM_PLUGIN_E_NOMEM; /* no buffer, or it kept growing */
    if (n < 0) {
        fprintf(stderr, "cm-pipeline: metrics: %s\n", r->api->err_name((int)n));
        free(buf);
        return -1;
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", r->o->metrics);
    FILE *f = NULL;
    int ok = buf && (f = fopen(tmp, "w")) && fwrite(buf, 1, (size_t)n, f) == (size_t)n;
    if (f && fclose(f) != 0)
        ok = 0;
    if (ok && rename(tmp, r->o->metrics) != 0)
        ok = 0;
    if (!ok) {
        fprintf(stderr, "cm-pipeline: cannot write the metrics to %s: %s\n", r->o->metrics,
                strerror(errno));
        unlink(tmp);
    }
    free(buf);
    return ok ? 0 : -1;
}

/* --ping: exit 0 (reachable and writable) or 1, with the reason. */
static int run_ping(run *r)
{
    cm_plugin_error_info e;
    memset(&e, 0, sizeof e);
    e.struct_size = sizeof e;
    int rc = r->api->ping(r->p, &e);
    if (r->o->json) {
        if (rc == CM_PLUGIN_OK) {
            fputs("{\"ok\":true,\"message\":", stdout);
        } else {
            fputs("{\"ok\":false,\"error\":{\"code\":", stdout);
            cm__json_escape(stdout, r->api->err_name(rc));
            fputs(",\"cause\":", stdout);
            cm__json_escape(stdout, r->api->cause_name(e.cause, e.cause_code));
            fputs(",\"message\":", stdout);
        }
        cm__json_escape(stdout, e.message);
        fputs(rc == CM_PLUGIN_OK ? "}\n" : "}}\n", stdout);
    } else if (rc == CM_PLUGIN_OK) {
        printf("ping: ok: %s\n", e.message);
    } else {
        printf("ping: failed: %s (%s): %s\n", r->api->err_name(rc),
               r->api->cause_name(e.cause, e.cause_code), e.message);
    }
    return rc == CM_PLUGIN_OK ? 0 : EXIT_REFUSED;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("cm-pipeline %s\n", CM_VERSION_STRING);
        return 0;
    }
    opts o;
    if (parse(argc, argv, &o) != 0)
        return EXIT_USAGE;
    /* the host owns its process: keep libav chatter (damaged-input warnings, encoder
     * banners) off the terminal unless --verbose */
    av_log_set_level(o.verbose ? AV_LOG_ERROR : AV_LOG_FATAL);

    void *dl = NULL;
    const cm_plugin_api *api = load_plugin(o.plugin, &dl);
    if (!api) {
        if (dl)
            dlclose(dl);
        return EXIT_USAGE;
    }
    cm_plugin_config cfg;
    cm_plugin_config_init(&cfg);
    cfg.ledger = o.ledger;
    cfg.grace_ms = o.grace_ms;
    cfg.log_record = on_record;
    cfg.log_user = &o;
    cfg.log_min_level = plugin_level_of[o.min_level];
    cfg.create = o.create;
    cfg.keepalive_divisor = (int)o.keepalive_divisor;
    cfg.ledger_pool_size = (int)o.ledger_pool;
    cfg.ledger_busy_timeout_ms =
        (int)(o.ledger_timeout_ms > INT32_MAX ? INT32_MAX : o.ledger_timeout_ms);
    if (o.clock_offset_s != 0) {
        cfg.now_ms = clock_with_offset;
        cfg.clock_user = &o.clock_offset_s;
    }
    run r = {&o, api, NULL, isatty(STDOUT_FILENO), "", 0, 0, 0};
    cm_plugin_error_info e;
    memset(&e, 0, sizeof e);
    e.struct_size = sizeof e;
    int rc = api->open(&cfg, &r.p, &e);
    if (rc != CM_PLUGIN_OK) {
        if (o.ping && o.json) {
            fputs("{\"ok\":false,\"error\":{\"code\":", stdout);
            cm__json_escape(stdout, api->err_name(rc));
            fputs(",\"cause\":", stdout);
            cm__json_escape(stdout, api->cause_name(e.cause, e.cause_code));
            fputs(",\"message\":", stdout);
            cm__json_escape(stdout, e.message);
            fputs("}}\n", stdout);
        } else if (o.ping) {
            printf("ping: failed: %s (%s): %s\n", api->err_name(rc),
                   api->cause_name(e.cause, e.cause_code), e.message);
        } else {
            fprintf(stderr, "cm-pipeline: cannot open the plugin: %s: %s\n", api->err_name(rc),
                    e.message);
        }
        dlclose(dl);
        return EXIT_REFUSED;
    }
    int status = o.ping                             ? run_ping(&r)
                 : (o.query_balance || o.query_job) ? run_queries(&r)
                 : o.quote_only                     ? run_quote(&r)
                                                    : run_job(&r);
    if (o.metrics && write_metrics(&r) != 0 && status == 0)
        status = EXIT_REFUSED;
    api->close(r.p);
    dlclose(dl);
    return status;
}
