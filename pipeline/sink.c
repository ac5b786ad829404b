/* SPDX-License-Identifier: MIT */
/*
 * sink.c - MP4 output: scale/resample, encode, interleave, flush, trailer.
 *
 * Invariants: every packet handed to the muxer has its timestamps rescaled from the
 * encoder's time base to its stream's; video pts written are strictly increasing;
 * audio pts equal the count of samples sent before the frame; both encoders are
 * drained (send NULL, receive until EOF) before the trailer is written.
 */
#include "cmh_sink.h"

#include "cmh_media.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cmh_sink {
    AVFormatContext *oc;
    int header_written;
    int trailer_written;

    AVCodecContext *venc;
    AVStream *vst;
    AVFrame *vframe;        /* encoder-format picture, reused */
    struct SwsContext *sws; /* cached for the last source geometry */
    int sws_w, sws_h, sws_fmt;
    int64_t last_vpts; /* in venc->time_base; INT64_MIN before the first */

    AVCodecContext *aenc;
    AVStream *ast;
    AVFrame *aframe; /* encoder-format samples, frame_size long, reused */
    SwrContext *swr; /* built for the source of the first audio frame */
    AVChannelLayout swr_in_layout;
    int swr_in_fmt, swr_in_rate;
    AVAudioFifo *fifo;
    uint8_t **conv; /* swr output scratch */
    int conv_cap;
    int64_t samples_sent;
    AVPacket *pkt;
};

int cmh_fail(char *err, size_t err_size, int code, int averr, const char *what)
{
    if (err && err_size > 0) {
        if (averr < 0) {
            char buf[AV_ERROR_MAX_STRING_SIZE];
            av_strerror(averr, buf, sizeof buf);
            snprintf(err, err_size, "%s: %s", what, buf);
        } else {
            snprintf(err, err_size, "%s", what);
        }
    }
    return code;
}

void cmh_fit_size(int src_w, int src_h, AVRational sar, int *out_w, int *out_h)
{
    double disp_w = src_w;
    if (sar.num > 0 && sar.den > 0)
        disp_w = (double)src_w * sar.num / sar.den;
    if (disp_w < 2)
        disp_w = 2;
    double w = disp_w > CMH_MAX_WIDTH ? CMH_MAX_WIDTH : disp_w;
    double h = src_h * w / disp_w;
    int iw = ((int)(w + 0.5)) & ~1;
    int ih = ((int)(h + 0.5)) & ~1;
    *out_w = iw < 2 ? 2 : iw;
    *out_h = ih < 2 ? 2 : ih;
}

static const AVCodec *pick_video_encoder(void)
{
    const AVCodec *c = avcodec_find_encoder_by_name("libx264");
    return c ? c : avcodec_find_encoder(AV_CODEC_ID_MPEG4);
}

const char *cmh_video_encoder_name(void)
{
    const AVCodec *c = pick_video_encoder();
    return c ? c->name : "none";
}

static int pick_sample_rate(const AVCodec *c, int wanted)
{
    if (!c->supported_samplerates)
        return wanted;
    int best = 0;
    for (const int *r = c->supported_samplerates; *r; r++) {
        if (*r == wanted)
            return wanted;
        if (*r == 48000)
            best = 48000;
    }
    return best ? best : c->supported_samplerates[0];
}

static int write_packets(cmh_sink *s, AVCodecContext *enc, AVStream *st, char *err, size_t err_size)
{
    for (;;) {
        int rc = avcodec_receive_packet(enc, s->pkt);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
            return CMH_OK;
        if (rc < 0)
            return cmh_fail(err, err_size, CMH_E_ENCODER, rc, "encoding");
        av_packet_rescale_ts(s->pkt, enc->time_base, st->time_base);
        s->pkt->stream_index = st->index;
        rc = av_interleaved_write_frame(s->oc, s->pkt);
        av_packet_unref(s->pkt);
        if (rc < 0)
            return cmh_fail(err, err_size, CMH_E_OUTPUT, rc, "writing the output");
    }
}

static int encode(cmh_sink *s, AVCodecContext *enc, AVStream *st, const AVFrame *f, char *err,
                  size_t err_size)
{
    int rc = avcodec_send_frame(enc, f);
    if (rc < 0 && rc != AVERROR_EOF)
        return cmh_fail(err, err_size, CMH_E_ENCODER, rc, "encoding");
    return write_packets(s, enc, st, err, err_size);
}

static int open_video(cmh_sink *s, const cmh_sink_params *p, char *err, size_t err_size)
{
    const AVCodec *codec = pick_video_encoder();
    if (!codec)
        return cmh_fail(err, err_size, CMH_E_ENCODER, 0, "no H.264 or MPEG-4 encoder");
    s->venc = avcodec_alloc_context3(codec);
    s->vst = avformat_new_stream(s->oc, NULL);
    s->vframe = av_frame_alloc();
    if (!s->venc || !s->vst || !s->vframe)
        return cmh_fail(err, err_size, CMH_E_NOMEM, 0, "out of memory");
    AVCodecContext *c = s->venc;
    c->width = p->width;
    c->height = p->height;
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->framerate = p->frame_rate;
    c->time_base = av_inv_q(p->frame_rate);
    c->sample_aspect_ratio = (AVRational){1, 1};
    c->gop_size = 50;
    c->thread_count = 1; /* small pictures: threads cost more than they give */
    if (strcmp(codec->name, "libx264") == 0) {
        av_opt_set(c->priv_data, "preset", "veryfast", 0);
        av_opt_set(c->priv_data, "crf", "30", 0);
    } else {
        c->bit_rate = 300000;
        c->max_b_frames = 0;
    }
    if (s->oc->oformat->flags & AVFMT_GLOBALHEADER)
        c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int rc = avcodec_open2(c, codec, NULL);
    if (rc < 0)
        return cmh_fail(err, err_size, CMH_E_ENCODER, rc, "opening the video encoder");
    rc = avcodec_parameters_from_context(s->vst->codecpar, c);
    if (rc < 0)
        return cmh_fail(err, err_size, CMH_E_LIBAV, rc, "video stream parameters");
    s->vst->time_base = c->time_base;
    s->vst->avg_frame_rate = p->frame_rate;
    s->vframe->format = c->pix_fmt;
    s->vframe->width = c->width;
    s->vframe->height = c->height;
    rc = av_frame_get_buffer(s->vframe, 0);
    if (rc < 0)
        return cmh_fail(err, err_size, CMH_E_NOMEM, rc, "video frame");
    s->last_vpts = INT64_MIN;
    return CMH_OK;
}

static int open_audio(cmh_sink *s, const cmh_sink_params *p, char *err, size_t err_size)
{
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_AAC);
    if (!codec)
        return cmh_fail(err, err_size, CMH_E_ENCODER, 0, "no AAC encoder");
    s->aenc = avcodec_alloc_context3(codec);
    s->ast = avformat_new_stream(s->oc, NULL);
    s->aframe = av_frame_alloc();
    if (!s->aenc || !s->ast || !s->aframe)
        return cmh_fail(err, err_size, CMH_E_NOMEM, 0, "out of memory");
    AVCodecContext *c = s->aenc;
    c->sample_fmt = AV_SAMPLE_FMT_FLTP;
    c->sample_rate = pick_sample_rate(codec, p->sample_rate);
    av_channel_layout_default(&c->ch_layout, p->channels >= 2 ? 2 : 1);
    c->bit_rate = p->channels >= 2 ? 96000 : 64000;
    c->time_base = (AVRational){1, c->sample_rate};
    if (s->oc->oformat->flags & AVFMT_GLOBALHEADER)
        c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int rc = avcodec_open2(c, codec, NULL);
    if (rc < 0)
        return cmh_fail(err, err_size, CMH_E_ENCODER, rc, "opening the audio encoder");
    rc = avcodec_parameters_from_context(s->ast->codecpar, c);
    if (rc < 0)
        return cmh_fail(err, err_size, CMH_E_LIBAV, rc, "audio stream parameters");
    s->ast->time_base = c->time_base;
    s->aframe->format = c->sample_fmt;
    s->aframe->sample_rate = c->sample_rate;
    s->aframe->nb_samples = c->frame_size > 0 ? c->frame_size : 1024;
    rc = av_channel_layout_copy(&s->aframe->ch_layout, &c->ch_layout);
    if (rc >= 0)
        rc = av_frame_get_buffer(s->aframe, 0);
    s->fifo = av_audio_fifo_alloc(c->sample_fmt, c->ch_layout.nb_channels, 4096);
    if (rc < 0 || !s->fifo)
        return cmh_fail(err, err_size, CMH_E_NOMEM, rc, "audio buffers");
    return CMH_OK;
}

int cmh_sink_open(cmh_sink **out, const char *path, const cmh_sink_params *p, char *err,
                  size_t err_size)
{
    if (!out || !path || !p || (p->width <= 0 && p->sample_rate <= 0))
        return cmh_fail(err, err_size, CMH_E_INVALID, 0, "nothing to write");
    *out = NULL;
    cmh_sink *s = calloc(1, sizeof *s);
    if (!s)
        return cmh_fail(err, err_size, CMH_E_NOMEM, 0, "out of memory");
    s->pkt = av_packet_alloc();
    int rc = avformat_alloc_output_context2(&s->oc, NULL, "mp4", path);
    if (rc < 0 || !s->pkt) {
        cmh_sink_free(s);
        return cmh_fail(err, err_size, CMH_E_NOMEM, rc, "output context");
    }
    int code = CMH_OK;
    if (p->width > 0)
        code = open_video(s, p, err, err_size);
    if (code == CMH_OK && p->sample_rate > 0)
        code = open_audio(s, p, err, err_size);
    if (code == CMH_OK) {
        rc = avio_open(&s->oc->pb, path, AVIO_FLAG_WRITE);
        if (rc < 0)
            code = cmh_fail(err, err_size, CMH_E_OUTPUT, rc, "creating the output file");
    }
    if (code == CMH_OK) {
        rc = avformat_write_header(s->oc, NULL);
        if (rc < 0)
            code = cmh_fail(err, err_size, CMH_E_OUTPUT, rc, "writing the MP4 header");
        else
            s->header_written = 1;
    }
    if (code != CMH_OK) {
        cmh_sink_free(s);
        return code;
    }
    *out = s;
    return CMH_OK;
}

int cmh_sink_video(cmh_sink *s, const AVFrame *src, int64_t pts_us, char *err, size_t err_size)
{
    if (!s->venc)
        return CMH_OK;
    int64_t pts;
    if (pts_us == INT64_MIN) /* no timestamp at all: the next tick */
        pts = s->last_vpts == INT64_MIN ? 0 : s->last_vpts + 1;
    else if (pts_us < 0)
        return CMH_OK; /* before the start (edit lists, pre-roll) */
    else
        pts = av_rescale_q(pts_us, (AVRational){1, 1000000}, s->venc->time_base);
    if (s->last_vpts != INT64_MIN && pts <= s->last_vpts)
        return CMH_OK; /* faster than the output rate, or a duplicate tick */
    if (!s->sws || s->sws_w != src->width || s->sws_h != src->height || s->sws_fmt != src->format) {
        sws_freeContext(s->sws);
        s->sws =
            sws_getContext(src->width, src->height, src->format, s->venc->width, s->venc->height,
                           AV_PIX_FMT_YUV420P, SWS_BILINEAR, NULL, NULL, NULL);
        if (!s->sws)
            return cmh_fail(err, err_size, CMH_E_LIBAV, 0, "no scaler for this picture format");
        s->sws_w = src->width;
        s->sws_h = src->height;
        s->sws_fmt = src->format;
    }
    int rc = av_frame_make_writable(s->vframe);
    if (rc < 0)
        return cmh_fail(err, err_size, CMH_E_NOMEM, rc, "video frame");
    sws_scale(s->sws, (const uint8_t *const *)src->data, src->linesize, 0, src->height,
              s->vframe->data, s->vframe->linesize);
    s->vframe->pts = pts;
    s->last_vpts = pts;
    return encode(s, s->venc, s->vst, s->vframe, err, err_size);
}

static int send_audio_frame(cmh_sink *s, int nb, char *err, size_t err_size)
{
    int rc = av_frame_make_writable(s->aframe);
    if (rc < 0)
        return cmh_fail(err, err_size, CMH_E_NOMEM, rc, "audio frame");
    s->aframe->nb_samples = nb;
    if (av_audio_fifo_read(s->fifo, (void **)s->aframe->data, nb) < nb)
        return cmh_fail(err, err_size, CMH_E_LIBAV, 0, "audio FIFO underrun");
    s->aframe->pts = s->samples_sent;
    s->samples_sent += nb;
    return encode(s, s->aenc, s->ast, s->aframe, err, err_size);
}

static int drain_fifo(cmh_sink *s, int final, char *err, size_t err_size)
{
    int fs = s->aenc->frame_size > 0 ? s->aenc->frame_size : 1024;
    while (av_audio_fifo_size(s->fifo) >= fs) {
        int code = send_audio_frame(s, fs, err, err_size);
        if (code != CMH_OK)
            return code;
    }
    int left = av_audio_fifo_size(s->fifo);
    if (final && left > 0) {
        if (!(s->aenc->codec->capabilities & AV_CODEC_CAP_SMALL_LAST_FRAME)) {
            /* pad the tail with silence up to a whole frame */
            float zero[1024] = {0};
            int pad = fs - left;
            while (pad > 0) {
                int n = pad > 1024 ? 1024 : pad;
                void *planes[2] = {zero, zero};
                av_audio_fifo_write(s->fifo, planes, n);
                pad -= n;
            }
            left = fs;
        }
        return send_audio_frame(s, left, err, err_size);
    }
    return CMH_OK;
}

static int convert_into_fifo(cmh_sink *s, const uint8_t **in, int in_samples, char *err,
                             size_t err_size)
{
    int want = swr_get_out_samples(s->swr, in_samples);
    if (want <= 0)
        return CMH_OK;
    if (want > s->conv_cap) {
        if (s->conv)
            av_freep(&s->conv[0]);
        av_freep(&s->conv);
        int rc = av_samples_alloc_array_and_samples(&s->conv, NULL, s->aenc->ch_layout.nb_channels,
                                                    want, s->aenc->sample_fmt, 0);
        if (rc < 0) {
            s->conv_cap = 0;
            return cmh_fail(err, err_size, CMH_E_NOMEM, rc, "audio buffers");
        }
        s->conv_cap = want;
    }
    int got = swr_convert(s->swr, s->conv, want, in, in_samples);
    if (got < 0)
        return cmh_fail(err, err_size, CMH_E_LIBAV, got, "resampling");
    if (got > 0 && av_audio_fifo_write(s->fifo, (void **)s->conv, got) < got)
        return cmh_fail(err, err_size, CMH_E_NOMEM, 0, "audio FIFO");
    return CMH_OK;
}

static int ensure_swr(cmh_sink *s, const AVFrame *src, char *err, size_t err_size)
{
    if (s->swr && s->swr_in_fmt == src->format && s->swr_in_rate == src->sample_rate &&
        av_channel_layout_compare(&s->swr_in_layout, &src->ch_layout) == 0)
        return CMH_OK;
    if (s->swr) {
        /* the source changed mid-stream: keep what the old resampler holds */
        int code = convert_into_fifo(s, NULL, 0, err, err_size);
        if (code != CMH_OK)
            return code;
        swr_free(&s->swr);
    }
    av_channel_layout_uninit(&s->swr_in_layout);
    AVChannelLayout in_layout;
    if (src->ch_layout.nb_channels > 0)
        av_channel_layout_copy(&in_layout, &src->ch_layout);
    else
        av_channel_layout_default(&in_layout, 1);
    if (in_layout.order == AV_CHANNEL_ORDER_UNSPEC) {
        int n = in_layout.nb_channels;
        av_channel_layout_uninit(&in_layout);
        av_channel_layout_default(&in_layout, n);
    }
    int rc =
        swr_alloc_set_opts2(&s->swr, &s->aenc->ch_layout, s->aenc->sample_fmt, s->aenc->sample_rate,
                            &in_layout, src->format, src->sample_rate, 0, NULL);
    if (rc >= 0)
        rc = swr_init(s->swr);
    av_channel_layout_uninit(&in_layout);
    if (rc < 0) {
        swr_free(&s->swr);
        return cmh_fail(err, err_size, CMH_E_LIBAV, rc, "setting up the resampler");
    }
    s->swr_in_fmt = src->format;
    s->swr_in_rate = src->sample_rate;
    av_channel_layout_copy(&s->swr_in_layout, &src->ch_layout);
    return CMH_OK;
}

int cmh_sink_audio(cmh_sink *s, const AVFrame *src, char *err, size_t err_size)
{
    if (!s->aenc || src->nb_samples <= 0)
        return CMH_OK;
    int code = ensure_swr(s, src, err, err_size);
    if (code == CMH_OK)
        code = convert_into_fifo(s, (const uint8_t **)src->extended_data, src->nb_samples, err,
                                 err_size);
    if (code == CMH_OK)
        code = drain_fifo(s, 0, err, err_size);
    return code;
}

int cmh_sink_finish(cmh_sink *s, char *err, size_t err_size)
{
    int code = CMH_OK;
    if (s->venc)
        code = encode(s, s->venc, s->vst, NULL, err, err_size);
    if (code == CMH_OK && s->aenc) {
        if (s->swr)
            code = convert_into_fifo(s, NULL, 0, err, err_size);
        if (code == CMH_OK)
            code = drain_fifo(s, 1, err, err_size);
        if (code == CMH_OK)
            code = encode(s, s->aenc, s->ast, NULL, err, err_size);
    }
    if (code != CMH_OK)
        return code;
    int rc = av_write_trailer(s->oc);
    if (rc < 0)
        return cmh_fail(err, err_size, CMH_E_OUTPUT, rc, "writing the MP4 trailer");
    s->trailer_written = 1;
    rc = avio_closep(&s->oc->pb);
    if (rc < 0)
        return cmh_fail(err, err_size, CMH_E_OUTPUT, rc, "closing the output");
    return CMH_OK;
}

void cmh_sink_free(cmh_sink *s)
{
    if (!s)
        return;
    if (s->oc) {
        if (s->oc->pb)
            avio_closep(&s->oc->pb);
        avformat_free_context(s->oc);
    }
    avcodec_free_context(&s->venc);
    avcodec_free_context(&s->aenc);
    av_frame_free(&s->vframe);
    av_frame_free(&s->aframe);
    sws_freeContext(s->sws);
    swr_free(&s->swr);
    av_channel_layout_uninit(&s->swr_in_layout);
    if (s->fifo)
        av_audio_fifo_free(s->fifo);
    if (s->conv)
        av_freep(&s->conv[0]);
    av_freep(&s->conv);
    av_packet_free(&s->pkt);
    free(s);
}
