/* SPDX-License-Identifier: MIT */
/*
 * bench_probe_throughput - files per second through the probe library, in-process.
 *
 *   bench_probe_throughput [--min-seconds S] [FILE...]
 *
 * Probes a batch of files (default: every media file in samples/) over and over with
 * one shared cm_probe handle, from 1 thread and from 2 threads, and prints the files
 * per second beside a baseline measured in the same run over the same files and
 * threads: plain libavformat doing what `ffprobe -show_entries format=duration` does
 * (avformat_open_input + avformat_find_stream_info, read the duration, close). The
 * ratio is probe files/s over baseline files/s: above 1.0 the probe is faster.
 *
 * The probe does more than the baseline: it establishes the duration from the content
 * (a structure walk of MP4, AVI and Matroska headers, or a demux of every packet) where
 * the baseline trusts the header.
 * Each configuration runs whole passes over the batch for at least S seconds
 * (default 2); the files are read warm from the page cache after the first pass.
 */
#include "cm_probe.h"

#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <libavformat/avformat.h>
#include <libavutil/log.h>

#ifndef CM_SAMPLES_DIR
#define CM_SAMPLES_DIR "samples"
#endif

enum mode { MODE_BASELINE, MODE_PROBE };

struct run {
    enum mode mode;
    const cm_probe *probe;
    char **files;
    int nfiles;
    int64_t total; /* probes to do in this run */
    atomic_int_fast64_t next;
    atomic_int_fast64_t failed;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What ffprobe does for -show_entries format=duration, minus printing. */
static int baseline_one(const char *path)
{
    AVFormatContext *fc = NULL;
    if (avformat_open_input(&fc, path, NULL, NULL) < 0)
        return -1;
    int ok = avformat_find_stream_info(fc, NULL) >= 0 && fc->duration != AV_NOPTS_VALUE;
    avformat_close_input(&fc);
    return ok ? 0 : -1;
}

static int probe_one(const cm_probe *p, const char *path)
{
    cm_probe_report *r = NULL;
    int err = cm_probe_file(p, path, &r);
    cm_probe_report_free(r);
    return err == CM_PROBE_OK ? 0 : -1;
}

static void *worker(void *arg)
{
    struct run *run = arg;
    for (;;) {
        int64_t i = atomic_fetch_add(&run->next, 1);
        if (i >= run->total)
            break;
        const char *path = run->files[i % run->nfiles];
        int rc = run->mode == MODE_PROBE ? probe_one(run->probe, path) : baseline_one(path);
        if (rc != 0)
            atomic_fetch_add(&run->failed, 1);
    }
    return NULL;
}

/* Runs passes x nfiles probes on nthreads threads; returns files per second. */
static double measure(enum mode mode, const cm_probe *p, char **files, int nfiles, int passes,
                      int nthreads, int64_t *failed)
{
    struct run run = {.mode = mode,
                      .probe = p,
                      .files = files,
                      .nfiles = nfiles,
                      .total = (int64_t)passes * nfiles};
    atomic_init(&run.next, 0);
    atomic_init(&run.failed, 0);
    pthread_t th[2];
    double t0 = now_s();
    for (int i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, worker, &run);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    double dt = now_s() - t0;
    *failed = atomic_load(&run.failed);
    return (double)run.total / dt;
}

static int is_media_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return name[0] != '.' && dot && strcmp(dot, ".sh") != 0 && strcmp(dot, ".txt") != 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular media file directly in dir, sorted. */
static int list_samples(const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    char **files = NULL;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_media_name(e->d_name))
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        char **grown = realloc(files, (size_t)(n + 1) * sizeof(*files));
        if (!grown)
            break;
        files = grown;
        files[n++] = strdup(path);
    }
    closedir(d);
    qsort(files, (size_t)n, sizeof(*files), cmp_str);
    *out = files;
    return n;
}

int main(int argc, char **argv)
{
    double min_s = 2.0;
    int first = 1;
    if (argc > 2 && strcmp(argv[1], "--min-seconds") == 0) {
        min_s = atof(argv[2]);
        first = 3;
        if (min_s <= 0) {
            fprintf(stderr, "usage: bench_probe_throughput [--min-seconds S] [FILE...]\n");
            return 2;
        }
    }
    char **files;
    int nfiles;
    if (first < argc) {
        files = argv + first;
        nfiles = argc - first;
    } else {
        nfiles = list_samples(CM_SAMPLES_DIR, &files);
        if (nfiles <= 0) {
            fprintf(stderr, "bench_probe_throughput: no files in %s\n", CM_SAMPLES_DIR);
            return 1;
        }
    }
    av_log_set_level(AV_LOG_QUIET); /* a benchmark program: libav's warnings are noise */
    cm_probe *p;
    if (cm_probe_new(&p, NULL) != CM_PROBE_OK)
        return 1;

    /* One warm-up pass of each (fills the page cache), timed to size the runs. */
    int64_t failed_probe = 0, failed_base = 0;
    double t0 = now_s();
    measure(MODE_PROBE, p, files, nfiles, 1, 1, &failed_probe);
    measure(MODE_BASELINE, p, files, nfiles, 1, 1, &failed_base);
    double pass_s = (now_s() - t0) / 2;
    int passes = (int)(min_s / (pass_s > 1e-6 ? pass_s : 1e-6)) + 1;

    int64_t bytes = 0;
    for (int i = 0; i < nfiles; i++) {
        struct stat st;
        if (stat(files[i], &st) == 0)
            bytes += st.st_size;
    }
    printf("bench_probe_throughput: %d files (%.1f MB), %d passes per configuration, "
           "one shared cm_probe handle\n",
           nfiles, (double)bytes / 1e6, passes);
    if (failed_probe || failed_base)
        printf("  note: %" PRId64 " files refused by the probe, %" PRId64
               " failed in libavformat (still timed)\n",
               failed_probe, failed_base);

    double fps[2][2];
    int64_t f;
    for (int t = 1; t <= 2; t++) {
        fps[MODE_BASELINE][t - 1] = measure(MODE_BASELINE, p, files, nfiles, passes, t, &f);
        fps[MODE_PROBE][t - 1] = measure(MODE_PROBE, p, files, nfiles, passes, t, &f);
    }
    printf("  %-46s %14s %14s\n", "", "1 thread", "2 threads");
    printf("  %-46s %10.1f f/s %10.1f f/s\n", "baseline: avformat_open_input+find_stream_info",
           fps[MODE_BASELINE][0], fps[MODE_BASELINE][1]);
    printf("  %-46s %10.1f f/s %10.1f f/s\n", "cm_probe_file (verified duration)",
           fps[MODE_PROBE][0], fps[MODE_PROBE][1]);
    printf("  %-46s %13.2fx %13.2fx\n", "ratio probe/baseline (>1: probe faster)",
           fps[MODE_PROBE][0] / fps[MODE_BASELINE][0], fps[MODE_PROBE][1] / fps[MODE_BASELINE][1]);
    printf("  %-46s %14s %13.2fx\n", "probe scaling 2 threads / 1", "",
           fps[MODE_PROBE][1] / fps[MODE_PROBE][0]);

    cm_probe_free(p);
    if (first >= argc) {
        for (int i = 0; i < nfiles; i++)
            free(files[i]);
        free(files);
    }
    return 0;
}
