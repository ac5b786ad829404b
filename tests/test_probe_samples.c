/* SPDX-License-Identifier: MIT */
/*
 * Every sample bills what the product rules say: one credit per started minute of
 * real playing time, with the grace absorbing encoder padding.
 */
#include "probe_test_util.h"

static void expect(const char *name, int64_t credits, int64_t lo_ms, int64_t hi_ms,
                   enum cm_probe_method method, int has_video)
{
    cm_probe_report *r = probe(sample(name));
    if (cm_probe_report_error(r) != CM_PROBE_OK)
        fail_msg("%s refused: %s", name, cm_probe_report_errmsg(r));
    int64_t ms = cm_probe_report_measured_ms(r);
    if (ms < lo_ms || ms > hi_ms)
        fail_msg("%s measured %lld ms, expected %lld..%lld", name, (long long)ms, (long long)lo_ms,
                 (long long)hi_ms);
    assert_int_equal(cm_probe_report_credits(r), credits);
    assert_int_equal(cm_probe_report_billable_ms(r), ms);
    if (method != CM_PROBE_METHOD_NONE)
        assert_int_equal(cm_probe_report_method(r), method);
    assert_int_equal(cm_probe_report_has_video(r), has_video);
    cm_probe_report_free(r);
}

#define EXACT_3M(name, method) expect(name, 3, 179500, 180500, method, 1)

static void test_exact_three_minutes_mp4_bills_three(void **s)
{
    (void)s;
    EXACT_3M("exact-3m00.mp4", CM_PROBE_METHOD_NONE); /* walk or oracle */
}
static void test_exact_three_minutes_mov_bills_three(void **s)
{
    (void)s;
    EXACT_3M("exact-3m00.mov", CM_PROBE_METHOD_NONE); /* walk or oracle */
}
static void test_exact_three_minutes_3gp_bills_three(void **s)
{
    (void)s;
    EXACT_3M("exact-3m00.3gp", CM_PROBE_METHOD_NONE); /* walk or oracle */
}
static void test_exact_three_minutes_fragmented_mp4_bills_three(void **s)
{
    (void)s;
    EXACT_3M("exact-3m00-frag.mp4", CM_PROBE_METHOD_NONE);
}
static void test_exact_three_minutes_mkv_bills_three(void **s)
{
    (void)s;
    EXACT_3M("exact-3m00.mkv", CM_PROBE_METHOD_STRUCTURE_WALK);
}
static void test_exact_three_minutes_webm_bills_three(void **s)
{
    (void)s;
    EXACT_3M("exact-3m00.webm", CM_PROBE_METHOD_STRUCTURE_WALK);
}
static void test_exact_three_minutes_mpegts_bills_three(void **s)
{
    (void)s;
    EXACT_3M("exact-3m00.ts", CM_PROBE_METHOD_PACKET_SCAN);
}
static void test_exact_three_minutes_mpegps_bills_three(void **s)
{
    (void)s;
    EXACT_3M("exact-3m00.mpg", CM_PROBE_METHOD_PACKET_SCAN);
}
static void test_exact_three_minutes_avi_bills_three(void **s)
{
    (void)s;
    EXACT_3M("exact-3m00.avi", CM_PROBE_METHOD_NONE); /* walk or oracle */
}
static void test_exact_three_minutes_flv_bills_three(void **s)
{
    (void)s;
    EXACT_3M("exact-3m00.flv", CM_PROBE_METHOD_STRUCTURE_WALK);
}
static void test_exact_three_minutes_asf_wmv_bills_three(void **s)
{
    (void)s;
    EXACT_3M("exact-3m00.wmv", CM_PROBE_METHOD_PACKET_SCAN);
}
static void test_exact_three_minutes_ogg_bills_three(void **s)
{
    (void)s;
    EXACT_3M("exact-3m00.ogg", CM_PROBE_METHOD_PACKET_SCAN);
}

/* MXF pads every frame to ~1 KB, so its 3:00 fixture is made here rather than kept. */
static void test_exact_three_minutes_mxf_bills_three(void **s)
{
    (void)s;
    const char *out = tmp_path("exact-3m00.mxf");
    assert_int_equal(run_cmd("ffmpeg -hide_banner -loglevel error -nostdin -y -f lavfi -i "
                             "testsrc2=size=64x48:rate=25:duration=180 -c:v mpeg2video -q:v 31 "
                             "-g 250 -bf 0 '%s'",
                             out),
                     0);
    cm_probe_report *r = probe(out);
    assert_int_equal(cm_probe_report_error(r), CM_PROBE_OK);
    assert_int_equal(cm_probe_report_credits(r), 3);
    cm_probe_report_free(r);
    unlink(out);
}

/* The product page: "a 40-second video ... will use up 1 credit", "25 min 40 sec ... 26". */
static void test_forty_seconds_bills_one(void **s)
{
    (void)s;
    expect("clip-40s.mp4", 1, 39900, 40200, CM_PROBE_METHOD_STRUCTURE_WALK, 1);
}
static void test_twenty_five_forty_bills_twenty_six(void **s)
{
    (void)s;
    expect("long-25m40.mkv", 26, 1539900, 1540100, CM_PROBE_METHOD_NONE, 1);
}
static void test_ten_minutes_bills_ten(void **s)
{
    (void)s;
    expect("long-10m.mp4", 10, 599900, 600100, CM_PROBE_METHOD_STRUCTURE_WALK, 1);
    expect("long-10m.mkv", 10, 599900, 600100, CM_PROBE_METHOD_NONE, 1);
}

/* The grace rule at a minute boundary: 60.4 s is an exact minute plus padding. */
static void test_grace_at_minute_boundaries(void **s)
{
    (void)s;
    expect("edge-59.4s.mkv", 1, 59350, 59450, CM_PROBE_METHOD_NONE, 1);
    expect("edge-60.0s.mkv", 1, 59950, 60050, CM_PROBE_METHOD_NONE, 1);
    expect("edge-60.4s.mkv", 1, 60350, 60450, CM_PROBE_METHOD_NONE, 1);
    expect("edge-60.6s.mkv", 2, 60550, 60650, CM_PROBE_METHOD_NONE, 1);
}

static void test_grace_is_configurable(void **s)
{
    (void)s;
    cm_probe_options o;
    cm_probe_options_init(&o);
    o.grace_ms = 0;
    cm_probe_report *r = probe_with(sample("edge-60.4s.mkv"), &o);
    assert_int_equal(cm_probe_report_credits(r), 2);
    cm_probe_report_free(r);
    o.grace_ms = 700;
    r = probe_with(sample("edge-60.6s.mkv"), &o);
    assert_int_equal(cm_probe_report_credits(r), 1);
    cm_probe_report_free(r);
}

static void test_credit_rule_arithmetic(void **s)
{
    (void)s;
    assert_int_equal(cm_probe_credits_for(0, 500), 1);     /* nothing costs 0 */
    assert_int_equal(cm_probe_credits_for(40000, 500), 1); /* 40 s */
    assert_int_equal(cm_probe_credits_for(59400, 500), 1);
    assert_int_equal(cm_probe_credits_for(60000, 500), 1);
    assert_int_equal(cm_probe_credits_for(60400, 500), 1);
    assert_int_equal(cm_probe_credits_for(60500, 500), 1);
    assert_int_equal(cm_probe_credits_for(60501, 500), 2);
    assert_int_equal(cm_probe_credits_for(60600, 500), 2);
    assert_int_equal(cm_probe_credits_for(180100, 500), 3);   /* 3:00 with padding */
    assert_int_equal(cm_probe_credits_for(182000, 500), 4);   /* 3:02 */
    assert_int_equal(cm_probe_credits_for(1540000, 500), 26); /* 25:40 */
    assert_int_equal(cm_probe_credits_for(60000, 0), 1);
    assert_int_equal(cm_probe_credits_for(60001, 0), 2);
}

static void test_audio_only_is_billed_by_its_length(void **s)
{
    (void)s;
    expect("audio-40s.m4a", 1, 39900, 40300, CM_PROBE_METHOD_NONE, 0);
    expect("audio-40s.mp3", 1, 39900, 40300, CM_PROBE_METHOD_NONE, 0);
}

static void test_cover_art_is_not_billed(void **s)
{
    (void)s;
    cm_probe_report *r = probe(sample("audio-cover-40s.mp3"));
    assert_int_equal(cm_probe_report_error(r), CM_PROBE_OK);
    assert_int_equal(cm_probe_report_credits(r), 1);
    assert_int_equal(cm_probe_report_has_video(r), 0);
    int covers = 0, audio = 0;
    for (int i = 0; i < cm_probe_report_stream_count(r); i++) {
        covers += cm_probe_report_stream_kind(r, i) == CM_PROBE_STREAM_COVER;
        audio += cm_probe_report_stream_kind(r, i) == CM_PROBE_STREAM_AUDIO;
    }
    assert_int_equal(covers, 1);
    assert_int_equal(audio, 1);
    cm_probe_report_free(r);
}

static void test_streamed_mkv_and_webm_without_header_duration(void **s)
{
    (void)s;
    const char *names[] = {"streamed-90s.mkv", "streamed-90s.webm"};
    for (int i = 0; i < 2; i++) {
        cm_probe_report *r = probe(sample(names[i]));
        assert_int_equal(cm_probe_report_error(r), CM_PROBE_OK);
        assert_int_equal(cm_probe_report_declared_ms(r), -1);
        assert_int_equal(cm_probe_report_note(r), CM_PROBE_NOTE_NO_DURATION);
        /* no Cues, no Duration, a Segment of unknown size: the Clusters still say it */
        assert_int_equal(cm_probe_report_method(r), CM_PROBE_METHOD_STRUCTURE_WALK);
        assert_in_range(cm_probe_report_measured_ms(r), 89900, 90300);
        assert_int_equal(cm_probe_report_credits(r), 2);
        cm_probe_report_free(r);
    }
}

/* The 33-bit 90 kHz clock wraps 45 s into this file: 90 s, not 26 hours or less than 0. */
static void test_ts_clock_wrap_bills_real_length(void **s)
{
    (void)s;
    expect("wrap-90s.ts", 2, 89900, 90500, CM_PROBE_METHOD_PACKET_SCAN, 1);
}

static void test_report_lists_streams_and_declared_duration(void **s)
{
    (void)s;
    cm_probe_report *r = probe(sample("exact-3m00.mp4"));
    assert_int_equal(cm_probe_report_stream_count(r), 2);
    assert_int_equal(cm_probe_report_stream_kind(r, 0), CM_PROBE_STREAM_VIDEO);
    assert_string_equal(cm_probe_report_stream_codec(r, 0), "h264");
    assert_int_equal(cm_probe_report_stream_kind(r, 1), CM_PROBE_STREAM_AUDIO);
    assert_string_equal(cm_probe_report_stream_codec(r, 1), "aac");
    assert_in_range(cm_probe_report_declared_ms(r), 179900, 180200);
    assert_int_equal(cm_probe_report_note(r), CM_PROBE_NOTE_NONE);
    assert_string_equal(cm_probe_report_errmsg(r), "");
    assert_true(strstr(cm_probe_report_format(r), "mp4") != NULL);
    cm_probe_report_free(r);
}

/* MP4 and MKV are measured by walking their structure, payload skipped: a 2 MB-class
   read budget. (MPEG-TS has no structure to walk: it is scanned whole.) */
static void test_structure_walks_read_a_bounded_part(void **s)
{
    (void)s;
    const char *names[] = {"long-10m.mp4", "exact-3m00.mp4", "exact-3m00.mkv", "long-25m40.mkv"};
    for (int i = 0; i < 4; i++) {
        cm_probe_report *r = probe(sample(names[i]));
        assert_int_equal(cm_probe_report_error(r), CM_PROBE_OK);
        assert_true(cm_probe_report_bytes_read(r) > 0);
        /* headers + first packets + every block header: under 2 MB for these samples */
        assert_true(cm_probe_report_bytes_read(r) < (2 << 20));
        cm_probe_report_free(r);
    }
}

/* Cost does not grow with the file: a 30-minute file (ten 3:00 samples joined with
   continuous timestamps by ffmpeg's concat demuxer) is measured reading about as many
   bytes as the 3:00 sample it was made of. An MP4's index (its sample tables) grows with
   the duration, not the size: there, a small share of the file is the bound. The
   Matroska walk reads every Block's header (a block's time can only be proven by
   reading it): with these low-bitrate samples' blocks of a few hundred bytes that is
   every 64 KiB of the file once, never more (the share of a high-bitrate file is
   measured in bench/). */
static void expect_flat(const char *src, const char *ext, enum cm_probe_method method)
{
    int index_grows = strcmp(ext, "mp4") == 0;
    int every_block = strcmp(ext, "mkv") == 0 || strcmp(ext, "webm") == 0;
    int scanned = method == CM_PROBE_METHOD_PACKET_SCAN;
    const char *list = tmp_path("concat.txt");
    FILE *f = fopen(list, "w");
    assert_non_null(f);
    for (int i = 0; i < 10; i++)
        fprintf(f, "file '%s'\n", sample(src));
    fclose(f);
    char name[64];
    snprintf(name, sizeof(name), "thirty-minutes.%s", ext);
    char out[1024];
    snprintf(out, sizeof(out), "%s", tmp_path(name));
    assert_int_equal(run_cmd("ffmpeg -hide_banner -loglevel error -nostdin -y -f concat -safe 0 "
                             "-i '%s' -c copy '%s'",
                             list, out),
                     0);
    cm_probe_report *small = probe(sample(src));
    cm_probe_report *r = probe(out);
    if (cm_probe_report_error(r) != CM_PROBE_OK)
        fail_msg("%s refused: %s", out, cm_probe_report_errmsg(r));
    /* ten times the sample, padding included (TS keeps each piece's audio priming) */
    int64_t ten = 10 * cm_probe_report_measured_ms(small);
    assert_in_range(cm_probe_report_measured_ms(r), ten - 1500, ten + 500);
    assert_in_range(cm_probe_report_credits(r), 30, 31);
    assert_int_equal(cm_probe_report_method(r), method);
    int64_t b3 = cm_probe_report_bytes_read(small), b30 = cm_probe_report_bytes_read(r);
    if (scanned       ? b30 < cm_probe_report_file_bytes(r)
        : every_block ? b30 > cm_probe_report_file_bytes(r) + (256 << 10)
        : index_grows ? b30 * 5 > cm_probe_report_file_bytes(r)
                      : b30 > b3 * 3 / 2 + (128 << 10))
        fail_msg("%s: read %lld bytes of %lld, the 3:00 sample %lld of %lld", name, (long long)b30,
                 (long long)cm_probe_report_file_bytes(r), (long long)b3,
                 (long long)cm_probe_report_file_bytes(small));
    cm_probe_report_free(small);
    cm_probe_report_free(r);
    unlink(out);
    unlink(list);
}

static void test_thirty_minute_mp4_is_read_in_small_part(void **s)
{
    (void)s;
    expect_flat("exact-3m00.mp4", "mp4", CM_PROBE_METHOD_STRUCTURE_WALK);
}
static void test_thirty_minute_mkv_is_read_in_small_part(void **s)
{
    (void)s;
    expect_flat("exact-3m00.mkv", "mkv", CM_PROBE_METHOD_STRUCTURE_WALK);
}
static void test_thirty_minute_webm_is_read_in_small_part(void **s)
{
    (void)s;
    expect_flat("exact-3m00.webm", "webm", CM_PROBE_METHOD_STRUCTURE_WALK);
}
/* MPEG-TS has no index to walk: it is demuxed whole (the oracle), and still bills 30. */
static void test_thirty_minute_ts_is_scanned_whole(void **s)
{
    (void)s;
    expect_flat("exact-3m00.ts", "ts", CM_PROBE_METHOD_PACKET_SCAN);
}

/* At a real bitrate (noise at ~20 Mbit/s, 8 MB a few seconds) a 24 s MPEG-TS is
   demuxed whole and bills its 24 s: audio interleaved a second away from video is no
   piece boundary. */
static void test_high_bitrate_ts_bills_its_length(void **s)
{
    (void)s;
    const char *clip = tmp_path("noise.mp4");
    const char *list = tmp_path("noise.txt");
    const char *out = tmp_path("noise.ts");
    assert_int_equal(run_cmd("ffmpeg -hide_banner -loglevel error -nostdin -y -f lavfi -i "
                             "testsrc2=size=320x240:rate=25:duration=6 -f lavfi -i "
                             "sine=sample_rate=48000:duration=6 -vf noise=alls=40:allf=t "
                             "-c:v libx264 -preset ultrafast -b:v 20M -maxrate 20M -bufsize 10M "
                             "-g 50 -c:a aac '%s'",
                             clip),
                     0);
    FILE *f = fopen(list, "w");
    assert_non_null(f);
    for (int i = 0; i < 4; i++)
        fprintf(f, "file '%s'\n", clip);
    fclose(f);
    assert_int_equal(run_cmd("ffmpeg -hide_banner -loglevel error -nostdin -y -f concat -safe 0 "
                             "-i '%s' -c copy '%s'",
                             list, out),
                     0);
    cm_probe_report *r = probe(out);
    assert_int_equal(cm_probe_report_error(r), CM_PROBE_OK);
    assert_in_range(cm_probe_report_measured_ms(r), 23500, 24500);
    assert_int_equal(cm_probe_report_method(r), CM_PROBE_METHOD_PACKET_SCAN);
    cm_probe_report_free(r);
    unlink(clip);
    unlink(list);
    unlink(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_three_minutes_mp4_bills_three),
        cmocka_unit_test(test_exact_three_minutes_mov_bills_three),
        cmocka_unit_test(test_exact_three_minutes_3gp_bills_three),
        cmocka_unit_test(test_exact_three_minutes_fragmented_mp4_bills_three),
        cmocka_unit_test(test_exact_three_minutes_mkv_bills_three),
        cmocka_unit_test(test_exact_three_minutes_webm_bills_three),
        cmocka_unit_test(test_exact_three_minutes_mpegts_bills_three),
        cmocka_unit_test(test_exact_three_minutes_mpegps_bills_three),
        cmocka_unit_test(test_exact_three_minutes_avi_bills_three),
        cmocka_unit_test(test_exact_three_minutes_flv_bills_three),
        cmocka_unit_test(test_exact_three_minutes_asf_wmv_bills_three),
        cmocka_unit_test(test_exact_three_minutes_ogg_bills_three),
        cmocka_unit_test(test_exact_three_minutes_mxf_bills_three),
        cmocka_unit_test(test_forty_seconds_bills_one),
        cmocka_unit_test(test_twenty_five_forty_bills_twenty_six),
        cmocka_unit_test(test_ten_minutes_bills_ten),
        cmocka_unit_test(test_grace_at_minute_boundaries),
        cmocka_unit_test(test_grace_is_configurable),
        cmocka_unit_test(test_credit_rule_arithmetic),
        cmocka_unit_test(test_audio_only_is_billed_by_its_length),
        cmocka_unit_test(test_cover_art_is_not_billed),
        cmocka_unit_test(test_streamed_mkv_and_webm_without_header_duration),
        cmocka_unit_test(test_ts_clock_wrap_bills_real_length),
        cmocka_unit_test(test_report_lists_streams_and_declared_duration),
        cmocka_unit_test(test_structure_walks_read_a_bounded_part),
        cmocka_unit_test(test_thirty_minute_mp4_is_read_in_small_part),
        cmocka_unit_test(test_thirty_minute_mkv_is_read_in_small_part),
        cmocka_unit_test(test_thirty_minute_webm_is_read_in_small_part),
        cmocka_unit_test(test_thirty_minute_ts_is_scanned_whole),
        cmocka_unit_test(test_high_bitrate_ts_bills_its_length),
    };
    return cmocka_run_group_tests_name("probe_samples", tests, NULL, NULL);
}
