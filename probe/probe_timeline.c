/* SPDX-License-Identifier: MIT */
/*
 * probe_timeline.c - per-stream bookkeeping of timestamps, pieces and the span.
 *
 * Every packet the probe sees (from the demuxer, or a Matroska block read from bytes)
 * is noted here with its presentation time. A stream's timeline is a sequence of
 * pieces: where its clock jumps back (beyond frame reordering) or far ahead (beyond
 * any gap a player would wait out), a new piece starts, as when recordings are joined
 * byte-wise, each with its own clock. Pieces play one after the other, so a stream
 * plays for the sum of its pieces, and the file for its longest billed stream (or, with
 * one piece everywhere, from the earliest start to the latest end over its streams).
 * Which streams are billed is decided at the end, from what the demuxer knows by then
 * (an MPEG-TS stream can show up as data and turn out to be audio).
 */
#include "probe_measure.h"

#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/mathematics.h>

int cm__is_billed(const AVStream *st)
{
    enum AVMediaType t = st->codecpar->codec_type;
    if (st->disposition & AV_DISPOSITION_ATTACHED_PIC)
        return 0;
    return t == AVMEDIA_TYPE_VIDEO || t == AVMEDIA_TYPE_AUDIO;
}

/* Subtitles, attachments and cover art are never billed and need no bookkeeping;
   data streams are kept in case they turn out to be audio. */
static int is_countable(const AVStream *st)
{
    enum AVMediaType t = st->codecpar->codec_type;
    if (st->disposition & AV_DISPOSITION_ATTACHED_PIC)
        return 0;
    return t != AVMEDIA_TYPE_SUBTITLE && t != AVMEDIA_TYPE_ATTACHMENT;
}

static struct cm__track fresh_track(const AVStream *st)
{
    return (struct cm__track){.countable = is_countable(st),
                              .start = AV_NOPTS_VALUE,
                              .end = AV_NOPTS_VALUE,
                              .last_pts = AV_NOPTS_VALUE,
                              .last_dts = AV_NOPTS_VALUE,
                              .seg_start = AV_NOPTS_VALUE,
                              .seg_end = AV_NOPTS_VALUE,
                              .run_end = AV_NOPTS_VALUE,
                              .first_ts = AV_NOPTS_VALUE,
                              .last_frames = 1};
}

int cm__timeline_grow(struct cm__measure *m)
{
    int n = (int)m->fc->nb_streams;
    if (n <= m->ntracks)
        return 0;
    struct cm__track *t = realloc(m->tracks, (size_t)n * sizeof(*t));
    if (!t)
        return CM_PROBE_E_NOMEM;
    for (int i = m->ntracks; i < n; i++)
        t[i] = fresh_track(m->fc->streams[i]);
    m->tracks = t;
    m->ntracks = n;
    return 0;
}

void cm__timeline_reset(struct cm__measure *m)
{
    for (int i = 0; i < m->ntracks; i++)
        m->tracks[i] = fresh_track(m->fc->streams[i]);
    m->truncated = 0;
    m->read_error = 0;
    m->ep_set = m->ep_hold = 0;
    m->ep_extra = 0;
}

int cm__timeline_walk(struct cm__measure *m, int (*walk)(void *arg), void *arg)
{
    struct cm__track *saved = malloc((size_t)FFMAX(m->ntracks, 1) * sizeof(*saved));
    if (!saved)
        return CM_PROBE_E_NOMEM;
    memcpy(saved, m->tracks, (size_t)m->ntracks * sizeof(*saved));
    struct cm__measure before = *m;
    cm__timeline_reset(m);
    int res = walk(arg);
    if (res != CM__STEP_DONE) {
        memcpy(m->tracks, saved, (size_t)m->ntracks * sizeof(*saved));
        m->truncated = before.truncated;
        m->read_error = before.read_error;
        m->ep_lo = before.ep_lo, m->ep_hi = before.ep_hi, m->ep_extra = before.ep_extra;
        m->ep_set = before.ep_set, m->ep_hold = before.ep_hold;
    }
    free(saved);
    return res;
}

/* Length of one frame in its stream's time base: the codec's frame length, else the
   smallest gap between timestamps seen so far, else 0. */
static int64_t frame_length(const AVStream *st, const struct cm__track *t)
{
    const AVCodecParameters *par = st->codecpar;
    if (par->codec_type == AVMEDIA_TYPE_AUDIO && par->sample_rate > 0 && par->frame_size > 0)
        return cm__rescale_q(par->frame_size, (AVRational){1, par->sample_rate}, st->time_base);
    if (par->codec_type == AVMEDIA_TYPE_VIDEO && st->avg_frame_rate.num > 0 &&
        st->avg_frame_rate.den > 0)
        return cm__rescale_q(1, av_inv_q(st->avg_frame_rate), st->time_base);
    return t->delta > 0 ? t->delta : 0;
}

/* Length of one packet: its own duration, else (for PCM-like audio, whose length
   follows from its size) the sample count, else frames x the frame length. A
   bitrate-based guess would be wrong for compressed audio, so none is made. */
static int64_t packet_duration(const AVStream *st, const struct cm__track *t, int64_t duration,
                               int size, int frames)
{
    if (duration > 0)
        return duration;
    const AVCodecParameters *par = st->codecpar;
    if (par->codec_type == AVMEDIA_TYPE_AUDIO && par->sample_rate > 0 &&
        av_get_exact_bits_per_sample(par->codec_id) > 0) {
        int samples = av_get_audio_frame_duration2((AVCodecParameters *)par, size);
        if (samples > 0)
            return cm__rescale_q(samples, (AVRational){1, par->sample_rate}, st->time_base);
    }
    return frames * frame_length(st, t);
}

/* A clock of pts_wrap_bits (MPEG's 33) that wrapped since the stream's first
   timestamp: anything more than half a turn below the first is one turn later. */
static int64_t unwrap(const AVStream *st, struct cm__track *t, int64_t ts)
{
    if (ts == AV_NOPTS_VALUE || st->pts_wrap_bits <= 0 || st->pts_wrap_bits >= 63)
        return ts;
    if (t->first_ts == AV_NOPTS_VALUE)
        t->first_ts = ts;
    else if (ts < t->first_ts - (1LL << (st->pts_wrap_bits - 1)))
        ts += 1LL << st->pts_wrap_bits;
    return ts;
}

/* Whether ts (in st's time base) is a time a file can play at: within +-2^50 us (35
   years) of 0. Anything else comes from a damaged or doctored header and would only
   overflow the arithmetic below (sums of such values stay far below 2^63 in any time
   base down to a fraction of a nanosecond); the packet then counts as untimed. */
static int sane_us(const AVStream *st, int64_t ts)
{
    const int64_t limit = (int64_t)1 << 50;
    if (ts == AV_NOPTS_VALUE || ts <= -(INT64_MAX / 4) || ts >= INT64_MAX / 4)
        return 0;
    int64_t us = cm__rescale_q(ts, st->time_base, AV_TIME_BASE_Q);
    return us > -limit && us < limit;
}

/* The constants of st's time base in t, worked out again when it changed: the
   timestamps sane_us accepts form one range (rescaling never decreases), found by
   bisection, so that a packet's checks are two comparisons. */
static void timebase_consts(const AVStream *st, struct cm__track *t)
{
    if (t->tb.num == st->time_base.num && t->tb.den == st->time_base.den && t->tb.den)
        return;
    t->tb = st->time_base;
    t->tb_2s = cm__rescale_q(2, (AVRational){1, 1}, st->time_base);
    t->tb_10s = cm__rescale_q(10, (AVRational){1, 1}, st->time_base);
    if (!sane_us(st, 0)) {
        t->sane_lo = 1, t->sane_hi = 0; /* nothing is */
        return;
    }
    int64_t ok = 0, bad = INT64_MAX / 4; /* the highest sane: in [ok, bad) */
    while (bad - ok > 1) {
        int64_t mid = ok + (bad - ok) / 2;
        *(sane_us(st, mid) ? &ok : &bad) = mid;
    }
    t->sane_hi = ok;
    ok = 0, bad = -(INT64_MAX / 4); /* the lowest sane: in (bad, ok] */
    while (ok - bad > 1) {
        int64_t mid = ok - (ok - bad) / 2;
        *(sane_us(st, mid) ? &ok : &bad) = mid;
    }
    t->sane_lo = ok;
}

static int sane_ts(const struct cm__track *t, int64_t ts)
{
    return ts >= t->sane_lo && ts <= t->sane_hi;
}

/* Closes the current piece of t. */
static void close_piece(struct cm__track *t)
{
    if (t->seg_start != AV_NOPTS_VALUE && t->extra < INT64_MAX / 4)
        t->extra += t->seg_end - t->seg_start;
    t->seg_start = t->seg_end = t->run_end = AV_NOPTS_VALUE;
    t->pieces++;
}

/* The file-level epochs (see struct cm__measure). */
static void note_epoch(struct cm__measure *m, const AVStream *st, const struct cm__track *t,
                       int64_t ts, int64_t end)
{
    if (!cm__is_billed(st))
        return;
    int64_t s = cm__rescale_q(ts, st->time_base, AV_TIME_BASE_Q);
    int64_t e = cm__rescale_q(end, st->time_base, AV_TIME_BASE_Q);
    const int64_t away = 10 * (int64_t)AV_TIME_BASE;
    if (m->ep_set && t->packets == 0 && !m->ep_hold &&
        (s < m->ep_hi - away || s > m->ep_hi + away)) {
        m->ep_extra += m->ep_hi - m->ep_lo;
        m->ep_set = 0;
    }
    if (!m->ep_set) {
        m->ep_lo = s, m->ep_hi = e, m->ep_set = 1;
        return;
    }
    m->ep_lo = FFMIN(m->ep_lo, s);
    m->ep_hi = FFMAX(m->ep_hi, e);
}

void cm__note_ts(struct cm__measure *m, int idx, int64_t ts, int64_t dts, int64_t duration,
                 int frames, int size)
{
    if (idx < 0 || idx >= m->ntracks)
        return;
    struct cm__track *t = &m->tracks[idx];
    const AVStream *st = m->fc->streams[idx];
    if (!t->countable)
        return;
    timebase_consts(st, t);
    if (!sane_ts(t, ts))
        ts = AV_NOPTS_VALUE;
    if (!sane_ts(t, dts))
        dts = AV_NOPTS_VALUE;
    ts = unwrap(st, t, ts);
    /* Decode times only ever grow within a piece (reordering moves presentation times,
       never decode times): any step back is a clock that restarted, however short the
       stretch before it (fragments whose tfdt were all set to 0 step back by one
       fragment each, less than the reordering slack below). */
    int dts_back = 0;
    if (dts != AV_NOPTS_VALUE) {
        dts = unwrap(st, t, dts);
        dts_back = t->last_dts != AV_NOPTS_VALUE && dts < t->last_dts;
        t->last_dts = dts;
    }
    if (ts == AV_NOPTS_VALUE) {
        /* A frame split out of a PES that carried one timestamp for several (MPEG-TS
           audio): it plays after the last stamped one. */
        if (t->last_pts != AV_NOPTS_VALUE) {
            t->untimed += frames;
            int64_t after = frame_length(st, t);
            int64_t n = t->untimed + t->last_frames;
            if (after <= 0 || !sane_ts(t, after) || n > (INT64_MAX / 4) / after)
                return; /* no sane frame length: the frame adds nothing */
            int64_t end = t->last_pts + n * after;
            if (!sane_ts(t, end))
                return;
            if (end > t->end)
                t->end = end;
            if (end > t->seg_end)
                t->seg_end = end;
            if (end > t->run_end)
                t->run_end = end;
        }
        return;
    }
    if (t->last_pts != AV_NOPTS_VALUE && ts > t->last_pts) {
        int64_t gap = (ts - t->last_pts) / (t->untimed + t->last_frames);
        if (gap > 0 && (t->delta == 0 || gap < t->delta))
            t->delta = gap;
    }
    int64_t dur = packet_duration(st, t, duration, size, frames);
    if (dur < 0 || !sane_ts(t, dur))
        dur = 0;
    /* Frame reordering moves a pts back by at most 16 frames (H.264's deepest); a jump
       back of more than that and 2 s, or ahead by more than 10 s, starts a new piece
       (files glued together, each with its own clock): players play on through both. */
    int64_t reorder = FFMAX(t->tb_2s, 16 * t->delta);
    int64_t gap_max = FFMAX(t->tb_10s, 16 * t->delta);
    if (t->run_end != AV_NOPTS_VALUE &&
        (dts_back || ts < t->run_end - reorder || ts > t->run_end + gap_max))
        close_piece(t);
    int64_t end = ts + dur;
    note_epoch(m, st, t, ts, end);
    t->untimed = 0;
    t->last_pts = ts;
    t->last_frames = frames;
    t->run_end = t->run_end == AV_NOPTS_VALUE ? end : FFMAX(t->run_end, end);
    if (t->start == AV_NOPTS_VALUE || ts < t->start)
        t->start = ts;
    if (t->end == AV_NOPTS_VALUE || end > t->end)
        t->end = end;
    if (t->seg_start == AV_NOPTS_VALUE) {
        t->seg_start = ts;
        t->seg_end = end;
    } else {
        t->seg_start = FFMIN(t->seg_start, ts);
        t->seg_end = FFMAX(t->seg_end, end);
    }
    t->packets++;
}

/* The sample rate of an ADTS frame header (raw .aac), or 0. */
static int adts_samples(const uint8_t *p, int size, int *rate)
{
    static const int RATES[13] = {96000, 88200, 64000, 48000, 44100, 32000, 24000,
                                  22050, 16000, 12000, 11025, 8000,  7350};
    if (size < 7 || p[0] != 0xFF || (p[1] & 0xF6) != 0xF0)
        return 0;
    int idx = (p[2] >> 2) & 0xF;
    if (idx >= 13)
        return 0;
    *rate = RATES[idx];
    return 1024 * ((p[6] & 3) + 1);
}

/* The samples in a run of ADTS frames (an MPEG-TS/PS audio PES read without parsers),
   or 0 when buf is not exactly such a run. */
static int64_t adts_run_samples(const uint8_t *p, int size, int *rate)
{
    int64_t samples = 0;
    int off = 0;
    while (off < size) {
        int n = adts_samples(p + off, size - off, rate);
        if (n == 0 || size - off < 6)
            return 0;
        int len = (p[off + 3] & 3) << 11 | p[off + 4] << 3 | p[off + 5] >> 5;
        if (len < 7)
            return 0;
        samples += n;
        off += len;
    }
    return off == size ? samples : 0;
}

/* The length of a parser-less MPEG audio PES (MP2, MP3, AC-3: several frames each) from
   its size at the time per byte of the PES before it; 0 while unknown. */
static int64_t pes_audio_duration(struct cm__track *t, int64_t ts, int size)
{
    if (t->last_pts != AV_NOPTS_VALUE && ts > t->last_pts && t->pes_bytes > 0) {
        t->rate_ticks = ts - t->last_pts;
        t->rate_bytes = t->pes_bytes;
    }
    t->pes_bytes = size;
    if (t->rate_bytes <= 0 || size <= 0)
        return 0;
    return av_rescale(size, t->rate_ticks, t->rate_bytes);
}

/* Whether a packet is played. libavformat marks for discarding the samples an edit
   list leaves out (priming, the frames before a cut's first one) and the samples of an
   MP4 fragment that overlaps the earlier ones in time. The first are not played; the
   second are a piece of their own when their clock went back (a tfdt edited to 0):
   players that follow the fragments play them, so they are billed. */
static int discard_plays(struct cm__measure *m, int idx, const AVPacket *pkt, int64_t ts)
{
    struct cm__track *t = &m->tracks[idx];
    if (!(pkt->flags & AV_PKT_FLAG_DISCARD) || t->discard_piece)
        return 1; /* once fragments overlapped, every later one is played */
    if (t->packets == 0 || ts == AV_NOPTS_VALUE || t->run_end == AV_NOPTS_VALUE)
        return 0;
    const AVStream *st = m->fc->streams[idx];
    int64_t reorder = FFMAX(cm__rescale_q(2, (AVRational){1, 1}, st->time_base), 16 * t->delta);
    if (ts >= t->run_end - reorder)
        return 0;
    t->discard_piece = 1;
    return 1;
}

void cm__note_packet(struct cm__measure *m, const AVPacket *pkt)
{
    int idx = pkt->stream_index;
    int64_t ts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
    if (idx >= 0 && idx < m->ntracks && !discard_plays(m, idx, pkt, ts))
        return;
    if (ts == AV_NOPTS_VALUE && idx >= 0 && idx < m->ntracks && m->fmt &&
        strcmp(m->fmt->name, "aac") == 0) {
        /* Raw ADTS AAC carries no timestamps: its frames play one after the other,
           each for the samples its header gives. */
        const AVStream *st = m->fc->streams[idx];
        int rate = 0, n = adts_samples(pkt->data, pkt->size, &rate);
        if (n > 0 && st->codecpar->codec_id == AV_CODEC_ID_AAC) {
            AVRational q = {1, rate};
            struct cm__track *t = &m->tracks[idx];
            int64_t at = cm__rescale_q(t->samples, q, st->time_base);
            t->samples += n;
            int64_t dur = cm__rescale_q(t->samples, q, st->time_base) - at;
            cm__note_ts(m, idx, at, at, dur > 0 ? dur : 1, 1, pkt->size);
            return;
        }
    }
    /* Without parsers, an MPEG PES without a timestamp is a piece of a frame whose first
       piece was stamped, not a frame of its own: it adds no time. (A Matroska lace or an
       FLV tag without one is a frame, and plays after the last stamped one.) */
    if (ts == AV_NOPTS_VALUE && m->pes) {
        if (idx >= 0 && idx < m->ntracks)
            m->tracks[idx].pes_bytes += pkt->size;
        return;
    }
    int64_t duration = pkt->duration;
    if (duration <= 0 && idx >= 0 && idx < m->ntracks &&
        m->fc->streams[idx]->codecpar->codec_id == AV_CODEC_ID_AAC) {
        /* A PES of several ADTS frames: its length is theirs (the last one's matters). */
        int rate = 0;
        int64_t n = adts_run_samples(pkt->data, pkt->size, &rate);
        if (n > 0)
            duration = cm__rescale_q(n, (AVRational){1, rate}, m->fc->streams[idx]->time_base);
    }
    if (duration <= 0 && m->pes && idx >= 0 && idx < m->ntracks &&
        m->fc->streams[idx]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO)
        duration = pes_audio_duration(&m->tracks[idx], ts, pkt->size);
    cm__note_ts(m, idx, ts, pkt->dts, duration, 1, pkt->size);
}

void cm__note_span(struct cm__measure *m, int idx, int64_t start, int64_t end)
{
    if (idx < 0 || idx >= m->ntracks || end < start)
        return;
    struct cm__track *t = &m->tracks[idx];
    t->start = t->seg_start = start;
    t->end = t->seg_end = t->run_end = end;
    t->extra = 0;
    t->pieces = 0;
    t->packets++;
}

void cm__timeline_skip(struct cm__measure *m)
{
    m->ep_hold = 1;
    for (int i = 0; i < m->ntracks; i++) {
        struct cm__track *t = &m->tracks[i];
        t->last_pts = t->last_dts = t->run_end = AV_NOPTS_VALUE;
        t->untimed = 0;
    }
}

int cm__billed_count(const struct cm__measure *m)
{
    int n = 0;
    for (int i = 0; i < m->ntracks; i++)
        n += m->tracks[i].countable && cm__is_billed(m->fc->streams[i]);
    return n;
}

int64_t cm__span_us(const struct cm__measure *m)
{
    int64_t lo = INT64_MAX, hi = INT64_MIN, pieced = -1;
    int any_pieces = 0;
    for (int i = 0; i < m->ntracks; i++) {
        const struct cm__track *t = &m->tracks[i];
        const AVStream *st = m->fc->streams[i];
        if (!t->countable || !cm__is_billed(st) || t->start == AV_NOPTS_VALUE ||
            t->end == AV_NOPTS_VALUE)
            continue;
        int64_t s = cm__rescale_q(t->start, st->time_base, AV_TIME_BASE_Q);
        int64_t e = cm__rescale_q(t->end, st->time_base, AV_TIME_BASE_Q);
        lo = FFMIN(lo, s);
        hi = FFMAX(hi, e);
        any_pieces |= t->pieces > 0;
        int64_t sum = t->extra + (t->seg_start != AV_NOPTS_VALUE ? t->seg_end - t->seg_start : 0);
        pieced = FFMAX(pieced, cm__rescale_q(sum, st->time_base, AV_TIME_BASE_Q));
    }
    if (lo == INT64_MAX || hi < lo)
        return -1;
    /* Pieces that each have their own clock play one after another: the longest
       stream counted piece by piece (the overall first-to-last means nothing). */
    int64_t span = any_pieces ? pieced : hi - lo;
    /* Pieces that came with streams of their own: the epochs add up. */
    if (m->ep_extra > 0 && m->ep_set)
        span = FFMAX(span, m->ep_extra + m->ep_hi - m->ep_lo);
    return span;
}
