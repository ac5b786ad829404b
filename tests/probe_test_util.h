/* SPDX-License-Identifier: MIT */
/*
 * probe_test_util.h - helpers for the probe's tests: sample paths, one-call probing,
 * copying and patching fixture files in the test's temp directory.
 */
#ifndef PROBE_TEST_UTIL_H
#define PROBE_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cm_probe.h"

static inline const char *sample(const char *name)
{
    static char buf[4][1024];
    static int slot;
    slot = (slot + 1) % 4;
    snprintf(buf[slot], sizeof(buf[slot]), "%s/%s", CM_SAMPLES_DIR, name);
    return buf[slot];
}

/* A path in the test's temp dir, unique to this process. */
static inline const char *tmp_path(const char *name)
{
    static char buf[4][1024];
    static int slot;
    slot = (slot + 1) % 4;
    snprintf(buf[slot], sizeof(buf[slot]), "%s/%d-%s", CM_TEST_TMP, (int)getpid(), name);
    return buf[slot];
}

/* Probes path with the default options (or opt) and returns the report. */
static inline cm_probe_report *probe_with(const char *path, const cm_probe_options *opt)
{
    cm_probe *p = NULL;
    assert_int_equal(cm_probe_new(&p, opt), CM_PROBE_OK);
    cm_probe_report *r = NULL;
    int err = cm_probe_file(p, path, &r);
    assert_non_null(r);
    assert_int_equal(err, cm_probe_report_error(r));
    cm_probe_free(p);
    return r;
}

static inline cm_probe_report *probe(const char *path)
{
    return probe_with(path, NULL);
}

/* Credits of a file that must be billed; fails the test when it is refused. */
static inline int64_t credits_of(const char *path)
{
    cm_probe_report *r = probe(path);
    if (cm_probe_report_error(r) != CM_PROBE_OK)
        fail_msg("%s refused: %s", path, cm_probe_report_errmsg(r));
    int64_t c = cm_probe_report_credits(r);
    cm_probe_report_free(r);
    return c;
}

static inline uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static inline void write_all(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16),
    p[3] = (uint8_t)(v >> 24);
}

/* Writes a copy of src, with edit applied to its bytes (which it may grow with realloc),
   to the temp file name; returns its path (tmp_path's buffer). */
static inline const char *edited(const char *src, const char *name,
                                 void (*edit)(uint8_t **buf, size_t *len))
{
    size_t len;
    uint8_t *buf = read_all(src, &len);
    edit(&buf, &len);
    const char *out = tmp_path(name);
    write_all(out, buf, len);
    free(buf);
    return out;
}

/* Runs a shell command; returns its exit status. */
static inline int run_cmd(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return st == -1 ? -1 : WEXITSTATUS(st);
}

#endif
