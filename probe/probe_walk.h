/* SPDX-License-Identifier: MIT */
/*
 * probe_walk.h - fast paths that walk a container's structure (internal).
 *
 * A fast path answers only when it can prove its answer: it walks the file's own
 * structure (every top-level MP4 box, every fragment's moof/traf/trun, every AVI movi
 * chunk header), attributes every byte of the payload to samples it knows the time of,
 * and checks that time never runs backwards or jumps. Where it cannot prove that, it
 * says CM__UNPROVEN with a reason and the orchestration (probe_measure.c) asks the
 * oracle, a full demux of every packet. It never answers less than the content plays.
 *
 * Spans are in each stream's own time_base (fc->streams[i]->time_base), so that they
 * combine with the oracle's bookkeeping exactly as packet timestamps do.
 */
#ifndef CM_PROBE_WALK_H
#define CM_PROBE_WALK_H

#include "probe_internal.h"

#include <stdarg.h>
#include <stdio.h>

#include <libavformat/avformat.h>

/* What a walk proved for one stream of the opened demuxer. */
struct cm__span {
    int set;       /* 1 when start and end are filled */
    int64_t start; /* first presentation time, in the stream's time_base */
    int64_t end;   /* end of the last sample (its time + its duration), same units */
};

enum cm__walk_verdict {
    CM__WALK_PROVEN = 0,   /* spans filled for every billed stream with content */
    CM__WALK_UNPROVEN = 1, /* why says why; the oracle must answer */
};

/* Writes the reason (printf-style) into why (whylen bytes; none when NULL or 0) and
   returns CM__WALK_UNPROVEN: `return cm__walk_unproven(why, whylen, "...", ...);`. */
static inline int cm__walk_unproven(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int cm__walk_unproven(char *why, size_t whylen, const char *fmt, ...)
{
    if (why && whylen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return CM__WALK_UNPROVEN;
}

/* What every walk does first: no reason yet, not truncated, no span set. */
static inline void cm__walk_begin(const AVFormatContext *fc, struct cm__span *spans, int *truncated,
                                  char *why, size_t whylen)
{
    if (why && whylen)
        why[0] = '\0';
    *truncated = 0;
    for (unsigned i = 0; i < fc->nb_streams; i++)
        spans[i] = (struct cm__span){0, 0, 0};
}

/*
 * Walks an MP4/MOV/3GP file (non-fragmented: moov's sample tables as libavformat indexed
 * them, checked against the mdat payload; fragmented: every moof/traf/trun and tfdt read
 * from the file itself, whatever a sidx says). fc is the demuxer opened on in (its
 * streams, ids = track_ID, and index); billed[i] says whether stream i is billed;
 * spans has fc->nb_streams entries. *truncated is set to 1 when the file ends before
 * data its tables describe (what is inside is then what is billed).
 * Returns CM__WALK_PROVEN, CM__WALK_UNPROVEN (why filled), or a negative CM_PROBE_E_*
 * (CM_PROBE_E_TIMEOUT when the deadline passed, CM_PROBE_E_NOMEM).
 */
int cm__mp4_walk(cm_input *in, AVFormatContext *fc, const int *billed, struct cm__span *spans,
                 int *truncated, char *why, size_t whylen);

/*
 * Walks an AVI file: the movi list's chunk headers (every one, payload skipped), checked
 * against idx1 when there is one; works without idx1 or with a partial one. Stream i of
 * fc is the AVI's stream number i. Same arguments and results as cm__mp4_walk().
 */
int cm__avi_walk(cm_input *in, AVFormatContext *fc, const int *billed, struct cm__span *spans,
                 int *truncated, char *why, size_t whylen);

#endif
