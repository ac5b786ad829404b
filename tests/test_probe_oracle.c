/* SPDX-License-Identifier: MIT */
/*
 * The oracle, the Matroska cluster walk, the format policy and the time budget
 * (issue 11): every class of file the sampling fast paths billed wrong bills what it
 * plays, ordinary audio/video formats are accepted, and a large file's time budget
 * grows with its size. Fixtures are the committed samples, byte edits of them, and
 * small files ffmpeg renders at test time.
 */
#include "probe_test_util.h"

#include "probe_measure.h"

#define FF "ffmpeg -hide_banner -loglevel error -nostdin -y "

static cm_probe_report *probe_full(const char *path, int full_scan)
{
    cm_probe_options o;
    cm_probe_options_init(&o);
    o.full_scan = full_scan;
    return probe_with(path, &o);
}

static void expect_ok_in(cm_probe_report *r, int64_t lo, int64_t hi)
{
    if (cm_probe_report_error(r) != CM_PROBE_OK)
        fail_msg("%s refused: %s", cm_probe_report_file(r), cm_probe_report_errmsg(r));
    int64_t ms = cm_probe_report_measured_ms(r);
    if (ms < lo || ms > hi)
        fail_msg("%s measured %lld ms, expected %lld..%lld", cm_probe_report_file(r), (long long)ms,
                 (long long)lo, (long long)hi);
}

/* path is billed lo..hi ms and so many credits. */
static void expect_bills(const char *path, int64_t lo, int64_t hi, int64_t credits)
{
    cm_probe_report *r = probe(path);
    expect_ok_in(r, lo, hi);
    assert_int_equal(cm_probe_report_credits(r), credits);
    cm_probe_report_free(r);
}

/* Writes the edited bytes b (n of them, freed here) to the temp file name and expects the
   oracle (a full packet scan, the fast path proving nothing) to bill lo..hi ms for them.
   Returns the credits billed. */
static int64_t expect_oracle_bills(uint8_t *b, size_t n, const char *name, int64_t lo, int64_t hi)
{
    const char *out = tmp_path(name);
    write_all(out, b, n);
    free(b);
    cm_probe_report *r = probe(out);
    expect_ok_in(r, lo, hi);
    assert_int_equal(cm_probe_report_method(r), CM_PROBE_METHOD_PACKET_SCAN);
    int64_t credits = cm_probe_report_credits(r);
    cm_probe_report_free(r);
    unlink(out);
    return credits;
}

/* Offset of the Timestamp value of the last Cluster of a Matroska file, and its width. */
static size_t last_cluster_timestamp(const uint8_t *b, size_t n, size_t *width)
{
    size_t found = 0;
    for (size_t i = 0; i + 16 < n; i++) {
        if (b[i] != 0x1F || b[i + 1] != 0x43 || b[i + 2] != 0xB6 || b[i + 3] != 0x75)
            continue;
        size_t q = i + 4, len = 1;
        while (len <= 8 && !(b[q] & (0x80 >> (len - 1))))
            len++;
        q += len;
        if (b[q] == 0xBF) /* CRC-32 first */
            q += 2 + (b[q + 1] & 0x7F);
        if (q + 2 < n && b[q] == 0xE7 && (b[q + 1] & 0x80)) {
            *width = b[q + 1] & 0x7F;
            found = q + 2;
        }
    }
    return found;
}

/* The last Cluster of a 3:00 Matroska file moved 16.5 s back in time (4 bytes): the
   walk sees time run backwards and the oracle bills all 3:00, not 2:43.5. */
static void test_mkv_cluster_moved_back_bills_whole_length(void **s)
{
    (void)s;
    size_t n, width = 0;
    uint8_t *b = read_all(sample("exact-3m00.mkv"), &n);
    size_t at = last_cluster_timestamp(b, n, &width);
    assert_true(at > 0 && width >= 1 && width <= 8);
    uint64_t ts = 0;
    for (size_t i = 0; i < width; i++)
        ts = ts << 8 | b[at + i];
    assert_true(ts > 170000);
    ts -= 16500;
    for (size_t i = width; i-- > 0; ts >>= 8)
        b[at + i] = (uint8_t)(ts & 0xFF);
    assert_int_equal(expect_oracle_bills(b, n, "moved-back.mkv", 179000, 181000), 3);
}

/* An intact Matroska file is proven by the cluster walk, and agrees with the oracle. */
static void test_mkv_cluster_walk_agrees_with_oracle(void **s)
{
    (void)s;
    const char *names[] = {"exact-3m00.mkv", "exact-3m00.webm", "long-10m.mkv",
                           "streamed-90s.webm"};
    for (int i = 0; i < 4; i++) {
        cm_probe_report *w = probe(sample(names[i]));
        cm_probe_report *o = probe_full(sample(names[i]), 1);
        assert_int_equal(cm_probe_report_method(w), CM_PROBE_METHOD_STRUCTURE_WALK);
        assert_int_equal(cm_probe_report_method(o), CM_PROBE_METHOD_PACKET_SCAN);
        int64_t a = cm_probe_report_measured_ms(w), b = cm_probe_report_measured_ms(o);
        int64_t tol = b / 100 > 250 ? b / 100 : 250;
        if (a < b - tol || a > b + tol)
            fail_msg("%s: walk %lld ms, oracle %lld ms", names[i], (long long)a, (long long)b);
        cm_probe_report_free(w);
        cm_probe_report_free(o);
    }
}

/* Walk and oracle agree on f within max(250 ms, 1 %), and the walk answered. Returns
   the walk's measure. */
static int64_t expect_walk_is_oracle(const char *f)
{
    cm_probe_report *w = probe(f);
    cm_probe_report *o = probe_full(f, 1);
    if (cm_probe_report_error(w) != CM_PROBE_OK || cm_probe_report_error(o) != CM_PROBE_OK)
        fail_msg("%s refused: %s / %s", f, cm_probe_report_errmsg(w), cm_probe_report_errmsg(o));
    assert_int_equal(cm_probe_report_method(w), CM_PROBE_METHOD_STRUCTURE_WALK);
    int64_t a = cm_probe_report_measured_ms(w), b = cm_probe_report_measured_ms(o);
    int64_t tol = b / 100 > 250 ? b / 100 : 250;
    if (a < b - tol || a > b + tol)
        fail_msg("%s: walk %lld ms, oracle %lld ms", f, (long long)a, (long long)b);
    cm_probe_report_free(w);
    cm_probe_report_free(o);
    return a;
}

/* Found by fuzz_probe_diff (tests/fuzz/crashers/probe_diff-mkv-block-timestamp-back.mkv):
   a Block's relative timestamp moved back inside its Cluster starts a piece in the
   oracle; the walk, which read only Cluster timestamps, billed 180.0 s for 182.7 s. The
   walk now reads every Block's timestamp and bills what the oracle bills. */
static void test_mkv_block_moved_back_bills_what_oracle_bills(void **s)
{
    (void)s;
    int64_t ms = expect_walk_is_oracle(
        sample("../tests/fuzz/crashers/probe_diff-mkv-block-timestamp-back.mkv"));
    assert_true(ms > 182000);
}

/* The probe's answer for f bills at least what the oracle does (less 250 ms); returns
   the oracle's measurement and, through fast_method, the method the probe used. */
static int64_t expect_probe_bills_what_oracle_bills(const char *f, int *fast_method)
{
    cm_probe_report *w = probe(f);
    cm_probe_report *o = probe_full(f, 1);
    assert_int_equal(cm_probe_report_error(w), CM_PROBE_OK);
    assert_int_equal(cm_probe_report_error(o), CM_PROBE_OK);
    int64_t a = cm_probe_report_measured_ms(w), b = cm_probe_report_measured_ms(o);
    if (a < b - 250)
        fail_msg("walk %lld ms, oracle %lld ms", (long long)a, (long long)b);
    if (fast_method)
        *fast_method = (int)cm_probe_report_method(w);
    cm_probe_report_free(w);
    cm_probe_report_free(o);
    return b;
}

/* Found by fuzz_probe_diff (tests/fuzz/crashers/probe_diff-mkv-block-past-cut-cluster.mkv):
   in a cut-off last Cluster, a block claims to run past the Cluster's declared end.
   libavformat reports the error, finds a Cluster in the bytes the block claimed and plays
   it (24.8 s); the walk took the block as cut off by the end of the file (23.8 s). Such a
   block now leaves the answer to the oracle. */
static void test_mkv_block_past_its_cluster_in_cut_file_bills_what_oracle_bills(void **s)
{
    (void)s;
    const char *f = sample("../tests/fuzz/crashers/probe_diff-mkv-block-past-cut-cluster.mkv");
    expect_probe_bills_what_oracle_bills(f, NULL);
}

/* Found by fuzz_probe_diff (tests/fuzz/crashers/probe_diff-mkv-damage-in-cut-cluster.mkv):
   in a cut-off last Cluster, 736 bytes before the end, a byte that starts no element.
   libavformat reports it, resynchronises on the next Cluster and plays 35.2 s; the walk
   took it for the end of the file inside a header (4.0 s). Only fewer bytes than a header
   holds end a cut Cluster now; damage leaves the answer to the oracle. */
static void test_mkv_damage_in_cut_cluster_bills_what_oracle_bills(void **s)
{
    (void)s;
    const char *f = sample("../tests/fuzz/crashers/probe_diff-mkv-damage-in-cut-cluster.mkv");
    int method;
    assert_true(expect_probe_bills_what_oracle_bills(f, &method) > 35000);
    assert_int_not_equal(method, CM_PROBE_METHOD_STRUCTURE_WALK);
}

/* An EBML variable-length integer at b[i] (IDs keep their marker): its length, or 0. */
static size_t ebml_vint(const uint8_t *b, size_t n, size_t i, int keep, uint64_t *v)
{
    if (i >= n || b[i] == 0)
        return 0;
    size_t len = 1;
    while (!(b[i] & (0x80 >> (len - 1))))
        len++;
    if (i + len > n)
        return 0;
    *v = keep ? b[i] : (uint64_t)(b[i] & (0xFF >> len));
    for (size_t k = 1; k < len; k++)
        *v = *v << 8 | b[i + k];
    return len;
}

/* One element at b[i]: its ID, where its data starts and its end. 0 when unreadable. */
static int ebml_element(const uint8_t *b, size_t n, size_t i, uint64_t *id, size_t *data,
                        size_t *end)
{
    uint64_t size;
    size_t il = ebml_vint(b, n, i, 1, id), sl = il ? ebml_vint(b, n, i + il, 0, &size) : 0;
    if (!il || !sl)
        return 0;
    *data = i + il + sl;
    *end = size > n - *data ? n : *data + (size_t)size;
    return 1;
}

/* The relative timestamp of the Block whose body starts at b[i] scaled by stretch (or,
   stretch 0, the largest |relative timestamp| stored in *max). */
static void retime_block(uint8_t *b, size_t n, size_t i, int stretch, int *max)
{
    uint64_t track;
    size_t tl = ebml_vint(b, n, i, 0, &track);
    assert_true(tl > 0 && i + tl + 2 <= n);
    int rel = (int16_t)((uint16_t)b[i + tl] << 8 | b[i + tl + 1]);
    if (stretch == 0) {
        *max = abs(rel) > *max ? abs(rel) : *max;
        return;
    }
    rel *= stretch;
    assert_true(rel >= INT16_MIN && rel <= INT16_MAX);
    b[i + tl] = (uint8_t)((uint16_t)rel >> 8);
    b[i + tl + 1] = (uint8_t)((uint16_t)rel & 0xFF);
}

/* Rewrites a Matroska file's times in place: the k-th Cluster's Timestamp becomes
   k x step and every block's relative timestamp is multiplied by stretch (stretch 0:
   only measures the largest one into *max). Returns the number of Clusters. */
static int retime_clusters(uint8_t *b, size_t n, uint64_t step, int stretch, int *max)
{
    uint64_t id;
    size_t data, end, i = 0;
    assert_true(ebml_element(b, n, 0, &id, &data, &end) && id == 0x1A45DFA3);
    assert_true(ebml_element(b, n, end, &id, &data, &end) && id == 0x18538067);
    int clusters = 0;
    for (i = data; i < end;) {
        size_t cdata, cend;
        assert_true(ebml_element(b, n, i, &id, &cdata, &cend));
        if (id == 0x1F43B675) {
            for (size_t c = cdata; c < cend;) {
                uint64_t kid;
                size_t kdata, kend;
                assert_true(ebml_element(b, n, c, &kid, &kdata, &kend));
                if (kid == 0xE7 && stretch != 0) {
                    uint64_t ts = (uint64_t)clusters * step;
                    for (size_t k = kend; k-- > kdata; ts >>= 8)
                        b[k] = (uint8_t)(ts & 0xFF);
                    assert_true(ts == 0); /* the new time fits the element's width */
                } else if (kid == 0xA3) {
                    retime_block(b, n, kdata, stretch, max);
                } else if (kid == 0xA0) {
                    for (size_t g = kdata; g < kend;) {
                        uint64_t gid;
                        size_t gdata, gend;
                        assert_true(ebml_element(b, n, g, &gid, &gdata, &gend));
                        if (gid == 0xA1)
                            retime_block(b, n, gdata, stretch, max);
                        g = gend;
                    }
                }
                c = kend;
            }
            clusters++;
        }
        i = cend;
    }
    return clusters;
}

/* Clusters 1 s apart whose blocks each span ~30 s (relative timestamps stretched): the
   content overlaps itself in time. The Cluster timestamps run on evenly, but the
   oracle sees every block and sums the pieces; the walk, which reads every block too,
   bills the same, far more than the Clusters' span. */
static void test_mkv_clusters_overlapping_through_block_offsets_bill_what_oracle_bills(void **s)
{
    (void)s;
    size_t n;
    uint8_t *b = read_all(sample("exact-3m00.mkv"), &n);
    int max = 0;
    int clusters = retime_clusters(b, n, 1000, 0, &max);
    assert_true(clusters >= 10 && max > 0);
    int stretch = 30000 / max;
    assert_true(stretch >= 2);
    assert_int_equal(retime_clusters(b, n, 1000, stretch, &max), clusters);
    const char *out = tmp_path("overlapping-clusters.mkv");
    write_all(out, b, n);
    free(b);
    int64_t ms = expect_walk_is_oracle(out);
    int64_t span = (int64_t)clusters * 1000 + 30000; /* what the Cluster span would bill */
    if (ms < 2 * span)
        fail_msg("overlapping clusters billed %lld ms, their span is %lld ms", (long long)ms,
                 (long long)span);
    unlink(out);
}

/* A long light piece followed by a short heavy one (cat): every piece is billed, for
   TS, FLV and Matroska alike, however the bytes are distributed. */
static void test_light_piece_then_heavy_piece_bills_both(void **s)
{
    (void)s;
    const char *exts[] = {"ts", "flv", "mkv"};
    char heavy[1024]; /* tmp_path's buffers are reused: keep a copy */
    snprintf(heavy, sizeof(heavy), "%s", tmp_path("heavy.mp4"));
    assert_int_equal(run_cmd(FF "-f lavfi -i testsrc2=size=160x120:rate=25:duration=8 -f lavfi "
                                "-i sine=duration=8 -vf noise=alls=40:allf=t -c:v libx264 "
                                "-preset ultrafast -b:v 4M -g 50 -c:a aac -shortest '%s'",
                             heavy),
                     0);
    for (int i = 0; i < 3; i++) {
        char h[64], j[64];
        snprintf(h, sizeof(h), "heavy.%s", exts[i]);
        snprintf(j, sizeof(j), "joined.%s", exts[i]);
        char hp[1024];
        snprintf(hp, sizeof(hp), "%s", tmp_path(h));
        char jp[1024];
        snprintf(jp, sizeof(jp), "%s", tmp_path(j));
        assert_int_equal(run_cmd(FF "-i '%s' -c copy '%s'", heavy, hp), 0);
        char src[32];
        snprintf(src, sizeof(src), "exact-3m00.%s", exts[i]);
        assert_int_equal(run_cmd("cat '%s' '%s' > '%s'", sample(src), hp, jp), 0);
        expect_bills(jp, 187000, 189500, 4);
        unlink(hp);
        unlink(jp);
    }
    unlink(heavy);
}

/* Two TS recordings whose clocks are an hour (or 25 hours) apart play one after the
   other: the gap between their clocks is no playing time, and is never too_long. */
static void test_ts_recordings_far_apart_bill_their_playing_time(void **s)
{
    (void)s;
    const int64_t offsets[] = {3600, 90000};
    for (int i = 0; i < 2; i++) {
        const char *later = tmp_path("later.ts");
        char out[1024];
        snprintf(out, sizeof(out), "%s", tmp_path("apart.ts"));
        assert_int_equal(run_cmd(FF "-i '%s' -c copy -output_ts_offset %lld '%s'",
                                 sample("exact-3m00.ts"), (long long)offsets[i], later),
                         0);
        assert_int_equal(run_cmd("cat '%s' '%s' > '%s'", sample("exact-3m00.ts"), later, out), 0);
        expect_bills(out, 359500, 361500, 6);
        unlink(later);
        unlink(out);
    }
}

/* m2ts (192-byte packets) with AAC that libavformat first reports as a data stream:
   billed, with video and alone. */
static void test_m2ts_audio_first_seen_as_data_is_billed(void **s)
{
    (void)s;
    const char *av = tmp_path("av.m2ts");
    const char *a = tmp_path("a.m2ts");
    assert_int_equal(run_cmd(FF "-i '%s' -c copy '%s'", sample("exact-3m00.mp4"), av), 0);
    assert_int_equal(run_cmd(FF "-i '%s' -vn -c copy '%s'", sample("exact-3m00.mp4"), a), 0);
    cm_probe_report *r = probe(av);
    expect_ok_in(r, 179500, 180600);
    cm_probe_report_free(r);
    r = probe(a);
    expect_ok_in(r, 179500, 180600);
    assert_int_equal(cm_probe_report_has_video(r), 0);
    assert_int_equal(cm_probe_report_stream_kind(r, 0), CM_PROBE_STREAM_AUDIO);
    cm_probe_report_free(r);
    unlink(av);
    unlink(a);
}

/* Ordinary audio/video formats that were refused: each 3 s file bills 3 s. */
static void test_ordinary_formats_are_accepted_and_measured(void **s)
{
    (void)s;
    static const struct {
        const char *ext, *args;
    } F[] = {
        {"aac", "-f lavfi -i sine=duration=3 -c:a aac"},
        {"ac3", "-f lavfi -i sine=duration=3 -c:a ac3"},
        {"eac3", "-f lavfi -i sine=duration=3 -c:a eac3"},
        {"wv", "-f lavfi -i sine=duration=3 -c:a wavpack"},
        {"tta", "-f lavfi -i sine=duration=3 -c:a tta"},
        {"au", "-f lavfi -i sine=duration=3 -c:a pcm_s16be"},
        {"dv", "-f lavfi -i testsrc=size=720x576:rate=25:duration=3 -f lavfi -i "
               "sine=duration=3:sample_rate=48000 -c:v dvvideo -pix_fmt yuv420p -c:a pcm_s16le "
               "-ac 2 -shortest"},
        {"nut", "-f lavfi -i testsrc=size=160x120:rate=25:duration=3 -c:v mpeg4"},
        {"ivf", "-f lavfi -i testsrc=size=160x120:rate=25:duration=3 -c:v libvpx -b:v 100k"},
        {"rm", "-f lavfi -i testsrc=size=176x144:rate=25:duration=3 -f lavfi -i sine=duration=3 "
               "-c:v rv10 -c:a ac3 -shortest"},
    };
    for (size_t i = 0; i < sizeof(F) / sizeof(F[0]); i++) {
        char name[32];
        snprintf(name, sizeof(name), "six.%s", F[i].ext);
        const char *out = tmp_path(name);
        assert_int_equal(run_cmd(FF "%s '%s'", F[i].args, out), 0);
        cm_probe_report *r = probe(out);
        expect_ok_in(r, 2800, 3300);
        assert_int_equal(cm_probe_report_credits(r), 1);
        assert_int_equal(cm_probe_report_method(r), CM_PROBE_METHOD_PACKET_SCAN);
        cm_probe_report_free(r);
        unlink(out);
    }
}

/* Raw H.264 stays refused, and the message says what it is instead of blaming links. */
static void test_refused_format_message_names_the_kind(void **s)
{
    (void)s;
    const char *out = tmp_path("raw.h264");
    assert_int_equal(run_cmd(FF "-f lavfi -i testsrc=size=160x120:rate=25:duration=2 -c:v libx264 "
                                "-f h264 '%s'",
                             out),
                     0);
    cm_probe_report *r = probe(out);
    assert_int_equal(cm_probe_report_error(r), CM_PROBE_E_REFUSED);
    assert_non_null(strstr(cm_probe_report_errmsg(r), "raw H.264 video stream"));
    assert_null(strstr(cm_probe_report_errmsg(r), "point at other files"));
    cm_probe_report_free(r);
    unlink(out);
    assert_string_equal(cm__refused_kind("hls"), "a playlist, which points at other files");
    assert_string_equal(cm__refused_kind("apng"), "an animated picture");
}

/* libavformat's format_whitelist is derived from the ALLOWED table: every allowed
   demuxer's name is in it and every name in it is an allowed demuxer's. */
static void test_format_whitelist_is_the_allowed_table(void **s)
{
    (void)s;
    const char *wl = cm__format_whitelist();
    assert_true(strlen(wl) > 0);
    assert_ptr_equal(wl, cm__format_whitelist()); /* built once */
    const AVInputFormat *f;
    void *it = NULL;
    int allowed = 0;
    while ((f = av_demuxer_iterate(&it))) {
        if (!cm__find_allowed(f->name))
            continue;
        allowed++;
        /* every comma-separated part of the demuxer's name is a whole token of wl */
        for (const char *tok = f->name; *tok;) {
            size_t len = strcspn(tok, ",");
            int found = 0;
            for (const char *p = wl; *p; p++)
                if ((p == wl || p[-1] == ',') && strncmp(p, tok, len) == 0 &&
                    (p[len] == ',' || p[len] == '\0'))
                    found = 1;
            if (!found)
                fail_msg("%.*s is allowed but not in the whitelist", (int)len, tok);
            tok += len + (tok[len] == ',');
        }
    }
    assert_true(allowed >= 30);
    assert_null(cm__find_allowed("hls"));
    assert_null(cm__find_allowed("concat"));
    assert_null(strstr(wl, "hls"));
    assert_null(strstr(wl, "concat"));
}

/* The budget grows by one ms per CM_PROBE_BUDGET_BYTES_PER_MS bytes: an 8 GB file
   gets 10 s + 164 s. */
static void test_time_budget_grows_with_file_size(void **s)
{
    (void)s;
    cm_probe *p = NULL;
    assert_int_equal(cm_probe_new(&p, NULL), CM_PROBE_OK);
    assert_int_equal(cm_probe_time_budget_ms(p, 0), 10000);
    assert_int_equal(cm_probe_time_budget_ms(p, -5), 10000);
    assert_int_equal(cm_probe_time_budget_ms(p, 8200000000LL), 10000 + 164000);
    assert_true(cm_probe_time_budget_ms(p, INT64_MAX) > 0);
    assert_int_equal(cm_probe_time_budget_ms(NULL, 1), -1);
    cm_probe_free(p);
}

/* The injected clock: the first look starts the budget; every later look is `late` ms
   after it. */
static int64_t clock_late;
static int clock_calls;
static int64_t jumping_clock(void *user)
{
    (void)user;
    return clock_calls++ == 0 ? 1000000 : 1000000 + clock_late;
}

/* With a 1 ms base budget, a probe whose clock reads beyond the base but within the
   size-scaled part is measured; beyond both, it times out and says the whole budget. */
static void test_large_file_is_not_refused_within_size_scaled_budget(void **s)
{
    (void)s;
    const char *path = sample("exact-3m00.ts");
    cm_probe_options o;
    cm_probe_options_init(&o);
    o.time_budget_ms = 1;
    o.clock_ms = jumping_clock;
    cm_probe *p = NULL;
    assert_int_equal(cm_probe_new(&p, &o), CM_PROBE_OK);
    cm_probe_report *r = NULL;
    assert_int_equal(cm_probe_file(p, path, &r), CM_PROBE_OK);
    int64_t budget = cm_probe_time_budget_ms(p, cm_probe_report_file_bytes(r));
    assert_int_equal(budget, 1 + cm_probe_report_file_bytes(r) / CM_PROBE_BUDGET_BYTES_PER_MS);
    assert_true(budget > 10); /* the sample is about 1 MB */
    cm_probe_report_free(r);

    clock_calls = 0, clock_late = budget; /* at the deadline, not past it */
    assert_int_equal(cm_probe_file(p, path, &r), CM_PROBE_OK);
    expect_ok_in(r, 179500, 180600);
    cm_probe_report_free(r);

    clock_calls = 0, clock_late = budget + 1;
    assert_int_equal(cm_probe_file(p, path, &r), CM_PROBE_E_TIMEOUT);
    char want[64];
    snprintf(want, sizeof(want), "%lld ms", (long long)budget);
    assert_non_null(strstr(cm_probe_report_errmsg(r), want));
    cm_probe_report_free(r);
    cm_probe_free(p);
}

/* B-frames with an edit list (a -c copy cut inside a GOP): billed from the first frame
   presented to the end of the last, by the walk and by the oracle alike. */
static void test_bframes_with_edit_list_bill_presented_span(void **s)
{
    (void)s;
    const char *src = tmp_path("bf.mp4");
    const char *cut = tmp_path("bfcut.mp4");
    assert_int_equal(run_cmd(FF "-f lavfi -i testsrc=size=160x120:rate=25:duration=20 -c:v "
                                "libx264 -preset superfast -bf 3 -g 100 '%s'",
                             src),
                     0);
    assert_int_equal(run_cmd(FF "-ss 1.5 -i '%s' -t 12 -c copy '%s'", src, cut), 0);
    for (int full = 0; full < 2; full++) {
        cm_probe_report *r = probe_full(cut, full);
        expect_ok_in(r, 12000, 12300);
        cm_probe_report_free(r);
    }
    unlink(src);
    unlink(cut);
}

/* Read without parsers, an MPEG audio PES holds several frames (2 s of MP2 in the PS
   sample, 0.384 s of AAC in the TS sample): the last one is billed for what it holds
   (ADTS frame lengths, else its bytes at the rate of the PES before it), not for a whole
   PES interval. ffprobe: audio 1.672-181.896 s in the TS. */
static void test_last_mpeg_audio_pes_bills_what_it_holds(void **s)
{
    (void)s;
    cm_probe_report *r = probe(sample("exact-3m00.ts"));
    expect_ok_in(r, 180200, 180250);
    cm_probe_report_free(r);
    r = probe(sample("exact-3m00.mpg"));
    expect_ok_in(r, 179900, 180150);
    cm_probe_report_free(r);
}

/* The tfdt of the last third of a fragmented MP4's fragments set to 0: the walk cannot
   prove it (time runs backwards) and the oracle bills every fragment, 3:00, although
   libavformat marks the first packet of the overlapping fragments for discarding. */
static void test_fragments_with_tfdt_moved_back_bill_every_fragment(void **s)
{
    (void)s;
    size_t n;
    uint8_t *b = read_all(sample("exact-3m00-frag.mp4"), &n);
    size_t at[256];
    int count = 0;
    for (size_t i = 4; i + 16 < n && count < 256; i++)
        if (memcmp(b + i, "tfdt", 4) == 0)
            at[count++] = i;
    assert_true(count >= 6);
    for (int k = count * 2 / 3; k < count; k++)
        memset(b + at[k] + 8, 0, b[at[k] + 4] == 1 ? 8 : 4);
    expect_oracle_bills(b, n, "tfdt0.mp4", 179500, 181000);
}

/* Found by fuzz_probe_diff (tests/fuzz/crashers/probe_diff-timestamps-near-int64-min.bin):
   timestamps at the edge of int64 overflowed the span's arithmetic (UBSan). A time no
   file can play at counts as no timestamp; the probe answers either way, both ways. */
static void test_absurd_timestamps_do_not_overflow(void **s)
{
    (void)s;
    const char *f = sample("../tests/fuzz/crashers/probe_diff-timestamps-near-int64-min.bin");
    for (int full = 0; full <= 1; full++) {
        cm_probe_report *r = probe_full(f, full);
        assert_non_null(r);
        if (cm_probe_report_error(r) == CM_PROBE_OK)
            assert_true(cm_probe_report_measured_ms(r) >= 0);
        cm_probe_report_free(r);
    }
}

/* The timeline's rescaling (cm__rescale_q, a 64-bit division where libavutil would do
   a 128-bit one) gives exactly what av_rescale_q gives: every time base a container
   uses against microseconds and back, timestamps around every power of two and its
   neighbours, both signs, and the values that take libavutil's other branches. */
static void test_timeline_rescaling_equals_libavutil(void **state)
{
    (void)state;
    const AVRational bases[] = {{1, 90000},   {1, 1000},       {1, 1000000000}, {1, 44100},
                                {1, 48000},   {1001, 30000},   {1, 25},         {1, 1},
                                {1, 1 << 30}, {2147483647, 1}, {1, 2147483647}, {0, 1},
                                {7, 3},       {1, 15360},      {1, 600}};
    const AVRational us = {1, 1000000};
    int64_t values[64 * 6 + 8];
    int n = 0;
    for (int bit = 0; bit < 63; bit++)
        for (int64_t d = -1; d <= 1; d++) {
            int64_t v = (int64_t)((uint64_t)1 << bit) + d;
            values[n++] = v;
            values[n++] = -v;
        }
    values[n++] = 0;
    values[n++] = INT64_MAX;
    values[n++] = -INT64_MAX;
    values[n++] = AV_NOPTS_VALUE;
    values[n++] = INT64_MAX / 4;
    values[n++] = -(INT64_MAX / 4);
    for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++)
        for (int k = 0; k < n; k++) {
            int64_t a = values[k];
            if (cm__rescale_q(a, bases[i], us) != av_rescale_q(a, bases[i], us) ||
                cm__rescale_q(a, us, bases[i]) != av_rescale_q(a, us, bases[i]) ||
                cm__rescale_q(a, bases[i], bases[(i + 1) % 15]) !=
                    av_rescale_q(a, bases[i], bases[(i + 1) % 15]))
                fail_msg("%lld in %d/%d: %lld, libavutil %lld", (long long)a, bases[i].num,
                         bases[i].den, (long long)cm__rescale_q(a, bases[i], us),
                         (long long)av_rescale_q(a, bases[i], us));
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mkv_cluster_moved_back_bills_whole_length),
        cmocka_unit_test(test_mkv_cluster_walk_agrees_with_oracle),
        cmocka_unit_test(test_mkv_block_moved_back_bills_what_oracle_bills),
        cmocka_unit_test(test_mkv_block_past_its_cluster_in_cut_file_bills_what_oracle_bills),
        cmocka_unit_test(test_mkv_damage_in_cut_cluster_bills_what_oracle_bills),
        cmocka_unit_test(
            test_mkv_clusters_overlapping_through_block_offsets_bill_what_oracle_bills),
        cmocka_unit_test(test_light_piece_then_heavy_piece_bills_both),
        cmocka_unit_test(test_ts_recordings_far_apart_bill_their_playing_time),
        cmocka_unit_test(test_m2ts_audio_first_seen_as_data_is_billed),
        cmocka_unit_test(test_ordinary_formats_are_accepted_and_measured),
        cmocka_unit_test(test_refused_format_message_names_the_kind),
        cmocka_unit_test(test_format_whitelist_is_the_allowed_table),
        cmocka_unit_test(test_time_budget_grows_with_file_size),
        cmocka_unit_test(test_large_file_is_not_refused_within_size_scaled_budget),
        cmocka_unit_test(test_bframes_with_edit_list_bill_presented_span),
        cmocka_unit_test(test_last_mpeg_audio_pes_bills_what_it_holds),
        cmocka_unit_test(test_fragments_with_tfdt_moved_back_bill_every_fragment),
        cmocka_unit_test(test_absurd_timestamps_do_not_overflow),
        cmocka_unit_test(test_timeline_rescaling_equals_libavutil),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
