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

#define START_PACKETS_PER_STREAM 8
#define START_PACKETS_MAX 2000

void cm__oracle_setup(struct cm__measure *m)
{
    /* Raw elementary streams and raw PCM need their parser or libavformat's fill-in to
       have timestamps at all; containers that stamp every packet do not. */
    if (m->fmt->stamped)
        m->fc->flags |= AVFMT_FLAG_NOPARSE | AVFMT_FLAG_NOFILLIN;
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

int cm__oracle_scan(struct cm__measure *m, AVPacket *pkt)
{
    const int64_t limit = m->in->opt->max_scan_packets;
    for (;;) {
        if (m->packets > limit)
            return CM_PROBE_E_TOOLONG;
        enum cm__step step;
        int err = cm__read_one(m, pkt, &step);
        if (err < 0 || step == CM__STEP_END)
            return err;
        cm__note_packet(m, pkt);
        av_packet_unref(pkt);
    }
}
