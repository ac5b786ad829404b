/* SPDX-License-Identifier: MIT */
/*
 * cm-probe - measure media files and print what they bill.
 *
 *   cm-probe [--json] [--grace-ms N] [--max-duration-s N] [--timeout-ms N] FILE...
 *
 * A thin client of cm_probe.h. Each result line is formatted in memory and written
 * whole, so output is never a partial line. Exit: 0 every file billed, 1 any file
 * refused, 2 usage error.
 */
#include "cm_probe.h"
#include "cm_text.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "usage: cm-probe [--json] [--full-scan] [--grace-ms N] [--max-duration-s N] [--timeout-ms N] "
    "FILE...\n"
    "  Measures each file's real playing time and prints the credits it bills\n"
    "  (one credit per started minute, after a grace for encoder padding).\n"
    "  --json             one JSON object per file per line\n"
    "  --full-scan        demux every packet (the oracle), skipping every fast path\n"
    "  --grace-ms N       padding forgiven before a minute counts (default 500, 0-59999)\n"
    "  --max-duration-s N refuse files longer than N seconds (default 86400)\n"
    "  --timeout-ms N     base time budget per file (default 10000), plus 1 ms per 50 KB\n"
    "Exit status: 0 all billed, 1 some refused, 2 usage error.\n";

/* Set when --json is among the options: usage errors are then a JSON document on stdout
 * ({"ok": false, "error": {"code": "usage", "message": ...}}). */
static int json_usage;

static int usage_error(const char *fmt, const char *arg)
{
    if (json_usage) {
        char msg[512];
        snprintf(msg, sizeof msg, fmt, arg);
        fputs("{\"ok\": false, \"error\": {\"code\": \"usage\", \"message\": ", stdout);
        cm__json_escape(stdout, msg);
        fputs("}}\n", stdout);
        return 2;
    }
    fprintf(stderr, "cm-probe: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", USAGE);
    return 2;
}

static int parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* Writes s as a JSON string; invalid UTF-8 becomes U+FFFD so the line stays valid. */
static void json_str(FILE *f, const char *s)
{
    cm__json_escape(f, s);
}

static void hms(int64_t ms, char *buf, size_t len)
{
    if (ms < 0)
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%" PRId64 ":%02" PRId64 ":%02" PRId64 ".%03" PRId64, ms / 3600000,
                 ms / 60000 % 60, ms / 1000 % 60, ms % 1000);
}

static void print_json(FILE *f, const cm_probe_report *r)
{
    fputs("{\"file\":", f);
    json_str(f, cm_probe_report_file(r));
    int err = cm_probe_report_error(r);
    if (err != CM_PROBE_OK) {
        fputs(",\"ok\":false,\"error\":{\"code\":", f);
        json_str(f, cm_probe_err_name(err));
        fputs(",\"message\":", f);
        json_str(f, cm_probe_report_errmsg(r));
        fputs("}", f);
        if (cm_probe_report_measured_ms(r) >= 0)
            fprintf(f, ",\"duration_ms\":%" PRId64, cm_probe_report_measured_ms(r));
        fputs("}\n", f);
        return;
    }
    int64_t declared = cm_probe_report_declared_ms(r);
    fprintf(f, ",\"ok\":true,\"duration_ms\":%" PRId64 ",\"declared_ms\":",
            cm_probe_report_measured_ms(r));
    if (declared >= 0)
        fprintf(f, "%" PRId64, declared);
    else
        fputs("null", f);
    fprintf(f, ",\"billable_ms\":%" PRId64 ",\"credits\":%" PRId64 ",\"method\":",
            cm_probe_report_billable_ms(r), cm_probe_report_credits(r));
    json_str(f, cm_probe_method_name(cm_probe_report_method(r)));
    fprintf(f, ",\"has_video\":%s,\"format\":", cm_probe_report_has_video(r) ? "true" : "false");
    json_str(f, cm_probe_report_format(r));
    fputs(",\"note\":", f);
    json_str(f, cm_probe_note_name(cm_probe_report_note(r)));
    fputs(",\"reason\":", f);
    enum cm_probe_note note = cm_probe_report_note(r);
    json_str(f, note == CM_PROBE_NOTE_NONE ? "" : cm_probe_note_text(note));
    fputs(",\"streams\":[", f);
    for (int i = 0; i < cm_probe_report_stream_count(r); i++) {
        fputs(i ? ",{\"kind\":" : "{\"kind\":", f);
        json_str(f, cm_probe_stream_kind_name(cm_probe_report_stream_kind(r, i)));
        fputs(",\"codec\":", f);
        json_str(f, cm_probe_report_stream_codec(r, i));
        fputs("}", f);
    }
    fputs("]}\n", f);
}

static void print_row(FILE *f, const cm_probe_report *r, int width)
{
    int err = cm_probe_report_error(r);
    if (err != CM_PROBE_OK) {
        fprintf(f, "%-*s  %-13s  %7s  %-13s  %s: %s\n", width, cm_probe_report_file(r), "-", "-",
                "refused", cm_probe_err_name(err), cm_probe_report_errmsg(r));
        return;
    }
    char dur[32];
    hms(cm_probe_report_measured_ms(r), dur, sizeof(dur));
    enum cm_probe_note note = cm_probe_report_note(r);
    char notebuf[160] = "";
    if (note != CM_PROBE_NOTE_NONE) {
        char decl[32];
        hms(cm_probe_report_declared_ms(r), decl, sizeof(decl));
        if (cm_probe_report_declared_ms(r) >= 0)
            snprintf(notebuf, sizeof(notebuf), "%s (header says %s)", cm_probe_note_name(note),
                     decl);
        else
            snprintf(notebuf, sizeof(notebuf), "%s", cm_probe_note_name(note));
    }
    fprintf(f, "%-*s  %-13s  %7" PRId64 "  %-13s  %s\n", width, cm_probe_report_file(r), dur,
            cm_probe_report_credits(r), cm_probe_method_name(cm_probe_report_method(r)), notebuf);
}

/* Formats one result in memory, then writes it with a single call. */
static void emit(const cm_probe_report *r, int json, int width)
{
    char *line = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&line, &len);
    if (!m)
        return;
    if (json)
        print_json(m, r);
    else
        print_row(m, r, width);
    if (fclose(m) == 0 && line)
        fwrite(line, 1, len, stdout);
    free(line);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("cm-probe %s\n", cm_probe_version());
        return 0;
    }
    cm_probe_options opt;
    cm_probe_options_init(&opt);
    int json = 0, first_file = argc;
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--json") == 0)
            json_usage = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            first_file = i + 1;
            break;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(USAGE, stdout);
            return 0;
        } else if (strcmp(a, "--full-scan") == 0) {
            opt.full_scan = 1;
        } else if (strcmp(a, "--grace-ms") == 0) {
            if (parse_i64(i + 1 < argc ? argv[++i] : NULL, 0, 59999, &opt.grace_ms) != 0)
                return usage_error("--grace-ms needs a number of ms from 0 to 59999%s", "");
        } else if (strcmp(a, "--max-duration-s") == 0) {
            int64_t s;
            if (parse_i64(i + 1 < argc ? argv[++i] : NULL, 1, 100LL * 365 * 86400, &s) != 0)
                return usage_error("--max-duration-s needs a positive number of seconds%s", "");
            opt.max_duration_ms = s * 1000;
        } else if (strcmp(a, "--timeout-ms") == 0) {
            if (parse_i64(i + 1 < argc ? argv[++i] : NULL, 1, 86400000, &opt.time_budget_ms) != 0)
                return usage_error("--timeout-ms needs a positive number of ms%s", "");
        } else if (a[0] == '-' && a[1] != '\0') {
            return usage_error("unknown option %s", a);
        } else {
            first_file = i;
            break;
        }
    }
    if (first_file >= argc)
        return usage_error("no file given%s", "");

    cm_probe *p;
    if (cm_probe_new(&p, &opt) != CM_PROBE_OK)
        return usage_error("invalid options%s", "");
    cm_probe_silence_libav_logs();

    int width = 24;
    for (int i = first_file; i < argc; i++) {
        int w = (int)strlen(argv[i]);
        if (w > width)
            width = w > 60 ? 60 : w;
    }
    if (!json) {
        printf("%-*s  %-13s  %7s  %-13s  %s\n", width, "FILE", "DURATION", "CREDITS", "METHOD",
               "NOTE");
        fflush(stdout);
    }
    int refused = 0, billed = 0;
    int64_t credits = 0, total_ms = 0;
    for (int i = first_file; i < argc; i++) {
        cm_probe_report *r = NULL;
        int err = cm_probe_file(p, argv[i], &r);
        if (!r) {
            fprintf(stderr, "cm-probe: %s: %s\n", argv[i], cm_probe_strerror(err));
            refused++;
            continue;
        }
        emit(r, json, width);
        if (err == CM_PROBE_OK) {
            billed++;
            credits += cm_probe_report_credits(r);
            total_ms += cm_probe_report_measured_ms(r);
        } else {
            refused++;
        }
        cm_probe_report_free(r);
    }
    if (!json) {
        char dur[32];
        hms(total_ms, dur, sizeof(dur));
        printf("%-*s  %-13s  %7" PRId64 "  %d billed, %d refused\n", width, "TOTAL", dur, credits,
               billed, refused);
    }
    cm_probe_free(p);
    return refused ? 1 : 0;
}
