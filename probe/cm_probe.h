/* SPDX-License-Identifier: MIT */
/*
 * cm_probe.h - measure the real playing time of a media file and price it.
 *
 * This header is the whole contract of creditmeter's probe. A probe handle holds
 * immutable options (grace, limits); it opens one local file (or an in-memory
 * buffer) with libavformat, restricted to the file protocol and an allowlist of
 * demuxers, and answers with a report: the declared duration (what the container
 * header claims), the measured duration (what the content really plays for: a walk of
 * the container's structure with every byte accounted for where one can prove it, else a
 * demux of every packet), the billable duration,
 * the credits, the streams, the method used and, where header and content disagree,
 * why.
 *
 * Credits: max(1, ceil((billable_ms - grace_ms) / 60000)). The grace (default
 * 500 ms) absorbs encoder padding, so an exact 3:00 recording bills 3 credits in
 * every common container.
 *
 * Threading: a cm_probe handle is immutable after cm_probe_new() and may be used
 * from any number of threads at once. A report belongs to the caller and must not
 * be shared between threads while one of them frees it.
 *
 * The probe never changes process-wide state: it installs no log callback, sets
 * no log level and no signal handler.
 *
 * Error codes are negative ints, append-only; cm_probe_err_name() gives a stable
 * machine name and cm_probe_strerror() a sentence for a person.
 */
#ifndef CM_PROBE_H
#define CM_PROBE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CM_PROBE_EXTERN __attribute__((visibility("default")))
#else
#define CM_PROBE_EXTERN
#endif

/* Result codes. 0 is success; errors are negative and never renumbered. */
enum cm_probe_error {
    CM_PROBE_OK = 0,
    CM_PROBE_E_INVALID = -1,   /* bad argument from the caller (NULL path, bad option) */
    CM_PROBE_E_NOMEM = -2,     /* out of memory */
    CM_PROBE_E_NOENT = -3,     /* no such file */
    CM_PROBE_E_NOTREG = -4,    /* not a regular file (directory, device, fifo, socket) */
    CM_PROBE_E_ACCESS = -5,    /* the file exists but cannot be read */
    CM_PROBE_E_EMPTY = -6,     /* the file is empty */
    CM_PROBE_E_NOTMEDIA = -7,  /* not a media file libavformat recognises */
    CM_PROBE_E_NOSTREAMS = -8, /* no audio or video: a still picture, subtitles only, data */
    CM_PROBE_E_REFUSED = -9,   /* a format that is refused: playlists, scripts, images */
    CM_PROBE_E_TOOLONG = -10,  /* longer than the configured maximum duration */
    CM_PROBE_E_DAMAGED = -11,  /* the content is damaged or truncated beyond measuring, or
                                  its headers declare more than the file can hold (a
                                  metadata list or MP4 track run: refused before the media
                                  library reads them) */
    CM_PROBE_E_TIMEOUT = -12,  /* measuring took longer than the time budget */
    CM_PROBE_E_LIBAV = -13,    /* any other libavformat failure; the message has its text */
    CM_PROBE_E_TOOBIG = -14,   /* larger than the configured maximum file size */
};

/* How the measured duration was established. Append-only. */
enum cm_probe_method {
    CM_PROBE_METHOD_NONE = 0,
    /* 1 and 2 were the sampling fast paths of 0.1 ("sample_index": libavformat's index;
       "tail_packets": the last packets and three checkpoints). They are no longer
       reported; their names stay valid. */
    CM_PROBE_METHOD_MP4_INDEX = 1,
    CM_PROBE_METHOD_TAIL_PACKETS = 2,
    /* The oracle: every packet of the file demuxed, never decoded. Used for MPEG-TS,
       MPEG-PS, FLV, Ogg, ASF, MXF, NUT, RealMedia, DV, IVF and the audio formats, and
       for any MP4, AVI or Matroska file whose structure walk could not prove its answer. */
    CM_PROBE_METHOD_PACKET_SCAN = 3,
    /* A walk of the container's structure with every byte accounted for: MP4/MOV/3GP
       top-level boxes and sample tables or every fragment's moof/traf/trun/tfdt; AVI
       movi chunk headers against idx1; every Matroska/WebM Cluster header and every
       Block's header (track, timestamp, lace count, duration). Reads headers, not
       payload. */
    CM_PROBE_METHOD_STRUCTURE_WALK = 4,
};

/* Why the declared and measured durations differ. Append-only. */
enum cm_probe_note {
    CM_PROBE_NOTE_NONE = 0,           /* they agree (within the grace) */
    CM_PROBE_NOTE_HEADER_LONGER = 1,  /* the header claims more than the content plays */
    CM_PROBE_NOTE_HEADER_SHORTER = 2, /* the header claims less than the content plays */
    CM_PROBE_NOTE_TRUNCATED = 3,      /* the file ends before the data the header indexes */
    CM_PROBE_NOTE_NO_DURATION = 4,    /* the header declares no duration (streamed/live files) */
};

enum cm_probe_stream_kind {
    CM_PROBE_STREAM_OTHER = 0, /* subtitles, data, attachments: never billed */
    CM_PROBE_STREAM_VIDEO = 1,
    CM_PROBE_STREAM_AUDIO = 2,
    CM_PROBE_STREAM_COVER = 3, /* a still picture attached to audio (cover art): never billed */
};

/*
 * Options. Set struct_size to sizeof(cm_probe_options) and call
 * cm_probe_options_init() first; fields are only ever appended.
 */
typedef struct cm_probe_options {
    uint32_t struct_size;
    int64_t grace_ms;        /* default 500; 0..59999 */
    int64_t max_duration_ms; /* default 24 h; longer files are refused (CM_PROBE_E_TOOLONG) */
    /* default 10000: the base of the time budget. A probe of a file of N bytes may take
       time_budget_ms + N / CM_PROBE_BUDGET_BYTES_PER_MS ms (cm_probe_time_budget_ms())
       before it is interrupted with CM_PROBE_E_TIMEOUT. */
    int64_t time_budget_ms;
    int64_t max_file_bytes;   /* default 64 GiB; larger files are refused (CM_PROBE_E_TOOBIG) */
    int64_t max_scan_packets; /* default 20,000,000: bound of a full packet scan */
    /* Monotonic clock in ms for the time budget; NULL means CLOCK_MONOTONIC. Tests inject
       one to make a time-out happen without waiting. Called from the probing thread. */
    int64_t (*clock_ms)(void *user);
    void *clock_user;
    /* 1: skip every fast path and measure by demuxing every packet of every billed
       stream (the oracle the fast paths are tested against); slower, never cheaper
       to fool. Default 0. Added in 0.2; an older, shorter struct reads as 0. */
    int full_scan;
} cm_probe_options;

typedef struct cm_probe cm_probe;               /* immutable, thread-safe handle */
typedef struct cm_probe_report cm_probe_report; /* one file's result, owned by the caller */

/*
 * The time budget grows with the file, so that no honest large file is refused as
 * timed out: 1 ms more for every CM_PROBE_BUDGET_BYTES_PER_MS bytes, i.e. a rate of
 * 50 MB/s, several times below the slowest scan rate measured for the oracle (a full
 * demux of every packet, from page cache; see README.md "Measuring"). An 8 GB upload
 * gets 10 s + 164 s.
 */
#define CM_PROBE_BUDGET_BYTES_PER_MS 50000

/* Fills *opt with the defaults above. */
CM_PROBE_EXTERN void cm_probe_options_init(cm_probe_options *opt);

/*
 * Creates a probe with the given options (NULL for the defaults) and stores it in
 * *out. Returns CM_PROBE_OK, CM_PROBE_E_INVALID (an option out of range, or an
 * unknown struct_size) or CM_PROBE_E_NOMEM. Free with cm_probe_free().
 */
CM_PROBE_EXTERN int cm_probe_new(cm_probe **out, const cm_probe_options *opt);
CM_PROBE_EXTERN void cm_probe_free(cm_probe *p);

/* The time budget in ms for a file of file_bytes bytes: the option time_budget_ms plus
   file_bytes / CM_PROBE_BUDGET_BYTES_PER_MS (saturating; negative sizes count as 0).
   Returns -1 when p is NULL. */
CM_PROBE_EXTERN int64_t cm_probe_time_budget_ms(const cm_probe *p, int64_t file_bytes);

/*
 * Measures the local regular file at path. Always stores a report in *out (unless
 * the result is CM_PROBE_E_NOMEM or CM_PROBE_E_INVALID with out == NULL), whether the
 * file was billed or refused; the return value equals cm_probe_report_error(*out).
 * The caller frees the report with cm_probe_report_free().
 * Returns CM_PROBE_OK or any CM_PROBE_E_* code.
 */
CM_PROBE_EXTERN int cm_probe_file(const cm_probe *p, const char *path, cm_probe_report **out);

/*
 * Measures a file held in memory (for fuzzing and for hosts that already have the
 * bytes). name is only reported back. Same allowlist, limits and results as
 * cm_probe_file(); the buffer is read, never kept, and must outlive the call.
 */
CM_PROBE_EXTERN int cm_probe_buffer(const cm_probe *p, const void *data, size_t size,
                                    const char *name, cm_probe_report **out);

CM_PROBE_EXTERN void cm_probe_report_free(cm_probe_report *r);

/* --- the report; strings belong to the report and live as long as it does --- */
CM_PROBE_EXTERN int cm_probe_report_error(const cm_probe_report *r); /* CM_PROBE_OK or E_* */
CM_PROBE_EXTERN const char *cm_probe_report_errmsg(const cm_probe_report *r); /* "" when ok */
CM_PROBE_EXTERN const char *cm_probe_report_file(const cm_probe_report *r);   /* as given */
CM_PROBE_EXTERN const char *cm_probe_report_format(const cm_probe_report *r); /* demuxer name */
/* Declared duration in ms, or -1 when the header declares none. */
CM_PROBE_EXTERN int64_t cm_probe_report_declared_ms(const cm_probe_report *r);
/* Measured real playing time in ms over the audio and video streams. */
CM_PROBE_EXTERN int64_t cm_probe_report_measured_ms(const cm_probe_report *r);
/* The duration the price is computed from, in ms (equals measured). */
CM_PROBE_EXTERN int64_t cm_probe_report_billable_ms(const cm_probe_report *r);
CM_PROBE_EXTERN int64_t cm_probe_report_credits(const cm_probe_report *r);
CM_PROBE_EXTERN int cm_probe_report_has_video(const cm_probe_report *r);
CM_PROBE_EXTERN enum cm_probe_method cm_probe_report_method(const cm_probe_report *r);
CM_PROBE_EXTERN enum cm_probe_note cm_probe_report_note(const cm_probe_report *r);
CM_PROBE_EXTERN int cm_probe_report_stream_count(const cm_probe_report *r);
/* Kind and codec name of stream i (0 <= i < count); codec is "" when unknown. */
CM_PROBE_EXTERN enum cm_probe_stream_kind cm_probe_report_stream_kind(const cm_probe_report *r,
                                                                      int i);
CM_PROBE_EXTERN const char *cm_probe_report_stream_codec(const cm_probe_report *r, int i);
/* Size of the input and how many of its bytes the probe read. A structure walk (MP4, MOV,
   3GP, AVI, MKV, WebM) reads headers and the last Matroska Cluster, a small share of the
   file; the oracle (MPEG-TS, MPEG-PS, FLV, the rest, and every unproven walk) reads it all. */
CM_PROBE_EXTERN int64_t cm_probe_report_file_bytes(const cm_probe_report *r);
CM_PROBE_EXTERN int64_t cm_probe_report_bytes_read(const cm_probe_report *r);

/* --- names and sentences --- */
CM_PROBE_EXTERN const char *cm_probe_err_name(int code); /* "no_such_file", ... */
CM_PROBE_EXTERN const char *cm_probe_strerror(int code); /* a sentence for a person */
CM_PROBE_EXTERN const char *
cm_probe_method_name(enum cm_probe_method m);                         /* "structure_walk", ... */
CM_PROBE_EXTERN const char *cm_probe_note_name(enum cm_probe_note n); /* "header_longer", ... */
CM_PROBE_EXTERN const char *cm_probe_note_text(enum cm_probe_note n); /* a sentence */
CM_PROBE_EXTERN const char *cm_probe_stream_kind_name(enum cm_probe_stream_kind k);

/*
 * Process-wide: turns libavformat's own log output (warnings about damaged input
 * printed to stderr) off. For command-line programs only; the library never calls it
 * and a host that embeds the probe must not either, since it changes global state.
 */
CM_PROBE_EXTERN void cm_probe_silence_libav_logs(void);

/* Credits for a billable duration: max(1, ceil((billable_ms - grace_ms) / 60000)). */
CM_PROBE_EXTERN int64_t cm_probe_credits_for(int64_t billable_ms, int64_t grace_ms);

/*
 * The library's release, "MAJOR.MINOR.PATCH" (CM_VERSION_STRING of cm_version.h when
 * it was built; compare it with the header a program was compiled against). Static
 * storage. Thread-safe.
 */
CM_PROBE_EXTERN const char *cm_probe_version(void);

#ifdef __cplusplus
}
#endif
#endif /* CM_PROBE_H */
