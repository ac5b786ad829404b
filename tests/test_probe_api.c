/* SPDX-License-Identifier: MIT */
/*
 * The library contract: in-memory input bills like the file, one handle serves many
 * threads at once, and reports own their strings.
 */
#include "probe_test_util.h"

#include <pthread.h>
#include <stdio.h>

static void test_buffer_bills_like_the_file(void **s)
{
    (void)s;
    const char *names[] = {"exact-3m00.mp4", "exact-3m00.mkv", "exact-3m00.ts", "audio-40s.mp3"};
    cm_probe *p = NULL;
    assert_int_equal(cm_probe_new(&p, NULL), CM_PROBE_OK);
    for (int i = 0; i < 4; i++) {
        size_t n;
        uint8_t *buf = read_all(sample(names[i]), &n);
        cm_probe_report *a = NULL, *b = NULL;
        assert_int_equal(cm_probe_buffer(p, buf, n, names[i], &a), CM_PROBE_OK);
        assert_int_equal(cm_probe_file(p, sample(names[i]), &b), CM_PROBE_OK);
        assert_int_equal(cm_probe_report_measured_ms(a), cm_probe_report_measured_ms(b));
        assert_int_equal(cm_probe_report_credits(a), cm_probe_report_credits(b));
        assert_string_equal(cm_probe_report_file(a), names[i]);
        cm_probe_report_free(a);
        cm_probe_report_free(b);
        free(buf);
    }
    cm_probe_free(p);
}

struct job {
    const cm_probe *p;
    int64_t credits;
};

static void *worker(void *arg)
{
    struct job *j = arg;
    const char *names[] = {"exact-3m00.mp4", "exact-3m00.ts", "long-25m40.mkv", "clip-40s.mp4"};
    for (int round = 0; round < 5; round++)
        for (int i = 0; i < 4; i++) {
            /* sample() keeps its paths in shared static buffers: not for threads */
            char path[1024];
            snprintf(path, sizeof(path), "%s/%s", CM_SAMPLES_DIR, names[i]);
            cm_probe_report *r = NULL;
            int err = cm_probe_file(j->p, path, &r);
            if (err == CM_PROBE_OK)
                j->credits += cm_probe_report_credits(r);
            else
                fprintf(stderr, "%s: %s: %s\n", names[i], cm_probe_err_name(err),
                        r ? cm_probe_report_errmsg(r) : "");
            cm_probe_report_free(r);
        }
    return NULL;
}

static void test_one_handle_serves_many_threads(void **s)
{
    (void)s;
    /* Thread safety, not speed: four threads scan at once on a machine that may be
       busy, so the time budget must not be what decides the result. */
    cm_probe_options opt;
    cm_probe_options_init(&opt);
    opt.time_budget_ms = 600000;
    cm_probe *p = NULL;
    assert_int_equal(cm_probe_new(&p, &opt), CM_PROBE_OK);
    pthread_t t[4];
    struct job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct job){.p = p};
        assert_int_equal(pthread_create(&t[i], NULL, worker, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(jobs[i].credits, 5 * (3 + 3 + 26 + 1));
    }
    cm_probe_free(p);
}

static void test_free_functions_accept_null(void **s)
{
    (void)s;
    cm_probe_free(NULL);
    cm_probe_report_free(NULL);
    assert_int_equal(cm_probe_report_error(NULL), CM_PROBE_E_INVALID);
    assert_int_equal(cm_probe_report_stream_count(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buffer_bills_like_the_file),
        cmocka_unit_test(test_one_handle_serves_many_threads),
        cmocka_unit_test(test_free_functions_accept_null),
    };
    return cmocka_run_group_tests_name("probe_api", tests, NULL, NULL);
}
