/* SPDX-License-Identifier: MIT */
/*
 * probe_internal.h - what the probe's files share and nobody else sees.
 *
 * probe.c      the public API: options, handles, reports, names and sentences.
 * probe_input.c the input: a local regular file (or a memory buffer) read through our
 *              own AVIOContext, with a deadline checked on every read and by the
 *              interrupt callback. libavformat never opens anything by itself.
 * probe_measure.c and the files of probe_measure.h: the measurement (which demuxers
 *              are allowed, the structure walks, the oracle, the timeline).
 */
#ifndef CM_PROBE_INTERNAL_H
#define CM_PROBE_INTERNAL_H

#include "cm_probe.h"

#include <libavformat/avio.h>

struct cm_probe {
    cm_probe_options opt;
};

struct cm_probe_stream {
    enum cm_probe_stream_kind kind;
    char codec[32];
};

struct cm_probe_report {
    int error;
    char errmsg[512];
    char *file;
    char format[64];
    int64_t declared_ms; /* -1: none */
    int64_t measured_ms;
    int64_t billable_ms;
    int64_t credits;
    int has_video;
    enum cm_probe_method method;
    enum cm_probe_note note;
    int nb_streams;
    struct cm_probe_stream *streams;
    int64_t file_bytes;
    int64_t bytes_read;
};

/* One input being probed: the bytes, where we are in them, and the deadline. */
typedef struct cm_input {
    int fd;             /* >= 0 for a file */
    const uint8_t *mem; /* or a buffer */
    int64_t size;
    int64_t pos;
    int64_t bytes_read;
    int64_t deadline_ms;
    int64_t budget_ms; /* base + size-scaled part (cm_probe_time_budget_ms) */
    int timed_out;
    const cm_probe_options *opt;
    AVIOContext *avio;
} cm_input;

/* Sets r->error and a printf-formatted message; returns the code. */
int cm__fail(cm_probe_report *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

int64_t cm__now_ms(const cm_probe_options *opt);
/* Nonzero once the deadline has passed (and remembers it). */
int cm__input_expired(cm_input *in);
/* Reads up to len bytes at off without moving the AVIOContext's position (for the
   probe's own look at the bytes). Returns the count, or -1 once the deadline passed. */
int64_t cm__input_pread(cm_input *in, uint8_t *buf, int64_t len, int64_t off);
/* Creates in->avio over in's bytes. Returns 0 or CM_PROBE_E_NOMEM. */
int cm__input_open_avio(cm_input *in);
void cm__input_close(cm_input *in);

/* Measures in (already opened) into r. Returns r->error. */
int cm__measure(const cm_probe *p, cm_input *in, cm_probe_report *r);

/* Maps a libavformat error to a probe code, and fills r with it and libav's own text. */
int cm__libav_code(int averr, int timed_out);
int cm__libav_fail(cm_probe_report *r, int timed_out, int64_t budget_ms, int averr,
                   const char *what);

/* Formats ms as h:mm:ss.mmm into buf. */
void cm__format_hms(int64_t ms, char *buf, size_t len);

#endif
