/* SPDX-License-Identifier: MIT */
/*
 * cmh_media.h - the media engine of the reference pipeline host (cm-pipeline).
 *
 * This is not part of the plugin: it is the "real work" a pipeline does between the
 * plugin's hooks, so that the billing path is exercised against real transcodes.
 * Three jobs, all with libavformat/libavcodec/libswscale/libswresample:
 *
 *   cmh_transcode()  decodes any input and re-encodes video (libx264 when the build
 *                    of libavcodec has it, else the native MPEG-4 Part 2 encoder),
 *                    scaled down to at most CMH_MAX_WIDTH pixels wide and at most
 *                    CMH_MAX_FPS frames a second, and audio (native AAC) into MP4.
 *   cmh_thumbnail()  decodes one video frame near 10 % of the file and writes a PNG.
 *   cmh_generate()   synthesises duration_ms of a moving test pattern with a 440 Hz
 *                    tone into MP4, with no input file.
 *
 * Every job takes a cmh_control: a progress callback (whole percent, called only when
 * the value changes) and a cancel check, polled between packets and from libavformat's
 * interrupt callback. A job that is cancelled returns CMH_E_CANCELLED.
 *
 * On failure the output file may be left partly written; the caller removes it.
 *
 * Threading: the functions share no state; different jobs may run in different
 * threads at once. The engine never changes process-wide state (no av_log_set_*).
 */
#ifndef CMH_MEDIA_H
#define CMH_MEDIA_H

#include <stddef.h>
#include <stdint.h>

#define CMH_MAX_WIDTH 320
#define CMH_MAX_FPS 30

/* Results: 0 or a negative code. Append-only. */
enum cmh_error {
    CMH_OK = 0,
    CMH_E_INVALID = -1,   /* bad argument */
    CMH_E_NOMEM = -2,     /* out of memory */
    CMH_E_INPUT = -3,     /* the input cannot be opened or has nothing to decode */
    CMH_E_NOVIDEO = -4,   /* a thumbnail was asked of a file without a video stream */
    CMH_E_ENCODER = -5,   /* no usable encoder, or the encoder refused its settings */
    CMH_E_OUTPUT = -6,    /* the output cannot be created or written */
    CMH_E_CANCELLED = -7, /* the cancel check said stop */
    CMH_E_LIBAV = -8,     /* any other libav* failure; the message has its text */
};

typedef struct cmh_control {
    /* Called with 0..100, each value at most once, in increasing order. May be NULL. */
    void (*progress)(void *ud, int percent);
    /* Returns nonzero to stop the job as soon as possible. May be NULL. */
    int (*cancelled)(void *ud);
    void *ud;
    /* Expected length of the input in ms for the progress figure; 0 = ask the container. */
    int64_t expected_ms;
} cmh_control;

/* Each function writes a sentence into err (when err_size > 0) on failure. */
int cmh_transcode(const char *in_path, const char *out_path, const cmh_control *ctl, char *err,
                  size_t err_size);
int cmh_thumbnail(const char *in_path, const char *png_path, const cmh_control *ctl, char *err,
                  size_t err_size);
int cmh_generate(int64_t duration_ms, const char *out_path, const cmh_control *ctl, char *err,
                 size_t err_size);

/* What the probe stage of the host learns of an input (no billing: that is the plugin's). */
typedef struct cmh_media_info {
    char format[32]; /* demuxer name */
    int has_video, has_audio;
    int width, height;   /* 0 without video */
    int64_t duration_ms; /* the container's figure, -1 when unknown */
} cmh_media_info;

/* Opens the input and its decoders, and closes them: can the pipeline process it? */
int cmh_inspect(const char *in_path, cmh_media_info *info, char *err, size_t err_size);

/* Stable machine name of a result ("cancelled", ...). */
const char *cmh_err_name(int code);

/* Name of the video encoder the engine uses ("libx264" or "mpeg4"). */
const char *cmh_video_encoder_name(void);

#endif /* CMH_MEDIA_H */
