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
 */
#include "creditmeter_plugin.h"
#include "cm_version.h"
#include "cmh_media.h"

#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <libavutil/log.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_REFUSED 1
#define EXIT_USAGE 2

typedef struct opts {
    const char *plugin, *db, *workspace, *user, *job, *input, *output, *thumb;
    const char *fail_at, *crash_at;
    double generate_s; /* > 0: a by-output job */
    int64_t lease_s;
    int64_t grace_ms;
    int64_t clock_offset_s;
    int64_t output_extra_ms; /* by output: make the output this much longer (or shorter) */
    int query_balance, query_job, verbose;
    int quote_only; /* --quote-only: price the job, hold nothing, run nothing */
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

static void on_log(void *user, int level, const char *message)
{
    const opts *o = user;
    if (o->verbose || level == CM_PLUGIN_LOG_ERROR)
        fprintf(stderr, "plugin: %s\n", message);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: cm-pipeline --plugin PATH --db PATH --workspace WS --user U --job ID\n"
               "                   [--lease SECONDS] [--fail-at STAGE] [--crash-at STAGE]\n"
               "                   [--thumbnail PNG] [--grace-ms MS] [--clock-offset-s S]\n"
               "                   (INPUT | --generate SECONDS [--output-extra-ms MS]) OUTPUT\n"
               "       cm-pipeline --plugin PATH --db PATH --workspace WS --user U --quote-only\n"
               "                   [--job ID] [--grace-ms MS] (INPUT | --generate SECONDS)\n"
               "       cm-pipeline --plugin PATH --db PATH --workspace WS [--user U] --balance\n"
               "       cm-pipeline --plugin PATH --db PATH --job ID --job-state\n"
               "stages: probe, transcode, thumbnail (by input); generate, thumbnail (--generate)\n"
               "exit: 0 done (--quote-only: quoted, affordable or not), 1 refused or failed,\n"
               "      2 usage error or unusable plugin\n");
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

/* --quote-only: the price and whether the workspace can afford it, nothing held. */
static int run_quote(run *r)
{
    const opts *o = r->o;
    cm_plugin_job_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.struct_size = sizeof spec;
    spec.job = o->job;
    spec.workspace = o->workspace;
    spec.user = o->user;
    if (o->generate_s > 0) {
        spec.billing = CM_PLUGIN_BY_OUTPUT;
        spec.requested_output_ms = (int64_t)(o->generate_s * 1000.0 + 0.5);
    } else {
        spec.billing = CM_PLUGIN_BY_INPUT;
        spec.input_path = o->input;
    }
    cm_plugin_quote q;
    memset(&q, 0, sizeof q);
    q.struct_size = sizeof q;
    int rc = r->api->quote(r->p, &spec, &q);
    if (rc != CM_PLUGIN_OK) {
        if (q.cause != CM_PLUGIN_CAUSE_NONE)
            printf("refused: %s (%s: %s): %s\n", r->api->err_name(rc),
                   q.cause == CM_PLUGIN_CAUSE_PROBE ? "probe" : "ledger",
                   r->api->cause_name(q.cause, q.cause_code), q.message);
        else
            printf("refused: %s: %s\n", r->api->err_name(rc), q.message);
        return EXIT_REFUSED;
    }
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
    memset(&spec, 0, sizeof spec);
    spec.struct_size = sizeof spec;
    spec.job = o->job;
    spec.workspace = o->workspace;
    spec.user = o->user;
    spec.lease_s = o->lease_s;
    int64_t gen_ms = (int64_t)(o->generate_s * 1000.0 + 0.5);
    if (o->generate_s > 0) {
        spec.billing = CM_PLUGIN_BY_OUTPUT;
        spec.requested_output_ms = gen_ms;
    } else {
        spec.billing = CM_PLUGIN_BY_INPUT;
        spec.input_path = o->input;
    }
    cm_plugin_quote q;
    memset(&q, 0, sizeof q);
    q.struct_size = sizeof q;
    int rc = api->job_begin(r->p, &spec, &q);
    if (rc != CM_PLUGIN_OK) {
        if (q.cause != CM_PLUGIN_CAUSE_NONE)
            printf("refused: %s (%s: %s): %s\n", api->err_name(rc),
                   q.cause == CM_PLUGIN_CAUSE_PROBE ? "probe" : "ledger",
                   api->cause_name(q.cause, q.cause_code), q.message);
        else
            printf("refused: %s: %s\n", api->err_name(rc), q.message);
        return EXIT_REFUSED;
    }
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

static int parse(int argc, char **argv, opts *o)
{
    enum {
        O_PLUGIN = 256,
        O_DB,
        O_WS,
        O_USER,
        O_JOB,
        O_GEN,
        O_FAIL,
        O_CRASH,
        O_LEASE,
        O_THUMB,
        O_GRACE,
        O_CLOCK,
        O_EXTRA,
        O_BAL,
        O_STATE,
        O_VERBOSE,
        O_HELP,
        O_QUOTE
    };
    static const struct option lo[] = {{"plugin", required_argument, 0, O_PLUGIN},
                                       {"db", required_argument, 0, O_DB},
                                       {"workspace", required_argument, 0, O_WS},
                                       {"user", required_argument, 0, O_USER},
                                       {"job", required_argument, 0, O_JOB},
                                       {"generate", required_argument, 0, O_GEN},
                                       {"fail-at", required_argument, 0, O_FAIL},
                                       {"crash-at", required_argument, 0, O_CRASH},
                                       {"lease", required_argument, 0, O_LEASE},
                                       {"thumbnail", required_argument, 0, O_THUMB},
                                       {"grace-ms", required_argument, 0, O_GRACE},
                                       {"clock-offset-s", required_argument, 0, O_CLOCK},
                                       {"output-extra-ms", required_argument, 0, O_EXTRA},
                                       {"balance", no_argument, 0, O_BAL},
                                       {"job-state", no_argument, 0, O_STATE},
                                       {"verbose", no_argument, 0, O_VERBOSE},
                                       {"help", no_argument, 0, O_HELP},
                                       {"quote-only", no_argument, 0, O_QUOTE},
                                       {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->grace_ms = -1;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        char *end;
        switch (c) {
        case O_PLUGIN:
            o->plugin = optarg;
            break;
        case O_DB:
            o->db = optarg;
            break;
        case O_WS:
            o->workspace = optarg;
            break;
        case O_USER:
            o->user = optarg;
            break;
        case O_JOB:
            o->job = optarg;
            break;
        case O_THUMB:
            o->thumb = optarg;
            break;
        case O_FAIL:
            o->fail_at = optarg;
            break;
        case O_CRASH:
            o->crash_at = optarg;
            break;
        case O_BAL:
            o->query_balance = 1;
            break;
        case O_STATE:
            o->query_job = 1;
            break;
        case O_VERBOSE:
            o->verbose = 1;
            break;
        case O_QUOTE:
            o->quote_only = 1;
            break;
        case O_HELP:
            usage(stdout);
            exit(0);
        case O_GEN:
            o->generate_s = strtod(optarg, &end);
            if (end == optarg || *end || !(o->generate_s > 0 && o->generate_s <= 86400)) {
                fprintf(stderr, "cm-pipeline: --generate needs seconds in (0, 86400]\n");
                return -1;
            }
            break;
        case O_LEASE:
            if (parse_int(optarg, 1, &o->lease_s) != 0) {
                fprintf(stderr, "cm-pipeline: --lease needs whole seconds >= 1\n");
                return -1;
            }
            break;
        case O_GRACE:
            if (parse_int(optarg, 0, &o->grace_ms) != 0) {
                fprintf(stderr, "cm-pipeline: --grace-ms needs milliseconds >= 0\n");
                return -1;
            }
            break;
        case O_CLOCK:
            if (parse_int(optarg, INT32_MIN, &o->clock_offset_s) != 0) {
                fprintf(stderr, "cm-pipeline: --clock-offset-s needs whole seconds\n");
                return -1;
            }
            break;
        case O_EXTRA:
            if (parse_int(optarg, -86400000, &o->output_extra_ms) != 0) {
                fprintf(stderr, "cm-pipeline: --output-extra-ms needs milliseconds\n");
                return -1;
            }
            break;
        default:
            fprintf(stderr, "cm-pipeline: unknown or incomplete option %s\n", argv[optind - 1]);
            return -1;
        }
    }
    int nargs = argc - optind;
    if (!o->plugin || !o->db) {
        fprintf(stderr, "cm-pipeline: --plugin and --db are required\n");
        return -1;
    }
    if (o->query_balance || o->query_job) {
        if ((o->query_balance && !o->workspace) || (o->query_job && !o->job) || nargs) {
            fprintf(stderr, "cm-pipeline: --balance needs --workspace, --job-state --job\n");
            return -1;
        }
        return 0;
    }
    if (o->quote_only) {
        if (!o->workspace || !o->user || nargs != (o->generate_s > 0 ? 0 : 1) || o->fail_at ||
            o->crash_at) {
            fprintf(stderr,
                    "cm-pipeline: --quote-only needs --workspace, --user and %s, and "
                    "runs no stage\n",
                    o->generate_s > 0 ? "no OUTPUT (with --generate)" : "INPUT (no OUTPUT)");
            return -1;
        }
        if (o->generate_s <= 0)
            o->input = argv[optind];
        return 0;
    }
    if (!o->workspace || !o->user || !o->job) {
        fprintf(stderr, "cm-pipeline: --workspace, --user and --job are required\n");
        return -1;
    }
    if (nargs != (o->generate_s > 0 ? 1 : 2)) {
        fprintf(stderr, "cm-pipeline: expected %s\n",
                o->generate_s > 0 ? "OUTPUT (with --generate)" : "INPUT OUTPUT");
        return -1;
    }
    if (o->generate_s > 0 && o->generate_s * 1000.0 + (double)o->output_extra_ms < 100.0) {
        fprintf(stderr, "cm-pipeline: --output-extra-ms leaves less than 100 ms to generate\n");
        return -1;
    }
    if (o->generate_s > 0) {
        o->output = argv[optind];
    } else {
        o->input = argv[optind];
        o->output = argv[optind + 1];
    }
    if (!valid_stage(o, o->fail_at) || !valid_stage(o, o->crash_at)) {
        fprintf(stderr, "cm-pipeline: no such stage in this job: %s\n",
                valid_stage(o, o->fail_at) ? o->crash_at : o->fail_at);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("cm-pipeline %s\n", CM_VERSION_STRING);
        return 0;
    }
    opts o;
    if (parse(argc, argv, &o) != 0) {
        usage(stderr);
        return EXIT_USAGE;
    }
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
    cfg.ledger = o.db;
    cfg.grace_ms = o.grace_ms;
    cfg.log = on_log;
    cfg.log_user = &o;
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
        fprintf(stderr, "cm-pipeline: cannot open the plugin: %s: %s\n", api->err_name(rc),
                e.message);
        dlclose(dl);
        return EXIT_REFUSED;
    }
    int status = (o.query_balance || o.query_job) ? run_queries(&r)
                 : o.quote_only                   ? run_quote(&r)
                                                  : run_job(&r);
    api->close(r.p);
    dlclose(dl);
    return status;
}
