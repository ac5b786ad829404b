/* SPDX-License-Identifier: MIT */
/*
 * probe_oracle.c - the oracle: every packet of the file demuxed, in order.
 *
 * Demuxing every packet (never decoding one) is the reference answer every fast path
 * is tested against: the timeline (probe_timeline.c) sees every timestamp of every
 * stream, so clock restarts and jumps anywhere in the file are pieces, and what the
 * content plays is what is billed. It is also the path of every container without a
 * structure that can be trusted without reading it (MPEG-TS, MPEG-PS, FLV, Ogg, ...).
 *
 * Speed: the demuxer's parsers, which split packets into frames and scan every byte
 * for start codes, are turned off where the container stamps its own packets (one
 * timestamp per PES or tag is all the timeline needs), and streams that are never
 * billed (subtitles, attachments) are discarded before their packets are assembled.
 */
#include "probe_measure.h"

#include <string.h>

#include <libavutil/mem.h>

#define START_PACKETS_PER_STREAM 8
#define START_PACKETS_MAX 2000

void cm__oracle_setup(struct cm__measure *m)
{
    /* Raw elementary streams and raw PCM need their parser or libavformat's fill-in to
       have timestamps at all; containers that stamp every packet do not. */
    if (m->fmt->stamped) {
        m->fc->flags |= AVFMT_FLAG_NOPARSE | AVFMT_FLAG_NOFILLIN;
        m->pes = strcmp(m->fmt->name, "mpegts") == 0 || strcmp(m->fmt->name, "mpeg") == 0;
    }
    for (unsigned i = 0; i < m->fc->nb_streams; i++) {
        enum AVMediaType t = m->fc->streams[i]->codecpar->codec_type;
        if (t == AVMEDIA_TYPE_SUBTITLE || t == AVMEDIA_TYPE_ATTACHMENT)
            m->fc->streams[i]->discard = AVDISCARD_ALL;
    }
}

int cm__read_one(struct cm__measure *m, AVPacket *pkt, enum cm__step *step)
{
    *step = CM__STEP_END;
    int err = av_read_frame(m->fc, pkt);
    if (m->in->timed_out) {
        if (err >= 0)
            av_packet_unref(pkt);
        return CM_PROBE_E_TIMEOUT;
    }
    if (err == AVERROR(ENOMEM))
        return CM_PROBE_E_NOMEM;
    if (err == AVERROR_EOF)
        return 0;
    if (err < 0) {
        /* A damaged stretch: what was read so far is the content. */
        m->read_error = err;
        return 0;
    }
    int g = cm__timeline_grow(m);
    if (g != 0) {
        av_packet_unref(pkt);
        return g;
    }
    m->packets++;
    if (pkt->pos >= 0 && pkt->pos + pkt->size > m->last_end)
        m->last_end = pkt->pos + pkt->size;
    *step = CM__STEP_DONE;
    return 0;
}

int cm__read_start(struct cm__measure *m, AVPacket *pkt, enum cm__step *step)
{
    for (int n = 0; n < START_PACKETS_MAX; n++) {
        int err = cm__read_one(m, pkt, step);
        if (err < 0 || *step == CM__STEP_END)
            return err;
        cm__note_packet(m, pkt);
        av_packet_unref(pkt);
        int done = 1;
        for (int i = 0; i < m->ntracks; i++)
            if (m->tracks[i].countable && cm__is_billed(m->fc->streams[i]) &&
                m->tracks[i].packets < START_PACKETS_PER_STREAM)
                done = 0;
        if (done && m->ntracks > 0)
            break;
    }
    *step = CM__STEP_DONE;
    return 0;
}

/* Where the next FLV file header ("FLV", version 1, a 9-byte header) starts at or after
   from: a file joined on with cat, where libavformat's FLV demuxer stops reading. Returns
   its offset, -1 when there is none, or a negative probe code. */
static int64_t next_flv_header(struct cm__measure *m, int64_t from)
{
    enum { CHUNK = 1 << 20, OVERLAP = 8 };
    uint8_t *buf = av_malloc(CHUNK + OVERLAP);
    if (!buf)
        return CM_PROBE_E_NOMEM;
    int64_t found = -1;
    for (int64_t at = from; at < m->in->size && found == -1; at += CHUNK) {
        int64_t got = cm__input_pread(m->in, buf, CHUNK + OVERLAP, at);
        if (got < 0) {
            found = CM_PROBE_E_TIMEOUT;
            break;
        }
        for (int64_t i = 0; i + 9 <= got && i < CHUNK; i++)
            if (buf[i] == 'F' && buf[i + 1] == 'L' && buf[i + 2] == 'V' && buf[i + 3] == 1 &&
                !(buf[i + 4] & 0xFA) && buf[i + 5] == 0 && buf[i + 6] == 0 && buf[i + 7] == 0 &&
                buf[i + 8] == 9) {
                found = at + i;
                break;
            }
        if (got < CHUNK + OVERLAP)
            break;
    }
    av_free(buf);
    return found;
}

int cm__oracle_scan(struct cm__measure *m, AVPacket *pkt)
{
    const int64_t limit = m->in->opt->max_scan_packets;
    for (int joins = 0;;) {
        if (m->packets > limit)
            return CM_PROBE_E_TOOLONG;
        enum cm__step step;
        int err = cm__read_one(m, pkt, &step);
        if (err < 0)
            return err;
        if (step == CM__STEP_END) {
            /* FLV files joined byte-wise: the demuxer stops at the second file header.
               Every further piece is read from its first tag on (the search starts
               after the last packet read, also by cm__read_start before the scan). */
            if (strcmp(m->fmt->name, "flv") != 0 || joins >= 1000)
                return 0;
            int64_t at = next_flv_header(m, m->last_end);
            if (at < -1)
                return (int)at;
            if (at < 0 || av_seek_frame(m->fc, -1, at + 13, AVSEEK_FLAG_BYTE) < 0)
                return m->in->timed_out ? CM_PROBE_E_TIMEOUT : 0;
            joins++;
            m->read_error = 0;
            m->last_end = at + 13;
            continue;
        }
        cm__note_packet(m, pkt);
        av_packet_unref(pkt);
    }
}
