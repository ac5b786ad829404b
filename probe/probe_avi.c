/* SPDX-License-Identifier: MIT */
/*
 * probe_avi.c - the AVI structure walk: every chunk header after the stream headers.
 *
 * Players play every chunk they meet, whatever idx1 says (a cut-off file has none, an
 * edited one may be partial or wrong): libavformat's demuxer reads on from the start of
 * the movi list through every list, index and RIFF AVIX part to the end, playing each
 * stream chunk. The walk does the same without the payloads: it reads the stream
 * headers (strh: scale, rate, start, sample size), then the header of every chunk from
 * movi to the end of each RIFF part, in 64 KiB blocks (4 KiB ones when chunks are large).
 * Each stream's length is what the demuxer counts: one scale/rate unit per video frame,
 * and for audio the bytes over the sample size, or blocks, or one unit per chunk (VBR).
 *
 * A file that ends inside a chunk is cut off (*truncated; the bytes that are there
 * count, as the demuxer returns them). What the walk cannot follow as the demuxer does
 * is unproven: a chunk id it does not know as one of a stream's (the demuxer then
 * resynchronises byte by byte, and may find chunks inside), chunks hidden inside a chunk
 * whose size swallows them (looked for inside unknown chunks, in what is left after a
 * chunk that claims more than the file has, and through idx1 and the OpenDML indexes,
 * which the demuxer follows), and more than max(64 KiB, 1 %) of bytes no stream owns.
 */
#include "probe_bytes.h"
#include "probe_walk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/mathematics.h>

#define BLOCK (64 << 10)
#define HDRL_MAX (16 << 20)  /* stream headers and their super indexes */
#define SLACK_MIN (64 << 10) /* unattributed bytes tolerated: max(64 KiB, 1 %) */
#define AVI_MAX_STREAMS 100  /* two decimal digits */
#define CUT_MAX (1 << 20)    /* bytes looked into for hidden chunks */
#define STARTS_MAX (8 << 20) /* stream chunks whose start is remembered for the index check */
#define INDEX_MAX (64 << 20) /* bytes of an idx1 or ix## chunk read for the check */
#define IX_MAX 1024          /* OpenDML standard index chunks checked */
#define SMALL_CHUNK 2048     /* average chunk size above which headers are read one by one */
#define SMALL_READ 4096
#define HDR_CHUNK_MAX 1000000 /* libavformat ends the headers at a larger chunk (not LIST) */
#define HDR_DEPTH_MAX 8       /* lists inside lists among the headers */

struct avi_stream {
    int have; /* a strh was read for it */
    int video;
    uint32_t scale, rate, start;
    int64_t sample_size; /* libavformat's: bytes per unit, 0 for one unit per chunk */
    int64_t block_align; /* units are blocks of this many bytes (dshow), when no sample size */
    int64_t units;       /* what the chunks add to the demuxer's frame counter */
    int64_t chunks;
};

struct avi_walk {
    cm_input *in;
    AVFormatContext *fc;
    char *why;
    size_t whylen;
    uint8_t *buf; /* BLOCK bytes of the file from buf_off */
    int64_t buf_off, buf_len;
    struct avi_stream st[AVI_MAX_STREAMS];
    int nstreams;
    int truncated;
    int64_t demux_size;          /* the end of the file as the demuxer sees it (see cm__avi_walk) */
    int64_t media, unattributed; /* bytes inside movi lists: owned by streams / not */
    int movi_lists;
    int64_t reads;
    int64_t chunks_seen, chunk_bytes; /* chunks walked and their total size */
    int64_t *starts;                  /* where each stream chunk walked starts, ascending */
    size_t nstarts, cap_starts;
    int64_t idx1_off, idx1_size;             /* the first idx1 chunk (-1: none) */
    int64_t ix_off[IX_MAX], ix_size[IX_MAX]; /* OpenDML standard index chunks */
    int nix;
};

/* Sets the reason (w->why) and returns CM__WALK_UNPROVEN. */
#define unproven(w, ...) cm__walk_unproven((w)->why, (w)->whylen, __VA_ARGS__)

/* Points *p at n bytes of the file at off (n <= BLOCK), reading a block when they are
   not buffered. Returns how many of the n bytes the file has (less at its end), or -1
   when the deadline passed. */
static int64_t peek(struct avi_walk *w, int64_t off, int64_t n, const uint8_t **p)
{
    if (off < w->buf_off || off + n > w->buf_off + w->buf_len) {
        /* Small chunks: a whole block holds many headers. Large ones: a block would
           be mostly payload, so only the next header's neighbourhood is read. */
        int64_t want = w->chunks_seen > 0 && w->chunk_bytes / w->chunks_seen > SMALL_CHUNK
                           ? SMALL_READ
                           : BLOCK;
        int64_t got = cm__input_pread(w->in, w->buf, n > want ? n : want, off);
        if (got < 0)
            return -1;
        w->buf_off = off;
        w->buf_len = got;
        w->reads++;
    }
    int64_t have = w->buf_off + w->buf_len - off;
    *p = w->buf + (off - w->buf_off);
    return have < n ? have : n;
}

/* Whether [off, end of file) is zero padding: CM__WALK_PROVEN, else unproven (or a
   negative code when the deadline passed). */
static int trailing_padding(struct avi_walk *w, int64_t off)
{
    if (w->in->size - off > (1 << 20))
        return unproven(w, "%lld bytes follow the last AVI RIFF part",
                        (long long)(w->in->size - off));
    while (off < w->in->size) {
        const uint8_t *p;
        int64_t n = FFMIN((int64_t)SMALL_READ, w->in->size - off);
        int64_t got = peek(w, off, n, &p);
        if (got < 0)
            return CM_PROBE_E_TIMEOUT;
        if (got == 0)
            break;
        for (int64_t i = 0; i < got; i++)
            if (p[i] != 0)
                return unproven(w,
                                "the bytes at offset %lld after the last AVI RIFF part are "
                                "not padding (a joined file?)",
                                (long long)(off + i));
        off += got;
    }
    return CM__WALK_PROVEN;
}

static int is_fourcc(uint32_t t)
{
    for (int i = 0; i < 4; i++) {
        unsigned c = (t >> (24 - 8 * i)) & 0xff;
        if (c < 0x20 || c >= 0x7f)
            return 0;
    }
    return 1;
}

/* The stream number of a chunk id "NNxx", or -1. */
static int chunk_stream(uint32_t id)
{
    unsigned a = id >> 24, b = (id >> 16) & 0xff;
    if (a < '0' || a > '9' || b < '0' || b > '9')
        return -1;
    return (int)(a - '0') * 10 + (int)(b - '0');
}

/* Whether the chunks of a header list's payload h[from, to) (at offset base + from of the
   file) are what libavformat reads them as. Its header reader does not follow lists: it
   reads chunk after chunk, descending into every LIST, and ends the headers where a
   chunk other than a LIST claims more than HDR_CHUNK_MAX bytes, taking the rest of the
   file for media. Anything else than chunks that tile their list exactly (a LIST too
   short for its type, a chunk running past its list, bytes that are no chunk name, a
   media list among the headers) is read differently by the two: unproven. */
static int check_header_chunks(struct avi_walk *w, const uint8_t *h, int64_t from, int64_t to,
                               int64_t base, int depth)
{
    int64_t at = from;
    while (at < to) {
        if (to - at < 8)
            return unproven(w, "the AVI headers at offset %lld end inside a chunk header",
                            (long long)(base + at));
        uint32_t id = cm__rb32(h + at);
        int64_t len = cm__rl32(h + at + 4);
        int64_t body = at + 8;
        if (!is_fourcc(id))
            return unproven(w, "the bytes at offset %lld of the AVI headers are not a chunk",
                            (long long)(base + at));
        if (len > to - body)
            return unproven(w, "a chunk at offset %lld of the AVI headers runs past its list",
                            (long long)(base + at));
        if (id == CM__FOURCC('L', 'I', 'S', 'T')) {
            if (len < 4)
                return unproven(w, "a list at offset %lld of the AVI headers is too short",
                                (long long)(base + at));
            uint32_t type = cm__rb32(h + body);
            if (type == CM__FOURCC('m', 'o', 'v', 'i') || depth >= HDR_DEPTH_MAX)
                return unproven(w,
                                "a list at offset %lld of the AVI headers nests media or "
                                "too deep",
                                (long long)(base + at));
            int res = check_header_chunks(w, h, body + 4, body + len, base, depth + 1);
            if (res != CM__WALK_PROVEN)
                return res;
        } else if (len > HDR_CHUNK_MAX && id != CM__FOURCC('i', 'd', 'x', '1')) {
            return unproven(w,
                            "a chunk at offset %lld of the AVI headers claims %lld bytes: the "
                            "demuxer takes what follows for media",
                            (long long)(base + at), (long long)len);
        }
        at = body + len + (len & 1);
        if (at > to && (len & 1) && body + len == to)
            at = to; /* the last chunk's pad byte left out of its list's size */
    }
    return CM__WALK_PROVEN;
}

/* Reads a header list's payload [off, off + size) whole into *out (the list must be in
   the file) and checks its chunks (check_header_chunks). */
static int read_header_list(struct avi_walk *w, int64_t off, int64_t size, uint8_t **out)
{
    *out = NULL;
    if (size > HDRL_MAX)
        return unproven(w, "an AVI header list is larger than %d bytes", HDRL_MAX);
    uint8_t *h = malloc(size > 0 ? (size_t)size : 1);
    if (!h)
        return CM_PROBE_E_NOMEM;
    int64_t got = cm__input_pread(w->in, h, size, off);
    if (got < 0) {
        free(h);
        return CM_PROBE_E_TIMEOUT;
    }
    int res = got < size ? unproven(w, "the AVI headers run past the end of the file")
                         : check_header_chunks(w, h, 0, size, off, 0);
    if (res != CM__WALK_PROVEN) {
        free(h);
        return res;
    }
    *out = h;
    return CM__WALK_PROVEN;
}

/* Reads the hdrl list: one strl per stream, strh and strf. */
static int read_hdrl(struct avi_walk *w, int64_t off, int64_t size)
{
    uint8_t *h;
    int res = read_header_list(w, off, size, &h);
    if (res != CM__WALK_PROVEN)
        return res;
    int64_t got = size;
    for (int64_t at = 0; at + 8 <= got && res == CM__WALK_PROVEN;) {
        uint32_t id = cm__rb32(h + at);
        int64_t len = cm__rl32(h + at + 4);
        int64_t body = at + 8;
        if (len > got - body)
            len = got - body;
        if (id == CM__FOURCC('L', 'I', 'S', 'T') && len >= 4 &&
            cm__rb32(h + body) == CM__FOURCC('s', 't', 'r', 'l')) {
            /* one stream: its strh */
            for (int64_t a = body + 4; a + 8 <= body + len;) {
                uint32_t cid = cm__rb32(h + a);
                int64_t clen = cm__rl32(h + a + 4);
                if (clen > body + len - a - 8)
                    clen = body + len - a - 8;
                if (cid == CM__FOURCC('s', 't', 'r', 'h')) {
                    if (clen < 48) {
                        res = unproven(w, "an AVI stream header (strh) is too short");
                        break;
                    }
                    const uint8_t *s = h + a + 8;
                    uint32_t type = cm__rb32(s);
                    if (type == CM__FOURCC('p', 'a', 'd', 's'))
                        break;
                    if (type == CM__FOURCC('i', 'a', 'v', 's') ||
                        type == CM__FOURCC('i', 'v', 'a', 's')) {
                        res = unproven(w, "a DV type 1 AVI");
                        break;
                    }
                    if (w->nstreams >= AVI_MAX_STREAMS) {
                        res = unproven(w, "more than %d AVI streams", AVI_MAX_STREAMS);
                        break;
                    }
                    struct avi_stream *st = &w->st[w->nstreams++];
                    st->have = 1;
                    st->video = type == CM__FOURCC('v', 'i', 'd', 's');
                    st->scale = cm__rl32(s + 20);
                    st->rate = cm__rl32(s + 24);
                    st->start = cm__rl32(s + 28);
                    st->sample_size = st->video ? 0 : cm__rl32(s + 44);
                    break;
                }
                a += 8 + clen + (clen & 1);
            }
        }
        at = body + len + (len & 1);
    }
    free(h);
    return res;
}

/* Applies libavformat's rules for what one chunk of an audio stream counts: the block
   align it read from strf replaces a different sample size, and some codecs' sizes are
   known to mean one frame per chunk. */
static int finish_streams(struct avi_walk *w)
{
    AVFormatContext *fc = w->fc;
    if ((unsigned)w->nstreams != fc->nb_streams)
        return unproven(w, "the AVI declares %d streams, the demuxer found %u", w->nstreams,
                        fc->nb_streams);
    for (int i = 0; i < w->nstreams; i++) {
        struct avi_stream *s = &w->st[i];
        const AVCodecParameters *par = fc->streams[i]->codecpar;
        if (s->video || par->codec_type != AVMEDIA_TYPE_AUDIO)
            continue;
        int64_t ba = par->block_align > 0 ? par->block_align : 0;
        if (s->sample_size && ba && s->sample_size != ba)
            s->sample_size = ba;
        s->block_align = ba;
        if (par->codec_id == AV_CODEC_ID_AAC && ba <= 4)
            s->block_align = 0;
        if ((par->codec_id == AV_CODEC_ID_AAC && s->block_align == 1024 &&
             s->sample_size == 1024) ||
            (par->codec_id == AV_CODEC_ID_AAC && s->block_align == 4096 &&
             s->sample_size == 4096) ||
            (par->codec_id == AV_CODEC_ID_MP3 && s->block_align == 1152 && s->sample_size == 1152))
            s->sample_size = 0;
    }
    return CM__WALK_PROVEN;
}

static void count_chunk(struct avi_stream *s, int64_t size)
{
    s->chunks++;
    if (s->sample_size)
        s->units += size;
    else if (s->block_align)
        s->units += (size + s->block_align - 1) / s->block_align;
    else
        s->units += 1;
}

/* The chunk types a stream's chunks may have: compressed or raw video, audio, a palette
   change, subtitles. */
static int known_kind(uint32_t id)
{
    uint32_t kind = id & 0xffff;
    return kind == CM__FOURCC(0, 0, 'd', 'c') || kind == CM__FOURCC(0, 0, 'd', 'b') ||
           kind == CM__FOURCC(0, 0, 'w', 'b') || kind == CM__FOURCC(0, 0, 'p', 'c') ||
           kind == CM__FOURCC(0, 0, 't', 'x');
}

/* Whether [from, to) hides the header of a whole chunk of one of the streams: the
   demuxer, which resynchronises byte by byte on anything it does not take for a chunk,
   would find and play it. Returns CM__WALK_PROVEN when it does not (what looks at more
   than CUT_MAX bytes is not proven), else CM__WALK_UNPROVEN with what, or a code. */
static int no_hidden_chunks(struct avi_walk *w, int64_t from, int64_t to, const char *what)
{
    if (to - from > CUT_MAX)
        return unproven(w, "%s at offset %lld is too large to look into", what,
                        (long long)(from - 8));
    uint8_t *b = malloc(to > from ? (size_t)(to - from) : 1);
    if (!b)
        return CM_PROBE_E_NOMEM;
    int64_t got = to > from ? cm__input_pread(w->in, b, to - from, from) : 0;
    int res = got < 0 ? CM_PROBE_E_TIMEOUT : CM__WALK_PROVEN;
    for (int64_t i = 0; res == CM__WALK_PROVEN && i + 8 <= got; i++) {
        uint32_t id = cm__rb32(b + i);
        int sn = chunk_stream(id);
        if (sn >= 0 && sn < w->nstreams && known_kind(id) &&
            i + 8 + (int64_t)cm__rl32(b + i + 4) <= got)
            res = unproven(w, "%s at offset %lld hides chunks of stream %d", what,
                           (long long)(from - 8), sn);
    }
    free(b);
    return res;
}

/* Walks the chunks of a movi list's payload [off, end). */
static int walk_movi(struct avi_walk *w, int64_t off, int64_t end)
{
    int64_t fsize = w->in->size;
    w->movi_lists++;
    int64_t n = 0;
    while (off < end) {
        if ((++n & 4095) == 0 && cm__input_expired(w->in))
            return CM_PROBE_E_TIMEOUT;
        const uint8_t *p;
        int64_t got = peek(w, off, 12, &p);
        if (got < 0)
            return CM_PROBE_E_TIMEOUT;
        if (got < 8) {
            w->truncated = 1; /* cut inside a chunk header */
            return CM__WALK_PROVEN;
        }
        uint32_t id = cm__rb32(p);
        int64_t size = cm__rl32(p + 4);
        if (off + 7 + size > w->demux_size)
            /* The demuxer takes no chunk, list, index or padding for one when its size runs
               past the end of the file as it sees it: it resynchronises byte by byte
               inside, playing what it finds there. */
            return unproven(w,
                            "a chunk at offset %lld of the AVI claims more bytes than the file "
                            "has",
                            (long long)off);
        if (id == CM__FOURCC('L', 'I', 'S', 'T')) {
            /* a rec list (or any list): its chunks follow its 12-byte header */
            if (got < 12) {
                w->truncated = 1;
                return CM__WALK_PROVEN;
            }
            off += 12;
            continue;
        }
        if (!is_fourcc(id))
            return unproven(w, "the bytes at offset %lld of the AVI are not a chunk",
                            (long long)off);
        int64_t next = off + 8 + size + (size & 1);
        w->chunks_seen++;
        w->chunk_bytes += 8 + size;
        if (off + 8 + size > fsize) {
            /* The file ends inside this chunk: cut off, unless its size is a lie that
               hides chunks the demuxer (which resynchronises) will play. */
            int skipped = id == CM__FOURCC('i', 'd', 'x', '1') ||
                          id == CM__FOURCC('J', 'U', 'N', 'K') || (id >> 16) == (('i' << 8) | 'x');
            /* the demuxer skips an index or padding whole, to the end of the file */
            int res = skipped
                          ? CM__WALK_PROVEN
                          : no_hidden_chunks(w, off + 8, fsize,
                                             "a chunk that claims more bytes than the file has");
            if (res != CM__WALK_PROVEN)
                return res;
            w->truncated = 1;
            /* the demuxer returns the bytes of the chunk that are there */
            int sn = chunk_stream(id);
            int64_t present = fsize - off - 8;
            if (sn >= 0 && sn < w->nstreams && present > 0 && (id & 0xffff) != (('p' << 8) | 'c')) {
                count_chunk(&w->st[sn], present);
                w->media += present;
            }
            return CM__WALK_PROVEN;
        }
        int sn = chunk_stream(id);
        if (sn >= 0 && sn < w->nstreams && known_kind(id)) {
            if (w->nstarts == w->cap_starts) {
                size_t cap = w->cap_starts ? w->cap_starts * 2 : 4096;
                if (cap > STARTS_MAX)
                    return unproven(w, "more than %d chunks", STARTS_MAX);
                int64_t *v = realloc(w->starts, cap * sizeof(*v));
                if (!v)
                    return CM_PROBE_E_NOMEM;
                w->starts = v;
                w->cap_starts = cap;
            }
            w->starts[w->nstarts++] = off;
            w->media += size;
            if ((id & 0xffff) != (('p' << 8) | 'c')) /* not a palette change */
                count_chunk(&w->st[sn], size);
        } else if (sn >= 0 && sn < w->nstreams) {
            return unproven(w, "a chunk of stream %d at offset %lld has an unknown type", sn,
                            (long long)off);
        } else if (sn < 0 &&
                   ((id >> 16) == (('i' << 8) | 'x') || id == CM__FOURCC('J', 'U', 'N', 'K') ||
                    id == CM__FOURCC('i', 'd', 'x', '1'))) {
            /* an OpenDML standard index, padding, the legacy index: skipped whole by the
               demuxer too, which plays what they point at: they are checked later */
            if (id == CM__FOURCC('i', 'd', 'x', '1') && w->idx1_off < 0) {
                w->idx1_off = off + 8;
                w->idx1_size = size;
            } else if ((id >> 16) == (('i' << 8) | 'x') && w->nix < IX_MAX) {
                w->ix_off[w->nix] = off + 8;
                w->ix_size[w->nix++] = size;
            }
        } else {
            /* a chunk the demuxer does not take for one: it looks inside */
            int res = no_hidden_chunks(w, off + 8, off + 8 + size, "an unknown chunk");
            if (res != CM__WALK_PROVEN)
                return res;
            w->unattributed += 8 + size;
        }
        off = next;
    }
    return CM__WALK_PROVEN;
}

/* Walks the chunks of one RIFF part's payload [off, end): hdrl in the first; from the
   movi list on, every chunk to the part's end, whatever list holds it (the demuxer reads
   on through lists, idx1 and unknown chunks, playing every stream chunk it meets). */
static int walk_riff(struct avi_walk *w, int64_t off, int64_t end, int first)
{
    if (!first && w->movi_lists > 0)
        return walk_movi(w, off, end); /* an AVIX part: media from its first chunk */
    while (off + 8 <= end) {
        const uint8_t *p;
        int64_t got = peek(w, off, 12, &p);
        if (got < 0)
            return CM_PROBE_E_TIMEOUT;
        if (got < 8)
            break;
        uint32_t id = cm__rb32(p);
        int64_t size = cm__rl32(p + 4);
        if (!is_fourcc(id))
            return unproven(w, "the bytes at offset %lld of the AVI are not a chunk",
                            (long long)off);
        int64_t body = off + 8;
        int64_t stop = body + size;
        int past = stop > w->in->size;
        if (id == CM__FOURCC('L', 'I', 'S', 'T') && size < 4 && !past)
            return unproven(w, "a list at offset %lld of the AVI is too short", (long long)off);
        if (id == CM__FOURCC('L', 'I', 'S', 'T') && got >= 12) {
            uint32_t type = cm__rb32(p + 8);
            if (type == CM__FOURCC('h', 'd', 'r', 'l')) {
                if (!first || w->nstreams > 0)
                    return unproven(w, "the AVI has a second stream header list");
                if (past || size < 4)
                    return unproven(w, "the AVI stream headers run past the end of the file");
                int res = read_hdrl(w, body + 4, size - 4);
                if (res != CM__WALK_PROVEN)
                    return res;
                res = finish_streams(w);
                if (res != CM__WALK_PROVEN)
                    return res;
            } else if (type == CM__FOURCC('m', 'o', 'v', 'i')) {
                if (w->nstreams == 0)
                    return unproven(w, "the AVI's media comes before its stream headers");
                return walk_movi(w, body + 4, end);
            } else if (!past) {
                /* before the media: metadata lists (INFO, odml), never played, but read
                   chunk by chunk by the demuxer as the stream headers are */
                uint8_t *h;
                int res = read_header_list(w, body + 4, size - 4, &h);
                if (res != CM__WALK_PROVEN)
                    return res;
                free(h);
            }
        } else if (size > HDR_CHUNK_MAX && id != CM__FOURCC('i', 'd', 'x', '1')) {
            /* the demuxer's header reader stops here and takes the rest for media */
            return unproven(w,
                            "a chunk at offset %lld of the AVI headers claims %lld bytes: the "
                            "demuxer takes what follows for media",
                            (long long)off, (long long)size);
        }
        if (past) {
            w->truncated = 1; /* cut before the media */
            return CM__WALK_PROVEN;
        }
        off = stop + (size & 1);
    }
    return CM__WALK_PROVEN;
}

static int walked_chunk(const struct avi_walk *w, int64_t at)
{
    size_t lo = 0, hi = w->nstarts;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w->starts[mid] < at)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < w->nstarts && w->starts[lo] == at;
}

/* idx1's entries (b, got bytes): each chunk of a stream it names inside the file must be
   one the walk found. Its offsets are relative to a base that the demuxer, too, takes
   from its first entry and the first chunk. */
static int check_idx1(struct avi_walk *w, const uint8_t *b, int64_t got)
{
    int64_t base = 0;
    int first = 1;
    for (int64_t i = 0; i + 16 <= got; i += 16) {
        uint32_t id = cm__rb32(b + i);
        int sn = chunk_stream(id);
        if (sn < 0 || sn >= w->nstreams || !known_kind(id))
            continue;
        int64_t pos = cm__rl32(b + i + 8);
        if (first) {
            base = w->starts[0] - pos;
            first = 0;
        }
        int64_t at = pos + base;
        if (at >= 0 && at < w->in->size && !walked_chunk(w, at))
            return unproven(w,
                            "the AVI's index (idx1) names a chunk at offset %lld that the "
                            "chunk headers hide",
                            (long long)at);
    }
    return CM__WALK_PROVEN;
}

/* An OpenDML standard index chunk (b, got bytes): wLongsPerEntry, bIndexSubType,
   bIndexType, nEntriesInUse, dwChunkId, qwBaseOffset, dwReserved; then (offset of the
   data from the base, size) per entry. Same rule as check_idx1(). */
static int check_ix(struct avi_walk *w, const uint8_t *b, int64_t got)
{
    if (got < 24 || b[3] != 1 /* AVI_INDEX_OF_CHUNKS */ || cm__rl16(b) != 2)
        return CM__WALK_PROVEN;
    uint32_t n = cm__rl32(b + 4);
    int sn = chunk_stream(cm__rb32(b + 8));
    int64_t base = (int64_t)((uint64_t)cm__rl32(b + 12) | (uint64_t)cm__rl32(b + 16) << 32);
    if (sn < 0 || sn >= w->nstreams || base < 0)
        return CM__WALK_PROVEN;
    for (int64_t i = 0; i < n && 24 + 8 * i + 8 <= got; i++) {
        int64_t at = base + cm__rl32(b + 24 + 8 * i) - 8;
        if (at >= 0 && at < w->in->size && !walked_chunk(w, at))
            return unproven(w,
                            "the AVI's OpenDML index names a chunk at offset %lld that the "
                            "chunk headers hide",
                            (long long)at);
    }
    return CM__WALK_PROVEN;
}

/* Reads the index chunk payload [off, off + size) (cut to the file) and checks it. */
static int check_index(struct avi_walk *w, int64_t off, int64_t size,
                       int (*check)(struct avi_walk *, const uint8_t *, int64_t))
{
    if (size > INDEX_MAX)
        return unproven(w, "an AVI index of %lld bytes", (long long)size);
    uint8_t *b = malloc(size > 0 ? (size_t)size : 1);
    if (!b)
        return CM_PROBE_E_NOMEM;
    int64_t got = cm__input_pread(w->in, b, size, off);
    int res = got < 0 ? CM_PROBE_E_TIMEOUT : check(w, b, got);
    free(b);
    return res;
}

/* The demuxer plays what its index points at even where the chunk headers say
   otherwise (a chunk whose size swallows others): every chunk of a stream that idx1 or
   an OpenDML index names inside the file must be one the walk found. */
static int check_indexes(struct avi_walk *w)
{
    int res = CM__WALK_PROVEN;
    if (w->idx1_off >= 0 && w->nstarts > 0)
        res = check_index(w, w->idx1_off, w->idx1_size, check_idx1);
    for (int k = 0; k < w->nix && res == CM__WALK_PROVEN; k++)
        res = check_index(w, w->ix_off[k], w->ix_size[k], check_ix);
    return res;
}

int cm__avi_walk(cm_input *in, AVFormatContext *fc, const int *billed, struct cm__span *spans,
                 int *truncated, char *why, size_t whylen)
{
    cm__walk_begin(fc, spans, truncated, why, whylen);
    struct avi_walk *w = calloc(1, sizeof(*w));
    if (!w)
        return CM_PROBE_E_NOMEM;
    w->in = in;
    w->fc = fc;
    w->why = why;
    w->whylen = whylen;
    w->idx1_off = -1;
    w->buf = malloc(BLOCK);
    if (!w->buf) {
        free(w);
        return CM_PROBE_E_NOMEM;
    }
    int res = CM__WALK_PROVEN;
    int64_t off = 0;
    for (int part = 0; off < in->size && res == CM__WALK_PROVEN && !w->truncated; part++) {
        const uint8_t *p;
        int64_t got = peek(w, off, 12, &p);
        if (got < 0) {
            res = CM_PROBE_E_TIMEOUT;
            break;
        }
        if (got < 12 || cm__rb32(p) != CM__FOURCC('R', 'I', 'F', 'F') ||
            cm__rb32(p + 8) !=
                (part == 0 ? CM__FOURCC('A', 'V', 'I', ' ') : CM__FOURCC('A', 'V', 'I', 'X'))) {
            /* Bytes after the last RIFF part: the demuxer resynchronises through them and
               plays any chunk it finds there (a second AVI joined with cat), so only zero
               padding is accepted. */
            if (part > 0) {
                res = trailing_padding(w, off);
                break;
            }
            res = unproven(w, "the bytes at offset %lld are not an AVI RIFF part", (long long)off);
            break;
        }
        int64_t size = cm__rl32(p + 4);
        int64_t end = off + 8 + size;
        if (part == 0) /* libavformat's: the file's size, or the first RIFF's end beyond it */
            w->demux_size = FFMAX(in->size, end);
        if (end > in->size) {
            end = in->size; /* a cut-off file: what is inside is walked */
            w->truncated = 1;
        }
        int was_truncated = w->truncated;
        w->truncated = 0;
        res = walk_riff(w, off + 12, end, part == 0);
        w->truncated |= was_truncated;
        off = off + 8 + size + (size & 1);
    }
    if (res == CM__WALK_PROVEN && w->movi_lists == 0)
        res = unproven(w, "the AVI has no movi list");
    if (res == CM__WALK_PROVEN)
        res = check_indexes(w);
    if (res == CM__WALK_PROVEN) {
        int64_t total = w->media + w->unattributed;
        int64_t slack = total / 100 > SLACK_MIN ? total / 100 : SLACK_MIN;
        if (w->unattributed > slack)
            res = unproven(w, "%lld bytes of the AVI after its stream headers belong to no stream",
                           (long long)w->unattributed);
    }
    int any = 0;
    for (int i = 0; i < w->nstreams && res == CM__WALK_PROVEN; i++) {
        const struct avi_stream *s = &w->st[i];
        const AVStream *st = fc->streams[i];
        if (!billed[i] || s->chunks == 0)
            continue;
        /* the demuxer's counter starts at the stream's start, in units (times the
           sample size for audio counted in bytes), and its dts is the counter over the
           sample size */
        int64_t ss = s->sample_size > 0 ? s->sample_size : 1;
        int64_t first = s->start;
        int64_t last = s->sample_size > 0 ? ((int64_t)s->start * ss + s->units) / ss
                                          : (int64_t)s->start + s->units;
        int64_t a = first, b = last;
        if (s->scale > 0 && s->rate > 0 && s->scale <= INT32_MAX && s->rate <= INT32_MAX) {
            AVRational unit = {(int)s->scale, (int)s->rate};
            a = av_rescale_q(first, unit, st->time_base);
            b = av_rescale_q(last, unit, st->time_base);
        }
        spans[i] = (struct cm__span){1, a, b};
        any = 1;
    }
    if (res == CM__WALK_PROVEN && !any)
        res = unproven(w, "no audio or video chunk of the AVI is whole in the file");
    if (res != CM__WALK_PROVEN)
        for (unsigned i = 0; i < fc->nb_streams; i++)
            spans[i].set = 0;
    *truncated = w->truncated;
    free(w->buf);
    free(w->starts);
    free(w);
    return res;
}
