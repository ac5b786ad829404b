/* SPDX-License-Identifier: MIT */
/*
 * fuzz_probe.c - libFuzzer harness for the probe over in-memory input.
 *
 * Every input is handed to cm_probe_buffer(), which reads it through the probe's own
 * AVIOContext with the same demuxer allowlist and limits as cm_probe_file(). The
 * harness then reads every field of the report, so a report left half-filled (an
 * uninitialised stream, a string without its terminator) is seen by ASan/UBSan, and
 * checks the invariants the report promises whatever the input:
 *   - the result code equals cm_probe_report_error() and has a machine name;
 *   - a billed file has measured = billable >= 0, credits = credits_for(billable)
 *     and credits >= 1, and a duration within max_duration_ms;
 *   - the input's size is reported exactly and the count of bytes read is >= 0;
 *   - a refusal carries a message, a success none.
 * A broken invariant aborts, which libFuzzer records as a crash.
 *
 * Limits are tighter than the defaults so each input costs milliseconds: a 2 s time
 * budget (libFuzzer's -timeout is 10 s, so a probe that ignores its budget is caught)
 * and at most 100,000 scanned packets. Environment overrides, for reproducing:
 *   CM_FUZZ_BUDGET_MS   time budget per input (default 2000)
 *   CM_FUZZ_VERBOSE=1   print each report on stderr
 */
#include "fuzz_probe_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cm_probe *g_probe;
static int g_verbose;
static int64_t g_max_duration_ms;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_probe: invariant broken: %s (%s:%d)\n", #cond, __FILE__,         \
                    __LINE__);                                                                     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    cm_probe_options opt;
    g_probe = fuzz_probe_new(2000, 100000, 0, &opt);
    g_max_duration_ms = opt.max_duration_ms;
    g_verbose = getenv("CM_FUZZ_VERBOSE") != NULL;
    /* A harness is a program of its own: libavformat's warnings about damaged input
       would only drown libFuzzer's output. */
    cm_probe_silence_libav_logs();
    return 0;
}

/* Touches every byte of a report string: a missing terminator shows up here. */
static size_t touch(const char *s)
{
    CHECK(s != NULL);
    return strlen(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cm_probe_report *r = NULL;
    int err = cm_probe_buffer(g_probe, data, size, "fuzz-input", &r);
    CHECK(r != NULL);
    CHECK(err == cm_probe_report_error(r));
    CHECK(err <= 0);
    CHECK(strcmp(cm_probe_err_name(err), "unknown_error") != 0);
    touch(cm_probe_strerror(err));
    touch(cm_probe_report_errmsg(r));
    touch(cm_probe_report_file(r));
    touch(cm_probe_report_format(r));
    CHECK(cm_probe_report_file_bytes(r) == (int64_t)size);
    CHECK(cm_probe_report_bytes_read(r) >= 0);

    int n = cm_probe_report_stream_count(r);
    CHECK(n >= 0);
    for (int i = 0; i < n; i++) {
        enum cm_probe_stream_kind k = cm_probe_report_stream_kind(r, i);
        CHECK(k >= CM_PROBE_STREAM_OTHER && k <= CM_PROBE_STREAM_COVER);
        touch(cm_probe_stream_kind_name(k));
        touch(cm_probe_report_stream_codec(r, i));
    }
    enum cm_probe_method method = cm_probe_report_method(r);
    enum cm_probe_note note = cm_probe_report_note(r);
    touch(cm_probe_method_name(method));
    touch(cm_probe_note_name(note));
    touch(cm_probe_note_text(note));

    if (err == CM_PROBE_OK) {
        int64_t measured = cm_probe_report_measured_ms(r);
        int64_t billable = cm_probe_report_billable_ms(r);
        int64_t credits = cm_probe_report_credits(r);
        CHECK(measured >= 0);
        CHECK(billable == measured);
        CHECK(measured <= g_max_duration_ms);
        CHECK(credits >= 1);
        CHECK(credits == cm_probe_credits_for(billable, 500));
        CHECK(method != CM_PROBE_METHOD_NONE);
        CHECK(cm_probe_report_declared_ms(r) >= -1);
        CHECK(*cm_probe_report_errmsg(r) == '\0');
    } else {
        CHECK(*cm_probe_report_errmsg(r) != '\0');
    }
    if (g_verbose)
        fprintf(stderr,
                "fuzz_probe: %zu bytes: %s format=%s measured=%" PRId64 " declared=%" PRId64
                " credits=%" PRId64 " method=%s note=%s read=%" PRId64 " %s\n",
                size, cm_probe_err_name(err), cm_probe_report_format(r),
                cm_probe_report_measured_ms(r), cm_probe_report_declared_ms(r),
                cm_probe_report_credits(r), cm_probe_method_name(method), cm_probe_note_name(note),
                cm_probe_report_bytes_read(r), cm_probe_report_errmsg(r));
    cm_probe_report_free(r);
    return 0;
}
