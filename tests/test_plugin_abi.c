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
    char *argv[] = {(char *)CMT_PIPELINE, (char *)"--plugin", (char *)CMT_FAKE_ABI2,
                    (char *)"--db", db, (char *)"--workspace", (char *)"w", (char *)"--user",
                    (char *)"u", (char *)"--job", (char *)"j", (char *)"--generate", (char *)"1",
                    (char *)"/dev/null", NULL};
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
    for (int code = 0; code >= CM_PLUGIN_E_ABI; code--) {
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
            w->api->job_end(w->p, job, ok, NULL, &o) != CM_PLUGIN_OK ||
            o.charged != (ok ? 1 : 0))
            w->failures++;
    }
    return NULL;
}

static void test_one_handle_serves_several_threads(void **state)
{
    (void)state;
    char db[512];
    cmt_path(db, sizeof db, "threads.db");
    assert_int_equal(cmt_ledger_setup(db, "threads", 30), 0);
    void *dl;
    const cm_plugin_api *api = load(&dl, CM_PLUGIN_ABI_MAJOR, CM_PLUGIN_ABI_MINOR);
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
    unload(dl);
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
    cmt_path(db, sizeof db, "abi10.db");
    assert_int_equal(cmt_ledger_setup(db, "old", 5), 0);
    void *dl;
    const cm_plugin_api *api = load(&dl, 1, 0);
    assert_non_null(api);
    assert_int_equal(api->abi_minor, 1);
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
    unload(dl);
    assert_int_equal(cmt_ledger_check(db), 0);
    unlink(db);
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
    };
    if (getenv("CMT_FILTER"))
        cmocka_set_test_filter(getenv("CMT_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
