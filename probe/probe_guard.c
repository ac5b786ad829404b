/* SPDX-License-Identifier: MIT */
/*
 * probe_guard.c - declared sizes refused before libavformat reads a header.
 *
 * A few header fields make libavformat allocate (and zero) memory by what they declare,
 * before anything else is read and out of reach of the time budget's interrupt
 * callback (the allocation and clearing are not I/O). Measured with ffmpeg 5.1
 * (/usr/bin/time -v, cm-probe and ffprobe alike):
 *
 *   RIFF LIST INFO  (AVI before movi, WAV anywhere): ff_read_riff_info() allocates each
 *                   metadata chunk zeroed at its declared size, bounded only by the
 *                   list's declared end. A 300 KB AVI (or a 1 MB WAV) whose INFO list and
 *                   a chunk in it claim 1.68 GB: 1.67 GB RSS, 7 s (11 s for the WAV).
 *   MP4 trun        mov_read_trun() grows the stream's index and composition table by
 *                   the declared sample count (up to INT_MAX / 24, 89 million) and moves
 *                   the entries after a fragment read out of order: a 24 KB fragmented
 *                   file with a sidx and a trun claiming 16 million samples, 170 MB and
 *                   1.4 s; at 80 million, 730 MB and 4 s.
 *
 * The guard reads the same headers first, the way the demuxer walks them (an AVI strf
 * as the demuxer reads it: a video one is a 40-byte bitmap header whatever its chunk
 * declares), and refuses
 * what no file can be: an INFO list running past the end of the file, a trun listing
 * more samples than its bytes hold, or truns whose samples of default size (no
 * per-sample fields) add up to more bytes than the file has. Such a file is damaged
 * (CM_PROBE_E_DAMAGED). Since a chunk read otherwise than it declares puts the demuxer
 * off the chunk boundaries the walk assumes, an AVI's header bytes up to its movi list
 * (at most 1 MB) are also looked at one by one for an INFO list running past the end.
 * Its cost: one read per RIFF chunk before the media, one per
 * top-level MP4 box and each moof read whole (a few KB), the bytes the structure walk
 * reads again afterwards from the page cache.
 */
#include "probe_bytes.h"
#include "probe_measure.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RIFF_STEPS_MAX 100000     /* header chunks looked at before the media */
#define HDR_CHUNK_MAX 1000000     /* libavformat's AVI headers end at a larger chunk */
#define RIFF_SCAN_MAX (1 << 20)   /* AVI header bytes looked at for a metadata list */
#define GUARD_MOOF_MAX (16 << 20) /* a moof is a few KB */
#define GUARD_BOXES_MAX (4 << 20) /* top-level boxes (2 per fragment) */

/* trun flags (ISO/IEC 14496-12) */
#define TRUN_DATA_OFFSET 0x000001
#define TRUN_FIRST_SAMPLE_FLAGS 0x000004
#define TFHD_BASE_DATA_OFFSET 0x000001
#define TFHD_STSD_ID 0x000002
#define TFHD_DEFAULT_DURATION 0x000008
#define TFHD_DEFAULT_SIZE 0x000010

static uint32_t riff_u32(const uint8_t *p, int big_endian)
{
    return big_endian ? cm__rb32(p) : cm__rl32(p);
}

/* Where libavformat's AVI header reader is after a strf chunk whose payload starts at
   pay and declares size bytes (clipped to the strl list's end), for a stream of type
   strh_type (the last strh). A video strf is a BITMAPINFOHEADER: 40 bytes are read
   whatever the chunk declares, the rest only as extradata of a plausible size; an audio
   strf (WAVEFORMAT) is read by ff_get_wav_header, 14 or 16 bytes when shorter than a
   WAVEFORMATEX. Returns -1 where the reader gives up (the demuxer fails to open). */
static int64_t avi_strf_end(cm_input *in, int64_t pay, int64_t size, uint32_t strh_type)
{
    if (strh_type == CM__FOURCC('v', 'i', 'd', 's')) {
        uint8_t b[20];
        if (cm__input_pread(in, b, 20, pay) < 20)
            return -1;
        uint32_t tag = cm__rl32(b + 16), esize = cm__rl32(b);
        if (tag == CM__FOURCC('B', 'S', 'X', 'D') || tag == CM__FOURCC('A', 'S', 'X', 'D'))
            return pay + 40; /* DXSB/DXSA (read little-endian): subtitles, no extradata */
        if (size > 40 && size < (1 << 30) && size < in->size)
            return pay + size + (esize == size - 1 && (esize & 1) ? 0 : (size & 1));
        return pay + 40;
    }
    if (strh_type == CM__FOURCC('a', 'u', 'd', 's')) {
        if (size < 14)
            return -1;
        return pay + (size == 14 ? 14 : size < 18 ? 16 : size) + (size & 1);
    }
    return pay + size;
}

/* A RIFF list at off whose type is INFO and whose declared size runs past the end of
   the file. */
static int info_past_end(const uint8_t *h, int64_t off, int64_t file_size, int be)
{
    return cm__rb32(h) == CM__FOURCC('L', 'I', 'S', 'T') &&
           cm__rb32(h + 8) == CM__FOURCC('I', 'N', 'F', 'O') &&
           off + 8 + (int64_t)riff_u32(h + 4, be) > file_size;
}

static int info_damaged(int64_t off, int64_t size, char *why, size_t whylen)
{
    snprintf(why, whylen,
             "its metadata list (LIST INFO) at offset %lld claims %lld bytes, more than the "
             "file has",
             (long long)off, (long long)size);
    return CM_PROBE_E_DAMAGED;
}

/* Every byte of the AVI header region [12, end): a metadata list anywhere in it that
   claims more than the file has is refused, wherever the header reader's walk lands
   (a chunk read differently from what it declares puts the reader off the chunk
   boundaries the guard's walk assumes). The region ends at the first movi list, at
   least at where the walk stopped, and at most RIFF_SCAN_MAX bytes in. */
static int guard_avi_bytes(cm_input *in, int64_t walked, int be, char *why, size_t whylen)
{
    enum { BLOCK = 64 << 10 };
    uint8_t *b = malloc(BLOCK);
    if (!b)
        return CM_PROBE_E_NOMEM;
    int res = 0, done = 0;
    int64_t end = in->size < RIFF_SCAN_MAX ? in->size : RIFF_SCAN_MAX;
    /* blocks overlap by a list header's 12 bytes less one */
    for (int64_t base = 0; res == 0 && !done && base + 12 <= end; base += BLOCK - 11) {
        int64_t want = end - base < BLOCK ? end - base : BLOCK;
        int64_t got = cm__input_pread(in, b, want, base);
        if (got < 0) {
            res = CM_PROBE_E_TIMEOUT;
            break;
        }
        for (int64_t i = base < 12 ? 12 - base : 0; i + 12 <= got; i++) {
            if (b[i] != 'L' || memcmp(b + i, "LIST", 4) != 0)
                continue;
            if (info_past_end(b + i, base + i, in->size, be)) {
                res = info_damaged(base + i, riff_u32(b + i + 4, be), why, whylen);
                break;
            }
            if (base + i >= walked && memcmp(b + i + 8, "movi", 4) == 0) {
                done = 1;
                break;
            }
        }
        if (got < want)
            break;
    }
    free(b);
    return res;
}

/* The chunks of a RIFF file as libavformat's AVI or WAV header reader walks them. */
static int guard_riff(cm_input *in, int avi, char *why, size_t whylen)
{
    uint8_t h[12];
    int64_t got = cm__input_pread(in, h, 12, 0);
    if (got < 0)
        return CM_PROBE_E_TIMEOUT;
    if (got < 12)
        return 0;
    int be = cm__rb32(h) == CM__FOURCC('R', 'I', 'F', 'X');
    int64_t off = 12, list_end = 0;
    uint32_t strh_type = 0;
    int streams = 0, strf_read = 0;
    for (int step = 0; step < RIFF_STEPS_MAX && off + 8 <= in->size; step++) {
        got = cm__input_pread(in, h, 12, off);
        if (got < 0)
            return CM_PROBE_E_TIMEOUT;
        if (got < 8)
            break;
        uint32_t id = cm__rb32(h);
        int64_t size = riff_u32(h + 4, be);
        if (id == CM__FOURCC('L', 'I', 'S', 'T') && got >= 12) {
            uint32_t type = cm__rb32(h + 8);
            if (avi && type == CM__FOURCC('m', 'o', 'v', 'i'))
                break; /* the media: the header reader stops */
            if (type == CM__FOURCC('I', 'N', 'F', 'O')) {
                if (info_past_end(h, off, in->size, be))
                    return info_damaged(off, size, why, whylen);
                off += 8 + size;
            } else if (avi) {
                list_end = off + 8 + size;
                off += 12; /* read on inside every list */
            } else {
                off += 8 + size;
            }
            continue;
        }
        if (!avi) {
            off += 8 + size + (size & 1);
            continue;
        }
        int64_t pay = off + 8;
        if (id == CM__FOURCC('s', 't', 'r', 'h') && got >= 12) {
            uint32_t type = cm__rb32(h + 8);
            if (type != CM__FOURCC('p', 'a', 'd', 's'))
                streams++, strh_type = type, strf_read = 0;
            off = pay + size; /* read and skipped to its declared end, unpadded */
        } else if (id == CM__FOURCC('s', 't', 'r', 'f')) {
            if (size && streams && !strf_read) {
                if (pay < list_end && size > list_end - pay)
                    size = list_end - pay;
                off = avi_strf_end(in, pay, size, strh_type);
                strf_read = 1;
                if (off < 0)
                    break; /* libavformat refuses the header */
            } else {
                off = pay + size;
            }
        } else if (id == CM__FOURCC('a', 'v', 'i', 'h') || id == CM__FOURCC('i', 'n', 'd', 'x')) {
            off = pay + size;
        } else if (size > HDR_CHUNK_MAX && id != CM__FOURCC('i', 'd', 'x', '1')) {
            break; /* the AVI header reader takes the rest for media */
        } else {
            off = pay + size + (size & 1);
        }
    }
    return avi ? guard_avi_bytes(in, off, be, why, whylen) : 0;
}

static void add_bytes(uint64_t *total, uint64_t count, uint64_t size)
{
    uint64_t product;
    if (__builtin_mul_overflow(count, size, &product) ||
        __builtin_add_overflow(*total, product, total))
        *total = UINT64_MAX;
}

/* The next child box of b[0, len) at *at, as libavformat's mov_read_default() reads it: a
   64-bit size when the size is 1, the rest of the parent when it is 0, cut to the parent
   when it claims more. Returns 1 with its type and payload, 0 at the end (or where the
   demuxer stops: a size below the header's). */
static int guard_child(const uint8_t *b, size_t len, size_t *at, uint32_t *type,
                       const uint8_t **body, size_t *blen)
{
    if (*at + 8 > len)
        return 0;
    size_t left = len - *at;
    uint64_t size = cm__rb32(b + *at);
    size_t hdr = 8;
    if (size == 1) {
        if (left < 16)
            return 0;
        size = cm__rb64(b + *at + 8);
        hdr = 16;
    } else if (size == 0) {
        size = left;
    }
    if (size < hdr)
        return 0;
    if (size > left)
        size = left;
    *type = cm__rb32(b + *at + 4);
    *body = b + *at + hdr;
    *blen = (size_t)size - hdr;
    *at += (size_t)size;
    return 1;
}

/* One trun (payload p, plen bytes): refused when it declares more samples than it holds;
   the bytes of samples of the default size def_size add up in *default_bytes. */
static int guard_trun(const uint8_t *p, size_t plen, int64_t off, uint64_t def_size,
                      uint64_t *default_bytes, char *why, size_t whylen)
{
    if (plen < 8)
        return 0;
    uint32_t flags = cm__rb24(p + 1);
    uint64_t count = cm__rb32(p + 4);
    size_t head =
        8 + (flags & TRUN_DATA_OFFSET ? 4 : 0) + (flags & TRUN_FIRST_SAMPLE_FLAGS ? 4 : 0);
    size_t entry = 4 * (size_t)__builtin_popcount(flags & 0xf00);
    uint64_t room = plen > head ? plen - head : 0;
    if (entry && count > room / entry) {
        snprintf(why, whylen,
                 "a track run (trun) in the fragment at offset %lld declares %llu samples but "
                 "holds %llu",
                 (long long)off, (unsigned long long)count, (unsigned long long)(room / entry));
        return CM_PROBE_E_DAMAGED;
    }
    if (!entry)
        add_bytes(default_bytes, count, def_size);
    return 0;
}

/* The truns of one moof's trafs: *default_bytes adds up the bytes of the samples that
   have the default size. A moof inside it (a moof whose size swallows the boxes after
   it: the demuxer reads them as its children) is looked into the same way. */
static int guard_moof(const uint8_t *b, size_t len, int64_t off, uint64_t *default_bytes, int depth,
                      char *why, size_t whylen)
{
    size_t at = 0, blen;
    uint32_t type;
    const uint8_t *body;
    while (guard_child(b, len, &at, &type, &body, &blen)) {
        int res = 0;
        if (type == CM__FOURCC('m', 'o', 'o', 'f') && depth < 4)
            res = guard_moof(body, blen, off, default_bytes, depth + 1, why, whylen);
        if (res != 0)
            return res;
        if (type != CM__FOURCC('t', 'r', 'a', 'f'))
            continue;
        uint64_t def_size = 1; /* a sample is at least a byte */
        size_t c = 0, plen;
        uint32_t ctype;
        const uint8_t *p;
        while (guard_child(body, blen, &c, &ctype, &p, &plen)) {
            uint32_t flags = plen >= 4 ? cm__rb24(p + 1) : 0;
            if (ctype == CM__FOURCC('t', 'f', 'h', 'd') && (flags & TFHD_DEFAULT_SIZE)) {
                size_t f = 8 + (flags & TFHD_BASE_DATA_OFFSET ? 8 : 0) +
                           (flags & TFHD_STSD_ID ? 4 : 0) + (flags & TFHD_DEFAULT_DURATION ? 4 : 0);
                if (f + 4 <= plen && cm__rb32(p + f) > 0)
                    def_size = cm__rb32(p + f);
            } else if (ctype == CM__FOURCC('t', 'r', 'u', 'n')) {
                res = guard_trun(p, plen, off, def_size, default_bytes, why, whylen);
                if (res != 0)
                    return res;
            }
        }
    }
    return 0;
}

/* Every top-level box, and each moof's truns. */
static int guard_mp4(cm_input *in, char *why, size_t whylen)
{
    uint64_t default_bytes = 0;
    uint8_t *buf = NULL;
    int res = 0;
    int64_t boxes = 0;
    for (int64_t off = 0; off + 8 <= in->size && res == 0 && boxes++ < GUARD_BOXES_MAX;) {
        uint8_t h[16];
        int64_t got = cm__input_pread(in, h, 16, off);
        if (got < 0) {
            res = CM_PROBE_E_TIMEOUT;
            break;
        }
        uint64_t size = cm__rb32(h);
        uint32_t type = cm__rb32(h + 4);
        uint64_t hdr = 8;
        if (size == 1 && got >= 16)
            size = cm__rb64(h + 8), hdr = 16;
        else if (size == 0)
            size = (uint64_t)(in->size - off);
        if (size < hdr)
            break; /* not a box: the structure walk says so */
        uint64_t left = (uint64_t)(in->size - off);
        uint64_t have = size < left ? size : left; /* a box cut off is read to the end */
        if (type == CM__FOURCC('m', 'o', 'o', 'f') && have <= GUARD_MOOF_MAX) {
            uint8_t *b = realloc(buf, (size_t)have);
            if (!b) {
                res = CM_PROBE_E_NOMEM;
                break;
            }
            buf = b;
            got = cm__input_pread(in, buf, (int64_t)have, off);
            if (got < 0) {
                res = CM_PROBE_E_TIMEOUT;
                break;
            }
            if ((uint64_t)got > hdr)
                res = guard_moof(buf + hdr, (size_t)got - hdr, off, &default_bytes, 0, why, whylen);
            if (res == 0 && default_bytes > (uint64_t)in->size) {
                snprintf(why, whylen,
                         "its track runs (trun) declare samples of %llu bytes in all, more "
                         "than the file has",
                         (unsigned long long)default_bytes);
                res = CM_PROBE_E_DAMAGED;
            }
        } else if (type == CM__FOURCC('m', 'o', 'o', 'f')) {
            snprintf(why, whylen, "a movie fragment (moof) at offset %lld claims %llu bytes",
                     (long long)off, (unsigned long long)size);
            res = CM_PROBE_E_DAMAGED;
        }
        if (size >= left)
            break;
        off += (int64_t)size;
    }
    free(buf);
    return res;
}

int cm__guard(cm_input *in, const char *format, char *why, size_t whylen)
{
    if (why && whylen)
        why[0] = '\0';
    if (strcmp(format, "avi") == 0)
        return guard_riff(in, 1, why, whylen);
    if (strcmp(format, "wav") == 0)
        return guard_riff(in, 0, why, whylen);
    if (strncmp(format, "mov,", 4) == 0)
        return guard_mp4(in, why, whylen);
    return 0;
}
