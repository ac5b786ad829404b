/*
 * probe_mkv_walk.c - Matroska/WebM measured by walking every Cluster header.
 *
 * The Segment's top-level elements are walked one header at a time (payloads skipped
 * by their size): every byte from the Segment's start to the end of the file must
 * belong to a known element, and every Cluster's Timestamp is read. Cluster timestamps
 * must never decrease, nor jump ahead by more than the oracle accepts as one piece
 * (10 s): a Cluster moved back in time, files joined byte-wise, a Cluster of unknown
 * size, an unknown element or bytes after the Segment send the file to the oracle.
 * When the walk holds, the file plays from its first packets (read by the demuxer) to
 * the end of the last Cluster's blocks, read by our own cluster reader (probe_mkv.c).
 * Only element headers and the last Cluster are read: a few KB per minute of content.
 */
#include "probe_measure.h"
#include "probe_mkv.h"

#include <stdio.h>
#include <stdlib.h>

#include <libavutil/mathematics.h>

#define ID_EBML 0x1A45DFA3u
#define ID_SEGMENT 0x18538067u
#define ID_CLUSTER 0x1F43B675u
#define MKV_MAX_TRACKS 64
#define HEAD_BYTES 64 /* an element header and the start of its payload */

/* Top-level children of a Segment that the walk knows (and Void, CRC-32). */
static int known_top_level(uint64_t id)
{
    switch (id) {
    case 0x114D9B74: /* SeekHead */
    case 0x1549A966: /* Info */
    case 0x1654AE6B: /* Tracks */
    case 0x1C53BB6B: /* Cues */
    case 0x1043A770: /* Chapters */
    case 0x1254C367: /* Tags */
    case 0x1941A469: /* Attachments */
    case ID_CLUSTER:
    case 0xEC: /* Void */
    case 0xBF: /* CRC-32 */
        return 1;
    default:
        return 0;
    }
}

struct block {
    int stream;
    int frames;
    int64_t ts, duration;
};

struct block_ctx {
    struct cm__measure *m;
    int n;
    struct block *blocks; /* the last Cluster's billed blocks, noted once proven */
    size_t nblocks, cap;
    int nomem;
    uint64_t numbers[MKV_MAX_TRACKS];
    int stream[MKV_MAX_TRACKS];
    int billed_blocks;
    int64_t min_ts;
};

static void on_block(void *opaque, uint64_t track, int64_t ts, int frames, int64_t duration)
{
    struct block_ctx *c = opaque;
    for (int i = 0; i < c->n; i++)
        if (c->numbers[i] == track && c->stream[i] >= 0) {
            if (c->nblocks == c->cap) {
                size_t cap = c->cap ? 2 * c->cap : 256;
                struct block *b = realloc(c->blocks, cap * sizeof(*b));
                if (!b) {
                    c->nomem = 1;
                    return;
                }
                c->blocks = b, c->cap = cap;
            }
            c->blocks[c->nblocks++] = (struct block){c->stream[i], frames, ts, duration};
            c->billed_blocks++;
            if (ts < c->min_ts)
                c->min_ts = ts;
            return;
        }
}

/* Maps Matroska track numbers to streams. libavformat keeps no track number, but makes
   its video and audio streams in TrackEntry order, so the k-th video (audio) entry is
   the k-th video (audio) stream that is not an attached picture. Returns 1 when every
   billed stream has its track, 0 when not, or a negative code. */
static int map_tracks(struct cm__measure *m, struct block_ctx *c)
{
    int types[MKV_MAX_TRACKS];
    int n = -1;
    /* The Tracks sit in the first few KB; look further only if they do not. */
    for (int64_t head = 64 << 10; n < 0 && head <= (1 << 20); head *= 16) {
        int64_t len = FFMIN(head, m->in->size);
        uint8_t *buf = malloc((size_t)len);
        if (!buf)
            return CM_PROBE_E_NOMEM;
        int64_t got = cm__input_pread(m->in, buf, len, 0);
        if (got > 0)
            n = cm__mkv_tracks(buf, (size_t)got, c->numbers, types, MKV_MAX_TRACKS);
        free(buf);
        if (got < 0)
            return CM_PROBE_E_TIMEOUT;
        if (got < len)
            break;
    }
    if (n <= 0)
        return 0;
    int mapped = 0;
    for (int i = 0; i < n; i++) {
        enum AVMediaType want = types[i] == 1   ? AVMEDIA_TYPE_VIDEO
                                : types[i] == 2 ? AVMEDIA_TYPE_AUDIO
                                                : AVMEDIA_TYPE_UNKNOWN;
        c->stream[i] = -1;
        if (want == AVMEDIA_TYPE_UNKNOWN)
            continue;
        int rank = 0; /* how many entries of this type came before */
        for (int j = 0; j < i; j++)
            rank += types[j] == types[i];
        for (unsigned s = 0; s < m->fc->nb_streams; s++) {
            const AVStream *st = m->fc->streams[s];
            if (st->codecpar->codec_type != want || (st->disposition & AV_DISPOSITION_ATTACHED_PIC))
                continue;
            if (rank-- == 0) {
                c->stream[i] = (int)s;
                mapped++;
                break;
            }
        }
    }
    c->n = n;
    return mapped == cm__billed_count(m);
}

#define UNPROVEN(...)                                                                              \
    do {                                                                                           \
        snprintf(why, whylen, __VA_ARGS__);                                                        \
        *step = CM__STEP_UNPROVEN;                                                                 \
        return 0;                                                                                  \
    } while (0)

int cm__mkv_walk(struct cm__measure *m, enum cm__step *step, char *why, size_t whylen)
{
    cm_input *in = m->in;
    uint8_t head[HEAD_BYTES];
    struct block_ctx c = {.m = m, .min_ts = INT64_MAX};
    int mapped = map_tracks(m, &c);
    if (mapped < 0)
        return mapped;
    if (!mapped)
        UNPROVEN("the tracks do not match the streams");
    if (m->fc->nb_streams == 0)
        UNPROVEN("no streams");
    /* Every Matroska stream has the Segment's TimestampScale as its time base. */
    AVRational tb = m->fc->streams[0]->time_base;
    int64_t gap_max = av_rescale_q(10, (AVRational){1, 1}, tb);

    /* The EBML header, then the Segment. */
    int64_t pos = 0, seg_end = 0;
    for (int k = 0; k < 2; k++) {
        int64_t got = cm__input_pread(in, head, HEAD_BYTES, pos);
        if (got < 0)
            return CM_PROBE_E_TIMEOUT;
        uint64_t id, size;
        int unknown;
        int hl = cm__mkv_header(head, (size_t)got, &id, &size, &unknown);
        if (!hl || id != (k == 0 ? ID_EBML : ID_SEGMENT) || (k == 0 && unknown))
            UNPROVEN("no EBML header and Segment at the start");
        if (k == 0) {
            pos += hl + (int64_t)size;
            continue;
        }
        pos += hl;
        if (unknown || size > (uint64_t)(INT64_MAX - pos) || pos + (int64_t)size > in->size) {
            if (!unknown)
                m->truncated = 1; /* the Segment is cut off: what is there is billed */
            seg_end = in->size;
        } else {
            seg_end = pos + (int64_t)size;
        }
    }
    if (seg_end < in->size)
        UNPROVEN("%lld bytes follow the Segment", (long long)(in->size - seg_end));

    int64_t last_pos = -1, last_end = 0, prev_ts = -1;
    int clusters = 0;
    while (pos < seg_end) {
        int64_t got = cm__input_pread(in, head, HEAD_BYTES, pos);
        if (got < 0)
            return CM_PROBE_E_TIMEOUT;
        uint64_t id, size;
        int unknown;
        int hl = cm__mkv_header(head, (size_t)got, &id, &size, &unknown);
        if (!hl || !known_top_level(id))
            UNPROVEN("bytes at offset %lld belong to no known element", (long long)pos);
        if (unknown)
            UNPROVEN("an element of unknown size at offset %lld", (long long)pos);
        int64_t end =
            size > (uint64_t)(INT64_MAX - pos - hl) ? INT64_MAX : pos + hl + (int64_t)size;
        if (end > seg_end) {
            if (id != ID_CLUSTER || seg_end != in->size)
                UNPROVEN("an element at offset %lld runs past the Segment", (long long)pos);
            m->truncated = 1; /* the last Cluster is cut off */
            end = seg_end;
        }
        if (id == ID_CLUSTER) {
            uint64_t ts;
            if (!cm__mkv_cluster_timestamp(head + hl, (size_t)(got - hl), &ts) ||
                ts > (uint64_t)INT64_MAX / 2)
                UNPROVEN("a Cluster at offset %lld has no Timestamp first", (long long)pos);
            if (prev_ts >= 0 && (int64_t)ts < prev_ts)
                UNPROVEN("Cluster time runs backwards at offset %lld", (long long)pos);
            if (prev_ts >= 0 && (int64_t)ts - prev_ts > gap_max)
                UNPROVEN("Cluster time jumps ahead at offset %lld", (long long)pos);
            prev_ts = (int64_t)ts;
            last_pos = pos;
            last_end = end;
            clusters++;
        }
        pos = end;
    }
    if (clusters == 0)
        UNPROVEN("no Clusters");

    /* The last Cluster's blocks: where the content ends. */
    int64_t len = last_end - last_pos;
    uint8_t *buf = malloc((size_t)len);
    if (!buf)
        return CM_PROBE_E_NOMEM;
    int64_t got = cm__input_pread(in, buf, len, last_pos);
    if (got < 0) {
        free(buf);
        return CM_PROBE_E_TIMEOUT;
    }
    cm__mkv_scan(buf, (size_t)got, INT32_MAX, on_block, &c);
    free(buf);
    int err = 0;
    if (c.nomem) {
        err = CM_PROBE_E_NOMEM;
    } else if (c.billed_blocks == 0) {
        snprintf(why, whylen, "the last Cluster holds no audio or video");
        *step = CM__STEP_UNPROVEN;
    } else if (c.min_ts < prev_ts - gap_max) {
        snprintf(why, whylen, "the last Cluster's blocks play before it");
        *step = CM__STEP_UNPROVEN;
    } else {
        cm__timeline_skip(m);
        for (size_t i = 0; i < c.nblocks; i++)
            cm__note_ts(m, c.blocks[i].stream, c.blocks[i].ts, AV_NOPTS_VALUE, c.blocks[i].duration,
                        c.blocks[i].frames, 0);
        *step = CM__STEP_DONE;
    }
    free(c.blocks);
    return err;
}
