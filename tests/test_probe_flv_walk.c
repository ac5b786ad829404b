/* SPDX-License-Identifier: MIT */
/*
 * The FLV tag walk (probe_flv_walk.c) answers only where the tags leave the demuxer no
 * choice, and then exactly what the oracle (every packet demuxed) answers; everything
 * else is left to the oracle. Fixtures: samples/exact-3m00.flv (Sorenson H.263 + MP3),
 * an H.264 + AAC FLV with B-frames stream-copied from samples/exact-3m00.mp4 at test
 * time, and byte edits of both.
 */
#include "probe_test_util.h"

#include "probe_bytes.h"

#define FF "ffmpeg -hide_banner -loglevel error -nostdin -y "

static char h264[1024];

static int make_fixtures(void **state)
{
    (void)state;
    snprintf(h264, sizeof(h264), "%s", tmp_path("h264.flv"));
    return run_cmd(FF "-i '%s' -map 0 -c copy '%s'", sample("exact-3m00.mp4"), h264) ? -1 : 0;
}

static int remove_fixtures(void **state)
{
    (void)state;
    return run_cmd("rm -f '%s/%d-'*", CM_TEST_TMP, (int)getpid()) == 0 ? 0 : -1;
}

static cm_probe_report *probe_mode(const char *path, int full_scan)
{
    cm_probe_options o;
    cm_probe_options_init(&o);
    o.full_scan = full_scan;
    return probe_with(path, &o);
}

/* path bills with method what the oracle bills, to the millisecond; returns the ms. */
static int64_t expect_same_as_oracle(const char *path, enum cm_probe_method method)
{
    cm_probe_report *fast = probe_mode(path, 0), *full = probe_mode(path, 1);
    if (cm_probe_report_error(fast) != CM_PROBE_OK || cm_probe_report_error(full) != CM_PROBE_OK)
        fail_msg("%s refused: %s / %s", path, cm_probe_report_errmsg(fast),
                 cm_probe_report_errmsg(full));
    int64_t ms = cm_probe_report_measured_ms(fast);
    if (cm_probe_report_method(fast) != method || ms != cm_probe_report_measured_ms(full))
        fail_msg("%s: %s %lld ms, oracle %lld ms (expected %s)", path,
                 cm_probe_method_name(cm_probe_report_method(fast)), (long long)ms,
                 (long long)cm_probe_report_measured_ms(full), cm_probe_method_name(method));
    cm_probe_report_free(fast);
    cm_probe_report_free(full);
    return ms;
}

/* Offset of every tag of an FLV file, in order (at most max); returns the count. */
static int tags_of(const uint8_t *buf, size_t len, size_t *off, int max)
{
    size_t at = cm__rb32(buf + 5) + 4;
    int n = 0;
    while (at + 11 <= len && n < max) {
        off[n++] = at;
        at += 11 + cm__rb24(buf + at + 1) + 4;
    }
    return n;
}

#define MAX_TAGS 100000
static size_t tag_off[MAX_TAGS];

static void set_ts(uint8_t *tag, uint32_t ms)
{
    tag[4] = (uint8_t)(ms >> 16), tag[5] = (uint8_t)(ms >> 8), tag[6] = (uint8_t)ms;
    tag[7] = (uint8_t)(ms >> 24);
}

static uint32_t ts_of(const uint8_t *tag)
{
    return cm__rb24(tag + 4) | (uint32_t)tag[7] << 24;
}

/* The second half of the tags restart their clock at 0 (two recordings glued). */
static void clock_restarts(uint8_t **buf, size_t *len)
{
    int n = tags_of(*buf, *len, tag_off, MAX_TAGS);
    uint32_t mid = ts_of(*buf + tag_off[n / 2]);
    for (int i = n / 2; i < n; i++) {
        uint32_t t = ts_of(*buf + tag_off[i]);
        set_ts(*buf + tag_off[i], t >= mid ? t - mid : 0);
    }
}

/* A tag in the middle is followed by a wrong size (the demuxer resynchronises). */
static void wrong_trailing_size(uint8_t **buf, size_t *len)
{
    int n = tags_of(*buf, *len, tag_off, MAX_TAGS);
    size_t at = tag_off[n / 2];
    put_be32(*buf + at + 11 + cm__rb24(*buf + at + 1), 12345);
}

/* A tag in the middle is a script tag (the demuxer parses it as metadata or data). */
static void script_in_the_middle(uint8_t **buf, size_t *len)
{
    int n = tags_of(*buf, *len, tag_off, MAX_TAGS);
    (*buf)[tag_off[n / 2]] = 18;
}

/* The file followed by itself, as cat makes it. */
static void joined_with_itself(uint8_t **buf, size_t *len)
{
    uint8_t *b = realloc(*buf, 2 * *len);
    assert_non_null(b);
    memcpy(b + *len, b, *len);
    *buf = b;
    *len *= 2;
}

static void cut_in_half(uint8_t **buf, size_t *len)
{
    (void)buf;
    *len /= 2;
}

/* The tag walk bills what every packet demuxed bills, to the millisecond: Sorenson
   H.263 + MP3, and H.264 with B-frames (composition times) + AAC (configuration tags). */
static void test_flv_tag_walk_bills_what_the_oracle_bills(void **state)
{
    (void)state;
    int64_t ms = expect_same_as_oracle(sample("exact-3m00.flv"), CM_PROBE_METHOD_STRUCTURE_WALK);
    assert_true(ms >= 180000 && ms <= 180500);
    ms = expect_same_as_oracle(h264, CM_PROBE_METHOD_STRUCTURE_WALK);
    assert_true(ms >= 180000 && ms <= 180500);
}

/* A clock that restarts halfway keeps the structure whole: the walk answers, with the
   two pieces summed exactly as the oracle sums them (not the span of one piece). */
static void test_flv_clock_restart_is_summed_by_the_walk_as_by_the_oracle(void **state)
{
    (void)state;
    int64_t ms = expect_same_as_oracle(edited(h264, "restart.flv", clock_restarts),
                                       CM_PROBE_METHOD_STRUCTURE_WALK);
    assert_true(ms >= 179000 && ms <= 181000);
    ms = expect_same_as_oracle(edited(sample("exact-3m00.flv"), "restart-h263.flv", clock_restarts),
                               CM_PROBE_METHOD_STRUCTURE_WALK);
    assert_true(ms >= 179000 && ms <= 181000);
}

/* Whatever leaves the demuxer a choice goes to the oracle: a wrong trailing size, a
   script tag among the media, a second file joined on, a cut-off last tag. */
static void test_flv_the_walk_cannot_prove_is_measured_by_the_oracle(void **state)
{
    (void)state;
    expect_same_as_oracle(edited(h264, "wrong-size.flv", wrong_trailing_size),
                          CM_PROBE_METHOD_PACKET_SCAN);
    expect_same_as_oracle(edited(h264, "script.flv", script_in_the_middle),
                          CM_PROBE_METHOD_PACKET_SCAN);
    int64_t ms = expect_same_as_oracle(edited(h264, "joined.flv", joined_with_itself),
                                       CM_PROBE_METHOD_PACKET_SCAN);
    assert_true(ms >= 359000);
    ms = expect_same_as_oracle(edited(sample("exact-3m00.flv"), "cut.flv", cut_in_half),
                               CM_PROBE_METHOD_PACKET_SCAN);
    assert_true(ms >= 80000 && ms <= 100000);
}

/* Found by fuzz_probe_diff (tests/fuzz/crashers/probe_diff-flv-joined-after-first-packets.flv):
   a 1.1 s FLV (26 packets) with a second one joined on. The demuxer ends at the second
   file header while the first packets are read for the streams; the walk's path took
   that end for the end of the file and billed 1.149 s, where the oracle reads on into
   the second file (2.298 s). */
static void test_flv_joined_right_after_the_first_packets_is_read_on_by_the_oracle(void **state)
{
    (void)state;
    int64_t ms = expect_same_as_oracle(
        sample("../tests/fuzz/crashers/probe_diff-flv-joined-after-first-packets.flv"),
        CM_PROBE_METHOD_PACKET_SCAN);
    assert_int_equal(ms, 2298);
}

int main(void)
{
    cm_probe_silence_libav_logs();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flv_tag_walk_bills_what_the_oracle_bills),
        cmocka_unit_test(test_flv_clock_restart_is_summed_by_the_walk_as_by_the_oracle),
        cmocka_unit_test(test_flv_the_walk_cannot_prove_is_measured_by_the_oracle),
        cmocka_unit_test(test_flv_joined_right_after_the_first_packets_is_read_on_by_the_oracle),
    };
    return cmocka_run_group_tests(tests, make_fixtures, remove_fixtures);
}
