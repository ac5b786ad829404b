/* SPDX-License-Identifier: MIT */
/*
 * probe_mp4.c - the MP4/MOV structure walk: every top-level box, every fragment.
 *
 * The walk reads the header of every top-level box from the first byte to the last
 * (and each moof whole, and moov once when it is small), so nothing in the file is
 * skipped on a sidx's or an index's word. Then it proves the playing time:
 *
 *   non-fragmented  libavformat's sample index, built from moov's tables, must lie in
 *                   the mdat payloads and explain them (bytes no sample owns mean content
 *                   the tables do not describe); its times must not run backwards or jump.
 *   fragmented      libavformat's index is not used past moov (a sidx makes it stop
 *                   reading fragments): each moof's traf/tfhd/tfdt/trun is read here,
 *                   with moov/mvex/trex defaults; each track's tfdt must continue where
 *                   its previous fragment ended, and the truns must explain the mdats.
 *
 * Spans are presentation spans, as a full demux gives them: earliest pts to the latest
 * pts + duration, with moov's ctts or the truns' composition offsets (B-frames, edit
 * lists). A file cut inside its last mdat is *truncated: the samples that start inside
 * it count (the demuxer returns their bytes). Anything else that does not add up is
 * CM__WALK_UNPROVEN with a reason, and the oracle answers.
 */
#include "probe_bytes.h"
#include "probe_walk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/mathematics.h>

#define MOOF_MAX (16 << 20)        /* a moof is a few KB; more is not a fragment */
#define MOOV_MAX (64 << 20)        /* moov read whole for a fragmented file's trex */
#define UNKNOWN_BOX_MAX (64 << 10) /* an unknown top-level box may hold nothing larger */
#define RANGES_MAX (4 << 20)       /* sample byte ranges remembered (16 bytes each) */
#define MDATS_MAX (1 << 20)        /* mdat boxes remembered */
#define BOXES_MAX (4 << 20)        /* top-level boxes walked (2 per fragment) */
#define SLACK_MIN (64 << 10)       /* unattributed mdat bytes tolerated: max(64 KiB, 1 %) */

/* tfhd flags */
#define TFHD_BASE_DATA_OFFSET 0x000001
#define TFHD_STSD_ID 0x000002
#define TFHD_DEFAULT_DURATION 0x000008
#define TFHD_DEFAULT_SIZE 0x000010
#define TFHD_DEFAULT_FLAGS 0x000020
#define TFHD_DEFAULT_BASE_IS_MOOF 0x020000
/* trun flags */
#define TRUN_DATA_OFFSET 0x000001
#define TRUN_FIRST_SAMPLE_FLAGS 0x000004
#define TRUN_SAMPLE_DURATION 0x000100
#define TRUN_SAMPLE_SIZE 0x000200
#define TRUN_SAMPLE_FLAGS 0x000400
#define TRUN_SAMPLE_CTS 0x000800

struct range {
    int64_t lo, hi;
};

struct ranges {
    struct range *v;
    size_t n, cap;
};

/* One stream of the demuxer, as the fragments describe it (times in its time_base,
   which for MP4 is 1/the track's timescale). */
struct mp4_track {
    uint32_t track_id;
    int has_trex;
    uint32_t trex_duration, trex_size;
    int seen;          /* some sample of it was counted */
    int ended;         /* a sample ran past the end of the file */
    int64_t first_dts; /* media decode time of its first sample */
    int64_t pts_min;   /* earliest presentation time of a sample (media time) */
    int64_t shift;     /* largest negative composition offset so far, negated */
    int64_t pts_end;   /* latest presentation end of a sample (media time), or -1 */
    int64_t next_dts;  /* where its next sample starts */
    int64_t max_dur;   /* longest sample seen: the continuity tolerance's unit */
    int64_t min_dur;   /* shortest sample of a positive length seen (0: none) */
    int64_t moov_end;  /* media time at which moov's own samples end (0: none) */
};

struct mp4_walk {
    cm_input *in;
    AVFormatContext *fc;
    const int *billed;
    struct cm__span *spans;
    int truncated;
    char *why;
    size_t whylen;
    struct mp4_track *tracks; /* fc->nb_streams entries */
    struct ranges samples;    /* byte ranges of samples inside the file */
    struct ranges mdats;      /* payloads of mdat boxes, in file order */
    int64_t moov_off, moov_size;
    int moov_count;
    int trex_loaded;
    int64_t first_moof; /* -1: none */
    int64_t nmoof;
    int64_t boxes;
    uint8_t *moov; /* moov's payload, when it was read (small enough) */
    size_t moov_len;
};

/* Sets the reason (w->why) and returns CM__WALK_UNPROVEN. */
#define unproven(w, ...) cm__walk_unproven((w)->why, (w)->whylen, __VA_ARGS__)

/* Appends [lo, hi) (joined to the last range when they touch). Returns 0, or -1 when
   the cap is reached or memory runs out (*nomem says which). */
static int ranges_add(struct ranges *r, int64_t lo, int64_t hi, int *nomem)
{
    if (hi <= lo)
        return 0;
    if (r->n > 0 && r->v[r->n - 1].hi == lo) {
        r->v[r->n - 1].hi = hi;
        return 0;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 256;
        if (cap > RANGES_MAX)
            return -1;
        struct range *v = realloc(r->v, cap * sizeof(*v));
        if (!v) {
            *nomem = 1;
            return -1;
        }
        r->v = v;
        r->cap = cap;
    }
    r->v[r->n].lo = lo;
    r->v[r->n].hi = hi;
    r->n++;
    return 0;
}

static int add_sample_range(struct mp4_walk *w, int64_t lo, int64_t hi)
{
    int nomem = 0;
    if (ranges_add(&w->samples, lo, hi, &nomem) == 0)
        return 0;
    return nomem ? CM_PROBE_E_NOMEM : unproven(w, "more than %d separate sample runs", RANGES_MAX);
}

static int cmp_range(const void *a, const void *b)
{
    const struct range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo ? 1 : (x->hi < y->hi ? -1 : x->hi > y->hi);
}

static int is_box_type(uint32_t t)
{
    for (int i = 0; i < 4; i++) {
        unsigned c = (t >> (24 - 8 * i)) & 0xff;
        if (!(c >= 0x20 && c < 0x7f) && c != 0xa9)
            return 0;
    }
    return 1;
}

static struct mp4_track *track_by_id(struct mp4_walk *w, uint32_t id, int *idx)
{
    for (unsigned i = 0; i < w->fc->nb_streams; i++)
        if (w->tracks[i].track_id == id) {
            *idx = (int)i;
            return &w->tracks[i];
        }
    return NULL;
}

/* A child box inside [p, p + len): its type, payload and length. Returns 0 at the end,
   1 for a box, -1 for a box that does not fit its parent. */
static int next_child(const uint8_t *p, size_t len, size_t *at, uint32_t *type,
                      const uint8_t **body, size_t *body_len)
{
    if (*at >= len)
        return 0;
    size_t left = len - *at;
    if (left < 8)
        return -1;
    const uint8_t *b = p + *at;
    uint64_t size = cm__rb32(b);
    size_t hdr = 8;
    if (size == 1) {
        if (left < 16)
            return -1;
        size = cm__rb64(b + 8);
        hdr = 16;
    } else if (size == 0) {
        size = left;
    }
    if (size < hdr || size > left)
        return -1;
    *type = cm__rb32(b + 4);
    *body = b + hdr;
    *body_len = (size_t)size - hdr;
    *at += (size_t)size;
    return 1;
}

/* Reads moov's payload (once) when it is at most cap bytes: for the composition offsets
   and a fragmented file's defaults (trex). */
static int read_moov(struct mp4_walk *w, int64_t cap)
{
    int64_t hdr = 8;
    uint8_t h[16];
    if (w->moov || w->moov_size > cap || w->moov_size < 16)
        return CM__WALK_PROVEN;
    int64_t got = cm__input_pread(w->in, h, 16, w->moov_off);
    if (got < 0)
        return CM_PROBE_E_TIMEOUT;
    if (got == 16 && cm__rb32(h) == 1)
        hdr = 16;
    w->moov_len = (size_t)(w->moov_size - hdr);
    w->moov = malloc(w->moov_len ? w->moov_len : 1);
    if (!w->moov)
        return CM_PROBE_E_NOMEM;
    got = cm__input_pread(w->in, w->moov, (int64_t)w->moov_len, w->moov_off + hdr);
    if (got < 0)
        return CM_PROBE_E_TIMEOUT;
    if (got != (int64_t)w->moov_len) {
        free(w->moov);
        w->moov = NULL;
    }
    return CM__WALK_PROVEN;
}

/* The defaults (mvex/trex) of a fragmented file's tracks, from moov. */
static int load_trex(struct mp4_walk *w)
{
    if (w->trex_loaded)
        return CM__WALK_PROVEN;
    w->trex_loaded = 1;
    if (w->moov_count == 0)
        return unproven(w, "a movie fragment comes before the movie header (moov)");
    int res = read_moov(w, MOOV_MAX);
    if (res != CM__WALK_PROVEN)
        return res;
    if (!w->moov)
        return unproven(w, "the movie header (moov, %lld bytes) cannot be read whole",
                        (long long)w->moov_size);
    const uint8_t *buf = w->moov;
    size_t at = 0, len = w->moov_len;
    uint32_t type;
    const uint8_t *body;
    size_t blen;
    int k;
    while ((k = next_child(buf, len, &at, &type, &body, &blen)) == 1) {
        if (type != CM__FOURCC('m', 'v', 'e', 'x'))
            continue;
        size_t at2 = 0;
        uint32_t t2;
        const uint8_t *b2;
        size_t l2;
        int k2;
        while ((k2 = next_child(body, blen, &at2, &t2, &b2, &l2)) == 1) {
            if (t2 != CM__FOURCC('t', 'r', 'e', 'x'))
                continue;
            if (l2 < 24) {
                res = unproven(w, "a track extends box (trex) is too short");
                break;
            }
            int idx;
            struct mp4_track *t = track_by_id(w, cm__rb32(b2 + 4), &idx);
            if (!t)
                continue;
            t->has_trex = 1;
            t->trex_duration = cm__rb32(b2 + 12);
            t->trex_size = cm__rb32(b2 + 16);
        }
        if (k2 < 0 && res == CM__WALK_PROVEN)
            res = unproven(w, "a box inside mvex does not fit it");
    }
    if (k < 0 && res == CM__WALK_PROVEN)
        res = unproven(w, "a box inside the movie header (moov) does not fit it");
    return res;
}

static void note_duration(struct mp4_track *t, int64_t dur)
{
    t->max_dur = FFMAX(t->max_dur, dur);
    if (dur > 0 && (t->min_dur == 0 || dur < t->min_dur))
        t->min_dur = dur;
}

/* One trun of a traf: its samples' times and bytes. *data_pos is where its data starts
   when it has no data_offset (and where the next trun's starts, on return). */
static int read_trun(struct mp4_walk *w, struct mp4_track *t, const uint8_t *b, size_t len,
                     int64_t base, int64_t *data_pos, uint32_t def_dur, uint32_t def_size)
{
    if (len < 8)
        return unproven(w, "a track run (trun) is too short");
    uint32_t flags = cm__rb24(b + 1);
    uint32_t count = cm__rb32(b + 4);
    size_t at = 8;
    int64_t pos = *data_pos;
    if (flags & TRUN_DATA_OFFSET) {
        if (len < at + 4)
            return unproven(w, "a track run (trun) is too short");
        pos = base + (int32_t)cm__rb32(b + at);
        at += 4;
    }
    if (flags & TRUN_FIRST_SAMPLE_FLAGS)
        at += 4;
    size_t entry = 4 * (size_t)(!!(flags & TRUN_SAMPLE_DURATION) + !!(flags & TRUN_SAMPLE_SIZE) +
                                !!(flags & TRUN_SAMPLE_FLAGS) + !!(flags & TRUN_SAMPLE_CTS));
    if (at > len || (entry && count > (len - at) / entry))
        return unproven(w, "a track run (trun) lists more samples than it holds");
    if (pos < 0 || pos > INT64_MAX / 2)
        return unproven(w, "a track run's data lies outside the file");
    int64_t fsize = w->in->size;
    int64_t start = pos;
    int64_t dts = t->next_dts;
    if (count == 0)
        return CM__WALK_PROVEN;
    if (entry == 0) {
        /* Every sample has the default duration and size: no loop over the count. */
        if (def_size == 0)
            return unproven(w, "a track run has samples of 0 bytes");
        uint64_t avail = pos < fsize ? (uint64_t)(fsize - pos) : 0;
        uint64_t whole = avail / def_size;
        uint64_t n = count < whole ? count : whole;
        if (n < count && avail > n * def_size)
            n++; /* a sample cut by the end of the file: the demuxer returns its bytes */
        if (t->ended && n > 0)
            return unproven(w, "track %u has samples after the end of the file's data",
                            t->track_id);
        if (n < count) {
            w->truncated = 1; /* the file was cut in this run */
            t->ended = 1;
        }
        if (n > 0 && !t->seen) {
            t->seen = 1;
            t->first_dts = dts;
            t->pts_min = dts + t->shift;
        }
        /* n <= 2^32 and the duration < 2^32: the product fits */
        if (def_dur * n > (uint64_t)(INT64_MAX / 4 - dts))
            return unproven(w, "the fragments of track %u add up to an impossible length",
                            t->track_id);
        t->next_dts = dts + (int64_t)(def_dur * n);
        if (n > 0)
            t->pts_end = FFMAX(t->pts_end, t->next_dts + t->shift);
        if (n > 0)
            note_duration(t, def_dur);
        uint64_t total = (uint64_t)count * def_size; /* < 2^64 */
        *data_pos =
            total > (uint64_t)(INT64_MAX / 2 - start) ? INT64_MAX / 2 : start + (int64_t)total;
        return add_sample_range(w, start, start + (int64_t)FFMIN(n * def_size, avail));
    }
    for (uint32_t i = 0; i < count; i++, at += entry) {
        const uint8_t *e = b + at;
        uint32_t dur = def_dur, size = def_size;
        int32_t cts = 0;
        if (flags & TRUN_SAMPLE_DURATION)
            dur = cm__rb32(e), e += 4;
        if (flags & TRUN_SAMPLE_SIZE)
            size = cm__rb32(e), e += 4;
        if (flags & TRUN_SAMPLE_FLAGS)
            e += 4;
        if (flags & TRUN_SAMPLE_CTS)
            cts = (int32_t)cm__rb32(e); /* libavformat reads both versions as signed */
        if (size == 0)
            return unproven(w, "a track run has samples of 0 bytes");
        int partial = 0;
        if (pos > fsize - (int64_t)size) {
            /* This sample's bytes are not all in the file: the file was cut here. The
               demuxer still returns the first bytes of a sample that starts inside. */
            w->truncated = 1;
            if (pos >= fsize || t->ended) {
                t->ended = 1;
                pos = fsize + 1; /* nothing after it is in the file either */
                continue;
            }
            partial = 1;
        }
        if (t->ended)
            return unproven(w, "track %u has samples after the end of the file's data",
                            t->track_id);
        if (cts < 0 && -(int64_t)cts > t->shift)
            t->shift = -(int64_t)cts;
        if (!t->seen) {
            t->seen = 1;
            t->first_dts = dts;
            t->pts_min = dts + cts + t->shift;
        }
        t->pts_min = FFMIN(t->pts_min, dts + cts + t->shift);
        t->pts_end = FFMAX(t->pts_end, dts + cts + t->shift + (int64_t)dur);
        if (dts > INT64_MAX / 4)
            return unproven(w, "the fragments of track %u add up to an impossible length",
                            t->track_id);
        dts += dur;
        note_duration(t, dur);
        pos += size;
        if (partial) {
            t->ended = 1;
            pos = fsize + 1;
        }
    }
    t->next_dts = dts;
    int64_t end = pos > fsize ? fsize : pos;
    *data_pos = pos;
    return add_sample_range(w, start, end > start ? end : start);
}

/* One traf: tfhd, then tfdt, then its truns in order. */
static int read_traf(struct mp4_walk *w, const uint8_t *b, size_t len, int64_t moof_off,
                     int64_t *implicit)
{
    const uint8_t *tfhd = NULL, *tfdt = NULL;
    size_t tfhd_len = 0, tfdt_len = 0;
    size_t at = 0;
    uint32_t type;
    const uint8_t *body;
    size_t blen;
    int k;
    while ((k = next_child(b, len, &at, &type, &body, &blen)) == 1) {
        if (type == CM__FOURCC('t', 'f', 'h', 'd') && !tfhd)
            tfhd = body, tfhd_len = blen;
        else if (type == CM__FOURCC('t', 'f', 'd', 't') && !tfdt)
            tfdt = body, tfdt_len = blen;
    }
    if (k < 0)
        return unproven(w, "a box inside a track fragment (traf) does not fit it");
    if (!tfhd || tfhd_len < 8)
        return unproven(w, "a track fragment (traf) has no valid header (tfhd)");
    uint32_t flags = cm__rb24(tfhd + 1);
    uint32_t id = cm__rb32(tfhd + 4);
    int stream;
    struct mp4_track *t = track_by_id(w, id, &stream);
    if (!t)
        return unproven(w, "a fragment belongs to track %u, which the movie header does not have",
                        id);
    if (!t->has_trex)
        return unproven(w, "track %u has fragments but no defaults (trex)", id);
    size_t need = 8 + (flags & TFHD_BASE_DATA_OFFSET ? 8 : 0) + (flags & TFHD_STSD_ID ? 4 : 0) +
                  (flags & TFHD_DEFAULT_DURATION ? 4 : 0) + (flags & TFHD_DEFAULT_SIZE ? 4 : 0) +
                  (flags & TFHD_DEFAULT_FLAGS ? 4 : 0);
    if (tfhd_len < need)
        return unproven(w, "a track fragment header (tfhd) is too short");
    size_t f = 8;
    int64_t base;
    if (flags & TFHD_BASE_DATA_OFFSET) {
        uint64_t v = cm__rb64(tfhd + f);
        if (v > (uint64_t)INT64_MAX / 2)
            return unproven(w, "a fragment's data offset lies outside the file");
        base = (int64_t)v;
        f += 8;
    } else {
        base = flags & TFHD_DEFAULT_BASE_IS_MOOF ? moof_off : *implicit;
    }
    if (flags & TFHD_STSD_ID)
        f += 4;
    uint32_t def_dur = t->trex_duration, def_size = t->trex_size;
    if (flags & TFHD_DEFAULT_DURATION)
        def_dur = cm__rb32(tfhd + f), f += 4;
    if (flags & TFHD_DEFAULT_SIZE)
        def_size = cm__rb32(tfhd + f), f += 4;

    int billed = w->billed[stream];
    if (tfdt) {
        if (tfdt_len < 8 || (tfdt[0] == 1 && tfdt_len < 12))
            return unproven(w, "a fragment's decode time (tfdt) is too short");
        uint64_t v = tfdt[0] == 1 ? cm__rb64(tfdt + 4) : cm__rb32(tfdt + 4);
        if (v > (uint64_t)INT64_MAX / 4)
            return unproven(w, "a fragment's decode time (tfdt) is out of range");
        int64_t tdt = (int64_t)v;
        if (t->seen || t->moov_end > 0) {
            /* It must continue where the track's previous fragment ended. */
            /* a few samples, at most a second (the time base is 1/timescale) */
            int64_t tol = FFMIN(4 * FFMAX(t->max_dur, (int64_t)def_dur),
                                (int64_t)w->fc->streams[stream]->time_base.den);
            int64_t diff = tdt - t->next_dts;
            if (billed && (diff > tol || diff < -tol))
                return unproven(w,
                                "the fragments of track %u do not follow each other in time "
                                "(one starts at %lld where the previous ended at %lld)",
                                id, (long long)tdt, (long long)t->next_dts);
        }
        t->next_dts = tdt;
    }

    int64_t data_pos = base;
    at = 0;
    while ((k = next_child(b, len, &at, &type, &body, &blen)) == 1) {
        if (type != CM__FOURCC('t', 'r', 'u', 'n'))
            continue;
        int res = read_trun(w, t, body, blen, base, &data_pos, def_dur, def_size);
        if (res != CM__WALK_PROVEN)
            return res;
    }
    *implicit = data_pos;
    return CM__WALK_PROVEN;
}

static int read_moof(struct mp4_walk *w, int64_t off, int64_t size)
{
    int res = load_trex(w);
    if (res != CM__WALK_PROVEN)
        return res;
    if (size > MOOF_MAX)
        return unproven(w, "a movie fragment (moof) is larger than %d bytes", MOOF_MAX);
    uint8_t *buf = malloc((size_t)size);
    if (!buf)
        return CM_PROBE_E_NOMEM;
    int64_t got = cm__input_pread(w->in, buf, size, off);
    if (got < 0) {
        free(buf);
        return CM_PROBE_E_TIMEOUT;
    }
    if (got < size) {
        free(buf);
        return unproven(w, "the file changed while it was read");
    }
    size_t hdr = cm__rb32(buf) == 1 ? 16 : 8;
    size_t at = hdr;
    uint32_t type;
    const uint8_t *body;
    size_t blen;
    int k;
    int64_t implicit = off;
    while ((k = next_child(buf, (size_t)size, &at, &type, &body, &blen)) == 1) {
        if (type != CM__FOURCC('t', 'r', 'a', 'f'))
            continue;
        res = read_traf(w, body, blen, off, &implicit);
        if (res != CM__WALK_PROVEN)
            break;
    }
    if (k < 0 && res == CM__WALK_PROVEN)
        res = unproven(w, "a box inside a movie fragment (moof) does not fit it");
    free(buf);
    return res;
}

static int prove_index(struct mp4_walk *w, int fragmented);

/* Walks every top-level box. */
static int walk_boxes(struct mp4_walk *w)
{
    int64_t size = w->in->size;
    for (int64_t off = 0; off < size;) {
        if (++w->boxes > BOXES_MAX)
            return unproven(w, "more than %d top-level boxes", BOXES_MAX);
        uint8_t h[16];
        int64_t got = cm__input_pread(w->in, h, 16, off);
        if (got < 0)
            return CM_PROBE_E_TIMEOUT;
        if (got < 8) {
            w->truncated = 1; /* cut inside a box header */
            return CM__WALK_PROVEN;
        }
        uint64_t bsize = cm__rb32(h);
        uint32_t type = cm__rb32(h + 4);
        int64_t hdr = 8;
        if (bsize == 1) {
            if (got < 16) {
                w->truncated = 1;
                return CM__WALK_PROVEN;
            }
            bsize = cm__rb64(h + 8);
            hdr = 16;
        } else if (bsize == 0) {
            bsize = (uint64_t)(size - off);
        }
        if (!is_box_type(type) || bsize < (uint64_t)hdr)
            return unproven(w, "the bytes at offset %lld are not an MP4 box", (long long)off);
        int past = bsize > (uint64_t)(size - off);
        int64_t end = past ? size : off + (int64_t)bsize;
        /* A file cut off ends inside its media data (mdat is nearly all of it); any
           other box that claims more bytes than the file has may be hiding the boxes
           after it from this walk but not from the demuxer (which can find fragments
           through a sidx). The bytes of an mdat that runs to the end must still be
           explained by samples. */
        if (past && type != CM__FOURCC('m', 'd', 'a', 't'))
            return unproven(w, "a box at offset %lld claims more bytes than the file has",
                            (long long)off);
        if (past)
            w->truncated = 1;
        switch (type) {
        case CM__FOURCC('m', 'd', 'a', 't'): {
            /* each mdat is accounted for by itself: never joined to the previous one */
            if (w->mdats.n == w->mdats.cap) {
                size_t cap = w->mdats.cap ? w->mdats.cap * 2 : 64;
                if (cap > MDATS_MAX)
                    return unproven(w, "more than %d media data boxes", MDATS_MAX);
                struct range *v = realloc(w->mdats.v, cap * sizeof(*v));
                if (!v)
                    return CM_PROBE_E_NOMEM;
                w->mdats.v = v;
                w->mdats.cap = cap;
            }
            w->mdats.v[w->mdats.n++] = (struct range){off + hdr, end};
            break;
        }
        case CM__FOURCC('m', 'o', 'o', 'v'):
            if (++w->moov_count > 1)
                return unproven(w, "the file has more than one movie header (moov)");
            w->moov_off = off;
            w->moov_size = (int64_t)bsize;
            break;
        case CM__FOURCC('m', 'o', 'o', 'f'): {
            int res = CM__WALK_PROVEN;
            if (w->first_moof < 0) {
                /* moov's own samples come before every fragment's: count them first */
                w->first_moof = off;
                res = load_trex(w);
                if (res != CM__WALK_PROVEN)
                    return res;
                res = prove_index(w, 1);
                if (res != CM__WALK_PROVEN)
                    return res;
            }
            w->nmoof++;
            res = read_moof(w, off, (int64_t)bsize);
            if (res != CM__WALK_PROVEN)
                return res;
            break;
        }
        case CM__FOURCC('f', 't', 'y', 'p'):
        case CM__FOURCC('s', 't', 'y', 'p'):
        case CM__FOURCC('f', 'r', 'e', 'e'):
        case CM__FOURCC('s', 'k', 'i', 'p'):
        case CM__FOURCC('w', 'i', 'd', 'e'):
        case CM__FOURCC('s', 'i', 'd', 'x'):
        case CM__FOURCC('s', 's', 'i', 'x'):
        case CM__FOURCC('m', 'f', 'r', 'a'):
        case CM__FOURCC('p', 'r', 'f', 't'):
        case CM__FOURCC('e', 'm', 's', 'g'):
        case CM__FOURCC('u', 'u', 'i', 'd'):
        case CM__FOURCC('m', 'e', 't', 'a'):
        case CM__FOURCC('u', 'd', 't', 'a'):
        case CM__FOURCC('p', 'd', 'i', 'n'):
        case CM__FOURCC('p', 'n', 'o', 't'):
            break;
        default:
            if (bsize > UNKNOWN_BOX_MAX)
                return unproven(w, "an unknown box of %llu bytes at offset %lld",
                                (unsigned long long)bsize, (long long)off);
            break;
        }
        off = end;
    }
    return CM__WALK_PROVEN;
}

/* Every sample range that is inside the file must lie inside an mdat payload, and the
   ranges together must explain the mdat payloads up to the slack. */
static int account_bytes(struct mp4_walk *w)
{
    struct ranges *s = &w->samples;
    if (s->n > 1)
        qsort(s->v, s->n, sizeof(*s->v), cmp_range);
    const struct ranges *m = &w->mdats;
    int64_t payload = 0, covered = 0;
    for (size_t i = 0; i < m->n; i++)
        payload += m->v[i].hi - m->v[i].lo;
    /* Sweep the sorted samples against the mdats (both in file order). */
    size_t j = 0;
    int64_t reach = INT64_MIN; /* end of the union so far: overlaps count once */
    for (size_t i = 0; i < s->n; i++) {
        const struct range *r = &s->v[i];
        while (j < m->n && m->v[j].hi <= r->lo)
            j++;
        if (j == m->n || r->lo < m->v[j].lo || r->hi > m->v[j].hi)
            return unproven(w, "samples at offset %lld lie outside every media data box (mdat)",
                            (long long)r->lo);
        int64_t lo = r->lo > reach ? r->lo : reach;
        if (r->hi > lo)
            covered += r->hi - lo;
        if (r->hi > reach)
            reach = r->hi;
    }
    int64_t slack = payload / 100 > SLACK_MIN ? payload / 100 : SLACK_MIN;
    if (payload - covered > slack)
        return unproven(w,
                        "%lld bytes of media data belong to no sample the file's tables "
                        "describe",
                        (long long)(payload - covered));
    return CM__WALK_PROVEN;
}

/* The composition offsets (ctts) of one track, read from moov: a presentation time is
   the decode time + dts shift + the sample's offset, as libavformat computes it. */
struct ctts {
    const uint8_t *runs; /* entry_count pairs (count, offset) */
    uint32_t nruns;
    int64_t samples; /* samples the runs cover */
    int64_t shift;   /* libavformat's dts shift: the largest negative offset, negated */
};

/* Finds moov/trak[tkhd.track_ID == id]/mdia/minf/stbl/ctts in moov's payload. Returns 1
   with c filled, 0 when the track has no ctts (every offset 0), -1 when it is not
   understood. */
static int find_ctts(const uint8_t *moov, size_t len, uint32_t id, struct ctts *c)
{
    static const uint32_t path[] = {CM__FOURCC('m', 'd', 'i', 'a'), CM__FOURCC('m', 'i', 'n', 'f'),
                                    CM__FOURCC('s', 't', 'b', 'l'), CM__FOURCC('c', 't', 't', 's')};
    size_t at = 0;
    uint32_t type;
    const uint8_t *body;
    size_t blen;
    while (next_child(moov, len, &at, &type, &body, &blen) == 1) {
        if (type != CM__FOURCC('t', 'r', 'a', 'k'))
            continue;
        /* its tkhd first: is it this track? */
        size_t a2 = 0, l2;
        uint32_t t2;
        const uint8_t *b2;
        int match = 0;
        while (next_child(body, blen, &a2, &t2, &b2, &l2) == 1)
            if (t2 == CM__FOURCC('t', 'k', 'h', 'd')) {
                size_t idat = b2[0] == 1 ? 20 : 12;
                match = l2 >= idat + 4 && cm__rb32(b2 + idat) == id;
                break;
            }
        if (!match)
            continue;
        const uint8_t *p = body;
        size_t plen = blen;
        for (int depth = 0; depth < 4; depth++) {
            size_t a3 = 0, l3;
            uint32_t t3;
            const uint8_t *b3;
            int found = 0;
            while (next_child(p, plen, &a3, &t3, &b3, &l3) == 1)
                if (t3 == path[depth]) {
                    found = 1;
                    break;
                }
            if (!found)
                return depth == 3 ? 0 : -1;
            p = b3;
            plen = l3;
        }
        if (plen < 8)
            return -1;
        uint32_t n = cm__rb32(p + 4);
        if (n > (plen - 8) / 8)
            return -1;
        *c = (struct ctts){p + 8, n, 0, 0};
        for (uint32_t i = 0; i < n; i++) {
            int32_t off = (int32_t)cm__rb32(p + 8 + 8 * (size_t)i + 4);
            c->samples += cm__rb32(p + 8 + 8 * (size_t)i);
            /* libavformat ignores the last two entries and absurd offsets here */
            if (i + 2 < n && off < 0 && off > -(1 << 28) && -(int64_t)off > c->shift)
                c->shift = -(int64_t)off;
        }
        return 1;
    }
    return -1;
}

/* Presentation span of index entries [first, last] (non-discarded ones), the last one
   lasting last_len: what demuxing them gives (reordering can put any sample first or
   last, so all of them are looked at). Returns 0, or -1 when the offsets do not fit the
   index. */
static int pts_span(const AVStream *st, const struct ctts *c, int have_ctts, int n, int first,
                    int last, int64_t last_len, int64_t *start, int64_t *end)
{
    if (have_ctts && c->samples != n)
        return -1;
    int64_t shift = have_ctts ? c->shift : 0;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    uint32_t run = 0;
    int64_t left = 0; /* samples left in the current run */
    int32_t off = 0;
    for (int k = 0; k <= last; k++) {
        if (have_ctts) {
            while (left == 0 && run < c->nruns) {
                left = cm__rb32(c->runs + 8 * (size_t)run);
                off = (int32_t)cm__rb32(c->runs + 8 * (size_t)run + 4);
                run++;
            }
            left--;
        }
        if (k < first)
            continue;
        const AVIndexEntry *e = avformat_index_get_entry((AVStream *)st, k);
        if (e->flags & AVINDEX_DISCARD_FRAME)
            continue;
        int64_t len =
            k < last ? avformat_index_get_entry((AVStream *)st, k + 1)->timestamp - e->timestamp
                     : last_len;
        int64_t pts = e->timestamp + shift + off;
        lo = FFMIN(lo, pts);
        hi = FFMAX(hi, pts + FFMAX(len, 0));
    }
    if (lo == INT64_MAX || hi == INT64_MIN || hi < lo)
        return -1;
    *start = lo;
    *end = hi;
    return 0;
}

/* Time checks of libavformat's index of one stream (in index order). */
static int index_times_ok(struct mp4_walk *w, const AVStream *st, int first, int last)
{
    int64_t delta = 0;
    for (int k = first + 1; k <= last; k++) {
        int64_t d = avformat_index_get_entry((AVStream *)st, k)->timestamp -
                    avformat_index_get_entry((AVStream *)st, k - 1)->timestamp;
        if (d > 0 && (delta == 0 || d < delta))
            delta = d;
    }
    int64_t back = FFMAX(av_rescale_q(2, (AVRational){1, 1}, st->time_base), 16 * delta);
    int64_t ahead = FFMAX(av_rescale_q(10, (AVRational){1, 1}, st->time_base), 16 * delta);
    int64_t prev = avformat_index_get_entry((AVStream *)st, first)->timestamp;
    for (int k = first + 1; k <= last; k++) {
        int64_t ts = avformat_index_get_entry((AVStream *)st, k)->timestamp;
        if (ts < prev - back || ts > prev + ahead)
            return unproven(w,
                            "the sample times of stream %d run backwards or jump (%lld after %lld)",
                            st->index, (long long)ts, (long long)prev);
        if (ts > prev)
            prev = ts;
    }
    return CM__WALK_PROVEN;
}

/* The non-fragmented file: libavformat's index, proven against the boxes. Also used for
   moov's own samples of a fragmented file (entries before the first moof). */
static int prove_index(struct mp4_walk *w, int fragmented)
{
    AVFormatContext *fc = w->fc;
    int64_t fsize = w->in->size;
    for (unsigned i = 0; i < fc->nb_streams; i++) {
        AVStream *st = fc->streams[i];
        int n = avformat_index_get_entries_count(st);
        int last_in = -1, first_kept = -1, past = 0, nmoov = n;
        if (fragmented) {
            /* moov's samples are the entries before the first fragment's data */
            nmoov = 0;
            while (nmoov < n && avformat_index_get_entry(st, nmoov)->pos < w->first_moof)
                nmoov++;
        }
        for (int k = 0; k < nmoov; k++) {
            const AVIndexEntry *e = avformat_index_get_entry(st, k);
            if (e->pos < 0 || e->size <= 0)
                return unproven(w, "stream %u has a sample without a place in the file", i);
            if (e->pos >= fsize) {
                past = 1;
                continue;
            }
            if (past && w->billed[i])
                return unproven(w, "stream %u has samples after ones that are not in the file", i);
            /* A sample cut by the end of the file still plays as far as the demuxer is
               concerned (it returns the bytes that are there): it counts, and ends it. */
            int res = add_sample_range(w, e->pos, FFMIN(e->pos + e->size, fsize));
            if (res != CM__WALK_PROVEN)
                return res;
            if (!(e->flags & AVINDEX_DISCARD_FRAME)) {
                if (first_kept < 0)
                    first_kept = k;
                last_in = k;
            }
            if (e->pos > fsize - e->size)
                past = 1;
        }
        if (past)
            w->truncated = 1;
        if (!w->billed[i] || first_kept < 0)
            continue;
        int res = index_times_ok(w, st, first_kept, last_in);
        if (res != CM__WALK_PROVEN)
            return res;
        const AVIndexEntry *f = avformat_index_get_entry(st, first_kept);
        const AVIndexEntry *e = avformat_index_get_entry(st, last_in);
        int64_t len;
        if (last_in + 1 < n)
            len = avformat_index_get_entry(st, last_in + 1)->timestamp - e->timestamp;
        else if (last_in > first_kept)
            len = e->timestamp - avformat_index_get_entry(st, last_in - 1)->timestamp;
        else
            len = 0;
        if (len < 0)
            len = 0;
        int64_t end_dts = e->timestamp + len;
        /* The last sample's own length, when the stream's duration says it is shorter
           than the gap before it (audio's last frame). */
        if (!fragmented && !past && last_in + 1 == n && st->duration > 0 &&
            f->timestamp + st->duration >= e->timestamp && f->timestamp + st->duration < end_dts)
            end_dts = f->timestamp + st->duration;
        struct mp4_track *t = &w->tracks[i];
        if (fragmented) {
            /* Fragments continue moov's samples: tfdt counts from the first of them. */
            t->moov_end = end_dts - avformat_index_get_entry(st, 0)->timestamp;
            if (t->moov_end < 0 || t->moov_end > INT64_MAX / 8)
                return unproven(w,
                                "the samples of stream %u in the movie header have an "
                                "impossible length",
                                i);
            t->next_dts = t->moov_end;
            note_duration(t, len);
            t->ended = past;
        }
        int64_t start = st->start_time != AV_NOPTS_VALUE ? st->start_time : f->timestamp;
        int64_t end = start + (end_dts - f->timestamp);
        if (w->moov) {
            /* with moov's composition offsets, the presentation times themselves */
            struct ctts c;
            int have = find_ctts(w->moov, w->moov_len, (uint32_t)st->id, &c);
            if (have < 0 || pts_span(st, &c, have, nmoov, first_kept, last_in,
                                     end_dts - e->timestamp, &start, &end) != 0)
                return unproven(w,
                                "the composition offsets (ctts) of stream %u do not match "
                                "its samples",
                                i);
        }
        w->spans[i] = (struct cm__span){1, start, end};
    }
    return CM__WALK_PROVEN;
}

/* Spans of the fragmented tracks, in libavformat's time line: libavformat's first
   index entry of the track is the sample the walk saw first (moov's first sample, or
   the first fragment's), which gives the offset between tfdt's media time and it. */
static int fragment_spans(struct mp4_walk *w)
{
    AVFormatContext *fc = w->fc;
    for (unsigned i = 0; i < fc->nb_streams; i++) {
        struct mp4_track *t = &w->tracks[i];
        AVStream *st = fc->streams[i];
        /* A sample that lasts longer than 10 s (and 16 of the shortest) is a jump in
           time, as a full demux sees it: it counts the pieces on either side. */
        if (w->billed[i] && t->seen &&
            t->max_dur > FFMAX(10LL * st->time_base.den, 16 * t->min_dur))
            return unproven(w, "a sample of track %u lasts %lld units, a jump in time", t->track_id,
                            (long long)t->max_dur);
        if (!w->billed[i])
            continue;
        if (w->spans[i].set) {
            /* moov's samples came first: the fragments extend them */
            if (t->seen && t->next_dts > t->moov_end)
                w->spans[i].end += t->next_dts - t->moov_end;
            if (t->seen && avformat_index_get_entries_count(st) > 0)
                w->spans[i].end =
                    FFMAX(w->spans[i].end, t->pts_end + avformat_index_get_entry(st, 0)->timestamp);
            continue;
        }
        if (!t->seen)
            continue;
        int64_t delta = 0;
        if (avformat_index_get_entries_count(st) > 0)
            delta = avformat_index_get_entry(st, 0)->timestamp - t->first_dts;
        int64_t start = st->start_time != AV_NOPTS_VALUE ? st->start_time : t->pts_min + delta;
        /* the last samples' presentation end, reordering included, when it is later */
        int64_t end = FFMAX(start + (t->next_dts - t->first_dts), t->pts_end + delta);
        w->spans[i] = (struct cm__span){1, start, end};
    }
    return CM__WALK_PROVEN;
}

int cm__mp4_walk(cm_input *in, AVFormatContext *fc, const int *billed, struct cm__span *spans,
                 int *truncated, char *why, size_t whylen)
{
    cm__walk_begin(fc, spans, truncated, why, whylen);
    struct mp4_walk w = {.in = in,
                         .fc = fc,
                         .billed = billed,
                         .spans = spans,
                         .why = why,
                         .whylen = whylen,
                         .first_moof = -1};
    w.tracks = calloc(fc->nb_streams ? fc->nb_streams : 1, sizeof(*w.tracks));
    if (!w.tracks)
        return CM_PROBE_E_NOMEM;
    for (unsigned i = 0; i < fc->nb_streams; i++) {
        const AVStream *st = fc->streams[i];
        w.tracks[i].track_id = (uint32_t)st->id;
        w.tracks[i].pts_end = -1;
        if (billed[i] && st->time_base.num != 1) {
            free(w.tracks);
            return unproven(&w, "stream %u has an unusual time base", i);
        }
    }
    int res = walk_boxes(&w);
    if (res == CM__WALK_PROVEN && w.moov_count == 0)
        res = unproven(&w, "the file has no movie header (moov)");
    if (res == CM__WALK_PROVEN && w.nmoof == 0) {
        /* when it is a small part of the file (it usually is: about 1 %) */
        res = read_moov(&w, FFMAX(1 << 20, in->size / 50));
        if (res == CM__WALK_PROVEN)
            res = prove_index(&w, 0);
    }
    if (res == CM__WALK_PROVEN && w.nmoof > 0)
        res = fragment_spans(&w);
    /* Players (and the demuxer) of a cut fragmented file stop at the first sample missing
       from it, in decode order over every track, which no per-track count reproduces. */
    if (res == CM__WALK_PROVEN && w.nmoof > 0 && w.truncated)
        res = unproven(&w, "a fragmented file cut short inside its fragments");
    if (res == CM__WALK_PROVEN)
        res = account_bytes(&w);
    if (res == CM__WALK_PROVEN) {
        int any = 0;
        for (unsigned i = 0; i < fc->nb_streams; i++)
            any |= billed[i] && spans[i].set;
        if (!any)
            res = unproven(&w, "no audio or video sample of the file is inside it");
    }
    if (res != CM__WALK_PROVEN)
        for (unsigned i = 0; i < fc->nb_streams; i++)
            spans[i].set = 0;
    *truncated = w.truncated;
    free(w.tracks);
    free(w.moov);
    free(w.samples.v);
    free(w.mdats.v);
    return res;
}
