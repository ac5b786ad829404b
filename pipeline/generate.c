/* SPDX-License-Identifier: MIT */
/*
 * generate.c - synthesise duration_ms of video and a tone into MP4, no input file.
 *
 * This is the "text-to-video" stand-in of the reference host: the output's length is
 * what a by-output job is billed on. Video is 320x180 at 25 fps (a moving gradient
 * with a sweeping bar); audio is a 440 Hz sine, mono, 48 kHz. Exactly
 * ceil(duration_ms * 25 / 1000) frames and duration_ms * 48 samples are produced.
 */
#include "cmh_media.h"
#include "cmh_sink.h"

#include <libavutil/channel_layout.h>
#include <libavutil/frame.h>
#include <math.h>

#define GEN_W 320
#define GEN_H 180
#define GEN_FPS 25
#define GEN_RATE 48000
#define GEN_CHUNK 1024

static void paint(AVFrame *f, int64_t n)
{
    int bar = (int)((n * 4) % GEN_W);
    for (int y = 0; y < GEN_H; y++) {
        uint8_t *row = f->data[0] + (ptrdiff_t)y * f->linesize[0];
        for (int x = 0; x < GEN_W; x++)
            row[x] = (x >= bar && x < bar + 16) ? 235 : (uint8_t)(16 + ((x + y + n * 2) & 127));
    }
    for (int y = 0; y < GEN_H / 2; y++) {
        uint8_t *u = f->data[1] + (ptrdiff_t)y * f->linesize[1];
        uint8_t *v = f->data[2] + (ptrdiff_t)y * f->linesize[2];
        for (int x = 0; x < GEN_W / 2; x++) {
            u[x] = (uint8_t)(64 + ((x + n) & 127));
            v[x] = (uint8_t)(64 + ((y * 2 + n) & 127));
        }
    }
}

static void tone(AVFrame *f, int64_t first_sample)
{
    float *s = (float *)f->data[0];
    for (int i = 0; i < f->nb_samples; i++)
        s[i] = 0.2f * (float)sin(2.0 * M_PI * 440.0 * (double)(first_sample + i) / GEN_RATE);
}

static void report(const cmh_control *ctl, int *last, int percent)
{
    if (percent > *last && ctl && ctl->progress) {
        *last = percent;
        ctl->progress(ctl->ud, percent);
    }
}

int cmh_generate(int64_t duration_ms, const char *out_path, const cmh_control *ctl, char *err,
                 size_t err_size)
{
    if (!out_path || duration_ms <= 0 || duration_ms > 24LL * 3600 * 1000)
        return cmh_fail(err, err_size, CMH_E_INVALID, 0, "bad length or no output path");
    cmh_sink_params sp = {GEN_W, GEN_H, {GEN_FPS, 1}, GEN_RATE, 1};
    cmh_sink *sink = NULL;
    int code = cmh_sink_open(&sink, out_path, &sp, err, err_size);
    if (code != CMH_OK)
        return code;
    AVFrame *v = av_frame_alloc(), *a = av_frame_alloc();
    int rc = -1;
    if (v && a) {
        v->format = AV_PIX_FMT_YUV420P;
        v->width = GEN_W;
        v->height = GEN_H;
        a->format = AV_SAMPLE_FMT_FLTP;
        a->sample_rate = GEN_RATE;
        a->nb_samples = GEN_CHUNK;
        av_channel_layout_default(&a->ch_layout, 1);
        rc = av_frame_get_buffer(v, 0);
        if (rc >= 0)
            rc = av_frame_get_buffer(a, 0);
    }
    if (rc < 0)
        code = cmh_fail(err, err_size, CMH_E_NOMEM, rc, "out of memory");

    int64_t frames = (duration_ms * GEN_FPS + 999) / 1000;
    int64_t samples = duration_ms * (GEN_RATE / 1000);
    int64_t samples_done = 0;
    int last = -1;
    report(ctl, &last, 0);
    for (int64_t n = 0; code == CMH_OK && n < frames; n++) {
        if (ctl && ctl->cancelled && ctl->cancelled(ctl->ud)) {
            code = cmh_fail(err, err_size, CMH_E_CANCELLED, 0, "cancelled");
            break;
        }
        paint(v, n);
        code = cmh_sink_video(sink, v, n * 1000000 / GEN_FPS, err, err_size);
        /* keep the audio level with the video so the muxer interleaves cheaply */
        int64_t audio_until = (n + 1) * GEN_RATE / GEN_FPS;
        if (audio_until > samples)
            audio_until = samples;
        while (code == CMH_OK && samples_done < audio_until) {
            int64_t left = audio_until - samples_done;
            a->nb_samples = left < GEN_CHUNK ? (int)left : GEN_CHUNK;
            tone(a, samples_done);
            code = cmh_sink_audio(sink, a, err, err_size);
            samples_done += a->nb_samples;
        }
        int pc = (int)((n + 1) * 100 / frames);
        report(ctl, &last, pc >= 100 ? 99 : pc);
    }
    while (code == CMH_OK && samples_done < samples) {
        int64_t left = samples - samples_done;
        a->nb_samples = left < GEN_CHUNK ? (int)left : GEN_CHUNK;
        tone(a, samples_done);
        code = cmh_sink_audio(sink, a, err, err_size);
        samples_done += a->nb_samples;
    }
    if (code == CMH_OK)
        code = cmh_sink_finish(sink, err, err_size);
    if (code == CMH_OK)
        report(ctl, &last, 100);
    av_frame_free(&v);
    av_frame_free(&a);
    cmh_sink_free(sink);
    return code;
}
