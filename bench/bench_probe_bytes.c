/* SPDX-License-Identifier: MIT */
/*
 * bench_probe_bytes - what one probe of each file costs, through the library.
 *
 *   bench_probe_bytes FILE...
 *
 * Prints one tab-separated line per file: file, size in bytes, bytes the probe read
 * (cm_probe_report_bytes_read), the wall time of cm_probe_file in microseconds, the
 * result code name and the measured duration in ms. bench/probe_vs_ffprobe.sh uses it
 * to cross-check the bytes it counts with strace.
 */
#include "cm_probe.h"

#include <inttypes.h>
#include <stdio.h>
#include <time.h>

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_probe_bytes FILE...\n");
        return 2;
    }
    cm_probe *p;
    if (cm_probe_new(&p, NULL) != CM_PROBE_OK)
        return 1;
    cm_probe_silence_libav_logs();
    printf("file\tsize\tbytes_read\tus\tresult\tmeasured_ms\n");
    for (int i = 1; i < argc; i++) {
        cm_probe_report *r = NULL;
        int64_t t0 = now_us();
        int err = cm_probe_file(p, argv[i], &r);
        int64_t us = now_us() - t0;
        if (!r) {
            printf("%s\t-\t-\t%" PRId64 "\t%s\t-\n", argv[i], us, cm_probe_err_name(err));
            continue;
        }
        printf("%s\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%s\t%" PRId64 "\n", argv[i],
               cm_probe_report_file_bytes(r), cm_probe_report_bytes_read(r), us,
               cm_probe_err_name(err), cm_probe_report_measured_ms(r));
        cm_probe_report_free(r);
    }
    cm_probe_free(p);
    return 0;
}
