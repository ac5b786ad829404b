/* SPDX-License-Identifier: MIT */
/*
 * probe_walk_util.h - for tests of the structure walks (probe_walk.h): opens a file
 * the way the probe does (its own input, an AVIOContext over it, avformat_open_input
 * with the probe's locks), runs a walk, and demuxes every packet of the same opening
 * for the truth the walk is compared with.
 */
#ifndef PROBE_WALK_UTIL_H
#define PROBE_WALK_UTIL_H

#include <fcntl.h>
#include <sys/stat.h>

#include "probe_test_util.h"
#include "probe_walk.h"

#define WALK_MAX_STREAMS 64

struct walked {
    cm_probe_options opt;
    cm_input in;
    AVFormatContext *fc;
    int billed[WALK_MAX_STREAMS];
    struct cm__span spans[WALK_MAX_STREAMS];
    int res;       /* the walk's result */
    int truncated; /* what it said about truncation */
    char why[256];
};

static inline int walk_interrupt(void *opaque)
{
    return cm__input_expired(opaque);
}

static inline int walk_refuse_open(AVFormatContext *s, AVIOContext **pb, const char *url, int flags,
                                   AVDictionary **options)
{
    (void)s, (void)pb, (void)url, (void)flags, (void)options;
    return AVERROR(EPERM);
}

/* Opens path as probe_measure.c's open_demuxer does. Returns 0, or -1 when the file
   cannot be opened at all. */
static inline int walk_open(struct walked *w, const char *path)
{
    memset(w, 0, sizeof(*w));
    cm_probe_options_init(&w->opt);
    w->in.fd = open(path, O_RDONLY);
    if (w->in.fd < 0)
        return -1;
    struct stat st;
    if (fstat(w->in.fd, &st) != 0)
        return -1;
    w->in.size = st.st_size;
    w->in.opt = &w->opt;
    w->in.deadline_ms = cm__now_ms(&w->opt) + w->opt.time_budget_ms;
    if (cm__input_open_avio(&w->in) != 0)
        return -1;
    const AVInputFormat *ifmt = NULL;
    if (av_probe_input_buffer2(w->in.avio, &ifmt, path, NULL, 0, 1 << 20) < 0 || !ifmt)
        return -1;
    w->fc = avformat_alloc_context();
    if (!w->fc)
        return -1;
    w->fc->pb = w->in.avio;
    w->fc->flags |= AVFMT_FLAG_CUSTOM_IO;
    w->fc->interrupt_callback.callback = walk_interrupt;
    w->fc->interrupt_callback.opaque = &w->in;
    w->fc->io_open = walk_refuse_open;
    w->fc->correct_ts_overflow = 0;
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "format_whitelist", "mov,mp4,m4a,3gp,3g2,mj2,avi", 0);
    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    av_dict_set(&opts, "probesize", "1000000", 0);
    av_dict_set(&opts, "max_streams", "64", 0);
    int err = avformat_open_input(&w->fc, path, ifmt, &opts);
    av_dict_free(&opts);
    if (err < 0) {
        w->fc = NULL;
        return -1;
    }
    if (w->fc->nb_streams > WALK_MAX_STREAMS)
        return -1;
    for (unsigned i = 0; i < w->fc->nb_streams; i++) {
        const AVStream *s = w->fc->streams[i];
        enum AVMediaType t = s->codecpar->codec_type;
        w->billed[i] = !(s->disposition & AV_DISPOSITION_ATTACHED_PIC) &&
                       (t == AVMEDIA_TYPE_VIDEO || t == AVMEDIA_TYPE_AUDIO);
    }
    return 0;
}

static inline void walk_close(struct walked *w)
{
    if (w->fc)
        avformat_close_input(&w->fc);
    cm__input_close(&w->in);
}

/* Earliest start to latest end over the billed streams' spans, in seconds (-1: none). */
static inline double walk_seconds(const struct walked *w)
{
    double lo = 1e300, hi = -1e300;
    for (unsigned i = 0; i < w->fc->nb_streams; i++) {
        if (!w->billed[i] || !w->spans[i].set)
            continue;
        double tb = av_q2d(w->fc->streams[i]->time_base);
        lo = FFMIN(lo, w->spans[i].start * tb);
        hi = FFMAX(hi, w->spans[i].end * tb);
    }
    return hi >= lo ? hi - lo : -1;
}

/* The truth: every packet of the billed streams, first pts to last pts + duration, over
   all billed streams, in seconds (the oracle's rule for a file whose clock runs on). */
static inline double demux_seconds(struct walked *w)
{
    AVPacket *pkt = av_packet_alloc();
    assert_non_null(pkt);
    double lo = 1e300, hi = -1e300;
    while (av_read_frame(w->fc, pkt) >= 0) {
        int s = pkt->stream_index;
        if (s >= 0 && (unsigned)s < w->fc->nb_streams && w->billed[s] &&
            !(pkt->flags & AV_PKT_FLAG_DISCARD)) {
            int64_t ts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
            if (ts != AV_NOPTS_VALUE) {
                double tb = av_q2d(w->fc->streams[s]->time_base);
                lo = FFMIN(lo, ts * tb);
                hi = FFMAX(hi, (ts + FFMAX(pkt->duration, 0)) * tb);
            }
        }
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
    return hi >= lo ? hi - lo : -1;
}

typedef int (*walk_fn)(cm_input *in, AVFormatContext *fc, const int *billed, struct cm__span *spans,
                       int *truncated, char *why, size_t whylen);

/* Opens path and runs fn on it; the result is in w (close it with walk_close). */
static inline void walk_run(struct walked *w, const char *path, walk_fn fn)
{
    if (walk_open(w, path) != 0)
        fail_msg("%s cannot be opened by the demuxer", path);
    w->res = fn(&w->in, w->fc, w->billed, w->spans, &w->truncated, w->why, sizeof(w->why));
}

#endif
