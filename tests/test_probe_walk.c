/* SPDX-License-Identifier: MIT */
/*
 * The structure walks (probe_walk.h) prove a file's playing time from its own structure
 * or say they cannot: every MP4 top-level box and fragment, every AVI movi chunk. Each
 * answer is checked against the truth, every packet demuxed from the same opening.
 * Fixtures are made at test time from samples/ with ffmpeg (stream copies: quick) and
 * byte-edited here.
 */
#include "probe_walk_util.h"

#include "probe_bytes.h"

#define FF "ffmpeg -hide_banner -loglevel error -nostdin -y "

/* Fixtures made once for the whole program. */
static char gsidx[1024], dash[1024], dash_audio[1024], hls[1024], cmaf[1024], ismv[1024],
    frag_moov[1024], no_default_base[1024], pcm_avi[1024], vbr_avi[1024], trimmed[1024],
    trimmed_frag[1024];

static void path_of(char *dst, const char *name)
{
    snprintf(dst, 1024, "%s", tmp_path(name));
}

static int make_fixtures(void **state)
{
    (void)state;
    const char *src = sample("exact-3m00.mp4");
    path_of(gsidx, "gsidx.mp4");
    path_of(cmaf, "cmaf.mp4");
    path_of(ismv, "out.ismv");
    path_of(frag_moov, "frag-moov.mp4");
    path_of(no_default_base, "no-default-base.mp4");
    path_of(pcm_avi, "pcm.avi");
    path_of(vbr_avi, "vbr.avi");
    path_of(trimmed, "trimmed.mp4");
    path_of(trimmed_frag, "trimmed-frag.mp4");
    char mpd[1024], m3u8[1024];
    path_of(mpd, "dash.mpd");
    path_of(m3u8, "hls.m3u8");
    path_of(dash, "dash-stream0.mp4"); /* -single_file: one file per stream */
    path_of(dash_audio, "dash-stream1.mp4");
    path_of(hls, "hls.m4s");
    int err = 0;
    err |= run_cmd(FF "-i '%s' -c copy -movflags "
                      "+frag_keyframe+empty_moov+default_base_moof+global_sidx '%s'",
                   src, gsidx);
    err |= run_cmd(FF "-i '%s' -c copy -movflags +frag_keyframe+empty_moov+default_base_moof"
                      "+dash+cmaf '%s'",
                   src, cmaf);
    err |= run_cmd(FF "-i '%s' -c copy -f ismv '%s'", src, ismv);
    err |= run_cmd(FF "-i '%s' -c copy -movflags +frag_keyframe '%s'", src, frag_moov);
    err |= run_cmd(FF "-i '%s' -c copy -movflags +frag_keyframe+empty_moov '%s'", src,
                   no_default_base);
    err |= run_cmd(FF "-i '%s' -c copy -f dash -single_file 1 -seg_duration 4 '%s'", src, mpd);
    err |= run_cmd(FF "-i '%s' -c copy -f hls -hls_segment_type fmp4 -hls_flags single_file "
                      "-hls_time 4 '%s'",
                   src, m3u8);
    err |= run_cmd(FF "-f lavfi -i testsrc2=size=64x48:rate=10:duration=60 -f lavfi -i "
                      "sine=sample_rate=22050:duration=60 -c:v mjpeg -q:v 20 -c:a pcm_s16le '%s'",
                   pcm_avi);
    err |= run_cmd(FF "-f lavfi -i testsrc2=size=64x48:rate=5:duration=60 -f lavfi -i "
                      "sine=sample_rate=22050:duration=60 -c:v mpeg4 -c:a libmp3lame -abr 1 "
                      "-b:a 64k '%s'",
                   vbr_avi);
    /* a cut inside a GOP of B-frames: an edit list skips the first decoded frames */
    err |= run_cmd(FF "-ss 20.3 -i '%s' -t 30 -c copy '%s'", src, trimmed);
    err |= run_cmd(FF "-i '%s' -c copy -movflags +frag_keyframe+empty_moov+default_base_moof "
                      "'%s'",
                   trimmed, trimmed_frag);
    return err ? -1 : 0;
}

/* Removes every file this program made in the temp dir (all named <pid>-...). */
static int remove_fixtures(void **state)
{
    (void)state;
    return run_cmd("rm -f '%s/%d-'*", CM_TEST_TMP, (int)getpid()) == 0 ? 0 : -1;
}

static double tolerance(double s)
{
    return s / 100 > 0.25 ? s / 100 : 0.25;
}

/* The walk proves the file and agrees with every packet demuxed: returns its seconds. */
static double expect_proven(const char *path, walk_fn fn, int truncated)
{
    struct walked w;
    walk_run(&w, path, fn);
    if (w.res != CM__WALK_PROVEN)
        fail_msg("%s: not proven (%d): %s", path, w.res, w.why);
    assert_int_equal(w.truncated, truncated);
    double walked = walk_seconds(&w);
    double truth = demux_seconds(&w);
    if (walked < truth - tolerance(truth) || walked > truth + tolerance(truth))
        fail_msg("%s: the walk says %.3f s, every packet says %.3f s", path, walked, truth);
    walk_close(&w);
    return walked;
}

static void expect_unproven(const char *path, walk_fn fn)
{
    struct walked w;
    walk_run(&w, path, fn);
    if (w.res != CM__WALK_UNPROVEN)
        fail_msg("%s: expected unproven, got %d (%.3f s)", path, w.res, walk_seconds(&w));
    assert_true(w.why[0] != '\0');
    for (unsigned i = 0; i < w.fc->nb_streams; i++)
        assert_false(w.spans[i].set);
    walk_close(&w);
}

/* The probe, its walk proving nothing, bills path by the oracle: at least min_ms. */
static void expect_oracle_bills_at_least(const char *path, int64_t min_ms)
{
    cm_probe_report *r = probe(path);
    if (cm_probe_report_error(r) != CM_PROBE_OK)
        fail_msg("%s refused: %s", path, cm_probe_report_errmsg(r));
    assert_int_equal(cm_probe_report_method(r), CM_PROBE_METHOD_PACKET_SCAN);
    if (cm_probe_report_measured_ms(r) < min_ms)
        fail_msg("%s: %lld ms billed, at least %lld play", path,
                 (long long)cm_probe_report_measured_ms(r), (long long)min_ms);
    cm_probe_report_free(r);
}

static void assert_seconds(double got, double want)
{
    if (got < want - tolerance(want) || got > want + tolerance(want))
        fail_msg("%.3f s where %.3f s play", got, want);
}

/* --- MP4: top-level boxes --- */
struct box {
    int64_t off, size;
    uint32_t type;
};

/* The top-level boxes of buf (up to max). */
static int top_boxes(const uint8_t *buf, size_t len, struct box *out, int max)
{
    int n = 0;
    for (size_t off = 0; off + 8 <= len && n < max;) {
        uint64_t size = cm__rb32(buf + off);
        if (size == 1)
            size = cm__rb64(buf + off + 8);
        else if (size == 0)
            size = len - off;
        if (size < 8)
            break;
        out[n++] = (struct box){(int64_t)off, (int64_t)size, cm__rb32(buf + off + 4)};
        off += size;
    }
    return n;
}

static uint8_t *find_tag(uint8_t *buf, int64_t from, int64_t to, const char *tag)
{
    for (int64_t i = from; i + 4 <= to; i++)
        if (memcmp(buf + i, tag, 4) == 0)
            return buf + i;
    return NULL;
}

static void test_non_fragmented_mp4_is_proven_by_its_index(void **state)
{
    (void)state;
    assert_seconds(expect_proven(sample("exact-3m00.mp4"), cm__mp4_walk, 0), 180.0);
    assert_seconds(expect_proven(sample("faststart-2m.mp4"), cm__mp4_walk, 0), 120.0);
    assert_seconds(expect_proven(sample("exact-3m00.mov"), cm__mp4_walk, 0), 180.0);
    assert_seconds(expect_proven(sample("exact-3m00.3gp"), cm__mp4_walk, 0), 180.0);
    assert_seconds(expect_proven(sample("audio-40s.m4a"), cm__mp4_walk, 0), 40.0);
}

static void test_fragmented_with_global_sidx_proves_every_fragment(void **state)
{
    (void)state;
    /* libavformat's own index holds only the first fragments of this file */
    struct walked w;
    walk_run(&w, gsidx, cm__mp4_walk);
    assert_true(avformat_index_get_entries_count(w.fc->streams[0]) < 100);
    walk_close(&w);
    assert_seconds(expect_proven(gsidx, cm__mp4_walk, 0), 180.0);
}

static void test_every_fragmented_packaging_is_proven_whole(void **state)
{
    (void)state;
    const char *files[] = {sample("exact-3m00-frag.mp4"), cmaf, ismv, frag_moov, no_default_base};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        assert_seconds(expect_proven(files[i], cm__mp4_walk, 0), 180.0);
}

static void test_dash_and_hls_single_files_are_proven_with_their_last_segment(void **state)
{
    (void)state;
    assert_seconds(expect_proven(dash, cm__mp4_walk, 0), 180.0);
    assert_seconds(expect_proven(dash_audio, cm__mp4_walk, 0), 180.0);
    assert_seconds(expect_proven(hls, cm__mp4_walk, 0), 180.0);
}

/* Applies edit to every tfdt box (from its size field) of the last 10 fragments. */
static void edit_last_tfdts(uint8_t *buf, size_t len, void (*edit)(uint8_t *tfdt))
{
    struct box b[4096];
    int n = top_boxes(buf, len, b, 4096);
    int moofs = 0;
    for (int i = n - 1; i >= 0 && moofs < 10; i--) {
        if (b[i].type != CM__FOURCC('m', 'o', 'o', 'f'))
            continue;
        moofs++;
        for (uint8_t *t = find_tag(buf, b[i].off, b[i].off + b[i].size, "tfdt"); t;
             t = find_tag(buf, t - buf + 4, b[i].off + b[i].size, "tfdt"))
            edit(t);
    }
    assert_int_equal(moofs, 10);
}

static void tfdt_zero(uint8_t *t)
{
    memset(t + 8, 0, t[4] == 1 ? 8 : 4);
}

/* tfdt of the last 10 fragments set to 0 */
static void zero_last_tfdts(uint8_t **buf, size_t *len)
{
    edit_last_tfdts(*buf, *len, tfdt_zero);
}

/* B-frames reorder the presentation: the first pts is not the first dts, the last
   frame shown is not the last decoded. The spans are presentation spans, exactly. */
static void test_edit_lists_and_b_frames_give_the_presentation_span(void **state)
{
    (void)state;
    const char *files[] = {trimmed, trimmed_frag, sample("exact-3m00.mp4"), gsidx};
    for (int i = 0; i < 4; i++) {
        struct walked w;
        walk_run(&w, files[i], cm__mp4_walk);
        if (w.res != CM__WALK_PROVEN)
            fail_msg("%s: %s", files[i], w.why);
        double walked = walk_seconds(&w), truth = demux_seconds(&w);
        if (walked < truth - 0.001 || walked > truth + 0.001)
            fail_msg("%s: the walk says %.3f s, every packet says %.3f s", files[i], walked, truth);
        walk_close(&w);
    }
}

static void tfdt_later(uint8_t *t)
{
    uint8_t *v = t + 8 + (t[4] == 1 ? 4 : 0); /* the low 32 bits */
    put_be32(v, cm__rb32(v) + (1u << 21));
}

/* tfdt of the last 10 fragments moved 2^21 units (minutes) later */
static void push_last_tfdts(uint8_t **buf, size_t *len)
{
    edit_last_tfdts(*buf, *len, tfdt_later);
}

/* The first traf of the 5th fragment names a track the movie does not have. */
static void unknown_track(uint8_t **buf, size_t *len)
{
    struct box b[4096];
    int n = top_boxes(*buf, *len, b, 4096), moofs = 0;
    for (int i = 0; i < n; i++)
        if (b[i].type == CM__FOURCC('m', 'o', 'o', 'f') && ++moofs == 5) {
            uint8_t *t = find_tag(*buf, b[i].off, b[i].off + b[i].size, "tfhd");
            assert_non_null(t);
            memcpy(t + 8, "\0\0\0\x09", 4);
        }
    assert_true(moofs >= 5);
}

static void test_fragment_time_running_backwards_or_jumping_is_unproven(void **state)
{
    (void)state;
    expect_unproven(edited(gsidx, "tfdt0.mp4", zero_last_tfdts), cm__mp4_walk);
    expect_unproven(edited(gsidx, "tfdt-later.mp4", push_last_tfdts), cm__mp4_walk);
}

static void test_fragment_of_a_track_the_movie_lacks_is_unproven(void **state)
{
    (void)state;
    expect_unproven(edited(gsidx, "track-9.mp4", unknown_track), cm__mp4_walk);
}

/* The last (only) mdat of the faststart file grows by 200 KB no sample describes. */
static void append_to_mdat(uint8_t **buf, size_t *len)
{
    struct box b[16];
    int n = top_boxes(*buf, *len, b, 16);
    assert_int_equal(b[n - 1].type, CM__FOURCC('m', 'd', 'a', 't'));
    size_t extra = 200 << 10;
    *buf = realloc(*buf, *len + extra);
    assert_non_null(*buf);
    for (size_t i = 0; i < extra; i++)
        (*buf)[*len + i] = (uint8_t)(i * 7);
    put_be32(*buf + b[n - 1].off, (uint32_t)(b[n - 1].size + (int64_t)extra));
    *len += extra;
}

static void test_mdat_bytes_no_sample_describes_are_unproven(void **state)
{
    (void)state;
    expect_unproven(edited(sample("faststart-2m.mp4"), "mdat-extra.mp4", append_to_mdat),
                    cm__mp4_walk);
}

static int64_t mdat_at(const uint8_t *buf, size_t len);

/* The mdat becomes a free box: the sample tables point into it all the same. */
static void mdat_renamed(uint8_t **buf, size_t *len);

static void test_samples_outside_every_mdat_are_unproven(void **state)
{
    (void)state;
    expect_unproven(edited(sample("faststart-2m.mp4"), "no-mdat.mp4", mdat_renamed), cm__mp4_walk);
}

static int64_t mdat_at(const uint8_t *buf, size_t len)
{
    struct box b[16];
    int n = top_boxes(buf, len, b, 16);
    for (int i = 0; i < n; i++)
        if (b[i].type == CM__FOURCC('m', 'd', 'a', 't'))
            return b[i].off;
    fail_msg("no mdat");
    return -1;
}

static void mdat_renamed(uint8_t **buf, size_t *len)
{
    memcpy(*buf + mdat_at(*buf, *len) + 4, "free", 4);
}

static void mdat_size_3(uint8_t **buf, size_t *len)
{
    uint8_t *p = *buf + mdat_at(*buf, *len);
    memcpy(p, "\0\0\0\3", 4);
}

static void mdat_size_short(uint8_t **buf, size_t *len)
{
    uint8_t *p = *buf + mdat_at(*buf, *len);
    put_be32(p, cm__rb32(p) - 1000);
}

static void box_type_garbage(uint8_t **buf, size_t *len)
{
    uint8_t *p = *buf + mdat_at(*buf, *len);
    memcpy(p - 4, "\1\2\3\4", 4); /* the free box before the mdat */
}

static void test_garbage_box_header_is_unproven(void **state)
{
    (void)state;
    const char *src = sample("faststart-2m.mp4");
    expect_unproven(edited(src, "garbage-3.mp4", mdat_size_3), cm__mp4_walk);
    expect_unproven(edited(src, "garbage-short.mp4", mdat_size_short), cm__mp4_walk);
    expect_unproven(edited(src, "garbage-type.mp4", box_type_garbage), cm__mp4_walk);
}

static void mdat_size_huge(uint8_t **buf, size_t *len)
{
    uint8_t *p = *buf + mdat_at(*buf, *len);
    memcpy(p, "\xff\xff\xff\xf0", 4);
}

/* The 5th moof claims more bytes than the file has: the demuxer, reading its children,
   still finds the fragments after it (as it does through a sidx). */
static void moof_size_huge(uint8_t **buf, size_t *len)
{
    struct box b[4096];
    int n = top_boxes(*buf, *len, b, 4096), moofs = 0;
    for (int i = 0; i < n; i++)
        if (b[i].type == CM__FOURCC('m', 'o', 'o', 'f') && ++moofs == 5)
            memcpy(*buf + b[i].off, "\x7f\xff\xff\xf0", 4);
    assert_true(moofs >= 5);
}

static void test_box_running_past_the_end_is_truncation_only_for_mdat(void **state)
{
    (void)state;
    const char *f = edited(sample("faststart-2m.mp4"), "mdat-huge.mp4", mdat_size_huge);
    assert_seconds(expect_proven(f, cm__mp4_walk, 1), 120.0);
    expect_unproven(edited(gsidx, "moof-huge.mp4", moof_size_huge), cm__mp4_walk);
}

static const char *cut_copy(const char *src, const char *name, int percent)
{
    size_t len;
    uint8_t *buf = read_all(src, &len);
    const char *out = tmp_path(name);
    write_all(out, buf, len * (size_t)percent / 100);
    free(buf);
    return out;
}

/* The first percent of src (named cut-<percent>-<src's name>) is proven by fn, truncated;
   returns its seconds. */
static double expect_cut_proven(const char *src, int percent, walk_fn fn)
{
    const char *base = strrchr(src, '/') ? strrchr(src, '/') + 1 : src;
    char name[256];
    snprintf(name, sizeof(name), "cut-%d-%s", percent, base);
    return expect_proven(cut_copy(src, name, percent), fn, 1);
}

static void test_cut_off_mp4_bills_the_samples_inside_and_says_truncated(void **state)
{
    (void)state;
    int cuts[] = {10, 50, 90};
    for (int i = 0; i < 3; i++) {
        double s = expect_cut_proven(sample("faststart-2m.mp4"), cuts[i], cm__mp4_walk);
        assert_true(s < 120.0 * cuts[i] / 100 + 10);
    }
}

/* Found by fuzz_probe_diff (tests/fuzz/crashers/probe_diff-avi-joined-with-itself.avi): a
   small AVI followed by a copy of itself. The demuxer resynchronises after the first RIFF
   and plays the second one too, so bytes after the last RIFF part are proof of nothing
   (the walk billed 4.25 s of 8.5 s when it counted them as slack). */
static void test_avi_followed_by_another_avi_is_unproven(void **state)
{
    (void)state;
    expect_unproven(sample("../tests/fuzz/crashers/probe_diff-avi-joined-with-itself.avi"),
                    cm__avi_walk);
    expect_oracle_bills_at_least(sample("../tests/fuzz/crashers/"
                                        "probe_diff-avi-joined-with-itself.avi"),
                                 8500 - 250);
}

/* A cut fragmented file plays to the first sample missing from it in decode order over
   every track, which the per-track walk cannot reproduce: the oracle measures it. */
static void test_cut_off_fragmented_mp4_is_unproven(void **state)
{
    (void)state;
    int cuts[] = {10, 50, 90};
    for (int i = 0; i < 3; i++) {
        char name[64];
        snprintf(name, sizeof(name), "cut-frag-%d.mp4", cuts[i]);
        struct walked w;
        walk_run(&w, cut_copy(gsidx, name, cuts[i]), cm__mp4_walk);
        assert_int_equal(w.res, CM__WALK_UNPROVEN);
        assert_int_equal(w.truncated, 1);
        walk_close(&w);
    }
}

/* Flips bytes all over the fragments: any answer but a crash, and a proven one is sane. */
static void test_mutated_fragments_never_crash(void **state)
{
    (void)state;
    size_t len;
    uint8_t *orig = read_all(gsidx, &len);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    struct box b[4096];
    int n = top_boxes(orig, len, b, 4096);
    uint32_t seed = 12345;
    int proven = 0, unproven = 0;
    for (int round = 0; round < 60; round++) {
        memcpy(buf, orig, len);
        for (int k = 0; k < 8; k++) {
            seed = seed * 1103515245u + 12345u;
            const struct box *m = &b[(seed >> 8) % (uint32_t)n];
            seed = seed * 1103515245u + 12345u;
            int64_t at = m->off + (int64_t)((seed >> 8) % (uint32_t)FFMIN(m->size, 256));
            buf[at] = (uint8_t)(seed >> 3);
        }
        const char *f = tmp_path("mutated.mp4");
        write_all(f, buf, len);
        struct walked w;
        if (walk_open(&w, f) == 0) {
            int res =
                cm__mp4_walk(&w.in, w.fc, w.billed, w.spans, &w.truncated, w.why, sizeof(w.why));
            assert_true(res == CM__WALK_PROVEN || res == CM__WALK_UNPROVEN);
            proven += res == CM__WALK_PROVEN;
            unproven += res == CM__WALK_UNPROVEN;
            for (unsigned i = 0; res == CM__WALK_PROVEN && i < w.fc->nb_streams; i++)
                assert_true(!w.spans[i].set || w.spans[i].end >= w.spans[i].start);
        }
        walk_close(&w);
    }
    /* the seed is fixed: both outcomes occur, so neither check above is idle */
    assert_true(unproven > 0 && proven > 0);
    free(orig);
    free(buf);
}

static int64_t late_clock(void *user)
{
    (void)user;
    return INT64_MAX / 2;
}

static void test_walk_past_the_deadline_times_out(void **state)
{
    (void)state;
    const char *files[] = {gsidx, sample("exact-3m00.avi")};
    walk_fn fns[] = {cm__mp4_walk, cm__avi_walk};
    for (int i = 0; i < 2; i++) {
        struct walked w;
        assert_int_equal(walk_open(&w, files[i]), 0);
        w.opt.clock_ms = late_clock;
        int res = fns[i](&w.in, w.fc, w.billed, w.spans, &w.truncated, w.why, sizeof(w.why));
        assert_int_equal(res, CM_PROBE_E_TIMEOUT);
        walk_close(&w);
    }
}

/* --- AVI --- */
static int64_t avi_find(const uint8_t *buf, size_t len, const char *tag)
{
    for (size_t i = 0; i + 4 <= len; i++)
        if (memcmp(buf + i, tag, 4) == 0)
            return (int64_t)i;
    fail_msg("no %s", tag);
    return -1;
}

static void rename_idx1(uint8_t **buf, size_t *len)
{
    int64_t i = avi_find(*buf, *len, "idx1");
    memcpy(*buf + i, "xdx1", 4);
}

/* idx1 removed: the file ends with the movi list. */
static void drop_idx1(uint8_t **buf, size_t *len)
{
    int64_t i = avi_find(*buf, *len, "idx1");
    put_le32(*buf + 4, (uint32_t)(i - 8));
    *len = (size_t)i;
}

/* idx1 keeps its first 100 entries; the rest becomes JUNK. */
static void partial_idx1(uint8_t **buf, size_t *len)
{
    int64_t i = avi_find(*buf, *len, "idx1");
    uint32_t size = cm__rl32(*buf + i + 4), keep = 100 * 16;
    put_le32(*buf + i + 4, keep);
    uint8_t *j = *buf + i + 8 + keep;
    memcpy(j, "JUNK", 4);
    put_le32(j + 4, size - keep - 8);
}

static void test_avi_without_a_complete_idx1_bills_every_chunk(void **state)
{
    (void)state;
    double whole = expect_proven(sample("exact-3m00.avi"), cm__avi_walk, 0);
    assert_seconds(whole, 180.0);
    assert_true(expect_proven(edited(sample("exact-3m00.avi"), "no-idx1.avi", drop_idx1),
                              cm__avi_walk, 0) == whole);
    assert_true(expect_proven(edited(sample("exact-3m00.avi"), "part-idx1.avi", partial_idx1),
                              cm__avi_walk, 0) == whole);
}

/* A renamed idx1 is an unknown chunk full of chunk ids with small sizes: the demuxer,
   resynchronising through it, plays each entry as a frame. The walk does not guess
   what the demuxer makes of it. */
/* The 40th chunk of the movi list claims more bytes than the file has left. */
static void chunk_size_past_the_end(uint8_t **buf, size_t *len)
{
    int64_t at = avi_find(*buf, *len, "movi") + 4;
    for (int k = 0; k < 40; k++)
        at += 8 + cm__rl32(*buf + at + 4) + (cm__rl32(*buf + at + 4) & 1);
    memcpy(*buf + at + 4, "\xf0\xff\xff\x7f", 4);
}

/* The 40th chunk's type letters are not a chunk type. */
static void chunk_type_unknown(uint8_t **buf, size_t *len)
{
    int64_t at = avi_find(*buf, *len, "movi") + 4;
    for (int k = 0; k < 40; k++)
        at += 8 + cm__rl32(*buf + at + 4) + (cm__rl32(*buf + at + 4) & 1);
    memcpy(*buf + at + 2, "zz", 2);
}

/* The 40th chunk's size grows over the next 20 chunks, landing on the 61st: the walk
   would skip them, but idx1 still names them and the demuxer plays them. */
static void chunk_swallows_twenty(uint8_t **buf, size_t *len)
{
    int64_t at = avi_find(*buf, *len, "movi") + 4;
    for (int k = 0; k < 40; k++)
        at += 8 + cm__rl32(*buf + at + 4) + (cm__rl32(*buf + at + 4) & 1);
    uint32_t size = cm__rl32(*buf + at + 4) + (cm__rl32(*buf + at + 4) & 1);
    int64_t next = at + 8 + size;
    for (int k = 0; k < 20; k++) {
        uint32_t s = cm__rl32(*buf + next + 4);
        next += 8 + s + (s & 1);
    }
    put_le32(*buf + at + 4, (uint32_t)(next - at - 8));
}

static void test_avi_chunks_hidden_from_the_walk_are_unproven(void **state)
{
    (void)state;
    const char *src = sample("exact-3m00.avi");
    expect_unproven(edited(src, "renamed-idx1.avi", rename_idx1), cm__avi_walk);
    expect_unproven(edited(src, "size-past-end.avi", chunk_size_past_the_end), cm__avi_walk);
    expect_unproven(edited(src, "type-unknown.avi", chunk_type_unknown), cm__avi_walk);
    expect_unproven(edited(src, "swallowing.avi", chunk_swallows_twenty), cm__avi_walk);
}

/* The n-th (from 1) tag in buf. */
static int64_t avi_find_nth(const uint8_t *buf, size_t len, const char *tag, int n)
{
    int64_t at = -1;
    for (int k = 0; k < n; k++) {
        at++;
        at += avi_find(buf + at, len - (size_t)at, tag);
    }
    return at;
}

/* The padding at the end of hdrl (the third JUNK: one per strl before it) becomes a
   zero-size LIST 'strl' and a shorter JUNK after it, as in the fuzzer's finding. */
static void hdrl_zero_size_list(uint8_t **buf, size_t *len)
{
    int64_t j = avi_find_nth(*buf, *len, "JUNK", 3);
    uint32_t size = cm__rl32(*buf + j + 4);
    memcpy(*buf + j, "LIST\0\0\0\0strlJUNK", 16);
    put_le32(*buf + j + 16, size - 12);
}

/* The first stream's padding runs 100 bytes past the end of its strl list. */
static void hdrl_chunk_past_its_list(uint8_t **buf, size_t *len)
{
    int64_t j = avi_find_nth(*buf, *len, "JUNK", 1);
    put_le32(*buf + j + 4, cm__rl32(*buf + j + 4) + 100);
}

/* Where the vprp chunk was expected, bytes that name no chunk. */
static void hdrl_garbage_chunk(uint8_t **buf, size_t *len)
{
    memcpy(*buf + avi_find(*buf, *len, "vprp"), "\1\2\3\4", 4);
}

/* The padding between the headers and movi claims 2 MB: libavformat's header reader
   stops there and takes everything after it for media. */
static void header_chunk_claims_megabytes(uint8_t **buf, size_t *len)
{
    int64_t j = avi_find_nth(*buf, *len, "JUNK", 4);
    put_le32(*buf + j + 4, 2000000);
}

static void expect_unproven_because(const char *path, walk_fn fn, const char *because)
{
    struct walked w;
    walk_run(&w, path, fn);
    if (w.res != CM__WALK_UNPROVEN || !strstr(w.why, because))
        fail_msg("%s: expected unproven because %s, got %d: %s", path, because, w.res, w.why);
    walk_close(&w);
}

/* The demuxer reads the headers chunk after chunk, whatever the lists say (a zero-size
   LIST still has its type read, a chunk over 1,000,000 bytes ends the headers there and
   the rest is resynchronised through as media), so where the headers are not chunks
   that tile their lists the walk cannot know what it read: the oracle answers. */
static void test_avi_walk_malformed_hdrl_is_unproven(void **state)
{
    (void)state;
    const char *src = sample("exact-3m00.avi");
    expect_unproven_because(edited(src, "hdrl-list0.avi", hdrl_zero_size_list), cm__avi_walk,
                            "is too short");
    expect_unproven_because(edited(src, "hdrl-past.avi", hdrl_chunk_past_its_list), cm__avi_walk,
                            "runs past its list");
    expect_unproven_because(edited(src, "hdrl-garbage.avi", hdrl_garbage_chunk), cm__avi_walk,
                            "are not a chunk");
    expect_unproven_because(edited(src, "hdr-huge.avi", header_chunk_claims_megabytes),
                            cm__avi_walk, "the demuxer takes what follows for media");
}

/* Found by fuzz_probe_diff (tests/fuzz/crashers/probe_diff-avi-hdrl-zero-size-list.avi): in
   hdrl, padding claiming 4 GB inside a strl and a zero-size LIST after it. libavformat
   ends its headers at the padding and plays 34.8 s through resynchronisation; the walk,
   reading the lists as lists, proved 0.2 s. It is now unproven and the oracle bills. */
static void test_avi_with_malformed_hdrl_bills_what_the_oracle_bills(void **state)
{
    (void)state;
    const char *f = sample("../tests/fuzz/crashers/probe_diff-avi-hdrl-zero-size-list.avi");
    expect_unproven(f, cm__avi_walk);
    expect_oracle_bills_at_least(f, 34800 - 250);
}

/* idx1 claims more bytes than the file has (the RIFF says the file is whole). */
static void idx1_past_the_end(uint8_t **buf, size_t *len)
{
    put_le32(*buf + avi_find(*buf, *len, "idx1") + 4, 0xf0000000u);
}

/* libavformat takes no chunk for one (not even idx1 or JUNK, which it skips whole) whose
   size runs past the end of the file as it sees it (the file's size, or the RIFF's end
   when the file is cut off before it): it resynchronises inside and plays what it finds
   there. */
static void test_avi_chunk_past_the_end_of_a_whole_file_is_unproven(void **state)
{
    (void)state;
    expect_unproven_because(edited(sample("exact-3m00.avi"), "idx1-past.avi", idx1_past_the_end),
                            cm__avi_walk, "claims more bytes than the file has");
}

/* Found by fuzz_probe_diff (tests/fuzz/crashers/probe_diff-avi-idx1-past-file-end.avi): a
   small AVI whose movi list holds an idx1 claiming 3 GB, followed by other bytes. The walk
   skipped the idx1 as the demuxer skips one and took the file as cut off (72 ms); the
   demuxer resynchronised inside it and played 3.5 s. */
static void test_avi_with_idx1_past_the_end_bills_what_the_oracle_bills(void **state)
{
    (void)state;
    const char *f = sample("../tests/fuzz/crashers/probe_diff-avi-idx1-past-file-end.avi");
    expect_unproven(f, cm__avi_walk);
    expect_oracle_bills_at_least(f, 3500 - 250);
}

/* An OpenDML part: RIFF AVIX with a second movi list (a copy of the first's chunks), as
   muxers write past 1 GB. */
static void add_avix_part(uint8_t **buf, size_t *len)
{
    int64_t movi = avi_find(*buf, *len, "movi");
    uint32_t list = cm__rl32(*buf + movi - 4); /* 'movi' + chunks */
    size_t add = 12 + 8 + list;
    *buf = realloc(*buf, *len + add);
    assert_non_null(*buf);
    uint8_t *p = *buf + *len;
    uint32_t riff = (uint32_t)(add - 8), lsize = list;
    memcpy(p, "RIFF", 4);
    p[4] = (uint8_t)riff, p[5] = (uint8_t)(riff >> 8), p[6] = (uint8_t)(riff >> 16),
    p[7] = (uint8_t)(riff >> 24);
    memcpy(p + 8, "AVIXLIST", 8);
    p[16] = (uint8_t)lsize, p[17] = (uint8_t)(lsize >> 8), p[18] = (uint8_t)(lsize >> 16),
    p[19] = (uint8_t)(lsize >> 24);
    memcpy(p + 20, *buf + movi, list);
    *len += add;
}

/* The same, with the copy in a list of an unknown type: the demuxer plays the chunks
   it finds anywhere after the media starts, so the walk counts them too. */
static void add_hidden_list(uint8_t **buf, size_t *len)
{
    add_avix_part(buf, len);
    int64_t at = avi_find(*buf, *len, "AVIX");
    memcpy(*buf + at + 12, "zzzz", 4); /* the list type after AVIX LIST <size> */
}

static void append_garbage(uint8_t **buf, size_t *len)
{
    size_t add = 200 << 10;
    *buf = realloc(*buf, *len + add);
    assert_non_null(*buf);
    memset(*buf + *len, 0x5a, add);
    *len += add;
}

static void test_avi_opendml_avix_parts_are_walked(void **state)
{
    (void)state;
    double one = expect_proven(sample("exact-3m00.avi"), cm__avi_walk, 0);
    double two =
        expect_proven(edited(sample("exact-3m00.avi"), "avix.avi", add_avix_part), cm__avi_walk, 0);
    assert_seconds(two, 2 * one);
    double hidden = expect_proven(edited(sample("exact-3m00.avi"), "hidden.avi", add_hidden_list),
                                  cm__avi_walk, 0);
    assert_seconds(hidden, 2 * one);
}

static void test_cut_off_avi_bills_its_whole_chunks_and_says_truncated(void **state)
{
    (void)state;
    int cuts[] = {10, 50, 90};
    for (int i = 0; i < 3; i++) {
        double s = expect_cut_proven(sample("exact-3m00.avi"), cuts[i], cm__avi_walk);
        assert_true(s > 180.0 * cuts[i] / 100 - 20 && s < 180.25);
    }
}

static void test_avi_audio_counts_bytes_blocks_or_frames_as_the_demuxer_does(void **state)
{
    (void)state;
    assert_seconds(expect_proven(pcm_avi, cm__avi_walk, 0), 60.0);
    assert_seconds(expect_proven(vbr_avi, cm__avi_walk, 0), 60.0);
}

/* The audio chunks are relabelled as a stream that does not exist. */
static void orphan_audio_chunks(uint8_t **buf, size_t *len)
{
    int64_t movi = avi_find(*buf, *len, "movi"), idx = avi_find(*buf, *len, "idx1");
    for (int64_t i = movi; i + 4 <= idx; i++)
        if (memcmp(*buf + i, "01wb", 4) == 0)
            memcpy(*buf + i, "91wb", 4);
}

static void first_chunk_garbage(uint8_t **buf, size_t *len)
{
    int64_t movi = avi_find(*buf, *len, "movi");
    memcpy(*buf + movi + 4, "\1\2\3\4", 4);
}

static void test_avi_bytes_no_stream_owns_are_unproven(void **state)
{
    (void)state;
    expect_unproven(edited(sample("exact-3m00.avi"), "orphans.avi", orphan_audio_chunks),
                    cm__avi_walk);
    expect_unproven(edited(sample("exact-3m00.avi"), "garbage.avi", first_chunk_garbage),
                    cm__avi_walk);
    expect_unproven(edited(sample("exact-3m00.avi"), "trailing.avi", append_garbage), cm__avi_walk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_non_fragmented_mp4_is_proven_by_its_index),
        cmocka_unit_test(test_fragmented_with_global_sidx_proves_every_fragment),
        cmocka_unit_test(test_every_fragmented_packaging_is_proven_whole),
        cmocka_unit_test(test_dash_and_hls_single_files_are_proven_with_their_last_segment),
        cmocka_unit_test(test_edit_lists_and_b_frames_give_the_presentation_span),
        cmocka_unit_test(test_fragment_time_running_backwards_or_jumping_is_unproven),
        cmocka_unit_test(test_fragment_of_a_track_the_movie_lacks_is_unproven),
        cmocka_unit_test(test_samples_outside_every_mdat_are_unproven),
        cmocka_unit_test(test_mdat_bytes_no_sample_describes_are_unproven),
        cmocka_unit_test(test_garbage_box_header_is_unproven),
        cmocka_unit_test(test_box_running_past_the_end_is_truncation_only_for_mdat),
        cmocka_unit_test(test_cut_off_mp4_bills_the_samples_inside_and_says_truncated),
        cmocka_unit_test(test_cut_off_fragmented_mp4_is_unproven),
        cmocka_unit_test(test_avi_followed_by_another_avi_is_unproven),
        cmocka_unit_test(test_mutated_fragments_never_crash),
        cmocka_unit_test(test_walk_past_the_deadline_times_out),
        cmocka_unit_test(test_avi_without_a_complete_idx1_bills_every_chunk),
        cmocka_unit_test(test_avi_chunks_hidden_from_the_walk_are_unproven),
        cmocka_unit_test(test_avi_opendml_avix_parts_are_walked),
        cmocka_unit_test(test_cut_off_avi_bills_its_whole_chunks_and_says_truncated),
        cmocka_unit_test(test_avi_audio_counts_bytes_blocks_or_frames_as_the_demuxer_does),
        cmocka_unit_test(test_avi_bytes_no_stream_owns_are_unproven),
        cmocka_unit_test(test_avi_walk_malformed_hdrl_is_unproven),
        cmocka_unit_test(test_avi_with_malformed_hdrl_bills_what_the_oracle_bills),
        cmocka_unit_test(test_avi_chunk_past_the_end_of_a_whole_file_is_unproven),
        cmocka_unit_test(test_avi_with_idx1_past_the_end_bills_what_the_oracle_bills),
    };
    av_log_set_level(AV_LOG_QUIET);
    return cmocka_run_group_tests(tests, make_fixtures, remove_fixtures);
}
