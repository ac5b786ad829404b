/* SPDX-License-Identifier: MIT */
/*
 * Every error the probe defines: each bad input gets its own code, a stable machine
 * name and a sentence a support person understands, never a crash or a hang.
 */
#include "probe_test_util.h"
#include "probe_internal.h"
#include "test_proc.h"

#include <errno.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <libavutil/error.h>

static void expect_error(const char *path, int code, const char *needle)
{
    cm_probe_report *r = probe(path);
    if (cm_probe_report_error(r) != code)
        fail_msg("%s: expected %s, got %s: %s", path, cm_probe_err_name(code),
                 cm_probe_err_name(cm_probe_report_error(r)), cm_probe_report_errmsg(r));
    assert_true(strlen(cm_probe_report_errmsg(r)) > 10);
    if (needle && !strstr(cm_probe_report_errmsg(r), needle))
        fail_msg("message \"%s\" lacks \"%s\"", cm_probe_report_errmsg(r), needle);
    assert_int_equal(cm_probe_report_credits(r), 0);
    cm_probe_report_free(r);
}

static void test_missing_file_is_no_such_file(void **s)
{
    (void)s;
    expect_error(sample("does-not-exist.mp4"), CM_PROBE_E_NOENT, "No such file");
    expect_error(sample("clip-40s.mp4/inside"), CM_PROBE_E_NOENT, NULL);
}

static void test_directory_device_and_fifo_are_not_regular_files(void **s)
{
    (void)s;
    expect_error(CM_SAMPLES_DIR, CM_PROBE_E_NOTREG, "directory");
    expect_error("/dev/null", CM_PROBE_E_NOTREG, "device");
    expect_error("/dev/zero", CM_PROBE_E_NOTREG, "device");
    const char *fifo = tmp_path("upload.fifo");
    unlink(fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    expect_error(fifo, CM_PROBE_E_NOTREG, "pipe"); /* and no hang waiting for a writer */
    unlink(fifo);
}

/* Child: as an unprivileged user (root reads everything), probing path must fail with
 * CM_PROBE_E_ACCESS and say so. Exit 0 when it does. */
static int unreadable_child(int i, void *arg)
{
    const char *path = arg;
    (void)i;
    if (getuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
        return 3;
    cm_probe *p = NULL;
    cm_probe_report *r = NULL;
    cm_probe_new(&p, NULL);
    int err = cm_probe_file(p, path, &r);
    int ok = err == CM_PROBE_E_ACCESS && strstr(cm_probe_report_errmsg(r), "cannot be read");
    cm_probe_report_free(r);
    cm_probe_free(p);
    return ok ? 0 : 4;
}

/* Run as an unprivileged user (root reads everything), in a child process. */
static void test_unreadable_file_is_unreadable(void **s)
{
    (void)s;
    const char *path = tmp_path("secret.mp4");
    size_t n;
    uint8_t *buf = read_all(sample("clip-40s.mp4"), &n);
    write_all(path, buf, n);
    free(buf);
    assert_int_equal(chmod(path, 0000), 0);
    int code = -1;
    assert_int_equal(cmt_proc_workers(1, unreadable_child, (void *)path, &code), 0);
    assert_int_equal(code, 0);
    unlink(path);
}

static void test_empty_file_is_empty(void **s)
{
    (void)s;
    expect_error(sample("bad/empty.mp4"), CM_PROBE_E_EMPTY, "empty");
}

static void test_text_and_noise_are_not_media(void **s)
{
    (void)s;
    expect_error(sample("bad/notes.txt"), CM_PROBE_E_NOTMEDIA, "not a video or audio file");
    expect_error(sample("bad/random.bin"), CM_PROBE_E_NOTMEDIA, NULL);
    expect_error(sample("make-samples.sh"), CM_PROBE_E_NOTMEDIA, NULL);
}

static void test_still_picture_has_no_audio_or_video(void **s)
{
    (void)s;
    expect_error(sample("bad/still.png"), CM_PROBE_E_NOSTREAMS, "still picture");
    expect_error(sample("bad/still.jpg"), CM_PROBE_E_NOSTREAMS, "still picture");
}

static void test_subtitles_only_have_no_audio_or_video(void **s)
{
    (void)s;
    expect_error(sample("bad/subs.srt"), CM_PROBE_E_NOSTREAMS, "subtitles");
    expect_error(sample("bad/subs-only.mkv"), CM_PROBE_E_NOSTREAMS, "no audio or video");
}

/* Both point at a real local file; neither may be opened, let alone followed. */
static void test_playlist_and_concat_script_are_refused(void **s)
{
    (void)s;
    expect_error(sample("bad/playlist.m3u8"), CM_PROBE_E_REFUSED, "HTTP Live Streaming");
    expect_error(sample("bad/concat.ffconcat"), CM_PROBE_E_REFUSED, "concatenation");
    /* the same bytes handed over in memory are refused the same way */
    size_t n;
    uint8_t *buf = read_all(sample("bad/concat.ffconcat"), &n);
    cm_probe *p = NULL;
    cm_probe_report *r = NULL;
    assert_int_equal(cm_probe_new(&p, NULL), CM_PROBE_OK);
    assert_int_equal(cm_probe_buffer(p, buf, n, "x.ffconcat", &r), CM_PROBE_E_REFUSED);
    cm_probe_report_free(r);
    cm_probe_free(p);
    free(buf);
}

static void test_longer_than_the_limit_is_too_long(void **s)
{
    (void)s;
    cm_probe_options o;
    cm_probe_options_init(&o);
    o.max_duration_ms = 60000;
    cm_probe_report *r = probe_with(sample("exact-3m00.mp4"), &o);
    assert_int_equal(cm_probe_report_error(r), CM_PROBE_E_TOOLONG);
    assert_non_null(strstr(cm_probe_report_errmsg(r), "longer than the limit"));
    assert_in_range(cm_probe_report_measured_ms(r), 179000, 181000); /* says how long */
    cm_probe_report_free(r);
    /* a packet scan is bounded too */
    cm_probe_options_init(&o);
    o.max_scan_packets = 100;
    r = probe_with(sample("exact-3m00.wmv"), &o);
    assert_int_equal(cm_probe_report_error(r), CM_PROBE_E_TOOLONG);
    cm_probe_report_free(r);
}

static void test_larger_than_the_limit_is_too_big(void **s)
{
    (void)s;
    cm_probe_options o;
    cm_probe_options_init(&o);
    o.max_file_bytes = 1000;
    cm_probe_report *r = probe_with(sample("clip-40s.mp4"), &o);
    assert_int_equal(cm_probe_report_error(r), CM_PROBE_E_TOOBIG);
    cm_probe_report_free(r);
}

static void test_mp4_cut_before_its_index_is_damaged(void **s)
{
    (void)s;
    expect_error(sample("bad/truncated-noindex.mp4"), CM_PROBE_E_DAMAGED, "damaged");
}

/* A clock the test controls: every look at it costs a second. */
static int64_t fake_now;
static int64_t leaping_clock(void *user)
{
    (void)user;
    return fake_now += 1000;
}

static void test_slow_probe_times_out(void **s)
{
    (void)s;
    cm_probe_options o;
    cm_probe_options_init(&o);
    o.clock_ms = leaping_clock;
    o.time_budget_ms = 3000;
    cm_probe_report *r = probe_with(sample("exact-3m00.ogg"), &o);
    assert_int_equal(cm_probe_report_error(r), CM_PROBE_E_TIMEOUT);
    assert_non_null(strstr(cm_probe_report_errmsg(r), "time budget"));
    cm_probe_report_free(r);
}

static void test_other_libav_failures_keep_libav_text(void **s)
{
    (void)s;
    assert_int_equal(cm__libav_code(AVERROR(EIO), 0), CM_PROBE_E_LIBAV);
    assert_int_equal(cm__libav_code(AVERROR_PATCHWELCOME, 0), CM_PROBE_E_LIBAV);
    assert_int_equal(cm__libav_code(AVERROR_INVALIDDATA, 0), CM_PROBE_E_DAMAGED);
    assert_int_equal(cm__libav_code(AVERROR_EXIT, 0), CM_PROBE_E_TIMEOUT);
    assert_int_equal(cm__libav_code(AVERROR(EIO), 1), CM_PROBE_E_TIMEOUT);
    assert_int_equal(cm__libav_code(AVERROR(ENOMEM), 0), CM_PROBE_E_NOMEM);
    struct cm_probe_report r = {.file = "x.mp4"};
    assert_int_equal(cm__libav_fail(&r, 0, 1000, AVERROR(EIO), "reading"), CM_PROBE_E_LIBAV);
    assert_non_null(strstr(r.errmsg, "Input/output error"));
}

static void test_invalid_arguments_are_invalid(void **s)
{
    (void)s;
    cm_probe *p = NULL;
    assert_int_equal(cm_probe_new(NULL, NULL), CM_PROBE_E_INVALID);
    cm_probe_options o;
    cm_probe_options_init(&o);
    o.grace_ms = 60000;
    assert_int_equal(cm_probe_new(&p, &o), CM_PROBE_E_INVALID);
    assert_null(p);
    cm_probe_options_init(&o);
    o.struct_size = 3;
    assert_int_equal(cm_probe_new(&p, &o), CM_PROBE_E_INVALID);
    cm_probe_options_init(&o);
    o.max_duration_ms = 0;
    assert_int_equal(cm_probe_new(&p, &o), CM_PROBE_E_INVALID);

    assert_int_equal(cm_probe_new(&p, NULL), CM_PROBE_OK);
    cm_probe_report *r = NULL;
    assert_int_equal(cm_probe_file(p, NULL, &r), CM_PROBE_E_INVALID);
    cm_probe_report_free(r);
    assert_int_equal(cm_probe_file(p, "", &r), CM_PROBE_E_INVALID);
    cm_probe_report_free(r);
    assert_int_equal(cm_probe_file(p, "x", NULL), CM_PROBE_E_INVALID);
    assert_int_equal(cm_probe_buffer(p, NULL, 10, "x", &r), CM_PROBE_E_INVALID);
    cm_probe_report_free(r);
    assert_int_equal(cm_probe_buffer(p, "", 0, "x", &r), CM_PROBE_E_EMPTY);
    cm_probe_report_free(r);
    cm_probe_free(p);
}

static void test_every_code_has_a_distinct_name_and_a_sentence(void **s)
{
    (void)s;
    const int codes[] = {CM_PROBE_OK,        CM_PROBE_E_INVALID,  CM_PROBE_E_NOMEM,
                         CM_PROBE_E_NOENT,   CM_PROBE_E_NOTREG,   CM_PROBE_E_ACCESS,
                         CM_PROBE_E_EMPTY,   CM_PROBE_E_NOTMEDIA, CM_PROBE_E_NOSTREAMS,
                         CM_PROBE_E_REFUSED, CM_PROBE_E_TOOLONG,  CM_PROBE_E_DAMAGED,
                         CM_PROBE_E_TIMEOUT, CM_PROBE_E_LIBAV,    CM_PROBE_E_TOOBIG};
    const size_t n = sizeof(codes) / sizeof(codes[0]);
    for (size_t i = 0; i < n; i++) {
        assert_string_not_equal(cm_probe_err_name(codes[i]), "unknown_error");
        assert_true(strlen(cm_probe_strerror(codes[i])) > 10);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(cm_probe_err_name(codes[i]), cm_probe_err_name(codes[j]));
    }
    assert_string_equal(cm_probe_err_name(-999), "unknown_error");
    assert_string_equal(cm_probe_err_name(CM_PROBE_E_NOENT), "no_such_file");
    assert_string_equal(cm_probe_err_name(CM_PROBE_E_REFUSED), "refused_format");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_file_is_no_such_file),
        cmocka_unit_test(test_directory_device_and_fifo_are_not_regular_files),
        cmocka_unit_test(test_unreadable_file_is_unreadable),
        cmocka_unit_test(test_empty_file_is_empty),
        cmocka_unit_test(test_text_and_noise_are_not_media),
        cmocka_unit_test(test_still_picture_has_no_audio_or_video),
        cmocka_unit_test(test_subtitles_only_have_no_audio_or_video),
        cmocka_unit_test(test_playlist_and_concat_script_are_refused),
        cmocka_unit_test(test_longer_than_the_limit_is_too_long),
        cmocka_unit_test(test_larger_than_the_limit_is_too_big),
        cmocka_unit_test(test_mp4_cut_before_its_index_is_damaged),
        cmocka_unit_test(test_slow_probe_times_out),
        cmocka_unit_test(test_other_libav_failures_keep_libav_text),
        cmocka_unit_test(test_invalid_arguments_are_invalid),
        cmocka_unit_test(test_every_code_has_a_distinct_name_and_a_sentence),
    };
    return cmocka_run_group_tests_name("probe_errors", tests, NULL, NULL);
}
