/* SPDX-License-Identifier: MIT */
/*
 * probe_mkv.c - Matroska clusters read straight from bytes. See probe_mkv.h.
 */
#include "probe_mkv.h"

#include <string.h>

#define ID_CRC32 0xBFu
#define ID_TRACKS 0x1654AE6Bu
#define ID_TRACKENTRY 0xAEu
#define ID_TRACKNUMBER 0xD7u
#define ID_TRACKTYPE 0x83u
#define ID_DEFAULTDURATION 0x23E383u
#define ID_TRACKTIMESTAMPSCALE 0x23314Fu
#define ID_CODECID 0x86u

/* An EBML variable-length integer at p. Returns its length (1-8), or 0 when it is
   malformed or does not fit in avail. keep_marker: element IDs keep their marker bit. */
static int vint(const uint8_t *p, size_t avail, int keep_marker, uint64_t *val, int *unknown)
{
    if (avail == 0 || p[0] == 0)
        return 0;
    int n = 1;
    while (!(p[0] & (0x80 >> (n - 1))))
        n++;
    if ((size_t)n > avail || (keep_marker && n > 4))
        return 0;
    uint64_t v = keep_marker ? p[0] : (uint64_t)(p[0] & (0xFF >> n));
    int ones = (v == (uint64_t)(0xFF >> n));
    for (int i = 1; i < n; i++) {
        v = v << 8 | p[i];
        ones = ones && p[i] == 0xFF;
    }
    *val = v;
    if (unknown)
        *unknown = !keep_marker && ones;
    return n;
}

static uint64_t read_uint(const uint8_t *p, uint64_t size)
{
    uint64_t v = 0;
    for (uint64_t i = 0; i < size && i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

int cm__mkv_is_cluster(const uint8_t *p, int64_t avail)
{
    if (avail < 6 || p[0] != 0x1F || p[1] != 0x43 || p[2] != 0xB6 || p[3] != 0x75)
        return 0;
    uint64_t size;
    int n = vint(p + 4, (size_t)avail - 4, 0, &size, NULL);
    if (!n || 4 + n >= avail)
        return 0;
    uint8_t first = p[4 + n];
    return first == CM__MKV_ID_TIMESTAMP || first == ID_CRC32;
}

int cm__mkv_block_header(const uint8_t *p, size_t size, uint64_t *track, int16_t *rel, int *frames)
{
    int n = vint(p, size, 0, track, NULL);
    if (!n || (size_t)n + 3 > size)
        return 0;
    *rel = (int16_t)((uint16_t)p[n] << 8 | p[n + 1]);
    uint8_t flags = p[n + 2];
    *frames = 1;
    if ((flags >> 1) & 3) {
        if ((size_t)n + 4 > size)
            return 0;
        *frames = p[n + 3] + 1;
    }
    return 1;
}

int cm__mkv_scan(const uint8_t *buf, size_t len, int max_blocks, cm_mkv_block_fn fn, void *ctx)
{
    size_t off = 0;
    int blocks = 0;
    int64_t cluster_ts = -1;
    while (off < len && blocks < max_blocks) {
        uint64_t id, size;
        int unknown = 0;
        int il = vint(buf + off, len - off, 1, &id, NULL);
        if (!il)
            break;
        int sl = vint(buf + off + il, len - off - (size_t)il, 0, &size, &unknown);
        if (!sl)
            break;
        size_t data = off + (size_t)il + (size_t)sl;
        if (id == CM__MKV_ID_CLUSTER) { /* enter: its children follow */
            cluster_ts = -1;
            off = data;
            continue;
        }
        if (unknown || size > len - data)
            break; /* cut off by the end of the buffer, or a level we do not enter */
        if (id == CM__MKV_ID_TIMESTAMP && size <= 8) {
            cluster_ts = (int64_t)(read_uint(buf + data, size) & INT64_MAX);
        } else if ((id == CM__MKV_ID_SIMPLEBLOCK || id == CM__MKV_ID_BLOCKGROUP) &&
                   cluster_ts >= 0) {
            const uint8_t *block = NULL;
            size_t block_size = 0;
            int64_t duration = -1;
            if (id == CM__MKV_ID_SIMPLEBLOCK) {
                block = buf + data, block_size = (size_t)size;
            } else {
                size_t c = data, end = data + (size_t)size;
                while (c < end) {
                    uint64_t cid, csize;
                    int cu = 0;
                    int cil = vint(buf + c, end - c, 1, &cid, NULL);
                    int csl = cil ? vint(buf + c + cil, end - c - (size_t)cil, 0, &csize, &cu) : 0;
                    if (!cil || !csl || cu)
                        break;
                    size_t cdata = c + (size_t)cil + (size_t)csl;
                    if (csize > end - cdata)
                        break;
                    if (cid == CM__MKV_ID_BLOCK)
                        block = buf + cdata, block_size = (size_t)csize;
                    else if (cid == CM__MKV_ID_BLOCKDURATION && csize <= 8)
                        duration = (int64_t)(read_uint(buf + cdata, csize) & INT64_MAX);
                    c = cdata + (size_t)csize;
                }
            }
            uint64_t track;
            int16_t rel;
            int frames;
            if (block && cm__mkv_block_header(block, block_size, &track, &rel, &frames)) {
                fn(ctx, track, cluster_ts + rel, frames, duration);
                blocks++;
            }
        }
        off = data + (size_t)size;
    }
    return blocks;
}

/* One element header at buf[off]: its ID, where its data starts and its size
   (unknown sizes are reported as such). Returns 0 when it cannot be read. */
static int element(const uint8_t *buf, size_t len, size_t off, uint64_t *id, size_t *data,
                   uint64_t *size, int *unknown)
{
    int il = vint(buf + off, len - off, 1, id, NULL);
    if (!il)
        return 0;
    int sl = vint(buf + off + il, len - off - (size_t)il, 0, size, unknown);
    if (!sl)
        return 0;
    *data = off + (size_t)il + (size_t)sl;
    return 1;
}

/* Whether a float element (4 or 8 bytes) holds exactly 1.0. */
static int is_one(const uint8_t *p, uint64_t size)
{
    uint64_t bits = read_uint(p, size);
    return (size == 4 && bits == 0x3F800000u) || (size == 8 && bits == 0x3FF0000000000000u);
}

int cm__mkv_tracks(const uint8_t *buf, size_t len, struct cm__mkv_track *tracks, int max)
{
    size_t off = 0;
    while (off < len) {
        uint64_t id, size;
        size_t data;
        int unknown = 0;
        if (!element(buf, len, off, &id, &data, &size, &unknown))
            return -1;
        if (id == CM__MKV_ID_SEGMENT) { /* enter */
            off = data;
            continue;
        }
        if (unknown || size > len - data)
            return -1;
        if (id != ID_TRACKS) {
            off = data + (size_t)size;
            continue;
        }
        int n = 0;
        for (size_t e = data, end = data + (size_t)size; e < end && n < max;) {
            uint64_t eid, esize;
            size_t edata;
            int eu = 0;
            if (!element(buf, end, e, &eid, &edata, &esize, &eu) || eu || esize > end - edata)
                break;
            if (eid == ID_TRACKENTRY) {
                struct cm__mkv_track t = {0};
                for (size_t c = edata, cend = edata + (size_t)esize; c < cend;) {
                    uint64_t cid, csize;
                    size_t cdata;
                    int cu = 0;
                    if (!element(buf, cend, c, &cid, &cdata, &csize, &cu) || cu ||
                        csize > cend - cdata)
                        break;
                    if (cid == ID_TRACKNUMBER && csize <= 8)
                        t.number = read_uint(buf + cdata, csize);
                    else if (cid == ID_TRACKTYPE && csize <= 8)
                        t.type = (int)read_uint(buf + cdata, csize);
                    else if (cid == ID_DEFAULTDURATION && csize <= 8)
                        t.default_ns = read_uint(buf + cdata, csize);
                    else if (cid == ID_TRACKTIMESTAMPSCALE)
                        t.scaled = !is_one(buf + cdata, csize);
                    else if (cid == ID_CODECID)
                        t.ms_compat = csize >= 15 &&
                                      memcmp(buf + cdata, "V_MS/VFW/FOURCC", 15) == 0 &&
                                      (csize == 15 || buf[cdata + 15] == 0);
                    c = cdata + (size_t)csize;
                }
                tracks[n++] = t;
            }
            e = edata + (size_t)esize;
        }
        return n;
    }
    return -1;
}

int cm__mkv_header(const uint8_t *p, size_t avail, uint64_t *id, uint64_t *size, int *unknown)
{
    size_t data;
    *unknown = 0;
    if (!element(p, avail, 0, id, &data, size, unknown))
        return 0;
    return (int)data;
}

int cm__mkv_cluster_timestamp(const uint8_t *p, size_t avail, uint64_t *ts)
{
    size_t off = 0;
    for (int i = 0; i < 2 && off < avail; i++) {
        uint64_t id, size;
        size_t data;
        int unknown = 0;
        if (!element(p, avail, off, &id, &data, &size, &unknown) || unknown || size > avail - data)
            return 0;
        if (id == CM__MKV_ID_TIMESTAMP && size <= 8) {
            *ts = read_uint(p + data, size);
            return 1;
        }
        if (id != ID_CRC32)
            return 0;
        off = data + (size_t)size;
    }
    return 0;
}
