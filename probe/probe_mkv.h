/* SPDX-License-Identifier: MIT */
/*
 * probe_mkv.h - Matroska clusters read straight from bytes (internal).
 *
 * libavformat's Matroska demuxer cannot resume after a byte seek: it goes back to the
 * last position it parsed and reads on from there, which turns "read the end" into
 * "read everything". The probe therefore reads clusters itself (probe_mkv_walk.c walks
 * every one, header by header; these helpers parse what it reads): from a
 * Cluster boundary cm__mkv_scan walks Cluster, Timestamp, SimpleBlock and BlockGroup elements
 * and reports every block's track, timestamp (cluster + relative, in the track's
 * TimestampScale ticks, which are libavformat's stream time base for Matroska), frame
 * count (lacing) and BlockDuration. Nothing is decoded; every length is checked
 * against the buffer.
 */
#ifndef CM_PROBE_MKV_H
#define CM_PROBE_MKV_H

#include <stddef.h>
#include <stdint.h>

/* Element IDs (with their marker bits) that both the Cluster reader and the walk use. */
#define CM__MKV_ID_EBML 0x1A45DFA3u
#define CM__MKV_ID_SEGMENT 0x18538067u
#define CM__MKV_ID_CLUSTER 0x1F43B675u
#define CM__MKV_ID_TIMESTAMP 0xE7u
#define CM__MKV_ID_SIMPLEBLOCK 0xA3u
#define CM__MKV_ID_BLOCKGROUP 0xA0u
#define CM__MKV_ID_BLOCK 0xA1u
#define CM__MKV_ID_BLOCKDURATION 0x9Bu

/* duration is the BlockDuration in ticks, or -1 when the block has none. */
typedef void (*cm_mkv_block_fn)(void *ctx, uint64_t track, int64_t ts, int frames,
                                int64_t duration);

/* Nonzero when p (avail bytes) starts a Cluster: its ID, a size (known or unknown),
   and a Timestamp or CRC-32 element first. */
int cm__mkv_is_cluster(const uint8_t *p, int64_t avail);

/* Walks the clusters in buf[0..len), which starts at a Cluster; stops at the end of
   the buffer, at an element it cannot read, or after max_blocks blocks. Returns the
   number of blocks reported. */
int cm__mkv_scan(const uint8_t *buf, size_t len, int max_blocks, cm_mkv_block_fn fn, void *ctx);

/* One TrackEntry. */
struct cm__mkv_track {
    uint64_t number;     /* TrackNumber (what blocks name) */
    int type;            /* TrackType: 1 video, 2 audio, ... */
    uint64_t default_ns; /* DefaultDuration in ns, 0 when absent */
    int scaled;          /* a TrackTimestampScale other than 1.0 */
    int ms_compat;       /* CodecID V_MS/VFW/FOURCC: libavformat stamps decode times */
};

/* The Tracks of a Matroska file, read from buf (the file's first bytes): every
   TrackEntry in order. Returns how many were stored (at most max), or -1 when no Tracks
   element is in buf. */
int cm__mkv_tracks(const uint8_t *buf, size_t len, struct cm__mkv_track *tracks, int max);

/* A Block or SimpleBlock body (size bytes at p, or its first bytes): track number, int16
   timestamp relative to the Cluster, and the frame count (lace count + 1 for laced
   blocks, else 1). Returns 0 when size does not hold them. */
int cm__mkv_block_header(const uint8_t *p, size_t size, uint64_t *track, int16_t *rel, int *frames);

/* The longest element header: a 4-byte ID and an 8-byte size. */
#define CM__MKV_HEADER_MAX 12

/* One element header at p: its ID (marker kept), its data size and whether the size is
   "unknown" (all ones). Returns the header's length, or 0 when it cannot be read from
   avail bytes. */
int cm__mkv_header(const uint8_t *p, size_t avail, uint64_t *id, uint64_t *size, int *unknown);

/* The Timestamp of a Cluster whose payload starts at p (the Timestamp element first, or
   after a CRC-32). Returns 1 and stores it, or 0 when there is none there. */
int cm__mkv_cluster_timestamp(const uint8_t *p, size_t avail, uint64_t *ts);

#endif
