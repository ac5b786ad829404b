/* SPDX-License-Identifier: MIT */
/*
 * probe_input.c - the only way bytes reach libavformat.
 *
 * The probe opens the file itself (see open_local_file in probe.c) and hands
 * libavformat an AVIOContext whose callbacks read that one descriptor, or a memory
 * buffer. libavformat is never given a URL to open, so no protocol, playlist or
 * reference inside a file can make it read anything else. Every read checks the
 * deadline; the count of bytes read is what the benchmarks report.
 */
#include "probe_internal.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/error.h>
#include <libavutil/mem.h>

#define CM_AVIO_BUFFER 65536

int64_t cm__now_ms(const cm_probe_options *opt)
{
    if (opt && opt->clock_ms)
        return opt->clock_ms(opt->clock_user);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cm__input_expired(cm_input *in)
{
    if (!in->timed_out && cm__now_ms(in->opt) > in->deadline_ms)
        in->timed_out = 1;
    return in->timed_out;
}

int64_t cm__input_pread(cm_input *in, uint8_t *buf, int64_t len, int64_t off)
{
    if (cm__input_expired(in))
        return -1;
    if (off < 0 || off >= in->size)
        return 0;
    if (len > in->size - off)
        len = in->size - off;
    if (in->mem) {
        memcpy(buf, in->mem + off, (size_t)len);
    } else {
        int64_t done = 0;
        while (done < len) {
            ssize_t got = pread(in->fd, buf + done, (size_t)(len - done), (off_t)(off + done));
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0)
                break;
            done += got;
        }
        len = done;
    }
    in->bytes_read += len;
    return len;
}

static int read_cb(void *opaque, uint8_t *buf, int len)
{
    cm_input *in = opaque;
    if (cm__input_expired(in))
        return AVERROR_EXIT;
    if (in->pos >= in->size)
        return AVERROR_EOF;
    int64_t left = in->size - in->pos;
    size_t n = (size_t)(len < left ? len : left);
    if (in->mem) {
        memcpy(buf, in->mem + in->pos, n);
    } else {
        ssize_t got;
        do {
            got = pread(in->fd, buf, n, (off_t)in->pos);
        } while (got < 0 && errno == EINTR);
        if (got < 0)
            return AVERROR(errno);
        if (got == 0)
            return AVERROR_EOF; /* the file shrank under us */
        n = (size_t)got;
    }
    in->pos += (int64_t)n;
    in->bytes_read += (int64_t)n;
    return (int)n;
}

static int64_t seek_cb(void *opaque, int64_t offset, int whence)
{
    cm_input *in = opaque;
    int64_t to;
    switch (whence & ~AVSEEK_FORCE) {
    case AVSEEK_SIZE:
        return in->size;
    case SEEK_SET:
        to = offset;
        break;
    case SEEK_CUR:
        to = in->pos + offset;
        break;
    case SEEK_END:
        to = in->size + offset;
        break;
    default:
        return AVERROR(EINVAL);
    }
    if (to < 0)
        return AVERROR(EINVAL);
    in->pos = to;
    return to;
}

int cm__input_open_avio(cm_input *in)
{
    unsigned char *buf = av_malloc(CM_AVIO_BUFFER);
    if (!buf)
        return CM_PROBE_E_NOMEM;
    in->avio = avio_alloc_context(buf, CM_AVIO_BUFFER, 0, in, read_cb, NULL, seek_cb);
    if (!in->avio) {
        av_free(buf);
        return CM_PROBE_E_NOMEM;
    }
    in->avio->seekable = AVIO_SEEKABLE_NORMAL;
    return 0;
}

void cm__input_close(cm_input *in)
{
    if (in->avio) {
        av_freep(&in->avio->buffer);
        avio_context_free(&in->avio);
    }
    if (in->fd >= 0) {
        close(in->fd);
        in->fd = -1;
    }
}
