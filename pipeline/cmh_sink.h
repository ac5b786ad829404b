/* SPDX-License-Identifier: MIT */
/*
 * cmh_sink.h - the MP4 writer shared by the transcoder and the generator (internal).
 *
 * A sink owns the output format context, one video encoder and one audio encoder
 * (either may be absent), a swscale context that turns any decoded picture into the
 * encoder's size and pixel format, and a swresample context plus a sample FIFO that
 * turn any decoded audio into whole encoder frames.
 *
 * Timestamps: video frames carry their presentation time in microseconds from the
 * start of the file; they are quantised to the output frame rate and a frame that
 * lands on an already-written tick is dropped, so the encoder sees strictly
 * increasing pts. Audio is laid out contiguously from 0 (pts = samples written), which
 * keeps the AAC encoder's frame accounting exact.
 *
 * cmh_sink_finish() flushes both encoders and writes the trailer; a sink that is freed
 * without finishing leaves a truncated file behind.
 */
#ifndef CMH_SINK_H
#define CMH_SINK_H

#include <libavutil/frame.h>
#include <libavutil/rational.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cmh_sink cmh_sink;

typedef struct cmh_sink_params {
    int width, height;     /* output picture size (even); 0 = no video */
    AVRational frame_rate; /* output frame rate */
    int sample_rate;       /* preferred output rate; 0 = no audio */
    int channels;          /* 1 or 2 */
} cmh_sink_params;

int cmh_sink_open(cmh_sink **out, const char *path, const cmh_sink_params *p, char *err,
                  size_t err_size);
/* src in any size and pixel format; pts_us from the start of the file. */
int cmh_sink_video(cmh_sink *s, const AVFrame *src, int64_t pts_us, char *err, size_t err_size);
/* src in any layout, format and rate. */
int cmh_sink_audio(cmh_sink *s, const AVFrame *src, char *err, size_t err_size);
int cmh_sink_finish(cmh_sink *s, char *err, size_t err_size);
void cmh_sink_free(cmh_sink *s);

/* Output size for a source picture: at most CMH_MAX_WIDTH wide, even, aspect kept. */
void cmh_fit_size(int src_w, int src_h, AVRational sar, int *out_w, int *out_h);

/* Writes "what: libav's text" into err. Returns code. */
int cmh_fail(char *err, size_t err_size, int code, int averr, const char *what);

#endif /* CMH_SINK_H */
