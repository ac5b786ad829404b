/* SPDX-License-Identifier: MIT */
/*
 * transcode.c - decode any local input and re-encode it into a small MP4.
 *
 * The best video stream (never cover art) and the best audio stream are decoded;
 * other streams are ignored. Progress is the position of the last packet read over
 * the expected length. Packets the decoder rejects as invalid data are skipped, so a
 * damaged stretch costs frames, not the job (the probe refuses files damaged beyond
 * measuring before a job gets this far).
 */
#include "cmh_media.h"
#include "cmh_sink.h"
#include "cmh_input.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <string.h>

static int decode_packet(cmh_input *in, cmh_sink *sink, AVCodecContext *dec, int is_video,
                         const AVPacket *pkt, char *err, size_t err_size)
{
    int rc = avcodec_send_packet(dec, pkt);
    if (rc == AVERROR_INVALIDDATA)
        return CMH_OK;
    if (rc < 0 && rc != AVERROR_EOF)
        return cmh_fail(err, err_size, CMH_E_INPUT, rc, "decoding");
    for (;;) {
        rc = avcodec_receive_frame(dec, in->frame);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
            return CMH_OK;
        if (rc == AVERROR_INVALIDDATA)
            continue;
        if (rc < 0)
            return cmh_fail(err, err_size, CMH_E_INPUT, rc, "decoding");
        int code;
        if (is_video)
            code = cmh_sink_video(sink, in->frame, cmh_input_frame_us(in, in->frame, 1), err,
                                  err_size);
        else
            code = cmh_sink_audio(sink, in->frame, err, err_size);
        av_frame_unref(in->frame);
        if (code != CMH_OK)
            return code;
    }
}

int cmh_transcode(const char *in_path, const char *out_path, const cmh_control *ctl, char *err,
                  size_t err_size)
{
    if (!in_path || !out_path)
        return cmh_fail(err, err_size, CMH_E_INVALID, 0, "no input or output path");
    cmh_input in;
    int code = cmh_input_open(&in, in_path, ctl, 1, err, err_size);
    if (code != CMH_OK)
        return code;
    cmh_sink_params sp = {0};
    if (in.vdec) {
        cmh_fit_size(in.vdec->width, in.vdec->height, in.vdec->sample_aspect_ratio, &sp.width,
                     &sp.height);
        sp.frame_rate = cmh_input_out_rate(&in);
    }
    if (in.adec) {
        sp.sample_rate = in.adec->sample_rate > 0 ? in.adec->sample_rate : 48000;
        sp.channels = in.adec->ch_layout.nb_channels >= 2 ? 2 : 1;
    }
    cmh_sink *sink = NULL;
    code = cmh_sink_open(&sink, out_path, &sp, err, err_size);
    AVPacket *pkt = av_packet_alloc();
    if (code == CMH_OK && !pkt)
        code = cmh_fail(err, err_size, CMH_E_NOMEM, 0, "out of memory");
    cmh_progress_start(&in);
    while (code == CMH_OK) {
        if (cmh_input_cancelled(&in)) {
            code = cmh_fail(err, err_size, CMH_E_CANCELLED, 0, "cancelled");
            break;
        }
        int rc = av_read_frame(in.fmt, pkt);
        if (rc == AVERROR_EOF)
            break;
        if (rc < 0) {
            if (cmh_input_cancelled(&in))
                code = cmh_fail(err, err_size, CMH_E_CANCELLED, 0, "cancelled");
            else
                code = cmh_fail(err, err_size, CMH_E_INPUT, rc, "reading the input");
            break;
        }
        cmh_progress_packet(&in, pkt);
        if (in.vdec && pkt->stream_index == in.vidx)
            code = decode_packet(&in, sink, in.vdec, 1, pkt, err, err_size);
        else if (in.adec && pkt->stream_index == in.aidx)
            code = decode_packet(&in, sink, in.adec, 0, pkt, err, err_size);
        av_packet_unref(pkt);
    }
    if (code == CMH_OK && in.vdec)
        code = decode_packet(&in, sink, in.vdec, 1, NULL, err, err_size);
    if (code == CMH_OK && in.adec)
        code = decode_packet(&in, sink, in.adec, 0, NULL, err, err_size);
    if (code == CMH_OK)
        code = cmh_sink_finish(sink, err, err_size);
    if (code == CMH_OK)
        cmh_progress_report(&in, 100);
    av_packet_free(&pkt);
    cmh_sink_free(sink);
    cmh_input_close(&in);
    return code;
}
