/* SPDX-License-Identifier: MIT */
/*
 * probe_policy.c - which demuxers the probe opens, and how each is measured.
 *
 * ALLOWED is the one list: the probe refuses any demuxer not in it, and libavformat's
 * own format_whitelist (a second lock on the door) is built from the same table, so
 * the two cannot drift apart.
 */
#include "probe_measure.h"

#include <pthread.h>
#include <string.h>

/* Every demuxer the probe will open. Anything else is refused: playlists (hls, dash),
   scripts (concat), image sequences (image2), raw video elementary streams without
   timing (h264, hevc), animated pictures (apng) and every exotic demuxer. */
static const struct cm__allowed ALLOWED[] = {
    {"mov,mp4,m4a,3gp,3g2,mj2", CM__PLAN_INDEX, 1, 1},
    {"avi", CM__PLAN_INDEX, 1, 0},
    {"matroska,webm", CM__PLAN_CLUSTERS, 1, 1},
    {"mpegts", CM__PLAN_SCAN, 0, 1},
    {"mpeg", CM__PLAN_SCAN, 0, 1},
    {"flv", CM__PLAN_TAGS, 1, 1},
    {"ogg", CM__PLAN_SCAN, 0, 0},
    {"asf", CM__PLAN_SCAN, 1, 0},
    {"mxf", CM__PLAN_SCAN, 1, 0},
    {"nut", CM__PLAN_SCAN, 1, 0},
    {"rm", CM__PLAN_SCAN, 1, 0},
    {"dv", CM__PLAN_SCAN, 1, 0},
    {"ivf", CM__PLAN_SCAN, 1, 0},
    {"wav", CM__PLAN_SCAN, 1, 0},
    {"w64", CM__PLAN_SCAN, 1, 0},
    {"aiff", CM__PLAN_SCAN, 1, 0},
    {"caf", CM__PLAN_SCAN, 1, 0},
    {"au", CM__PLAN_SCAN, 0, 0},
    {"wv", CM__PLAN_SCAN, 1, 0},
    {"tta", CM__PLAN_SCAN, 1, 0},
    {"mp3", CM__PLAN_SCAN, 1, 0},
    {"aac", CM__PLAN_SCAN, 0, 0},
    {"ac3", CM__PLAN_SCAN, 0, 0},
    {"eac3", CM__PLAN_SCAN, 0, 0},
    {"flac", CM__PLAN_SCAN, 1, 0},
    {"amr", CM__PLAN_SCAN, 0, 0},
    {"png_pipe", CM__PLAN_STILL, 0, 0},
    {"jpeg_pipe", CM__PLAN_STILL, 0, 0},
    {"bmp_pipe", CM__PLAN_STILL, 0, 0},
    {"webp_pipe", CM__PLAN_STILL, 0, 0},
    {"tiff_pipe", CM__PLAN_STILL, 0, 0},
    {"gif", CM__PLAN_STILL, 0, 0},
    {"srt", CM__PLAN_SUBTITLE, 0, 0},
    {"ass", CM__PLAN_SUBTITLE, 0, 0},
    {"webvtt", CM__PLAN_SUBTITLE, 0, 0},
};
#define N_ALLOWED (sizeof(ALLOWED) / sizeof(ALLOWED[0]))

const struct cm__allowed *cm__find_allowed(const char *name)
{
    for (size_t i = 0; i < N_ALLOWED; i++)
        if (strcmp(ALLOWED[i].name, name) == 0)
            return &ALLOWED[i];
    return NULL;
}

/* Large enough for every name in ALLOWED (checked when it is built). */
static char whitelist[512];

static void build_whitelist(void)
{
    size_t len = 0;
    for (size_t i = 0; i < N_ALLOWED; i++) {
        size_t n = strlen(ALLOWED[i].name);
        if (len + n + 2 > sizeof(whitelist)) {
            whitelist[0] = '\0'; /* cannot happen with this table; refuse everything */
            return;
        }
        if (len)
            whitelist[len++] = ',';
        memcpy(whitelist + len, ALLOWED[i].name, n);
        len += n;
        whitelist[len] = '\0';
    }
}

static pthread_once_t whitelist_once = PTHREAD_ONCE_INIT;

const char *cm__format_whitelist(void)
{
    pthread_once(&whitelist_once, build_whitelist);
    return whitelist;
}

const char *cm__refused_kind(const char *name)
{
    static const struct {
        const char *name;
        const char *kind;
    } KINDS[] = {
        {"hls", "a playlist, which points at other files"},
        {"dash", "a playlist, which points at other files"},
        {"concat", "a concatenation script, which points at other files"},
        {"image2", "an image sequence"},
        {"image2pipe", "an image sequence"},
        {"apng", "an animated picture"},
        {"gif_pipe", "an animated picture"},
        {"h264", "a raw H.264 video stream without timing"},
        {"hevc", "a raw HEVC video stream without timing"},
        {"m4v", "a raw MPEG-4 video stream without timing"},
        {"mpegvideo", "a raw MPEG video stream without timing"},
        {"h263", "a raw H.263 video stream without timing"},
        {"vvc", "a raw VVC video stream without timing"},
    };
    for (size_t i = 0; i < sizeof(KINDS) / sizeof(KINDS[0]); i++)
        if (strcmp(KINDS[i].name, name) == 0)
            return KINDS[i].kind;
    if (strstr(name, "_pipe"))
        return "a picture";
    return "a format the probe does not measure";
}
