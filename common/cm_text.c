/* SPDX-License-Identifier: MIT */
/* cm_text.c: strict UTF-8 and JSON string escaping, see cm_text.h. */
#include "cm_text.h"

#include <string.h>

int cm__utf8_seq(const unsigned char *p, size_t n, unsigned *cp)
{
    if (n == 0)
        return 0;
    unsigned c = p[0];
    int len;
    unsigned v, min;
    if (c < 0x80) {
        if (cp)
            *cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        len = 2, v = c & 0x1fu, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, v = c & 0x0fu, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, v = c & 0x07u, min = 0x10000;
    } else {
        return 0; /* a continuation byte, 0xC0, 0xC1 or 0xF5-0xFF */
    }
    if ((size_t)len > n)
        return 0;
    for (int i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3fu);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0; /* overlong, beyond Unicode, or a surrogate */
    if (cp)
        *cp = v;
    return len;
}

int cm__utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n) {
        int k = cm__utf8_seq(p, n, NULL);
        if (!k)
            return 0;
        p += k;
        n -= (size_t)k;
    }
    return 1;
}

int cm__text_plain(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n) {
        unsigned cp;
        int k = cm__utf8_seq(p, n, &cp);
        if (!k)
            return 0;
        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x2028 && cp <= 0x202e) ||
            (cp >= 0x2066 && cp <= 0x2069))
            return 0;
        p += k;
        n -= (size_t)k;
    }
    return 1;
}

/* The escaped form of the character at p (of n bytes left): its bytes in out (at most
 * 6), their count in *olen; returns how many input bytes it consumed. */
static size_t escape_one(const unsigned char *p, size_t n, char out[8], size_t *olen)
{
    static const char hex[] = "0123456789abcdef";
    unsigned c = p[0];
    if (c == '"' || c == '\\') {
        out[0] = '\\', out[1] = (char)c, *olen = 2;
        return 1;
    }
    if (c < 0x20 || c == 0x7f) {
        memcpy(out, "\\u00", 4);
        out[4] = hex[c >> 4], out[5] = hex[c & 15], *olen = 6;
        return 1;
    }
    int k = cm__utf8_seq(p, n, NULL);
    if (!k) {
        memcpy(out, "\\ufffd", 6), *olen = 6;
        return 1;
    }
    memcpy(out, p, (size_t)k), *olen = (size_t)k;
    return (size_t)k;
}

int cm__json_escape(FILE *f, const char *s)
{
    if (!s)
        return fputs("null", f) < 0 ? -1 : 0;
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    int rc = fputc('"', f) == EOF ? -1 : 0;
    while (n) {
        char out[8];
        size_t olen;
        size_t used = escape_one(p, n, out, &olen);
        if (fwrite(out, 1, olen, f) != olen)
            rc = -1;
        p += used;
        n -= used;
    }
    if (fputc('"', f) == EOF)
        rc = -1;
    return rc;
}

size_t cm__json_escape_buf(char *buf, size_t len, const char *s)
{
    size_t total = 0, at = 0;
    int full = 0;
#define CM__PUT(str, k)                                                                            \
    do {                                                                                           \
        if (!full && at + (k) < len) {                                                             \
            memcpy(buf + at, (str), (k));                                                          \
            at += (k);                                                                             \
        } else {                                                                                   \
            full = 1;                                                                              \
        }                                                                                          \
        total += (k);                                                                              \
    } while (0)
    if (!s) {
        CM__PUT("null", 4);
    } else {
        const unsigned char *p = (const unsigned char *)s;
        size_t n = strlen(s);
        CM__PUT("\"", 1);
        while (n) {
            char out[8];
            size_t olen;
            size_t used = escape_one(p, n, out, &olen);
            CM__PUT(out, olen);
            p += used;
            n -= used;
        }
        CM__PUT("\"", 1);
    }
#undef CM__PUT
    buf[at] = '\0';
    return total;
}
