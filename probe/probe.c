/* SPDX-License-Identifier: MIT */
/*
 * probe.c - the probe's public face: options, handles, reports, names and sentences.
 *
 * Everything here is plain bookkeeping; the work is in probe_input.c (opening the
 * input safely) and probe_measure.c (measuring it). A report is always produced, so
 * a caller has one place to read a result or a refusal from.
 */
#include "probe_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavutil/log.h>

void cm_probe_options_init(cm_probe_options *opt)
{
    memset(opt, 0, sizeof(*opt));
    opt->struct_size = sizeof(*opt);
    opt->grace_ms = 500;
    opt->max_duration_ms = 24LL * 3600 * 1000;
    opt->time_budget_ms = 10000;
    opt->max_file_bytes = 64LL << 30;
    opt->max_scan_packets = 20000000;
}

int cm_probe_new(cm_probe **out, const cm_probe_options *opt)
{
    if (!out)
        return CM_PROBE_E_INVALID;
    *out = NULL;
    cm_probe_options o;
    cm_probe_options_init(&o);
    if (opt) {
        /* Accept older, shorter option structs: copy what the caller knows of. */
        if (opt->struct_size < offsetof(cm_probe_options, clock_ms) || opt->struct_size > sizeof(o))
            return CM_PROBE_E_INVALID;
        memcpy(&o, opt, opt->struct_size);
        o.struct_size = sizeof(o);
    }
    if (o.grace_ms < 0 || o.grace_ms >= 60000 || o.max_duration_ms <= 0 || o.time_budget_ms <= 0 ||
        o.max_file_bytes <= 0 || o.max_scan_packets <= 0 || (o.full_scan != 0 && o.full_scan != 1))
        return CM_PROBE_E_INVALID;
    cm_probe *p = calloc(1, sizeof(*p));
    if (!p)
        return CM_PROBE_E_NOMEM;
    p->opt = o;
    *out = p;
    return CM_PROBE_OK;
}

void cm_probe_free(cm_probe *p)
{
    free(p);
}

int cm__fail(cm_probe_report *r, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->errmsg, sizeof(r->errmsg), fmt, ap);
    va_end(ap);
    r->error = code;
    return code;
}

void cm__format_hms(int64_t ms, char *buf, size_t len)
{
    if (ms < 0) {
        snprintf(buf, len, "-");
        return;
    }
    snprintf(buf, len, "%lld:%02lld:%02lld.%03lld", (long long)(ms / 3600000),
             (long long)(ms / 60000 % 60), (long long)(ms / 1000 % 60), (long long)(ms % 1000));
}

int64_t cm_probe_credits_for(int64_t billable_ms, int64_t grace_ms)
{
    int64_t over = billable_ms - grace_ms;
    if (over <= 0)
        return 1;
    int64_t credits = (over + 59999) / 60000;
    return credits < 1 ? 1 : credits;
}

static cm_probe_report *report_new(const char *name)
{
    cm_probe_report *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->file = strdup(name ? name : "");
    if (!r->file) {
        free(r);
        return NULL;
    }
    r->declared_ms = -1;
    r->measured_ms = -1;
    r->billable_ms = -1;
    return r;
}

void cm_probe_report_free(cm_probe_report *r)
{
    if (!r)
        return;
    free(r->streams);
    free(r->file);
    free(r);
}

/* Opens path as a local regular file, refusing everything else before libavformat
   sees a byte. The descriptor is the one we check and the one we read: no race. */
static int open_local_file(const cm_probe *p, const char *path, cm_input *in, cm_probe_report *r)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR)
            return cm__fail(r, CM_PROBE_E_NOENT, "No such file: %s.", path);
        if (e == EACCES || e == EPERM)
            return cm__fail(r, CM_PROBE_E_ACCESS, "The file %s cannot be read: %s.", path,
                            strerror(e));
        if (e == ENXIO || e == EISDIR)
            return cm__fail(r, CM_PROBE_E_NOTREG, "%s is not a regular file.", path);
        return cm__fail(r, CM_PROBE_E_ACCESS, "The file %s cannot be opened: %s.", path,
                        strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return cm__fail(r, CM_PROBE_E_ACCESS, "The file %s cannot be examined: %s.", path,
                        strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        const char *what = S_ISDIR(st.st_mode)                            ? "a directory"
                           : S_ISFIFO(st.st_mode)                         ? "a pipe"
                           : S_ISSOCK(st.st_mode)                         ? "a socket"
                           : (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) ? "a device"
                                                                          : "not a regular file";
        return cm__fail(r, CM_PROBE_E_NOTREG, "%s is %s, not a video or audio file.", path, what);
    }
    /* Reads must block normally from here on. */
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    r->file_bytes = st.st_size;
    if (st.st_size == 0) {
        close(fd);
        return cm__fail(r, CM_PROBE_E_EMPTY, "The file %s is empty (0 bytes).", path);
    }
    if (st.st_size > p->opt.max_file_bytes) {
        close(fd);
        return cm__fail(r, CM_PROBE_E_TOOBIG,
                        "The file %s is %lld bytes, larger than the limit of %lld bytes.", path,
                        (long long)st.st_size, (long long)p->opt.max_file_bytes);
    }
    in->fd = fd;
    in->size = st.st_size;
    return CM_PROBE_OK;
}

int64_t cm_probe_time_budget_ms(const cm_probe *p, int64_t file_bytes)
{
    if (!p)
        return -1;
    int64_t extra = file_bytes > 0 ? file_bytes / CM_PROBE_BUDGET_BYTES_PER_MS : 0;
    return extra > INT64_MAX / 4 - p->opt.time_budget_ms ? INT64_MAX / 4
                                                         : p->opt.time_budget_ms + extra;
}

static int run(const cm_probe *p, cm_input *in, cm_probe_report *r)
{
    in->opt = &p->opt;
    in->budget_ms = cm_probe_time_budget_ms(p, in->size);
    in->deadline_ms = cm__now_ms(&p->opt) + in->budget_ms;
    if (cm__input_open_avio(in) != 0)
        return cm__fail(r, CM_PROBE_E_NOMEM, "Out of memory.");
    cm__measure(p, in, r);
    r->bytes_read = in->bytes_read;
    return r->error;
}

int cm_probe_file(const cm_probe *p, const char *path, cm_probe_report **out)
{
    if (!out)
        return CM_PROBE_E_INVALID;
    *out = NULL;
    cm_probe_report *r = report_new(path);
    if (!r)
        return CM_PROBE_E_NOMEM;
    *out = r;
    if (!p || !path || !*path)
        return cm__fail(r, CM_PROBE_E_INVALID, "No file was given.");
    cm_input in = {.fd = -1};
    if (open_local_file(p, path, &in, r) == CM_PROBE_OK)
        run(p, &in, r);
    cm__input_close(&in);
    return r->error;
}

int cm_probe_buffer(const cm_probe *p, const void *data, size_t size, const char *name,
                    cm_probe_report **out)
{
    if (!out)
        return CM_PROBE_E_INVALID;
    *out = NULL;
    cm_probe_report *r = report_new(name ? name : "(buffer)");
    if (!r)
        return CM_PROBE_E_NOMEM;
    *out = r;
    if (!p || (!data && size))
        return cm__fail(r, CM_PROBE_E_INVALID, "No data was given.");
    r->file_bytes = (int64_t)size;
    if (size == 0)
        return cm__fail(r, CM_PROBE_E_EMPTY, "The file %s is empty (0 bytes).", r->file);
    if ((int64_t)size > p->opt.max_file_bytes)
        return cm__fail(r, CM_PROBE_E_TOOBIG, "The file %s is larger than the limit.", r->file);
    cm_input in = {.fd = -1, .mem = data, .size = (int64_t)size};
    run(p, &in, r);
    cm__input_close(&in);
    return r->error;
}

/* --- report accessors --- */
int cm_probe_report_error(const cm_probe_report *r)
{
    return r ? r->error : CM_PROBE_E_INVALID;
}
const char *cm_probe_report_errmsg(const cm_probe_report *r)
{
    return r ? r->errmsg : "";
}
const char *cm_probe_report_file(const cm_probe_report *r)
{
    return r ? r->file : "";
}
const char *cm_probe_report_format(const cm_probe_report *r)
{
    return r ? r->format : "";
}
int64_t cm_probe_report_declared_ms(const cm_probe_report *r)
{
    return r ? r->declared_ms : -1;
}
int64_t cm_probe_report_measured_ms(const cm_probe_report *r)
{
    return r ? r->measured_ms : -1;
}
int64_t cm_probe_report_billable_ms(const cm_probe_report *r)
{
    return r ? r->billable_ms : -1;
}
int64_t cm_probe_report_credits(const cm_probe_report *r)
{
    return r ? r->credits : 0;
}
int cm_probe_report_has_video(const cm_probe_report *r)
{
    return r ? r->has_video : 0;
}
enum cm_probe_method cm_probe_report_method(const cm_probe_report *r)
{
    return r ? r->method : CM_PROBE_METHOD_NONE;
}
enum cm_probe_note cm_probe_report_note(const cm_probe_report *r)
{
    return r ? r->note : CM_PROBE_NOTE_NONE;
}
int cm_probe_report_stream_count(const cm_probe_report *r)
{
    return r ? r->nb_streams : 0;
}
enum cm_probe_stream_kind cm_probe_report_stream_kind(const cm_probe_report *r, int i)
{
    return (r && i >= 0 && i < r->nb_streams) ? r->streams[i].kind : CM_PROBE_STREAM_OTHER;
}
const char *cm_probe_report_stream_codec(const cm_probe_report *r, int i)
{
    return (r && i >= 0 && i < r->nb_streams) ? r->streams[i].codec : "";
}
int64_t cm_probe_report_file_bytes(const cm_probe_report *r)
{
    return r ? r->file_bytes : 0;
}
int64_t cm_probe_report_bytes_read(const cm_probe_report *r)
{
    return r ? r->bytes_read : 0;
}

/* --- names and sentences: machine names are stable, never change one --- */
/* Generated from probe_errors.def. Each line's value must be its enumerator's, and the
 * switches are on the enum without a default: a duplicate is a duplicate case, and an
 * enumerator without a line is a -Wswitch warning (an error under -Werror). */
#define X(code, value, name, text) _Static_assert(code == value, #code " is " #value);
#include "probe_errors.def"
#undef X

const char *cm_probe_err_name(int code)
{
    switch ((enum cm_probe_error)code) {
#define X(code, value, name, text)                                                                 \
    case code:                                                                                     \
        return name;
#include "probe_errors.def"
#undef X
    }
    return "unknown_error";
}

const char *cm_probe_strerror(int code)
{
    switch ((enum cm_probe_error)code) {
#define X(code, value, name, text)                                                                 \
    case code:                                                                                     \
        return text;
#include "probe_errors.def"
#undef X
    }
    return "Unknown error.";
}

const char *cm_probe_method_name(enum cm_probe_method m)
{
    switch (m) {
    case CM_PROBE_METHOD_NONE:
        return "none";
    case CM_PROBE_METHOD_MP4_INDEX:
        return "sample_index";
    case CM_PROBE_METHOD_TAIL_PACKETS:
        return "tail_packets";
    case CM_PROBE_METHOD_PACKET_SCAN:
        return "packet_scan";
    case CM_PROBE_METHOD_STRUCTURE_WALK:
        return "structure_walk";
    }
    return "unknown";
}

const char *cm_probe_note_name(enum cm_probe_note n)
{
    switch (n) {
    case CM_PROBE_NOTE_NONE:
        return "";
    case CM_PROBE_NOTE_HEADER_LONGER:
        return "header_longer";
    case CM_PROBE_NOTE_HEADER_SHORTER:
        return "header_shorter";
    case CM_PROBE_NOTE_TRUNCATED:
        return "truncated";
    case CM_PROBE_NOTE_NO_DURATION:
        return "no_header_duration";
    }
    return "unknown";
}

const char *cm_probe_note_text(enum cm_probe_note n)
{
    switch (n) {
    case CM_PROBE_NOTE_NONE:
        return "The header agrees with the content.";
    case CM_PROBE_NOTE_HEADER_LONGER:
        return "The header claims more time than the content plays; the content was billed.";
    case CM_PROBE_NOTE_HEADER_SHORTER:
        return "The header claims less time than the content plays; the content was billed.";
    case CM_PROBE_NOTE_TRUNCATED:
        return "The file is cut off before the end its index describes; what is left was billed.";
    case CM_PROBE_NOTE_NO_DURATION:
        return "The header declares no duration (a streamed file); the content was measured.";
    }
    return "";
}

const char *cm_probe_stream_kind_name(enum cm_probe_stream_kind k)
{
    switch (k) {
    case CM_PROBE_STREAM_VIDEO:
        return "video";
    case CM_PROBE_STREAM_AUDIO:
        return "audio";
    case CM_PROBE_STREAM_COVER:
        return "cover";
    case CM_PROBE_STREAM_OTHER:
        return "other";
    }
    return "other";
}

void cm_probe_silence_libav_logs(void)
{
    av_log_set_level(AV_LOG_QUIET);
}
