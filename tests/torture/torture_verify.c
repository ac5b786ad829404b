/* SPDX-License-Identifier: MIT */
/*
 * torture_verify.c - after the run: did the ledger do what its callers were told, and
 * did it create or lose any credit?
 *
 * Three independent views are compared:
 *   - the callers' logs (what each process asked, and what it was told);
 *   - the journal, read through cm_ledger_history() and replayed here grant by grant
 *     with the driver's own arithmetic (not the library's);
 *   - the stored balances: the grants and holds tables read with plain SQL, and
 *     cm_ledger_balance().
 * Conservation, per workspace and to the credit:
 *   plan grants + add-ons + refunds = available + held + charged + expired
 * (charged is the gross charge; charged - refunds is what was kept), from the journal
 * and from the stored grants alike, and per grant granted + refunded_into = remaining +
 * held + charged + expired. Then: no counter negative at any point of the replay; every
 * hold taken once and resolved at most once, charged at most its hold, and committed
 * only with an amount some caller asked for (never 0); a reserve told job_closed only for
 * a hold released or lapsed; every acknowledged commit in the ledger
 * with that amount, every acknowledged release released (or lapsed); every
 * acknowledged purchase and refund recorded exactly once with its amount and nothing
 * recorded that nobody asked for; plan grants of the plans' sizes, never a period
 * twice; cm_ledger_check() and `cm-ledger check` pass.
 */
#include "torture.h"
#include "test_proc.h"

#include <dirent.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- first violation ---- */

static char violation[1024];

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    if (violation[0])
        return 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(violation, sizeof violation, fmt, ap);
    va_end(ap);
    return 1;
}

/* ---- a string -> index map (open addressing) ---- */

typedef struct map {
    char **keys;
    int *vals;
    size_t cap, n;
} map;

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

static void map_free(map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "torture: out of memory\n");
        exit(1);
    }
    return p;
}

/* The index of key, or -1; with add, a new key gets index m->n (the caller grows its
 * array to match). */
static int map_get(map *m, const char *key, int add)
{
    if (add && (m->n + 1) * 2 > m->cap) {
        map old = *m;
        m->cap = old.cap ? old.cap * 2 : 1024;
        m->keys = xcalloc(m->cap, sizeof *m->keys);
        m->vals = xcalloc(m->cap, sizeof *m->vals);
        for (size_t i = 0; i < old.cap; i++)
            if (old.keys[i]) {
                size_t j = hash(old.keys[i]) & (m->cap - 1);
                while (m->keys[j])
                    j = (j + 1) & (m->cap - 1);
                m->keys[j] = old.keys[i];
                m->vals[j] = old.vals[i];
            }
        free(old.keys);
        free(old.vals);
    }
    if (!m->cap)
        return -1;
    size_t j = hash(key) & (m->cap - 1);
    while (m->keys[j]) {
        if (!strcmp(m->keys[j], key))
            return m->vals[j];
        j = (j + 1) & (m->cap - 1);
    }
    if (!add)
        return -1;
    m->keys[j] = strdup(key);
    if (!m->keys[j]) {
        fprintf(stderr, "torture: out of memory\n");
        exit(1);
    }
    m->vals[j] = (int)m->n;
    return (int)m->n++;
}

/* ---- what the callers saw ---- */

typedef struct job_rec {
    int ws;
    int64_t credits;
    int reserve_intent, reserve_ack, release_intent, release_ack;
    int closed_told;         /* a reserve (a redo) was told job_closed */
    uint32_t commit_intents; /* bit c: some caller asked to commit c credits */
    int64_t commit_ack;      /* charged, as told to a caller; -1 if never told */
    /* the ledger */
    int found, state;
    int64_t l_credits, l_charged, l_refunded;
    int l_ws;
    int64_t j_hold, j_commit, j_back, j_refund;
} job_rec;

typedef struct pay_rec {
    int ws, intent, ack, member;
    int64_t credits, grant_id;
    int64_t j_rows, j_credits;
    int j_ws;
} pay_rec;

typedef struct ref_rec {
    char job[64];
    int intent, ack;
    int64_t asked, ack_credits;
    int64_t j_credits;
    int j_wrong_job;
} ref_rec;

typedef struct logs {
    map jm, pm, rm;
    job_rec *jobs;
    pay_rec *pays;
    ref_rec *refs;
    size_t jcap, pcap, rcap;
} logs;

static int ws_index(const char *s)
{
    for (int w = 0; w < TT_NWS; w++)
        if (!strcmp(s, tt_ws(w)))
            return w;
    return -1;
}

static job_rec *job_of(logs *g, const char *id, int add)
{
    int i = map_get(&g->jm, id, add);
    if (i < 0)
        return NULL;
    if ((size_t)i >= g->jcap) {
        size_t cap = g->jcap ? g->jcap * 2 : 1024;
        job_rec *p = realloc(g->jobs, cap * sizeof *p);
        if (!p)
            exit(1);
        memset(p + g->jcap, 0, (cap - g->jcap) * sizeof *p);
        for (size_t k = g->jcap; k < cap; k++)
            p[k].commit_ack = -1, p[k].ws = -1;
        g->jobs = p;
        g->jcap = cap;
    }
    return &g->jobs[i];
}

static pay_rec *pay_of(logs *g, const char *ref, int add)
{
    int i = map_get(&g->pm, ref, add);
    if (i < 0)
        return NULL;
    if ((size_t)i >= g->pcap) {
        size_t cap = g->pcap ? g->pcap * 2 : 256;
        pay_rec *p = realloc(g->pays, cap * sizeof *p);
        if (!p)
            exit(1);
        memset(p + g->pcap, 0, (cap - g->pcap) * sizeof *p);
        g->pays = p;
        g->pcap = cap;
    }
    return &g->pays[i];
}

static ref_rec *ref_of(logs *g, const char *ref, int add)
{
    int i = map_get(&g->rm, ref, add);
    if (i < 0)
        return NULL;
    if ((size_t)i >= g->rcap) {
        size_t cap = g->rcap ? g->rcap * 2 : 256;
        ref_rec *p = realloc(g->refs, cap * sizeof *p);
        if (!p)
            exit(1);
        memset(p + g->rcap, 0, (cap - g->rcap) * sizeof *p);
        for (size_t k = g->rcap; k < cap; k++)
            p[k].ack_credits = -1;
        g->refs = p;
        g->rcap = cap;
    }
    return &g->refs[i];
}

static void logs_free(logs *g)
{
    map_free(&g->jm);
    map_free(&g->pm);
    map_free(&g->rm);
    free(g->jobs);
    free(g->pays);
    free(g->refs);
}

/* One log line; a line cut short by a SIGKILL does not parse and is ignored. */
static void parse_line(logs *g, char *line, tt_stats *st)
{
    char *tok[8];
    int n = 0;
    for (char *s = strtok(line, " "); s && n < 8; s = strtok(NULL, " "))
        tok[n++] = s;
    if (n < 1)
        return;
    const char *t = tok[0];
    if (!strcmp(t, "X")) {
        fail("a process saw: %s", line + 2);
        return;
    }
    if (n >= 3 && !strcmp(tok[n - 1], "busy"))
        st->busy++;
    if (!strcmp(t, "U"))
        st->unavailable++;
    if (!strcmp(t, "R?") && n == 6) {
        job_rec *j = job_of(g, tok[1], 1);
        j->ws = ws_index(tok[2]);
        j->credits = atoll(tok[3]);
        j->reserve_intent = 1;
    } else if (!strcmp(t, "R+") && n >= 2) {
        job_of(g, tok[1], 1)->reserve_ack = 1;
        st->reserves++;
    } else if (!strcmp(t, "R-") && n == 3 && !strcmp(tok[2], "insufficient_credits")) {
        st->insufficient++;
    } else if (!strcmp(t, "R-") && n == 3 && !strcmp(tok[2], "job_closed")) {
        job_of(g, tok[1], 1)->closed_told = 1;
        st->closed++;
    } else if (!strcmp(t, "C?") && n == 3) {
        int64_t c = atoll(tok[2]);
        if (c >= 0 && c < 32)
            job_of(g, tok[1], 1)->commit_intents |= 1u << c;
    } else if (!strcmp(t, "C+") && n == 3) {
        job_rec *j = job_of(g, tok[1], 1);
        int64_t c = atoll(tok[2]);
        if (j->commit_ack >= 0 && j->commit_ack != c)
            fail("job %s: one caller was told it charged %lld, another %lld", tok[1],
                 (long long)j->commit_ack, (long long)c);
        if (j->commit_ack < 0)
            st->commits++;
        j->commit_ack = c;
    } else if (!strcmp(t, "L?") && n == 2) {
        job_of(g, tok[1], 1)->release_intent = 1;
    } else if (!strcmp(t, "L+") && n == 3) {
        job_rec *j = job_of(g, tok[1], 1);
        if (!j->release_ack)
            st->releases++;
        j->release_ack = 1;
    } else if (!strcmp(t, "B?") && n == 5) {
        pay_rec *p = pay_of(g, tok[1], 1);
        p->ws = ws_index(tok[2]);
        p->credits = atoll(tok[3]);
        p->intent = 1;
        p->member = !strcmp(tok[4], TT_MEMBER);
    } else if (!strcmp(t, "B+") && n == 5) {
        pay_rec *p = pay_of(g, tok[1], 1);
        int64_t gid = atoll(tok[2]);
        if (p->ack && p->grant_id != gid)
            fail("purchase %s was acknowledged with grant %lld and with grant %lld", tok[1],
                 (long long)p->grant_id, (long long)gid);
        p->ack = 1;
        p->grant_id = gid;
    } else if (!strcmp(t, "F?") && n == 4) {
        ref_rec *r = ref_of(g, tok[1], 1);
        snprintf(r->job, sizeof r->job, "%s", tok[2]);
        r->asked = atoll(tok[3]);
        r->intent = 1;
    } else if (!strcmp(t, "F+") && n == 5) {
        ref_rec *r = ref_of(g, tok[1], 1);
        int64_t c = atoll(tok[2]);
        if (r->ack && r->ack_credits != c)
            fail("refund %s was acknowledged for %lld credits and for %lld", tok[1],
                 (long long)r->ack_credits, (long long)c);
        r->ack = 1;
        r->ack_credits = c;
    } else if (!strcmp(t, "D")) {
        st->redone++;
    } else if (!strcmp(t, "S+")) {
        st->sweeps++;
    } else if (!strcmp(t, "P+")) {
        st->plan_changes++;
    }
}

static int read_logs(const tt_opts *o, logs *g, tt_stats *st)
{
    DIR *d = opendir(o->dir);
    if (!d)
        return fail("cannot read the log folder %s", o->dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "log-", 4) != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", o->dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while ((len = getline(&line, &cap, f)) > 0) {
            if (line[len - 1] != '\n')
                break; /* cut short by a SIGKILL */
            line[len - 1] = 0;
            parse_line(g, line, st);
        }
        free(line);
        fclose(f);
    }
    closedir(d);
    /* The setup's purchases were asked for and acknowledged. */
    for (int w = 0; w < TT_NWS; w++) {
        char ref[32];
        snprintf(ref, sizeof ref, "seed-%d", w);
        pay_rec *p = pay_of(g, ref, 1);
        p->ws = w;
        p->credits = 30;
        p->intent = p->ack = 1;
    }
    return violation[0] != 0;
}

/* ---- the stored tables, with plain SQL ---- */

typedef void (*row_fn)(void *ctx, const char *const *v);

static int is_pg(const char *db)
{
    return !strncmp(db, "postgresql://", 13) || !strncmp(db, "postgres://", 11);
}

static int sql_rows(const tt_opts *o, const char *sql, int ncols, row_fn fn, void *ctx)
{
    const char *v[16];
    if (is_pg(o->location)) {
        PGconn *c = PQconnectdb(o->location);
        int rc = 0;
        if (PQstatus(c) != CONNECTION_OK) {
            rc = fail("cannot connect to read the tables: %s", PQerrorMessage(c));
        } else {
            PGresult *r = PQexec(c, sql);
            if (PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) != ncols) {
                rc = fail("%s: %s", sql, PQresultErrorMessage(r));
            } else {
                for (int i = 0; i < PQntuples(r); i++) {
                    for (int k = 0; k < ncols; k++)
                        v[k] = PQgetisnull(r, i, k) ? NULL : PQgetvalue(r, i, k);
                    fn(ctx, v);
                }
            }
            PQclear(r);
        }
        PQfinish(c);
        return rc;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_open_v2(o->location, &db, SQLITE_OPEN_READONLY, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(s);
        if (rc != SQLITE_ROW)
            break;
        for (int k = 0; k < ncols; k++)
            v[k] = (const char *)sqlite3_column_text(s, k);
        fn(ctx, v);
    }
    int bad = rc != SQLITE_DONE;
    if (bad)
        fail("%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_finalize(s);
    sqlite3_close(db);
    return bad;
}

static int64_t I(const char *s)
{
    return s ? atoll(s) : -1;
}

typedef struct grant {
    int64_t id, kind, granted, remaining, held, charged, expired, refunded_into, created_ms,
        expires_ms;
    int ws;
    /* the journal replayed */
    int64_t r_granted, r_remaining, r_held, r_charged, r_expired, r_refunded_into;
} grant;

typedef struct grants {
    grant *v;
    size_t n, cap;
    int bad;
    int64_t *starts[TT_NWS]; /* plan_set instants of each workspace, from the journal */
    int64_t *allow[TT_NWS];  /* the allowance (N or 12 N) each plan_set row names */
    size_t n_starts[TT_NWS];
    char **plan_refs; /* references of the plan_set/plan_cancel rows */
    size_t n_plan_refs;
} grants;

static void cb_grant(void *ctx, const char *const *v)
{
    grants *g = ctx;
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 256;
        grant *p = realloc(g->v, g->cap * sizeof *p);
        if (!p)
            exit(1);
        g->v = p;
    }
    grant *x = &g->v[g->n++];
    memset(x, 0, sizeof *x);
    x->id = I(v[0]);
    x->ws = ws_index(v[1] ? v[1] : "");
    x->kind = I(v[2]);
    x->granted = I(v[3]);
    x->remaining = I(v[4]);
    x->held = I(v[5]);
    x->charged = I(v[6]);
    x->expired = I(v[7]);
    x->refunded_into = I(v[8]);
    x->created_ms = I(v[9]);
    x->expires_ms = v[10] ? I(v[10]) : -1;
    if (x->ws < 0 || (g->n > 1 && x->id <= g->v[g->n - 2].id))
        g->bad = 1;
}

static int cmp_grant_id(const void *k, const void *e)
{
    int64_t a = *(const int64_t *)k, b = ((const grant *)e)->id;
    return (a > b) - (a < b);
}

static void cb_hold(void *ctx, const char *const *v)
{
    logs *g = ctx;
    job_rec *j = job_of(g, v[0] ? v[0] : "", 1);
    j->found++;
    j->l_ws = ws_index(v[1] ? v[1] : "");
    j->l_credits = I(v[2]);
    j->state = (int)I(v[3]);
    j->l_charged = I(v[4]);
    j->l_refunded = I(v[5]);
}

/* ---- month arithmetic of our own (struct tm and timegm) ---- */

int64_t tt_add_months(int64_t ms, int months)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    int y = tm.tm_year + 1900, m = tm.tm_mon + months;
    y += m / 12;
    m %= 12;
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int last = days[m] + (m == 1 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
    tm.tm_year = y - 1900;
    tm.tm_mon = m;
    if (tm.tm_mday > last)
        tm.tm_mday = last;
    return (int64_t)timegm(&tm) * 1000 + ms % 1000;
}

/* ---- the checks ---- */

typedef struct sums {
    int64_t grant, purchase, hold, commit, back, expiry, refund;
} sums;

static int replay_entry(grants *gs, logs *g, int w, const cm_ledger_entry *e, sums *s, tt_stats *st)
{
    const char *k = e->kind;
    int64_t c = e->credits;
    grant *gr = NULL;
    if (e->grant_id >= 0) {
        gr = bsearch(&e->grant_id, gs->v, gs->n, sizeof *gr, cmp_grant_id);
        if (!gr || gr->ws != w)
            return fail("journal row %lld of %s names grant %lld, not one of %s", (long long)e->id,
                        tt_ws(w), (long long)e->grant_id, tt_ws(w));
    }
    job_rec *j = e->job ? job_of(g, e->job, 0) : NULL;
    if (e->job && !j && strcmp(k, "expiry") != 0)
        return fail("journal row %lld (%s) names job %s, which no caller ever reserved",
                    (long long)e->id, k, e->job);
    if (!strcmp(k, "grant")) {
        s->grant += c;
        gr->r_granted += c;
        gr->r_remaining += c;
        st->periods++;
    } else if (!strcmp(k, "purchase")) {
        s->purchase += c;
        gr->r_granted += c;
        gr->r_remaining += c;
        pay_rec *p = e->ref ? pay_of(g, e->ref, 0) : NULL;
        if (!p || !p->intent || p->member)
            return fail("journal row %lld: a purchase under ref %s that nobody asked for",
                        (long long)e->id, e->ref ? e->ref : "(none)");
        p->j_rows++;
        p->j_credits += c;
        p->j_ws = w;
        if (p->ack && p->grant_id > 0 && p->grant_id != e->grant_id)
            return fail("purchase %s went into grant %lld, its caller was told %lld", e->ref,
                        (long long)e->grant_id, (long long)p->grant_id);
    } else if (!strcmp(k, "hold")) {
        s->hold += c;
        gr->r_remaining -= c;
        gr->r_held += c;
        j->j_hold += c;
    } else if (!strcmp(k, "commit")) {
        s->commit += c;
        gr->r_held -= c;
        gr->r_charged += c;
        j->j_commit += c;
    } else if (!strcmp(k, "release") || !strcmp(k, "lapse")) {
        s->back += c;
        gr->r_held -= c;
        gr->r_remaining += c;
        j->j_back += c;
        st->lapses += !strcmp(k, "lapse");
    } else if (!strcmp(k, "expiry")) {
        s->expiry += c;
        gr->r_remaining -= c;
        gr->r_expired += c;
        st->expiries++;
    } else if (!strcmp(k, "refund")) {
        s->refund += c;
        gr->r_remaining += c;
        if (gr->kind == CM_LEDGER_GRANT_REFUND)
            gr->r_granted += c;
        else
            gr->r_refunded_into += c;
        j->j_refund += c;
        ref_rec *r = e->ref ? ref_of(g, e->ref, 0) : NULL;
        if (!r || !r->intent)
            return fail("journal row %lld: a refund under ref %s that nobody asked for",
                        (long long)e->id, e->ref ? e->ref : "(none)");
        if (!e->job || strcmp(r->job, e->job) != 0)
            return fail("refund %s went to job %s, its caller asked for %s", e->ref,
                        e->job ? e->job : "(none)", r->job);
        r->j_credits += c;
    } else if (!strcmp(k, "plan_set") || !strcmp(k, "plan_cancel")) {
        if (e->ref) { /* a plan change's reference is applied once, however often repeated */
            for (size_t i = 0; i < gs->n_plan_refs; i++)
                if (!strcmp(gs->plan_refs[i], e->ref))
                    return fail("journal row %lld: plan reference %s was applied twice",
                                (long long)e->id, e->ref);
            char **r = realloc(gs->plan_refs, (gs->n_plan_refs + 1) * sizeof *r);
            if (!r || !(r[gs->n_plan_refs] = strdup(e->ref)))
                exit(1);
            gs->plan_refs = r;
            gs->n_plan_refs++;
        }
        if (!strcmp(k, "plan_set")) {
            /* "N credits a month, monthly|annual..." (the driver reads the plan from the
             * sentence, independently of the ledger's plan tables) */
            const char *m = e->reason ? strstr(e->reason, " credits a month, ") : NULL;
            if (!m)
                return fail("journal row %lld: a plan_set row that names no plan",
                            (long long)e->id);
            const char *d = m;
            while (d > e->reason && d[-1] >= '0' && d[-1] <= '9')
                d--;
            int64_t n = atoll(d);
            int annual = !strncmp(m + strlen(" credits a month, "), "annual", 6);
            int64_t *p = realloc(gs->starts[w], (gs->n_starts[w] + 1) * sizeof *p);
            int64_t *a = realloc(gs->allow[w], (gs->n_starts[w] + 1) * sizeof *a);
            if (!p || !a)
                exit(1);
            gs->starts[w] = p;
            gs->allow[w] = a;
            a[gs->n_starts[w]] = annual ? 12 * n : n;
            p[gs->n_starts[w]++] = e->at_ms;
        }
    } else if (c != 0) {
        return fail("journal row %lld: unknown movement %s", (long long)e->id, k);
    }
    if (gr && (gr->r_remaining < 0 || gr->r_held < 0 || gr->r_charged < 0 || gr->r_expired < 0))
        return fail("journal row %lld (%s of %lld) drives grant %lld negative (remaining %lld, "
                    "held %lld)",
                    (long long)e->id, k, (long long)c, (long long)gr->id,
                    (long long)gr->r_remaining, (long long)gr->r_held);
    return 0;
}

static int check_workspace(cm_ledger *l, grants *gs, logs *g, int w, tt_stats *st)
{
    cm_ledger_history_result *h = NULL;
    int rc = cm_ledger_history(l, tt_ws(w), NULL, &h);
    if (rc)
        return fail("history %s: %s", tt_ws(w), cm_ledger_errmsg(l));
    sums s = {0};
    for (size_t i = 0; i < h->n_entries && !violation[0]; i++) {
        if (i && h->entries[i].id <= h->entries[i - 1].id)
            fail("history of %s is not in journal order at row %lld", tt_ws(w),
                 (long long)h->entries[i].id);
        replay_entry(gs, g, w, &h->entries[i], &s, st);
    }
    cm_ledger_history_free(h);
    if (violation[0])
        return 1;

    /* The journal's view: in = out, to the credit. */
    int64_t j_avail = s.grant + s.purchase - s.hold + s.back - s.expiry + s.refund;
    int64_t j_held = s.hold - s.commit - s.back;
    if (s.grant + s.purchase + s.refund != j_avail + j_held + s.commit + s.expiry || j_avail < 0 ||
        j_held < 0)
        return fail("%s: journal: granted %lld + bought %lld + refunded %lld != available %lld + "
                    "held %lld + charged %lld + expired %lld",
                    tt_ws(w), (long long)s.grant, (long long)s.purchase, (long long)s.refund,
                    (long long)j_avail, (long long)j_held, (long long)s.commit,
                    (long long)s.expiry);

    /* The stored grants' view, grant by grant and summed. */
    int64_t t_in = 0, t_avail = 0, t_held = 0, t_charged = 0, t_expired = 0;
    for (size_t i = 0; i < gs->n; i++) {
        const grant *x = &gs->v[i];
        if (x->ws != w)
            continue;
        if (x->granted < 0 || x->remaining < 0 || x->held < 0 || x->charged < 0 || x->expired < 0 ||
            x->refunded_into < 0)
            return fail("grant %lld has a negative counter", (long long)x->id);
        if (x->granted + x->refunded_into != x->remaining + x->held + x->charged + x->expired)
            return fail("grant %lld: granted %lld + refunded %lld != remaining %lld + held %lld "
                        "+ charged %lld + expired %lld",
                        (long long)x->id, (long long)x->granted, (long long)x->refunded_into,
                        (long long)x->remaining, (long long)x->held, (long long)x->charged,
                        (long long)x->expired);
        if (x->granted != x->r_granted || x->remaining != x->r_remaining || x->held != x->r_held ||
            x->charged != x->r_charged || x->expired != x->r_expired ||
            x->refunded_into != x->r_refunded_into)
            return fail("grant %lld: stored %lld/%lld/%lld/%lld/%lld/%lld (granted/remaining/"
                        "held/charged/expired/refunded) but the journal gives "
                        "%lld/%lld/%lld/%lld/%lld/%lld",
                        (long long)x->id, (long long)x->granted, (long long)x->remaining,
                        (long long)x->held, (long long)x->charged, (long long)x->expired,
                        (long long)x->refunded_into, (long long)x->r_granted,
                        (long long)x->r_remaining, (long long)x->r_held, (long long)x->r_charged,
                        (long long)x->r_expired, (long long)x->r_refunded_into);
        t_in += x->granted + x->refunded_into;
        t_avail += x->remaining;
        t_held += x->held;
        t_charged += x->charged;
        t_expired += x->expired;
    }
    if (t_in != s.grant + s.purchase + s.refund || t_avail != j_avail || t_held != j_held ||
        t_charged != s.commit || t_expired != s.expiry)
        return fail("%s: stored grants in %lld / available %lld / held %lld / charged %lld / "
                    "expired %lld, journal %lld / %lld / %lld / %lld / %lld",
                    tt_ws(w), (long long)t_in, (long long)t_avail, (long long)t_held,
                    (long long)t_charged, (long long)t_expired,
                    (long long)(s.grant + s.purchase + s.refund), (long long)j_avail,
                    (long long)j_held, (long long)s.commit, (long long)s.expiry);

    /* The API's view. */
    cm_ledger_balance_result *b = NULL;
    rc = cm_ledger_balance(l, tt_ws(w), tt_owner(w), &b);
    if (rc)
        return fail("balance %s: %s", tt_ws(w), cm_ledger_errmsg(l));
    int64_t b_avail = b->available, b_held = b->held;
    cm_ledger_balance_free(b);
    if (b_avail != t_avail || b_held != t_held)
        return fail("%s: balance says available %lld held %lld, the grants %lld and %lld", tt_ws(w),
                    (long long)b_avail, (long long)b_held, (long long)t_avail, (long long)t_held);
    if (t_held != 0)
        return fail("%s: %lld credits still held after every lease ended and a sweep", tt_ws(w),
                    (long long)t_held);

    st->granted += s.grant;
    st->bought += s.purchase;
    st->refunded_in += s.refund;
    st->available += t_avail;
    st->held += t_held;
    st->charged += s.commit;
    st->expired += s.expiry;
    return 0;
}

/* How many plans, started at one of the plan_set instants and L months long, have
 * [from, to) as one of their periods, every boundary counted from the start (Jan 31 ->
 * Feb 28 -> Mar 31)? Usually 0 or 1; more when a plan was set, cancelled and set again
 * at one instant (each set starts a period at once with its own grant). */
static int periods_of(const grants *gs, int w, int64_t from, int64_t to, int L)
{
    int n = 0;
    for (size_t i = 0; i < gs->n_starts[w]; i++) {
        int64_t s = gs->starts[w][i];
        if (s > from)
            continue;
        for (int k = 0; k < 100000; k += L) {
            int64_t b = tt_add_months(s, k);
            if (b >= from) {
                n += b == from && tt_add_months(s, k + L) == to;
                break;
            }
        }
    }
    return n;
}

/* The plan rules of issue 12, judged from the journal's plan_set rows (their instants
 * and the plans their sentences name) and the stored plan grants, by the driver's own
 * month arithmetic:
 *  - every plan grant is either a whole period of a plan set at one of the plan_set
 *    instants (bounds counted from that instant with clamped days), or a top-up made at
 *    a plan_set instant that expires with a period granted before it;
 *  - no period is granted twice by one plan;
 *  - the grants of one period (those expiring together) add up to no more than the
 *    largest allowance among the plans in effect during it (the last set before its
 *    start, and every set from its start to before its end): no plan change mints
 *    credits;
 *  - periods do not overlap, except an annual period starting inside a monthly one. */
static int check_plan_grants(grants *gs)
{
    for (size_t i = 0; i < gs->n; i++) {
        const grant *x = &gs->v[i];
        if (x->kind != CM_LEDGER_GRANT_PLAN)
            continue;
        int L = x->expires_ms == tt_add_months(x->created_ms, 12) ? 12 : 1;
        int plans = periods_of(gs, x->ws, x->created_ms, x->expires_ms, L);
        if (!plans) {
            int topup = 0;
            for (size_t k = 0; k < gs->n_starts[x->ws]; k++)
                topup |= gs->starts[x->ws][k] == x->created_ms;
            int period = 0;
            for (size_t k = 0; k < i; k++)
                period |= gs->v[k].kind == CM_LEDGER_GRANT_PLAN && gs->v[k].ws == x->ws &&
                          gs->v[k].expires_ms == x->expires_ms &&
                          gs->v[k].created_ms < x->created_ms;
            if (!topup || !period)
                return fail("plan grant %lld of %s: %lld credits from %lld to %lld is neither a "
                            "period of its plans nor a top-up of one",
                            (long long)x->id, tt_ws(x->ws), (long long)x->granted,
                            (long long)x->created_ms, (long long)x->expires_ms);
            continue;
        }
        int same = 1;
        for (size_t k = 0; k < i; k++) {
            const grant *y = &gs->v[k];
            same += y->kind == CM_LEDGER_GRANT_PLAN && y->ws == x->ws &&
                    y->created_ms == x->created_ms && y->expires_ms == x->expires_ms;
        }
        if (same > plans)
            return fail("plan grant %lld of %s: the period from %lld to %lld was granted %d "
                        "times by %d plan(s)",
                        (long long)x->id, tt_ws(x->ws), (long long)x->created_ms,
                        (long long)x->expires_ms, same, plans);
    }
    /* Per period: the allowance, and no overlap. Grants are by id, so a period's first
     * grant is its start. */
    for (int w = 0; w < TT_NWS; w++) {
        int64_t prev_begin = -1, prev_end = -1;
        for (size_t i = 0; i < gs->n; i++) {
            const grant *x = &gs->v[i];
            if (x->kind != CM_LEDGER_GRANT_PLAN || x->ws != w)
                continue;
            int first = 1;
            int64_t sum = 0;
            for (size_t k = 0; k < gs->n; k++) {
                const grant *y = &gs->v[k];
                if (y->kind == CM_LEDGER_GRANT_PLAN && y->ws == w &&
                    y->expires_ms == x->expires_ms) {
                    first &= k >= i;
                    sum += y->granted;
                }
            }
            if (!first)
                continue;
            int64_t before = -1, most = -1;
            for (size_t k = 0; k < gs->n_starts[w]; k++) {
                if (gs->starts[w][k] < x->created_ms)
                    before = gs->allow[w][k];
                else if (gs->starts[w][k] < x->expires_ms && gs->allow[w][k] > most)
                    most = gs->allow[w][k];
            }
            if (before > most)
                most = before;
            if (sum > most)
                return fail("plan period of %s from %lld to %lld was granted %lld credits, more "
                            "than the %lld its plans allow",
                            tt_ws(w), (long long)x->created_ms, (long long)x->expires_ms,
                            (long long)sum, (long long)most);
            const int64_t month = 31LL * 86400000;
            if (prev_end > x->created_ms &&
                !(prev_end - prev_begin <= month && x->expires_ms - x->created_ms > month))
                return fail("plan periods of %s overlap: one from %lld to %lld, the next from "
                            "%lld",
                            tt_ws(w), (long long)prev_begin, (long long)prev_end,
                            (long long)x->created_ms);
            if (x->expires_ms > prev_end) {
                prev_begin = x->created_ms;
                prev_end = x->expires_ms;
            }
        }
    }
    return 0;
}

static int check_jobs(logs *g)
{
    for (size_t i = 0; i < g->jm.cap; i++) {
        if (!g->jm.keys[i])
            continue;
        const char *id = g->jm.keys[i];
        const job_rec *j = &g->jobs[g->jm.vals[i]];
        if (!j->found) {
            if (j->reserve_ack)
                return fail("job %s: reserve acknowledged, but the ledger has no hold", id);
            if (j->commit_ack >= 0 || j->release_ack)
                return fail("job %s: resolution acknowledged, but the ledger has no hold", id);
            if (j->closed_told)
                return fail("job %s: a reserve was told job_closed, but the ledger has no hold",
                            id);
            continue;
        }
        if (!j->reserve_intent || j->ws != j->l_ws || j->credits != j->l_credits)
            return fail("job %s: the ledger holds %lld credits in %s that no caller reserved", id,
                        (long long)j->l_credits, j->l_ws >= 0 ? tt_ws(j->l_ws) : "?");
        if (j->j_hold != j->l_credits)
            return fail("job %s: hold of %lld, the journal took %lld", id, (long long)j->l_credits,
                        (long long)j->j_hold);
        if (j->l_charged < 0 || j->l_charged > j->l_credits || j->l_refunded < 0 ||
            j->l_refunded > j->l_charged || j->j_refund != j->l_refunded)
            return fail("job %s: held %lld, charged %lld, refunded %lld (journal %lld)", id,
                        (long long)j->l_credits, (long long)j->l_charged, (long long)j->l_refunded,
                        (long long)j->j_refund);
        switch (j->state) {
        case CM_LEDGER_COMMITTED:
            if (j->j_commit != j->l_charged || j->j_commit + j->j_back != j->l_credits)
                return fail("job %s: committed for %lld, the journal charged %lld and gave "
                            "back %lld of %lld (charged twice?)",
                            id, (long long)j->l_charged, (long long)j->j_commit,
                            (long long)j->j_back, (long long)j->l_credits);
            if (j->l_charged == 0) /* issue 12: nothing costs 0 (use release) */
                return fail("job %s: committed for 0 credits", id);
            if (j->l_charged >= 32 || !(j->commit_intents & (1u << j->l_charged)))
                return fail("job %s: committed for %lld, which no caller asked for", id,
                            (long long)j->l_charged);
            if (j->release_ack)
                return fail("job %s: a caller was told it was released, but it is committed", id);
            break;
        case CM_LEDGER_RELEASED:
        case CM_LEDGER_LAPSED:
            if (j->j_commit || j->l_charged || j->j_back != j->l_credits)
                return fail("job %s: %s, but the journal charged %lld and gave back %lld of %lld",
                            id, cm_ledger_hold_state_name(j->state), (long long)j->j_commit,
                            (long long)j->j_back, (long long)j->l_credits);
            if (j->state == CM_LEDGER_RELEASED && !j->release_intent)
                return fail("job %s: released, but no caller asked for it", id);
            break;
        default:
            return fail("job %s: state %d after every lease ended and a sweep", id, j->state);
        }
        if (j->closed_told && j->state != CM_LEDGER_RELEASED && j->state != CM_LEDGER_LAPSED)
            return fail("job %s: a reserve was told job_closed, but its hold is %s", id,
                        cm_ledger_hold_state_name(j->state));
        if (j->commit_ack >= 0 &&
            (j->state != CM_LEDGER_COMMITTED || j->l_charged != j->commit_ack))
            return fail("job %s: a caller was told it was charged %lld; the ledger says %s, "
                        "charged %lld",
                        id, (long long)j->commit_ack, cm_ledger_hold_state_name(j->state),
                        (long long)j->l_charged);
    }
    return 0;
}

static int check_purchases_and_refunds(logs *g, tt_stats *st)
{
    for (size_t i = 0; i < g->pm.cap; i++) {
        if (!g->pm.keys[i])
            continue;
        const char *ref = g->pm.keys[i];
        const pay_rec *p = &g->pays[g->pm.vals[i]];
        if (p->j_rows > 1)
            return fail("purchase %s is in the journal %lld times", ref, (long long)p->j_rows);
        if (p->member && p->j_rows)
            return fail("purchase %s by a member was recorded", ref);
        if (p->ack && !p->j_rows)
            return fail("purchase %s was acknowledged but is not in the journal", ref);
        if (p->j_rows && (p->j_credits != p->credits || p->j_ws != p->ws))
            return fail("purchase %s: %lld credits in %s, asked %lld in %s", ref,
                        (long long)p->j_credits, tt_ws(p->j_ws), (long long)p->credits,
                        tt_ws(p->ws));
        st->purchases += p->j_rows;
    }
    for (size_t i = 0; i < g->rm.cap; i++) {
        if (!g->rm.keys[i])
            continue;
        const char *ref = g->rm.keys[i];
        const ref_rec *r = &g->refs[g->rm.vals[i]];
        if (r->ack && r->j_credits != r->ack_credits)
            return fail("refund %s was acknowledged for %lld credits; the journal has %lld", ref,
                        (long long)r->ack_credits, (long long)r->j_credits);
        if (r->j_credits && r->asked != CM_LEDGER_ALL && r->j_credits != r->asked)
            return fail("refund %s asked %lld credits; the journal has %lld", ref,
                        (long long)r->asked, (long long)r->j_credits);
        if (r->j_credits) {
            st->refunds++;
            st->refund_credits += r->j_credits;
        }
    }
    return 0;
}

static int run_cli_check(const tt_opts *o, int64_t now_ms)
{
    char when[40];
    cm_ledger_time_format(now_ms, when, sizeof when);
    char *argv[] = {(char *)o->cli,
                    (char *)"--ledger",
                    (char *)o->location,
                    (char *)"--now",
                    when,
                    (char *)"check",
                    NULL};
    static char out[16384];
    int rc = cmt_proc_run(argv, out, sizeof out, NULL, 0);
    if (rc != 0)
        return fail("`%s --ledger ... --now %s check` failed (status %d): %s", o->cli, when, rc,
                    out);
    return 0;
}

int tt_verify(const tt_opts *o, tt_shared *sh, tt_stats *st)
{
    logs g;
    memset(&g, 0, sizeof g);
    grants gs = {0};
    cm_ledger *l = NULL;
    if (read_logs(o, &g, st))
        goto out;
    if (tt_open(o, sh, &l)) {
        fail("cannot open the ledger after the run: %s", cm_ledger_errmsg(NULL));
        goto out;
    }
    /* As the processes left it (the dead ones' holds still running). */
    if (cm_ledger_check(l)) {
        fail("cm_ledger_check after the run: %s", cm_ledger_errmsg(l));
        goto out;
    }
    /* Past every lease, then sweep: nothing may stay held. */
    atomic_fetch_add(&sh->now_ms, (int64_t)(TT_LONG_LEASE_S + 86400) * 1000);
    cm_ledger_sweep_stats ss;
    if (cm_ledger_sweep(l, &ss)) {
        fail("final sweep: %s", cm_ledger_errmsg(l));
        goto out;
    }
    if (cm_ledger_check(l)) {
        fail("cm_ledger_check after the final sweep: %s", cm_ledger_errmsg(l));
        goto out;
    }
    if (sql_rows(o,
                 "SELECT id, ws, kind, granted, remaining, held, charged, expired, "
                 "refunded_into, created_ms, expires_ms FROM grants ORDER BY id",
                 11, cb_grant, &gs))
        goto out;
    if (gs.bad) {
        fail("the grants table has a grant of an unknown workspace");
        goto out;
    }
    if (sql_rows(o, "SELECT job, ws, credits, state, charged, refunded FROM holds", 6, cb_hold, &g))
        goto out;
    for (int w = 0; w < TT_NWS && !violation[0]; w++)
        check_workspace(l, &gs, &g, w, st);
    if (!violation[0])
        check_plan_grants(&gs);
    if (!violation[0])
        check_jobs(&g);
    if (!violation[0])
        check_purchases_and_refunds(&g, st);
    if (!violation[0])
        run_cli_check(o, atomic_load(&sh->now_ms));
out:
    cm_ledger_close(l);
    free(gs.v);
    for (int w = 0; w < TT_NWS; w++) {
        free(gs.starts[w]);
        free(gs.allow[w]);
    }
    for (size_t i = 0; i < gs.n_plan_refs; i++)
        free(gs.plan_refs[i]);
    free(gs.plan_refs);
    logs_free(&g);
    if (violation[0]) {
        fprintf(stderr, "torture: VIOLATION: %s\n", violation);
        return 1;
    }
    return 0;
}
