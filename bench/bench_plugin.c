/* SPDX-License-Identifier: MIT */
/*
 * bench_plugin - the plugin's overhead on real transcode jobs over the samples.
 *
 * For each sample, in the same run:
 *   baseline: the job without the plugin (transcode + thumbnail with the host's engine);
 *   with plugin: the same job between the plugin's hooks (job_begin probes, quotes and
 *                reserves; stage_begin/stage_end renew the lease; job_end commits),
 *                timing the hooks alone.
 * Prints the baseline, the job time with the plugin, the time inside the hooks and
 * their share of the job's time. Target: under 1 %.
 *
 * usage: bench_plugin [PLUGIN.so] [ROUNDS]   (defaults: the build's plugin, 3 rounds)
 */
#include "cm_ledger.h"
#include "cmh_media.h"
#include "creditmeter_plugin.h"

#include <dlfcn.h>
#include <libavutil/log.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *samples[] = {
    "clip-40s.mp4",    "edge-60.6s.mkv", "faststart-2m.mp4", "exact-3m00.mp4", "exact-3m00.mkv",
    "exact-3m00.webm", "exact-3m00.ts",  "wrap-90s.ts",      "short-10s.mxf",  "streamed-90s.mkv",
};
#define N_SAMPLES (sizeof samples / sizeof samples[0])

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int setup_ledger(const char *db)
{
    unlink(db);
    cm_ledger_config cfg;
    cm_ledger_config_init(&cfg);
    cfg.location = db;
    cfg.create = 1;
    cm_ledger *l = NULL;
    int rc = cm_ledger_open(&l, &cfg);
    if (rc == CM_LEDGER_OK)
        rc = cm_ledger_workspace_create(l, "bench", "owner", NULL);
    if (rc == CM_LEDGER_OK)
        rc = cm_ledger_buy(l, "bench", 1000000, "owner", NULL, NULL);
    cm_ledger_close(l);
    return rc;
}

/* The pipeline's own work: what the host does between the hooks. */
static int work(const char *in, const char *out, const char *png, const char *stage)
{
    char err[256];
    if (strcmp(stage, "transcode") == 0)
        return cmh_transcode(in, out, NULL, err, sizeof err);
    int rc = cmh_thumbnail(in, png, NULL, err, sizeof err);
    return rc == CMH_E_NOVIDEO ? CMH_OK : rc;
}

int main(int argc, char **argv)
{
    const char *plugin = argc > 1 ? argv[1] : CM_BIN_PLUGIN;
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    if (rounds < 1)
        rounds = 1;
    av_log_set_level(AV_LOG_QUIET); /* the bench owns its process; damaged-sample chatter off */

    void *dl = dlopen(plugin, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        fprintf(stderr, "bench_plugin: %s\n", dlerror());
        return 1;
    }
    dlerror();
    void *sym = dlsym(dl, CM_PLUGIN_ENTRY_SYMBOL);
    cm_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    const cm_plugin_api *api = sym ? entry(CM_PLUGIN_ABI_MAJOR, CM_PLUGIN_ABI_MINOR) : NULL;
    if (!cm_plugin_api_compatible(api)) {
        fprintf(stderr, "bench_plugin: %s is not a compatible plugin\n", plugin);
        return 1;
    }
    char dir[] = "/tmp/bench_plugin.XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char db[256], out[256], png[256];
    snprintf(db, sizeof db, "%s/ledger.db", dir);
    snprintf(out, sizeof out, "%s/out.mp4", dir);
    snprintf(png, sizeof png, "%s/out.png", dir);
    if (setup_ledger(db) != CM_LEDGER_OK)
        return 1;
    cm_plugin_config cfg;
    cm_plugin_config_init(&cfg);
    cfg.ledger = db;
    cm_plugin *p = NULL;
    if (api->open(&cfg, &p, NULL) != CM_PLUGIN_OK)
        return 1;

    printf("bench_plugin: %d round(s), video encoder %s, plugin %s\n", rounds,
           cmh_video_encoder_name(), api->version);
    printf("%-18s %12s %12s %12s %8s\n", "sample", "baseline_ms", "job_ms", "hooks_ms", "share");
    double tot_base = 0, tot_job = 0, tot_hooks = 0, tot_begin = 0, tot_stages = 0, tot_end = 0;
    int seq = 0, failures = 0;
    const char *stages[] = {"transcode", "thumbnail"};
    for (size_t s = 0; s < N_SAMPLES; s++) {
        char in[1024];
        snprintf(in, sizeof in, "%s/%s", CM_SAMPLES_DIR, samples[s]);
        if (access(in, R_OK) != 0)
            continue;
        double base = 0, job = 0, hooks = 0;
        for (int r = 0; r < rounds; r++) {
            /* baseline: the job without the plugin */
            double t0 = now_s();
            for (int i = 0; i < 2; i++)
                failures += work(in, out, png, stages[i]) != CMH_OK;
            base += now_s() - t0;

            /* the same job between the hooks */
            char id[64];
            snprintf(id, sizeof id, "bench-%d", seq++);
            cm_plugin_job_spec spec;
            memset(&spec, 0, sizeof spec);
            spec.struct_size = sizeof spec;
            spec.job = id;
            spec.workspace = "bench";
            spec.user = "owner";
            spec.billing = CM_PLUGIN_BY_INPUT;
            spec.input_path = in;
            cm_plugin_quote q;
            memset(&q, 0, sizeof q);
            q.struct_size = sizeof q;
            cm_plugin_outcome o;
            memset(&o, 0, sizeof o);
            o.struct_size = sizeof o;
            double j0 = now_s(), h = 0, h0;
            h0 = now_s();
            failures += api->job_begin(p, &spec, &q) != CM_PLUGIN_OK;
            h += now_s() - h0;
            tot_begin += now_s() - h0;
            for (int i = 0; i < 2; i++) {
                h0 = now_s();
                failures += api->stage_begin(p, id, stages[i]) != CM_PLUGIN_OK;
                h += now_s() - h0;
                tot_stages += now_s() - h0;
                int ok = work(in, out, png, stages[i]) == CMH_OK;
                h0 = now_s();
                failures += api->stage_end(p, id, stages[i], ok, NULL) != CM_PLUGIN_OK;
                h += now_s() - h0;
                tot_stages += now_s() - h0;
            }
            h0 = now_s();
            failures += api->job_end(p, id, 1, out, &o) != CM_PLUGIN_OK;
            h += now_s() - h0;
            tot_end += now_s() - h0;
            job += now_s() - j0;
            hooks += h;
        }
        printf("%-18s %12.1f %12.1f %12.2f %7.2f%%\n", samples[s], base * 1000 / rounds,
               job * 1000 / rounds, hooks * 1000 / rounds, 100.0 * hooks / job);
        tot_base += base;
        tot_job += job;
        tot_hooks += hooks;
    }
    printf("%-18s %12.1f %12.1f %12.2f %7.2f%%\n", "all", tot_base * 1000 / rounds,
           tot_job * 1000 / rounds, tot_hooks * 1000 / rounds, 100.0 * tot_hooks / tot_job);
    printf("hooks per job: job_begin %.2f ms, 4 stage hooks %.2f ms, job_end %.2f ms\n",
           tot_begin * 1000 / (seq ? seq : 1), tot_stages * 1000 / (seq ? seq : 1),
           tot_end * 1000 / (seq ? seq : 1));
    printf("hooks share of job time: %.2f %% (target < 1 %%); job/baseline ratio %.3f\n",
           100.0 * tot_hooks / tot_job, tot_job / tot_base);
    api->close(p);
    unlink(db);
    char side[300];
    snprintf(side, sizeof side, "%s-wal", db);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", db);
    unlink(side);
    unlink(out);
    unlink(png);
    rmdir(dir);
    if (failures)
        fprintf(stderr, "bench_plugin: %d hook or job failures\n", failures);
    return failures ? 1 : 0;
}
