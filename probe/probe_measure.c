/* SPDX-License-Identifier: MIT */
/*
 * probe_measure.c - how long does this file really play? The orchestration.
 *
 * A container's header is a claim. The probe opens the file with an allowlisted
 * demuxer (probe_policy.c) and establishes the playing time from the content:
 *
 *   structure walk  MP4/MOV/3GP (every top-level box; the sample tables or every
 *                   fragment's moof/traf/trun read from the file, the mdat payload
 *                   accounted for), AVI (the movi chunk headers, against idx1),
 *                   Matroska/WebM (every Cluster header and Block header) and FLV
 *                   (every tag header, the tags filling the file exactly).
 *                   Reads headers, not payload. Trusted only when the walk proves its
 *                   answer: every byte attributed, time never running backwards or
 *                   jumping (probe_walk.h, probe_mkv_walk.c, probe_flv_walk.c).
 *   packet scan     the oracle (probe_oracle.c): every packet demuxed, never decoded.
 *                   MPEG-TS, MPEG-PS, Ogg and every other container, and every file a
 *                   walk could not prove.
 *
 * Both feed the same timeline (probe_timeline.c): per stream, pieces summed where a
 * clock restarts or jumps; the file plays for its longest billed stream. Cover art,
 * subtitles and data never count. Timestamps are combined in microseconds; the result
 * is in ms.
 */
#include "probe_measure.h"
#include "probe_walk.h"

#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/mathematics.h>

#define PROBE_BYTES_MAX (1 << 20)

static int interrupt_cb(void *opaque)
{
    return cm__input_expired(opaque);
}

/* Any nested open (a reference movie, a playlist entry, a concat item) is refused. */
static int refuse_io_open(AVFormatContext *s, AVIOContext **pb, const char *url, int flags,
                          AVDictionary **options)
{
    (void)s, (void)pb, (void)url, (void)flags, (void)options;
    return AVERROR(EPERM);
}

static void collect_streams(struct cm__measure *m)
{
    cm_probe_report *r = m->r;
    AVFormatContext *fc = m->fc;
    free(r->streams);
    r->nb_streams = 0;
    r->streams = calloc(fc->nb_streams ? fc->nb_streams : 1, sizeof(*r->streams));
    if (!r->streams)
        return;
    for (unsigned i = 0; i < fc->nb_streams; i++) {
        const AVStream *st = fc->streams[i];
        struct cm_probe_stream *s = &r->streams[r->nb_streams++];
        switch (st->codecpar->codec_type) {
        case AVMEDIA_TYPE_VIDEO:
            s->kind = (st->disposition & AV_DISPOSITION_ATTACHED_PIC) ? CM_PROBE_STREAM_COVER
                                                                      : CM_PROBE_STREAM_VIDEO;
            break;
        case AVMEDIA_TYPE_AUDIO:
            s->kind = CM_PROBE_STREAM_AUDIO;
            break;
        default:
            s->kind = CM_PROBE_STREAM_OTHER;
            break;
        }
        if (s->kind == CM_PROBE_STREAM_VIDEO)
            r->has_video = 1;
        snprintf(s->codec, sizeof(s->codec), "%s", avcodec_get_name(st->codecpar->codec_id));
    }
}

static int64_t declared_ms(const AVFormatContext *fc)
{
    if (fc->duration != AV_NOPTS_VALUE && fc->duration > 0)
        return av_rescale(fc->duration, 1000, AV_TIME_BASE);
    int64_t best = -1;
    for (unsigned i = 0; i < fc->nb_streams; i++) {
        const AVStream *st = fc->streams[i];
        if (!cm__is_billed(st) || st->duration == AV_NOPTS_VALUE || st->duration <= 0)
            continue;
        int64_t ms = av_rescale_q(st->duration, st->time_base, (AVRational){1, 1000});
        if (ms > best)
            best = ms;
    }
    return best;
}

int cm__libav_code(int err, int timed_out)
{
    if (timed_out || err == AVERROR_EXIT)
        return CM_PROBE_E_TIMEOUT;
    if (err == AVERROR_INVALIDDATA || err == AVERROR_EOF)
        return CM_PROBE_E_DAMAGED;
    if (err == AVERROR(ENOMEM))
        return CM_PROBE_E_NOMEM;
    return CM_PROBE_E_LIBAV;
}

int cm__libav_fail(cm_probe_report *r, int timed_out, int64_t budget_ms, int err, const char *what)
{
    char text[AV_ERROR_MAX_STRING_SIZE] = "";
    av_strerror(err, text, sizeof(text));
    switch (cm__libav_code(err, timed_out)) {
    case CM_PROBE_E_TIMEOUT:
        return cm__fail(r, CM_PROBE_E_TIMEOUT,
                        "Measuring %s took longer than the time budget of %lld ms.", r->file,
                        (long long)budget_ms);
    case CM_PROBE_E_DAMAGED:
        return cm__fail(r, CM_PROBE_E_DAMAGED,
                        "The file %s is damaged or cut off and cannot be measured (%s: %s).",
                        r->file, what, text);
    case CM_PROBE_E_NOMEM:
        return cm__fail(r, CM_PROBE_E_NOMEM, "Out of memory while reading %s.", r->file);
    default:
        return cm__fail(r, CM_PROBE_E_LIBAV, "The media library could not read %s (%s: %s).",
                        r->file, what, text);
    }
}

static int libav_fail(cm_probe_report *r, cm_input *in, int err, const char *what)
{
    return cm__libav_fail(r, in->timed_out, in->budget_ms, err, what);
}

static void set_note(cm_probe_report *r, int truncated, int64_t grace_ms)
{
    if (truncated)
        r->note = CM_PROBE_NOTE_TRUNCATED;
    else if (r->declared_ms < 0)
        r->note = CM_PROBE_NOTE_NO_DURATION;
    else if (r->declared_ms - r->measured_ms > grace_ms)
        r->note = CM_PROBE_NOTE_HEADER_LONGER;
    else if (r->measured_ms - r->declared_ms > grace_ms)
        r->note = CM_PROBE_NOTE_HEADER_SHORTER;
    else
        r->note = CM_PROBE_NOTE_NONE;
}

/* A structure walk of an MP4/AVI file (probe_walk.h): its spans go into the timeline
   when it proves them. */
static int walk_index(struct cm__measure *m, enum cm__step *step, char *why, size_t whylen)
{
    AVFormatContext *fc = m->fc;
    int n = (int)fc->nb_streams;
    int *billed = calloc(n ? (size_t)n : 1, sizeof(*billed));
    struct cm__span *spans = calloc(n ? (size_t)n : 1, sizeof(*spans));
    if (!billed || !spans) {
        free(billed), free(spans);
        return CM_PROBE_E_NOMEM;
    }
    for (int i = 0; i < n; i++)
        billed[i] = cm__is_billed(fc->streams[i]);
    int truncated = 0;
    int res = strcmp(fc->iformat->name, "avi") == 0
                  ? cm__avi_walk(m->in, fc, billed, spans, &truncated, why, whylen)
                  : cm__mp4_walk(m->in, fc, billed, spans, &truncated, why, whylen);
    *step = CM__STEP_UNPROVEN;
    if (res == CM__WALK_PROVEN) {
        int any = 0;
        for (int i = 0; i < n; i++)
            if (billed[i] && spans[i].set) {
                cm__note_span(m, i, spans[i].start, spans[i].end);
                any = 1;
            }
        if (any) {
            m->truncated = truncated;
            *step = CM__STEP_DONE;
        } else {
            snprintf(why, whylen, "the walk proved no span");
        }
    }
    free(billed), free(spans);
    return res < 0 ? res : 0;
}

/* The measurement itself: the container's fast path, and the oracle wherever that
   cannot prove its answer. Returns 0 or a negative code; *method says how. */
static int measure_content(const cm_probe *p, struct cm__measure *m, AVPacket *pkt,
                           enum cm_probe_method *method)
{
    enum cm__step step = CM__STEP_UNPROVEN;
    char why[256] = "";
    int err = 0;
    cm__oracle_setup(m);
    if (!p->opt.full_scan && m->fmt->plan == CM__PLAN_INDEX) {
        err = walk_index(m, &step, why, sizeof(why));
        if (err == 0 && step == CM__STEP_UNPROVEN)
            cm__timeline_reset(m);
    } else if (!p->opt.full_scan &&
               (m->fmt->plan == CM__PLAN_CLUSTERS || m->fmt->plan == CM__PLAN_TAGS)) {
        /* The first packets make the streams and give each its start, then the
           Cluster or tag walk. Should it fail, the oracle reads on from where the
           demuxer stands. */
        err = cm__read_start(m, pkt, &step);
        if (err == 0 && step == CM__STEP_END && m->fmt->plan == CM__PLAN_CLUSTERS) {
            *method = CM_PROBE_METHOD_PACKET_SCAN; /* the whole file was read */
            return 0;
        }
        /* FLV: the demuxer also ends at a second file joined on, where the oracle reads
           on (fuzz_probe_diff: a 1.1 s file joined to another billed 1.1 s, not 2.3 s) */
        if (err == 0 && step != CM__STEP_END)
            err = m->fmt->plan == CM__PLAN_TAGS ? cm__flv_walk(m, &step, why, sizeof(why))
                                                : cm__mkv_walk(m, &step, why, sizeof(why));
    }
    if (err < 0)
        return err;
    if (step == CM__STEP_DONE) {
        *method = CM_PROBE_METHOD_STRUCTURE_WALK;
        return 0;
    }
    *method = CM_PROBE_METHOD_PACKET_SCAN;
    return cm__oracle_scan(m, pkt);
}

static int measure_opened(const cm_probe *p, struct cm__measure *m)
{
    cm_probe_report *r = m->r;
    AVPacket *pkt = av_packet_alloc();
    int err = pkt ? cm__timeline_grow(m) : CM_PROBE_E_NOMEM;
    if (err == 0)
        err = measure_content(p, m, pkt, &r->method);
    av_packet_free(&pkt);
    /* After the packets: FLV declares its duration in a script packet. */
    r->declared_ms = m->fmt->header_duration ? declared_ms(m->fc) : -1;
    collect_streams(m);

    if (err == CM_PROBE_E_TIMEOUT || m->in->timed_out)
        return libav_fail(r, m->in, AVERROR_EXIT, "reading");
    if (err == CM_PROBE_E_TOOLONG)
        return cm__fail(r, CM_PROBE_E_TOOLONG,
                        "The file %s has more than %lld packets, more than the probe will scan.",
                        r->file, (long long)p->opt.max_scan_packets);
    if (err == CM_PROBE_E_NOMEM || !r->streams)
        return cm__fail(r, CM_PROBE_E_NOMEM, "Out of memory while reading %s.", r->file);
    if (err < 0)
        return cm__fail(r, err, "The file %s could not be measured: %s", r->file,
                        cm_probe_strerror(err));

    if (cm__billed_count(m) == 0)
        return cm__fail(r, CM_PROBE_E_NOSTREAMS,
                        "The file %s has no audio or video to bill (only pictures, subtitles or "
                        "data).",
                        r->file);
    int64_t us = cm__span_us(m);
    if (us < 0) {
        if (m->read_error)
            return libav_fail(r, m->in, m->read_error, "reading packets");
        return cm__fail(r, CM_PROBE_E_DAMAGED,
                        "The file %s has audio or video streams but no readable timestamps.",
                        r->file);
    }
    /* A read error cut a scan short: bill what was read, and say so. */
    if (m->read_error && m->read_error != AVERROR_EOF)
        m->truncated = 1;
    r->measured_ms = (us + 500) / 1000;
    r->billable_ms = r->measured_ms;
    r->credits = cm_probe_credits_for(r->billable_ms, p->opt.grace_ms);
    set_note(r, m->truncated, p->opt.grace_ms);
    if (r->measured_ms > p->opt.max_duration_ms) {
        char got[32], lim[32];
        cm__format_hms(r->measured_ms, got, sizeof(got));
        cm__format_hms(p->opt.max_duration_ms, lim, sizeof(lim));
        return cm__fail(r, CM_PROBE_E_TOOLONG,
                        "The file %s plays for %s, longer than the limit of %s.", r->file, got,
                        lim);
    }
    return CM_PROBE_OK;
}

/* Opens the demuxer over in's AVIOContext with every lock in place. */
static int open_demuxer(cm_input *in, cm_probe_report *r, const AVInputFormat *ifmt, int score,
                        AVFormatContext **out)
{
    AVFormatContext *fc = avformat_alloc_context();
    if (!fc)
        return cm__fail(r, CM_PROBE_E_NOMEM, "Out of memory.");
    fc->pb = in->avio;
    fc->flags |= AVFMT_FLAG_CUSTOM_IO;
    fc->interrupt_callback.callback = interrupt_cb;
    fc->interrupt_callback.opaque = in;
    fc->io_open = refuse_io_open;
    /* Clock wraps are unwrapped in note_packet against the first timestamp, the same
       way in every read, so a clock reset is never mistaken for a wrap. */
    fc->correct_ts_overflow = 0;
    /* The seek index libavformat builds from every key packet read (Ogg, MP3, PS, raw
       audio: every packet is one) is never used, and growing it was a sixth of an Ogg
       scan: kept to a few entries (halved when full). Indexes a demuxer reads from the
       file (MP4's sample tables, AVI's idx1, Matroska's Cues) are not affected. */
    fc->max_index_size = 1024;
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "format_whitelist", cm__format_whitelist(), 0);
    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    /* Enough for MPEG-TS to find its program tables; streams found later are added as
       their packets come. */
    av_dict_set(&opts, "probesize", "1000000", 0);
    av_dict_set(&opts, "max_streams", "64", 0);
    int err = avformat_open_input(&fc, r->file, ifmt, &opts);
    av_dict_free(&opts);
    if (err < 0) { /* fc was freed by libavformat; our AVIOContext was not */
        /* A weak guess (a few bytes that look like an MP3 frame) that does not open
           was never media. */
        if (!in->timed_out && score < AVPROBE_SCORE_EXTENSION)
            return cm__fail(r, CM_PROBE_E_NOTMEDIA,
                            "The file %s is not a video or audio file that can be read.", r->file);
        return libav_fail(r, in, err, "opening");
    }
    *out = fc;
    return CM_PROBE_OK;
}

int cm__measure(const cm_probe *p, cm_input *in, cm_probe_report *r)
{
    const AVInputFormat *ifmt = NULL;
    int score = av_probe_input_buffer2(in->avio, &ifmt, r->file, NULL, 0, PROBE_BYTES_MAX);
    if (in->timed_out)
        return libav_fail(r, in, AVERROR_EXIT, "probing");
    if (score < 0 || !ifmt || strcmp(ifmt->name, "tty") == 0)
        return cm__fail(r, CM_PROBE_E_NOTMEDIA,
                        "The file %s is not a video or audio file that can be read.", r->file);
    snprintf(r->format, sizeof(r->format), "%s", ifmt->name);
    const struct cm__allowed *fmt = cm__find_allowed(ifmt->name);
    if (!fmt)
        return cm__fail(
            r, CM_PROBE_E_REFUSED, "The file %s is %s (%s), which is not accepted for billing.",
            r->file, cm__refused_kind(ifmt->name), ifmt->long_name ? ifmt->long_name : ifmt->name);
    if (fmt->plan == CM__PLAN_STILL)
        return cm__fail(r, CM_PROBE_E_NOSTREAMS,
                        "The file %s is a still picture, not a video: there is nothing to play.",
                        r->file);
    if (fmt->plan == CM__PLAN_SUBTITLE)
        return cm__fail(r, CM_PROBE_E_NOSTREAMS,
                        "The file %s holds only subtitles: there is no audio or video.", r->file);

    char why[256];
    int err = cm__guard(in, ifmt->name, why, sizeof(why));
    if (err == CM_PROBE_E_DAMAGED)
        return cm__fail(r, err, "The file %s is damaged and cannot be measured: %s.", r->file, why);
    if (err == CM_PROBE_E_TIMEOUT || in->timed_out)
        return libav_fail(r, in, AVERROR_EXIT, "reading");
    if (err < 0)
        return cm__fail(r, CM_PROBE_E_NOMEM, "Out of memory while reading %s.", r->file);

    AVFormatContext *fc = NULL;
    if (open_demuxer(in, r, ifmt, score, &fc) != CM_PROBE_OK)
        return r->error;
    struct cm__measure m = {.fc = fc, .in = in, .r = r, .fmt = fmt};
    measure_opened(p, &m);
    free(m.tracks);
    avformat_close_input(&fc);
    return r->error;
}
