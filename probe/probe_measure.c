/*
 * probe_measure.c - how long does this file really play?
 *
 * A container's header is a claim. The probe opens the file with an allowlisted
 * demuxer and establishes the playing time from the content, with the cheapest
 * evidence that can be trusted for the container:
 *
 *   sample index   MP4/MOV/3GP (and AVI with an idx1 index): the demuxer's per-sample
 *                  index, built from the sample tables, and only as far as the
 *                  indexed bytes really lie inside the file. Reads the header only.
 *   tail packets   Matroska/WebM, MPEG-TS, MPEG-PS, FLV: a byte seek to the last
 *                  window of the file and the timestamps of the packets found there
 *                  (the window doubles until it holds audio or video). The 33-bit MPEG
 *                  clock is unwrapped against each stream's first timestamp.
 *                  The tail is cross-checked against a few packets at 1/4, 1/2 and 3/4
 *                  of the file; a middle that plays later than the end is scanned whole.
 *   packet scan    everything else: every packet is demuxed (never decoded), bounded by
 *                  max_scan_packets and the time budget.
 *
 * For all three, each audio/video stream's start is the earliest presentation
 * timestamp among its first packets, and the file plays from the earliest start to
 * the latest end over its audio and video streams. Cover art, subtitles and data
 * never count. All timestamps are combined in microseconds; the result is in ms.
 */
#include "probe_internal.h"
#include "probe_mkv.h"

#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/mathematics.h>

enum plan { PLAN_INDEX, PLAN_TAIL, PLAN_SCAN, PLAN_STILL, PLAN_SUBTITLE };

struct allowed {
    const char *name;    /* libavformat's demuxer name, exactly */
    enum plan plan;
    int header_duration; /* does the container's header declare a duration? */
};

/* Every demuxer the probe will open. Anything else is refused: playlists (hls,
   dash), scripts (concat), image sequences (image2) and every exotic demuxer. */
static const struct allowed ALLOWED[] = {
    {"mov,mp4,m4a,3gp,3g2,mj2", PLAN_INDEX, 1},
    {"avi", PLAN_INDEX, 1},
    {"matroska,webm", PLAN_TAIL, 1},
    {"mpegts", PLAN_TAIL, 0},
    {"mpeg", PLAN_TAIL, 0},
    {"flv", PLAN_TAIL, 1},
    {"ogg", PLAN_SCAN, 0},
    {"asf", PLAN_SCAN, 1},
    {"mxf", PLAN_SCAN, 1},
    {"wav", PLAN_SCAN, 1},
    {"w64", PLAN_SCAN, 1},
    {"aiff", PLAN_SCAN, 1},
    {"caf", PLAN_SCAN, 1},
    {"mp3", PLAN_SCAN, 1},
    {"aac", PLAN_SCAN, 0},
    {"flac", PLAN_SCAN, 1},
    {"amr", PLAN_SCAN, 0},
    {"png_pipe", PLAN_STILL, 0},
    {"jpeg_pipe", PLAN_STILL, 0},
    {"bmp_pipe", PLAN_STILL, 0},
    {"webp_pipe", PLAN_STILL, 0},
    {"tiff_pipe", PLAN_STILL, 0},
    {"gif", PLAN_STILL, 0},
    {"srt", PLAN_SUBTITLE, 0},
    {"ass", PLAN_SUBTITLE, 0},
    {"webvtt", PLAN_SUBTITLE, 0},
};
#define N_ALLOWED (sizeof(ALLOWED) / sizeof(ALLOWED[0]))

/* The same list for libavformat's own format_whitelist, a second lock on the door. */
static const char WHITELIST[] = "mov,mp4,m4a,3gp,3g2,mj2,avi,matroska,webm,mpegts,mpeg,flv,ogg,"
                                "asf,mxf,wav,w64,aiff,caf,mp3,aac,flac,amr,png_pipe,jpeg_pipe,"
                                "bmp_pipe,webp_pipe,tiff_pipe,gif,srt,ass,webvtt";

#define PROBE_BYTES_MAX (1 << 20)
#define CM_MKV_MAX_TRACKS 64
#define START_PACKETS_PER_STREAM 8
#define START_PACKETS_MAX 2000
#define TAIL_WINDOW_FIRST (64 << 10)

/* What we learn about one stream, in its own time base. */
struct track {
    int billed;     /* audio or video, not cover art */
    int64_t start;  /* earliest pts seen, or AV_NOPTS_VALUE */
    int64_t end;    /* latest pts + duration seen */
    int64_t last_pts;
    int64_t untimed; /* frames without a timestamp since last_pts */
    int last_frames; /* frames in the packet at last_pts (Matroska lacing) */
    int64_t delta;  /* smallest positive gap between consecutive pts: a frame's length */
    int packets;
    /* Timestamps that jump back (pieces concatenated byte-wise, each restarting its
       clock) play one after the other: closed pieces add up in `extra`. */
    int64_t seg_start, seg_end, extra;
    int64_t run_end; /* latest end since the last seek: jumps are judged against it */
    int64_t first_ts; /* the first timestamp seen: the reference for clock wraps */
    /* In the current window: the first and last packet's file position and decode
       time, and how many there were (the window's bitrate, free of interleaving). */
    int64_t w_pos0, w_dts0, w_pos1, w_dts1;
    int w_n;
};

struct measure {
    AVFormatContext *fc;
    cm_input *in;
    cm_probe_report *r;
    struct track *tracks;
    int ntracks;
    int truncated;
    int read_error; /* the last av_read_frame error other than EOF */
    int64_t packets;
    int discontinuities;
    int rescan; /* this is the second opening, for a full scan */
    /* Where a window may start, for demuxers that cannot resume anywhere (or NULL). */
    int (*boundary)(cm_input *in, int64_t off, const uint8_t *p, int64_t avail);
    int mkv; /* windows are read by our own Matroska cluster reader */
    int64_t tail_at; /* where the tail window that held audio or video starts */
    int mkv_ntracks;
    uint64_t mkv_numbers[CM_MKV_MAX_TRACKS]; /* TrackNumber of each TrackEntry */
    int mkv_stream[CM_MKV_MAX_TRACKS];       /* its stream index, or -1 */
    /* Windows read after a byte seek: their bytes and the time they cover, for the
       bitrate plausibility check of the tail method. */
    int64_t win_lo_us, win_hi_us, win_pos_lo, win_pos_hi;
    int64_t win_total_us, win_total_bytes;
};

static const struct allowed *find_allowed(const char *name)
{
    for (size_t i = 0; i < N_ALLOWED; i++)
        if (strcmp(ALLOWED[i].name, name) == 0)
            return &ALLOWED[i];
    return NULL;
}

static int interrupt_cb(void *opaque)
{
    return cm__input_expired(opaque);
}

/* Any nested open (a reference movie, a playlist entry, a concat item) is refused. */
static int refuse_io_open(AVFormatContext *s, AVIOContext **pb, const char *url, int flags,
                          AVDictionary **options)
{
    (void)s, (void)pb, (void)url, (void)flags, (void)options;
    return AVERROR(EPERM);
}

static int is_billed(const AVStream *st)
{
    enum AVMediaType t = st->codecpar->codec_type;
    if (st->disposition & AV_DISPOSITION_ATTACHED_PIC)
        return 0;
    return t == AVMEDIA_TYPE_VIDEO || t == AVMEDIA_TYPE_AUDIO;
}

static int grow_tracks(struct measure *m)
{
    int n = (int)m->fc->nb_streams;
    if (n <= m->ntracks)
        return 0;
    struct track *t = realloc(m->tracks, (size_t)n * sizeof(*t));
    if (!t)
        return -1;
    for (int i = m->ntracks; i < n; i++) {
        t[i] = (struct track){.billed = is_billed(m->fc->streams[i]),
                              .start = AV_NOPTS_VALUE,
                              .end = AV_NOPTS_VALUE,
                              .last_pts = AV_NOPTS_VALUE,
                              .seg_start = AV_NOPTS_VALUE,
                              .seg_end = AV_NOPTS_VALUE,
                              .run_end = AV_NOPTS_VALUE,
                              .first_ts = AV_NOPTS_VALUE,
                              .last_frames = 1};
    }
    m->tracks = t;
    m->ntracks = n;
    return 0;
}

/* Length of one frame in its stream's time base: the codec's frame length, else the
   smallest gap between timestamps seen so far, else 0. */
static int64_t frame_length(const AVStream *st, const struct track *t)
{
    const AVCodecParameters *par = st->codecpar;
    if (par->codec_type == AVMEDIA_TYPE_AUDIO && par->sample_rate > 0 && par->frame_size > 0)
        return av_rescale_q(par->frame_size, (AVRational){1, par->sample_rate}, st->time_base);
    if (par->codec_type == AVMEDIA_TYPE_VIDEO && st->avg_frame_rate.num > 0 &&
        st->avg_frame_rate.den > 0)
        return av_rescale_q(1, av_inv_q(st->avg_frame_rate), st->time_base);
    return t->delta > 0 ? t->delta : 0;
}

/* Length of one packet: its own duration, else (for PCM-like audio, whose length
   follows from its size) the sample count, else frames x the frame length. A
   bitrate-based guess would be wrong for compressed audio, so none is made. */
static int64_t packet_duration(const AVStream *st, const struct track *t, int64_t duration,
                               int size, int frames)
{
    if (duration > 0)
        return duration;
    const AVCodecParameters *par = st->codecpar;
    if (par->codec_type == AVMEDIA_TYPE_AUDIO && par->sample_rate > 0 &&
        av_get_exact_bits_per_sample(par->codec_id) > 0) {
        int samples = av_get_audio_frame_duration2((AVCodecParameters *)par, size);
        if (samples > 0)
            return av_rescale_q(samples, (AVRational){1, par->sample_rate}, st->time_base);
    }
    return frames * frame_length(st, t);
}

/* A clock of pts_wrap_bits (MPEG's 33) that wrapped since the stream's first
   timestamp: anything more than half a turn below the first is one turn later. */
static int64_t unwrap(const AVStream *st, struct track *t, int64_t ts)
{
    if (ts == AV_NOPTS_VALUE || st->pts_wrap_bits <= 0 || st->pts_wrap_bits >= 63)
        return ts;
    if (t->first_ts == AV_NOPTS_VALUE)
        t->first_ts = ts;
    else if (ts < t->first_ts - (1LL << (st->pts_wrap_bits - 1)))
        ts += 1LL << st->pts_wrap_bits;
    return ts;
}

/* Records one packet (or Matroska block) of stream idx: ts (presentation) and dts
   (decode) in the stream's time base (AV_NOPTS_VALUE when absent), its duration (<= 0:
   unknown), its frame count, and where it lies in the file (pos < 0: unknown). */
static void note_ts(struct measure *m, int idx, int64_t ts, int64_t dts, int64_t duration,
                    int frames, int64_t pos, int size)
{
    if (idx < 0 || idx >= m->ntracks)
        return;
    struct track *t = &m->tracks[idx];
    const AVStream *st = m->fc->streams[idx];
    if (!t->billed)
        return;
    ts = unwrap(st, t, ts);
    int64_t d = dts != AV_NOPTS_VALUE ? unwrap(st, t, dts) : ts;
    if (pos >= 0 && d != AV_NOPTS_VALUE) {
        if (t->w_n++ == 0)
            t->w_pos0 = pos, t->w_dts0 = d;
        t->w_pos1 = pos, t->w_dts1 = d;
    }
    if (ts == AV_NOPTS_VALUE) {
        /* A frame split out of a PES that carried one timestamp for several (MPEG-TS
           audio): it plays after the last stamped one. */
        if (t->last_pts != AV_NOPTS_VALUE) {
            t->untimed += frames;
            int64_t end = t->last_pts +
                          (t->untimed + t->last_frames) * frame_length(st, t);
            if (end > t->end)
                t->end = end;
        }
        return;
    }
    if (t->last_pts != AV_NOPTS_VALUE && ts > t->last_pts) {
        int64_t gap = (ts - t->last_pts) / (t->untimed + t->last_frames);
        if (gap > 0 && (t->delta == 0 || gap < t->delta))
            t->delta = gap;
    }
    int64_t dur = packet_duration(st, t, duration, size, frames);
    /* Frame reordering moves a pts back by at most 16 frames (H.264's deepest); a jump
       back of more than that and 2 s, or ahead by more than 10 s, starts a new piece
       (files glued together, each restarting its clock): players play on through both. */
    int64_t reorder = FFMAX(av_rescale_q(2, (AVRational){1, 1}, st->time_base), 16 * t->delta);
    int64_t gap_max = FFMAX(av_rescale_q(10, (AVRational){1, 1}, st->time_base), 16 * t->delta);
    if (t->run_end != AV_NOPTS_VALUE && t->seg_start != AV_NOPTS_VALUE &&
        (ts < t->run_end - reorder || ts > t->run_end + gap_max)) {
        t->extra += t->seg_end - t->seg_start;
        t->seg_start = AV_NOPTS_VALUE;
        t->run_end = AV_NOPTS_VALUE;
        m->discontinuities++;
    }
    t->untimed = 0;
    t->last_pts = ts;
    t->last_frames = frames;
    int64_t end = ts + dur;
    t->run_end = t->run_end == AV_NOPTS_VALUE ? end : FFMAX(t->run_end, end);
    if (t->start == AV_NOPTS_VALUE || ts < t->start)
        t->start = ts;
    if (t->end == AV_NOPTS_VALUE || end > t->end)
        t->end = end;
    if (t->seg_start == AV_NOPTS_VALUE) {
        t->seg_start = ts;
        t->seg_end = end;
    } else {
        t->seg_start = FFMIN(t->seg_start, ts);
        t->seg_end = FFMAX(t->seg_end, end);
    }
    t->packets++;
    m->win_lo_us = FFMIN(m->win_lo_us, av_rescale_q(ts, st->time_base, AV_TIME_BASE_Q));
    m->win_hi_us = FFMAX(m->win_hi_us, av_rescale_q(end, st->time_base, AV_TIME_BASE_Q));
    if (pos >= 0) {
        m->win_pos_lo = FFMIN(m->win_pos_lo, pos);
        m->win_pos_hi = FFMAX(m->win_pos_hi, pos + size);
    }
}

static void note_packet(struct measure *m, const AVPacket *pkt)
{
    if (pkt->flags & AV_PKT_FLAG_DISCARD)
        return;
    int64_t ts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
    note_ts(m, pkt->stream_index, ts, pkt->dts, pkt->duration, 1, pkt->pos, pkt->size);
}

/* Starts a window after a byte seek: frame gaps and pieces are not measured across
   the jump. */
static void window_begin(struct measure *m)
{
    for (int i = 0; i < m->ntracks; i++)
        m->tracks[i].last_pts = m->tracks[i].run_end = AV_NOPTS_VALUE, m->tracks[i].untimed = 0,
        m->tracks[i].w_n = 0;
    m->win_lo_us = INT64_MAX;
    m->win_hi_us = INT64_MIN;
    m->win_pos_lo = INT64_MAX;
    m->win_pos_hi = INT64_MIN;
}

/* Adds the window's bytes and time to the bitrate evidence. With packet positions,
   from the stream with the most packets in the window: the distance between its first
   and last packet in the file against the distance of their decode times (streams are
   interleaved with offsets of up to a second, so mixing them would distort a short
   window). Without positions (Matroska blocks), the bytes of the whole window read. */
static void window_end(struct measure *m)
{
    const struct track *best = NULL;
    int best_i = -1;
    for (int i = 0; i < m->ntracks; i++)
        if (m->tracks[i].w_n >= 2 && m->tracks[i].w_dts1 > m->tracks[i].w_dts0 &&
            m->tracks[i].w_pos1 > m->tracks[i].w_pos0 && (!best || m->tracks[i].w_n > best->w_n))
            best = &m->tracks[i], best_i = i;
    if (best) {
        m->win_total_us += av_rescale_q(best->w_dts1 - best->w_dts0,
                                        m->fc->streams[best_i]->time_base, AV_TIME_BASE_Q);
        m->win_total_bytes += best->w_pos1 - best->w_pos0;
    } else if (m->mkv && m->win_hi_us > m->win_lo_us && m->win_pos_hi > m->win_pos_lo) {
        m->win_total_us += m->win_hi_us - m->win_lo_us;
        m->win_total_bytes += m->win_pos_hi - m->win_pos_lo;
    }
}

/* Whether some stream has shown enough packets in this window to measure a bitrate. */
static int window_has_rate(const struct measure *m)
{
    for (int i = 0; i < m->ntracks; i++)
        if (m->tracks[i].w_n >= 3)
            return 1;
    return 0;
}

/* Reads one packet. Returns 1 for a packet, 0 at the end, or a negative probe code. */
static int read_one(struct measure *m, AVPacket *pkt)
{
    int err = av_read_frame(m->fc, pkt);
    if (m->in->timed_out)
        return CM_PROBE_E_TIMEOUT;
    if (err == AVERROR_EOF)
        return 0;
    if (err < 0) {
        /* A damaged stretch: what was read so far is the content. */
        m->read_error = err;
        return 0;
    }
    if (grow_tracks(m) != 0) {
        av_packet_unref(pkt);
        return CM_PROBE_E_NOMEM;
    }
    m->packets++;
    return 1;
}

/* Reads from the current position until every billed stream has shown its first few
   packets (their earliest pts is the stream's start), or a bound is reached.
   Returns 1 if the end of the file was reached, 0 if not, or a negative code. */
static int read_start(struct measure *m, AVPacket *pkt)
{
    for (int n = 0; n < START_PACKETS_MAX; n++) {
        int got = read_one(m, pkt);
        if (got <= 0)
            return got < 0 ? got : 1;
        note_packet(m, pkt);
        av_packet_unref(pkt);
        int done = 1;
        for (int i = 0; i < m->ntracks; i++)
            if (m->tracks[i].billed && m->tracks[i].packets < START_PACKETS_PER_STREAM)
                done = 0;
        if (done && m->ntracks > 0)
            return 0;
    }
    return 0;
}

static int read_to_end(struct measure *m, AVPacket *pkt, int64_t limit)
{
    for (;;) {
        if (m->packets > limit)
            return CM_PROBE_E_TOOLONG;
        int got = read_one(m, pkt);
        if (got <= 0)
            return got;
        note_packet(m, pkt);
        av_packet_unref(pkt);
    }
}

/* The sample index: span of each billed stream from its first kept sample to the
   end of its last sample whose bytes are inside the file. Returns 1 when every
   billed stream had an index, 0 when one had none (fragmented MP4, AVI without idx1). */
static int measure_index(struct measure *m)
{
    int have = 0;
    for (int i = 0; i < m->ntracks; i++) {
        struct track *t = &m->tracks[i];
        AVStream *st = m->fc->streams[i];
        if (!t->billed)
            continue;
        int n = avformat_index_get_entries_count(st);
        if (n <= 0)
            return 0;
        int first = 0;
        while (first < n && (avformat_index_get_entry(st, first)->flags & AVINDEX_DISCARD_FRAME))
            first++;
        int last = n - 1;
        while (last >= first) {
            const AVIndexEntry *e = avformat_index_get_entry(st, last);
            if (e->pos >= 0 && e->pos + e->size <= m->in->size)
                break;
            last--;
        }
        if (last < n - 1)
            m->truncated = 1;
        if (last < first) {
            t->billed = 0; /* nothing of this stream is in the file */
            continue;
        }
        const AVIndexEntry *e = avformat_index_get_entry(st, last);
        int64_t len;
        if (last + 1 < n)
            len = avformat_index_get_entry(st, last + 1)->timestamp - e->timestamp;
        else if (last > first)
            len = e->timestamp - avformat_index_get_entry(st, last - 1)->timestamp;
        else
            len = 0;
        if (len < 0)
            len = 0;
        int64_t first_ts = avformat_index_get_entry(st, first)->timestamp;
        int64_t span = e->timestamp + len - first_ts;
        /* The index holds decode times; the presentation starts at the first pts. */
        int64_t start = t->start != AV_NOPTS_VALUE ? t->start : first_ts;
        t->start = start;
        t->end = start + span;
        have = 1;
    }
    return have ? 1 : 0;
}

/* Earliest start to latest end over billed streams, in microseconds; -1 if none. */
static int64_t span_us(struct measure *m)
{
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (int i = 0; i < m->ntracks; i++) {
        struct track *t = &m->tracks[i];
        const AVStream *st = m->fc->streams[i];
        if (!t->billed || t->start == AV_NOPTS_VALUE || t->end == AV_NOPTS_VALUE)
            continue;
        int64_t end = t->end;
        /* A clock that wrapped between the start and the tail (when libavformat could
           not unwrap it): add one turn of the clock. */
        if (end < t->start && st->pts_wrap_bits > 0 && st->pts_wrap_bits < 63)
            end += 1LL << st->pts_wrap_bits;
        int64_t s = av_rescale_q(t->start, st->time_base, AV_TIME_BASE_Q);
        int64_t e = av_rescale_q(end, st->time_base, AV_TIME_BASE_Q);
        if (s < lo)
            lo = s;
        if (e > hi)
            hi = e;
    }
    if (lo == INT64_MAX || hi < lo)
        return -1;
    int64_t span = hi - lo;
    if (m->discontinuities == 0)
        return span;
    /* Pieces that each restart their clock play one after another: the span of the
       longest stream counted piece by piece (the overall first-to-last means nothing). */
    span = 0;
    for (int i = 0; i < m->ntracks; i++) {
        struct track *t = &m->tracks[i];
        if (!t->billed || t->seg_start == AV_NOPTS_VALUE)
            continue;
        int64_t us = av_rescale_q(t->extra + t->seg_end - t->seg_start,
                                  m->fc->streams[i]->time_base, AV_TIME_BASE_Q);
        span = FFMAX(span, us);
    }
    return span;
}

/* A result of the tail method: its evidence cannot be trusted, so the file is opened
   again and scanned whole from its first byte. */
#define NEED_RESCAN 1
#define NEED_RESCAN_CODE 0x7fff /* read_window: the demuxer refused the seek */
#define TAIL_WINDOW_MAX (64 << 20)
#define CHECKPOINT_PACKETS 32
#define CHECKPOINT_BYTES (64 << 10)

/* Matroska and FLV demuxers cannot resume after a byte seek into the middle of an
   element: the seek must land on a boundary. These find one in the bytes themselves,
   with a check that makes a match inside payload data improbable. */
static int is_mkv_boundary(cm_input *in, int64_t off, const uint8_t *p, int64_t avail)
{
    (void)in, (void)off;
    return cm__mkv_is_cluster(p, avail);
}

static int is_flv_boundary(cm_input *in, int64_t off, const uint8_t *p, int64_t avail)
{
    /* A tag of type audio/video/script with stream id 0, followed by a PreviousTagSize
       that agrees with its size. */
    if (avail < 11 || (p[0] != 8 && p[0] != 9 && p[0] != 18) || p[8] || p[9] || p[10])
        return 0;
    int64_t size = (int64_t)p[1] << 16 | p[2] << 8 | p[3];
    uint8_t q[4];
    if (11 + size + 4 <= avail)
        memcpy(q, p + 11 + size, 4);
    else if (cm__input_pread(in, q, 4, off + 11 + size) != 4)
        return 0;
    return ((int64_t)q[0] << 24 | q[1] << 16 | q[2] << 8 | q[3]) == size + 11;
}

typedef int (*boundary_fn)(cm_input *in, int64_t off, const uint8_t *p, int64_t avail);

/* The first boundary in [from, to), read 64 KB at a time. Returns its offset, -1 if
   there is none, or -2 when the deadline passed. */
static int64_t find_boundary(struct measure *m, boundary_fn is_boundary, int64_t from,
                             int64_t to)
{
    enum { CHUNK = 64 << 10, OVERLAP = 16 };
    uint8_t *buf = malloc(CHUNK + OVERLAP);
    if (!buf)
        return -1;
    int64_t found = -1;
    for (int64_t at = from; at < to && found == -1; at += CHUNK) {
        int64_t got = cm__input_pread(m->in, buf, FFMIN((int64_t)CHUNK + OVERLAP, to - at), at);
        if (got < 0) {
            found = -2;
            break;
        }
        for (int64_t i = 0; i < FFMIN(got, (int64_t)CHUNK); i++)
            if (is_boundary(m->in, at + i, buf + i, got - i)) {
                found = at + i;
                break;
            }
        if (got < FFMIN((int64_t)CHUNK + OVERLAP, to - at))
            break;
    }
    free(buf);
    return found;
}

/* A Matroska block seen by our own cluster reader: map its track to its stream. */
struct mkv_ctx {
    struct measure *m;
    int64_t at;
    int64_t len;
};

static void on_mkv_block(void *opaque, uint64_t track, int64_t ts, int frames, int64_t duration)
{
    struct mkv_ctx *c = opaque;
    for (int i = 0; i < c->m->mkv_ntracks; i++)
        if (c->m->mkv_numbers[i] == track) {
            note_ts(c->m, c->m->mkv_stream[i], ts, AV_NOPTS_VALUE, duration, frames, -1, 0);
            return;
        }
}

/* Maps Matroska track numbers to streams. libavformat keeps no track number, but makes
   its video and audio streams in TrackEntry order, so the k-th video (audio) entry is
   the k-th video (audio) stream that is not an attached picture. Returns 0 when the
   Tracks cannot be read or do not match the streams (the file is then scanned). */
static int map_mkv_tracks(struct measure *m)
{
    int types[CM_MKV_MAX_TRACKS];
    int n = -1;
    /* The Tracks sit in the first few KB; look further only if they do not. */
    for (int64_t head = 64 << 10; n < 0 && head <= (1 << 20); head *= 16) {
        int64_t len = FFMIN(head, m->in->size);
        uint8_t *buf = malloc((size_t)len);
        if (!buf)
            return 0;
        int64_t got = cm__input_pread(m->in, buf, len, 0);
        if (got > 0)
            n = cm__mkv_tracks(buf, (size_t)got, m->mkv_numbers, types, CM_MKV_MAX_TRACKS);
        free(buf);
        if (got < len)
            break;
    }
    if (n <= 0)
        return 0;
    int mapped = 0;
    for (int i = 0; i < n; i++) {
        enum AVMediaType want = types[i] == 1   ? AVMEDIA_TYPE_VIDEO
                                : types[i] == 2 ? AVMEDIA_TYPE_AUDIO
                                                : AVMEDIA_TYPE_UNKNOWN;
        m->mkv_stream[i] = -1;
        if (want == AVMEDIA_TYPE_UNKNOWN)
            continue;
        int rank = 0; /* how many entries of this type came before */
        for (int j = 0; j < i; j++)
            rank += types[j] == types[i];
        for (unsigned s = 0; s < m->fc->nb_streams; s++) {
            const AVStream *st = m->fc->streams[s];
            if (st->codecpar->codec_type != want || (st->disposition & AV_DISPOSITION_ATTACHED_PIC))
                continue;
            if (rank-- == 0) {
                m->mkv_stream[i] = (int)s;
                mapped++;
                break;
            }
        }
    }
    m->mkv_ntracks = n;
    int billed = 0;
    for (int i = 0; i < m->ntracks; i++)
        billed += m->tracks[i].billed;
    return mapped == billed;
}

/* Reads a window of the file from the boundary `at`: up to max_packets packets to the
   end of [at, end). Matroska is read by our cluster reader; everything else by a
   byte seek and the demuxer. Returns the number of billed packets seen, or a negative
   code. */
static int read_window(struct measure *m, AVPacket *pkt, int64_t at, int64_t end,
                       int64_t max_packets)
{
    int before = 0, after = 0;
    for (int i = 0; i < m->ntracks; i++)
        before += m->tracks[i].billed ? m->tracks[i].packets : 0;
    window_begin(m);
    if (m->mkv) {
        int64_t len = end - at;
        uint8_t *buf = len > 0 ? malloc((size_t)len) : NULL;
        if (!buf)
            return CM_PROBE_E_NOMEM;
        int64_t got = cm__input_pread(m->in, buf, len, at);
        if (got < 0) {
            free(buf);
            return CM_PROBE_E_TIMEOUT;
        }
        struct mkv_ctx c = {m, at, got};
        cm__mkv_scan(buf, (size_t)got, (int)FFMIN(max_packets, INT32_MAX), on_mkv_block, &c);
        free(buf);
        if (m->win_hi_us > m->win_lo_us) {
            m->win_pos_lo = at;
            m->win_pos_hi = at + got;
        }
    } else {
        if (av_seek_frame(m->fc, -1, at, AVSEEK_FLAG_BYTE) < 0)
            return m->in->timed_out ? CM_PROBE_E_TIMEOUT : NEED_RESCAN_CODE;
        int64_t first_byte = m->in->bytes_read;
        for (int64_t n = 0; n < max_packets; n++) {
            if (m->packets > m->in->opt->max_scan_packets)
                return CM_PROBE_E_TOOLONG;
            /* A window is about time, not bytes: at high bitrates a few packets are
               enough once one billed packet has shown up. */
            if (m->in->bytes_read - first_byte > end - at && window_has_rate(m))
                break;
            int got = read_one(m, pkt);
            if (got < 0)
                return got;
            if (got == 0)
                break;
            note_packet(m, pkt);
            av_packet_unref(pkt);
        }
    }
    window_end(m);
    for (int i = 0; i < m->ntracks; i++)
        after += m->tracks[i].billed ? m->tracks[i].packets : 0;
    return after - before;
}

/* Reads ever larger windows at the end until audio or video shows up there. A file no
   larger than the first window is simply read on to its end (*full_scan).
   Returns 0, NEED_RESCAN, or a negative code. */
static int measure_tail(struct measure *m, AVPacket *pkt, int *full_scan)
{
    if (m->mkv && m->in->size > TAIL_WINDOW_FIRST && !map_mkv_tracks(m))
        return NEED_RESCAN;
    int64_t searched = m->in->size; /* [searched, size) holds no boundary */
    for (int64_t window = TAIL_WINDOW_FIRST;; window *= 2) {
        int64_t pos = m->in->size - window;
        if (pos <= 0 && window == TAIL_WINDOW_FIRST) {
            *full_scan = 1; /* the first packets were read in order: read on */
            return read_to_end(m, pkt, m->in->opt->max_scan_packets);
        }
        if (pos <= 0 || window > TAIL_WINDOW_MAX)
            return NEED_RESCAN;
        if (m->boundary) {
            /* Only the part the last window did not cover, plus the few bytes a
               boundary's check looks ahead. */
            int64_t at = find_boundary(m, m->boundary, pos, FFMIN(searched + 16, m->in->size));
            if (at == -2)
                return CM_PROBE_E_TIMEOUT;
            if (at < 0) {
                searched = pos;
                continue; /* no boundary in this window: a larger one */
            }
            searched = at;
            pos = at;
        }
        int seen = read_window(m, pkt, pos, m->in->size, INT64_MAX);
        if (seen == NEED_RESCAN_CODE)
            return NEED_RESCAN;
        if (seen < 0)
            return seen;
        if (seen > 0) {
            m->tail_at = pos;
            return 0;
        }
    }
}

/* The tail is trusted only if the rest of the file agrees with it. A few packets are
   read at 1/4, 1/2 and 3/4 of the file (a constant cost), and a full scan is needed
   when: a middle packet plays later than the end (content appended out of order),
   timestamps jump (pieces glued together, each restarting its clock), or the file
   holds far more bytes than the measured time explains at the bitrate seen in the
   windows (a stretch of it is not accounted for).
   Returns NEED_RESCAN when a full scan is needed, 0 when not, or a negative code. */
static int tail_contradicted(struct measure *m, AVPacket *pkt)
{
    int64_t tail_us = span_us(m);
    /* Where each window started and the earliest time it held: the tail's first. */
    int64_t win_at[4] = {m->tail_at}, win_lo[4] = {m->win_lo_us};
    int nwin = 1;
    for (int k = 1; k <= 3; k++) {
        int64_t pos = m->in->size * k / 4;
        int64_t end = FFMIN(pos + CHECKPOINT_BYTES, m->in->size);
        if (m->boundary) {
            /* Matroska clusters can be several MB apart at high bitrates. */
            int64_t at = find_boundary(m, m->boundary, pos, FFMIN(pos + (8 << 20), m->in->size));
            if (at == -2)
                return CM_PROBE_E_TIMEOUT;
            if (at < 0)
                continue; /* no boundary near this point: nothing to check there */
            pos = at;
            end = FFMIN(pos + CHECKPOINT_BYTES, m->in->size);
        }
        if (pos >= m->tail_at)
            continue; /* inside the tail window already read */
        int seen = read_window(m, pkt, pos, end, CHECKPOINT_PACKETS);
        if (seen == NEED_RESCAN_CODE)
            return NEED_RESCAN;
        if (seen < 0)
            return seen;
        if (seen > 0) {
            win_at[nwin] = pos;
            win_lo[nwin] = m->win_lo_us;
            nwin++;
        }
    }
    /* Time must not run backwards as the byte position grows (2 s of slack for
       interleaving): a later stretch that starts earlier is another piece. */
    int backwards = 0;
    for (int i = 0; i < nwin; i++)
        for (int j = 0; j < nwin; j++)
            if (win_at[i] < win_at[j] && win_lo[j] < win_lo[i] - 2000000)
                backwards = 1;
    if (backwards || m->discontinuities > 0 || span_us(m) > tail_us + 1000000)
        return NEED_RESCAN;
    /* Bytes the measured time should have taken at the windows' bitrate: twice as
       many in the file means part of it is unexplained. Quiet endings only cost a scan. */
    if (m->win_total_us > 0 && m->win_total_bytes > 0 && tail_us > 0) {
        double expected_us = (double)m->in->size * (double)m->win_total_us /
                             (double)m->win_total_bytes;
        if ((double)tail_us * 2.0 < expected_us)
            return NEED_RESCAN;
    }
    return 0;
}

static void collect_streams(struct measure *m)
{
    cm_probe_report *r = m->r;
    AVFormatContext *fc = m->fc;
    free(r->streams);
    r->nb_streams = 0;
    r->streams = calloc(fc->nb_streams ? fc->nb_streams : 1, sizeof(*r->streams));
    if (!r->streams)
        return;
    for (unsigned i = 0; i < fc->nb_streams; i++) {
        const AVStream *st = fc->streams[i];
        struct cm_probe_stream *s = &r->streams[r->nb_streams++];
        switch (st->codecpar->codec_type) {
        case AVMEDIA_TYPE_VIDEO:
            s->kind = (st->disposition & AV_DISPOSITION_ATTACHED_PIC) ? CM_PROBE_STREAM_COVER
                                                                      : CM_PROBE_STREAM_VIDEO;
            break;
        case AVMEDIA_TYPE_AUDIO: s->kind = CM_PROBE_STREAM_AUDIO; break;
        default: s->kind = CM_PROBE_STREAM_OTHER; break;
        }
        if (s->kind == CM_PROBE_STREAM_VIDEO)
            r->has_video = 1;
        snprintf(s->codec, sizeof(s->codec), "%s", avcodec_get_name(st->codecpar->codec_id));
    }
}

static int64_t declared_ms(const AVFormatContext *fc)
{
    if (fc->duration != AV_NOPTS_VALUE && fc->duration > 0)
        return av_rescale(fc->duration, 1000, AV_TIME_BASE);
    int64_t best = -1;
    for (unsigned i = 0; i < fc->nb_streams; i++) {
        const AVStream *st = fc->streams[i];
        if (!is_billed(st) || st->duration == AV_NOPTS_VALUE || st->duration <= 0)
            continue;
        int64_t ms = av_rescale_q(st->duration, st->time_base, (AVRational){1, 1000});
        if (ms > best)
            best = ms;
    }
    return best;
}

int cm__libav_code(int err, int timed_out)
{
    if (timed_out || err == AVERROR_EXIT)
        return CM_PROBE_E_TIMEOUT;
    if (err == AVERROR_INVALIDDATA || err == AVERROR_EOF)
        return CM_PROBE_E_DAMAGED;
    if (err == AVERROR(ENOMEM))
        return CM_PROBE_E_NOMEM;
    return CM_PROBE_E_LIBAV;
}

int cm__libav_fail(cm_probe_report *r, int timed_out, int64_t budget_ms, int err,
                   const char *what)
{
    char text[AV_ERROR_MAX_STRING_SIZE] = "";
    av_strerror(err, text, sizeof(text));
    switch (cm__libav_code(err, timed_out)) {
    case CM_PROBE_E_TIMEOUT:
        return cm__fail(r, CM_PROBE_E_TIMEOUT,
                        "Measuring %s took longer than the time budget of %lld ms.", r->file,
                        (long long)budget_ms);
    case CM_PROBE_E_DAMAGED:
        return cm__fail(r, CM_PROBE_E_DAMAGED,
                        "The file %s is damaged or cut off and cannot be measured (%s: %s).",
                        r->file, what, text);
    case CM_PROBE_E_NOMEM:
        return cm__fail(r, CM_PROBE_E_NOMEM, "Out of memory while reading %s.", r->file);
    default:
        return cm__fail(r, CM_PROBE_E_LIBAV, "The media library could not read %s (%s: %s).",
                        r->file, what, text);
    }
}

static int libav_fail(cm_probe_report *r, cm_input *in, int err, const char *what)
{
    return cm__libav_fail(r, in->timed_out, in->opt->time_budget_ms, err, what);
}

static void set_note(cm_probe_report *r, int truncated, int64_t grace_ms)
{
    if (truncated)
        r->note = CM_PROBE_NOTE_TRUNCATED;
    else if (r->declared_ms < 0)
        r->note = CM_PROBE_NOTE_NO_DURATION;
    else if (r->declared_ms - r->measured_ms > grace_ms)
        r->note = CM_PROBE_NOTE_HEADER_LONGER;
    else if (r->measured_ms - r->declared_ms > grace_ms)
        r->note = CM_PROBE_NOTE_HEADER_SHORTER;
    else
        r->note = CM_PROBE_NOTE_NONE;
}

static int measure_opened(const cm_probe *p, struct measure *m, const struct allowed *fmt)
{
    cm_probe_report *r = m->r;
    AVPacket *pkt = av_packet_alloc();
    if (!pkt || grow_tracks(m) != 0) {
        av_packet_free(&pkt);
        return cm__fail(r, CM_PROBE_E_NOMEM, "Out of memory while reading %s.", r->file);
    }
    int err = 0, full_scan = 0;
    int at_end = read_start(m, pkt);
    if (m->rescan) {
        /* Opened again after the tail was contradicted: every packet, in order. */
        r->declared_ms = fmt->header_duration ? declared_ms(m->fc) : -1;
        r->method = CM_PROBE_METHOD_PACKET_SCAN;
        full_scan = 1;
        err = at_end < 0 ? at_end : at_end ? 0 : read_to_end(m, pkt, p->opt.max_scan_packets);
        at_end = -999; /* handled */
    }
    /* After the first packets: FLV declares its duration in a script packet. */
    r->declared_ms = fmt->header_duration ? declared_ms(m->fc) : -1;
    if (at_end == -999) {
        /* measured above */
    } else if (at_end < 0) {
        err = at_end;
    } else if (at_end) {
        r->method = CM_PROBE_METHOD_PACKET_SCAN;
        full_scan = 1;
    } else if (fmt->plan == PLAN_INDEX && measure_index(m)) {
        r->method = CM_PROBE_METHOD_MP4_INDEX;
    } else if (fmt->plan == PLAN_TAIL) {
        r->method = CM_PROBE_METHOD_TAIL_PACKETS;
        err = measure_tail(m, pkt, &full_scan);
        if (err == 0 && !full_scan)
            err = tail_contradicted(m, pkt);
        if (err == NEED_RESCAN) {
            av_packet_free(&pkt);
            return NEED_RESCAN;
        }
        if (full_scan)
            r->method = CM_PROBE_METHOD_PACKET_SCAN;
    } else {
        r->method = CM_PROBE_METHOD_PACKET_SCAN;
        full_scan = 1;
        err = read_to_end(m, pkt, p->opt.max_scan_packets);
    }
    av_packet_free(&pkt);
    collect_streams(m);

    if (err == CM_PROBE_E_TIMEOUT || m->in->timed_out)
        return libav_fail(r, m->in, AVERROR_EXIT, "reading");
    if (err == CM_PROBE_E_TOOLONG)
        return cm__fail(r, CM_PROBE_E_TOOLONG,
                        "The file %s has more than %lld packets, more than the probe will scan.",
                        r->file, (long long)p->opt.max_scan_packets);
    if (err < 0)
        return cm__fail(r, err, "Out of memory while reading %s.", r->file);

    int billed_streams = 0;
    for (int i = 0; i < m->ntracks; i++)
        billed_streams += m->tracks[i].billed;
    if (billed_streams == 0)
        return cm__fail(r, CM_PROBE_E_NOSTREAMS,
                        "The file %s has no audio or video to bill (only pictures, subtitles or "
                        "data).", r->file);
    int64_t us = span_us(m);
    if (us < 0) {
        if (m->read_error)
            return libav_fail(r, m->in, m->read_error, "reading packets");
        return cm__fail(r, CM_PROBE_E_DAMAGED,
                        "The file %s has audio or video streams but no readable timestamps.",
                        r->file);
    }
    /* A read error cut a scan short: bill what was read, and say so. */
    if (m->read_error && full_scan && m->read_error != AVERROR_EOF)
        m->truncated = 1;
    r->measured_ms = (us + 500) / 1000;
    r->billable_ms = r->measured_ms;
    r->credits = cm_probe_credits_for(r->billable_ms, p->opt.grace_ms);
    set_note(r, m->truncated, p->opt.grace_ms);
    if (r->measured_ms > p->opt.max_duration_ms) {
        char got[32], lim[32];
        cm__format_hms(r->measured_ms, got, sizeof(got));
        cm__format_hms(p->opt.max_duration_ms, lim, sizeof(lim));
        return cm__fail(r, CM_PROBE_E_TOOLONG,
                        "The file %s plays for %s, longer than the limit of %s.", r->file, got,
                        lim);
    }
    return CM_PROBE_OK;
}

/* Opens the demuxer over in's AVIOContext with every lock in place. */
static int open_demuxer(cm_input *in, cm_probe_report *r, const AVInputFormat *ifmt, int score,
                        AVFormatContext **out)
{
    AVFormatContext *fc = avformat_alloc_context();
    if (!fc)
        return cm__fail(r, CM_PROBE_E_NOMEM, "Out of memory.");
    fc->pb = in->avio;
    fc->flags |= AVFMT_FLAG_CUSTOM_IO;
    fc->interrupt_callback.callback = interrupt_cb;
    fc->interrupt_callback.opaque = in;
    fc->io_open = refuse_io_open;
    /* Clock wraps are unwrapped in note_packet against the first timestamp, the same
       way in every read, so a clock reset is never mistaken for a wrap. */
    fc->correct_ts_overflow = 0;
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "format_whitelist", WHITELIST, 0);
    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    /* Enough for MPEG-TS to find its program tables; streams found later are added as
       their packets come. */
    av_dict_set(&opts, "probesize", "1000000", 0);
    av_dict_set(&opts, "max_streams", "64", 0);
    int err = avformat_open_input(&fc, r->file, ifmt, &opts);
    av_dict_free(&opts);
    if (err < 0) { /* fc was freed by libavformat; our AVIOContext was not */
        /* A weak guess (a few bytes that look like an MP3 frame) that does not open
           was never media. */
        if (!in->timed_out && score < AVPROBE_SCORE_EXTENSION)
            return cm__fail(r, CM_PROBE_E_NOTMEDIA,
                            "The file %s is not a video or audio file that can be read.", r->file);
        return libav_fail(r, in, err, "opening");
    }
    *out = fc;
    return CM_PROBE_OK;
}

int cm__measure(const cm_probe *p, cm_input *in, cm_probe_report *r)
{
    const AVInputFormat *ifmt = NULL;
    int score = av_probe_input_buffer2(in->avio, &ifmt, r->file, NULL, 0, PROBE_BYTES_MAX);
    if (in->timed_out)
        return libav_fail(r, in, AVERROR_EXIT, "probing");
    if (score < 0 || !ifmt || strcmp(ifmt->name, "tty") == 0)
        return cm__fail(r, CM_PROBE_E_NOTMEDIA,
                        "The file %s is not a video or audio file that can be read.", r->file);
    snprintf(r->format, sizeof(r->format), "%s", ifmt->name);
    const struct allowed *fmt = find_allowed(ifmt->name);
    if (!fmt)
        return cm__fail(r, CM_PROBE_E_REFUSED,
                        "The file %s is of a refused kind (%s): playlists, scripts, image "
                        "sequences and other formats that can point at other files are not "
                        "accepted.", r->file, ifmt->long_name ? ifmt->long_name : ifmt->name);
    if (fmt->plan == PLAN_STILL)
        return cm__fail(r, CM_PROBE_E_NOSTREAMS,
                        "The file %s is a still picture, not a video: there is nothing to play.",
                        r->file);
    if (fmt->plan == PLAN_SUBTITLE)
        return cm__fail(r, CM_PROBE_E_NOSTREAMS,
                        "The file %s holds only subtitles: there is no audio or video.", r->file);

    for (int rescan = p->opt.full_scan != 0;; rescan = 1) {
        AVFormatContext *fc = NULL;
        if (open_demuxer(in, r, ifmt, score, &fc) != CM_PROBE_OK)
            return r->error;
        struct measure m = {.fc = fc, .in = in, .r = r, .rescan = rescan};
        if (strcmp(ifmt->name, "matroska,webm") == 0)
            m.boundary = is_mkv_boundary, m.mkv = 1;
        else if (strcmp(ifmt->name, "flv") == 0)
            m.boundary = is_flv_boundary;
        int res = measure_opened(p, &m, fmt);
        free(m.tracks);
        avformat_close_input(&fc);
        if (res != NEED_RESCAN || rescan)
            return r->error;
        if (avio_seek(in->avio, 0, SEEK_SET) < 0)
            return libav_fail(r, in, AVERROR(EIO), "rewinding");
    }
}
