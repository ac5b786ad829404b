/* SPDX-License-Identifier: MIT */
/*
 * cm-ledger - the command line face of the ledger: a thin client of cm_ledger.h.
 *
 * It parses arguments, calls one cm_ledger_* function and prints the result, as text
 * or (--json) as one JSON document on stdout. Exit status: 0 success, 1 the ledger
 * refused (machine name and sentence on stderr; with --json an {"error": ...}
 * document on stdout instead), 2 usage error, 3 a retryable failure (busy,
 * storage_unavailable: run the same command again). No SQL here.
 */
#include "cm_ledger.h"
#include "cm_text.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_REFUSED 1
#define EXIT_USAGE 2
#define EXIT_RETRY 3 /* busy or unavailable storage: the same command may be run again */

/* Options that take a value, and flags. */
static const char *const value_opts[] = {
    "--ledger", "--now",   "--owner",     "--region", "--as",    "--credits", "--interval",
    "--tier",   "--ref",   "--lease",     "--reason", "--by",    "--note",    "--below",
    "--after",  "--limit", "--workspace", "--since",  "--until", "--format",  "--timeout"};
#define N_OPTS (sizeof value_opts / sizeof value_opts[0])

typedef struct args {
    const char *opt[N_OPTS];
    int json;
    int create; /* --create */
    const char *pos[8];
    int npos;
    int64_t lease; /* --lease in seconds, 0 when not given */
} args;

static int json_mode;

static void print_usage(FILE *f);

/* A usage error: the sentence and the usage on stderr; with --json, a JSON document on
 * stdout instead ({"ok": false, "error": {"code": "usage", "message": ...}}). */
static int usage(const char *why)
{
    if (json_mode) {
        fputs("{\"ok\": false, \"error\": {\"code\": \"usage\", \"message\": ", stdout);
        cm__json_escape(stdout, why);
        fputs("}}\n", stdout);
        return EXIT_USAGE;
    }
    fprintf(stderr, "cm-ledger: %s\n", why);
    print_usage(stderr);
    return EXIT_USAGE;
}

static const char *opt(const args *a, const char *name)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (!strcmp(value_opts[i], name))
            return a->opt[i];
    return NULL;
}

static int parse_args(int argc, char **argv, args *a, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--json")) {
            a->json = 1;
            continue;
        }
        if (!strcmp(s, "--create")) {
            a->create = 1;
            continue;
        }
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            snprintf(err, errlen, "help");
            return -1;
        }
        if (!strcmp(s, "--db")) /* the 0.2 name of --ledger */
            s = "--ledger";
        if (s[0] == '-' && s[1] == '-') {
            size_t k = 0;
            while (k < N_OPTS && strcmp(value_opts[k], s))
                k++;
            if (k == N_OPTS) {
                snprintf(err, errlen, "unknown option %s", s);
                return -1;
            }
            if (i + 1 >= argc) {
                snprintf(err, errlen, "option %s needs a value", s);
                return -1;
            }
            if (a->opt[k]) {
                snprintf(err, errlen, "option %s given twice", s);
                return -1;
            }
            a->opt[k] = argv[++i];
            continue;
        }
        if (a->npos == (int)(sizeof a->pos / sizeof a->pos[0])) {
            snprintf(err, errlen, "too many arguments");
            return -1;
        }
        a->pos[a->npos++] = s;
    }
    return 0;
}

static int parse_int(const char *s, int64_t *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || (s[0] < '0' || s[0] > '9'))
        return -1;
    *out = v;
    return 0;
}

/* ---- output ---- */

/* "credit" for 1, "credits" otherwise: what people read says "1 credit". */
static const char *credits_word(int64_t n)
{
    return n == 1 ? "credit" : "credits";
}

/* A JSON string (null for NULL); bytes that are not valid UTF-8 become U+FFFD so the
   document stays valid whatever an id holds. */
static void json_str(const char *s)
{
    cm__json_escape(stdout, s);
}

static void json_time(int64_t ms)
{
    char buf[40];
    if (ms < 0)
        fputs("null", stdout);
    else
        json_str(cm_ledger_time_format(ms, buf, sizeof buf));
}

static const char *text_time(int64_t ms, char *buf, size_t n)
{
    return ms < 0 ? "never" : cm_ledger_time_format(ms, buf, n);
}

static int refused(int rc, const cm_ledger *l)
{
    const char *msg = cm_ledger_errmsg(l);
    if (!msg || !*msg)
        msg = cm_ledger_strerror(rc);
    if (json_mode) {
        fputs("{\"error\": ", stdout);
        json_str(cm_ledger_err_name(rc));
        fputs(", \"message\": ", stdout);
        json_str(msg);
        fputs("}\n", stdout);
    } else {
        fprintf(stderr, "cm-ledger: %s: %s\n", cm_ledger_err_name(rc), msg);
    }
    if (rc == CM_LEDGER_E_BUSY || rc == CM_LEDGER_E_UNAVAILABLE)
        return EXIT_RETRY;
    return EXIT_REFUSED;
}

static int ok(const char *text)
{
    if (json_mode)
        puts("{\"ok\": true}");
    else
        puts(text);
    return 0;
}

static void print_job(const cm_ledger_job *j)
{
    char t1[40], t2[40], t3[40];
    if (json_mode) {
        fputs("{\"job\": ", stdout);
        json_str(j->job);
        fputs(", \"workspace\": ", stdout);
        json_str(j->workspace);
        fputs(", \"user\": ", stdout);
        json_str(j->user);
        printf(", \"state\": \"%s\", \"credits\": %" PRId64 ", \"charged\": %" PRId64
               ", \"refunded\": %" PRId64 ", \"lease_s\": %" PRId64 ", \"created_at\": ",
               cm_ledger_hold_state_name(j->state), j->credits, j->charged, j->refunded,
               j->lease_s);
        json_time(j->created_ms);
        fputs(", \"lease_until\": ", stdout);
        json_time(j->lease_until_ms);
        fputs(", \"resolved_at\": ", stdout);
        json_time(j->resolved_ms);
        fputs(", \"grants\": [", stdout);
        for (size_t i = 0; i < j->n_takes; i++) {
            const cm_ledger_take *t = &j->takes[i];
            printf("%s{\"id\": %" PRId64 ", \"kind\": \"%s\", \"held\": %" PRId64
                   ", \"charged\": %" PRId64 ", \"refunded\": %" PRId64 ", \"expires_at\": ",
                   i ? ", " : "", t->grant_id, cm_ledger_grant_kind_name(t->kind), t->credits,
                   t->charged, t->refunded);
            json_time(t->expires_ms);
            putchar('}');
        }
        fputs("], \"note\": ", stdout);
        json_str(j->note);
        if (j->commit_note) { /* only when there is one: a v1/v2 hold reads as it did */
            fputs(", \"charge_note\": ", stdout);
            json_str(j->commit_note);
        }
        if (j->binding) {
            fputs(", \"binding\": ", stdout);
            json_str(j->binding);
        }
        puts("}");
        return;
    }
    printf("job %s in %s by %s: %s, %" PRId64 " %s held, %" PRId64 " charged, %" PRId64
           " refunded\n",
           j->job, j->workspace, j->user, cm_ledger_hold_state_name(j->state), j->credits,
           credits_word(j->credits), j->charged, j->refunded);
    printf("  reserved %s, lease %" PRId64 " s until %s, resolved %s\n",
           text_time(j->created_ms, t1, sizeof t1), j->lease_s,
           text_time(j->lease_until_ms, t2, sizeof t2),
           j->resolved_ms < 0 ? "-" : text_time(j->resolved_ms, t3, sizeof t3));
    for (size_t i = 0; i < j->n_takes; i++) {
        const cm_ledger_take *t = &j->takes[i];
        printf("  grant %" PRId64 " (%s, expires %s): held %" PRId64 ", charged %" PRId64
               ", refunded %" PRId64 "\n",
               t->grant_id, cm_ledger_grant_kind_name(t->kind),
               text_time(t->expires_ms, t1, sizeof t1), t->credits, t->charged, t->refunded);
    }
    if (j->note)
        printf("  why: %s\n", j->note);
    if (j->commit_note)
        printf("  charge: %s\n", j->commit_note);
    if (j->binding)
        printf("  input: %s\n", j->binding);
}

static int job_result(int rc, cm_ledger *l, cm_ledger_job *j)
{
    if (rc)
        return refused(rc, l);
    print_job(j);
    cm_ledger_job_free(j);
    return 0;
}

static void print_plan_json(const cm_ledger_plan_info *p)
{
    if (!p->has_plan) {
        fputs("null", stdout);
        return;
    }
    fputs("{\"tier\": ", stdout);
    json_str(p->tier);
    printf(", \"credits\": %" PRId64 ", \"interval\": \"%s\", \"period_start\": ", p->credits,
           cm_ledger_interval_name(p->interval));
    json_time(p->period_start_ms);
    fputs(", \"period_end\": ", stdout);
    json_time(p->period_end_ms);
    printf(", \"active\": %s, \"cancelled\": %s, \"cancelled_at\": ", p->active ? "true" : "false",
           p->cancelled ? "true" : "false");
    json_time(p->cancelled_ms);
    fputs(", \"scheduled\": ", stdout);
    if (p->scheduled) {
        printf("{\"credits\": %" PRId64 ", \"interval\": \"%s\", \"tier\": ", p->sched_credits,
               cm_ledger_interval_name(p->sched_interval));
        json_str(p->sched_tier);
        fputs(", \"effective_at\": ", stdout);
        json_time(p->sched_ms);
        putchar('}');
    } else {
        fputs("null", stdout);
    }
    putchar('}');
}

static void print_plan_text(const char *ws, const cm_ledger_plan_info *p)
{
    char t1[40], t2[40];
    if (!p->has_plan) {
        printf("workspace %s: no plan\n", ws);
        return;
    }
    printf("workspace %s: %" PRId64 " %s a month, %s%s%s%s\n", ws, p->credits,
           credits_word(p->credits), cm_ledger_interval_name(p->interval),
           p->tier[0] ? ", tier " : "", p->tier,
           !p->cancelled ? ""
           : p->active   ? " (cancelled: no further grants)"
                         : " (cancelled, ended)");
    printf("  %s period %s .. %s\n", p->active ? "current" : "last",
           cm_ledger_time_format(p->period_start_ms, t1, sizeof t1),
           cm_ledger_time_format(p->period_end_ms, t2, sizeof t2));
    if (p->cancelled)
        printf("  cancelled at %s\n", cm_ledger_time_format(p->cancelled_ms, t1, sizeof t1));
    if (p->scheduled)
        printf("  scheduled from %s: %" PRId64 " %s a month, %s%s%s\n",
               cm_ledger_time_format(p->sched_ms, t1, sizeof t1), p->sched_credits,
               credits_word(p->sched_credits), cm_ledger_interval_name(p->sched_interval),
               p->sched_tier[0] ? ", tier " : "", p->sched_tier);
}

static void print_plan_result(const char *what, const cm_ledger_plan_result *r)
{
    char t[40];
    if (json_mode) {
        printf("{\"ok\": true, \"outcome\": \"%s\", \"resumed\": %s, \"replayed\": %s, "
               "\"granted\": %" PRId64 ", \"effective_at\": ",
               cm_ledger_plan_outcome_name(r->outcome), r->resumed ? "true" : "false",
               r->replayed ? "true" : "false", r->granted);
        json_time(r->effective_ms);
        puts("}");
        return;
    }
    printf("%s: %s%s", what, cm_ledger_plan_outcome_name(r->outcome),
           r->resumed && r->outcome != CM_LEDGER_PLAN_RESUMED ? " (resumed)" : "");
    if (r->granted)
        printf(", %" PRId64 " %s granted", r->granted, credits_word(r->granted));
    printf(", effective %s", cm_ledger_time_format(r->effective_ms, t, sizeof t));
    puts(r->replayed ? " (a repeated reference: nothing new was done)" : "");
}

static void print_balance(const cm_ledger_balance_result *b, const cm_ledger_plan_info *p)
{
    char t[40];
    if (json_mode) {
        fputs("{\"workspace\": ", stdout);
        json_str(b->workspace);
        printf(", \"available\": %" PRId64 ", \"held\": %" PRId64 ", \"grants\": [", b->available,
               b->held);
        for (size_t i = 0; i < b->n_grants; i++) {
            const cm_ledger_grant *g = &b->grants[i];
            printf("%s{\"id\": %" PRId64 ", \"kind\": \"%s\", \"granted\": %" PRId64
                   ", \"remaining\": %" PRId64 ", \"held\": %" PRId64 ", \"expires_at\": ",
                   i ? ", " : "", g->id, cm_ledger_grant_kind_name(g->kind), g->granted,
                   g->remaining, g->held);
            json_time(g->expires_ms);
            putchar('}');
        }
        fputs("], \"plan\": ", stdout);
        print_plan_json(p);
        puts("}");
        return;
    }
    printf("workspace %s: %" PRId64 " available, %" PRId64 " held\n", b->workspace, b->available,
           b->held);
    for (size_t i = 0; i < b->n_grants; i++) {
        const cm_ledger_grant *g = &b->grants[i];
        printf("  grant %" PRId64 " %-6s granted %" PRId64 ", remaining %" PRId64 ", held %" PRId64
               ", expires %s\n",
               g->id, cm_ledger_grant_kind_name(g->kind), g->granted, g->remaining, g->held,
               text_time(g->expires_ms, t, sizeof t));
    }
    if (p->has_plan)
        print_plan_text(b->workspace, p);
}

static void print_history(const char *ws, const cm_ledger_history_result *h)
{
    char t[40];
    if (json_mode) {
        fputs("{\"workspace\": ", stdout);
        json_str(ws);
        fputs(", \"entries\": [", stdout);
    }
    for (size_t i = 0; i < h->n_entries; i++) {
        const cm_ledger_entry *e = &h->entries[i];
        if (json_mode) {
            printf("%s{\"id\": %" PRId64 ", \"at\": ", i ? ", " : "", e->id);
            json_time(e->at_ms);
            fputs(", \"kind\": ", stdout);
            json_str(e->kind);
            fputs(", \"grant\": ", stdout);
            if (e->grant_id < 0)
                fputs("null", stdout);
            else
                printf("%" PRId64, e->grant_id);
            fputs(", \"job\": ", stdout);
            json_str(e->job);
            printf(", \"credits\": %" PRId64 ", \"actor\": ", e->credits);
            json_str(e->actor);
            fputs(", \"reason\": ", stdout);
            json_str(e->reason);
            fputs(", \"ref\": ", stdout);
            json_str(e->ref);
            putchar('}');
        } else {
            printf("%6" PRId64 " %s %-13s %6" PRId64, e->id,
                   cm_ledger_time_format(e->at_ms, t, sizeof t), e->kind, e->credits);
            if (e->grant_id >= 0)
                printf(" grant=%" PRId64, e->grant_id);
            if (e->job)
                printf(" job=%s", e->job);
            printf(" by=%s", e->actor);
            if (e->reason)
                printf(" (%s)", e->reason);
            if (e->ref)
                printf(" ref=%s", e->ref);
            putchar('\n');
        }
    }
    if (json_mode)
        puts("]}");
}

/* ---- commands ---- */

static int64_t fixed_clock(void *user)
{
    return *(const int64_t *)user;
}

static int need(const args *a, int lo, int hi, const char *what)
{
    if (a->npos < lo || a->npos > hi) {
        char m[128];
        snprintf(m, sizeof m, "wrong number of arguments for %s", what);
        return usage(m);
    }
    return 0;
}

static int need_opt(const args *a, const char *name, const char *what)
{
    if (!opt(a, name)) {
        char m[128];
        snprintf(m, sizeof m, "%s needs %s", what, name);
        return usage(m);
    }
    return 0;
}

static int cmd_workspace_create(cm_ledger *l, const args *a)
{
    const char *cmd = a->pos[0];
    int rc;
    if ((rc = need(a, 3, 3, "workspace create")) || (rc = need_opt(a, "--owner", cmd)))
        return rc;
    rc = cm_ledger_workspace_create(l, a->pos[2], opt(a, "--owner"), opt(a, "--region"));
    return rc ? refused(rc, l) : ok("workspace created");
}

static int cmd_member(cm_ledger *l, const args *a)
{
    const char *cmd = a->pos[0];
    const char *sub = a->npos > 1 ? a->pos[1] : "";
    const char *as = opt(a, "--as");
    int rc;
    if ((rc = need(a, 4, 4, "member")) || (rc = need_opt(a, "--as", cmd)))
        return rc;
    rc = sub[0] == 'a' ? cm_ledger_member_add(l, a->pos[2], a->pos[3], as)
                       : cm_ledger_member_remove(l, a->pos[2], a->pos[3], as);
    return rc ? refused(rc, l) : ok(sub[0] == 'a' ? "member added" : "member removed");
}

static int cmd_plan_set(cm_ledger *l, const args *a)
{
    const char *cmd = a->pos[0];
    const char *as = opt(a, "--as");
    int64_t n = 0;
    int rc;
    if ((rc = need(a, 3, 3, "plan set")) || (rc = need_opt(a, "--credits", "plan set")) ||
        (rc = need_opt(a, "--interval", "plan set")) || (rc = need_opt(a, "--as", cmd)))
        return rc;
    const char *iv = opt(a, "--interval");
    int interval = !strcmp(iv, "monthly")  ? CM_LEDGER_MONTHLY
                   : !strcmp(iv, "annual") ? CM_LEDGER_ANNUAL
                                           : 0;
    if (!interval)
        return usage("--interval must be monthly or annual");
    if (parse_int(opt(a, "--credits"), &n))
        return usage("--credits must be a number");
    cm_ledger_plan_result r;
    rc = cm_ledger_plan_set_ref(l, a->pos[2], n, interval, opt(a, "--tier"), as, opt(a, "--ref"),
                                &r);
    if (rc)
        return refused(rc, l);
    print_plan_result("plan set", &r);
    return 0;
}

static int cmd_plan_cancel(cm_ledger *l, const args *a)
{
    const char *cmd = a->pos[0];
    const char *as = opt(a, "--as");
    int rc;
    if ((rc = need(a, 3, 3, "plan cancel")) || (rc = need_opt(a, "--as", cmd)))
        return rc;
    if (opt(a, "--credits") || opt(a, "--interval") || opt(a, "--tier"))
        return usage("plan cancel takes no --credits, --interval or --tier");
    cm_ledger_plan_result r;
    rc = cm_ledger_plan_cancel_ref(l, a->pos[2], as, opt(a, "--ref"), &r);
    if (rc)
        return refused(rc, l);
    print_plan_result("plan cancel", &r);
    return 0;
}

static int cmd_plan_show(cm_ledger *l, const args *a)
{
    const char *as = opt(a, "--as");
    int rc;
    if ((rc = need(a, 3, 3, "plan show")))
        return rc;
    if (opt(a, "--credits") || opt(a, "--interval") || opt(a, "--tier") || opt(a, "--ref"))
        return usage("plan show takes only --as");
    cm_ledger_plan_info p;
    rc = cm_ledger_plan_show(l, a->pos[2], as, &p);
    if (rc)
        return refused(rc, l);
    if (json_mode) {
        fputs("{\"workspace\": ", stdout);
        json_str(a->pos[2]);
        fputs(", \"plan\": ", stdout);
        print_plan_json(&p);
        puts("}");
    } else {
        print_plan_text(a->pos[2], &p);
    }
    return 0;
}

static int cmd_price(cm_ledger *l, const args *a)
{
    const char *as = opt(a, "--as");
    int64_t n = 0;
    int rc;
    if ((rc = need(a, 3, 3, "price")))
        return rc;
    if (opt(a, "--by"))
        return usage("price WS CREDITS takes no --by");
    if (parse_int(a->pos[2], &n))
        return usage("CREDITS must be a number");
    cm_ledger_purchase p;
    rc = cm_ledger_price(l, a->pos[1], n, as, &p);
    if (rc)
        return refused(rc, l);
    char amount[48], unit[48];
    cm_ledger_money_format(p.total_minor, p.currency, amount, sizeof amount);
    cm_ledger_money_format(p.unit_minor, p.currency, unit, sizeof unit);
    if (json_mode) {
        fputs("{\"workspace\": ", stdout);
        json_str(a->pos[1]);
        printf(", \"credits\": %" PRId64 ", \"unit_minor\": %" PRId64 ", \"total_minor\": %" PRId64
               ", \"currency\": \"%s\", \"amount\": ",
               p.credits, p.unit_minor, p.total_minor, p.currency);
        json_str(amount);
        puts("}");
    } else
        printf("%" PRId64 " %s would cost %s (%s each); nothing was bought\n", p.credits,
               credits_word(p.credits), amount, unit);
    return 0;
}

static int cmd_price_set(cm_ledger *l, const args *a)
{
    int64_t n = 0;
    int rc;
    if (a->npos == 3) /* price WS CREDITS of a workspace named "set" */
        return cmd_price(l, a);
    if ((rc = need(a, 5, 5, "price set")))
        return rc;
    if (opt(a, "--as"))
        return usage("price set takes --by OPERATOR, not --as");
    if (parse_int(a->pos[4], &n))
        return usage("MINOR_UNITS must be a number");
    rc = cm_ledger_price_set_by(l, a->pos[2], a->pos[3], n, opt(a, "--by"));
    return rc ? refused(rc, l) : ok("price set");
}

static int cmd_price_history(cm_ledger *l, const args *a)
{
    int rc;
    if ((rc = need(a, 1, 2, "price-history")))
        return rc;
    cm_ledger_price_history_result *h;
    rc = cm_ledger_price_history(l, a->npos == 2 ? a->pos[1] : NULL, &h);
    if (rc)
        return refused(rc, l);
    if (json_mode)
        fputs("{\"changes\": [", stdout);
    for (size_t i = 0; i < h->n_changes; i++) {
        const cm_ledger_price_change *c = &h->changes[i];
        char t[40], was[48], now_[48];
        cm_ledger_money_format(c->new_unit_minor, c->new_currency, now_, sizeof now_);
        if (c->old_unit_minor >= 0)
            cm_ledger_money_format(c->old_unit_minor, c->old_currency, was, sizeof was);
        else
            snprintf(was, sizeof was, "none");
        if (json_mode) {
            printf("%s{\"id\": %" PRId64 ", \"at\": ", i ? ", " : "", c->id);
            json_time(c->at_ms);
            fputs(", \"by\": ", stdout);
            json_str(c->actor);
            fputs(", \"region\": ", stdout);
            json_str(c->region);
            fputs(", \"old_currency\": ", stdout);
            json_str(c->old_unit_minor >= 0 ? c->old_currency : NULL);
            if (c->old_unit_minor >= 0)
                printf(", \"old_unit_minor\": %" PRId64, c->old_unit_minor);
            else
                fputs(", \"old_unit_minor\": null", stdout);
            printf(", \"currency\": \"%s\", \"unit_minor\": %" PRId64 "}", c->new_currency,
                   c->new_unit_minor);
        } else {
            printf("%6" PRId64 " %s %-7s %s -> %s by=%s\n", c->id,
                   cm_ledger_time_format(c->at_ms, t, sizeof t), c->region, was, now_, c->actor);
        }
    }
    if (json_mode)
        puts("]}");
    cm_ledger_price_history_free(h);
    return 0;
}

static int cmd_buy(cm_ledger *l, const args *a)
{
    const char *cmd = a->pos[0];
    const char *as = opt(a, "--as");
    int64_t n = 0;
    int rc;
    if ((rc = need(a, 3, 3, "buy")) || (rc = need_opt(a, "--as", cmd)))
        return rc;
    if (parse_int(a->pos[2], &n))
        return usage("CREDITS must be a number");
    cm_ledger_purchase p;
    rc = cm_ledger_buy(l, a->pos[1], n, as, opt(a, "--ref"), &p);
    if (rc)
        return refused(rc, l);
    char amount[48], unit[48];
    cm_ledger_money_format(p.total_minor, p.currency, amount, sizeof amount);
    cm_ledger_money_format(p.unit_minor, p.currency, unit, sizeof unit);
    if (json_mode) {
        fputs("{\"workspace\": ", stdout);
        json_str(a->pos[1]); /* the caller's text: escaped like every string */
        printf(", \"credits\": %" PRId64 ", \"unit_minor\": %" PRId64 ", \"total_minor\": %" PRId64
               ", \"currency\": \"%s\", \"grant\": %" PRId64 ", \"replayed\": %s, \"amount\": ",
               p.credits, p.unit_minor, p.total_minor, p.currency, p.grant_id,
               p.replayed ? "true" : "false");
        json_str(amount);
        puts("}");
    } else
        printf("paid %s (%" PRId64 " %s x %s) into grant %" PRId64 "%s\n", amount, p.credits,
               credits_word(p.credits), unit, p.grant_id,
               p.replayed ? " (a repeated payment reference: nothing new was charged)" : "");
    return 0;
}

static int cmd_quote(cm_ledger *l, const args *a)
{
    const char *as = opt(a, "--as");
    int64_t n = 0;
    int rc;
    if ((rc = need(a, 3, 3, "quote")))
        return rc;
    if (parse_int(a->pos[2], &n))
        return usage("CREDITS must be a number");
    cm_ledger_quote_result *q;
    rc = cm_ledger_quote(l, a->pos[1], n, as, &q);
    if (rc)
        return refused(rc, l);
    char t[40];
    if (json_mode) {
        printf("{\"workspace\": ");
        json_str(a->pos[1]);
        printf(", \"credits\": %" PRId64 ", \"available\": %" PRId64
               ", \"affordable\": %s, \"grants\": [",
               q->credits, q->available, q->affordable ? "true" : "false");
        for (size_t i = 0; i < q->n_takes; i++) {
            printf("%s{\"id\": %" PRId64 ", \"kind\": \"%s\", \"credits\": %" PRId64
                   ", \"expires_at\": ",
                   i ? ", " : "", q->takes[i].grant_id, cm_ledger_grant_kind_name(q->takes[i].kind),
                   q->takes[i].credits);
            json_time(q->takes[i].expires_ms);
            putchar('}');
        }
        puts("]}");
    } else {
        printf("%" PRId64 " %s: %s (%" PRId64 " available)\n", q->credits, credits_word(q->credits),
               q->affordable ? "affordable" : "not affordable", q->available);
        for (size_t i = 0; i < q->n_takes; i++)
            printf("  %" PRId64 " from grant %" PRId64 " (%s, expires %s)\n", q->takes[i].credits,
                   q->takes[i].grant_id, cm_ledger_grant_kind_name(q->takes[i].kind),
                   text_time(q->takes[i].expires_ms, t, sizeof t));
    }
    cm_ledger_quote_free(q);
    return 0;
}

static int cmd_reserve(cm_ledger *l, const args *a)
{
    const char *cmd = a->pos[0];
    const char *as = opt(a, "--as");
    int64_t n = 0;
    int64_t lease = a->lease;
    int rc;
    if ((rc = need(a, 4, 4, "reserve")) || (rc = need_opt(a, "--as", cmd)))
        return rc;
    if (parse_int(a->pos[3], &n))
        return usage("CREDITS must be a number");
    cm_ledger_job *j = NULL;
    rc = cm_ledger_reserve_noted(l, a->pos[1], a->pos[2], n, as, lease, opt(a, "--note"), &j);
    return job_result(rc, l, j);
}

static int cmd_renew(cm_ledger *l, const args *a)
{
    int64_t lease = a->lease;
    int rc;
    if ((rc = need(a, 2, 2, "renew")))
        return rc;
    cm_ledger_job *j = NULL;
    rc = cm_ledger_renew(l, a->pos[1], lease, &j);
    return job_result(rc, l, j);
}

static int cmd_commit(cm_ledger *l, const args *a)
{
    int64_t n = 0;
    int rc;
    if ((rc = need(a, 2, 3, "commit")))
        return rc;
    n = CM_LEDGER_ALL;
    if (a->npos == 3 && parse_int(a->pos[2], &n))
        return usage("CREDITS must be a number");
    cm_ledger_job *j = NULL;
    rc = cm_ledger_commit(l, a->pos[1], n, &j);
    return job_result(rc, l, j);
}

static int cmd_release_or_job(cm_ledger *l, const args *a)
{
    const char *cmd = a->pos[0];
    int rc;
    if ((rc = need(a, 2, 2, cmd)))
        return rc;
    cm_ledger_job *j = NULL;
    rc = cmd[0] == 'r' ? cm_ledger_release(l, a->pos[1], &j) : cm_ledger_job_info(l, a->pos[1], &j);
    return job_result(rc, l, j);
}

static int cmd_refund(cm_ledger *l, const args *a)
{
    const char *cmd = a->pos[0];
    int64_t n = 0;
    int rc;
    if ((rc = need(a, 2, 3, "refund")) || (rc = need_opt(a, "--reason", cmd)) ||
        (rc = need_opt(a, "--by", cmd)))
        return rc;
    n = CM_LEDGER_ALL;
    if (a->npos == 3 && parse_int(a->pos[2], &n))
        return usage("CREDITS must be a number");
    cm_ledger_refund_result r;
    rc = cm_ledger_refund(l, a->pos[1], n, opt(a, "--reason"), opt(a, "--by"), opt(a, "--ref"), &r);
    if (rc)
        return refused(rc, l);
    if (json_mode) {
        fputs("{\"job\": ", stdout);
        json_str(a->pos[1]);
        printf(", \"credits\": %" PRId64 ", \"to_source\": %" PRId64
               ", \"refund_grant\": %s%" PRId64 "%s, \"total_refunded\": %" PRId64
               ", \"replayed\": %s}\n",
               r.credits, r.to_source, "", r.refund_grant_id, "", r.total_refunded,
               r.replayed ? "true" : "false");
    } else
        printf("refunded %" PRId64 " %s (%" PRId64 " to their grants, %" PRId64
               " to a refund grant); %" PRId64 " refunded on this job in all%s\n",
               r.credits, credits_word(r.credits), r.to_source, r.credits - r.to_source,
               r.total_refunded, r.replayed ? " (a repeated reference: nothing new was done)" : "");
    return 0;
}

static int cmd_balance_or_history(cm_ledger *l, const args *a)
{
    const char *cmd = a->pos[0];
    const char *as = opt(a, "--as");
    int rc;
    if ((rc = need(a, 2, 2, cmd)))
        return rc;
    if (cmd[0] == 'b') {
        cm_ledger_balance_result *b;
        rc = cm_ledger_balance(l, a->pos[1], as, &b);
        if (rc)
            return refused(rc, l);
        cm_ledger_plan_info p;
        rc = cm_ledger_plan_show(l, a->pos[1], as, &p);
        if (rc) {
            cm_ledger_balance_free(b);
            return refused(rc, l);
        }
        print_balance(b, &p);
        cm_ledger_balance_free(b);
    } else {
        cm_ledger_history_result *h;
        rc = cm_ledger_history(l, a->pos[1], as, &h);
        if (rc)
            return refused(rc, l);
        print_history(a->pos[1], h);
        cm_ledger_history_free(h);
    }
    return 0;
}

static int cmd_sweep(cm_ledger *l, const args *a)
{
    int rc;
    if ((rc = need(a, 1, 1, "sweep")))
        return rc;
    cm_ledger_sweep_stats s;
    rc = cm_ledger_sweep(l, &s);
    if (rc)
        return refused(rc, l);
    if (json_mode)
        printf("{\"holds_lapsed\": %" PRId64 ", \"credits_expired\": %" PRId64
               ", \"periods_granted\": %" PRId64 "}\n",
               s.holds_lapsed, s.credits_expired, s.periods_granted);
    else
        printf("lapsed %" PRId64 " hold%s, expired %" PRId64 " %s, granted %" PRId64
               " plan period%s\n",
               s.holds_lapsed, s.holds_lapsed == 1 ? "" : "s", s.credits_expired,
               credits_word(s.credits_expired), s.periods_granted,
               s.periods_granted == 1 ? "" : "s");
    return 0;
}

static int parse_time_opt(const args *a, const char *name, int64_t *out)
{
    *out = -1;
    const char *v = opt(a, name);
    if (v && (cm_ledger_time_parse(v, out) || *out < 0)) {
        char m[160];
        snprintf(m, sizeof m, "%s must be ISO 8601 UTC like 2026-01-31T12:00:00Z", name);
        return usage(m);
    }
    return 0;
}

static int cmd_alert(cm_ledger *l, const args *a)
{
    const char *sub = a->pos[1];
    int rc;
    if ((rc = need(a, 3, 3, "alert")) || (rc = need_opt(a, "--as", a->pos[0])))
        return rc;
    if (sub[0] == 's') {
        int64_t below = 0;
        if ((rc = need_opt(a, "--below", "alert set")))
            return rc;
        if (parse_int(opt(a, "--below"), &below) || below < 1)
            return usage("--below must be a number of credits, 1 or more");
        rc = cm_ledger_alert_set(l, a->pos[2], below, opt(a, "--as"));
    } else {
        if (opt(a, "--below"))
            return usage("alert clear takes no --below");
        rc = cm_ledger_alert_clear(l, a->pos[2], opt(a, "--as"));
    }
    return rc ? refused(rc, l) : ok(sub[0] == 's' ? "alert set" : "alert cleared");
}

/* CloudEvents 1.0, JSON format: one envelope per event (the data is the ledger's JSON
 * object, as stored). */
static void print_cloudevent(const cm_ledger_event *e)
{
    char id[32], type[64];
    snprintf(id, sizeof id, "%" PRId64, e->id);
    snprintf(type, sizeof type, "com.creditmeter.ledger.%s", e->type);
    fputs("{\"specversion\": \"1.0\", \"id\": ", stdout);
    json_str(id);
    fputs(", \"source\": \"/creditmeter/ledger\", \"type\": ", stdout);
    json_str(type);
    fputs(", \"time\": ", stdout);
    json_time(e->at_ms);
    fputs(", \"subject\": ", stdout);
    json_str(e->workspace);
    fputs(", \"datacontenttype\": \"application/json\", \"cursor\": ", stdout);
    json_str(e->cursor);
    printf(", \"data\": %s}", e->data);
}

static int cmd_events(cm_ledger *l, const args *a)
{
    int64_t limit = 100;
    int rc;
    if ((rc = need(a, 1, 1, "events")))
        return rc;
    if (opt(a, "--limit") &&
        (parse_int(opt(a, "--limit"), &limit) || limit < 1 || limit > CM_LEDGER_EVENTS_MAX))
        return usage("--limit must be a number from 1 to 10000");
    cm_ledger_events_result *r = NULL;
    rc = cm_ledger_events(l, opt(a, "--after"), (size_t)limit, &r);
    if (rc)
        return refused(rc, l);
    if (json_mode) {
        fputs("{\"events\": [", stdout);
        for (size_t i = 0; i < r->n_events; i++) {
            fputs(i ? ", " : "", stdout);
            print_cloudevent(&r->events[i]);
        }
        fputs("], \"next_cursor\": ", stdout);
        json_str(r->next_cursor);
        puts("}");
    } else {
        char t[40];
        for (size_t i = 0; i < r->n_events; i++) {
            const cm_ledger_event *e = &r->events[i];
            printf("%s %s %-11s %s %s\n", e->cursor, cm_ledger_time_format(e->at_ms, t, sizeof t),
                   e->type, e->workspace, e->data);
        }
        printf("next cursor: %s (%zu event%s)\n", r->next_cursor, r->n_events,
               r->n_events == 1 ? "" : "s");
    }
    cm_ledger_events_free(r);
    return 0;
}

/* ---- export: one row at a time, straight to stdout ---- */

enum { FMT_CSV, FMT_NDJSON };

/* An RFC 4180 field: quoted when it holds a comma, a quote or a line break (a quote is
 * doubled); NULL is an empty field. */
static void csv_field(const char *s, int last)
{
    if (s) {
        if (strpbrk(s, ",\"\r\n")) {
            putchar('"');
            for (const char *p = s; *p; p++) {
                if (*p == '"')
                    putchar('"');
                putchar(*p);
            }
            putchar('"');
        } else {
            fputs(s, stdout);
        }
    }
    fputs(last ? "\r\n" : ",", stdout);
}

static void csv_int(int64_t v, int known)
{
    if (known)
        printf("%" PRId64, v);
    putchar(',');
}

static void json_int_or_null(const char *key, int64_t v, int known)
{
    printf(", \"%s\": ", key);
    if (known)
        printf("%" PRId64, v);
    else
        fputs("null", stdout);
}

static int export_row(void *ctx, const cm_ledger_export_row *r)
{
    int fmt = *(const int *)ctx;
    char t[40];
    cm_ledger_time_format(r->at_ms, t, sizeof t);
    if (fmt == FMT_CSV) {
        csv_int(r->id, 1);
        csv_int(r->op, 1);
        csv_field(t, 0);
        csv_field(r->workspace, 0);
        csv_field(r->kind, 0);
        csv_field(r->job, 0);
        csv_int(r->credits, 1);
        csv_int(r->grant_id, r->grant_id >= 0);
        csv_int(r->measured_ms, r->measured_ms >= 0);
        csv_int(r->declared_ms, r->declared_ms >= 0);
        csv_field(r->method, 0);
        csv_int(r->grace_ms, r->grace_ms >= 0);
        csv_field(r->reason, 0);
        csv_field(r->ref, 0);
        csv_field(r->actor, 1);
    } else {
        printf("{\"id\": %" PRId64 ", \"op\": %" PRId64 ", \"time\": \"%s\", \"workspace\": ",
               r->id, r->op, t);
        json_str(r->workspace);
        fputs(", \"kind\": ", stdout);
        json_str(r->kind);
        fputs(", \"job\": ", stdout);
        json_str(r->job);
        printf(", \"credits\": %" PRId64, r->credits);
        json_int_or_null("grant", r->grant_id, r->grant_id >= 0);
        json_int_or_null("measured_ms", r->measured_ms, r->measured_ms >= 0);
        json_int_or_null("declared_ms", r->declared_ms, r->declared_ms >= 0);
        fputs(", \"method\": ", stdout);
        json_str(r->method);
        json_int_or_null("grace_ms", r->grace_ms, r->grace_ms >= 0);
        fputs(", \"reason\": ", stdout);
        json_str(r->reason);
        fputs(", \"reference\": ", stdout);
        json_str(r->ref);
        fputs(", \"operator\": ", stdout);
        json_str(r->actor);
        fputs("}\n", stdout);
    }
    return ferror(stdout) != 0; /* a closed pipe: stop reading */
}

static int cmd_export(cm_ledger *l, const args *a)
{
    int rc;
    int64_t since, until;
    if ((rc = need(a, 1, 1, "export")) || (rc = need_opt(a, "--format", "export")) ||
        (rc = parse_time_opt(a, "--since", &since)) || (rc = parse_time_opt(a, "--until", &until)))
        return rc;
    const char *f = opt(a, "--format");
    int fmt = !strcmp(f, "csv") ? FMT_CSV : !strcmp(f, "ndjson") ? FMT_NDJSON : -1;
    if (fmt < 0)
        return usage("--format must be csv or ndjson");
    if (json_mode)
        return usage("export writes its own format (--format); --json does not apply");
    if (fmt == FMT_CSV)
        fputs("id,op,time,workspace,kind,job,credits,grant,measured_ms,declared_ms,method,"
              "grace_ms,reason,reference,operator\r\n",
              stdout);
    rc = cm_ledger_export(l, opt(a, "--workspace"), since, until, export_row, &fmt);
    if (rc)
        return refused(rc, l);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "cm-ledger: export: cannot write the output: %s\n", strerror(errno));
        return EXIT_REFUSED;
    }
    return 0;
}

/* Prometheus text exposition format (version 0.0.4). */
static void gauge(const char *name, const char *help, int64_t v)
{
    printf("# HELP creditmeter_ledger_%s %s\n# TYPE creditmeter_ledger_%s gauge\n"
           "creditmeter_ledger_%s %" PRId64 "\n",
           name, help, name, name, v);
}

static int cmd_metrics(cm_ledger *l, const args *a)
{
    int rc;
    if ((rc = need(a, 1, 1, "metrics")))
        return rc;
    cm_ledger_gauges g;
    rc = cm_ledger_gauges_read(l, &g);
    if (rc)
        return refused(rc, l);
    int64_t age = g.oldest_hold_created_ms < 0 ? 0 : (g.now_ms - g.oldest_hold_created_ms) / 1000;
    if (json_mode) {
        printf("{\"workspaces\": %" PRId64 ", \"credits_available\": %" PRId64
               ", \"credits_held\": %" PRId64 ", \"holds_open\": %" PRId64
               ", \"holds_overdue\": %" PRId64 ", \"oldest_open_hold_age_seconds\": ",
               g.workspaces, g.available, g.held, g.open_holds, g.overdue_holds);
        if (g.oldest_hold_created_ms < 0)
            puts("null}");
        else
            printf("%" PRId64 "}\n", age);
        return 0;
    }
    gauge("workspaces", "Workspaces in the ledger.", g.workspaces);
    gauge("credits_available", "Credits spendable now, all workspaces.", g.available);
    gauge("credits_held", "Credits held by open holds, all workspaces.", g.held);
    gauge("holds_open", "Holds reserved and not yet committed, released or lapsed.", g.open_holds);
    gauge("holds_overdue", "Open holds whose lease has ended, waiting to lapse (sweep).",
          g.overdue_holds);
    gauge("oldest_open_hold_age_seconds",
          "Age of the oldest open hold in seconds (0 when there is none).", age);
    return 0;
}

static int cmd_ping(cm_ledger *l, const args *a)
{
    int rc;
    if ((rc = need(a, 1, 1, "ping")))
        return rc;
    int64_t ms = 0;
    rc = cm_ledger_ping(l, &ms);
    if (rc)
        return refused(rc, l);
    if (json_mode)
        printf("{\"ok\": true, \"latency_ms\": %" PRId64 "}\n", ms);
    else
        printf("ok: the ledger is reachable and writable (%" PRId64 " ms)\n", ms);
    return 0;
}

/* Set by main: the ledger did not exist and init created it. */
static int init_created;

static int cmd_init(cm_ledger *l, const args *a)
{
    (void)l;
    int rc;
    if ((rc = need(a, 1, 1, "init")))
        return rc;
    const char *db = opt(a, "--ledger") ? opt(a, "--ledger") : "./creditmeter.db";
    if (json_mode) {
        printf("{\"ok\": true, \"created\": %s}\n", init_created ? "true" : "false");
        return 0;
    }
    if (init_created)
        printf("created a new ledger at %s\n", db);
    else
        printf("%s already holds a ledger (its schema is up to date); nothing was created\n", db);
    return 0;
}

static int cmd_check(cm_ledger *l, const args *a)
{
    int rc;
    if ((rc = need(a, 1, 1, "check")))
        return rc;
    rc = cm_ledger_check(l);
    return rc ? refused(rc, l) : ok("check passed");
}

/* ---- the commands: one table (name, arguments, who, options, handler, help) ---- */

enum who { WHO_OPERATOR, WHO_OWNER, WHO_MEMBER };
static const char *const who_text[] = {
    [WHO_OPERATOR] = "the operator (support staff, the billing backend)",
    [WHO_OWNER] = "the workspace's owner (--as)",
    [WHO_MEMBER] = "the workspace's owner or a member (--as); without --as, the operator",
};

typedef struct command {
    const char *name;     /* one or two words: "reserve", "plan set" */
    const char *synopsis; /* its arguments and options, as --help prints them */
    enum who who;
    const char *options; /* the options it accepts (beyond --ledger, --now, --json) */
    int (*handler)(cm_ledger *l, const args *a);
    const char *help; /* one line: what it does */
} command;

/* `cm-ledger --help`, `cm-ledger help COMMAND`, the option check and the dispatch all
 * read this table; tests/check_ledger_commands.py checks the READMEs against --help. */
static const command commands[] = {
    {"workspace create", "WS --owner USER [--region CODE]", WHO_OPERATOR, "--owner --region",
     cmd_workspace_create, "create a workspace owned by USER, priced in REGION's currency"},
    {"member add", "WS USER --as USER", WHO_OWNER, "--as", cmd_member,
     "let USER reserve, quote and read in WS"},
    {"member remove", "WS USER --as USER", WHO_OWNER, "--as", cmd_member,
     "take USER out of WS (not the owner)"},
    {"plan set",
     "WS --credits N --interval monthly|annual [--tier NAME] --as USER [--ref PAYMENT_REF]",
     WHO_OWNER, "--credits --interval --tier --as --ref", cmd_plan_set,
     "subscribe, upgrade (tops up now) or downgrade (from the next period); prints what happened"},
    {"plan cancel", "WS --as USER [--ref REF]", WHO_OWNER, "--credits --interval --tier --as --ref",
     cmd_plan_cancel, "end the plan at the end of the current period"},
    {"plan show", "WS [--as USER]", WHO_MEMBER, "--credits --interval --tier --as --ref",
     cmd_plan_show, "the plan, its current period and any scheduled change"},
    {"price set", "REGION CURRENCY MINOR_UNITS [--by OPERATOR]", WHO_OPERATOR, "--by --as",
     cmd_price_set, "set a region's price of one credit; logged with who, when, old and new"},
    {"price", "WS CREDITS [--as USER]", WHO_MEMBER, "--by --as", cmd_price,
     "what buying CREDITS would cost now; buys nothing"},
    {"price-history", "[REGION]", WHO_OPERATOR, "", cmd_price_history,
     "the price log, oldest first"},
    {"buy", "WS CREDITS --as USER [--ref PAYMENT_REF]", WHO_OWNER, "--as --ref", cmd_buy,
     "buy CREDITS into a new grant; a repeated PAYMENT_REF charges nothing new"},
    {"quote", "WS CREDITS [--as USER]", WHO_MEMBER, "--as", cmd_quote,
     "whether CREDITS are affordable now, and from which grants they would come"},
    {"reserve", "WS JOB CREDITS --as USER [--lease SECONDS] [--note TEXT]", WHO_MEMBER,
     "--as --lease --note", cmd_reserve,
     "hold CREDITS for JOB (default lease 900 s); the note says why it costs that"},
    {"renew", "JOB [--lease SECONDS]", WHO_OPERATOR, "--lease", cmd_renew,
     "extend JOB's hold by a new lease"},
    {"commit", "JOB [CREDITS]", WHO_OPERATOR, "", cmd_commit,
     "charge JOB's hold (default: all of it; CREDITS >= 1; to charge nothing, release)"},
    {"release", "JOB", WHO_OPERATOR, "", cmd_release_or_job,
     "give JOB's held credits back, charging nothing"},
    {"refund", "JOB [CREDITS] --reason TEXT --by OPERATOR [--ref REF]", WHO_OPERATOR,
     "--reason --by --ref", cmd_refund,
     "give back charged credits (default: all refundable); a repeated REF does nothing new"},
    {"balance", "WS [--as USER]", WHO_MEMBER, "--as", cmd_balance_or_history,
     "available, held and expiring credits, and the plan"},
    {"history", "WS [--as USER]", WHO_MEMBER, "--as", cmd_balance_or_history,
     "the journal of WS: every movement with who, when and why"},
    {"job", "JOB", WHO_OPERATOR, "", cmd_release_or_job,
     "JOB's hold, its grants, why it cost that, its charge and its input binding"},
    {"sweep", "", WHO_OPERATOR, "", cmd_sweep,
     "lapse expired holds, expire credits, grant plan periods"},
    {"check", "", WHO_OPERATOR, "", cmd_check,
     "re-derive every balance from the journal; exit 1 with the first violation"},
    {"init", "", WHO_OPERATOR, "", cmd_init,
     "create the ledger at LOCATION (no other command creates one, except with --create)"},
    {"alert set", "WS --below N --as USER", WHO_OWNER, "--below --as", cmd_alert,
     "write a low_balance event when WS's available credits fall below N (once per crossing)"},
    {"alert clear", "WS --as USER", WHO_OWNER, "--below --as", cmd_alert,
     "remove WS's low-balance alert"},
    {"events", "[--after CURSOR] [--limit N]", WHO_OPERATOR, "--after --limit", cmd_events,
     "the event outbox after CURSOR, in order (CloudEvents with --json) and the next cursor"},
    {"export", "[--workspace WS] [--since TIME] [--until TIME] --format csv|ndjson", WHO_OPERATOR,
     "--workspace --since --until --format", cmd_export,
     "stream every journal row (of WS, in [since, until)) with its structured fields"},
    {"metrics", "", WHO_OPERATOR, "", cmd_metrics,
     "the ledger's gauges in Prometheus text format: workspaces, credits, open holds"},
    {"ping", "[--timeout MS]", WHO_OPERATOR, "--timeout", cmd_ping,
     "is the ledger reachable and writable within MS (default 5000)? exit 0 or 1 with why"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const char usage_head[] =
    "usage: cm-ledger [--ledger LOCATION] [--now TIME] [--json] [--create] ";
static const char usage_foot[] =
    "LOCATION is the ledger's location: an SQLite file (default ./creditmeter.db), or a\n"
    "postgresql:// or postgres:// URI (any libpq connection URI) for a PostgreSQL\n"
    "database. --db is its old name and still works. A ledger is created only by `init`\n"
    "or a writing command given --create; otherwise a LOCATION without a ledger is\n"
    "no_such_ledger. TIME is ISO 8601 UTC (2026-01-31T12:00:00Z). `cm-ledger help\n"
    "COMMAND` says what a command does and who may run it.\n";

/* The full help: the synopsis of every command. */
static void print_usage(FILE *f)
{
    fprintf(f, "%sCOMMAND ...\n", usage_head);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %s%s%s\n", commands[i].name, *commands[i].synopsis ? " " : "",
                commands[i].synopsis);
    fputs(usage_foot, f);
}

/* Number of words of name that words (n of them) start with: the name's word count
 * when they match it, else 0. */
static int name_matches(const char *name, const char *const *words, int n)
{
    const char *sp = strchr(name, ' ');
    if (!sp)
        return n >= 1 && !strcmp(name, words[0]) ? 1 : 0;
    size_t k = (size_t)(sp - name);
    return n >= 2 && strlen(words[0]) == k && !strncmp(name, words[0], k) &&
                   !strcmp(sp + 1, words[1])
               ? 2
               : 0;
}

/* The command that words (the positional arguments) name, or NULL. */
static const command *find_command(const char *const *words, int n)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (name_matches(commands[i].name, words, n))
            return &commands[i];
    return NULL;
}

/* `cm-ledger help WORDS...`: every command whose name starts with the words ("help plan"
 * shows plan set, cancel and show). Returns 0, or a usage error for no such command. */
static int print_command_help(const char *const *words, int n)
{
    int found = 0;
    for (size_t i = 0; i < N_COMMANDS; i++) {
        const command *c = &commands[i];
        int m = name_matches(c->name, words, n);
        if (!m && n == 1 && strchr(c->name, ' ') && !strncmp(c->name, words[0], strlen(words[0])) &&
            c->name[strlen(words[0])] == ' ')
            m = 1; /* the first word of a two-word command */
        if (!m || n > m)
            continue;
        printf("%s%s%s%s%s\n  %s\n  who may run it: %s\n", found ? "\n" : "", usage_head, c->name,
               *c->synopsis ? " " : "", c->synopsis, c->help, who_text[c->who]);
        found = 1;
    }
    if (!found) {
        char m[600];
        snprintf(m, sizeof m, "no command %.250s%s%.250s", words[0], n > 1 ? " " : "",
                 n > 1 ? words[1] : "");
        return usage(m);
    }
    return 0;
}

/* Commands that only read: they never create a ledger, even given --create. */
static int read_only(const command *c)
{
    static const char *const names[] = {"plan show", "price",   "price-history", "quote",
                                        "balance",   "history", "job",           "check",
                                        "events",    "export",  "metrics",       "ping"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(c->name, names[i]))
            return 1;
    return 0;
}

/* Whether every option given applies to c (beyond --ledger, --now, --json). */
static int options_fit(const command *c, const args *a)
{
    for (size_t i = 2; i < N_OPTS; i++) /* skip --ledger, --now */
        if (a->opt[i] && !strstr(c->options, value_opts[i]))
            return 0;
    return 1;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("cm-ledger %s\n", cm_ledger_version());
        return 0;
    }
    json_mode = 0; /* main may run more than once in a process (the fuzz harness) */
    init_created = 0;
    for (int i = 1; i < argc; i++) /* usage errors are JSON too under --json */
        if (!strcmp(argv[i], "--json"))
            json_mode = 1;
    args a;
    char err[128];
    if (parse_args(argc, argv, &a, err, sizeof err)) {
        if (!strcmp(err, "help")) { /* cm-ledger [COMMAND] --help */
            if (a.npos)
                return print_command_help(a.pos, a.npos);
            print_usage(stdout);
            return 0;
        }
        return usage(err);
    }
    json_mode = a.json;
    if (a.npos == 0)
        return usage("no command");
    if (!strcmp(a.pos[0], "help")) {
        if (a.npos == 1) {
            print_usage(stdout);
            return 0;
        }
        return print_command_help(a.pos + 1, a.npos - 1);
    }
    const command *c = find_command(a.pos, a.npos);
    if (!c)
        return usage("unknown command");
    if (!options_fit(c, &a))
        return usage("an option does not apply to this command");
    if (opt(&a, "--lease") && (parse_int(opt(&a, "--lease"), &a.lease) || a.lease <= 0))
        return usage("--lease must be a positive number of seconds");
    int64_t timeout = 0;
    if (opt(&a, "--timeout") &&
        (parse_int(opt(&a, "--timeout"), &timeout) || timeout < 1 || timeout > 3600000))
        return usage("--timeout must be 1 to 3600000 milliseconds");
    if (a.create && read_only(c))
        return usage("--create does not apply to a command that only reads: read-only commands "
                     "never create a ledger (create one with `cm-ledger init`)");
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.location = opt(&a, "--ledger") ? opt(&a, "--ledger") : "./creditmeter.db";
    cfg.create = a.create;
    if (timeout) {
        cfg.busy_timeout_ms = (int)timeout;
        /* libpq's connect timeout, in whole seconds (at least 2, libpq's minimum) */
        char s[32];
        snprintf(s, sizeof s, "%lld", (long long)(timeout < 2000 ? 2 : (timeout + 999) / 1000));
        setenv("PGCONNECT_TIMEOUT", s, 0);
    }
    int64_t now;
    if (opt(&a, "--now")) {
        /* Not before 1970: the ledger and this CLI read a negative time as "none"
           (a hold resolved at 1969-12-31T23:59:59.999Z would print as unresolved). */
        if (cm_ledger_time_parse(opt(&a, "--now"), &now) || now < 0)
            return usage("--now must be ISO 8601 UTC like 2026-01-31T12:00:00Z, 1970 or later");
        cfg.now_ms = fixed_clock;
        cfg.clock_user = &now;
    }
    cm_ledger *l;
    int rc = cm_ledger_open(&l, &cfg);
    if (rc == CM_LEDGER_E_NO_LEDGER && c->handler == cmd_init) {
        cfg.create = 1;
        rc = cm_ledger_open(&l, &cfg);
        init_created = rc == CM_LEDGER_OK;
    }
    if (rc)
        return refused(rc, NULL);
    rc = c->handler(l, &a);
    cm_ledger_close(l);
    return rc;
}
