/* SPDX-License-Identifier: MIT */
/*
 * cmh_input.h - an opened input with its decoders, and job progress (internal).
 *
 * The input is opened with an interrupt callback bound to the job's cancel check,
 * so a blocked read stops when the job is cancelled. Video is the best stream that is
 * not an attached picture; audio the best audio stream. Either may be absent, not both.
 */
#ifndef CMH_INPUT_H
#define CMH_INPUT_H

#include "cmh_media.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>

typedef struct cmh_input {
    AVFormatContext *fmt;
    AVCodecContext *vdec, *adec; /* NULL when absent */
    int vidx, aidx;              /* stream indexes, -1 when absent */
    AVFrame *frame;
    int64_t start_us; /* the container's start time, 0 when unknown */
    /* progress */
    const cmh_control *ctl;
    int64_t expected_us;
    int last_percent;
} cmh_input;

/* want_audio = 0 opens no audio decoder (thumbnails). */
int cmh_input_open(cmh_input *in, const char *path, const cmh_control *ctl, int want_audio,
                   char *err, size_t err_size);
void cmh_input_close(cmh_input *in);

/* A decoded frame's presentation time in us from the container's start. */
int64_t cmh_input_frame_us(const cmh_input *in, const AVFrame *f, int is_video);
/* The output frame rate: the stream's, capped to CMH_MAX_FPS, 25 when unknown. */
AVRational cmh_input_out_rate(const cmh_input *in);

int cmh_input_cancelled(const cmh_input *in);
void cmh_progress_start(cmh_input *in);
void cmh_progress_packet(cmh_input *in, const AVPacket *pkt);
void cmh_progress_report(cmh_input *in, int percent);

#endif /* CMH_INPUT_H */
