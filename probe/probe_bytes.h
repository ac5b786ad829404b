/* SPDX-License-Identifier: MIT */
/*
 * probe_bytes.h - reading integers out of bytes the file gave us (internal).
 *
 * Every reader takes the pointer the caller has already checked the length of; they
 * never look past the bytes they name.
 */
#ifndef CM_PROBE_BYTES_H
#define CM_PROBE_BYTES_H

#include <stdint.h>

static inline uint32_t cm__rb16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static inline uint32_t cm__rb24(const uint8_t *p)
{
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static inline uint32_t cm__rb32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t cm__rb64(const uint8_t *p)
{
    return (uint64_t)cm__rb32(p) << 32 | cm__rb32(p + 4);
}

static inline uint32_t cm__rl16(const uint8_t *p)
{
    return (uint32_t)p[1] << 8 | p[0];
}

static inline uint32_t cm__rl32(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* A four-character code as it is written in the file, for comparisons. */
#define CM__FOURCC(a, b, c, d)                                                                     \
    ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

#endif
