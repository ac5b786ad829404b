/* SPDX-License-Identifier: MIT */
/*
 * plugin_job.c - the hooks of a job: begin (measure, quote, reserve), stages (renew
 * the lease), end (commit or release).
 *
 * Invariants: a refusal from job_begin holds nothing (the reserve is the last step,
 * and the ledger's reserve is all or nothing); a by-output charge is never more than
 * the quote (min(output credits, held)); every job that job_end forgets was resolved
 * in the ledger (committed, released or lapsed). The handle's job table only carries
 * what the ledger does not know (billing kind, lease to renew with); the ledger stays
 * the source of truth for states and credits.
 */
#include "plugin_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the job table ---------------------------------------------------------- */

/* "credit" or "credits": what people read says 1 credit. */
static const char *credits_word(int64_t n)
{
    return n == 1 ? "credit" : "credits";
}

static void job_free(cmp_job *j)
{
    if (!j)
        return;
    free(j->id);
    free(j->ws);
    free(j->user);
    free(j);
}

/* Unlinks and frees the entry of id, if any (the caller holds p->mu). */
static void jobs_unlink_locked(cm_plugin *p, const char *id)
{
    for (cmp_job **pp = &p->jobs; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->id, id) == 0) {
            cmp_job *old = *pp;
            *pp = old->next;
            job_free(old);
            return;
        }
    }
}

/* Adds or replaces the entry of spec->job (the fields from j). Returns 0 or -1 (out
 * of memory). Wakes the keepalive, whose next tick may now be sooner. */
static int jobs_put(cm_plugin *p, const cm_plugin_job_spec *spec, const cmp_job *fields)
{
    cmp_job *j = calloc(1, sizeof *j);
    if (!j)
        return -1;
    *j = *fields;
    j->next = NULL;
    j->id = strdup(spec->job);
    j->ws = strdup(spec->workspace);
    j->user = strdup(spec->user);
    if (!j->id || !j->ws || !j->user) {
        job_free(j);
        return -1;
    }
    pthread_mutex_lock(&p->mu);
    jobs_unlink_locked(p, spec->job);
    j->next = p->jobs;
    p->jobs = j;
    pthread_mutex_unlock(&p->mu);
    cm__keepalive_wake(p);
    return 0;
}

/* Copies the entry of id into *out. Returns 1 if found. */
static int jobs_get(cm_plugin *p, const char *id, cmp_job *out)
{
    int found = 0;
    pthread_mutex_lock(&p->mu);
    for (cmp_job *j = p->jobs; j; j = j->next) {
        if (strcmp(j->id, id) == 0) {
            *out = *j;
            out->id = NULL;
            out->ws = NULL;
            out->user = NULL;
            out->next = NULL;
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return found;
}

/* The workspace and user of job id into ws and user (cap bytes each; "" when unknown). */
static void jobs_who(cm_plugin *p, const char *id, char *ws, char *user, size_t cap)
{
    ws[0] = user[0] = '\0';
    pthread_mutex_lock(&p->mu);
    for (cmp_job *j = p->jobs; j; j = j->next) {
        if (strcmp(j->id, id) == 0) {
            cmp_strlcpy(ws, j->ws, cap);
            cmp_strlcpy(user, j->user, cap);
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
}

static void jobs_renewed(cm_plugin *p, const char *id, int64_t renewed_ms)
{
    pthread_mutex_lock(&p->mu);
    for (cmp_job *j = p->jobs; j; j = j->next)
        if (strcmp(j->id, id) == 0)
            j->renewed_ms = renewed_ms;
    pthread_mutex_unlock(&p->mu);
}

static void jobs_remove(cm_plugin *p, const char *id)
{
    pthread_mutex_lock(&p->mu);
    jobs_unlink_locked(p, id);
    pthread_mutex_unlock(&p->mu);
}

void cmp_jobs_free(cm_plugin *p)
{
    pthread_mutex_lock(&p->mu);
    while (p->jobs) {
        cmp_job *j = p->jobs;
        p->jobs = j->next;
        job_free(j);
    }
    pthread_mutex_unlock(&p->mu);
}

/* ---- job_begin ------------------------------------------------------------------ */

/* 64-bit FNV-1a. */
#define FNV_OFFSET UINT64_C(14695981039346656037)
#define FNV_PRIME UINT64_C(1099511628211)
static uint64_t fnv1a(uint64_t h, const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * FNV_PRIME;
    return h;
}

#define FP_SPAN (64 * 1024)

/* Hashes len bytes of fd from off into *h. Returns 0 or -1 (read error). */
static int hash_span(int fd, int64_t off, int64_t len, unsigned char *buf, uint64_t *h)
{
    while (len > 0) {
        ssize_t n = pread(fd, buf, (size_t)(len < FP_SPAN ? len : FP_SPAN), (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        *h = fnv1a(*h, buf, (size_t)n);
        off += n;
        len -= n;
    }
    return 0;
}

/* The input binding of a by-input job: "by-input size=S ms=M fnv1a64=H", H the 64-bit
 * FNV-1a of the file's first 64 KiB, its last 64 KiB (the bytes after the first 64 KiB
 * when the file is shorter than 128 KiB) and its size as 8 little-endian bytes: cheap
 * (128 KiB read at most; 1 MiB each side cost 23x more: bench/bench_fingerprint), and it
 * changes with the container's header and the start of an index
 * at either end, the first and last packets, the length in bytes and, through M, the
 * playing time. Returns 0 or -1 (errno set). */
static int input_binding(const char *path, int64_t measured_ms, char *out, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    unsigned char *buf = malloc(FP_SPAN);
    int rc = buf && fstat(fd, &st) == 0 ? 0 : -1;
    uint64_t h = FNV_OFFSET;
    int64_t size = rc ? 0 : (int64_t)st.st_size;
    int64_t head = size < FP_SPAN ? size : FP_SPAN;
    int64_t tail = size - head < FP_SPAN ? size - head : FP_SPAN;
    if (!rc)
        rc = hash_span(fd, 0, head, buf, &h);
    if (!rc)
        rc = hash_span(fd, size - tail, tail, buf, &h);
    if (!rc) {
        unsigned char le[8];
        for (int i = 0; i < 8; i++)
            le[i] = (unsigned char)((uint64_t)size >> (8 * i));
        h = fnv1a(h, le, sizeof le);
        snprintf(out, cap, "by-input size=%lld ms=%lld fnv1a64=%016llx", (long long)size,
                 (long long)measured_ms, (unsigned long long)h);
    }
    int saved = errno;
    free(buf);
    close(fd);
    errno = saved;
    return rc;
}

/* Measures the input into q. Returns OK or E_BAD_FILE / E_NOMEM (q has the cause). */
static int quote_by_input(cm_plugin *p, const char *path, cm_plugin_quote *q)
{
    cm_probe_report *r = NULL;
    int64_t t0 = cm__mono_ns();
    int rc = cm_probe_file(p->probe, path, &r);
    cm__count_probe(p, t0, r ? cm_probe_report_bytes_read(r) : 0);
    if (rc != CM_PROBE_OK) {
        q->cause = CM_PLUGIN_CAUSE_PROBE;
        q->cause_code = rc;
        snprintf(q->message, sizeof q->message, "input refused (%s): %s", cm_probe_err_name(rc),
                 r && cm_probe_report_errmsg(r)[0] ? cm_probe_report_errmsg(r)
                                                   : cm_probe_strerror(rc));
        cm_probe_report_free(r);
        return rc == CM_PROBE_E_NOMEM ? CM_PLUGIN_E_NOMEM : CM_PLUGIN_E_BAD_FILE;
    }
    q->credits = cm_probe_report_credits(r);
    q->measured_ms = cm_probe_report_measured_ms(r);
    q->declared_ms = cm_probe_report_declared_ms(r);
    q->billable_ms = cm_probe_report_billable_ms(r);
    q->method = cmp_method(cm_probe_report_method(r));
    cmp_strlcpy(q->method_name, cm_probe_method_name(cm_probe_report_method(r)),
                sizeof q->method_name);
    enum cm_probe_note note = cm_probe_report_note(r);
    if (note != CM_PROBE_NOTE_NONE)
        snprintf(q->note, sizeof q->note, "%s: %s", cm_probe_note_name(note),
                 cm_probe_note_text(note));
    cm__ev ev = {.event = "probe", .credits = q->credits};
    cm__log_event(p, CM_PLUGIN_LOG_DEBUG, &ev, "input %s: %lld ms measured by %s, %lld bytes read",
                  path, (long long)q->measured_ms, q->method_name,
                  (long long)cm_probe_report_bytes_read(r));
    cm_probe_report_free(r);
    return CM_PLUGIN_OK;
}

/* The grace, when it changed the credits of ms: "500 ms grace for encoder padding"
 * (60.400 s is 1 credit with it, 2 without); "" when it changed nothing. */
static void grace_text(const cm_plugin *p, int64_t ms, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (p->grace_ms > 0 && cm_probe_credits_for(ms, p->grace_ms) != cm_probe_credits_for(ms, 0))
        snprintf(buf, cap, "%lld ms grace for encoder padding", (long long)p->grace_ms);
}

static void quote_by_output(cm_plugin *p, int64_t requested_ms, cm_plugin_quote *q)
{
    q->credits = cm_probe_credits_for(requested_ms, p->grace_ms);
    q->measured_ms = requested_ms;
    q->billable_ms = requested_ms;
    q->method = CM_PLUGIN_METHOD_REQUESTED;
    cmp_strlcpy(q->method_name, "requested", sizeof q->method_name);
}

/* Appends printf-style text to buf (cap bytes), never past its end. */
__attribute__((format(printf, 3, 4))) static void append(char *buf, size_t cap, const char *fmt,
                                                         ...)
{
    size_t n = strlen(buf);
    if (n + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, cap - n, fmt, ap);
    va_end(ap);
}

/* The quote in one line for the ledger's note of the hold: "3 credits for 180.224 s
   measured by packet_scan, the header declares no duration (...)"; with the grace
   when it changed the credits ("1 credit for 60.400 s measured by mp4_index, 500 ms
   grace for encoder padding, ..."). */
static void describe_quote(const cm_plugin *p, const cm_plugin_quote *q, int billing, char *buf,
                           size_t cap)
{
    buf[0] = '\0';
    long long ms = (long long)q->measured_ms;
    char grace[64];
    grace_text(p, q->billable_ms, grace, sizeof grace);
    const char *unit = credits_word(q->credits);
    if (billing == CM_PLUGIN_BY_OUTPUT) {
        append(buf, cap, "%lld %s quoted for %lld.%03lld s of requested output",
               (long long)q->credits, unit, ms / 1000, ms % 1000);
        if (grace[0])
            append(buf, cap, ", %s", grace);
        append(buf, cap, "; charged on the output's measured length, at most the quote");
        return;
    }
    append(buf, cap, "%lld %s for %lld.%03lld s measured by %s", (long long)q->credits, unit,
           ms / 1000, ms % 1000, q->method_name);
    if (q->billable_ms != q->measured_ms)
        append(buf, cap, ", billed on %lld.%03lld s", (long long)q->billable_ms / 1000,
               (long long)q->billable_ms % 1000);
    if (grace[0])
        append(buf, cap, ", %s", grace);
    if (q->declared_ms < 0) {
        append(buf, cap, ", the header declares no duration");
        return;
    }
    append(buf, cap, ", the header says %lld.%03lld s", (long long)q->declared_ms / 1000,
           (long long)q->declared_ms % 1000);
    if (q->note[0]) /* why they differ */
        append(buf, cap, " (%s)", q->note);
}

/* Fills in why a reserve was refused. Returns the plugin's code. */
static int refuse_reserve(cm_plugin *p, const cm_plugin_job_spec *s, int rc, const char *why,
                          cm_plugin_quote *q)
{
    int code = cmp_from_ledger(rc);
    q->cause = CM_PLUGIN_CAUSE_LEDGER;
    q->cause_code = rc;
    if (code == CM_PLUGIN_E_INSUFFICIENT) {
        cm_ledger_quote_result *lq = NULL;
        cm_ledger *l = cm__ledger_get(p);
        int64_t t0 = cm__mono_ns();
        int qrc = cm_ledger_quote(l, s->workspace, q->credits, s->user, &lq);
        cm__ledger_timed(p, CM__LC_QUOTE, t0, qrc);
        cm__ledger_put(p, l, qrc, NULL, 0);
        if (qrc == CM_LEDGER_OK) {
            q->available = lq->available;
            cm_ledger_quote_free(lq);
        }
        snprintf(q->message, sizeof q->message,
                 "insufficient credits: job %s needs %lld, workspace %s has %lld available", s->job,
                 (long long)q->credits, s->workspace, (long long)q->available);
    } else if (code == CM_PLUGIN_E_FORBIDDEN) {
        snprintf(q->message, sizeof q->message,
                 "forbidden: %s is not a member of workspace %s (or it does not exist)", s->user,
                 s->workspace);
    } else {
        snprintf(q->message, sizeof q->message, "job %s: %s", s->job, why);
    }
    return code;
}

static int spec_ok(const cm_plugin_job_spec *s, int need_job)
{
    return (!need_job || (s->job && s->job[0])) && s->workspace && s->workspace[0] && s->user &&
           s->user[0] && s->lease_s >= 0 &&
           ((s->billing == CM_PLUGIN_BY_INPUT && s->input_path && s->input_path[0]) ||
            (s->billing == CM_PLUGIN_BY_OUTPUT && s->requested_output_ms > 0));
}

static void quote_init(cm_plugin_quote *q)
{
    memset(q, 0, sizeof *q);
    q->struct_size = sizeof *q;
    q->declared_ms = -1;
    q->available = -1;
    q->lease_until_ms = -1;
}

/* Measures and prices the job of spec into q (with its receipt), and its input binding
 * into binding. Returns OK, E_BAD_FILE or E_NOMEM (q has the cause). */
static int measure(cm_plugin *p, const cm_plugin_job_spec *spec, cm_plugin_quote *q, char *binding,
                   size_t bcap)
{
    int code = CM_PLUGIN_OK;
    if (spec->billing == CM_PLUGIN_BY_INPUT) {
        code = quote_by_input(p, spec->input_path, q);
        if (code == CM_PLUGIN_OK &&
            input_binding(spec->input_path, q->measured_ms, binding, bcap)) {
            code = CM_PLUGIN_E_BAD_FILE;
            snprintf(q->message, sizeof q->message, "input refused: cannot read %s: %s",
                     spec->input_path, strerror(errno));
        }
    } else {
        quote_by_output(p, spec->requested_output_ms, q);
        /* the tag keeps a by-output job from passing for a by-input one under one id */
        snprintf(binding, bcap, "by-output requested_ms=%lld",
                 (long long)spec->requested_output_ms);
    }
    if (code == CM_PLUGIN_OK)
        describe_quote(p, q, spec->billing, q->receipt, sizeof q->receipt);
    return code;
}

static void grants_from_takes(cm_plugin_quote *q, const cm_ledger_take *t, size_t n)
{
    q->n_grants = (int)n;
    for (size_t i = 0; i < n && i < CM_PLUGIN_QUOTE_GRANTS; i++)
        q->grants[i] = (cm_plugin_quote_grant){t[i].grant_id, cmp_grant_kind(t[i].kind),
                                               t[i].credits, t[i].expires_ms};
}

/* The host's spec over the defaults (zeros) of the fields it lacks. Returns 0, or -1
 * when its struct_size is below ABI 1.0's. */
static int spec_in(cm_plugin_job_spec *s, const cm_plugin_job_spec *host)
{
    memset(s, 0, sizeof *s);
    s->struct_size = sizeof *s;
    return cmp_copy_in(s, sizeof *s, host, CM_PLUGIN_JOB_SPEC_SIZE_1_0);
}

/* One job_begin or quote() call: the host's spec read over the defaults, the quote
 * being made, the input binding. */
typedef struct call {
    cm_plugin_job_spec spec;
    cm_plugin_quote q;
    char binding[256];
} call;

/* What job_begin and quote() share before the ledger: the arguments and the host's
 * structs checked (quote_min: the quote's smallest struct_size), the spec read, the
 * input measured and priced, into *c. Returns OK or the code to report; *early is set
 * when the call must return that code at once, writing nothing (NULL arguments, struct
 * sizes the plugin cannot serve). */
static int prepare(cm_plugin *p, const char *what, const cm_plugin_job_spec *host_spec,
                   const cm_plugin_quote *quote, size_t quote_min, int need_job, call *c,
                   int *early)
{
    *early = 1;
    if (!p || !host_spec || !quote)
        return cmp_fail(p, CM_PLUGIN_E_INVALID, 0, 0, "%s: NULL argument", what);
    quote_init(&c->q);
    c->binding[0] = '\0';
    if (spec_in(&c->spec, host_spec) != 0 || quote->struct_size < quote_min)
        return cmp_fail(p, CM_PLUGIN_E_ABI, 0, 0, "%s: struct_size below ABI %s", what,
                        need_job ? "1.0" : "1.1");
    *early = 0;
    if (!spec_ok(&c->spec, need_job)) {
        snprintf(c->q.message, sizeof c->q.message,
                 "%s needs %sa workspace, user, a billing kind and its input path or requested "
                 "length",
                 what, need_job ? "a job id, " : "");
        return CM_PLUGIN_E_INVALID;
    }
    int code = measure(p, &c->spec, &c->q, c->binding, sizeof c->binding);
    if (code == CM_PLUGIN_OK)
        CM__COUNT(p, m_->credits_quoted += c->q.credits);
    return code;
}

/* The strings of a log record about spec (which may hold NULLs). */
static cm__ev spec_ev(const char *event, const cm_plugin_job_spec *spec, int64_t credits)
{
    return (cm__ev){.event = event,
                    .job = spec->job,
                    .ws = spec->workspace,
                    .user = spec->user,
                    .credits = credits};
}

/* job_begin once measured and priced (code: prepare's), into *quote. */
static int begin_priced(cm_plugin *p, const cm_plugin_job_spec *spec, cm_plugin_quote *q,
                        const char *binding, int code, cm_plugin_quote *quote)
{
    if (code != CM_PLUGIN_OK)
        goto done;

    int64_t lease_s = spec->lease_s > 0 ? spec->lease_s : p->default_lease_s;
    /* Why it costs what it costs, kept with the hold for support staff; the input
     * binding makes the job id name this input only. */
    cm_ledger_job *j = NULL;
    char why[CM__WHY];
    cm_ledger *l = cm__ledger_get(p);
    int64_t t0 = cm__mono_ns(), asked_ms = cmp_now_ms(p);
    int rc = cm_ledger_reserve_bound(l, spec->workspace, spec->job, q->credits, spec->user, lease_s,
                                     q->receipt, binding, &j);
    cm__ledger_timed(p, CM__LC_RESERVE, t0, rc);
    cm__ledger_put(p, l, rc, why, sizeof why);
    if (rc != CM_LEDGER_OK) {
        code = refuse_reserve(p, spec, rc, why, q);
        goto done;
    }
    q->hold_state = cmp_hold_state(j->state);
    q->lease_until_ms = j->lease_until_ms;
    int committed = j->state == CM_LEDGER_COMMITTED;
    cmp_job seen;
    q->replayed = j->state != CM_LEDGER_HELD || jobs_get(p, spec->job, &seen);
    if (committed && j->refunded > 0) {
        /* support gave the charge back: the job is over, running it again is not free */
        code = CM_PLUGIN_E_JOB_CLOSED;
        q->cause = CM_PLUGIN_CAUSE_LEDGER;
        q->cause_code = CM_LEDGER_E_JOB_CLOSED;
        snprintf(q->message, sizeof q->message,
                 "job %s was charged %lld credits and %lld were refunded since: the job is "
                 "closed; a new attempt needs a new id",
                 spec->job, (long long)j->charged, (long long)j->refunded);
        cm_ledger_job_free(j);
        goto done;
    }
    q->affordable = 1;
    grants_from_takes(q, j->takes, j->n_takes);
    cm_ledger_job_free(j);
    cmp_job fields = {.billing = spec->billing,
                      .credits = q->credits,
                      .lease_s = lease_s,
                      .committed = committed,
                      .renewed_ms = asked_ms,
                      .requested_ms =
                          spec->billing == CM_PLUGIN_BY_OUTPUT ? spec->requested_output_ms : -1};
    if (jobs_put(p, spec, &fields) != 0) {
        /* the hold stands and lapses with its lease; a retry of job_begin finds it */
        code = CM_PLUGIN_E_NOMEM;
        cmp_strlcpy(q->message, "out of memory", sizeof q->message);
        goto done;
    }
    if (!q->replayed)
        CM__COUNT(p, (m_->begun++, m_->credits_held += q->credits));
    cm_ledger_balance_result *b = NULL;
    l = cm__ledger_get(p);
    t0 = cm__mono_ns();
    rc = cm_ledger_balance(l, spec->workspace, spec->user, &b);
    cm__ledger_timed(p, CM__LC_BALANCE, t0, rc);
    cm__ledger_put(p, l, rc, NULL, 0);
    if (rc == CM_LEDGER_OK) {
        q->available = b->available;
        cm_ledger_balance_free(b);
    }
    cm__ev ev = spec_ev("job_begin", spec, q->credits);
    cm__log_event(p, CM_PLUGIN_LOG_INFO, &ev, "job %s: %s %lld %s (%lld ms, %s)%s", spec->job,
                  committed ? "already charged" : "holding", (long long)q->credits,
                  credits_word(q->credits), (long long)q->billable_ms, q->method_name,
                  q->replayed ? " [retry]" : "");
done:
    if (code != CM_PLUGIN_OK) {
        cm__ev fev = spec_ev("job_refused", spec, q->credits > 0 ? q->credits : -1);
        cm__fail_ev(p, &fev, code, q->cause, q->cause_code, "%s", q->message);
        CM__COUNT(p, m_->refused[-code < CM__CODES ? -code : 0]++);
    }
    cmp_copy_out(quote, q, sizeof *q);
    return code;
}

int cmp_job_begin(cm_plugin *p, const cm_plugin_job_spec *host_spec, cm_plugin_quote *quote)
{
    call c;
    int early,
        code = prepare(p, "job_begin", host_spec, quote, CM_PLUGIN_QUOTE_SIZE_1_0, 1, &c, &early);
    return early ? code : begin_priced(p, &c.spec, &c.q, c.binding, code, quote);
}

/* quote once measured and priced (code: prepare's), into *quote. */
static int quote_priced(cm_plugin *p, const cm_plugin_job_spec *spec, cm_plugin_quote *q, int code,
                        cm_plugin_quote *quote)
{
    if (code != CM_PLUGIN_OK)
        goto done;
    cm_ledger_quote_result *lq = NULL;
    char why[CM__WHY];
    cm_ledger *l = cm__ledger_get(p);
    int64_t t0 = cm__mono_ns();
    int rc = cm_ledger_quote(l, spec->workspace, q->credits, spec->user, &lq);
    cm__ledger_timed(p, CM__LC_QUOTE, t0, rc);
    cm__ledger_put(p, l, rc, why, sizeof why);
    if (rc != CM_LEDGER_OK) {
        code = cmp_from_ledger(rc);
        q->cause = CM_PLUGIN_CAUSE_LEDGER;
        q->cause_code = rc;
        if (code == CM_PLUGIN_E_FORBIDDEN)
            snprintf(q->message, sizeof q->message,
                     "forbidden: %s is not a member of workspace %s (or it does not exist)",
                     spec->user, spec->workspace);
        else
            snprintf(q->message, sizeof q->message, "quote: %s", why);
        goto done;
    }
    q->available = lq->available;
    q->affordable = lq->affordable;
    grants_from_takes(q, lq->takes, lq->n_takes);
    cm_ledger_quote_free(lq);
    cm__ev ev = spec_ev("quote", spec, q->credits);
    cm__log_event(p, CM_PLUGIN_LOG_DEBUG, &ev, "quote: %lld %s, %s (%lld available)",
                  (long long)q->credits, credits_word(q->credits),
                  q->affordable ? "affordable" : "not affordable", (long long)q->available);
done:
    if (code != CM_PLUGIN_OK) {
        cm__ev fev = spec_ev("quote", spec, q->credits > 0 ? q->credits : -1);
        cm__fail_ev(p, &fev, code, q->cause, q->cause_code, "%s", q->message);
    }
    cmp_copy_out(quote, q, sizeof *q);
    return code;
}

int cmp_quote(cm_plugin *p, const cm_plugin_job_spec *host_spec, cm_plugin_quote *quote)
{
    call c;
    int early,
        code = prepare(p, "quote", host_spec, quote, CM_PLUGIN_QUOTE_SIZE_1_1, 0, &c, &early);
    return early ? code : quote_priced(p, &c.spec, &c.q, code, quote);
}

/* ---- stages ------------------------------------------------------------------------ */

static int renew(cm_plugin *p, const char *job, const char *what)
{
    cmp_job j;
    cm__ev ev = {.event = what, .job = job, .credits = -1};
    if (!jobs_get(p, job, &j))
        return cm__fail_ev(p, &ev, CM_PLUGIN_E_NO_JOB, 0, 0,
                           "%s: job %s was not begun on this handle", what, job);
    if (j.committed)
        return CM_PLUGIN_OK; /* a retry of a charged job: nothing is held */
    if (j.lapsed)            /* the keepalive found it lapsed: stop the job */
        return cm__fail_ev(p, &ev, CM_PLUGIN_E_LEASE_LAPSED, CM_PLUGIN_CAUSE_LEDGER,
                           CM_LEDGER_E_LEASE_EXPIRED, "%s: job %s: its hold lapsed", what, job);
    /* A hook right after another one (stage_end, then the next stage_begin) or right
     * after a keepalive tick would move the lease end by milliseconds for the price of
     * a durable write: while at least 90 % of the lease is still ahead (less than 10 %
     * of it passed since the last renewal), the renewal is already done. */
    int64_t asked_ms = cmp_now_ms(p);
    if (asked_ms - j.renewed_ms < j.lease_s * 100)
        return CM_PLUGIN_OK;
    cm_ledger_job *lj = NULL;
    char why[CM__WHY];
    cm_ledger *l = cm__ledger_get(p);
    int64_t t0 = cm__mono_ns();
    int rc = cm_ledger_renew(l, job, j.lease_s, &lj);
    cm__ledger_timed(p, CM__LC_RENEW, t0, rc);
    cm__ledger_put(p, l, rc, why, sizeof why);
    if (rc != CM_LEDGER_OK)
        return cm__fail_ev(p, &ev, cmp_from_ledger(rc), CM_PLUGIN_CAUSE_LEDGER, rc,
                           "%s: job %s: %s", what, job, why);
    jobs_renewed(p, job, asked_ms);
    cm__ev rev = {.event = "renew", .job = job, .credits = -1};
    cm__log_event(p, CM_PLUGIN_LOG_DEBUG, &rev, "job %s: lease renewed by %s to %lld", job, what,
                  (long long)lj->lease_until_ms);
    cm_ledger_job_free(lj);
    return CM_PLUGIN_OK;
}

int cmp_stage_begin(cm_plugin *p, const char *job, const char *stage)
{
    if (!p || !job || !job[0] || !stage)
        return cmp_fail(p, CM_PLUGIN_E_INVALID, 0, 0, "stage_begin: NULL argument");
    cm__ev ev = {.event = "stage_begin", .job = job, .credits = -1};
    cm__log_event(p, CM_PLUGIN_LOG_DEBUG, &ev, "job %s: stage %s begins", job, stage);
    return renew(p, job, "stage_begin");
}

int cmp_stage_end(cm_plugin *p, const char *job, const char *stage, int ok, const char *message)
{
    if (!p || !job || !job[0] || !stage)
        return cmp_fail(p, CM_PLUGIN_E_INVALID, 0, 0, "stage_end: NULL argument");
    cm__ev ev = {.event = "stage_end", .job = job, .credits = -1};
    cm__log_event(p, ok ? CM_PLUGIN_LOG_DEBUG : CM_PLUGIN_LOG_WARN, &ev, "job %s: stage %s %s%s%s",
                  job, stage, ok ? "done" : "failed", message ? ": " : "", message ? message : "");
    return renew(p, job, "stage_end");
}

/* ---- job_end ---------------------------------------------------------------------- */

static void outcome_from(cm_plugin_outcome *o, const cm_ledger_job *j)
{
    o->hold_state = cmp_hold_state(j->state);
    o->quoted = j->credits;
    o->charged = j->charged;
}

/* By output: the credits of the output's measured length, at most the quote, and why
 * (into note): "1 credit for 59.800 s of measured output (requested 75.000 s, quoted
 * 2 credits)". */
static int measure_output(cm_plugin *p, const char *job, const cmp_job *j, const char *path,
                          int64_t *credits, cm_plugin_outcome *o, char *note, size_t cap)
{
    cm_probe_report *r = NULL;
    int64_t t0 = cm__mono_ns();
    int rc = path ? cm_probe_file(p->probe, path, &r) : CM_PROBE_E_INVALID;
    if (path)
        cm__count_probe(p, t0, r ? cm_probe_report_bytes_read(r) : 0);
    if (rc != CM_PROBE_OK) {
        o->cause = CM_PLUGIN_CAUSE_PROBE;
        o->cause_code = rc;
        snprintf(o->message, sizeof o->message, "job %s: output %s refused (%s): %s", job,
                 path ? path : "(none)", cm_probe_err_name(rc),
                 r && cm_probe_report_errmsg(r)[0] ? cm_probe_report_errmsg(r)
                                                   : cm_probe_strerror(rc));
        cm_probe_report_free(r);
        return CM_PLUGIN_E_BAD_OUTPUT;
    }
    o->output_ms = cm_probe_report_measured_ms(r);
    int64_t billable = cm_probe_report_billable_ms(r);
    int64_t c = cm_probe_report_credits(r);
    cm_probe_report_free(r);
    *credits = c < j->credits ? c : j->credits;
    if (*credits < 1)
        *credits = 1; /* nothing costs 0: the probe prices any output at 1 credit or more */
    char grace[64];
    grace_text(p, billable, grace, sizeof grace);
    long long out = (long long)o->output_ms, req = (long long)j->requested_ms;
    snprintf(note, cap,
             "%lld credit%s for %lld.%03lld s of measured output%s%s (requested %lld.%03lld s, "
             "quoted %lld credit%s)%s",
             (long long)*credits, *credits == 1 ? "" : "s", out / 1000, out % 1000,
             grace[0] ? ", " : "", grace, req / 1000, req % 1000, (long long)j->credits,
             j->credits == 1 ? "" : "s",
             c > j->credits   ? "; the output ran longer than requested: charged the quote"
             : c < j->credits ? "; the output was shorter than requested: charged what it measured"
                              : "");
    return CM_PLUGIN_OK;
}

/* A ledger call of job_end, timed, on a pooled handle; its failure's message into why
 * (may be NULL). */
static int end_call(cm_plugin *p, int call, const char *job, int64_t credits, const char *note,
                    cm_ledger_job **lj, char *why, size_t cap)
{
    cm_ledger *l = cm__ledger_get(p);
    int64_t t0 = cm__mono_ns();
    int rc = call == CM__LC_COMMIT    ? cm_ledger_commit_noted(l, job, credits, note, lj)
             : call == CM__LC_RELEASE ? cm_ledger_release(l, job, lj)
                                      : cm_ledger_job_info(l, job, lj);
    cm__ledger_timed(p, call, t0, rc);
    cm__ledger_put(p, l, rc, why, cap);
    return rc;
}

/* Counts and logs the job's resolution (not for a replay of a charged job). */
static void resolved(cm_plugin *p, const cmp_job *j, const char *job, const cm_plugin_outcome *o)
{
    char ws[256], user[256];
    jobs_who(p, job, ws, user, sizeof ws);
    cm__ev ev = {.job = job, .ws = ws, .user = user, .credits = o->charged};
    if (o->hold_state == CM_PLUGIN_HOLD_COMMITTED) {
        ev.event = "commit";
        CM__COUNT(p, (m_->committed++, m_->credits_charged += o->charged,
                      m_->credits_released += o->quoted - o->charged));
        cm__log_event(p, CM_PLUGIN_LOG_INFO, &ev, "job %s: committed, %lld of %lld %s charged", job,
                      (long long)o->charged, (long long)o->quoted, credits_word(o->quoted));
    } else if (o->hold_state == CM_PLUGIN_HOLD_LAPSED) {
        /* logged by job_end's failure; the keepalive counted it already if it saw it */
        if (!j->lapsed)
            CM__COUNT(p, (m_->lapsed++, m_->credits_released += o->quoted));
    } else if (o->hold_state == CM_PLUGIN_HOLD_RELEASED) {
        ev.event = "release";
        ev.credits = o->quoted;
        CM__COUNT(p, (m_->released++, m_->credits_released += o->quoted));
        cm__log_event(p, CM_PLUGIN_LOG_INFO, &ev, "job %s: released, %lld %s given back", job,
                      (long long)o->quoted, credits_word(o->quoted));
    }
}

int cmp_job_end(cm_plugin *p, const char *job, int ok, const char *output_path,
                cm_plugin_outcome *outcome)
{
    if (!p || !job || !job[0])
        return cmp_fail(p, CM_PLUGIN_E_INVALID, 0, 0, "job_end: NULL argument");
    if (outcome && outcome->struct_size < CM_PLUGIN_OUTCOME_SIZE_1_0)
        return cmp_fail(p, CM_PLUGIN_E_ABI, 0, 0, "job_end: struct_size below ABI 1.0");
    cm_plugin_outcome o;
    memset(&o, 0, sizeof o);
    o.struct_size = sizeof o;
    o.output_ms = -1;
    cmp_job j;
    memset(&j, 0, sizeof j);
    int code = CM_PLUGIN_OK, forget = 1;
    cm_ledger_job *lj = NULL;
    char why[CM__WHY] = "";
    if (!jobs_get(p, job, &j)) {
        code = CM_PLUGIN_E_NO_JOB;
        snprintf(o.message, sizeof o.message, "job_end: job %s was not begun on this handle", job);
        forget = 0;
        goto done;
    }
    o.quoted = j.credits;
    int rc;
    if (j.committed) {
        /* a retry of a job charged before: report the first charge, change nothing */
        o.replayed = 1;
        rc = end_call(p, CM__LC_JOB_INFO, job, 0, NULL, &lj, why, sizeof why);
    } else if (ok) {
        int64_t credits = CM_LEDGER_ALL;
        char note[400];
        note[0] = '\0';
        if (j.billing == CM_PLUGIN_BY_OUTPUT) {
            code = measure_output(p, job, &j, output_path, &credits, &o, note, sizeof note);
            if (code != CM_PLUGIN_OK) {
                /* nothing is charged for an output we cannot measure */
                rc = end_call(p, CM__LC_RELEASE, job, 0, NULL, &lj, why, sizeof why);
                if (rc == CM_LEDGER_OK) {
                    outcome_from(&o, lj);
                    resolved(p, &j, job, &o);
                } else {
                    forget = 0, code = cmp_from_ledger(rc);
                }
                goto done;
            }
        }
        rc = end_call(p, CM__LC_COMMIT, job, credits, note[0] ? note : NULL, &lj, why, sizeof why);
    } else {
        rc = end_call(p, CM__LC_RELEASE, job, 0, NULL, &lj, why, sizeof why);
    }
    if (rc != CM_LEDGER_OK) {
        code = cmp_from_ledger(rc);
        o.cause = CM_PLUGIN_CAUSE_LEDGER;
        o.cause_code = rc;
        snprintf(o.message, sizeof o.message, "job %s: %s", job, why);
        /* busy or storage failures leave the job for a retry of job_end */
        forget = code != CM_PLUGIN_E_LEDGER && code != CM_PLUGIN_E_NOMEM;
        if (code == CM_PLUGIN_E_LEASE_LAPSED || code == CM_PLUGIN_E_JOB_CLOSED) {
            cm_ledger_job *info = NULL;
            if (end_call(p, CM__LC_JOB_INFO, job, 0, NULL, &info, NULL, 0) == CM_LEDGER_OK) {
                outcome_from(&o, info);
                cm_ledger_job_free(info);
                resolved(p, &j, job, &o);
            }
        }
        goto done;
    }
    outcome_from(&o, lj);
    if (!o.replayed)
        resolved(p, &j, job, &o);
    else {
        char ws[256], user[256];
        jobs_who(p, job, ws, user, sizeof ws);
        cm__ev ev = {.event = "commit", .job = job, .ws = ws, .user = user, .credits = o.charged};
        cm__log_event(p, CM_PLUGIN_LOG_INFO, &ev,
                      "job %s: already charged %lld %s by an earlier run [retry]", job,
                      (long long)o.charged, credits_word(o.charged));
    }
done:
    cm_ledger_job_free(lj);
    char ws[256], user[256];
    jobs_who(p, job, ws, user, sizeof ws);
    if (forget)
        jobs_remove(p, job);
    if (code != CM_PLUGIN_OK) {
        cm__ev ev = {.event = code == CM_PLUGIN_E_LEASE_LAPSED && !j.lapsed ? "lease_lapsed"
                                                                            : "job_failed",
                     .job = job,
                     .ws = ws,
                     .user = user,
                     .credits = -1};
        cm__fail_ev(p, &ev, code, o.cause, o.cause_code, "%s", o.message);
    }
    if (outcome)
        cmp_copy_out(outcome, &o, sizeof o);
    return code;
}
