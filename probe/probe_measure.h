/* SPDX-License-Identifier: MIT */
/*
 * probe_measure.h - what the measurement's files share (internal).
 *
 * probe_policy.c    which demuxers are opened and how each is measured (the ALLOWED
 *                   table; libavformat's format_whitelist is derived from it).
 * probe_timeline.c  the bookkeeping: per stream, the timestamps seen, pieces where a
 *                   clock restarts or jumps, and the span they add up to.
 * probe_oracle.c    the oracle: every packet demuxed (never decoded), in order.
 * probe_mkv_walk.c  Matroska: every Cluster header of the Segment and every Block
 *                   header walked, each block noted in the timeline.
 * probe_flv_walk.c  FLV: every tag header walked, each packet noted in the timeline.
 * probe_measure.c   orchestration: open, pick the path, fall back to the oracle,
 *                   fill the report.
 * probe_mp4.c, probe_avi.c (probe_walk.h): the MP4 and AVI structure walks.
 */
#ifndef CM_PROBE_MEASURE_H
#define CM_PROBE_MEASURE_H

#include "probe_internal.h"

#include <libavformat/avformat.h>
#include <libavutil/mathematics.h>

/* How a container is measured. */
enum cm__plan {
    CM__PLAN_INDEX,    /* a structure walk with byte accounting (MP4/MOV, AVI), else the oracle */
    CM__PLAN_CLUSTERS, /* Matroska/WebM: the Cluster walk, else the oracle */
    CM__PLAN_TAGS,     /* FLV: the tag walk, else the oracle */
    CM__PLAN_SCAN,     /* the oracle: no structure that can be trusted without reading it all */
    CM__PLAN_STILL,    /* a still picture: refused as no_audio_or_video */
    CM__PLAN_SUBTITLE, /* subtitles only: refused as no_audio_or_video */
};

struct cm__allowed {
    const char *name; /* libavformat's demuxer name, exactly */
    enum cm__plan plan;
    int header_duration; /* does the container's header declare a duration? */
    int stamped;         /* the container stamps every packet itself (PES, tag, block,
                            sample): the oracle can run without parsers */
};

/* The entry for a demuxer name, or NULL when the demuxer is refused. */
const struct cm__allowed *cm__find_allowed(const char *name);
/* libavformat's format_whitelist: every name of every allowed demuxer, comma-separated,
   derived from the table. Returns a static string built once (thread-safe). */
const char *cm__format_whitelist(void);
/* What a refused demuxer is, for a person: "a playlist", "an image sequence", ... */
const char *cm__refused_kind(const char *name);

/* The outcome of one measuring step, apart from errors (which are negative CM_PROBE_E_*
   codes returned beside it). */
enum cm__step {
    CM__STEP_DONE = 0,     /* the step measured the file: the timeline holds the answer */
    CM__STEP_UNPROVEN = 1, /* the step could not prove an answer: the oracle must measure */
    CM__STEP_END = 2,      /* the end of the file was reached while reading */
};

/* What we learn about one stream, in its own time base. */
struct cm__track {
    int countable; /* might be billed: not subtitles, attachments or cover art */
    int64_t start; /* earliest pts seen, or AV_NOPTS_VALUE */
    int64_t end;   /* latest pts + duration seen */
    int64_t last_pts;
    int64_t last_dts; /* the last decode time seen, or AV_NOPTS_VALUE */
    int64_t untimed;  /* frames without a timestamp since last_pts */
    int last_frames;  /* frames in the packet at last_pts (Matroska lacing) */
    int64_t delta;    /* smallest positive gap between consecutive pts: a frame's length */
    int64_t packets;
    int64_t samples; /* untimed raw audio: samples so far (timestamps made from counts) */
    /* Timestamps that jump back or far ahead (pieces concatenated byte-wise, each with
       its own clock) play one after the other: closed pieces add up in `extra`. */
    int64_t seg_start, seg_end, extra;
    int64_t run_end;  /* latest end in the current piece: jumps are judged against it */
    int64_t first_ts; /* the first timestamp seen: the reference for clock wraps */
    int pieces;       /* pieces closed so far */
    /* Parser-less MPEG audio: the bytes of the last stamped PES and the time per byte
       seen between the last two, for the length of a PES that carries several frames. */
    int64_t pes_bytes, rate_ticks, rate_bytes;
    /* A restart made of packets libavformat marks to be discarded (MP4 fragments whose
       tfdt moved back overlap the earlier ones): counted as the new piece they are. */
    int discard_piece;
    /* Constants of the stream's time base, worked out once (timebase_consts in
       probe_timeline.c): 2 s and 10 s in it, and the range of timestamps sane_ts
       accepts. */
    AVRational tb;
    int64_t tb_2s, tb_10s, sane_lo, sane_hi;
};

struct cm__measure {
    AVFormatContext *fc;
    cm_input *in;
    cm_probe_report *r;
    const struct cm__allowed *fmt;
    struct cm__track *tracks;
    int ntracks;
    int truncated;
    int read_error; /* the last av_read_frame error other than EOF */
    int64_t packets;
    int64_t last_end; /* where the bytes of the last packet read end (FLV joins) */
    /* Epochs: a stream that first shows up more than 10 s away from where the others
       are (a piece joined on with other codecs makes new streams, on its own clock)
       starts a new epoch; closed epochs add up in ep_extra (all in microseconds). */
    int64_t ep_lo, ep_hi, ep_extra;
    int ep_set;
    int ep_hold; /* after a skip (a walk's jump to the end): no new epochs */
    int pes;     /* MPEG-TS/PS read without parsers: packets are whole PES, and one
                    without a timestamp continues a stamped one instead of being a frame */
};

/* av_rescale_q(a, bq, cq) exactly (rounded to nearest, halves away from zero), without
   the bit-by-bit 128-bit division libavutil falls into once a exceeds INT_MAX (any
   90 kHz timestamp past 6.6 hours, any microsecond count past 36 minutes): one 64-bit
   division where |a| * b + c / 2 fits in 63 bits, libavutil's own otherwise. The
   timeline rescales several times per packet; that was most of its cost. */
static inline int64_t cm__rescale_q(int64_t a, AVRational bq, AVRational cq)
{
    int64_t b = bq.num * (int64_t)cq.den, c = cq.num * (int64_t)bq.den;
    if (c > 0 && b > 0 && a > -INT64_MAX) {
        int64_t mag = a < 0 ? -a : a, half = c / 2;
        if (mag <= (INT64_MAX - half) / b) {
            int64_t q = (mag * b + half) / c;
            return a < 0 ? -q : q;
        }
    }
    return av_rescale_q(a, bq, cq);
}

/* --- timeline (probe_timeline.c) --- */
/* Whether stream st is billed now (audio or video, not cover art). */
int cm__is_billed(const AVStream *st);
/* Makes room for every stream of fc. Returns 0 or CM_PROBE_E_NOMEM. */
int cm__timeline_grow(struct cm__measure *m);
/* Records one packet (or Matroska block) of stream idx: ts (presentation) and dts in the
   stream's time base (AV_NOPTS_VALUE when absent), its duration (<= 0: unknown), its
   frame count and its size in bytes. */
void cm__note_ts(struct cm__measure *m, int idx, int64_t ts, int64_t dts, int64_t duration,
                 int frames, int size);
void cm__note_packet(struct cm__measure *m, const AVPacket *pkt);
/* Sets stream idx's span to [start, end) (a proven walk's answer), as one piece. */
void cm__note_span(struct cm__measure *m, int idx, int64_t start, int64_t end);
/* The next packets come after bytes that were skipped (a structure walk proved them):
   no piece boundary is judged across the skip. */
void cm__timeline_skip(struct cm__measure *m);
/* Forgets everything learnt (before the oracle measures again). */
void cm__timeline_reset(struct cm__measure *m);
/* Runs a structure walk, walk(arg), on a timeline reset to its start, which the walk fills
   packet by packet as the oracle does. Unless the walk returns CM__STEP_DONE, the timeline
   the demuxer's first packets left is restored, for the oracle to read on from. Returns
   the walk's result, or CM_PROBE_E_NOMEM. */
int cm__timeline_walk(struct cm__measure *m, int (*walk)(void *arg), void *arg);
/* The playing time over the billed streams in microseconds, pieces summed per stream;
   -1 when no billed stream has a timestamp. */
int64_t cm__span_us(const struct cm__measure *m);
/* Number of streams billed now. */
int cm__billed_count(const struct cm__measure *m);

/* --- oracle (probe_oracle.c) --- */
/* Prepares fc for a fast scan: unbillable streams discarded, no parsers where the
   container's own timestamps suffice. Call before the first packet is read. */
void cm__oracle_setup(struct cm__measure *m);
/* Reads one packet into pkt. *step is CM__STEP_DONE for a packet, CM__STEP_END at the
   end (or after a damaged stretch: m->read_error). Returns 0 or a negative code. */
int cm__read_one(struct cm__measure *m, AVPacket *pkt, enum cm__step *step);
/* Reads until every countable stream showed a few packets. */
int cm__read_start(struct cm__measure *m, AVPacket *pkt, enum cm__step *step);
/* The oracle: reads every remaining packet into the timeline. Returns 0,
   CM_PROBE_E_TIMEOUT, CM_PROBE_E_NOMEM, or CM_PROBE_E_TOOLONG (max_scan_packets). */
int cm__oracle_scan(struct cm__measure *m, AVPacket *pkt);

/* --- guard (probe_guard.c) --- */
/* Before libavformat opens in as demuxer format (its name): refuses the declared sizes
   that make the demuxer allocate what the file cannot hold (an AVI or WAV metadata list
   running past the end of the file, an MP4 trun declaring more samples than its bytes
   or the file hold). Returns 0 to go on, CM_PROBE_E_DAMAGED (why says what, in words for
   a person), CM_PROBE_E_TIMEOUT or CM_PROBE_E_NOMEM. */
int cm__guard(cm_input *in, const char *format, char *why, size_t whylen);

/* --- Matroska (probe_mkv_walk.c) --- */
/* Walks every Cluster of the Segment and notes every block (its header read, its frames
   skipped) into the timeline, which it refills from the start; when unproven, the
   timeline is left as it was (the demuxer's first packets), for the oracle to read on.
   *step: CM__STEP_DONE when proven, CM__STEP_UNPROVEN (why filled) when the oracle must
   answer. Returns 0 or a negative
   code (CM_PROBE_E_TIMEOUT, CM_PROBE_E_NOMEM). */
int cm__mkv_walk(struct cm__measure *m, enum cm__step *step, char *why, size_t whylen);

/* --- FLV (probe_flv_walk.c) --- */
/* Walks every tag of the file and notes every packet the demuxer would return into the
   timeline, which it refills from the start (after cm__read_start made the streams);
   when unproven, the timeline is left as it was. *step: CM__STEP_DONE when proven,
   CM__STEP_UNPROVEN (why filled) when the oracle must answer. Returns 0 or a negative
   code (CM_PROBE_E_TIMEOUT, CM_PROBE_E_NOMEM). */
int cm__flv_walk(struct cm__measure *m, enum cm__step *step, char *why, size_t whylen);

#endif
