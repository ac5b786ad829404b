/* SPDX-License-Identifier: MIT */
/*
 * input.c - open a local media file with its decoders; progress and cancel plumbing.
 *
 * Only the file protocol is allowed (the host processes local uploads). Progress is
 * reported in whole percent, monotonically, each value once.
 */
#include "cmh_input.h"

#include "cmh_sink.h"

#include <libavutil/dict.h>
#include <stdio.h>
#include <string.h>

static int interrupt_cb(void *opaque)
{
    const cmh_control *ctl = opaque;
    return ctl && ctl->cancelled ? ctl->cancelled(ctl->ud) : 0;
}

static int open_decoder(cmh_input *in, int idx, AVCodecContext **out, char *err, size_t err_size)
{
    AVStream *st = in->fmt->streams[idx];
    const AVCodec *codec = avcodec_find_decoder(st->codecpar->codec_id);
    if (!codec)
        return cmh_fail(err, err_size, CMH_E_INPUT, 0, "no decoder for a stream of the input");
    AVCodecContext *c = avcodec_alloc_context3(codec);
    if (!c)
        return cmh_fail(err, err_size, CMH_E_NOMEM, 0, "out of memory");
    int rc = avcodec_parameters_to_context(c, st->codecpar);
    if (rc >= 0) {
        c->pkt_timebase = st->time_base;
        c->thread_count = 1;
        rc = avcodec_open2(c, codec, NULL);
    }
    if (rc < 0) {
        avcodec_free_context(&c);
        return cmh_fail(err, err_size, CMH_E_INPUT, rc, "opening a decoder");
    }
    *out = c;
    return CMH_OK;
}

static int best_video(AVFormatContext *fmt)
{
    int idx = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (idx >= 0 && !(fmt->streams[idx]->disposition & AV_DISPOSITION_ATTACHED_PIC))
        return idx;
    for (unsigned i = 0; i < fmt->nb_streams; i++) {
        AVStream *st = fmt->streams[i];
        if (st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
            !(st->disposition & AV_DISPOSITION_ATTACHED_PIC))
            return (int)i;
    }
    return -1;
}

int cmh_input_open(cmh_input *in, const char *path, const cmh_control *ctl, int want_audio,
                   char *err, size_t err_size)
{
    memset(in, 0, sizeof *in);
    in->vidx = in->aidx = -1;
    in->ctl = ctl;
    in->last_percent = -1;
    in->fmt = avformat_alloc_context();
    in->frame = av_frame_alloc();
    if (!in->fmt || !in->frame) {
        cmh_input_close(in);
        return cmh_fail(err, err_size, CMH_E_NOMEM, 0, "out of memory");
    }
    in->fmt->interrupt_callback.callback = interrupt_cb;
    in->fmt->interrupt_callback.opaque = (void *)ctl;
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    int rc = avformat_open_input(&in->fmt, path, NULL, &opts);
    av_dict_free(&opts);
    if (rc < 0) {
        cmh_input_close(in);
        return cmh_fail(err, err_size, CMH_E_INPUT, rc, "opening the input");
    }
    rc = avformat_find_stream_info(in->fmt, NULL);
    if (rc < 0) {
        cmh_input_close(in);
        return cmh_fail(err, err_size, CMH_E_INPUT, rc, "reading the input's streams");
    }
    in->vidx = best_video(in->fmt);
    if (want_audio)
        in->aidx = av_find_best_stream(in->fmt, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
    if (in->aidx < 0)
        in->aidx = -1;
    int code = CMH_OK;
    if (in->vidx >= 0)
        code = open_decoder(in, in->vidx, &in->vdec, err, err_size);
    if (code == CMH_OK && in->aidx >= 0)
        code = open_decoder(in, in->aidx, &in->adec, err, err_size);
    if (code == CMH_OK && !in->vdec && !in->adec)
        code = cmh_fail(err, err_size, want_audio ? CMH_E_INPUT : CMH_E_NOVIDEO, 0,
                        want_audio ? "the input has no audio or video stream"
                                   : "the input has no video stream");
    if (code == CMH_OK && in->vdec && (in->vdec->width <= 0 || in->vdec->height <= 0))
        code = cmh_fail(err, err_size, CMH_E_INPUT, 0, "the video stream has no picture size");
    if (code != CMH_OK) {
        cmh_input_close(in);
        return code;
    }
    in->start_us = in->fmt->start_time != AV_NOPTS_VALUE ? in->fmt->start_time : 0;
    return CMH_OK;
}

void cmh_input_close(cmh_input *in)
{
    avcodec_free_context(&in->vdec);
    avcodec_free_context(&in->adec);
    av_frame_free(&in->frame);
    avformat_close_input(&in->fmt);
}

int64_t cmh_input_frame_us(const cmh_input *in, const AVFrame *f, int is_video)
{
    int idx = is_video ? in->vidx : in->aidx;
    int64_t ts = f->best_effort_timestamp;
    if (ts == AV_NOPTS_VALUE)
        ts = f->pts;
    if (ts == AV_NOPTS_VALUE)
        return INT64_MIN;
    return av_rescale_q(ts, in->fmt->streams[idx]->time_base, AV_TIME_BASE_Q) - in->start_us;
}

AVRational cmh_input_out_rate(const cmh_input *in)
{
    AVRational r = av_guess_frame_rate(in->fmt, in->fmt->streams[in->vidx], NULL);
    if (r.num <= 0 || r.den <= 0 || av_q2d(r) < 1.0)
        return (AVRational){25, 1};
    if (av_q2d(r) > CMH_MAX_FPS)
        return (AVRational){CMH_MAX_FPS, 1};
    /* keep the encoder's time base small (MPEG-4 Part 2 allows at most 65535) */
    if (r.num > 65535 || r.den > 65535) {
        int64_t fps = (int64_t)(av_q2d(r) + 0.5);
        return (AVRational){(int)(fps > 0 ? fps : 25), 1};
    }
    return r;
}

int cmh_input_cancelled(const cmh_input *in)
{
    return interrupt_cb((void *)in->ctl);
}

void cmh_progress_report(cmh_input *in, int percent)
{
    if (percent > 100)
        percent = 100;
    if (percent <= in->last_percent)
        return;
    in->last_percent = percent;
    if (in->ctl && in->ctl->progress)
        in->ctl->progress(in->ctl->ud, percent);
}

void cmh_progress_start(cmh_input *in)
{
    in->expected_us = 0;
    if (in->ctl && in->ctl->expected_ms > 0)
        in->expected_us = in->ctl->expected_ms * 1000;
    else if (in->fmt->duration > 0)
        in->expected_us = in->fmt->duration;
    cmh_progress_report(in, 0);
}

void cmh_progress_packet(cmh_input *in, const AVPacket *pkt)
{
    if (in->expected_us <= 0 || pkt->pts == AV_NOPTS_VALUE)
        return;
    int64_t us =
        av_rescale_q(pkt->pts, in->fmt->streams[pkt->stream_index]->time_base, AV_TIME_BASE_Q) -
        in->start_us;
    if (us <= 0)
        return;
    int64_t pc = us * 100 / in->expected_us;
    cmh_progress_report(in, pc >= 100 ? 99 : (int)pc); /* 100 only once the file is written */
}

int cmh_inspect(const char *in_path, cmh_media_info *info, char *err, size_t err_size)
{
    if (!in_path || !info)
        return cmh_fail(err, err_size, CMH_E_INVALID, 0, "no input path");
    memset(info, 0, sizeof *info);
    cmh_input in;
    int code = cmh_input_open(&in, in_path, NULL, 1, err, err_size);
    if (code != CMH_OK)
        return code;
    snprintf(info->format, sizeof info->format, "%s", in.fmt->iformat->name);
    info->has_video = in.vdec != NULL;
    info->has_audio = in.adec != NULL;
    if (in.vdec) {
        info->width = in.vdec->width;
        info->height = in.vdec->height;
    }
    info->duration_ms = in.fmt->duration > 0 ? in.fmt->duration / 1000 : -1;
    cmh_input_close(&in);
    return CMH_OK;
}
