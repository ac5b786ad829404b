/* SPDX-License-Identifier: MIT */
/*
 * A header is a claim: doctored durations and cut-off files bill the content that is
 * really there, never what the header says.
 */
#include "probe_test_util.h"

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}
static void wr64(uint8_t *p, uint64_t v)
{
    wr32(p, (uint32_t)(v >> 32));
    wr32(p + 4, (uint32_t)v);
}

static uint8_t *find(uint8_t *buf, size_t len, const char *tag, size_t taglen, size_t from)
{
    for (size_t i = from; i + taglen <= len; i++)
        if (memcmp(buf + i, tag, taglen) == 0)
            return buf + i;
    return NULL;
}

/* Rewrites every mvhd, mdhd and tkhd duration so the MP4 claims `seconds`.
   Returns how many fields were patched. */
static int patch_mp4_duration(uint8_t *buf, size_t len, uint32_t seconds)
{
    int patched = 0;
    uint32_t movie_scale = 0;
    const char *boxes[] = {"mvhd", "mdhd", "tkhd"}; /* mvhd first: tkhd uses its scale */
    for (int b = 0; b < 3; b++) {
        for (uint8_t *p = find(buf, len, boxes[b], 4, 0); p;
             p = find(buf, len, boxes[b], 4, (size_t)(p - buf) + 4)) {
            int v1 = p[4] == 1;
            uint8_t *f = p + 8;
            if (b < 2) { /* mvhd, mdhd: [times][timescale][duration] */
                uint32_t scale = rd32(f + (v1 ? 16 : 8));
                if (b == 0)
                    movie_scale = scale;
                if (v1)
                    wr64(f + 20, (uint64_t)seconds * scale);
                else
                    wr32(f + 12, seconds * scale);
            } else { /* tkhd: [times][track id][reserved][duration], in the movie's scale */
                if (v1)
                    wr64(f + 24, (uint64_t)seconds * movie_scale);
                else
                    wr32(f + 16, seconds * movie_scale);
            }
            patched++;
        }
    }
    return patched;
}

/* Rewrites Matroska's Segment Info Duration (ID 0x4489, a float in ms at the default
   TimecodeScale). Returns 1 when patched. */
static int patch_mkv_duration(uint8_t *buf, size_t len, double ms)
{
    uint8_t *p = find(buf, len, "\x44\x89", 2, 0);
    if (!p)
        return 0;
    if (p[2] == 0x88) {
        uint64_t bits;
        memcpy(&bits, &ms, 8);
        wr64(p + 3, bits);
        return 1;
    }
    if (p[2] == 0x84) {
        float f = (float)ms;
        uint32_t bits;
        memcpy(&bits, &f, 4);
        wr32(p + 3, bits);
        return 1;
    }
    return 0;
}

static cm_probe_report *probe_patched(const char *src, const char *name, int mkv, uint32_t claim_s)
{
    size_t n;
    uint8_t *buf = read_all(sample(src), &n);
    if (mkv)
        assert_int_equal(patch_mkv_duration(buf, n, claim_s * 1000.0), 1);
    else
        assert_true(patch_mp4_duration(buf, n, claim_s) >= 3);
    const char *out = tmp_path(name);
    write_all(out, buf, n);
    free(buf);
    cm_probe_report *r = probe(out);
    unlink(out);
    if (cm_probe_report_error(r) != CM_PROBE_OK)
        fail_msg("%s refused: %s", name, cm_probe_report_errmsg(r));
    return r;
}

static void test_ten_minute_mp4_claiming_one_second_bills_ten(void **s)
{
    (void)s;
    cm_probe_report *r = probe_patched("long-10m.mp4", "claims-1s.mp4", 0, 1);
    assert_int_equal(cm_probe_report_declared_ms(r), 1000);
    assert_int_equal(cm_probe_report_credits(r), 10);
    assert_int_equal(cm_probe_report_note(r), CM_PROBE_NOTE_HEADER_SHORTER);
    cm_probe_report_free(r);
}

static void test_one_minute_mp4_claiming_one_hour_bills_one(void **s)
{
    (void)s;
    cm_probe_report *r = probe_patched("minute-1m.mp4", "claims-1h.mp4", 0, 3600);
    assert_int_equal(cm_probe_report_declared_ms(r), 3600000);
    assert_int_equal(cm_probe_report_credits(r), 1);
    assert_int_equal(cm_probe_report_note(r), CM_PROBE_NOTE_HEADER_LONGER);
    cm_probe_report_free(r);
}

static void test_ten_minute_mkv_claiming_one_second_bills_ten(void **s)
{
    (void)s;
    cm_probe_report *r = probe_patched("long-10m.mkv", "claims-1s.mkv", 1, 1);
    assert_int_equal(cm_probe_report_declared_ms(r), 1000);
    assert_int_equal(cm_probe_report_credits(r), 10);
    assert_int_equal(cm_probe_report_note(r), CM_PROBE_NOTE_HEADER_SHORTER);
    cm_probe_report_free(r);
}

static void test_one_minute_mkv_claiming_one_hour_bills_one(void **s)
{
    (void)s;
    cm_probe_report *r = probe_patched("edge-60.0s.mkv", "claims-1h.mkv", 1, 3600);
    assert_int_equal(cm_probe_report_declared_ms(r), 3600000);
    assert_int_equal(cm_probe_report_credits(r), 1);
    assert_int_equal(cm_probe_report_note(r), CM_PROBE_NOTE_HEADER_LONGER);
    cm_probe_report_free(r);
}

static void test_three_minute_mkv_claiming_one_second_bills_three_by_cluster_walk(void **s)
{
    (void)s;
    cm_probe_report *r = probe_patched("exact-3m00.mkv", "claims-1s-3m.mkv", 1, 1);
    assert_int_equal(cm_probe_report_credits(r), 3);
    assert_int_equal(cm_probe_report_method(r), CM_PROBE_METHOD_STRUCTURE_WALK);
    cm_probe_report_free(r);
}

/* The first 30 % of an MP4 whose index is at the front: the index describes 2:00,
   but only the samples whose bytes are in the file are billed. */
static cm_probe_report *probe_cut(const char *src, const char *name, int percent)
{
    size_t n;
    uint8_t *buf = read_all(sample(src), &n);
    const char *out = tmp_path(name);
    write_all(out, buf, n * (size_t)percent / 100);
    free(buf);
    cm_probe_report *r = probe(out);
    unlink(out);
    return r;
}

static void test_truncated_mp4_bills_what_is_left(void **s)
{
    (void)s;
    cm_probe_report *r = probe_cut("faststart-2m.mp4", "cut.mp4", 30);
    if (cm_probe_report_error(r) == CM_PROBE_OK) {
        assert_int_equal(cm_probe_report_note(r), CM_PROBE_NOTE_TRUNCATED);
        assert_true(cm_probe_report_measured_ms(r) < 60000);
        assert_true(cm_probe_report_measured_ms(r) > 10000);
        assert_int_equal(cm_probe_report_credits(r), 1);
        assert_in_range(cm_probe_report_declared_ms(r), 119000, 121000);
    } else {
        assert_int_equal(cm_probe_report_error(r), CM_PROBE_E_DAMAGED);
    }
    cm_probe_report_free(r);
}

static void test_truncated_mkv_and_ts_bill_what_is_left(void **s)
{
    (void)s;
    cm_probe_report *r = probe_cut("exact-3m00.mkv", "cut.mkv", 30);
    assert_int_equal(cm_probe_report_error(r), CM_PROBE_OK);
    assert_in_range(cm_probe_report_measured_ms(r), 30000, 90000);
    assert_true(cm_probe_report_credits(r) <= 2);
    /* the Segment's size runs past the end of the file: cut off, not merely a header
       claiming more */
    assert_int_equal(cm_probe_report_note(r), CM_PROBE_NOTE_TRUNCATED);
    cm_probe_report_free(r);

    r = probe_cut("exact-3m00.ts", "cut.ts", 50);
    assert_int_equal(cm_probe_report_error(r), CM_PROBE_OK);
    assert_in_range(cm_probe_report_measured_ms(r), 60000, 120000);
    assert_true(cm_probe_report_credits(r) <= 2);
    cm_probe_report_free(r);
}

/* Files glued together byte by byte: each piece restarts its clock, and a player plays
   them one after another. The tail alone would see only the last piece. */
static cm_probe_report *probe_glued(const char *name, const char *a, const char *b, const char *c)
{
    const char *out = tmp_path(name);
    assert_int_equal(run_cmd("cat '%s' '%s' %s%s%s > '%s'", sample(a), sample(b), c ? "'" : "",
                             c ? sample(c) : "", c ? "'" : "", out),
                     0);
    cm_probe_report *r = probe(out);
    unlink(out);
    if (cm_probe_report_error(r) != CM_PROBE_OK)
        fail_msg("%s refused: %s", name, cm_probe_report_errmsg(r));
    return r;
}

static void test_glued_ts_pieces_bill_every_piece(void **s)
{
    (void)s;
    cm_probe_report *r =
        probe_glued("glued3.ts", "exact-3m00.ts", "exact-3m00.ts", "exact-3m00.ts");
    assert_in_range(cm_probe_report_measured_ms(r), 540000, 541500);
    assert_int_equal(cm_probe_report_method(r), CM_PROBE_METHOD_PACKET_SCAN);
    cm_probe_report_free(r);
}

static void test_glued_mkv_pieces_bill_every_piece(void **s)
{
    (void)s;
    cm_probe_report *r = probe_glued("glued2.mkv", "exact-3m00.mkv", "exact-3m00.mkv", NULL);
    assert_in_range(cm_probe_report_measured_ms(r), 359500, 360500);
    assert_int_equal(cm_probe_report_credits(r), 6);
    cm_probe_report_free(r);
}

/* A 3:00 TS followed by a 90 s TS whose clock starts 26 hours later and wraps: 4:30,
   neither 26 hours nor the last piece's 90 s. */
static void test_glued_ts_with_distant_clock_bills_playing_time(void **s)
{
    (void)s;
    cm_probe_report *r = probe_glued("glued-wrap.ts", "exact-3m00.ts", "wrap-90s.ts", NULL);
    assert_in_range(cm_probe_report_measured_ms(r), 269000, 271500);
    assert_int_equal(cm_probe_report_credits(r), 5);
    cm_probe_report_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ten_minute_mp4_claiming_one_second_bills_ten),
        cmocka_unit_test(test_one_minute_mp4_claiming_one_hour_bills_one),
        cmocka_unit_test(test_ten_minute_mkv_claiming_one_second_bills_ten),
        cmocka_unit_test(test_one_minute_mkv_claiming_one_hour_bills_one),
        cmocka_unit_test(test_three_minute_mkv_claiming_one_second_bills_three_by_cluster_walk),
        cmocka_unit_test(test_truncated_mp4_bills_what_is_left),
        cmocka_unit_test(test_truncated_mkv_and_ts_bill_what_is_left),
        cmocka_unit_test(test_glued_ts_pieces_bill_every_piece),
        cmocka_unit_test(test_glued_mkv_pieces_bill_every_piece),
        cmocka_unit_test(test_glued_ts_with_distant_clock_bills_playing_time),
    };
    return cmocka_run_group_tests_name("probe_lying", tests, NULL, NULL);
}
