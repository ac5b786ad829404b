/* SPDX-License-Identifier: MIT */
/*
 * probe_mkv_walk.c - Matroska/WebM measured by walking every Cluster and every Block.
 *
 * The Segment's top-level elements are walked one header at a time (payloads skipped
 * by their size): every byte from the Segment's start to the end of the file must
 * belong to a known element, and every Cluster's Timestamp is read. Cluster timestamps
 * must never decrease, nor jump ahead by more than the oracle accepts as one piece
 * (10 s): a Cluster moved back in time, files joined byte-wise, a Cluster of unknown
 * size, an unknown element or bytes after the Segment send the file to the oracle.
 *
 * Inside every Cluster, every child is walked the same way: each SimpleBlock's and
 * BlockGroup's Block's first bytes (track number, the int16 timestamp relative to the
 * Cluster, flags, lace count) and BlockDuration are read, the frames skipped. Every
 * block goes into the same timeline the oracle fills (cm__note_ts), with the same
 * stream, timestamp, frame count and duration (BlockDuration, else the track's
 * DefaultDuration x frames, as libavformat gives it), so a block moved in time starts
 * a piece exactly where the oracle starts one, and Clusters that overlap in time
 * through their blocks' offsets are summed piece by piece, not billed as their span.
 * A block of a track the Tracks do not declare, an element of unknown size or one that
 * runs past its parent, or a malformed block send the file to the oracle.
 *
 * Reads are buffered: 64 KiB at a time while blocks are small (audio), a few hundred
 * bytes around each header once they are large (video), so a 1 GB file costs about
 * one read per video frame and well under 2 % of its bytes.
 */
#include "probe_measure.h"
#include "probe_mkv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/mathematics.h>

#define MKV_MAX_TRACKS 64
#define HEAD_BYTES 64 /* an element header and the start of its payload */
#define BLOCK_HEAD 16 /* a block's track number (up to 8), timestamp, flags, lace count */
#define BUF_BYTES (64 << 10)
#define LARGE_BLOCK 4096 /* average block size above which reads stay small */
#define SMALL_READ 512

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
    case CM__MKV_ID_CLUSTER:
    case 0xEC: /* Void */
    case 0xBF: /* CRC-32 */
        return 1;
    default:
        return 0;
    }
}

/* Buffered reads of the file: see the top of the file. */
struct reader {
    cm_input *in;
    uint8_t *buf;
    int64_t off, len;
    int64_t blocks, block_bytes; /* for the read size */
};

/* Makes [off, off + n) available (fewer bytes at the end of the file): returns how many
   bytes *p holds, or -1 when the deadline passed. */
static int64_t peek(struct reader *r, int64_t off, int64_t n, const uint8_t **p)
{
    if (off < r->off || off + n > r->off + r->len) {
        int64_t want =
            r->blocks > 0 && r->block_bytes / r->blocks > LARGE_BLOCK ? SMALL_READ : BUF_BYTES;
        int64_t got = cm__input_pread(r->in, r->buf, FFMAX(n, want), off);
        if (got < 0)
            return -1;
        r->off = off;
        r->len = got;
    }
    int64_t have = r->off + r->len - off;
    *p = r->buf + (off - r->off);
    return have < n ? have : n;
}

struct walk {
    struct cm__measure *m;
    struct reader rd;
    int n; /* tracks declared */
    struct cm__mkv_track tracks[MKV_MAX_TRACKS];
    int stream[MKV_MAX_TRACKS]; /* the billed stream of each track, or -1 */
    int64_t billed_blocks;
    char *why;
    size_t whylen;
};

/* Maps Matroska track numbers to streams. libavformat keeps no track number, but makes
   its video and audio streams in TrackEntry order, so the k-th video (audio) entry is
   the k-th video (audio) stream that is not an attached picture. Returns 1 when every
   billed stream has its track, 0 when not, or a negative code. */
static int map_tracks(struct cm__measure *m, struct walk *w)
{
    int n = -1;
    /* The Tracks sit in the first few KB; look further only if they do not. */
    for (int64_t head = 64 << 10; n < 0 && head <= (1 << 20); head *= 16) {
        int64_t len = FFMIN(head, m->in->size);
        uint8_t *buf = malloc((size_t)len);
        if (!buf)
            return CM_PROBE_E_NOMEM;
        int64_t got = cm__input_pread(m->in, buf, len, 0);
        if (got > 0)
            n = cm__mkv_tracks(buf, (size_t)got, w->tracks, MKV_MAX_TRACKS);
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
        int type = w->tracks[i].type;
        enum AVMediaType want = type == 1   ? AVMEDIA_TYPE_VIDEO
                                : type == 2 ? AVMEDIA_TYPE_AUDIO
                                            : AVMEDIA_TYPE_UNKNOWN;
        w->stream[i] = -1;
        if (want == AVMEDIA_TYPE_UNKNOWN)
            continue;
        if (w->tracks[i].scaled)
            return 0; /* libavformat rescales such a track's times: not followed here */
        int rank = 0; /* how many entries of this type came before */
        for (int j = 0; j < i; j++)
            rank += w->tracks[j].type == type;
        for (unsigned s = 0; s < m->fc->nb_streams; s++) {
            const AVStream *st = m->fc->streams[s];
            if (st->codecpar->codec_type != want || (st->disposition & AV_DISPOSITION_ATTACHED_PIC))
                continue;
            if (rank-- == 0) {
                w->stream[i] = (int)s;
                mapped++;
                break;
            }
        }
        /* An audio or video entry libavformat made no stream for (it skips invalid
           ones): the entries after it would map to the wrong streams. */
        if (w->stream[i] < 0 || w->tracks[i].number == 0)
            return 0;
    }
    w->n = n;
    return mapped == cm__billed_count(m);
}

/* Sets *step to unproven with a reason; returns 0 (no error). */
#define UNPROVEN(...)                                                                              \
    do {                                                                                           \
        snprintf(w->why, w->whylen, __VA_ARGS__);                                                  \
        return CM__STEP_UNPROVEN;                                                                  \
    } while (0)

/* One element header at off, read through the buffer. Returns its header length, 0 when
   none can be read there, or -1 when the deadline passed. */
/* The unsigned integer element payload of size (<= 8) bytes at off, big-endian (what the
   file has of it). Returns 0, or -1 when the deadline passed. */
static int read_uint_at(struct walk *w, int64_t off, uint64_t size, uint64_t *v)
{
    const uint8_t *p;
    int64_t got = peek(&w->rd, off, (int64_t)size, &p);
    if (got < 0)
        return -1;
    *v = 0;
    for (int64_t k = 0; k < got; k++)
        *v = *v << 8 | p[k];
    return 0;
}

static int header_at(struct walk *w, int64_t off, uint64_t *id, uint64_t *size, int *unknown)
{
    const uint8_t *p;
    int64_t got = peek(&w->rd, off, 12, &p);
    if (got < 0)
        return -1;
    return cm__mkv_header(p, (size_t)got, id, size, unknown);
}

/* Notes one block (its body starts at off, size bytes) into the timeline. Returns
   CM__STEP_DONE, CM__STEP_UNPROVEN (w->why filled) or a negative code. */
static int note_block(struct walk *w, int64_t off, int64_t size, int64_t cluster_ts,
                      int64_t duration)
{
    const uint8_t *p;
    int64_t got = peek(&w->rd, off, FFMIN(size, (int64_t)BLOCK_HEAD), &p);
    if (got < 0)
        return CM_PROBE_E_TIMEOUT;
    uint64_t track;
    int16_t rel;
    int frames;
    if (!cm__mkv_block_header(p, (size_t)got, &track, &rel, &frames))
        UNPROVEN("a malformed block at offset %lld", (long long)off);
    w->rd.blocks++;
    w->rd.block_bytes += size;
    int i = 0;
    while (i < w->n && w->tracks[i].number != track)
        i++;
    if (i == w->n)
        UNPROVEN("a block at offset %lld belongs to track %llu, which the file does not declare",
                 (long long)off, (unsigned long long)track);
    int idx = w->stream[i];
    if (idx < 0)
        return CM__STEP_DONE; /* subtitles and the like: never billed */
    const AVStream *st = w->m->fc->streams[idx];
    /* libavformat: a block before time 0 has no timestamp; without a BlockDuration, a
       block lasts DefaultDuration x its frames. */
    int64_t ts = rel >= 0 || cluster_ts >= -(int64_t)rel ? cluster_ts + rel : AV_NOPTS_VALUE;
    if (duration <= 0 && w->tracks[i].default_ns > 0 &&
        w->tracks[i].default_ns < (uint64_t)INT64_MAX / 256) {
        int64_t one = cm__rescale_q((int64_t)w->tracks[i].default_ns, (AVRational){1, 1000000000},
                                    st->time_base);
        duration = one > 0 && one < INT64_MAX / 256 ? one * frames : 0;
    }
    /* libavformat stamps a VfW-compatible track's blocks as decode times */
    cm__note_ts(w->m, idx, ts, w->tracks[i].ms_compat ? ts : AV_NOPTS_VALUE, duration, frames, 0);
    w->billed_blocks++;
    return CM__STEP_DONE;
}

/* Walks the children of the BlockGroup [off, end). */
static int walk_group(struct walk *w, int64_t off, int64_t end, int64_t cluster_ts)
{
    int64_t block = -1, block_size = 0, duration = 0;
    while (off < end) {
        uint64_t id, size;
        int unknown;
        int hl = header_at(w, off, &id, &size, &unknown);
        if (hl < 0)
            return CM_PROBE_E_TIMEOUT;
        if (hl == 0 || unknown || size > (uint64_t)(end - off - hl))
            UNPROVEN("a BlockGroup at offset %lld is malformed", (long long)off);
        int64_t data = off + hl;
        if (id == CM__MKV_ID_CLUSTER || id == CM__MKV_ID_SEGMENT || id == CM__MKV_ID_EBML ||
            (known_top_level(id) && id != 0xEC && id != 0xBF) || id == CM__MKV_ID_SIMPLEBLOCK ||
            id == CM__MKV_ID_BLOCKGROUP)
            UNPROVEN("an element at offset %lld does not belong in a BlockGroup", (long long)off);
        if (id == CM__MKV_ID_BLOCK) {
            block = data, block_size = (int64_t)size;
        } else if (id == CM__MKV_ID_BLOCKDURATION && size <= 8) {
            uint64_t v;
            if (read_uint_at(w, data, size, &v) < 0)
                return CM_PROBE_E_TIMEOUT;
            duration = v < (uint64_t)INT64_MAX / 4 ? (int64_t)v : 0;
        }
        off = data + (int64_t)size;
    }
    if (block < 0)
        return CM__STEP_DONE; /* no Block: libavformat plays nothing either */
    return note_block(w, block, block_size, cluster_ts, duration);
}

/* Walks the children of the Cluster [off, end) whose Timestamp is ts. cut: the file
   ends inside this Cluster, at end, before its declared end (a block cut off is noted as
   far as its header goes). A child running past the declared end is an error libavformat
   recovers from by searching for the next Cluster in the bytes the child claimed: not
   followed here. */
static int walk_cluster(struct walk *w, int64_t off, int64_t end, int64_t declared_end, int64_t ts,
                        int cut)
{
    while (off < end) {
        uint64_t id, size;
        int unknown;
        int hl = header_at(w, off, &id, &size, &unknown);
        if (hl < 0)
            return CM_PROBE_E_TIMEOUT;
        /* The file ends inside a header: too few bytes are left for one. More bytes that
           are no header are damage libavformat resynchronises through, looking for the
           next Cluster: not followed here (fuzz_probe_diff: walk 4.0 s, oracle 35.2 s). */
        if (hl == 0 && cut && end - off < CM__MKV_HEADER_MAX)
            return CM__STEP_DONE;
        if (hl == 0 || unknown)
            UNPROVEN("an element at offset %lld in a Cluster cannot be walked", (long long)off);
        int64_t data = off + hl, child_end;
        if (size > (uint64_t)(declared_end - data))
            UNPROVEN("an element at offset %lld runs past its Cluster", (long long)off);
        if (size > (uint64_t)(end - data)) {
            if (!cut)
                UNPROVEN("an element at offset %lld runs past its Cluster", (long long)off);
            child_end = end;
        } else {
            child_end = data + (int64_t)size;
        }
        /* libavformat ends the Cluster at an element of the Segment's level (a Cluster
           whose size covers the next one): not walked here. */
        if (id == CM__MKV_ID_CLUSTER || id == CM__MKV_ID_SEGMENT || id == CM__MKV_ID_EBML ||
            (known_top_level(id) && id != 0xEC && id != 0xBF))
            UNPROVEN("a top-level element at offset %lld inside a Cluster", (long long)off);
        int res = CM__STEP_DONE;
        if (id == CM__MKV_ID_TIMESTAMP && size <= 8) {
            uint64_t v;
            if (read_uint_at(w, data, size, &v) < 0)
                return CM_PROBE_E_TIMEOUT;
            if (v > (uint64_t)INT64_MAX / 2)
                UNPROVEN("a Cluster Timestamp at offset %lld is out of range", (long long)off);
            ts = (int64_t)v;
        } else if (id == CM__MKV_ID_SIMPLEBLOCK) {
            res = note_block(w, data, child_end - data, ts, 0);
        } else if (id == CM__MKV_ID_BLOCKGROUP) {
            res = walk_group(w, data, child_end, ts);
        }
        if (res != CM__STEP_DONE)
            return res;
        off = child_end;
    }
    return CM__STEP_DONE;
}

/* The walk itself, into the timeline. Returns CM__STEP_DONE, CM__STEP_UNPROVEN (w->why
   filled) or a negative code. */
static int walk(struct walk *w)
{
    struct cm__measure *m = w->m;
    cm_input *in = m->in;
    const uint8_t *head;
    /* Every Matroska stream has the Segment's TimestampScale as its time base. */
    AVRational tb = m->fc->streams[0]->time_base;
    int64_t gap_max = cm__rescale_q(10, (AVRational){1, 1}, tb);

    /* The EBML header, then the Segment. */
    int64_t pos = 0, seg_end = 0, seg_declared = INT64_MAX;
    for (int k = 0; k < 2; k++) {
        int64_t got = peek(&w->rd, pos, HEAD_BYTES, &head);
        if (got < 0)
            return CM_PROBE_E_TIMEOUT;
        uint64_t id, size;
        int unknown;
        int hl = cm__mkv_header(head, (size_t)got, &id, &size, &unknown);
        if (!hl || id != (k == 0 ? CM__MKV_ID_EBML : CM__MKV_ID_SEGMENT) || (k == 0 && unknown))
            UNPROVEN("no EBML header and Segment at the start");
        if (k == 0) {
            if (size > (uint64_t)(in->size - pos - hl))
                UNPROVEN("the EBML header runs past the end of the file");
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
        if (!unknown && size <= (uint64_t)(INT64_MAX - pos))
            seg_declared = pos + (int64_t)size;
    }
    if (seg_end < in->size)
        UNPROVEN("%lld bytes follow the Segment", (long long)(in->size - seg_end));

    int64_t prev_ts = -1;
    int clusters = 0;
    while (pos < seg_end) {
        int64_t got = peek(&w->rd, pos, HEAD_BYTES, &head);
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
        int64_t declared_end = end;
        int cut = 0;
        if (end > seg_declared)
            UNPROVEN("an element at offset %lld runs past the Segment", (long long)pos);
        if (end > seg_end) {
            if (id != CM__MKV_ID_CLUSTER || seg_end != in->size)
                UNPROVEN("an element at offset %lld runs past the Segment", (long long)pos);
            m->truncated = cut = 1; /* the last Cluster is cut off */
            end = seg_end;
        }
        if (id == CM__MKV_ID_CLUSTER) {
            uint64_t ts;
            if (!cm__mkv_cluster_timestamp(head + hl, (size_t)(got - hl), &ts) ||
                ts > (uint64_t)INT64_MAX / 2)
                UNPROVEN("a Cluster at offset %lld has no Timestamp first", (long long)pos);
            if (prev_ts >= 0 && (int64_t)ts < prev_ts)
                UNPROVEN("Cluster time runs backwards at offset %lld", (long long)pos);
            if (prev_ts >= 0 && (int64_t)ts - prev_ts > gap_max)
                UNPROVEN("Cluster time jumps ahead at offset %lld", (long long)pos);
            prev_ts = (int64_t)ts;
            clusters++;
            int res = walk_cluster(w, pos + hl, end, declared_end, (int64_t)ts, cut);
            if (res != CM__STEP_DONE)
                return res;
        }
        pos = end;
    }
    if (clusters == 0)
        UNPROVEN("no Clusters");
    if (w->billed_blocks == 0)
        UNPROVEN("no block of audio or video");
    return CM__STEP_DONE;
}

/* walk() as cm__timeline_walk runs it. */
static int walk_blocks(void *w)
{
    return walk(w);
}

int cm__mkv_walk(struct cm__measure *m, enum cm__step *step, char *why, size_t whylen)
{
    *step = CM__STEP_UNPROVEN;
    if (m->fc->nb_streams == 0) {
        snprintf(why, whylen, "no streams");
        return 0;
    }
    struct walk *w = calloc(1, sizeof(*w));
    if (!w)
        return CM_PROBE_E_NOMEM;
    w->m = m, w->why = why, w->whylen = whylen;
    int res = map_tracks(m, w);
    if (res == 0) {
        snprintf(why, whylen, "the tracks do not match the streams");
        res = CM__STEP_UNPROVEN;
    } else if (res > 0) {
        w->rd.in = m->in;
        w->rd.buf = malloc(BUF_BYTES);
        res = w->rd.buf ? cm__timeline_walk(m, walk_blocks, w) : CM_PROBE_E_NOMEM;
        free(w->rd.buf);
    }
    free(w);
    if (res < 0)
        return res;
    *step = res == CM__STEP_DONE ? CM__STEP_DONE : CM__STEP_UNPROVEN;
    return 0;
}
