/* SPDX-License-Identifier: MIT */
/*
 * thumbnail.c - one video frame near 10 % of the file, scaled down, as a PNG.
 *
 * Seeks (backwards to a keyframe) to a tenth of the duration and keeps the first
 * decoded frame at or after that point; when the file is shorter than the seek
 * suggests, the last frame decoded is used. Audio-only inputs give CMH_E_NOVIDEO.
 */
#include "cmh_input.h"
#include "cmh_media.h"
#include "cmh_sink.h"

#include <libswscale/swscale.h>
#include <stdio.h>

static int write_png(const AVFrame *src, const char *png_path, char *err, size_t err_size)
{
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_PNG);
    if (!codec)
        return cmh_fail(err, err_size, CMH_E_ENCODER, 0, "no PNG encoder");
    int w, h;
    cmh_fit_size(src->width, src->height, src->sample_aspect_ratio, &w, &h);
    AVCodecContext *c = avcodec_alloc_context3(codec);
    AVFrame *rgb = av_frame_alloc();
    AVPacket *pkt = av_packet_alloc();
    struct SwsContext *sws = sws_getContext(src->width, src->height, src->format, w, h,
                                            AV_PIX_FMT_RGB24, SWS_BICUBIC, NULL, NULL, NULL);
    int code = CMH_OK, rc = 0;
    if (!c || !rgb || !pkt || !sws) {
        code = cmh_fail(err, err_size, CMH_E_NOMEM, 0, "out of memory or no scaler");
        goto out;
    }
    c->width = w;
    c->height = h;
    c->pix_fmt = AV_PIX_FMT_RGB24;
    c->time_base = (AVRational){1, 25};
    rc = avcodec_open2(c, codec, NULL);
    if (rc < 0) {
        code = cmh_fail(err, err_size, CMH_E_ENCODER, rc, "opening the PNG encoder");
        goto out;
    }
    rgb->format = AV_PIX_FMT_RGB24;
    rgb->width = w;
    rgb->height = h;
    rc = av_frame_get_buffer(rgb, 0);
    if (rc < 0) {
        code = cmh_fail(err, err_size, CMH_E_NOMEM, rc, "picture");
        goto out;
    }
    sws_scale(sws, (const uint8_t *const *)src->data, src->linesize, 0, src->height, rgb->data,
              rgb->linesize);
    rgb->pts = 0;
    rc = avcodec_send_frame(c, rgb);
    if (rc >= 0)
        rc = avcodec_receive_packet(c, pkt);
    if (rc < 0) {
        code = cmh_fail(err, err_size, CMH_E_ENCODER, rc, "encoding the PNG");
        goto out;
    }
    FILE *f = fopen(png_path, "wb");
    if (!f) {
        code = cmh_fail(err, err_size, CMH_E_OUTPUT, 0, "cannot create the thumbnail file");
        goto out;
    }
    size_t n = fwrite(pkt->data, 1, (size_t)pkt->size, f);
    if (fclose(f) != 0 || n != (size_t)pkt->size)
        code = cmh_fail(err, err_size, CMH_E_OUTPUT, 0, "cannot write the thumbnail file");
out:
    sws_freeContext(sws);
    av_packet_free(&pkt);
    av_frame_free(&rgb);
    avcodec_free_context(&c);
    return code;
}

/* Decodes from the current position; leaves the chosen frame in best. */
static int pick_frame(cmh_input *in, int64_t target_us, AVFrame *best, char *err, size_t err_size)
{
    AVPacket *pkt = av_packet_alloc();
    if (!pkt)
        return cmh_fail(err, err_size, CMH_E_NOMEM, 0, "out of memory");
    int code = CMH_OK, found = 0, have = 0, eof = 0;
    while (!found && code == CMH_OK) {
        if (cmh_input_cancelled(in)) {
            code = cmh_fail(err, err_size, CMH_E_CANCELLED, 0, "cancelled");
            break;
        }
        if (!eof) {
            int rc = av_read_frame(in->fmt, pkt);
            if (rc == AVERROR_EOF) {
                eof = 1;
                avcodec_send_packet(in->vdec, NULL);
            } else if (rc < 0) {
                code = cmh_fail(err, err_size, CMH_E_INPUT, rc, "reading the input");
                break;
            } else {
                int skip = pkt->stream_index != in->vidx;
                if (!skip)
                    cmh_progress_packet(in, pkt);
                rc = skip ? 0 : avcodec_send_packet(in->vdec, pkt);
                av_packet_unref(pkt);
                if (rc < 0 && rc != AVERROR_INVALIDDATA) {
                    code = cmh_fail(err, err_size, CMH_E_INPUT, rc, "decoding");
                    break;
                }
                if (skip)
                    continue;
            }
        }
        for (;;) {
            int rc = avcodec_receive_frame(in->vdec, in->frame);
            if (rc == AVERROR(EAGAIN))
                break;
            if (rc == AVERROR_EOF) {
                found = 1; /* the last frame decoded, if any, will do */
                break;
            }
            if (rc == AVERROR_INVALIDDATA)
                continue;
            if (rc < 0) {
                code = cmh_fail(err, err_size, CMH_E_INPUT, rc, "decoding");
                break;
            }
            av_frame_unref(best);
            av_frame_move_ref(best, in->frame);
            have = 1;
            int64_t us = cmh_input_frame_us(in, best, 1);
            if (us == INT64_MIN || us >= target_us) {
                found = 1;
                break;
            }
        }
    }
    av_packet_free(&pkt);
    if (code == CMH_OK && !have)
        code = cmh_fail(err, err_size, CMH_E_INPUT, 0, "no video frame could be decoded");
    return code;
}

int cmh_thumbnail(const char *in_path, const char *png_path, const cmh_control *ctl, char *err,
                  size_t err_size)
{
    if (!in_path || !png_path)
        return cmh_fail(err, err_size, CMH_E_INVALID, 0, "no input or output path");
    cmh_input in;
    int code = cmh_input_open(&in, in_path, ctl, 0, err, err_size);
    if (code != CMH_OK)
        return code;
    if (!in.vdec) {
        cmh_input_close(&in);
        return cmh_fail(err, err_size, CMH_E_NOVIDEO, 0, "the input has no video stream");
    }
    cmh_progress_start(&in);
    int64_t target_us = in.fmt->duration > 0 ? in.fmt->duration / 10 : 0;
    if (target_us > 0 &&
        av_seek_frame(in.fmt, -1, target_us + in.start_us, AVSEEK_FLAG_BACKWARD) >= 0)
        avcodec_flush_buffers(in.vdec);
    /* a failed seek decodes from the start: slower, same picture rule */
    AVFrame *best = av_frame_alloc();
    if (!best)
        code = cmh_fail(err, err_size, CMH_E_NOMEM, 0, "out of memory");
    if (code == CMH_OK)
        code = pick_frame(&in, target_us, best, err, err_size);
    if (code == CMH_OK)
        code = write_png(best, png_path, err, err_size);
    if (code == CMH_OK)
        cmh_progress_report(&in, 100);
    av_frame_free(&best);
    cmh_input_close(&in);
    return code;
}
