/* SPDX-License-Identifier: MIT */
/*
 * bench_fingerprint - what the plugin's input binding costs (issue 12): 64-bit FNV-1a,
 * byte at a time, over the first and the last W bytes of a file, for W = 64 KiB (the
 * plugin's choice) and 1 MiB, against the baseline of reading the same bytes without
 * hashing them, measured in the same run.
 *
 *   bench_fingerprint [FILE]   (default: an 8 MiB file of pseudo-random bytes it writes
 *                               under /tmp and removes)
 *
 * The loop is the one in plugin/plugin_job.c (input_binding), copied: the plugin keeps
 * it internal.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* One fingerprint (hash = 1) or the same reads alone (hash = 0); returns ms. */
static double once(const char *path, int64_t span, int hash, unsigned char *buf, uint64_t *sink)
{
    double t0 = now_ms();
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror(path);
        exit(1);
    }
    int64_t size = st.st_size, head = size < span ? size : span;
    int64_t tail = size - head < span ? size - head : span;
    int64_t off[2] = {0, size - tail}, len[2] = {head, tail};
    uint64_t h = UINT64_C(14695981039346656037);
    for (int k = 0; k < 2; k++) {
        ssize_t n = pread(fd, buf, (size_t)len[k], (off_t)off[k]);
        for (ssize_t i = 0; hash && i < n; i++)
            h = (h ^ buf[i]) * UINT64_C(1099511628211);
        *sink += n > 0 ? buf[n - 1] : 0;
    }
    close(fd);
    *sink += h;
    return now_ms() - t0;
}

static double best(const char *path, int64_t span, int hash, unsigned char *buf, uint64_t *sink)
{
    double m = 1e18;
    for (int r = 0; r < 7; r++) {
        double t = 0;
        for (int i = 0; i < 50; i++)
            t += once(path, span, hash, buf, sink);
        if (t / 50 < m)
            m = t / 50;
    }
    return m;
}

int main(int argc, char **argv)
{
    char tmp[] = "/tmp/bench_fingerprint_XXXXXX";
    const char *path = argc > 1 ? argv[1] : NULL;
    if (!path) {
        int fd = mkstemp(tmp);
        unsigned char *b = malloc(1 << 20);
        uint64_t x = 88172645463325252ULL;
        for (int m = 0; fd >= 0 && b && m < 8; m++) {
            for (int i = 0; i < 1 << 20; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                b[i] = (unsigned char)x;
            }
            if (write(fd, b, 1 << 20) != 1 << 20)
                return 1;
        }
        free(b);
        if (fd < 0)
            return 1;
        close(fd);
        path = tmp;
    }
    unsigned char *buf = malloc(1 << 20);
    uint64_t sink = 0;
    printf("bench_fingerprint: %s, best of 7 x 50 runs\n", path);
    printf("window each side   read only (baseline)   read + FNV-1a\n");
    for (int64_t span = 64 * 1024; span <= 1024 * 1024; span *= 16)
        printf("%8lld KiB       %10.3f ms          %10.3f ms\n", (long long)span / 1024,
               best(path, span, 0, buf, &sink), best(path, span, 1, buf, &sink));
    printf("(sink %llu)\n", (unsigned long long)(sink & 1));
    free(buf);
    if (path == tmp)
        unlink(tmp);
    return 0;
}
