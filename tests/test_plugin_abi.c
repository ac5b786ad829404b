/* SPDX-License-Identifier: MIT */
/*
 * test_plugin_abi.c - the plugin's binary contract: one exported symbol, version
 * negotiation both ways, struct sizes, names of every code, and one handle shared by
 * several threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "creditmeter_plugin.h"
#include "test_plugin_util.h"

#include <dlfcn.h>
#include <pthread.h>

#define CMT_FAKE_ABI2 CM_BUILD_DIR "/tests/libtest_plugin_fake_abi2.so"

static void test_plugin_exports_only_the_entry_symbol(void **state)
{
    (void)state;
    char out[8192];
    char *argv[] = {(char *)"/usr/bin/nm", (char *)"-D", (char *)"--defined-only",
                    (char *)CMT_PLUGIN, NULL};
    assert_int_equal(cmt_runv(out, sizeof out, argv), 0);
    int symbols = 0, entry = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        char addr[64], type[8], name[256];
        if (sscanf(line, "%63s %7s %255s", addr, type, name) != 3)
            continue;
        symbols++;
        if (strcmp(name, "cm_plugin_entry") == 0 && strcmp(type, "T") == 0)
            entry = 1;
        else
            print_error("unexpected exported symbol: %s\n", line);
    }
    assert_int_equal(entry, 1);
    assert_int_equal(symbols, 1);
}

/* The plugin stays loaded: unloading it would also unload libavformat's and libsqlite3's
 * dependency chain, whose library constructors keep allocations LeakSanitizer then
 * reports (cm-pipeline links libav* itself, so its dlclose unloads only the plugin). */
static void unload(void *dl)
{
    (void)dl;
}

static const cm_plugin_api *load(void **dl, uint32_t major, uint32_t minor)
{
    *dl = dlopen(CMT_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(*dl);
    dlerror();
    void *sym = dlsym(*dl, CM_PLUGIN_ENTRY_SYMBOL);
    assert_null(dlerror());
    cm_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    return entry(major, minor);
}

/* A ledger at db (named name) with workspace ws holding credits, and the plugin loaded
 * for a host of ABI 1.minor. */
static const cm_plugin_api *ledger_and_plugin(char *db, size_t n, const char *name, const char *ws,
                                              int64_t credits, uint32_t minor)
{
    cmt_path(db, n, name);
    assert_int_equal(cmt_ledger_setup(db, ws, credits), 0);
    void *dl;
    const cm_plugin_api *api = load(&dl, CM_PLUGIN_ABI_MAJOR, minor);
    assert_non_null(api);
    return api;
}

static void test_plugin_negotiates_the_abi_version(void **state)
{
    (void)state;
    void *dl;
    const cm_plugin_api *api = load(&dl, CM_PLUGIN_ABI_MAJOR, CM_PLUGIN_ABI_MINOR);
    assert_true(cm_plugin_api_compatible(api));
    assert_int_equal(api->struct_size, sizeof(cm_plugin_api));
    assert_non_null(api->version);
    /* another major, or a host that needs a newer minor: refused */
    assert_null(api == NULL ? NULL : ((cm_plugin_entry_fn)dlsym(dl, "cm_plugin_entry"))(2, 0));
    assert_null(((cm_plugin_entry_fn)dlsym(dl, "cm_plugin_entry"))(0, 9));
    assert_null(((cm_plugin_entry_fn)dlsym(dl, "cm_plugin_entry"))(CM_PLUGIN_ABI_MAJOR,
                                                                   CM_PLUGIN_ABI_MINOR + 1));
    /* no other symbol is reachable */
    assert_null(dlsym(dl, "cm_probe_new"));
    assert_null(dlsym(dl, "cm_ledger_open"));
    unload(dl);
}

static void test_host_refuses_incompatible_plugin(void **state)
{
    (void)state;
    char db[512], out[4096];
    cmt_path(db, sizeof db, "abi.db");
    char *argv[] = {(char *)CMT_PIPELINE,
                    (char *)"--plugin",
                    (char *)CMT_FAKE_ABI2,
                    (char *)"--ledger",
                    db,
                    (char *)"--workspace",
                    (char *)"w",
                    (char *)"--user",
                    (char *)"u",
                    (char *)"--job",
                    (char *)"j",
                    (char *)"--generate",
                    (char *)"1",
                    (char *)"/dev/null",
                    NULL};
    assert_int_equal(cmt_runv(out, sizeof out, argv), 2);
    assert_non_null(strstr(out, "incompatible plugin"));
    assert_non_null(strstr(out, "plugin ABI 2.0"));
    assert_null(strstr(out, "quote:"));
    argv[2] = (char *)CM_BUILD_DIR "/no-such-plugin.so";
    assert_int_equal(cmt_runv(out, sizeof out, argv), 2);
    assert_non_null(strstr(out, "cannot load plugin"));
    unlink(db);
}

static void test_every_code_has_a_name_and_a_sentence(void **state)
{
    (void)state;
    void *dl;
    const cm_plugin_api *api = load(&dl, CM_PLUGIN_ABI_MAJOR, CM_PLUGIN_ABI_MINOR);
    const char *seen[16] = {0};
    for (int code = 0; code >= CM_PLUGIN_E_NO_LEDGER; code--) {
        const char *name = api->err_name(code);
        assert_string_not_equal(name, "unknown");
        assert_string_not_equal(api->strerror(code), "Unknown error.");
        for (int i = 0; i < -code; i++)
            assert_string_not_equal(seen[i], name);
        seen[-code] = name;
    }
    assert_string_equal(api->err_name(-999), "unknown");
    assert_string_equal(api->cause_name(CM_PLUGIN_CAUSE_PROBE, -11), "damaged");
    assert_string_equal(api->cause_name(CM_PLUGIN_CAUSE_LEDGER, -1), "insufficient_credits");
    assert_string_equal(api->hold_state_name(CM_PLUGIN_HOLD_LAPSED), "lapsed");
    unload(dl);
}

static void test_open_checks_struct_sizes(void **state)
{
    (void)state;
    void *dl;
    const cm_plugin_api *api = load(&dl, CM_PLUGIN_ABI_MAJOR, CM_PLUGIN_ABI_MINOR);
    char db[512];
    cmt_path(db, sizeof db, "sizes.db");
    assert_int_equal(cmt_ledger_setup(db, "sizes", 0), 0); /* the ledger exists: no creation */
    cm_plugin_config cfg;
    cm_plugin_config_init(&cfg);
    cfg.ledger = db;
    cfg.struct_size = 8; /* a host that knows less than ABI 1.0: refused, no crash */
    cm_plugin *p = NULL;
    cm_plugin_error_info e;
    memset(&e, 0, sizeof e);
    e.struct_size = sizeof e;
    assert_int_equal(api->open(&cfg, &p, &e), CM_PLUGIN_E_ABI);
    assert_null(p);
    assert_int_equal(e.code, CM_PLUGIN_E_ABI);
    assert_true(e.message[0] != '\0');
    cfg.struct_size = sizeof cfg;
    cfg.ledger = NULL;
    assert_int_equal(api->open(&cfg, &p, NULL), CM_PLUGIN_E_INVALID);
    cfg.ledger = db;
    cfg.create = 1; /* a new ledger */
    assert_int_equal(api->open(&cfg, &p, &e), CM_PLUGIN_OK);
    /* a quote struct from a host that sets no size is refused, not overrun */
    cm_plugin_job_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.struct_size = sizeof spec;
    spec.job = "j";
    spec.workspace = "w";
    spec.user = "u";
    spec.billing = CM_PLUGIN_BY_OUTPUT;
    spec.requested_output_ms = 1000;
    cm_plugin_quote q;
    memset(&q, 0, sizeof q);
    assert_int_equal(api->job_begin(p, &spec, &q), CM_PLUGIN_E_ABI);
    q.struct_size = sizeof q;
    assert_int_equal(api->job_begin(p, &spec, &q), CM_PLUGIN_E_FORBIDDEN); /* no workspace */
    assert_int_equal(q.cause, CM_PLUGIN_CAUSE_LEDGER);
    assert_int_equal(api->stage_begin(p, "never-begun", "probe"), CM_PLUGIN_E_NO_JOB);
    assert_int_equal(api->last_error(p, &e), CM_PLUGIN_OK);
    assert_int_equal(e.code, CM_PLUGIN_E_NO_JOB);
    api->close(p);
    unload(dl);
    unlink(db);
}

/* ---- one handle, several threads ---- */

typedef struct worker {
    const cm_plugin_api *api;
    cm_plugin *p;
    int id, failures;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 4; i++) {
        char job[64];
        snprintf(job, sizeof job, "t%d-%d", w->id, i);
        cm_plugin_job_spec spec;
        memset(&spec, 0, sizeof spec);
        spec.struct_size = sizeof spec;
        spec.job = job;
        spec.workspace = "threads";
        spec.user = (w->id & 1) ? "member" : "owner";
        spec.billing = CM_PLUGIN_BY_INPUT;
        spec.input_path = CMT_SAMPLE("clip-40s.mp4");
        cm_plugin_quote q;
        memset(&q, 0, sizeof q);
        q.struct_size = sizeof q;
        cm_plugin_outcome o;
        memset(&o, 0, sizeof o);
        o.struct_size = sizeof o;
        int ok = i != 3; /* the last job of each thread fails: released */
        if (w->api->job_begin(w->p, &spec, &q) != CM_PLUGIN_OK || q.credits != 1 ||
            w->api->stage_begin(w->p, job, "transcode") != CM_PLUGIN_OK ||
            w->api->stage_end(w->p, job, "transcode", ok, ok ? NULL : "boom") != CM_PLUGIN_OK ||
            w->api->job_end(w->p, job, ok, NULL, &o) != CM_PLUGIN_OK || o.charged != (ok ? 1 : 0))
            w->failures++;
    }
    return NULL;
}

static void test_one_handle_serves_several_threads(void **state)
{
    (void)state;
    char db[512];
    const cm_plugin_api *api =
        ledger_and_plugin(db, sizeof db, "threads.db", "threads", 30, CM_PLUGIN_ABI_MINOR);
    cm_plugin_config cfg;
    cm_plugin_config_init(&cfg);
    cfg.ledger = db;
    cm_plugin *p = NULL;
    assert_int_equal(api->open(&cfg, &p, NULL), CM_PLUGIN_OK);
    worker w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){api, p, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    cm_plugin_balance b;
    memset(&b, 0, sizeof b);
    b.struct_size = sizeof b;
    assert_int_equal(api->balance(p, "threads", "member", &b), CM_PLUGIN_OK);
    assert_int_equal(b.available, 30 - 12);
    assert_int_equal(b.held, 0);
    assert_int_equal(api->balance(p, "threads", "mallory", &b), CM_PLUGIN_E_FORBIDDEN);
    api->close(p);
    assert_int_equal(cmt_ledger_check(db), 0);
    unlink(db);
}

/* ABI 1.1 appended quote() and fields at the end of cm_plugin_quote: a host built
 * against 1.0 still loads the plugin and begins jobs with its smaller quote struct, and
 * nothing is written past that struct's end. */
static void test_a_1_0_host_still_works_with_the_1_1_plugin(void **state)
{
    (void)state;
    char db[512];
    const cm_plugin_api *api = ledger_and_plugin(db, sizeof db, "abi10.db", "old", 5, 0);
    assert_int_equal(api->abi_minor, CM_PLUGIN_ABI_MINOR);
    assert_true(api->struct_size >= offsetof(cm_plugin_api, quote) + sizeof(void *));
    cm_plugin_config cfg;
    cm_plugin_config_init(&cfg);
    cfg.ledger = db;
    cm_plugin *p = NULL;
    assert_int_equal(api->open(&cfg, &p, NULL), CM_PLUGIN_OK);
    cm_plugin_job_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.struct_size = sizeof spec;
    spec.job = "old-1";
    spec.workspace = "old";
    spec.user = "owner";
    spec.billing = CM_PLUGIN_BY_INPUT;
    spec.input_path = CMT_SAMPLE("clip-40s.mp4");
    /* a 1.0 host's quote struct, followed by bytes that must stay untouched */
    union {
        cm_plugin_quote q;
        unsigned char bytes[sizeof(cm_plugin_quote)];
    } u;
    memset(&u, 0xa5, sizeof u);
    u.q.struct_size = (uint32_t)CM_PLUGIN_QUOTE_SIZE_1_0;
    assert_int_equal(api->job_begin(p, &spec, &u.q), CM_PLUGIN_OK);
    assert_int_equal(u.q.credits, 1);
    for (size_t i = CM_PLUGIN_QUOTE_SIZE_1_0; i < sizeof u; i++)
        assert_int_equal(u.bytes[i], 0xa5);
    /* quote() needs the 1.1 struct: refused, not overrun */
    assert_int_equal(api->quote(p, &spec, &u.q), CM_PLUGIN_E_ABI);
    for (size_t i = CM_PLUGIN_QUOTE_SIZE_1_0; i < sizeof u; i++)
        assert_int_equal(u.bytes[i], 0xa5);
    cm_plugin_outcome o;
    memset(&o, 0, sizeof o);
    o.struct_size = sizeof o;
    assert_int_equal(api->job_end(p, "old-1", 1, NULL, &o), CM_PLUGIN_OK);
    assert_int_equal(o.charged, 1);
    /* and a 1.1 host gets the quote with its grants, holding nothing */
    cm_plugin_quote q;
    memset(&q, 0, sizeof q);
    q.struct_size = sizeof q;
    spec.job = NULL;
    assert_int_equal(api->quote(p, &spec, &q), CM_PLUGIN_OK);
    assert_int_equal(q.credits, 1);
    assert_int_equal(q.affordable, 1);
    assert_int_equal(q.available, 4);
    assert_int_equal(q.n_grants, 1);
    assert_int_equal(q.grants[0].credits, 1);
    assert_int_equal(q.hold_state, CM_PLUGIN_HOLD_NONE);
    assert_non_null(strstr(q.receipt, "1 credit for 40"));
    cm_plugin_balance b;
    memset(&b, 0, sizeof b);
    b.struct_size = sizeof b;
    assert_int_equal(api->balance(p, "old", NULL, &b), CM_PLUGIN_OK);
    assert_int_equal(b.available, 4);
    assert_int_equal(b.held, 0);
    api->close(p);
    assert_int_equal(cmt_ledger_check(db), 0);
    unlink(db);
}

/* ---- every struct at its 1.0 size, and at a newer host's larger size ---- */

#define POISON 0xa5
#define TAIL 64 /* bytes after the struct a host says it has */

/* A host struct of struct_size size in a buffer TAIL bytes longer, every byte poison. */
typedef struct host_buf {
    _Alignas(max_align_t) unsigned char b[sizeof(cm_plugin_quote) + 2 * TAIL];
} host_buf;

static void *host_struct(host_buf *h, size_t size)
{
    memset(h->b, POISON, sizeof h->b);
    uint32_t n = (uint32_t)size;
    memcpy(h->b, &n, sizeof n);
    return h->b;
}

/* Nothing at or beyond size was written. */
static void assert_poison_from(const host_buf *h, size_t size)
{
    for (size_t i = size; i < size + TAIL; i++)
        if (h->b[i] != POISON)
            fail_msg("byte %zu (struct_size %zu) was written", i, size);
}

/* Runs one job, balance, job_state and last_error with every struct a host passes at
 * the size given by newer (0: each struct's 1.0 size; TAIL: today's size plus TAIL, a
 * host of a later minor) and checks each answer and that nothing past each struct's
 * size was written. */
static void drive_with_sizes(const cm_plugin_api *api, const char *db, const char *job,
                             size_t newer)
{
    host_buf hc, hs, hq, ho, hb, hj, he;
    size_t cs = newer ? sizeof(cm_plugin_config) + newer : CM_PLUGIN_CONFIG_SIZE_1_0;
    size_t ss = newer ? sizeof(cm_plugin_job_spec) + newer : CM_PLUGIN_JOB_SPEC_SIZE_1_0;
    size_t qs = newer ? sizeof(cm_plugin_quote) + newer : CM_PLUGIN_QUOTE_SIZE_1_0;
    size_t os = newer ? sizeof(cm_plugin_outcome) + newer : CM_PLUGIN_OUTCOME_SIZE_1_0;
    size_t bs = newer ? sizeof(cm_plugin_balance) + newer : CM_PLUGIN_BALANCE_SIZE_1_0;
    size_t js = newer ? sizeof(cm_plugin_job_state) + newer : CM_PLUGIN_JOB_STATE_SIZE_1_0;
    size_t es = newer ? sizeof(cm_plugin_error_info) + newer : CM_PLUGIN_ERROR_INFO_SIZE_1_0;

    /* the config: every 1.0 field set by hand, as a 1.0 host's init did; the bytes after
     * (fields of a later minor, for a newer host) stay poison and must not be read */
    cm_plugin_config *cfg = host_struct(&hc, cs);
    cm_plugin_config base;
    cm_plugin_config_init(&base);
    memcpy((char *)cfg + sizeof(uint32_t), (char *)&base + sizeof(uint32_t),
           (newer ? sizeof base : CM_PLUGIN_CONFIG_SIZE_1_0) - sizeof(uint32_t));
    cm_plugin_error_info *e = host_struct(&he, es);
    cm_plugin *p = NULL;
    assert_int_equal(api->open(cfg, &p, e), CM_PLUGIN_E_INVALID); /* no ledger yet */
    assert_int_equal(e->code, CM_PLUGIN_E_INVALID);
    assert_poison_from(&he, es);
    cfg->ledger = db;
    assert_int_equal(api->open(cfg, &p, e), CM_PLUGIN_OK);
    assert_int_equal(e->code, CM_PLUGIN_OK);
    assert_poison_from(&he, es);

    cm_plugin_job_spec *spec = host_struct(&hs, ss);
    memset((char *)spec + sizeof(uint32_t), 0, CM_PLUGIN_JOB_SPEC_SIZE_1_0 - sizeof(uint32_t));
    spec->job = job;
    spec->workspace = "sizes";
    spec->user = "member";
    spec->billing = CM_PLUGIN_BY_INPUT;
    spec->input_path = CMT_SAMPLE("clip-40s.mp4");
    cm_plugin_quote *q = host_struct(&hq, qs);
    assert_int_equal(api->job_begin(p, spec, q), CM_PLUGIN_OK);
    assert_int_equal(q->struct_size, qs); /* the host's size is kept */
    assert_int_equal(q->credits, 1);
    assert_int_equal(q->hold_state, CM_PLUGIN_HOLD_HELD);
    assert_int_equal(q->method, CM_PLUGIN_METHOD_STRUCTURE_WALK); /* mapped, not dropped */
    assert_string_equal(q->method_name, "structure_walk");
    assert_int_equal(q->available, 9);
    assert_poison_from(&hq, qs);
    if (newer) { /* a newer host has the 1.1 fields too */
        assert_int_equal(q->affordable, 1);
        assert_int_equal(q->n_grants, 1);
        assert_int_equal(q->grants[0].kind, CM_PLUGIN_GRANT_ADDON);
    }
    assert_int_equal(api->stage_begin(p, job, "transcode"), CM_PLUGIN_OK);

    cm_plugin_outcome *o = host_struct(&ho, os);
    assert_int_equal(api->job_end(p, job, 1, NULL, o), CM_PLUGIN_OK);
    assert_int_equal(o->hold_state, CM_PLUGIN_HOLD_COMMITTED);
    assert_int_equal(o->charged, 1);
    assert_int_equal(o->output_ms, -1);
    assert_poison_from(&ho, os);

    cm_plugin_balance *b = host_struct(&hb, bs);
    assert_int_equal(api->balance(p, "sizes", "member", b), CM_PLUGIN_OK);
    assert_int_equal(b->available, 9);
    assert_int_equal(b->held, 0);
    assert_poison_from(&hb, bs);

    cm_plugin_job_state *st = host_struct(&hj, js);
    assert_int_equal(api->job_state(p, job, st), CM_PLUGIN_OK);
    assert_int_equal(st->hold_state, CM_PLUGIN_HOLD_COMMITTED);
    assert_int_equal(st->charged, 1);
    assert_string_equal(st->workspace, "sizes");
    assert_poison_from(&hj, js);

    assert_int_equal(api->stage_begin(p, "never-begun", "x"), CM_PLUGIN_E_NO_JOB);
    e = host_struct(&he, es);
    assert_int_equal(api->last_error(p, e), CM_PLUGIN_OK);
    assert_int_equal(e->code, CM_PLUGIN_E_NO_JOB);
    assert_true(e->message[0] != '\0');
    assert_poison_from(&he, es);

    /* one byte short of ABI 1.0: refused, nothing written */
    if (!newer) {
        b = host_struct(&hb, bs - 1);
        assert_int_equal(api->balance(p, "sizes", "member", b), CM_PLUGIN_E_ABI);
        assert_poison_from(&hb, sizeof(uint32_t));
        st = host_struct(&hj, js - 1);
        assert_int_equal(api->job_state(p, job, st), CM_PLUGIN_E_ABI);
        assert_poison_from(&hj, sizeof(uint32_t));
        e = host_struct(&he, es - 1);
        assert_int_equal(api->last_error(p, e), CM_PLUGIN_E_ABI);
        assert_poison_from(&he, sizeof(uint32_t));
        o = host_struct(&ho, os - 1);
        assert_int_equal(api->job_end(p, job, 1, NULL, o), CM_PLUGIN_E_ABI);
        assert_poison_from(&ho, sizeof(uint32_t));
        q = host_struct(&hq, qs - 1);
        assert_int_equal(api->job_begin(p, spec, q), CM_PLUGIN_E_ABI);
        assert_poison_from(&hq, sizeof(uint32_t));
        spec->struct_size = (uint32_t)(ss - 1);
        q = host_struct(&hq, qs);
        assert_int_equal(api->job_begin(p, spec, q), CM_PLUGIN_E_ABI);
        cfg->struct_size = (uint32_t)(cs - 1);
        cm_plugin *p2 = NULL;
        e = host_struct(&he, es);
        assert_int_equal(api->open(cfg, &p2, e), CM_PLUGIN_E_ABI);
        assert_null(p2);
        assert_int_equal(e->code, CM_PLUGIN_E_ABI);
        assert_poison_from(&he, es);
    }
    api->close(p);
}

static void test_structs_of_the_1_0_size_are_served_and_nothing_past_them_is_written(void **state)
{
    (void)state;
    char db[512];
    const cm_plugin_api *api = ledger_and_plugin(db, sizeof db, "sizes10.db", "sizes", 10, 0);
    drive_with_sizes(api, db, "sizes-1", 0);
    assert_int_equal(cmt_ledger_check(db), 0);
    unlink(db);
}

static void
test_a_newer_hosts_larger_structs_are_read_and_written_only_as_far_as_known(void **state)
{
    (void)state;
    char db[512];
    const cm_plugin_api *api =
        ledger_and_plugin(db, sizeof db, "sizesnew.db", "sizes", 10, CM_PLUGIN_ABI_MINOR);
    drive_with_sizes(api, db, "sizes-2", TAIL);
    assert_int_equal(cmt_ledger_check(db), 0);
    unlink(db);
}

static void test_the_frozen_sizes_are_the_1_0_1_1_1_2_and_1_3_layouts(void **state)
{
    (void)state;
    /* 1.1 appended to the quote and the table only */
    assert_true(CM_PLUGIN_QUOTE_SIZE_1_0 < CM_PLUGIN_QUOTE_SIZE_1_1);
    assert_int_equal(CM_PLUGIN_QUOTE_SIZE_1_0, offsetof(cm_plugin_quote, affordable));
    assert_int_equal(CM_PLUGIN_API_SIZE_1_0, offsetof(cm_plugin_api, quote));
    assert_int_equal(CM_PLUGIN_API_SIZE_1_1, offsetof(cm_plugin_api, metrics));
    assert_int_equal(CM_PLUGIN_API_SIZE_1_2, sizeof(cm_plugin_api));
    /* 1.2 appended to the config (after its 1.0 padding, now explicit) and the table */
    assert_int_equal(CM_PLUGIN_CONFIG_SIZE_1_0, offsetof(cm_plugin_config, log_record));
    assert_int_equal(CM_PLUGIN_CONFIG_SIZE_1_2, offsetof(cm_plugin_config, ledger_pool_size));
    /* 1.3 appended to the config only */
    assert_int_equal(CM_PLUGIN_CONFIG_SIZE_1_3, sizeof(cm_plugin_config));
#if defined(__x86_64__) || defined(__aarch64__)
    /* the figures plugin/ABI.md lists for LP64 */
    assert_int_equal(CM_PLUGIN_CONFIG_SIZE_1_0, 96);
    assert_int_equal(CM_PLUGIN_CONFIG_SIZE_1_2, 120);
    assert_int_equal(CM_PLUGIN_CONFIG_SIZE_1_3, 128);
    assert_int_equal(CM_PLUGIN_JOB_SPEC_SIZE_1_0, 64);
    assert_int_equal(CM_PLUGIN_QUOTE_SIZE_1_0, 520);
    assert_int_equal(CM_PLUGIN_QUOTE_SIZE_1_1, 1184);
    assert_int_equal(CM_PLUGIN_OUTCOME_SIZE_1_0, 304);
    assert_int_equal(CM_PLUGIN_BALANCE_SIZE_1_0, 24);
    assert_int_equal(CM_PLUGIN_JOB_STATE_SIZE_1_0, 304);
    assert_int_equal(CM_PLUGIN_ERROR_INFO_SIZE_1_0, 272);
    assert_int_equal(CM_PLUGIN_API_SIZE_1_0, 128);
    assert_int_equal(CM_PLUGIN_API_SIZE_1_1, 136);
    assert_int_equal(CM_PLUGIN_API_SIZE_1_2, 160);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plugin_exports_only_the_entry_symbol),
        cmocka_unit_test(test_plugin_negotiates_the_abi_version),
        cmocka_unit_test(test_host_refuses_incompatible_plugin),
        cmocka_unit_test(test_every_code_has_a_name_and_a_sentence),
        cmocka_unit_test(test_open_checks_struct_sizes),
        cmocka_unit_test(test_a_1_0_host_still_works_with_the_1_1_plugin),
        cmocka_unit_test(test_one_handle_serves_several_threads),
        cmocka_unit_test(test_structs_of_the_1_0_size_are_served_and_nothing_past_them_is_written),
        cmocka_unit_test(
            test_a_newer_hosts_larger_structs_are_read_and_written_only_as_far_as_known),
        cmocka_unit_test(test_the_frozen_sizes_are_the_1_0_1_1_1_2_and_1_3_layouts),
    };
    if (getenv("CMT_FILTER"))
        cmocka_set_test_filter(getenv("CMT_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
