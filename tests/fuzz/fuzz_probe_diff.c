/* SPDX-License-Identifier: MIT */
/*
 * fuzz_probe_diff.c - differential libFuzzer harness: the fast path against the oracle.
 *
 * Every input is probed twice through cm_probe_buffer(): with the default options (the
 * fast paths) and, when that bills, with full_scan = 1 (a demux of every packet, the
 * oracle). The harness traps when the fast path bills less than the oracle by more than
 * the tolerance, max(250 ms, 1 % of the oracle): a customer paying less than the content
 * plays is a finding as much as a crash is. (A fast path that refuses, or an oracle that
 * refuses, is not: nothing is billed short.)
 *
 * The inputs are real files mutated along their structure (LLVMFuzzerCustomMutator):
 *   MP4       box sizes (32 and 64 bit), mvhd/mdhd/tkhd/mehd durations and time scales,
 *             tfdt times, trun sample counts, data offsets, sample durations and sizes,
 *             tfhd defaults, sidx times, sizes and durations, stts deltas, elst entries,
 *             stco offsets;
 *   Matroska  element sizes (keeping their length), Cluster Timestamps, the Duration,
 *             CueTimes, the TimestampScale, block-relative timestamps, BlockDurations,
 *             DefaultDurations, block track numbers and lacing flags;
 *   AVI       chunk sizes, chunk names (idx1 becomes JUNK), idx1 entries (offset, size,
 *             the count), avih/strh frame counts, rates and lengths;
 * and, for every file, truncation (at a structure boundary or anywhere), a copy of its own
 * beginning appended (a join), and libFuzzer's own byte mutations. The cross-over
 * (LLVMFuzzerCustomCrossOver) concatenates two inputs, as `cat a b` does.
 *
 * Limits are tight so an execution costs milliseconds: a 1 s time budget and 50,000
 * packets per probe; scripts/fuzz.sh runs it with -max_len of 1 MiB. Environment:
 *   CM_FUZZ_BUDGET_MS   time budget per probe (default 1000)
 *   CM_FUZZ_VERBOSE=1   print both answers of each input on stderr
 */
#include "fuzz_probe_util.h"

#include <float.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

static cm_probe *g_fast, *g_oracle;
static int g_verbose;

#define TOL_FLOOR_MS 250

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    cm_probe_options opt;
    g_verbose = getenv("CM_FUZZ_VERBOSE") != NULL;
    g_fast = fuzz_probe_new(1000, 50000, 0, &opt);
    g_oracle = fuzz_probe_new(1000, 50000, 1, &opt);
    cm_probe_silence_libav_logs();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cm_probe_report *fast = NULL, *oracle = NULL;
    int err = cm_probe_buffer(g_fast, data, size, "fuzz-input", &fast);
    if (!fast)
        abort();
    if (err != CM_PROBE_OK) {
        if (g_verbose)
            fprintf(stderr, "fuzz_probe_diff: %zu bytes: fast %s\n", size, cm_probe_err_name(err));
        cm_probe_report_free(fast);
        return 0;
    }
    int oerr = cm_probe_buffer(g_oracle, data, size, "fuzz-input", &oracle);
    if (!oracle)
        abort();
    int64_t f = cm_probe_report_measured_ms(fast);
    int64_t o = oerr == CM_PROBE_OK ? cm_probe_report_measured_ms(oracle) : -1;
    int64_t tol = o / 100 > TOL_FLOOR_MS ? o / 100 : TOL_FLOOR_MS;
    int short_billed = oerr == CM_PROBE_OK && f < o - tol;
    if (g_verbose || short_billed)
        fprintf(stderr,
                "fuzz_probe_diff: %zu bytes, format %s: fast %" PRId64
                " ms (%s), oracle %s %" PRId64 " ms%s\n",
                size, cm_probe_report_format(fast), f,
                cm_probe_method_name(cm_probe_report_method(fast)), cm_probe_err_name(oerr), o,
                short_billed ? ": the fast path bills less than the oracle" : "");
    cm_probe_report_free(fast);
    cm_probe_report_free(oracle);
    if (short_billed)
        __builtin_trap();
    return 0;
}

/* --- the structure-aware mutator ---------------------------------------------------- */

enum kind {
    K_BE,       /* big-endian unsigned integer of width bytes */
    K_LE,       /* little-endian unsigned integer */
    K_VINT,     /* EBML size: width bytes with the length marker, value rewritten in place */
    K_FLOAT,    /* EBML float, 4 or 8 bytes, big-endian */
    K_FOURCC,   /* a RIFF chunk name */
    K_BOUNDARY, /* a structure boundary: a place to truncate */
};

typedef struct field {
    size_t off;
    uint8_t width;
    uint8_t kind;
} field;

#define MAX_FIELDS 4096
#define MAX_DEPTH 8

typedef struct fields {
    field v[MAX_FIELDS];
    size_t n;
} fields;

static void add(fields *fs, size_t off, unsigned width, enum kind kind, size_t size)
{
    if (fs->n < MAX_FIELDS && off + width <= size)
        fs->v[fs->n++] = (field){off, (uint8_t)width, (uint8_t)kind};
}

static uint64_t rd_be(const uint8_t *p, unsigned w)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < w; i++)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t rd_le(const uint8_t *p, unsigned w)
{
    uint64_t v = 0;
    for (unsigned i = w; i > 0; i--)
        v = (v << 8) | p[i - 1];
    return v;
}

static uint32_t rng_next(uint32_t *s)
{
    /* xorshift32: the seed comes from libFuzzer, so a mutation is reproducible. */
    uint32_t x = *s ? *s : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static size_t rnd(uint32_t *s, size_t n)
{
    return n ? rng_next(s) % n : 0;
}

/* MP4 ------------------------------------------------------------------------------ */

static int is_container(const uint8_t *t)
{
    static const char *const names[] = {"moov", "trak", "mdia", "minf", "stbl", "moof",
                                        "traf", "mvex", "edts", "dinf", "mfra"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (memcmp(t, names[i], 4) == 0)
            return 1;
    return 0;
}

/* The fields of a leaf box of type whose body (after the header) is d[body..end). */
static void mp4_full_box_fields(fields *fs, const uint8_t *d, const uint8_t *type, size_t body,
                                size_t end)
{
    if (body + 8 > end)
        return;
    int v1 = d[body] == 1;
    uint32_t flags = (uint32_t)rd_be(d + body + 1, 3);
    if (!memcmp(type, "mvhd", 4) || !memcmp(type, "mdhd", 4)) {
        add(fs, body + (v1 ? 20 : 12), 4, K_BE, end);          /* timescale */
        add(fs, body + (v1 ? 24 : 16), v1 ? 8 : 4, K_BE, end); /* duration */
    } else if (!memcmp(type, "tkhd", 4)) {
        add(fs, body + (v1 ? 28 : 20), v1 ? 8 : 4, K_BE, end); /* duration */
    } else if (!memcmp(type, "mehd", 4) || !memcmp(type, "tfdt", 4)) {
        add(fs, body + 4, v1 ? 8 : 4, K_BE, end);
    } else if (!memcmp(type, "tfhd", 4)) {
        size_t p = body + 8;
        if (flags & 0x1)
            add(fs, p, 8, K_BE, end), p += 8; /* base data offset */
        if (flags & 0x2)
            p += 4;
        if (flags & 0x8)
            add(fs, p, 4, K_BE, end), p += 4; /* default sample duration */
        if (flags & 0x10)
            add(fs, p, 4, K_BE, end); /* default sample size */
    } else if (!memcmp(type, "trun", 4)) {
        add(fs, body + 4, 4, K_BE, end); /* sample count */
        uint64_t count = rd_be(d + body + 4, 4);
        size_t p = body + 8;
        if (flags & 0x1)
            add(fs, p, 4, K_BE, end), p += 4; /* data offset */
        if (flags & 0x4)
            p += 4;
        unsigned per = 0;
        for (uint32_t bit = 0x100; bit <= 0x800; bit <<= 1)
            per += (flags & bit) ? 4 : 0;
        for (uint64_t i = 0; i < count && i < 64 && per && p + per <= end; i++, p += per) {
            size_t q = p;
            if (flags & 0x100)
                add(fs, q, 4, K_BE, end), q += 4; /* sample duration */
            if (flags & 0x200)
                add(fs, q, 4, K_BE, end); /* sample size */
        }
    } else if (!memcmp(type, "sidx", 4)) {
        size_t p = body + 12;
        add(fs, p, v1 ? 8 : 4, K_BE, end); /* earliest presentation time */
        p += v1 ? 16 : 8;
        if (p + 4 > end)
            return;
        size_t count = (size_t)rd_be(d + p + 2, 2);
        add(fs, p + 2, 2, K_BE, end); /* reference count */
        p += 4;
        for (size_t i = 0; i < count && i < 64 && p + 12 <= end; i++, p += 12) {
            add(fs, p, 4, K_BE, end);     /* type and referenced size */
            add(fs, p + 4, 4, K_BE, end); /* subsegment duration */
        }
    } else if (!memcmp(type, "stts", 4) || !memcmp(type, "elst", 4) || !memcmp(type, "stco", 4)) {
        size_t stride = !memcmp(type, "stts", 4) ? 8 : !memcmp(type, "stco", 4) ? 4 : v1 ? 20 : 12;
        unsigned w = !memcmp(type, "elst", 4) && v1 ? 8 : 4;
        add(fs, body + 4, 4, K_BE, end); /* entry count */
        size_t p = body + 8;
        for (int i = 0; i < 32 && p + stride <= end; i++, p += stride) {
            add(fs, p, w, K_BE, end);
            if (stride > 4)
                add(fs, p + w, w, K_BE, end);
        }
    }
}

static void mp4_walk(fields *fs, const uint8_t *d, size_t size, size_t pos, size_t end, int depth)
{
    while (pos + 8 <= end && fs->n < MAX_FIELDS) {
        uint64_t box = rd_be(d + pos, 4);
        size_t hdr = 8;
        add(fs, pos, 0, K_BOUNDARY, size);
        if (box == 1) {
            if (pos + 16 > end)
                return;
            box = rd_be(d + pos + 8, 8);
            add(fs, pos + 8, 8, K_BE, size);
            hdr = 16;
        } else {
            add(fs, pos, 4, K_BE, size);
        }
        if (box == 0)
            box = end - pos;
        if (box < hdr || box > end - pos)
            return;
        const uint8_t *type = d + pos + 4;
        if (is_container(type) && depth < MAX_DEPTH)
            mp4_walk(fs, d, size, pos + hdr, pos + (size_t)box, depth + 1);
        else
            mp4_full_box_fields(fs, d, type, pos + hdr, pos + (size_t)box);
        pos += (size_t)box;
    }
}

static int looks_mp4(const uint8_t *d, size_t size)
{
    static const char *const top[] = {"ftyp", "moov", "moof", "styp", "sidx", "free", "mdat"};
    if (size < 8)
        return 0;
    for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++)
        if (!memcmp(d + 4, top[i], 4))
            return 1;
    return 0;
}

/* Matroska ---------------------------------------------------------------------------- */

/* Reads an EBML vint at p (< end): its length, and its value (marker kept for IDs). */
static unsigned ebml_vint(const uint8_t *d, size_t p, size_t end, int keep_marker, uint64_t *v)
{
    if (p >= end || d[p] == 0)
        return 0;
    unsigned len = 1;
    while (!(d[p] & (0x80u >> (len - 1))))
        len++;
    if (p + len > end)
        return 0;
    uint64_t x = keep_marker ? d[p] : (d[p] & (0xFFu >> len));
    for (unsigned i = 1; i < len; i++)
        x = (x << 8) | d[p + i];
    *v = x;
    return len;
}

static int ebml_master(uint64_t id)
{
    switch (id) {
    case 0x1A45DFA3:
    case 0x18538067:
    case 0x1F43B675:
    case 0xA0:
    case 0x1654AE6B:
    case 0xAE:
    case 0x1549A966:
    case 0x1C53BB6B:
    case 0xBB:
    case 0xB7:
    case 0x114D9B74:
    case 0x4DBB:
        return 1;
    default:
        return 0;
    }
}

static void mkv_walk(fields *fs, const uint8_t *d, size_t size, size_t pos, size_t end, int depth)
{
    while (pos < end && fs->n < MAX_FIELDS) {
        uint64_t id, len;
        unsigned il = ebml_vint(d, pos, end, 1, &id);
        if (!il)
            return;
        unsigned sl = ebml_vint(d, pos + il, end, 0, &len);
        if (!sl)
            return;
        add(fs, pos, 0, K_BOUNDARY, size);
        add(fs, pos + il, sl, K_VINT, size);
        size_t data = pos + il + sl;
        int unknown = len == (((uint64_t)1) << (7 * sl)) - 1;
        size_t stop = unknown || len > end - data ? end : data + (size_t)len;
        if (ebml_master(id) && depth < MAX_DEPTH) {
            mkv_walk(fs, d, size, data, stop, depth + 1);
        } else if ((id == 0xE7 || id == 0xB3 || id == 0x2AD7B1 || id == 0x9B || id == 0x23E383) &&
                   len >= 1 && len <= 8) {
            /* Timestamp, CueTime, TimestampScale, BlockDuration, DefaultDuration */
            add(fs, data, (unsigned)len, K_BE, size);
        } else if (id == 0x4489 && (len == 4 || len == 8)) {
            add(fs, data, (unsigned)len, K_FLOAT, size); /* Duration */
        } else if (id == 0xA3 || id == 0xA1) {
            uint64_t track;
            unsigned tl = ebml_vint(d, data, stop, 0, &track);
            if (tl) {
                add(fs, data, tl, K_BE, size);         /* track number (marker and all) */
                add(fs, data + tl, 2, K_BE, size);     /* block-relative timestamp */
                add(fs, data + tl + 2, 1, K_BE, size); /* flags: lacing */
                add(fs, data + tl + 3, 1, K_BE, size); /* lace count, when laced */
            }
        }
        if (unknown && !ebml_master(id))
            return;
        pos = stop;
    }
}

/* AVI ----------------------------------------------------------------------------------- */

/* limit: how many chunks of this list to walk (movi holds thousands; idx1 comes after). */
static void avi_walk(fields *fs, const uint8_t *d, size_t size, size_t pos, size_t end, int depth,
                     int limit)
{
    for (int n = 0; pos + 8 <= end && fs->n < MAX_FIELDS && n < limit; n++) {
        size_t len = (size_t)rd_le(d + pos + 4, 4);
        add(fs, pos, 0, K_BOUNDARY, size);
        add(fs, pos, 4, K_FOURCC, size);
        add(fs, pos + 4, 4, K_LE, size);
        size_t body = pos + 8;
        size_t stop = len > end - body ? end : body + len;
        if (!memcmp(d + pos, "LIST", 4) && depth < MAX_DEPTH) {
            int movi = body + 4 <= end && !memcmp(d + body, "movi", 4);
            avi_walk(fs, d, size, body + 4, stop, depth + 1, movi ? 256 : 1 << 30);
        } else if (!memcmp(d + pos, "idx1", 4)) {
            for (size_t p = body; p + 16 <= stop && fs->n < MAX_FIELDS - 3; p += 16 * 7) {
                add(fs, p + 8, 4, K_LE, size);  /* offset */
                add(fs, p + 12, 4, K_LE, size); /* size */
                add(fs, p, 0, K_BOUNDARY, size);
            }
        } else if (!memcmp(d + pos, "avih", 4)) {
            add(fs, body + 16, 4, K_LE, size); /* total frames */
        } else if (!memcmp(d + pos, "strh", 4)) {
            for (size_t o = 20; o <= 32; o += 4)
                add(fs, body + o, 4, K_LE, size); /* scale, rate, start, length */
        }
        pos = stop + (stop & 1);
    }
}

static void collect(fields *fs, const uint8_t *d, size_t size)
{
    fs->n = 0;
    if (size >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "AVI ", 4)) {
        add(fs, 4, 4, K_LE, size);
        avi_walk(fs, d, size, 12, size, 0, 1 << 30);
    } else if (size >= 4 && rd_be(d, 4) == 0x1A45DFA3) {
        mkv_walk(fs, d, size, 0, size, 0);
    } else if (looks_mp4(d, size)) {
        mp4_walk(fs, d, size, 0, size, 0);
    }
}

/* A new value for an integer field: the edits a customer who wants to pay less tries. */
static uint64_t new_value(uint32_t *s, uint64_t v, uint64_t max, const fields *fs, const uint8_t *d,
                          const field *f)
{
    switch (rnd(s, 10)) {
    case 0:
        return 0;
    case 1:
        return 1;
    case 2:
        return v / 2;
    case 3:
        return v * 2;
    case 4:
        return v - 1;
    case 5:
        return v + 1;
    case 6:
        return v + rnd(s, 2001) - 1000;
    case 7:
        return max;
    case 8: { /* another field of the same shape: a value that is plausible here */
        const field *o = &fs->v[rnd(s, fs->n)];
        if (o->kind == f->kind && o->width == f->width)
            return f->kind == K_LE ? rd_le(d + o->off, o->width) : rd_be(d + o->off, o->width);
        return v / 4;
    }
    default:
        return ((uint64_t)rng_next(s) << 32) | rng_next(s);
    }
}

static void mutate_field(uint32_t *s, uint8_t *d, const fields *fs, const field *f)
{
    unsigned w = f->width;
    uint64_t max = w >= 8 ? UINT64_MAX : (((uint64_t)1) << (8 * w)) - 1;
    if (f->kind == K_FOURCC) {
        static const char *const names[] = {"JUNK", "idx1", "LIST", "movi", "00dc", "01wb"};
        memcpy(d + f->off, names[rnd(s, 6)], 4);
    } else if (f->kind == K_FLOAT) {
        double x;
        if (w == 8) {
            uint64_t bits = rd_be(d + f->off, 8);
            memcpy(&x, &bits, 8);
        } else {
            uint32_t bits = (uint32_t)rd_be(d + f->off, 4);
            float y;
            memcpy(&y, &bits, 4);
            x = y;
        }
        static const double factors[] = {0.0, 0.01, 0.5, 2.0, 100.0};
        x *= factors[rnd(s, 5)];
        uint64_t bits = 0;
        if (w == 8) {
            memcpy(&bits, &x, 8);
        } else {
            /* a double out of float's range does not convert: clamp it first */
            float y = x > FLT_MAX ? FLT_MAX : x < -FLT_MAX ? -FLT_MAX : (float)x;
            uint32_t b32;
            memcpy(&b32, &y, 4);
            bits = b32;
        }
        for (unsigned i = 0; i < w; i++)
            d[f->off + i] = (uint8_t)(bits >> (8 * (w - 1 - i)));
    } else if (f->kind == K_VINT) {
        uint64_t cur;
        if (!ebml_vint(d, f->off, f->off + w, 0, &cur))
            return;
        uint64_t vmax = (((uint64_t)1) << (7 * w)) - 1; /* all ones: unknown size */
        uint64_t v = new_value(s, cur, vmax, fs, d, f) & vmax;
        v |= ((uint64_t)1) << (7 * w); /* the length marker */
        for (unsigned i = 0; i < w; i++)
            d[f->off + i] = (uint8_t)(v >> (8 * (w - 1 - i)));
    } else if (f->kind == K_BE || f->kind == K_LE) {
        uint64_t cur = f->kind == K_LE ? rd_le(d + f->off, w) : rd_be(d + f->off, w);
        uint64_t v = new_value(s, cur, max, fs, d, f) & max;
        for (unsigned i = 0; i < w; i++) {
            unsigned shift = 8 * (f->kind == K_LE ? i : w - 1 - i);
            d[f->off + i] = (uint8_t)(v >> shift);
        }
    }
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    static fields fs; /* libFuzzer mutates on one thread */
    uint32_t s = seed;
    size_t op = rnd(&s, 20);
    if (size == 0 || op >= 17)
        return LLVMFuzzerMutate(data, size, max_size);
    collect(&fs, data, size);
    if (op < 12) { /* one structural field, sometimes two */
        size_t values = 0;
        for (size_t i = 0; i < fs.n; i++)
            values += fs.v[i].kind != K_BOUNDARY;
        if (values == 0)
            return LLVMFuzzerMutate(data, size, max_size);
        int edits = 1 + (rnd(&s, 4) == 0);
        for (int e = 0; e < edits;) {
            const field *f = &fs.v[rnd(&s, fs.n)];
            if (f->kind == K_BOUNDARY)
                continue;
            mutate_field(&s, data, &fs, f);
            e++;
        }
        return size;
    }
    if (op < 15) { /* truncate: at a structure boundary, or anywhere */
        size_t cut = rnd(&s, size);
        if (fs.n && rnd(&s, 2) == 0) {
            const field *f = &fs.v[rnd(&s, fs.n)];
            if (f->kind == K_BOUNDARY && f->off > 0)
                cut = f->off;
        }
        return cut ? cut : size;
    }
    /* append a copy of its own beginning: a recording joined to itself with cat */
    size_t room = max_size > size ? max_size - size : 0;
    size_t n = size < room ? size : room;
    if (n == 0)
        return LLVMFuzzerMutate(data, size, max_size);
    if (rnd(&s, 2))
        n = 1 + rnd(&s, n);
    memmove(data + size, data, n);
    return size + n;
}

/* Cross-over: two inputs concatenated (a prefix of the first, then the second from a
   point, most often both whole), as `cat a b` joins two recordings. */
size_t LLVMFuzzerCustomCrossOver(const uint8_t *d1, size_t s1, const uint8_t *d2, size_t s2,
                                 uint8_t *out, size_t max_out, unsigned int seed);
size_t LLVMFuzzerCustomCrossOver(const uint8_t *d1, size_t s1, const uint8_t *d2, size_t s2,
                                 uint8_t *out, size_t max_out, unsigned int seed)
{
    uint32_t s = seed;
    size_t a = rnd(&s, 3) ? s1 : rnd(&s, s1 + 1);
    size_t b = rnd(&s, 3) ? 0 : rnd(&s, s2 + 1);
    if (a > max_out)
        a = max_out;
    size_t n = s2 - b;
    if (n > max_out - a)
        n = max_out - a;
    memcpy(out, d1, a);
    memcpy(out + a, d2 + b, n);
    return a + n;
}
