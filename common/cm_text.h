/* SPDX-License-Identifier: MIT */
/*
 * cm_text.h: the one text helper of creditmeter (internal, not installed).
 *
 * Strict UTF-8 validation (RFC 3629: no overlong forms, no surrogates, nothing above
 * U+10FFFF, never the bytes 0xC0, 0xC1 or 0xF5-0xFF, no truncated sequence) and JSON
 * string escaping that always produces valid JSON. The probe, the ledger and both CLIs
 * use these and no copy of their own. Names are cm__ internals: the shared libraries
 * keep them hidden (version scripts), the installed archives localize them.
 */
#ifndef CM_TEXT_H
#define CM_TEXT_H

#include <stddef.h>
#include <stdio.h>

/* Length (1 to 4) of the well-formed UTF-8 sequence at the start of the n bytes at p,
 * or 0 when those bytes do not start one (a stray continuation byte, 0xC0, 0xC1,
 * 0xF5-0xFF, an overlong form, a surrogate, a code point above U+10FFFF, or a sequence
 * cut short by the end of the n bytes or by a byte that is not a continuation byte).
 * n is 0: returns 0. When cp is not NULL and the result is nonzero, *cp is the code
 * point. */
int cm__utf8_seq(const unsigned char *p, size_t n, unsigned *cp);

/* Nonzero when the NUL-terminated s (not NULL) is well-formed UTF-8 (see
 * cm__utf8_seq). */
int cm__utf8_valid(const char *s);

/* Nonzero when s (not NULL) is well-formed UTF-8 that people can read safely as one
 * line of text: none of the C0 controls (newline, tab, ESC ...), DEL, the C1 controls
 * (U+0080..U+009F), the line and paragraph separators U+2028/U+2029, and the
 * bidirectional embeddings, overrides and isolates (U+202A..U+202E, U+2066..U+2069),
 * which could forge lines or reorder what follows in output. The ledger's rule for ids,
 * references, tiers, reasons and notes. */
int cm__text_plain(const char *s);

/* Writes s as a JSON string, with its quotes, to f: '"' and '\\' escaped, the control
 * characters (C0, newline included, and DEL) as \u00XX, each byte that does not start
 * a well-formed UTF-8 sequence as \ufffd (U+FFFD), so the output is valid JSON for any
 * bytes. s NULL writes null. Returns 0, or -1 when writing to f failed. */
int cm__json_escape(FILE *f, const char *s);

/* The same into buf (size len, len > 0): always NUL-terminated. Returns the length the
 * complete output has (without the NUL), as snprintf: a result >= len means buf holds
 * a truncated copy, cut on an escape boundary (never inside \uXXXX or a character). */
size_t cm__json_escape_buf(char *buf, size_t len, const char *s);

#endif
