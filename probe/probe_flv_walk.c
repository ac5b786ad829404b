/* SPDX-License-Identifier: MIT */
/*
 * probe_flv_walk.c - FLV measured by walking every tag header.
 *
 * An FLV file is a header and then tags, each an 11-byte header (type, data size,
 * timestamp in ms, stream id), its data and the 4-byte size of the tag just ended. The
 * walk reads every tag header and the first bytes of its data (the audio or video
 * flags, the AVC packet type and composition time), skips the rest, and notes every
 * tag libavformat's demuxer would return as a packet into the same timeline the
 * oracle fills (cm__note_ts), with the same stream, timestamps and size, in the same
 * order. It only answers for a file whose structure leaves the demuxer no choice:
 *
 *   - the tags fill the file exactly, each followed by its own size (a mismatch makes
 *     the demuxer resynchronise; bytes after the last tag may be a second file joined
 *     on, which the oracle reads);
 *   - only audio and video tags, after at most one onMetaData script tag at time 0;
 *   - one audio codec with the same flags in every audio tag (MP3 or AAC), one video
 *     codec (Sorenson H.263 or H.264, no negative composition time), each the codec
 *     of the one stream of its kind the demuxer made from the first packets;
 *   - no AAC frame that looks like an ADTS header (the oracle would length it).
 *
 * Anything else, and more tags than the probe scans, sends the file to the oracle,
 * which then reads on from the demuxer's first packets as if the walk had not run.
 */
#include "probe_measure.h"
#include "probe_bytes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_BYTES (64 << 10)
#define PEEK 32 /* previous tag size, tag header, flags, AVC type and composition time */

#define FLV_TAG_AUDIO 8
#define FLV_TAG_VIDEO 9
#define FLV_TAG_META 18
#define FLV_AUDIO_MP3 2
#define FLV_AUDIO_AAC 10
#define FLV_VIDEO_H263 2
#define FLV_VIDEO_H264 7
#define FLV_FRAME_INFO 5 /* video info/command frame: no packet */

struct flv_walk {
    struct cm__measure *m;
    cm_input *in;
    uint8_t *buf;
    int64_t buf_off, buf_len;
    int audio, video;             /* stream index of each kind, or -1 */
    int audio_flags, video_codec; /* of the first tag of each kind, or -1 */
    char *why;
    size_t whylen;
};

#define UNPROVEN(...)                                                                              \
    do {                                                                                           \
        snprintf(w->why, w->whylen, __VA_ARGS__);                                                  \
        return CM__STEP_UNPROVEN;                                                                  \
    } while (0)

/* Makes [off, off + n) available: returns how many bytes *p holds (fewer at the end of
   the file), or -1 when the deadline passed. */
static int64_t peek(struct flv_walk *w, int64_t off, int64_t n, const uint8_t **p)
{
    int64_t buf_end = w->buf_off + w->buf_len; /* at the end of the file: all there is */
    if (off < w->buf_off || (off + n > buf_end && buf_end < w->in->size)) {
        int64_t got = cm__input_pread(w->in, w->buf, BUF_BYTES, off);
        if (got < 0)
            return -1;
        w->buf_off = off, w->buf_len = got;
    }
    int64_t have = w->buf_off + w->buf_len - off;
    if (have <= 0) { /* past the end of the file */
        *p = w->buf;
        return 0;
    }
    *p = w->buf + (off - w->buf_off);
    return have < n ? have : n;
}

/* The one stream of kind t the demuxer made, -1 when none, -2 when more than one. */
static int only_stream(const AVFormatContext *fc, enum AVMediaType t)
{
    int found = -1;
    for (unsigned i = 0; i < fc->nb_streams; i++)
        if (fc->streams[i]->codecpar->codec_type == t)
            found = found == -1 ? (int)i : -2;
    return found;
}

/* One audio or video tag of size data bytes at off (its header), timestamp dts (ms),
   whose first got bytes of data (up to 5) are at p: noted as the demuxer's packet, or
   nothing where the demuxer returns none. */
static int walk_av(struct flv_walk *w, int type, int64_t off, int64_t size, int64_t dts,
                   const uint8_t *p, int64_t got)
{
    if (got < 1 || size < 1)
        UNPROVEN("an FLV tag at offset %lld is cut off", (long long)off);
    int flags = p[0];
    int64_t left = size - 1; /* after the flags byte */
    int64_t pts = dts;
    int idx;
    if (type == FLV_TAG_AUDIO) {
        idx = w->audio;
        if (w->audio_flags < 0)
            w->audio_flags = flags;
        if (idx < 0 || flags != w->audio_flags ||
            (flags >> 4 != FLV_AUDIO_MP3 && flags >> 4 != FLV_AUDIO_AAC))
            UNPROVEN("the FLV audio tag at offset %lld has other flags or codec", (long long)off);
        if (left == 0)
            return CM__STEP_DONE; /* empty: no packet */
        if (flags >> 4 == FLV_AUDIO_AAC) {
            if (got < 2)
                UNPROVEN("an FLV tag at offset %lld is cut off", (long long)off);
            left--;
            if (p[1] == 0)
                return CM__STEP_DONE; /* the AAC configuration: no packet */
            if (left >= 2 && got >= 4 && p[2] == 0xFF && (p[3] & 0xF6) == 0xF0)
                UNPROVEN("an AAC frame in the FLV tag at offset %lld looks like ADTS",
                         (long long)off);
        }
    } else {
        idx = w->video;
        if ((flags >> 4) == FLV_FRAME_INFO)
            return CM__STEP_DONE; /* a command frame: no packet */
        int codec = flags & 0x0F;
        if (w->video_codec < 0)
            w->video_codec = codec;
        if (idx < 0 || codec != w->video_codec ||
            (codec != FLV_VIDEO_H263 && codec != FLV_VIDEO_H264))
            UNPROVEN("the FLV video tag at offset %lld has another codec", (long long)off);
        if (left == 0)
            return CM__STEP_DONE;
        if (codec == FLV_VIDEO_H264) {
            if (got < 5 || left < 4)
                UNPROVEN("an FLV tag at offset %lld is cut off", (long long)off);
            int32_t cts = (int32_t)((cm__rb24(p + 2) + 0xff800000u) ^ 0xff800000u);
            if (cts < 0)
                UNPROVEN("the FLV video tag at offset %lld has a negative composition time",
                         (long long)off);
            left -= 4;
            if (p[1] == 0)
                return CM__STEP_DONE; /* the AVC configuration: no packet */
            pts = dts + cts;
            if (pts - dts > 1000 * 60 * 15)
                dts = pts = AV_NOPTS_VALUE; /* the demuxer drops both */
        }
    }
    if (left == 0)
        return CM__STEP_DONE;
    if (left > INT32_MAX)
        UNPROVEN("an FLV tag at offset %lld is too large", (long long)off);
    cm__note_ts(w->m, idx, pts, dts, 0, 1, (int)left);
    return CM__STEP_DONE;
}

/* Every tag from the first to the end of the file. */
static int walk(struct flv_walk *w)
{
    const uint8_t *p;
    int64_t got = peek(w, 0, 9, &p);
    if (got < 0)
        return CM_PROBE_E_TIMEOUT;
    if (got < 9 || memcmp(p, "FLV", 3) != 0)
        UNPROVEN("no FLV header");
    int64_t off = (int64_t)cm__rb32(p + 5) + 4; /* the first tag, after PreviousTagSize0 */
    int64_t tags = 0, limit = w->in->opt->max_scan_packets;
    while (off < w->in->size) {
        if (++tags > limit)
            UNPROVEN("more than %lld FLV tags", (long long)limit);
        if ((tags & 1023) == 0 && cm__input_expired(w->in))
            return CM_PROBE_E_TIMEOUT;
        /* the header and the first bytes of the data (a script tag's name) */
        got = peek(w, off, 11 + 13, &p);
        if (got < 0)
            return CM_PROBE_E_TIMEOUT;
        if (got < 11)
            UNPROVEN("bytes after the last FLV tag at offset %lld", (long long)off);
        int type = p[0];
        int64_t size = cm__rb24(p + 1);
        int64_t dts = (int64_t)cm__rb24(p + 4) | (int64_t)p[7] << 24;
        int64_t data = FFMIN(got - 11, size);
        if (cm__rb24(p + 8) != 0)
            UNPROVEN("the FLV tag at offset %lld has a stream id", (long long)off);
        int res = CM__STEP_DONE;
        if (size == 0) {
            /* no packet */
        } else if (type == FLV_TAG_META) {
            /* onMetaData at time 0, first: the demuxer reads it and returns no packet */
            static const uint8_t META[13] = {2,   0,   10,  'o', 'n', 'M', 'e',
                                             't', 'a', 'D', 'a', 't', 'a'};
            if (tags != 1 || dts != 0 || size <= 13 + 1 + 4 || data < 13 ||
                memcmp(p + 11, META, 13))
                UNPROVEN("an FLV script tag at offset %lld other than onMetaData first",
                         (long long)off);
        } else if (type == FLV_TAG_AUDIO || type == FLV_TAG_VIDEO) {
            res = walk_av(w, type, off, size, dts, p + 11, FFMIN(data, 5));
        } else {
            UNPROVEN("an FLV tag of type %d at offset %lld", type, (long long)off);
        }
        if (res != CM__STEP_DONE)
            return res;
        int64_t end = off + 11 + size;
        const uint8_t *q;
        int64_t have = peek(w, end, 4 + 11 + 13, &q); /* its size, and the next tag */
        if (have < 0)
            return CM_PROBE_E_TIMEOUT;
        if (have < 4 || cm__rb32(q) != size + 11)
            UNPROVEN("the FLV tag at offset %lld is not followed by its size", (long long)off);
        off = end + 4;
    }
    if (off != w->in->size)
        UNPROVEN("the last FLV tag runs past the end of the file");
    return CM__STEP_DONE;
}

/* walk() as cm__timeline_walk runs it. */
static int walk_tags(void *w)
{
    return walk(w);
}

int cm__flv_walk(struct cm__measure *m, enum cm__step *step, char *why, size_t whylen)
{
    *step = CM__STEP_UNPROVEN;
    struct flv_walk w = {.m = m, .in = m->in, .why = why, .whylen = whylen};
    w.audio = only_stream(m->fc, AVMEDIA_TYPE_AUDIO);
    w.video = only_stream(m->fc, AVMEDIA_TYPE_VIDEO);
    w.audio_flags = w.video_codec = -1;
    if (w.audio < -1 || w.video < -1 || (int)m->fc->nb_streams != (w.audio >= 0) + (w.video >= 0) ||
        m->fc->nb_streams == 0) {
        snprintf(why, whylen, "the FLV streams are not one audio and one video");
        return 0;
    }
    w.buf = malloc(BUF_BYTES);
    int res = w.buf ? cm__timeline_walk(m, walk_tags, &w) : CM_PROBE_E_NOMEM;
    free(w.buf);
    if (res < 0)
        return res;
    *step = res == CM__STEP_DONE ? CM__STEP_DONE : CM__STEP_UNPROVEN;
    return 0;
}
