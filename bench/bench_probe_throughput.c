/* SPDX-License-Identifier: MIT */
/*
 * bench_probe_throughput - files per second through the probe library, in-process.
 *
 *   bench_probe_throughput [--min-seconds S] [--per-file] [FILE...]
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
 * Each configuration runs whole passes over the batch (about S seconds of each, default
 * 2), baseline and probe called in turn on each file, each call timed (a machine busy
 * with other work slows both alike); files/s is calls over the time spent in them per
 * thread. The files are read warm from the page cache after the first pass. The
 * process CPU time per call (1 thread; the decoder threads find_stream_info starts
 * included) is printed too: it depends less on other load.
 *
 * --per-file: instead, each file on its own, 1 thread, baseline and probe alternated
 * one call each (so a busy machine slows both alike) for at least S/10 seconds per
 * file: microseconds per call of each, their ratio (probe time / baseline time, below
 * 1.0 the probe is faster), the probe's method, and the batch's sums.
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

enum mode { MODE_BASELINE, MODE_PROBE, MODE_BOTH };

struct run {
    enum mode mode;
    const cm_probe *probe;
    char **files;
    int nfiles;
    int64_t total; /* files to do in this run (each by both in MODE_BOTH) */
    atomic_int_fast64_t next;
    atomic_int_fast64_t failed;
    pthread_mutex_t lock;
    double spent[2], cpu[2]; /* MODE_BOTH: seconds in each mode, summed over threads */
};

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

/* CPU time of the whole process (every thread: libavcodec's decoder threads too). */
static double cpu_s(void)
{
    return clock_s(CLOCK_PROCESS_CPUTIME_ID);
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

static int run_one(struct run *run, enum mode mode, const char *path)
{
    return mode == MODE_PROBE ? probe_one(run->probe, path) : baseline_one(path);
}

static void *worker(void *arg)
{
    struct run *run = arg;
    double spent[2] = {0}, cpu[2] = {0};
    for (;;) {
        int64_t i = atomic_fetch_add(&run->next, 1);
        if (i >= run->total)
            break;
        const char *path = run->files[i % run->nfiles];
        if (run->mode != MODE_BOTH) {
            if (run_one(run, run->mode, path) != 0)
                atomic_fetch_add(&run->failed, 1);
            continue;
        }
        /* Both, call by call, in turns which goes first: whatever else the machine
           does slows both alike. */
        for (int k = 0; k < 2; k++) {
            enum mode mode = (enum mode)((i + k) & 1);
            double w0 = now_s(), c0 = cpu_s();
            if (run_one(run, mode, path) != 0 && mode == MODE_PROBE)
                atomic_fetch_add(&run->failed, 1);
            spent[mode] += now_s() - w0;
            cpu[mode] += cpu_s() - c0;
        }
    }
    pthread_mutex_lock(&run->lock);
    for (int m = 0; m < 2; m++)
        run->spent[m] += spent[m], run->cpu[m] += cpu[m];
    pthread_mutex_unlock(&run->lock);
    return NULL;
}

/* Runs passes x nfiles calls (of each, in MODE_BOTH) on nthreads threads; returns files
   per second (MODE_BOTH: fps[] of each, and cpu_us[], the process CPU time per call of
   each, meaningful on 1 thread). */
static double measure(enum mode mode, const cm_probe *p, char **files, int nfiles, int passes,
                      int nthreads, int64_t *failed, double fps[2], double cpu_us[2])
{
    struct run run = {.mode = mode,
                      .probe = p,
                      .files = files,
                      .nfiles = nfiles,
                      .total = (int64_t)passes * nfiles};
    atomic_init(&run.next, 0);
    atomic_init(&run.failed, 0);
    pthread_mutex_init(&run.lock, NULL);
    pthread_t th[2];
    double t0 = now_s();
    for (int i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, worker, &run);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    double dt = now_s() - t0;
    pthread_mutex_destroy(&run.lock);
    *failed = atomic_load(&run.failed);
    if (mode == MODE_BOTH)
        for (int m = 0; m < 2; m++) {
            fps[m] = (double)run.total / (run.spent[m] / nthreads);
            cpu_us[m] = run.cpu[m] / (double)run.total * 1e6;
        }
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

/* Per file, baseline and probe alternated; prints wall and CPU us per call of each. */
static void per_file(const cm_probe *p, char **files, int nfiles, double min_s)
{
    printf("bench_probe_throughput --per-file: %d files, baseline and probe alternated, "
           ">= %.2f s per file, 1 thread; wall and process CPU time per call\n",
           nfiles, min_s);
    printf("  %-24s %10s %10s %7s %10s %10s %7s  %s\n", "file", "base_wall", "probe_wall", "p/b",
           "base_cpu", "probe_cpu", "p/b", "method");
    double sum[4] = {0};
    for (int i = 0; i < nfiles; i++) {
        double t[4] = {0}; /* base wall, probe wall, base cpu, probe cpu */
        int n = 0;
        (void)baseline_one(files[i]), (void)probe_one(p, files[i]); /* warm */
        while (t[0] + t[1] < min_s || n < 3) {
            double w0 = now_s(), c0 = cpu_s();
            (void)baseline_one(files[i]);
            double w1 = now_s(), c1 = cpu_s();
            (void)probe_one(p, files[i]);
            double w2 = now_s(), c2 = cpu_s();
            t[0] += w1 - w0, t[1] += w2 - w1, t[2] += c1 - c0, t[3] += c2 - c1;
            n++;
        }
        cm_probe_report *r = NULL;
        cm_probe_file(p, files[i], &r);
        const char *slash = strrchr(files[i], '/');
        printf("  %-24s %10.1f %10.1f %6.2fx %10.1f %10.1f %6.2fx  %s\n",
               slash ? slash + 1 : files[i], t[0] / n * 1e6, t[1] / n * 1e6, t[1] / t[0],
               t[2] / n * 1e6, t[3] / n * 1e6, t[3] / t[2],
               cm_probe_report_error(r) ? cm_probe_err_name(cm_probe_report_error(r))
                                        : cm_probe_method_name(cm_probe_report_method(r)));
        cm_probe_report_free(r);
        for (int k = 0; k < 4; k++)
            sum[k] += t[k] / n;
    }
    printf("  %-24s %10.1f %10.1f %6.2fx %10.1f %10.1f %6.2fx  (us for one call of each file)\n",
           "sum", sum[0] * 1e6, sum[1] * 1e6, sum[1] / sum[0], sum[2] * 1e6, sum[3] * 1e6,
           sum[3] / sum[2]);
    printf("  files/s, probe / baseline: %.2fx by wall time, %.2fx by CPU time\n", sum[0] / sum[1],
           sum[2] / sum[3]);
}

int main(int argc, char **argv)
{
    double min_s = 2.0;
    int first = 1, by_file = 0;
    for (;;) {
        if (argc > first + 1 && strcmp(argv[first], "--min-seconds") == 0) {
            min_s = atof(argv[first + 1]);
            first += 2;
            if (min_s <= 0) {
                fprintf(stderr, "usage: bench_probe_throughput [--min-seconds S] [--per-file] "
                                "[FILE...]\n");
                return 2;
            }
        } else if (argc > first && strcmp(argv[first], "--per-file") == 0) {
            by_file = 1;
            first++;
        } else {
            break;
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

    if (by_file) {
        per_file(p, files, nfiles, min_s / 10);
        goto out;
    }
    /* One warm-up pass of each (fills the page cache), timed to size the runs. */
    int64_t failed_probe = 0, failed_base = 0;
    double t0 = now_s();
    measure(MODE_PROBE, p, files, nfiles, 1, 1, &failed_probe, NULL, NULL);
    measure(MODE_BASELINE, p, files, nfiles, 1, 1, &failed_base, NULL, NULL);
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

    /* Baseline and probe alternate call by call (see worker). */
    double fps[2][2], cpu_us[2][2];
    int64_t f;
    for (int t = 1; t <= 2; t++) {
        double both[2];
        measure(MODE_BOTH, p, files, nfiles, passes, t, &f, both, cpu_us[t - 1]);
        fps[MODE_BASELINE][t - 1] = both[MODE_BASELINE];
        fps[MODE_PROBE][t - 1] = both[MODE_PROBE];
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
    printf("  %-46s %10.1f us  (baseline %.1f us, ratio %.2fx)\n",
           "CPU time per file, 1 thread (all threads')", cpu_us[0][MODE_PROBE],
           cpu_us[0][MODE_BASELINE], cpu_us[0][MODE_BASELINE] / cpu_us[0][MODE_PROBE]);

out:
    cm_probe_free(p);
    if (first >= argc) {
        for (int i = 0; i < nfiles; i++)
            free(files[i]);
        free(files);
    }
    return 0;
}
