/* SPDX-License-Identifier: MIT */
/*
 * test_plugin_media.c - the reference host's media engine (pipeline/): transcode,
 * thumbnail, generator, progress and cancel, on the samples and on generated files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cmh_media.h"

#include <libavformat/avformat.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct progress_log {
    int calls, last, monotonic, cancel_at;
} progress_log;

static void on_progress(void *ud, int pc)
{
    progress_log *l = ud;
    if (pc <= l->last)
        l->monotonic = 0;
    l->last = pc;
    l->calls++;
}

static int on_cancel(void *ud)
{
    progress_log *l = ud;
    return l->cancel_at >= 0 && l->last >= l->cancel_at;
}

static void tmp_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/media-%ld-%s", CM_TEST_TMP, (long)getpid(), name);
}

/* Duration in ms and presence of video/audio of a file, by libavformat directly. */
static int64_t media_info(const char *path, int *has_video, int *has_audio, int *width)
{
    AVFormatContext *fmt = NULL;
    if (avformat_open_input(&fmt, path, NULL, NULL) < 0)
        return -1;
    avformat_find_stream_info(fmt, NULL);
    *has_video = *has_audio = 0;
    for (unsigned i = 0; i < fmt->nb_streams; i++) {
        AVCodecParameters *cp = fmt->streams[i]->codecpar;
        if (cp->codec_type == AVMEDIA_TYPE_VIDEO) {
            *has_video = 1;
            if (width)
                *width = cp->width;
        }
        if (cp->codec_type == AVMEDIA_TYPE_AUDIO)
            *has_audio = 1;
    }
    int64_t ms = fmt->duration > 0 ? fmt->duration / 1000 : -1;
    avformat_close_input(&fmt);
    return ms;
}

static void test_transcode_clip_makes_small_mp4_with_video_and_audio(void **state)
{
    (void)state;
    char out[512], err[256] = "";
    tmp_path(out, sizeof out, "clip.mp4");
    progress_log log = {0, -1, 1, -1};
    cmh_control ctl = {on_progress, on_cancel, &log, 0};
    int rc = cmh_transcode(CM_SAMPLES_DIR "/clip-40s.mp4", out, &ctl, err, sizeof err);
    assert_int_equal(rc, CMH_OK);
    assert_int_equal(log.last, 100);
    assert_true(log.monotonic);
    assert_true(log.calls > 3);
    int v, a, w = 0;
    int64_t ms = media_info(out, &v, &a, &w);
    assert_true(v && a);
    assert_true(w > 0 && w <= CMH_MAX_WIDTH);
    assert_in_range(ms, 39500, 40600);
    unlink(out);
}

static void test_transcode_audio_only_input_gives_audio_only_mp4(void **state)
{
    (void)state;
    char out[512], err[256] = "";
    tmp_path(out, sizeof out, "audio.mp4");
    int rc = cmh_transcode(CM_SAMPLES_DIR "/audio-40s.m4a", out, NULL, err, sizeof err);
    assert_int_equal(rc, CMH_OK);
    int v, a;
    int64_t ms = media_info(out, &v, &a, NULL);
    assert_false(v);
    assert_true(a);
    assert_in_range(ms, 39500, 40600);
    unlink(out);
}

static void test_transcode_other_containers(void **state)
{
    (void)state;
    const char *in[] = {CM_SAMPLES_DIR "/short-10s.mxf", CM_SAMPLES_DIR "/edge-59.4s.mkv"};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        char out[512], err[256] = "";
        tmp_path(out, sizeof out, "other.mp4");
        int rc = cmh_transcode(in[i], out, NULL, err, sizeof err);
        if (rc != CMH_OK)
            print_error("%s: %s\n", in[i], err);
        assert_int_equal(rc, CMH_OK);
        unlink(out);
    }
}

static void test_transcode_bad_input_fails_cleanly(void **state)
{
    (void)state;
    char out[512], err[256] = "";
    tmp_path(out, sizeof out, "bad.mp4");
    assert_int_equal(cmh_transcode(CM_SAMPLES_DIR "/bad/random.bin", out, NULL, err, sizeof err),
                     CMH_E_INPUT);
    assert_true(err[0] != '\0');
    assert_int_equal(cmh_transcode(CM_SAMPLES_DIR "/nope.mp4", out, NULL, err, sizeof err),
                     CMH_E_INPUT);
    unlink(out);
}

static void test_cancel_stops_transcode(void **state)
{
    (void)state;
    char out[512], err[256] = "";
    tmp_path(out, sizeof out, "cancel.mp4");
    progress_log log = {0, -1, 1, 30};
    cmh_control ctl = {on_progress, on_cancel, &log, 0};
    assert_int_equal(cmh_transcode(CM_SAMPLES_DIR "/clip-40s.mp4", out, &ctl, err, sizeof err),
                     CMH_E_CANCELLED);
    assert_true(log.last < 100);
    unlink(out);
}

static void test_thumbnail_writes_png(void **state)
{
    (void)state;
    char out[512], err[256] = "";
    tmp_path(out, sizeof out, "thumb.png");
    assert_int_equal(cmh_thumbnail(CM_SAMPLES_DIR "/clip-40s.mp4", out, NULL, err, sizeof err),
                     CMH_OK);
    FILE *f = fopen(out, "rb");
    assert_non_null(f);
    unsigned char sig[8] = {0};
    assert_int_equal(fread(sig, 1, 8, f), 8);
    fclose(f);
    assert_memory_equal(sig, "\x89PNG\r\n\x1a\n", 8);
    unlink(out);
    assert_int_equal(cmh_thumbnail(CM_SAMPLES_DIR "/audio-40s.m4a", out, NULL, err, sizeof err),
                     CMH_E_NOVIDEO);
}

static void test_generate_makes_exact_length(void **state)
{
    (void)state;
    char out[512], err[256] = "";
    tmp_path(out, sizeof out, "gen.mp4");
    progress_log log = {0, -1, 1, -1};
    cmh_control ctl = {on_progress, on_cancel, &log, 0};
    assert_int_equal(cmh_generate(3000, out, &ctl, err, sizeof err), CMH_OK);
    assert_int_equal(log.last, 100);
    int v, a;
    int64_t ms = media_info(out, &v, &a, NULL);
    assert_true(v && a);
    assert_in_range(ms, 2990, 3100);
    unlink(out);
    assert_int_equal(cmh_generate(0, out, NULL, err, sizeof err), CMH_E_INVALID);
}

static void test_generate_cancel(void **state)
{
    (void)state;
    char out[512], err[256] = "";
    tmp_path(out, sizeof out, "gencancel.mp4");
    progress_log log = {0, -1, 1, 10};
    cmh_control ctl = {on_progress, on_cancel, &log, 0};
    assert_int_equal(cmh_generate(20000, out, &ctl, err, sizeof err), CMH_E_CANCELLED);
    unlink(out);
}

int main(void)
{
    mkdir(CM_TEST_TMP, 0755);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transcode_clip_makes_small_mp4_with_video_and_audio),
        cmocka_unit_test(test_transcode_audio_only_input_gives_audio_only_mp4),
        cmocka_unit_test(test_transcode_other_containers),
        cmocka_unit_test(test_transcode_bad_input_fails_cleanly),
        cmocka_unit_test(test_cancel_stops_transcode),
        cmocka_unit_test(test_thumbnail_writes_png),
        cmocka_unit_test(test_generate_makes_exact_length),
        cmocka_unit_test(test_generate_cancel),
    };
    av_log_set_level(AV_LOG_ERROR); /* the test program owns its process */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
