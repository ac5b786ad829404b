/* SPDX-License-Identifier: MIT */
/*
 * The guard (probe_guard.c) refuses, before libavformat reads a header, the declared
 * sizes that would make the demuxer allocate what the file cannot hold. Unguarded, each
 * doctored file below costs libavformat 170 MB to 1.7 GB of memory and seconds of CPU
 * inside avformat_open_input() (ffmpeg 5.1). Fixtures are made at test time: small
 * files rendered with ffmpeg, or samples/, then byte-edited here. The refusal is
 * asserted by its code and its message (the guard's, not libavformat's).
 */
#include "probe_measure.h"
#include "probe_test_util.h"

#include "probe_bytes.h"

#include <fcntl.h>
#include <sys/stat.h>

#define FF "ffmpeg -hide_banner -loglevel error -nostdin -y "

static char frag[1024], wav[1024];

static int make_fixtures(void **state)
{
    (void)state;
    snprintf(frag, sizeof(frag), "%s", tmp_path("frag.mp4"));
    snprintf(wav, sizeof(wav), "%s", tmp_path("info.wav"));
    int err = 0;
    /* ~20 KB: ten 1 s fragments and a global sidx, as in the field report */
    err |= run_cmd(FF "-f lavfi -i testsrc2=size=64x48:rate=10:duration=10 -c:v mpeg4 -g 10 "
                      "-movflags +frag_keyframe+empty_moov+default_base_moof+global_sidx '%s'",
                   frag);
    err |= run_cmd(FF "-f lavfi -i sine=duration=5 -metadata title=guarded '%s'", wav);
    return err ? -1 : 0;
}

static int remove_fixtures(void **state)
{
    (void)state;
    return run_cmd("rm -f '%s/%d-'*", CM_TEST_TMP, (int)getpid()) == 0 ? 0 : -1;
}

/* Offset of the last occurrence of tag in buf. */
static size_t last_tag(const uint8_t *buf, size_t len, const char *tag)
{
    for (size_t i = len - 4; i > 0; i--)
        if (memcmp(buf + i, tag, 4) == 0)
            return i;
    fail_msg("no %s", tag);
    return 0;
}

static size_t first_tag(const uint8_t *buf, size_t len, const char *tag)
{
    for (size_t i = 0; i + 4 <= len; i++)
        if (memcmp(buf + i, tag, 4) == 0)
            return i;
    fail_msg("no %s", tag);
    return 0;
}

/* As the field report's file: a second copy of the sidx and a copy of the last moof
   appended, whose trun declares 16 million samples (it holds 10). With trun flags
   giving no per-sample fields (defaults), they are 16 million samples of the default
   size, more bytes than the file has. Unguarded, libavformat needs 170 MB and 560 MB for
   them inside avformat_open_input (and seconds of CPU). */
static void append_sidx_and_moof(uint8_t **buf, size_t *len, int defaults)
{
    size_t sidx = first_tag(*buf, *len, "sidx") - 4, moof = last_tag(*buf, *len, "moof") - 4;
    size_t sidx_len = cm__rb32(*buf + sidx), moof_len = cm__rb32(*buf + moof);
    uint8_t *b = realloc(*buf, *len + sidx_len + moof_len);
    assert_non_null(b);
    memcpy(b + *len, b + sidx, sidx_len);
    memcpy(b + *len + sidx_len, b + moof, moof_len);
    *buf = b;
    *len += sidx_len + moof_len;
    uint8_t *t = b + last_tag(b, *len, "trun");
    if (defaults)
        t[5] = 0, t[6] = 0, t[7] = 0x01; /* flags: a data offset, nothing per sample */
    put_be32(t + 8, 16u << 20);
}

static void trun_count_huge(uint8_t **buf, size_t *len)
{
    append_sidx_and_moof(buf, len, 0);
}

static void trun_defaults_huge(uint8_t **buf, size_t *len)
{
    append_sidx_and_moof(buf, len, 1);
}

/* The metadata list (LIST INFO) and its first chunk claim 1.68 GB. */
static void info_huge(uint8_t **buf, size_t *len)
{
    size_t info = first_tag(*buf, *len, "INFO");
    put_le32(*buf + info - 4, 1680000000u);
    put_le32(*buf + info + 8, 1680000000u - 20);
}

static void expect_damaged(const char *path, const char *needle)
{
    cm_probe_report *r = probe(path);
    if (cm_probe_report_error(r) != CM_PROBE_E_DAMAGED ||
        !strstr(cm_probe_report_errmsg(r), needle))
        fail_msg("%s: expected damaged (%s), got %s: %s", path, needle,
                 cm_probe_err_name(cm_probe_report_error(r)), cm_probe_report_errmsg(r));
    assert_int_equal(cm_probe_report_credits(r), 0);
    cm_probe_report_free(r);
}

static void test_trun_declaring_more_samples_than_it_holds_is_damaged(void **state)
{
    (void)state;
    expect_damaged(edited(frag, "trun-huge.mp4", trun_count_huge),
                   "declares 16777216 samples but holds 10");
}

static void test_truns_declaring_more_sample_bytes_than_the_file_has_are_damaged(void **state)
{
    (void)state;
    expect_damaged(edited(frag, "trun-defaults.mp4", trun_defaults_huge), "more than the file has");
}

static void test_avi_metadata_list_past_the_end_of_the_file_is_damaged(void **state)
{
    (void)state;
    expect_damaged(edited(sample("exact-3m00.avi"), "info-huge.avi", info_huge),
                   "metadata list (LIST INFO) at offset");
}

static void test_wav_metadata_list_past_the_end_of_the_file_is_damaged(void **state)
{
    (void)state;
    expect_damaged(edited(wav, "info-huge.wav", info_huge), "metadata list (LIST INFO) at offset");
}

/* Found by fuzz_probe_diff as a time-out (tests/fuzz/crashers/
   probe_diff-mp4-trun-64bit-size-33m-samples.mp4, the first 3,323 bytes of its input): a
   trun whose size field is 1 (a 64-bit size follows), read by libavformat with its count
   of 33.5 million samples of the default size: 1.1 GB and 17-25 s inside
   avformat_open_input. The guard reads box sizes as the demuxer does. */
static void test_trun_with_a_64_bit_size_is_read_as_the_demuxer_reads_it(void **state)
{
    (void)state;
    expect_damaged(sample("../tests/fuzz/crashers/probe_diff-mp4-trun-64bit-size-33m-samples.mp4"),
                   "more than the file has");
}

/* The video stream's format chunk (strf) declares 20 bytes, fewer than the 40 of the
   BITMAPINFOHEADER libavformat reads from it whatever it declares. */
static void short_strf(uint8_t **buf, size_t *len)
{
    (void)len;
    put_le32(*buf + first_tag(*buf, *len, "strf") + 4, 20);
}

static void short_strf_info_huge(uint8_t **buf, size_t *len)
{
    short_strf(buf, len);
    info_huge(buf, len);
}

/* The JUNK chunk before the metadata list claims 2 MB: the guard's walk, like the
   header reader, stops there. */
static void big_junk_info_huge(uint8_t **buf, size_t *len)
{
    info_huge(buf, len);
    put_le32(*buf + last_tag(*buf, first_tag(*buf, *len, "INFO"), "JUNK") + 4, 2000000);
}

/* Found by fuzz_probe_diff (tests/fuzz/crashers/probe_diff-avi-short-strf-info-past-end.avi,
   386 KB: 7.2 s and 1.7 GB inside avformat_open_input). Its video strf declares 20
   bytes; the guard's walk stepped 20 bytes on, landed inside the bitmap header, read a
   chunk "size" of 1.26 GB there and stopped, while libavformat, having read 40 bytes,
   walked on to a metadata list claiming 4 GB. The guard now steps over a strf as the
   header reader reads it. The same edit made on a sample, and the finding itself, are
   refused by the guard (its message), before libavformat opens them. */
static void test_avi_metadata_list_after_a_short_video_format_chunk_is_damaged(void **state)
{
    (void)state;
    expect_damaged(edited(sample("exact-3m00.avi"), "short-strf-info.avi", short_strf_info_huge),
                   "metadata list (LIST INFO) at offset 8926 claims 1680000000 bytes");
    expect_damaged(sample("../tests/fuzz/crashers/probe_diff-avi-short-strf-info-past-end.avi"),
                   "metadata list (LIST INFO) at offset 8926 claims 4294967295 bytes");
}

/* Wherever the header reader's walk lands (a chunk read otherwise than it declares puts
   it off the boundaries the guard assumes), a metadata list claiming more than the file
   has anywhere before the media is refused: the header bytes are looked at one by one. */
static void test_avi_metadata_list_past_the_end_anywhere_before_the_media_is_damaged(void **state)
{
    (void)state;
    expect_damaged(edited(sample("exact-3m00.avi"), "big-junk-info.avi", big_junk_info_huge),
                   "metadata list (LIST INFO) at offset 8926 claims 1680000000 bytes");
}

/* cm__guard on path as format: its result. */
static int guard_of(const char *path, const char *format)
{
    cm_probe_options opt;
    cm_probe_options_init(&opt);
    cm_input in = {.fd = open(path, O_RDONLY), .opt = &opt};
    assert_true(in.fd >= 0);
    struct stat st;
    assert_int_equal(fstat(in.fd, &st), 0);
    in.size = st.st_size;
    in.deadline_ms = cm__now_ms(&opt) + opt.time_budget_ms;
    char why[256];
    int res = cm__guard(&in, format, why, sizeof(why));
    if (res != 0)
        fail_msg("%s: %s", path, why);
    cm__input_close(&in);
    return res;
}

/* The guard lets every honest file through: the samples, the fragmented file and the
   WAV with its metadata before they were edited (and they bill). */
static void test_honest_files_pass_the_guard(void **state)
{
    (void)state;
    const char *mp4 = "mov,mp4,m4a,3gp,3g2,mj2";
    const char *mp4s[] = {"exact-3m00.mp4",   "exact-3m00.mov",      "exact-3m00.3gp",
                          "faststart-2m.mp4", "exact-3m00-frag.mp4", "audio-40s.m4a"};
    for (size_t i = 0; i < sizeof(mp4s) / sizeof(mp4s[0]); i++)
        assert_int_equal(guard_of(sample(mp4s[i]), mp4), 0);
    assert_int_equal(guard_of(frag, mp4), 0);
    assert_int_equal(guard_of(sample("exact-3m00.avi"), "avi"), 0);
    /* a short video strf alone is harmless: libavformat reads its 40 bytes and on */
    const char *short_avi = edited(sample("exact-3m00.avi"), "short-strf.avi", short_strf);
    assert_int_equal(guard_of(short_avi, "avi"), 0);
    assert_int_equal(credits_of(short_avi), 3);
    assert_int_equal(guard_of(wav, "wav"), 0);
    assert_int_equal(credits_of(frag), 1);
    assert_int_equal(credits_of(wav), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trun_declaring_more_samples_than_it_holds_is_damaged),
        cmocka_unit_test(test_truns_declaring_more_sample_bytes_than_the_file_has_are_damaged),
        cmocka_unit_test(test_avi_metadata_list_past_the_end_of_the_file_is_damaged),
        cmocka_unit_test(test_wav_metadata_list_past_the_end_of_the_file_is_damaged),
        cmocka_unit_test(test_trun_with_a_64_bit_size_is_read_as_the_demuxer_reads_it),
        cmocka_unit_test(test_avi_metadata_list_after_a_short_video_format_chunk_is_damaged),
        cmocka_unit_test(test_avi_metadata_list_past_the_end_anywhere_before_the_media_is_damaged),
        cmocka_unit_test(test_honest_files_pass_the_guard),
    };
    return cmocka_run_group_tests(tests, make_fixtures, remove_fixtures);
}
